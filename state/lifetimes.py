"""Order lifetimes: good-til-time orders, transactions' ``expires_after``, the dead-man switch.

Good-til-time. A ``PlaceOrder`` with ``expires_at_ms`` is good until the first block whose
time is PAST its expiry (``expires_at < block time``): the order is good through the
millisecond it names, so a block stamped exactly at the expiry can still fill it, and from
the next one it has lapsed. Placing one whose expiry is not after the current block time is
refused (``ORDER_EXPIRED``): it could at best live through the block it was placed in. IOC
orders may carry an expiry; it means nothing, they never rest. A modify keeps the expiry.

The dead-man switch (Hyperliquid's scheduleCancel). ``ScheduleCancel(time_ms)`` arms it:
at the first block whose time is at or past ``time_ms`` (``deadline <= block time``: the
deadline is the moment the account stops trusting itself, so it is due there, unlike an
order's expiry which is the last good moment) every open order and trigger order of the
account and of its isolated accounts lapses; running the switch cancels them (reason
"dead_man"; per holder by oid, orders then triggers), disarms it and emits
``DeadManFired``. Renewing moves the deadline; ``ScheduleCancel(None)`` clears it. At most
``genesis.schedule_cancel_per_day`` sets or clears per account per UTC day
(``block_time // 86_400_000``); a rejected one does not count.

The sweep is bounded. Orders cost nothing to place, so an adversary can line up any number
to lapse at one millisecond (80 accounts x 1,000 orders: one 0.4 s block when all went at
once). ``begin_block`` removes lapsed orders earliest moment first (an expiry at t counts as
t + 1, a deadline as itself; an expiry first on a tie) and stops when ``SWEEP_BUDGET``
cancellations are spent, a switch completing counting one more; a switch larger than what
is left goes on in the next block. What is left stays on the book, lapsed, until a later
block's sweep: state/lapse.py says what lapsed means and how the matching engine (removes
one it reaches, as the sweep would) and every reader of the book as liquidity skip it. A
switch that is due but not yet run must not cancel anything its account does after the
deadline, so it runs whole before any transaction of the account
(``must_run_due_switch``), and the account's trigger orders are cancelled instead of firing
(state/triggers.py). What transactions remove that way (takers reaching lapsed orders,
switches run before their account acts) comes out of a second per-block allowance,
``TX_LAPSE_BUDGET`` (``Exchange.lapse_left``): without it one order crossing the whole
backlog, or a few due accounts acting, would undo the bound. A taker that finds it spent
passes over the lapsed orders it meets (left on the book) to the good ones behind, reading
at most ``lapse.CROSS_SCAN`` resting orders, and stops there; an account whose switch it
cannot cover gets ``DEAD_MAN_PENDING`` and retries later. The account's expired orders
not yet swept go the same way before it acts (``must_clear_expired``, ``EXPIRY_PENDING``
when the allowance cannot cover them): a lapsed order is gone for its owner, never modified,
cancelled as if open, or counted in its margin. Only what changes the state counts
against either budget, never a heap entry: a node restarted mid-sweep, whose rebuilt heaps
hold no stale entries, cancels the same orders in the same blocks.

Both are found without scanning: min-heaps on the Exchange (``order_expiries`` of
(expires_at, oid, market), ``dead_men`` of (deadline, address)), derived and rebuilt by
``Exchange.load_records``. Entries are never removed when an order is cancelled or filled
or a switch renewed: a popped entry that no longer matches live state is skipped (lazy
deletion), so every mutation stays O(log n) and each entry is popped once. Stale entries
far in the future would pile up (place and cancel a year-long GTT order, again and again),
so a heap that outgrows twice its size at the last rebuild (plus ``COMPACT_SLACK``) is
rebuilt by filtering its own entries against live state: O(heap), at least half of it
pushed since the last rebuild (amortized O(1) per push; scanning every book instead would
let a thousand cheap placements buy a scan of every resting order), and invisible to the
state (the heaps are derived; a rebuild holds exactly the entries that can still act).
"""

from __future__ import annotations

