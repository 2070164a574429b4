"""Which accounts the liquidation scan must look at this block, without looking at all.

After every maintenance check of an account with liabilities, the account is *armed* with
its buffer ``B = equity - maintenance`` split in parts, each guarding one way its margin can
change while nobody touches it:

- prices (three quarters of B): a relative move ``x`` (at most ``X``) of any of the prices the
  account depends on (the index of each asset it holds or owes, the mark of each perp it
  holds) changes equity by at most ``x * gross`` (gross = sum of |notional| of those legs)
  and the maintenance requirement by at most ``x * gross * r + 2 x * requirement``, where
  ``r`` bounds the requirement's slope per unit of notional: twice the largest
  ``max(S_MM, 1 - haircut_MM) + hedge add-on`` of any asset (a basis move can turn hedged
  notional into unhedged), plus the size add-on's rate at ``gross``, plus the borrow
  add-on's at the largest rate; the ``2 x * requirement`` covers the size add-on's growth
  (notional^1.5). So with ``X = (3B / 4) / (gross * (1 + r) + 2 * requirement)`` (capped at
  1/3) no move below X in every price can break maintenance. Each price gets two triggers,
  ``p * (1 + X)`` and ``p * (1 - X)``, kept in per-price heaps.
- funding (an eighth of B): funding at rate r moves equity by at most
  ``r * perp notional * (1 + X)``; the account stores each held market's cumulative
  ``sum |rate|`` at arming and is due when that sum has grown by its budget split evenly
  over its markets (one heap per market, keyed by ``ref + budget / markets``).
- interest (an eighth of B): debts grow at most at the largest borrow rate of any asset, and
  a jump of the rate moves the borrow add-on by at most ``debt * max rate * days / 365``;
  the account is due at the time that budget runs out.

A fresh arming uses half of the price band (``X / 2``) and half of the funding budget.
When a later check finds the arming in place still at least as tight as a full arming
from that check would be (every trigger inside the new band, every funding threshold and
the due time no later), and none of its entries has fired, the account keeps it: nothing
new goes into the record or the heaps. Every guard of the kept arming fires no later than
the new arming's would, so the bound above holds for it too (``_keeps``). Whether an
entry fired is read from the state (is a trigger reached at the current prices, funding
indexes and time?), never from a node's memory.

An account whose balances or positions changed in the block (a fill, a transfer, a borrow,
interest or funding settled on it) is always checked. So the scan checks the block's dirty
set plus the accounts whose triggers fired, and every account that can have fallen below
maintenance is among them.

The arming is a record of its own (``records.WATCH``, held on ``Account.watch``), written
when armed, and the heaps are rebuilt from the records on load; an entry is live only
while it equals the account's current arming. So which accounts a block checks depends only on the state, never
on the history of a node's memory: a node restarted from disk checks exactly the same ones.
"""

from __future__ import annotations

import heapq
from typing import TYPE_CHECKING, Any, Final

from state.risk import size_root
from state.units import PERP_SOURCE, PPB, PPM, YEAR_MS

if TYPE_CHECKING:
    from state.account import Account
    from state.exchange import Exchange
    from state.risk import Assessment

MAX_X_PPM: Final = 333_333
MAX_BUDGET: Final = 1 << 62


