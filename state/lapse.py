"""Whether a resting order has lapsed, and the book's depth without lapsed orders.

An order lapses at the first block time past its good-til-time expiry (``expires_at <
time``), or when the dead-man switch of its owner (of the owner's master, for an isolated
account) is due (``0 < deadline <= time``). Lapsed orders are removed by the bounded sweep
of state/lifetimes.py, at most ``SWEEP_BUDGET`` a block, so one can stay on the book for
some blocks; until then nothing may treat it as liquidity. The matching engine removes one
it reaches (``Cancelled``, reason "expired" or "dead_man", as the sweep would) while the
block's allowance lasts and passes over it after (state/matching.py), the risk
code's closing walk passes over it, and the depth readers (the mark's and funding's impact
prices, the /info and websocket books) count what ``level_depth`` counts.

Keeping that cheap: each price level keeps ``floor``, a lower bound on the expiries of its
good-til-time orders (``NO_EXPIRY`` when it has none). A level whose floor is not past the
block time holds no expired order, so while no dead-man switch is due its aggregates
(``total``, ``firm``) are exact and read in O(1), as before. Otherwise the level's heap of
expiries (``Level.by_expiry``: per-expiry sums, state/byexpiry.py) moves the orders of
each expiry that has passed, once, into the level's expired sums (``count_expired``), and
the depth is the aggregates less those: O(1) a read, each expiry counted once, however
long a backlog of expired orders waits for the sweep (56,000 on one level cost each read
4.5 ms when they were visited every time: bench/lapse_depth.py). While a dead-man switch
is due, the level's orders are visited and the floor is tightened to the earliest expiry
still on it. Whether any switch is
due is the top of the ``dead_men`` heap (every armed switch has an entry there; a stale
top only costs a visit). The floor, the heap and the expired sums are derived (``Book.add``
sets them, a restart rebuilds them and counts again) and never change a result, only how it
is computed: the depth is exactly that of the orders that have not lapsed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from state.account import ISOLATED_PREFIX
from state.book import NO_EXPIRY, Book, Level, Order

if TYPE_CHECKING:
    from state.account import Account
    from state.exchange import Exchange

#: the most resting orders ``crosses`` reads for one ALO or IOC (as ``risk.WALK_ORDERS`` for
#: the closing walk): lapsed orders are not consumed by reading them, so without a bound each
#: such order could read the same backlog
CROSS_SCAN: Final = 1000


def switches_due(ex: Exchange) -> bool:
    """Whether some dead-man switch may be due and not yet fired (a cheap filter:
    False means none is; True means look at the owner)."""
    dead = ex.dead_men
    return bool(dead) and dead[0][0] <= ex.time_ms


def expiries_due(ex: Exchange) -> bool:
    """Whether some good-til-time order may have expired and not yet been swept (a cheap
    filter, as ``switches_due``: the top of the ``order_expiries`` heap; a stale top only
    costs a look at the account)."""
    heap = ex.order_expiries
    return bool(heap) and heap[0][0] < ex.time_ms


def expired_count(ex: Exchange, acct: Account) -> int:
    """How many open orders of ``acct`` are past their good-til-time expiry: O(1), plus
    one heap pop per expiry the block time has newly passed (``Account.expiries``)."""
    x = acct.expiries
    return len(x.advance(ex.time_ms)) if x is not None else 0


def expired_of(ex: Exchange, acct: Account) -> list[Order]:
    """The open orders of ``acct`` past their good-til-time expiry, by oid: O(their number)."""
    x = acct.expiries
    if x is None:
        return []
    oids = x.advance(ex.time_ms)
    return [ex.books[acct.open_orders[oid]].orders[oid] for oid in sorted(oids)]


def switch_due(ex: Exchange, owner: bytes) -> bool:
    """Whether the switch that covers ``owner``'s orders (its own, or its master's for an
    isolated account) is due and not yet fired."""
    now = ex.time_ms
    acct = ex.accounts.get(owner)
    dm = acct.dead_man if acct is not None else None
    if dm is not None and 0 < dm[0] <= now:
        return True
    sub = ex.subs.get(owner) if ex.subs else None
    if sub is not None and sub[1].startswith(ISOLATED_PREFIX):
        master = ex.accounts.get(sub[0])
        dm = master.dead_man if master is not None else None
        return dm is not None and 0 < dm[0] <= now
    return False


def lapsed(ex: Exchange, order: Order, switches: bool) -> str | None:
    """The reason ``order`` is no longer good ("expired", "dead_man"), or None.
    ``switches``: ``switches_due(ex)``, computed once by the caller."""
    if order.expires_at and order.expires_at < ex.time_ms:
        return "expired"
    if switches and switch_due(ex, order.owner):
        return "dead_man"
    return None


def count_expired(level: Level, now: int) -> None:
    """Move the level's good-til-time orders whose expiry ``now`` has passed into its
    expired sums (``Level.xcount``, ``xtotal``, ``xfirm``): one bucket per distinct expiry,
    each once, so a backlog of orders expired at one moment costs its readers O(1) (and one
    expiry at a time costs one heap pop each, once). Then, when the level holds no expired
    order, its floor is its earliest expiry (a lower bound on those of its orders)."""
    for b in level.by_expiry.pop_before(now):
        level.xcount += b[0]
        level.xtotal += b[1]
        level.xfirm += b[2]
    if now > level.cut:
        level.cut = now
    if not level.xcount:
        heap = level.by_expiry.heap
        level.floor = heap[0] if heap else NO_EXPIRY


def level_depth(ex: Exchange, level: Level, switches: bool) -> tuple[int, int, int]:
    """(size, firm size, order count) of the level's orders that have not lapsed (firm:
    not reduce-only, see ``Level.firm``). O(1) on a clean level, amortized O(1) with expired
    orders on it (module doc); only while a dead-man switch is due are its orders read."""
    now = ex.time_ms
    if level.floor >= now and not switches:
        return level.total, level.firm, level.count
    if not switches:
        count_expired(level, now)
        return level.total - level.xtotal, level.firm - level.xfirm, level.count - level.xcount
    total = firm = count = 0
    floor = NO_EXPIRY
    for o in level.orders:
        if not o.live:
            continue
        expires = o.expires_at
        if expires:
            if expires < floor:
                floor = expires
            if expires < now:
                continue
        if switches and switch_due(ex, o.owner):
            continue
        total += o.size
        count += 1
        if not o.reduce_only:
            firm += o.size
    level.floor = floor
    return total, firm, count


def firm_depth(ex: Exchange, level: Level, switches: bool) -> int:
    """The level's depth an impact price may count: not reduce-only, not lapsed."""
    if level.floor >= ex.time_ms and not switches:
        return level.firm
    return level_depth(ex, level, switches)[1]


