"""Liquidation: the block-end scan and its steps; lenders lose only what is left once the
insurance fund is exhausted and every ADL counterparty has been used.

The scan (``run``, the last per-block step) checks the accounts state/watch.py names: first
every candidate is assessed (nothing changes), then each one below maintenance is
liquidated in address order; accounts that those liquidations changed (makers, ADL
counterparties) are assessed in a next round, until a round liquidates nobody new; then
the insurance fund unwinds (``unwind_fund``) and the makers it traded with get the same
rounds. Every checked account is re-armed. An account is liquidated at most once a block.

Steps for an account whose equity is below its maintenance requirement:

1. Its open orders are cancelled.
2. Partial liquidation through the book, unless equity is already below the backstop
   threshold (``backstop_ppm`` of maintenance) or not positive: the account's legs (perp
   positions and spot balances) are unwound in the order it chose with ``set_unwind_order``,
   then the rest by risk contribution, largest first. Safety bound: a leg is only unwound if
   doing so lowers the maintenance requirement (a hedge leg is not sold out from under its
   hedge). Each leg trades as an IOC order of at most ``fraction_ppm`` of the leg (the whole
   leg below ``min_notional``), limited by the leg's bankruptcy price (the price at which
   unwinding the whole leg would take equity to zero), paying the taker fee plus the
   liquidation fee (``fee_ppm``) to the insurance fund. It stops as soon as the account is
   back above maintenance.
3. Backstop: if equity is (still) below the backstop threshold, its perps are settled; if
   the fund could not absorb the account's deficit plus the worst that selling everything
   inside the protocol band can realize (``band_cost``), its perps are first
   auto-deleveraged against opposite positions, ranked by
   ``unrealized PnL / entry notional * notional / equity`` (profit x leverage), highest
   first (each holder scored once per scan and again after an ADL trades with it:
   ``AdlQueues``), at bankruptcy prices that spread the deficit over the positions by notional.
   Then every remaining leg is traded into the book, whole, at the best prices inside the
   protocol band (``band_limit``: the mark or index moved by the maintenance shock S_MM).
   The insurance fund takes what is left (the remainder, debts, legs the book could not
   take) at the bankruptcy price: the account ends with nothing.
4. At the end of the scan the fund unwinds what it holds the same way, inside the band,
   even when that realizes a loss for it (its equity does not bound it: the fund is the
   last resort and its loss is its own); then, if it is below maintenance, its perps are
   auto-deleveraged. Only a fund left with negative equity and no perp, once it has taken
   the block's rounding dust (its own, swept to it at the block's end otherwise), has its
   debt written off against the owed asset's suppliers, pro rata, for exactly that
   shortfall, announced as a ``Socialized`` event (asset, amount, supply before). The
   fund is seeded at genesis (``insurance_fund``) and refilled by liquidation fees,
   backstop remainders and rounding dust.

An account with no position never absorbs a loss while the fund has equity (ADL only
meets opposite positions), and no account but the fund is left with negative equity.
"""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING, Final

from state import matching, trigbook, watch
from state.book import Order
from state.errors import Code, TxError
from state.events import (
    Backstopped,
    Deleveraged,
    FundDeleveraged,
    LiquidationStarted,
    LiquidationTrade,
    Socialized,
)
from state.funding import remove_position, settle_position, trade_position
from state.muldiv import div_one
from state.receipts import ActionResult
from state.risk import Assessment, assess, asset_price, fee, maintenance, perp_price, value_of
from state.tx import SetUnwindOrder, Tif
from state.units import PPM

if TYPE_CHECKING:
    from state.account import Account
    from state.exchange import Exchange

ROUNDING_HEADROOM: Final = 16  # smallest units an ADL leaves a counterparty for the trade's own rounding

Leg = tuple[int, bool, int, int]  # (market, is_buy, lots, |notional at price|)


def handle_set_unwind_order(ex: Exchange, signer: bytes, pubkey: bytes, a: SetUnwindOrder) -> ActionResult:
    for m in a.markets:
        ex.market(m)
    if len(set(a.markets)) != len(a.markets):
        raise TxError(Code.MALFORMED, "a market appears twice in the unwind order")
    acct = ex.account(signer)
    acct.set_unwind(tuple(a.markets))
    return ActionResult(Code.OK, status="ok")