class Watch:
    __slots__ = ("base", "down", "entries", "fired", "force_all", "fund", "timeq", "up")

    def __init__(self) -> None:
        self.up: dict[int, list[tuple[int, bytes]]] = {}  # source -> min-heap of (trigger price, address)
        self.down: dict[int, list[tuple[int, bytes]]] = {}  # source -> min-heap of (-trigger price, address)
        self.timeq: list[tuple[int, bytes]] = []  # min-heap of (due time, address)
        self.fund: dict[int, list[tuple[int, bytes]]] = {}  # market -> min-heap of (phi threshold, address)
        self.entries = 0
        self.base = 0  # entries right after the last rebuild
        self.force_all = False  # set by a socialized loss: the same scan then checks every armed account
        # accounts a live entry of which was popped since they were last armed: re-arming one of
        # them must push again even when the arming is unchanged (an unfired arming's entries
        # are all still in the heaps, so re-pushing them would only add duplicates)
        self.fired: set[bytes] = set()

    def arm_from_record(self, address: bytes, w: list[Any]) -> None:
        _x, sources, budget, refs, due = w
        for src, up, down in sources:
            heapq.heappush(self.up.setdefault(src, []), (up, address))
            heapq.heappush(self.down.setdefault(src, []), (-down, address))
        if due is not None:
            heapq.heappush(self.timeq, (due, address))
        for m, ref in refs:
            heapq.heappush(self.fund.setdefault(m, []), (ref + budget // len(refs), address))
        self.entries += 2 * len(sources) + 1 + len(refs)

    def rebuild(self, ex: Exchange) -> None:
        self.up.clear()
        self.down.clear()
        self.timeq.clear()
        self.fund.clear()
        self.fired.clear()
        self.entries = 0
        for addr in sorted(ex.accounts):
            w = ex.accounts[addr].watch
            if w is not None:
                self.arm_from_record(addr, w)
        self.base = self.entries


def source_price(ex: Exchange, src: int) -> int:
    from state.prices import mark_price

    return mark_price(ex, src - PERP_SOURCE) if src >= PERP_SOURCE else ex.index_px[src]


def arm(ex: Exchange, acct: Account, mm: Assessment) -> None:
    """Arm ``acct`` from its maintenance assessment (``detail=True``), healthy or not; or
    keep the arming it has when that is still no looser than this assessment allows.

    A fresh arming uses half of the price and funding allowances (the band at ``X / 2``,
    half the funding budget), so that the account's next checks usually find it still
    sound: most accounts are checked every block they trade, prices move both ways between
    checks, and re-arming each of them (new trigger lists in the record, new heap entries)
    cost more than the checks themselves. The interest due time is the full one: it only
    comes nearer when the debt or the rate grows, and an idle borrower should not be
    checked twice as often. Keeping depends only on the state: the arming's record and the
    current prices, funding indexes and time (``_keeps``)."""
    risk = ex.genesis.risk
    if not mm.liabilities:
        if acct.watch is not None:
            acct.watch = None
            ex.touch_watch(acct)
        return
    buffer = max(mm.equity - mm.requirement, 0)
    size_rate = risk.size_addon_mm_ppm * size_root(mm.gross, risk.size_addon_ref, ex.watch_size_scale) // 10**6
    g = mm.gross + mm.gross * (ex.watch_rate_ppm + size_rate + 1) // PPM + 2 * mm.requirement
    x = min(MAX_X_PPM, 3 * buffer * PPM // (4 * g)) if g else MAX_X_PPM
    budget = None
    held: list[int] = []
    if mm.perp_gross:
        budget = min((buffer // 8) * PPB // (2 * mm.perp_gross), MAX_BUDGET)
        held = [m for m in sorted(acct.positions) if acct.positions[m].size]
    span = None  # time until the interest budget runs out (None: no debt, no time trigger)
    if mm.debt_value:
        rmax = ex.max_rate_ppm or 1
        jump = -(-mm.debt_value * 2 * rmax * risk.borrow_addon_days_mm // (365 * PPM))
        left = buffer // 8 - jump
        span = 0 if left <= 0 else min(left * YEAR_MS * PPM // (2 * mm.debt_value * rmax), YEAR_MS)
    if buffer == 0:
        span = 0  # at the edge (or below and partially liquidated): check again next block
    old = acct.watch
    w: list[Any]
    if old is not None and _keeps(ex, old, mm, x, budget, held, span):
        w = old  # every trigger in place fires no later than this assessment's would; none is reached
    else:
        half = x // 2
        sources = []
        for src, px, _exposure in sorted(mm.sources):
            up, down = _band(px, half)
            sources.append([src, up, down])
        refs = [[m, ex.mstate[m].phi] for m in held]
        due = None if span is None else ex.time_ms + 1 + span
        w = [half, sources, None if budget is None else budget // 2, refs, due]
    if w != old:
        acct.watch = w
        ex.touch_watch(acct)
    elif acct.address not in ex.watch.fired:
        return  # the same arming, none of its entries popped: they are all in the heaps still
    ex.watch.fired.discard(acct.address)
    ex.watch.arm_from_record(acct.address, w)  # (re)push: fired entries were popped


def _band(px: int, x: int) -> tuple[int, int]:
    """The (up, down) triggers around price ``px`` for a relative move ``x`` (ppm): what an
    arming writes, and what ``_keeps`` compares a kept arming with."""
    return px * (PPM + x) // PPM, -(-px * (PPM - x) // PPM)


def _keeps(ex: Exchange, old: list[Any], mm: Assessment, x: int, budget: int | None, held: list[int],
           span: int | None) -> bool:
    """May the account keep the arming ``old``? Only when none of its triggers is reached
    now (by the conditions ``collect`` pops an entry on, at the prices ``mm`` used) and it
    is at least as tight as a full arming from ``mm`` would be: an up trigger at or below
    ``p (1 + X)`` and a down trigger at or above ``p (1 - X)`` for every price the account
    depends on now, a funding threshold at or below ``phi + budget / markets`` for every
    perp it holds, and a due time no later than the interest budget allows. Then no path
    of prices, funding and time that leaves ``old`` unfired can break maintenance either.

    Decided from the state alone. ``Watch.fired`` says which entries popped, but it is a
    node's memory (a compaction of the heaps empties it, and when that runs depends on the
    node's history); a keep decision taken on it would write different records on nodes
    that compacted at different times. An entry pops only when its trigger is reached, and
    a reached arming is never kept, so a kept arming has all its entries in the heaps."""
    now = ex.time_ms
    odue: int | None = old[4]
    if odue is not None and odue <= now:
        return False  # reached
    if span is not None and (odue is None or odue > now + 1 + span):
        return False
    sources: list[list[int]] = old[1]  # typed, so the compiled build compares unboxed ints
    if len(sources) > len(mm.sources) and _reached_elsewhere(ex, sources, mm):
        return False
    for src, px, _exposure in mm.sources:
        for s in sources:
            if s[0] == src:
                up: int = s[1]
                down: int = s[2]
                if px >= up or px <= down:
                    return False  # reached
                full_up, full_down = _band(px, x)
                if up > full_up or down < full_down:
                    return False
                break
        else:
            return False
    obudget: int | None = old[2]
    orefs: list[list[int]] = old[3]
    mstate = ex.mstate
    oshare = 0
    if obudget is not None and orefs:
        oshare = obudget // len(orefs)
        for r in orefs:
            m: int = r[0]
            ref: int = r[1]
            if ref + oshare <= mstate[m].phi:
                return False  # reached
    if budget is not None:
        if obudget is None or not orefs:
            return False
        share = budget // len(held)
        for hm in held:
            for r in orefs:
                if r[0] == hm:
                    href: int = r[1]
                    if href + oshare > mstate[hm].phi + share:
                        return False
                    break
            else:
                return False
    return True


def _reached_elsewhere(ex: Exchange, sources: list[list[int]], mm: Assessment) -> bool:
    """Is a price trigger reached among ``sources`` the account no longer depends on (not
    in ``mm.sources``)? Rare: the account closed a position or emptied a balance."""
    current = {src for src, _px, _exposure in mm.sources}
    for s in sources:
        src: int = s[0]
        if src not in current:
            price = source_price(ex, src)
            if price >= s[1] or price <= s[2]:
                return True
    return False


def _live(acct: Account | None, src: int, price: int, up: bool) -> bool:
    if acct is None or acct.watch is None:
        return False
    i = 1 if up else 2
    return any(s[0] == src and s[i] == price for s in acct.watch[1])


def collect(ex: Exchange, funding: list[tuple[int, int]]) -> set[bytes]:
    """The accounts to check this block: those whose balances or positions changed, plus
    fired triggers. (Placing or cancelling orders changes no maintenance requirement.)"""
    w = ex.watch
    out = ex.tracker.take_scan()
    accounts = ex.accounts
    for src, heap in w.up.items():
        price = source_price(ex, src)
        while heap and heap[0][0] <= price:
            p, addr = heapq.heappop(heap)
            w.entries -= 1
            if _live(accounts.get(addr), src, p, True):
                out.add(addr)
                w.fired.add(addr)
    for src, heap in w.down.items():
        price = source_price(ex, src)
        while heap and -heap[0][0] >= price:
            p, addr = heapq.heappop(heap)
            w.entries -= 1
            if _live(accounts.get(addr), src, -p, False):
                out.add(addr)
                w.fired.add(addr)
    now = ex.time_ms
    while w.timeq and w.timeq[0][0] <= now:
        due, addr = heapq.heappop(w.timeq)
        w.entries -= 1
        acct = accounts.get(addr)
        if acct is not None and acct.watch is not None and acct.watch[4] == due:
            out.add(addr)
            w.fired.add(addr)
    for m, _rate in funding:
        fheap = w.fund.get(m, [])
        phi = ex.mstate[m].phi
        while fheap and fheap[0][0] <= phi:
            threshold, addr = heapq.heappop(fheap)
            w.entries -= 1
            acct = accounts.get(addr)
            wa = acct.watch if acct is not None else None
            if wa is not None and any(mm == m and ref + wa[2] // len(wa[3]) == threshold for mm, ref in wa[3]):
                out.add(addr)
                w.fired.add(addr)
    if w.entries > 4 * w.base + 200_000:  # stale entries pile up: compact (amortized O(1))
        w.rebuild(ex)
    return out
