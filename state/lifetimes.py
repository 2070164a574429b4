"""Order lifetimes: good-til-time orders, transactions' ``expires_after``, the dead-man switch.

Good-til-time. A ``PlaceOrder`` with ``expires_at_ms`` rests until the first block whose
time is PAST its expiry (``expires_at < block time``): the order is good through the
millisecond it names, so a block stamped exactly at the expiry can still fill it, and the
next one removes it (Cancelled, reason "expired") at ``begin_block``, before any
transaction. Placing one whose expiry is not after the current block time is refused
(``ORDER_EXPIRED``): it could at best live through the block it was placed in. IOC orders
may carry an expiry; it means nothing, they never rest. A modify keeps the expiry.

The dead-man switch (Hyperliquid's scheduleCancel). ``ScheduleCancel(time_ms)`` arms it:
at the first block whose time is at or past ``time_ms`` (``deadline <= block time``: the
deadline is the moment the account stops trusting itself, so it fires there, unlike an
order's expiry which is the last good moment) every open order of the account is
cancelled (reason "dead_man", by oid) and a ``DeadManFired`` event is emitted. Renewing
moves the deadline; ``ScheduleCancel(None)`` clears it. At most
``genesis.schedule_cancel_per_day`` sets or clears per account per UTC day
(``block_time // 86_400_000``); a rejected one does not count.

Both are found without scanning: min-heaps on the Exchange (``order_expiries`` of
(expires_at, oid, market), ``dead_men`` of (deadline, address)), derived and rebuilt by
``Exchange.load_records``. Entries are never removed when an order is cancelled or filled
or a switch renewed: a popped entry that no longer matches live state is skipped (lazy
deletion), so every mutation stays O(log n) and each entry is popped once. Stale entries
far in the future would pile up (place and cancel a year-long GTT order, again and again),
so a heap that outgrows twice its size at the last rebuild (plus ``COMPACT_SLACK``) is
rebuilt from the live orders / armed switches: amortized O(1) per push, and invisible to
the state (the heaps are derived; a rebuild holds exactly the entries that can still act).
"""

from __future__ import annotations

import heapq
from typing import TYPE_CHECKING, Final

from state import isolated, matching, trigbook
from state.errors import Code, TxError
from state.events import DeadManFired
from state.receipts import ActionResult
from state.tx import ScheduleCancel, SignedTx

if TYPE_CHECKING:
    from state.account import Account
    from state.exchange import Exchange

DAY_MS: Final = 86_400_000
COMPACT_SLACK: Final = 1024


def must_not_expired(tx: SignedTx, now_ms: int) -> None:
    """A transaction whose ``expires_after`` is before ``now_ms`` is refused (block or mempool)."""
    if tx.expires_after is not None and now_ms > tx.expires_after:
        raise TxError(Code.TX_EXPIRED, f"transaction expired at {tx.expires_after} ms (now {now_ms})")


def cancel_all_for(ex: Exchange, acct: Account, reason: str) -> int:
    """Cancel every open order of ``acct`` now, by oid, and its waiting trigger orders, and
    those of its isolated positions' accounts (state/isolated.py); returns how many. The one
    hook that cancels "everything of an account" (the dead-man switch)."""
    count = 0
    for holder in [acct, *(ex.accounts[a] for _m, a in isolated.isolated_markets(ex, acct.address)
                           if a in ex.accounts)]:
        oids = sorted(holder.open_orders)
        for oid in oids:
            matching.cancel_order(ex, ex.books[holder.open_orders[oid]].orders[oid], reason)
        count += len(oids) + trigbook.cancel_account_triggers(ex, holder, reason)
    return count


def begin_block(ex: Exchange) -> None:
    """After the clock has moved to the block time, before any transaction: expire
    good-til-time orders, then fire due dead-man switches."""
    now = ex.time_ms
    heap = ex.order_expiries
    while heap and heap[0][0] < now:
        expires_at, oid, market = heapq.heappop(heap)
        order = ex.books[market].orders.get(oid)
        if order is not None and order.expires_at == expires_at:
            matching.cancel_order(ex, order, "expired")
    dead = ex.dead_men
    while dead and dead[0][0] <= now:
        deadline, address = heapq.heappop(dead)
        acct = ex.accounts.get(address)
        if acct is None or acct.dead_man is None or acct.dead_man[0] != deadline:
            continue  # renewed, cleared or already fired: a stale entry
        cancelled = cancel_all_for(ex, acct, "dead_man")
        acct.set_dead_man([0, acct.dead_man[1], acct.dead_man[2]])
        ex.emit(DeadManFired("dead_man", address, deadline, cancelled))
    _maybe_compact(ex)


def _maybe_compact(ex: Exchange) -> None:
    """Drop the stale entries of a heap grown past its bound (see the module doc)."""
    if len(ex.order_expiries) > ex.lifetime_heap_bounds[0]:
        live = [(o.expires_at, o.oid, o.market) for m in sorted(ex.books)
                for o in ex.books[m].orders.values() if o.expires_at]
        heapq.heapify(live)
        ex.order_expiries = live
        ex.lifetime_heap_bounds[0] = 2 * len(live) + COMPACT_SLACK
    if len(ex.dead_men) > ex.lifetime_heap_bounds[1]:
        armed = [(a.dead_man[0], addr) for addr, a in sorted(ex.accounts.items())
                 if a.dead_man is not None and a.dead_man[0]]
        heapq.heapify(armed)
        ex.dead_men = armed
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