# ---------------------------------------------------------------------------------- the scan
def run(ex: Exchange, funding: list[tuple[int, int]]) -> None:
    done: set[bytes] = set()
    queues = AdlQueues()
    _rounds(ex, watch.collect(ex, funding), done, queues)
    fund = ex.accounts.get(ex.insurance_account)
    if fund is not None and (fund.has_liabilities() or any(a != ex.collateral_asset for a in fund.scaled)):
        ex.tracker.take_scan()
        unwind_fund(ex, fund, queues)
        touched = ex.tracker.take_scan()  # makers the fund traded with
        if ex.watch.force_all:  # a socialized loss lowered every supplier's balance: check them all now
            ex.watch.force_all = False
            touched |= {a for a, acct in ex.accounts.items() if acct.watch is not None}
        _rounds(ex, touched, done, queues)
    for addr in sorted(done):
        acct = ex.accounts.get(addr)
        if acct is not None:
            watch.arm(ex, acct, maintenance(ex, acct, detail=True))


def _rounds(ex: Exchange, batch: set[bytes], done: set[bytes], queues: AdlQueues) -> None:
    """Assess ``batch``; liquidate the unhealthy in address order; repeat with the accounts
    those liquidations changed (makers they filled, ADL counterparties). Each account is
    liquidated at most once per block, so this ends."""
    special = {ex.fee_account, ex.insurance_account}
    while batch:
        unhealthy = []
        for addr in sorted(batch):
            acct = ex.accounts.get(addr)
            if acct is None or addr in special or addr in done:
                continue
            mm = maintenance(ex, acct, detail=True)
            if mm.liabilities and mm.equity < mm.requirement:
                unhealthy.append(addr)
            else:
                watch.arm(ex, acct, mm)
        if not unhealthy:
            return
        ex.tracker.take_scan()
        for addr in unhealthy:
            acct = ex.accounts.get(addr)
            if acct is not None:
                liquidate(ex, acct, queues)
            done.add(addr)
        batch = ex.tracker.take_scan()  # makers filled by the liquidations, ADL counterparties


def liquidate(ex: Exchange, acct: Account, queues: AdlQueues | None = None) -> None:
    mm = maintenance(ex, acct, detail=True)
    if not (mm.liabilities and mm.equity < mm.requirement):
        return
    addr = acct.address
    ex.emit(LiquidationStarted("liquidation", addr, "start", mm.equity, mm.requirement))
    for oid in sorted(acct.open_orders):
        matching.cancel_order(ex, ex.books[acct.open_orders[oid]].orders[oid], "liquidation")
    if acct.triggers:  # its stops and take-profits go with its orders (state/triggers.py)
        trigbook.cancel_account_triggers(ex, acct, "liquidation")
    risk = ex.genesis.risk
    if not _deep(mm, risk.backstop_ppm):
        mm = _unwind_through_book(ex, acct, mm)
    if mm.liabilities and mm.equity < mm.requirement and _deep(mm, risk.backstop_ppm):
        backstop(ex, acct, queues)


def _deep(mm: Assessment, backstop_ppm: int) -> bool:
    return mm.equity <= 0 or mm.equity * PPM < backstop_ppm * mm.requirement


# ---------------------------------------------------------------------------------- step 2
def _legs(ex: Exchange, acct: Account) -> list[Leg]:
    """The account's unwindable legs in liquidation order: its own order, then by risk
    contribution (|notional| x the leg's maintenance rate), largest first."""
    risk = ex.genesis.risk
    legs: dict[int, tuple[Leg, int]] = {}
    for m, pos in acct.positions.items():
        if pos.size:
            spec = ex.markets[m]
            px = perp_price(ex, m)
            n = abs(value_of(pos.size * spec.lot_size, px, ex.unit[spec.base]))
            legs[m] = ((m, pos.size < 0, abs(pos.size), n), n * risk.assets[spec.base].shock_mm_ppm)
    for a in sorted(set(acct.scaled) | set(acct.idle)):
        if a == ex.collateral_asset:
            continue
        spots = [m for m in ex.markets_of_asset.get(a, ()) if not ex.markets[m].is_derivative]
        bal = acct.balance(a)
        if not spots or not bal:
            continue
        m = next((x for x in acct.unwind if x in spots), spots[0])
        spec = ex.markets[m]
        lots = bal // spec.lot_size if bal > 0 else -(bal // spec.lot_size)
        if lots == 0:
            continue
        n = abs(value_of(lots * spec.lot_size, asset_price(ex, a), ex.unit[a]))
        cut = PPM - risk.assets[a].haircut_mm_ppm
        legs[m] = ((m, bal < 0, lots, n), n * cut)
    chosen = [legs[m][0] for m in acct.unwind if m in legs]
    rest = sorted((m for m in legs if m not in acct.unwind), key=lambda m: (-legs[m][1], m))
    return chosen + [legs[m][0] for m in rest]