import heapq
from typing import TYPE_CHECKING, Final

from state import isolated, lapse, matching, trigbook
from state.errors import Code, TxError
from state.events import DeadManFired
from state.receipts import ActionResult
from state.tx import ScheduleCancel, SignedTx

if TYPE_CHECKING:
    from state.account import Account
    from state.exchange import Exchange

DAY_MS: Final = 86_400_000
COMPACT_SLACK: Final = 1024
#: the most work one block's sweep does: orders and trigger orders cancelled, plus one per
#: dead-man switch completed (each a record written and an event). ~5 us each on the
#: reference machine (bench/lifetime_sweep.py): a sweep adds at most ~20 ms to a block
SWEEP_BUDGET: Final = 4096
#: the same for what transactions remove of lapsed orders in a block (``Exchange.lapse_left``):
#: takers that reach lapsed orders, due switches run before their account acts. Without it
#: one crossing order, or a few accounts acting, would remove the whole backlog in one block
TX_LAPSE_BUDGET: Final = 4096


def must_not_expired(tx: SignedTx, now_ms: int) -> None:
    """A transaction whose ``expires_after`` is before ``now_ms`` is refused (block or mempool)."""
    if tx.expires_after is not None and now_ms > tx.expires_after:
        raise TxError(Code.TX_EXPIRED, f"transaction expired at {tx.expires_after} ms (now {now_ms})")


def _holders(ex: Exchange, acct: Account) -> list[Account]:
    """The account and its isolated positions' accounts (state/isolated.py), by market:
    what its dead-man switch covers."""
    return [acct, *(ex.accounts[a] for _m, a in isolated.isolated_markets(ex, acct.address) if a in ex.accounts)]


def cancel_all_for(ex: Exchange, acct: Account, reason: str, limit: int | None = None) -> tuple[int, bool]:
    """Cancel the open orders of ``acct``, and its waiting trigger orders, and those of its
    isolated positions' accounts: per holder its orders by oid, then its triggers by oid; at
    most ``limit`` of them (None: all). Returns (how many, whether none is left). The one
    hook that cancels "everything of an account" (the dead-man switch); the same order of
    cancellation whatever ``limit`` and however many blocks it takes."""
    count = 0
    for holder in _holders(ex, acct):
        for ids, cancel in ((holder.open_orders, _cancel_resting), (holder.triggers, _cancel_trigger)):
            left = None if limit is None else limit - count
            if left is not None and left <= 0:
                break
            chosen = sorted(ids) if left is None or left >= len(ids) else heapq.nsmallest(left, ids)
            for oid in chosen:
                count += cancel(ex, holder, oid, reason)
    return count, not any(h.open_orders or h.triggers for h in _holders(ex, acct))


def _cancel_resting(ex: Exchange, holder: Account, oid: int, reason: str) -> int:
    market = holder.open_orders.get(oid)
    if market is None:
        return 0
    matching.cancel_order(ex, ex.books[market].orders[oid], reason)
    return 1


def _cancel_trigger(ex: Exchange, holder: Account, oid: int, reason: str) -> int:
    t = ex.triggers.get(oid)
    if t is None or t.owner != holder.address:
        return 0  # (an OCO child gone with its parent, cancelled just before)
    trigbook.cancel_trigger(ex, t, reason)
    return 1


def _fire(ex: Exchange, acct: Account, limit: int | None) -> int:
    """Run ``acct``'s due switch: cancel what it covers (at most ``limit``); once nothing is
    left, disarm it and emit ``DeadManFired``. Returns the work done (cancellations, plus
    one when it completes)."""
    assert acct.dead_man is not None
    deadline = acct.dead_man[0]
    cancelled, done = cancel_all_for(ex, acct, "dead_man", limit)
    if not done:
        return cancelled
    acct.set_dead_man([0, acct.dead_man[1], acct.dead_man[2]])
    ex.emit(DeadManFired("dead_man", acct.address, deadline, cancelled))
    return cancelled + 1