def crosses(ex: Exchange, book: Book, is_buy: bool, price: int) -> bool:
    """``Book.crosses`` without lapsed orders: whether an order at ``price`` would trade
    against an order that is still good (an ALO or IOC is judged by it; matching removes the
    lapsed ones it passes on the way). Levels are read best first and stop at the first good
    order; at most ``CROSS_SCAN`` resting orders are looked at, past which the order counts
    as crossing (an ALO is refused, an IOC goes to matching, which removes lapsed orders
    within the block's allowance). Without the bound every ALO and IOC would read the whole
    backlog of lapsed orders a crossing level can hold until the sweep takes it (60,000 on
    one level: ~5 ms an order, bench/lapse_crosses.py)."""
    if not book.crosses(is_buy, price):
        return False
    switches = switches_due(ex)
    now = ex.time_ms
    side = book.asks if is_buy else book.bids
    budget = CROSS_SCAN
    for p in (book.ask_prices if is_buy else reversed(book.bid_prices)):
        if (p > price) if is_buy else (p < price):
            return False
        level = side[p]
        if level.floor >= now and not switches:
            return True  # (a level on its O(1) path holds a live order: empty levels are removed)
        for o in level.orders:
            if not o.live:
                continue  # dead entries are not state: a restarted node has none (state/book.py)
            if budget <= 0:
                return True  # (not known within the bound: counted as crossing)
            budget -= 1
            if not lapsed(ex, o, switches):
                return True
    return False


def best(ex: Exchange, market: int) -> tuple[int | None, int | None]:
    """The best bid and ask (ticks) held by an order that has not lapsed (display)."""
    bids, asks = depth(ex, market, 1)
    return (bids[0][0] if bids else None), (asks[0][0] if asks else None)


def depth(ex: Exchange, market: int, levels: int) -> tuple[list[tuple[int, int, int]], list[tuple[int, int, int]]]:
    """(price, size, order count) of the best ``levels`` levels of each side that hold an
    order that has not lapsed, best first: the book as a client sees it (RPC, /info
    l2Book, websockets)."""
    book = ex.books[market]
    switches = switches_due(ex)
    out: tuple[list[tuple[int, int, int]], list[tuple[int, int, int]]] = ([], [])
    for side, prices, is_bids in ((book.bids, book.bid_prices, True), (book.asks, book.ask_prices, False)):
        rows = out[0] if is_bids else out[1]
        for p in (reversed(prices) if is_bids else prices):
            if len(rows) >= levels:
                break
            level = side[p]
            size, _firm, count = level_depth(ex, level, switches)
            if size:
                rows.append((p, size, count))
    return out