def _unwind_through_book(ex: Exchange, acct: Account, mm: Assessment) -> Assessment:
    risk = ex.genesis.risk
    for m, is_buy, lots, notional in _legs(ex, acct):
        if mm.equity >= mm.requirement or _deep(mm, risk.backstop_ppm):
            break
        spec = ex.markets[m]
        chunk = lots if notional <= risk.liq_min_notional else max(1, lots * risk.liq_fraction_ppm // PPM)
        chunk_notional = notional * chunk // lots
        if assess(ex, acct, False, fill=(m, is_buy, chunk, chunk_notional)).requirement >= mm.requirement:
            continue  # safety bound: unwinding this leg alone would not lower the risk
        # bankruptcy price of the whole leg: unwinding it all there leaves equity zero
        units = lots * spec.lot_size
        px = notional * ex.unit[spec.base] // units
        room = mm.equity * ex.unit[spec.base] // units
        if is_buy:
            limit = (px + room) // spec.tick_size
        else:
            limit = max(1, -(-(px - room) // spec.tick_size))
        if limit <= 0 or limit > spec.max_price_ticks:
            continue
        book = ex.books[m]
        if not book.crosses(is_buy, limit):
            continue
        order = Order(ex.next_order_id(), ex.next_seq(), m, acct.address, is_buy, limit, chunk, chunk,
                      int(Tif.IOC), spec.is_derivative, None)
        fills = matching._match(ex, acct, spec, order, risk.liq_fee_ppm)
        filled = chunk - order.size
        ex.emit(LiquidationTrade("liquidation", acct.address, "book", m, is_buy, filled, limit))
        if fills:
            mm = maintenance(ex, acct, detail=True)
    return mm


def band_limit(ex: Exchange, m: int, is_buy: bool) -> int:
    """The protocol band for a forced trade: the leg's valuation price (a perp's mark, a
    spot asset's index) moved by the asset's maintenance shock S_MM, in ticks (0: no price).

    The backstop and the insurance fund trade at the best prices the book offers inside
    this band, whatever that realizes for the fund: the fund is the last resort and its loss
    is its own. Its own equity does not bound the price (an equity bound at or near zero
    would stop the fund from ever selling, and the loss would then grow with every further
    drop and be written off against lenders). S_MM is the move the maintenance requirement
    already prices in, so a fill inside the band realizes no more than the margin priced."""
    spec = ex.markets[m]
    px = perp_price(ex, m) if spec.is_derivative else asset_price(ex, spec.base)
    if px <= 0:
        return 0
    dist = px * ex.genesis.risk.assets[spec.base].shock_mm_ppm // PPM
    limit = (px + dist) // spec.tick_size if is_buy else max(1, -(-(px - dist) // spec.tick_size))
    return min(limit, spec.max_price_ticks)


def band_cost(ex: Exchange, acct: Account) -> int:
    """The most that unwinding every leg of ``acct`` inside the protocol band can realize
    below its valuation: per leg, the maintenance shock of its notional plus the taker fee."""
    risk = ex.genesis.risk
    cost = 0
    for m, _is_buy, _lots, notional in _legs(ex, acct):
        shock = risk.assets[ex.markets[m].base].shock_mm_ppm
        cost += -(-notional * shock // PPM) + fee(notional, ex.genesis.taker_fee_ppm)
    return cost


def _unwind_in_band(ex: Exchange, acct: Account, stage: str, fee_ppm: int) -> None:
    """Trade every leg of ``acct`` (whole) into the book within the protocol band
    (``band_limit``); what the book cannot take inside the band stays."""
    for m, is_buy, lots, _notional in _legs(ex, acct):
        spec = ex.markets[m]
        limit = band_limit(ex, m, is_buy)
        if limit <= 0 or not ex.books[m].crosses(is_buy, limit):
            continue
        order = Order(ex.next_order_id(), ex.next_seq(), m, acct.address, is_buy, limit, lots, lots,
                      int(Tif.IOC), spec.is_derivative, None)
        matching._match(ex, acct, spec, order, fee_ppm)
        ex.emit(LiquidationTrade("liquidation", acct.address, stage, m, is_buy, lots - order.size, limit))


def unwind_fund(ex: Exchange, fund: Account, queues: AdlQueues | None = None) -> None:
    """The insurance fund flattens what backstops gave it, every block, through the book:
    each leg whole, as an IOC at the best prices inside the protocol band (``band_limit``),
    even when that realizes a loss for the fund (its equity, even zero or negative, never
    stops it: waiting only lets a falling market grow the loss that lenders would end up
    paying). What the book cannot take inside the band waits for the next block. If the
    fund's equity is then below its maintenance requirement, its perps are auto-deleveraged
    (at the mark while its equity is positive, at its bankruptcy prices otherwise). A fund
    left with negative equity first takes the pools' rounding dust (``Exchange.sweep_dust``:
    the block's dust is the fund's, credited to it at the block's end anyway); only what is
    still negative then haircuts lenders (``socialize``), for exactly that shortfall."""
    _unwind_in_band(ex, fund, "fund_unwind", 0)
    mm = maintenance(ex, fund)
    if mm.equity < mm.requirement and any(p.size for p in fund.positions.values()):
        auto_deleverage(ex, fund, max(0, -mm.equity), queues)
        ex.emit(FundDeleveraged("liquidation", fund.address, "fund_adl", mm.equity))
    if assess(ex, fund, False).equity < 0:
        # the block's rounding dust, which the end of the block would credit to the fund, is
        # the fund's own money: it pays toward the loss before any lender does
        ex.sweep_dust()
        after = assess(ex, fund, False)
        if after.equity < 0:
            socialize(ex, fund, -after.equity)


# ---------------------------------------------------------------------------------- steps 3 and 4
def backstop(ex: Exchange, acct: Account, queues: AdlQueues | None = None) -> None:
    """The account's perps are settled. If the fund could not absorb the worst the book
    can do to what is left (its deficit plus ``band_cost``), the perps are first
    auto-deleveraged: profitable opposite positions pay the deficit, at bankruptcy prices,
    and the spread of a forced sale is not incurred at all (ADL closes at the mark). Whatever
    is left (balances, perps nobody was opposite) is traded into the book within the
    protocol band, at the best prices available, so the fund does not inherit a position a
    falling market keeps eating; the fund then takes the remainder (equity, debts, and any
    leg the book could not take) at the bankruptcy price."""
    fund = ex.account(ex.insurance_account)
    for m in sorted(acct.positions):
        settle_position(ex, acct, m)
    mm = maintenance(ex, acct)
    fund_equity = assess(ex, fund, False).equity
    if fund_equity + mm.equity < band_cost(ex, acct) and any(p.size for p in acct.positions.values()):
        auto_deleverage(ex, acct, max(0, -mm.equity), queues)
    _unwind_in_band(ex, acct, "backstop_book", 0)
    remainder = maintenance(ex, acct).equity
    transfer_all(ex, acct, fund)
    ex.emit(Backstopped("liquidation", acct.address, "backstop", remainder))
    # a fund left below zero is dealt with by ``unwind_fund`` at the end of the scan: its
    # perps are deleveraged first, lenders are haircut only for what remains


def transfer_all(ex: Exchange, src: Account, dst: Account) -> None:
    """Move every position (at its entry notional) and balance of ``src`` to ``dst``."""
    for m in sorted(src.positions):
        if not src.positions[m].size:
            continue
        settle_position(ex, src, m)
        moved = remove_position(ex, src, m)
        trade_position(ex, dst, m, moved.size, moved.entry_notional)
    for a in sorted(set(src.scaled) | set(src.idle)):
        ex.pools.move_idle_to_pool(src, a)  # idle funds repay a debt first: one part left
        amount = src.balance(a)
        src.credit(a, -amount)
        dst.credit(a, amount)
    ex.touch(src)
    ex.touch(dst)


def _adl_score(ex: Exchange, acct: Account, m: int) -> tuple[int, int]:
    """(rank group, score): profitable positions first, by profit% x leverage."""
    pos = acct.positions[m]
    spec = ex.markets[m]
    v = value_of(pos.size * spec.lot_size, perp_price(ex, m), ex.unit[spec.base])
    upnl = v - pos.signed_entry()
    if upnl <= 0 or pos.entry_notional == 0:
        return 1, 0
    equity = maintenance(ex, acct).equity
    if equity <= 0:
        return 1, 0
    return 0, upnl * abs(v) * 10**12 // (pos.entry_notional * equity)


class AdlQueues:
    """The ADL rankings of one liquidation scan: per market and side, the opposite holders
    sorted by ``_adl_score``, each scored once and again only after ADL used it.

    Why: ranking by live scores assessed every opposite holder for every bankrupt account,
    O(bankrupt x holders) portfolio assessments in one block: 400 of each took 0.8 s, and
    an adversary with a few thousand cheap accounts on each side could stall the chain for
    minutes. A holder's score here is the one it had when it joined the queue (the scan's
    first ADL on that market and side, or its first ADL after it opened the position),
    updated whenever an ADL trades with it; holders that closed or turned are skipped."""

    __slots__ = ("_keys", "_order")

    def __init__(self) -> None:
        self._order: dict[tuple[int, int], list[tuple[int, int, bytes]]] = {}  # (market, side) -> sorted keys
        self._keys: dict[tuple[int, int], dict[bytes, tuple[int, int, bytes]]] = {}  # -> holder -> its key

    def ranked(self, ex: Exchange, m: int, side: int) -> list[tuple[int, int, bytes]]:
        """The queue of ``position_sides[m][side]``, best counterparty first (may hold
        addresses no longer on that side: the caller checks)."""
        order = self._order.setdefault((m, side), [])
        keys = self._keys.setdefault((m, side), {})
        for addr in sorted(ex.position_sides[m][side] - keys.keys()):
            key = _rank_key(ex, addr, m)
            keys[addr] = key
            bisect.insort(order, key)
        return order

    def rescore(self, ex: Exchange, m: int, side: int, addr: bytes) -> None:
        """``addr`` traded in an ADL: its place in the queue moves with its new score."""
        order, keys = self._order[(m, side)], self._keys[(m, side)]
        old = keys.pop(addr)
        del order[bisect.bisect_left(order, old)]
        if addr in ex.position_sides[m][side]:
            key = keys[addr] = _rank_key(ex, addr, m)
            bisect.insort(order, key)


def _rank_key(ex: Exchange, addr: bytes, m: int) -> tuple[int, int, bytes]:
    group, score = _adl_score(ex, ex.accounts[addr], m)
    return group, -score, addr


def auto_deleverage(ex: Exchange, acct: Account, deficit: int, queues: AdlQueues | None = None) -> None:
    """Close ``acct``'s perps against ranked opposite positions at bankruptcy prices that
    spread ``deficit`` over its positions by notional. Each counterparty closes its lots at
    the mark plus its share of the deficit, but never more than its own equity: ADL can
    take a counterparty's profit, never push it below zero. A deficit nobody could take
    stays with ``acct`` (the fund then takes it; lenders only after the fund). ``queues``:
    the scan's rankings (``AdlQueues``; a fresh one ranks by the scores now)."""
    if queues is None:
        queues = AdlQueues()
    fund = ex.insurance_account
    perps = sorted(m for m, p in acct.positions.items() if p.size)
    values = {}
    for m in perps:
        spec = ex.markets[m]
        values[m] = value_of(acct.positions[m].size * spec.lot_size, perp_price(ex, m), ex.unit[spec.base])
    total = sum(abs(v) for v in values.values()) or 1
    if deficit:
        deficit += len(perps) + 1  # covers the per-position rounding: the account ends >= 0
    left = deficit
    for i, m in enumerate(perps):
        share = left if i == len(perps) - 1 else min(left, -(-deficit * abs(values[m]) // total))
        left -= share
        z = acct.positions[m].size
        fair = abs(values[m])  # the whole position at the mark
        side = 1 if z > 0 else 0
        opposite = ex.position_sides[m][side]
        lots_left, fair_left, owed = abs(z), fair, share
        used: list[bytes] = []
        for _group, _score, cp_addr in queues.ranked(ex, m, side):
            if not lots_left:
                break
            if cp_addr not in opposite or cp_addr in (acct.address, fund):
                continue  # closed or turned since it was ranked; or the account itself, or the fund
            used.append(cp_addr)
            cp = ex.accounts[cp_addr]
            q = min(lots_left, abs(cp.positions[m].size))
            fair_q = fair_left if q == lots_left else fair * q // abs(z)
            want = owed if q == lots_left else owed * q // lots_left
            extra = max(0, min(want, maintenance(ex, cp).equity - ROUNDING_HEADROOM))
            # the bankrupt long sells above the mark, the bankrupt short buys back below it
            chunk = fair_q + extra if z > 0 else max(fair_q - extra, 0)
            _adl_trade(ex, acct, cp, m, q if z < 0 else -q, chunk)
            ex.emit(Deleveraged("adl", m, acct.address, cp_addr, q, chunk))
            lots_left -= q
            fair_left -= fair_q
            owed -= extra
        for cp_addr in used:  # after the walk: the queue is not changed under it
            queues.rescore(ex, m, side, cp_addr)
        left += owed  # what no counterparty could take moves on to the next market
        if lots_left and acct.address != fund:  # nothing left to meet: the fund takes the rest
            _adl_trade(ex, acct, ex.account(fund), m, lots_left if z < 0 else -lots_left, fair_left)


def _adl_trade(ex: Exchange, src: Account, cp: Account, m: int, delta: int, notional: int) -> None:
    """``src`` trades ``delta`` lots (signed) with ``cp`` taking the other side, for ``notional``."""
    for acct, d in ((src, delta), (cp, -delta)):
        trade_position(ex, acct, m, d, notional)


def socialize(ex: Exchange, fund: Account, shortfall: int) -> None:
    """Last resort: write off ``shortfall`` (collateral units) of the fund's debts, taken
    from the owed asset's suppliers, pro rata, by lowering its supply index.

    Exactness: the fund keeps the largest debt whose value (rounded up, as every debt is)
    does not exceed ``debt - write_off``, i.e. ``floor((debt - write_off) * 1e18 / Ib)``
    shares: its debt falls by exactly ``write_off`` (an index step larger than one unit per
    share could make it one unit more, never less), so its equity ends at zero, not below.
    Suppliers lose what the pool's debt fell by (the amount in the event), the index drop
    rounded up: ``pool_surplus`` cannot go negative (the sub-unit excess is rounding dust the
    block sweeps to the fund). The event says what each supplier's loss is relative to:
    ``("socialized", asset, amount, supply_before)``."""
    for a in sorted(fund.scaled):
        if shortfall <= 0:
            break
        s = fund.scaled[a]
        if s >= 0:
            continue
        pool = ex.pools[a]
        debt = ex.pools.debt(fund, a)
        px = asset_price(ex, a) if a != ex.collateral_asset else ex.unit[a]
        debt_value = value_of(debt, px, ex.unit[a]) if px else 0
        write_off = debt if debt_value <= shortfall or not debt_value else -(-shortfall * debt // debt_value)
        write_off = min(write_off, debt)
        # Suppliers can absorb at most what they hold: a pool's supply can be below its debt
        # (past full utilization its lenders receive the interest less the reserve's share,
        # state/lending.py), and a write-off beyond the supply would floor the index at 1 and
        # owe the rest to nobody (pool surplus < 0: idle holders then lose by withdrawal
        # order). The rest stays the fund's debt, backed by the fund's future income. (One
        # unit of slack: the pool's debt may fall by one unit more than ``write_off``.)
        write_off = min(write_off, max(pool.supply_value() - 1, 0))
        if write_off <= 0:
            continue
        keep = div_one(debt - write_off, pool.borrow_index)  # debt shares left: value <= debt - write_off
        keep = min(keep, -s)
        supply_before = pool.supply_value()
        amount = ex.pools.write_off_debt(fund, a, -s - keep)
        ex.touch(fund)  # (also when no share was left to cancel: the record is rewritten as before)
        ex.emit(Socialized("socialized", a, amount, supply_before))
        shortfall -= debt_value if debt_value <= shortfall else shortfall
    ex.watch.force_all = True