def must_run_due_switch(ex: Exchange, address: bytes) -> None:
    """Before ``address`` acts (handlers.apply_tx): a switch of its that is due but not yet
    run by the sweep runs now, whole, so that nothing the account does from here on is
    cancelled by it later. Its work (what it cancels, plus one) comes out of the block's
    ``lapse_left``; when that cannot cover it, the transaction is refused
    (``DEAD_MAN_PENDING``, nothing changed) and the account retries in a later block, after
    the sweep has taken more of its orders."""
    acct = ex.accounts.get(address)
    dm = acct.dead_man if acct is not None else None
    if acct is None or dm is None or not 0 < dm[0] <= ex.time_ms:
        return
    work = 1 + sum(len(h.open_orders) + len(h.triggers) for h in _holders(ex, acct))
    if work > ex.lapse_left:
        raise TxError(Code.DEAD_MAN_PENDING,
                      f"the account's dead-man switch (deadline {dm[0]}) is due and still has {work - 1} "
                      "orders to cancel, more than this block can take: retry in a later block")
    ex.lapse_left -= work
    _fire(ex, acct, None)


def clear_expired(ex: Exchange, holders: list[Account]) -> bool:
    """Remove the expired orders of ``holders`` that the sweep has not taken yet (reason
    "expired", by holder then oid), each one from the block's ``lapse_left``. When that
    cannot cover them all, nothing is removed and the answer is False. An expired order
    must not count in its owner's margin (state/risk.py counts every open order at its
    worst case), lock its balance, or be modified or cancelled as if it were open; removing
    them before the account's margin is judged keeps that exact at no cost to the margin
    code. The work is bounded: how many have expired is known in O(1) from the account's
    orders by expiry (``Account.expiries``; a refusal reads nothing else), and what is
    removed is paid from the block's allowance, as a taker's removals are."""
    n = sum(lapse.expired_count(ex, h) for h in holders)
    if not n:
        return True
    if n > ex.lapse_left:
        return False
    ex.lapse_left -= n
    for o in [o for h in holders for o in lapse.expired_of(ex, h)]:
        matching.cancel_order(ex, o, "expired")
    return True


def must_clear_expired(ex: Exchange, address: bytes) -> None:
    """Before ``address`` acts (handlers.apply_tx), after its due switch: ``clear_expired``
    of the account and its isolated accounts. When the block's allowance cannot cover them
    the transaction is refused (``EXPIRY_PENDING``, nothing changed) and the account retries
    in a later block, as with ``DEAD_MAN_PENDING``."""
    acct = ex.accounts.get(address)
    if acct is None:
        return
    holders = _holders(ex, acct) if ex.subs else [acct]
    if not clear_expired(ex, holders):
        raise TxError(Code.EXPIRY_PENDING,
                      "the account holds more expired orders not yet swept than this block can remove: "
                      "retry in a later block")


def _next_expiry(ex: Exchange, now: int) -> tuple[int, int, int] | None:
    """The earliest live expired good-til-time entry, stale ones before it dropped."""
    heap = ex.order_expiries
    while heap and heap[0][0] < now:
        top = heap[0]
        order = ex.books[top[2]].orders.get(top[1])
        if order is not None and order.expires_at == top[0]:
            return top
        heapq.heappop(heap)
    return None


def _next_switch(ex: Exchange, now: int) -> tuple[int, bytes] | None:
    """The earliest due armed switch, stale entries (renewed, cleared, fired) before it dropped."""
    heap = ex.dead_men
    while heap and heap[0][0] <= now:
        top = heap[0]
        acct = ex.accounts.get(top[1])
        if acct is not None and acct.dead_man is not None and acct.dead_man[0] == top[0]:
            return top
        heapq.heappop(heap)
    return None


def begin_block(ex: Exchange) -> None:
    """After the clock has moved to the block time, before any transaction: expire
    good-til-time orders and run due dead-man switches, earliest moment first (an order
    expiring at t goes at t + 1, a switch at its deadline; an expiry first on a tie), until
    ``SWEEP_BUDGET`` is spent. What is left lapses on the book (state/lapse.py) and goes in
    the next blocks."""
    now = ex.time_ms
    ex.lapse_left = TX_LAPSE_BUDGET
    spent = 0
    while spent < SWEEP_BUDGET:
        expiry = _next_expiry(ex, now)
        switch = _next_switch(ex, now)
        if expiry is None and switch is None:
            break
        if switch is None or (expiry is not None and expiry[0] < switch[0]):
            assert expiry is not None
            heapq.heappop(ex.order_expiries)
            matching.cancel_order(ex, ex.books[expiry[2]].orders[expiry[1]], "expired")
            spent += 1
            continue
        acct = ex.accounts[switch[1]]
        spent += _fire(ex, acct, SWEEP_BUDGET - spent)
        if acct.dead_man is not None and acct.dead_man[0] == switch[0]:
            break  # the budget ran out inside it: it goes on in the next block
        heapq.heappop(ex.dead_men)
    _maybe_compact(ex)


def _maybe_compact(ex: Exchange) -> None:
    """Drop the stale entries of a heap grown past its bound (see the module doc). The
    heap's own entries are filtered, never the books or the accounts: the work is the heap's
    size, at least half of it pushed since the last rebuild, so an adversary cannot make it
    scan every resting order each block with a few cheap placements."""
    heap = ex.order_expiries
    if len(heap) > ex.lifetime_heap_bounds[0]:
        books = ex.books
        live: list[tuple[int, int, int]] = []
        for e in heap:
            order = books[e[2]].orders.get(e[1])
            if order is not None and order.expires_at == e[0]:
                live.append(e)
        heapq.heapify(live)
        ex.order_expiries = live
        ex.lifetime_heap_bounds[0] = 2 * len(live) + COMPACT_SLACK
    dead = ex.dead_men
    if len(dead) > ex.lifetime_heap_bounds[1]:
        accounts = ex.accounts
        armed: set[tuple[int, bytes]] = set()  # (a switch set twice to one deadline: one entry)
        for d in dead:
            acct = accounts.get(d[1])
            if acct is not None and acct.dead_man is not None and acct.dead_man[0] == d[0]:
                armed.add(d)
        ex.dead_men = sorted(armed)  # (sorted: a heap)
        ex.lifetime_heap_bounds[1] = 2 * len(armed) + COMPACT_SLACK


def handle_schedule_cancel(ex: Exchange, signer: bytes, pubkey: bytes, a: ScheduleCancel) -> ActionResult:
    """Set, renew or clear the signer's dead-man switch (checks first, then mutates)."""
    now = ex.time_ms
    if a.time_ms is not None and a.time_ms < now + ex.genesis.schedule_cancel_min_ms:
        raise TxError(Code.SCHEDULE_CANCEL_TOO_SOON,
                      f"the deadline must be at least {ex.genesis.schedule_cancel_min_ms} ms after the block time {now}")
    day = now // DAY_MS
    acct = ex.accounts.get(signer)
    state = acct.dead_man if acct is not None else None
    used = state[2] if state is not None and state[1] == day else 0
    limit = ex.genesis.schedule_cancel_per_day
    if used >= limit:
        raise TxError(Code.SCHEDULE_CANCEL_LIMIT, f"at most {limit} dead-man switch changes per UTC day")
    acct = ex.account(signer)
    deadline = a.time_ms or 0
    acct.set_dead_man([deadline, day, used + 1])
    if deadline:
        heapq.heappush(ex.dead_men, (deadline, signer))
    return ActionResult(Code.OK, status="ok", message=f"dead-man switch at {deadline}" if deadline else "dead-man switch cleared")


def dead_man_view(ex: Exchange, acct: Account | None) -> dict[str, int | None]:
    """The switch as the account view shows it: deadline (None = unset), changes used today, limit."""
    state = acct.dead_man if acct is not None else None
    day = ex.time_ms // DAY_MS
    return {
        "deadline_ms": state[0] if state is not None and state[0] else None,
        "used_today": state[2] if state is not None and state[1] == day else 0,
        "per_day_limit": ex.genesis.schedule_cancel_per_day,
    }
