"""Hyperliquid's websocket protocol on ``GET /ws`` (issue 26): subscriptions and pushes.

Hyperliquid's SDKs (hyperliquid-python-sdk's ``WebsocketManager``, ccxt pro) stream market
data and account updates from ``wss://.../ws``: the client sends ``{"method":
"subscribe", "subscription": {"type": ...}}``, the server acknowledges on the
``subscriptionResponse`` channel, then pushes ``{"channel", "data"}`` messages. Serving
the same protocol on the RPC port lets those clients follow a devnet unchanged; shapes and
numbers are node/hlinfo.py's (coin names, decimal strings).

Three parts, so the protocol is tested without sockets or a node:

- ``Publisher`` (one per node, called by node/execution.py after each committed block, and
  only while some ``/ws`` client subscribes: the bus ``wants`` the topic): captures what a
  block changed into a ``Bundle`` of plain data (its fills and events with tx hashes, the
  books and mids that changed, the candles it touched, one status per order it touched)
  and publishes it once on the bus. Book depth and order details are read here, at commit
  time, because the state moves on before a slow client reads its queue; the orders a
  block placed are noted (``remember``) from its decoded transactions, the only record of
  an IOC's limit price and size, so an order that left the book is still described.
- ``Session`` (one per connection): parses client messages, keeps the connection's
  subscriptions, answers snapshots from the live state and the node's indexes, and turns
  each bundle into that connection's messages. A bundle caches the text of every message
  it built, so a thousand clients on the BTC book cost one encoding per block.
- ``Endpoint``: the thin aiohttp handler that joins a socket, a session and a bus queue
  (bounded: a connection whose queue fills is closed, node/wsquota.py ``drop_lagging``), and
  counts its subscriptions in the node's cap (node/wsquota.py).

A bundle older than a subscription's snapshot is not pushed to it, so a client never sees
a book older than the one it was given; and a state channel (l2Book, bbo, allMids) pushes
only what differs from what that subscription last got, its snapshot included. Errors are Hyperliquid's ``{"channel": "error",
"data": text}``; a bad message never closes the connection.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from aiohttp import WSMsgType, web

from node import orderindex, wsquota
from node.clientaddr import client_of
from node.history import INTERVALS, Extra
from node.hlinfo import (
    BOOK_LEVELS,
    HOUR_MS,
    InfoError,
    Units,
    all_mids,
    candle_snapshot,
    coin_of,
    dec,
    l2_book,
    market_of_coin,
    own_accounts,
    own_fills,
    parse_user,
    ratio,
    user_fills,
)
from node.readbudget import OverBudget
from state import lapse
from state.keys import address_to_text

if TYPE_CHECKING:
    from node.events import EventBus
    from node.readbudget import ReadBudget
    from node.submitlimit import SubmitLimit
    from node.wsquota import WsQuota
    from state.exchange import Exchange

TOPIC = "hl"
MAX_SUBSCRIPTIONS = 100  # per connection, as Hyperliquid limits them
PUSH_QUEUE = 100  # bundles (blocks) a connection's pushes may lag behind, ~10 s at 10 blocks a second
SNAPSHOT_FILLS = 500  # userFills / userFundings snapshot size (newest)
ZERO_HASH = "0x" + "00" * 32
_INTERVAL_OF_CODE = {code: (name, length) for name, (code, length) in INTERVALS.items()}

COIN_KINDS = ("l2Book", "trades", "bbo", "candle")
USER_KINDS = ("orderUpdates", "userEvents", "userFills", "userFundings", "notification")
KINDS = ("allMids", *COIN_KINDS, *USER_KINDS)

# cancel reasons -> Hyperliquid's order status (orderUpdates)
_CANCEL_STATUS = {"cancelled": "canceled", "modified": "canceled", "replaced": "canceled", "ioc": "canceled",
                  "expired": "canceled", "reduce_only": "reduceOnlyCanceled", "self_trade": "selfTradeCanceled",
                  "liquidation": "liquidatedCanceled", "dead_man": "scheduledCancel",
                  "oco": "siblingFilledCanceled", "trigger_rejected": "rejected",
                  "position_closed": "reduceOnlyCanceled", "parent_cancelled": "canceled",
                  "lapse_pending": "canceled"}
# the cancels the account asked for itself; every other reason is a ``nonUserCancel``
_USER_CANCELS = frozenset({"cancelled", "modified", "replaced", "ioc"})


class WsError(ValueError):
    """A client message the server refuses: sent back on the ``error`` channel."""


# ---------------------------------------------------------------------------- subscriptions
class Sub:
    """One parsed subscription: ``raw`` is echoed in acknowledgements, ``ident`` tells
    duplicates apart (Hyperliquid's identity: type, coin as given, user, interval)."""

    __slots__ = ("coin", "ident", "interval", "kind", "market", "raw", "sent", "since", "user")

    def __init__(self, kind: str, raw: dict[str, Any], coin: str = "", market: int = -1,
                 user: bytes | None = None, interval: str = "") -> None:
        self.kind = kind
        self.raw = raw
        self.coin = coin
        self.market = market
        self.user = user
        self.interval = interval
        self.ident = (kind, coin.lower(), address_to_text(user) if user else "", interval)
        self.since = 0  # pushes start above the height its snapshot was taken at
        # l2Book, bbo, allMids: the levels, bbo or mids this subscription last got (snapshot
        # or push); a push carrying the same is not sent (see ``Session.push``)
        self.sent: Any = None


def parse_subscription(ex: Exchange, raw: Any) -> Sub:
    if not isinstance(raw, dict):
        raise WsError("subscription must be an object with a type")
    kind = raw.get("type")
    if kind not in KINDS:
        raise WsError(f"Unknown subscription type {kind!r}; types: {', '.join(KINDS)}")
    coin, market, user, interval = "", -1, None, ""
    try:
        if kind in COIN_KINDS:
            market = market_of_coin(ex, raw.get("coin"))
            coin = str(raw["coin"])
        if kind in USER_KINDS:
            user = parse_user(raw.get("user"))
    except InfoError as err:
        raise WsError(f"Invalid subscription {json.dumps(raw)}: {err}") from None
    if kind == "candle":
        interval = str(raw.get("interval"))
        if interval not in INTERVALS:
            raise WsError(f"Invalid subscription {json.dumps(raw)}: interval must be one of {', '.join(INTERVALS)}")
    return Sub(str(kind), raw, coin, market, user, interval)


# ---------------------------------------------------------------------------- block bundles
class OrderInfo:
    """What orderUpdates says about an order once it has left the book."""

    __slots__ = ("cloid", "is_buy", "market", "orig_size", "owner", "price", "time_ms")

    def __init__(self, market: int, owner: bytes, is_buy: bool, price: int, orig_size: int,
                 cloid: bytes | None, time_ms: int) -> None:
        self.market, self.owner, self.is_buy, self.price = market, owner, is_buy, price
        self.orig_size, self.cloid, self.time_ms = orig_size, cloid, time_ms


class Bundle:
    """What one committed block changed, as plain data (see the module docstring).

    ``events``: (seq, tx hash text, event list) in block order; ``books``: market ->
    Hyperliquid levels of the books whose top ``BOOK_LEVELS`` changed; ``mids``: the
    allMids map when a mid changed, else None; ``candles``: (market, interval) -> candle
    row (ticks, lots) for the markets that traded; ``orders``: (owner, orderUpdates entry),
    one per order the block touched (its status at the block's end); ``szi``: (account,
    market) -> position lots after the block, for funding payments; ``rates``: market ->
    the funding rate the block settled (ppb per interval); ``bbos``: market -> [best bid
    level or None, best ask level or None] where one of them changed."""

    __slots__ = ("_by_account", "_orders_by_owner", "bbos", "books", "cache", "candles", "events", "fills", "height",
                 "mids", "orders", "rates", "szi", "time_ms")

    def __init__(self, height: int, time_ms: int) -> None:
        self.height = height
        self.time_ms = time_ms
        self.events: list[tuple[int, str, list[Any]]] = []
        self.books: dict[int, list[list[dict[str, Any]]]] = {}
        self.bbos: dict[int, list[dict[str, Any] | None]] = {}
        self.mids: dict[str, str] | None = None
        self.candles: dict[tuple[int, str], dict[str, int]] = {}
        self.orders: list[tuple[bytes, dict[str, Any]]] = []
        self.szi: dict[tuple[bytes, int], int] = {}
        self.rates: dict[int, int] = {}
        self.cache: dict[tuple[str, str, str, str], list[str]] = {}
        self.fills: Mapping[tuple[int, bytes], Any] = {}  # (seq, account) -> fill context (node/fillbook.py)
        self._by_account: dict[bytes, list[int]] | None = None
        self._orders_by_owner: dict[bytes, list[int]] | None = None

    def events_of(self, accounts: Sequence[bytes]) -> list[tuple[int, str, list[Any]]]:
        """The events that name any of ``accounts`` where a user's pushes look (a fill's
        maker or taker, the account of a funding payment, liquidation or dead-man cancel, an
        ADL's two sides, a cancel's owner), in block order. Indexed once per bundle: a
        user subscription costs its own events, not a walk over the whole block each."""
        index = self._by_account
        if index is None:
            index = self._by_account = {}
            for i, (_seq, _tx, e) in enumerate(self.events):
                for account in _ACCOUNT_FIELDS.get(e[0], ()):
                    if account < len(e):
                        seen = index.setdefault(e[account], [])
                        if not seen or seen[-1] != i:  # a self-trade names its account twice
                            seen.append(i)
        return [self.events[i] for i in _merged(index, accounts)]

    def orders_of(self, accounts: Sequence[bytes]) -> list[dict[str, Any]]:
        """``orders`` entries of orders ``accounts`` own, in the bundle's order (indexed once)."""
        index = self._orders_by_owner
        if index is None:
            index = self._orders_by_owner = {}
            for i, (owner, _o) in enumerate(self.orders):
                index.setdefault(owner, []).append(i)
        return [self.orders[i][1] for i in _merged(index, accounts)]


# where each kind of event names the accounts a user's pushes are about (see Bundle.events_of)
_ACCOUNT_FIELDS: dict[str, tuple[int, ...]] = {"fill": (5, 6), "funding_payment": (1,), "liquidation": (1,),
                                               "adl": (2, 3), "dead_man": (1,), "cancel": (3,)}


def _merged(index: Mapping[bytes, list[int]], accounts: Sequence[bytes]) -> list[int]:
    """The positions ``index`` lists for any of ``accounts``, ascending, once each."""
    found = [index[a] for a in accounts if a in index]
    if len(found) <= 1:
        return found[0] if found else []
    return sorted({i for positions in found for i in positions})


def _levels(ex: Exchange, market: int) -> list[list[dict[str, Any]]]:
    u = Units(ex, market)
    return [[{"px": u.px(p), "sz": u.sz(s), "n": n} for p, s, n in side] for side in lapse.depth(ex, market, BOOK_LEVELS)]


def best_levels(levels: list[list[dict[str, Any]]]) -> list[dict[str, Any] | None]:
    """Hyperliquid's ``bbo``: [best bid level or None, best ask level or None]."""
    return [side[0] if side else None for side in levels]


def _placements(ex: Exchange, txs: Sequence[bytes], verified: Mapping[bytes, Any],
                receipts: Sequence[list[Any]]) -> list[tuple[bytes, Any, int]]:
    """(account, PlaceOrder-like action, oid) of every order the block placed: the decoded
    actions (the node's cache) as node/orderindex.py ``native_view`` reads them (Hyperliquid
    actions mapped, agents and sub-accounts resolved), paired with their results."""
    by_hash = {r[0]: r for r in receipts}
    out: list[tuple[bytes, Any, int]] = []
    for raw in txs:
        tx = verified.get(raw)
        receipt = by_hash.get(getattr(tx, "hash", b"")) if tx is not None else None
        if tx is None or receipt is None:
            continue
        owner, items = orderindex.native_view(ex, tx)
        if len(items) != len(receipt[5]):
            continue
        for item, res in zip(items, receipt[5], strict=True):
            oid = res[2]
            if oid is not None and res[0] == 0 and all(hasattr(item, a) for a in ("market", "is_buy", "price", "size")):
                out.append((owner, item, oid))
    return out


def _trigger_info(t: Any, time_ms: int) -> OrderInfo:
    """A waiting trigger order (state/trigbook.py ``Trigger``) as orderUpdates describes it:
    a market trigger's price is its trigger price, as /info shows it."""
    return OrderInfo(t.market, t.owner, bool(t.is_buy), t.trigger if t.is_market else t.limit, t.size, t.cloid,
                     time_ms)


# what a block's events say about an order: (status, market, remaining lots, owner, is_buy, a traded price)
Status = tuple[str, int, int | None, bytes | None, bool | None, int | None]
_UNKNOWN: Status = ("open", -1, None, None, None, None)


class Publisher:
    """Turns committed blocks into bundles while someone listens (see the module docstring).
    Keeps the last published books and mids (to push only changes) and, while active, the
    details of every live order (to describe one after it filled or was cancelled). A
    block skipped (no listener then) makes all of it stale: the next bundle starts afresh
    and carries every book and the mids again."""

    __slots__ = ("active", "books", "height", "memo", "mids")

    def __init__(self) -> None:
        self.active = False
        self.height = 0  # of the last bundle: a gap (nobody listened meanwhile) starts afresh
        self.books: dict[int, list[list[dict[str, Any]]]] = {}
        self.mids: dict[str, str] = {}
        self.memo: dict[int, OrderInfo] = {}

    def _at(self, height: int) -> None:
        """Start afresh when a block was skipped (nobody listened then)."""
        if self.active and height not in (self.height, self.height + 1):
            self.active, self.books, self.mids, self.memo = False, {}, {}, {}
        self.height = height

    def remember(self, ex: Exchange, height: int, time_ms: int, txs: Sequence[bytes],
                 verified: Mapping[bytes, Any], receipts: Sequence[list[Any]]) -> None:
        """Note the orders a block placed (limit price, side, size: only its transactions
        say so for an order that never rests). node/execution.py calls it before the
        mempool drops the block's decoded transactions."""
        self._at(height)
        for signer, item, oid in _placements(ex, txs, verified, receipts):
            self.memo.setdefault(oid, OrderInfo(item.market, signer, bool(item.is_buy), item.price, item.size,
                                                getattr(item, "cloid", None), time_ms))

    def publish(self, bus: EventBus, ex: Exchange, height: int, time_ms: int, hashes: Sequence[bytes],
                receipts: Sequence[list[Any]], events: Sequence[list[Any]], candles: Any,
                fills: Mapping[tuple[int, bytes], Any] | None = None) -> None:
        if not bus.wants(TOPIC):
            if self.active:  # nobody listens: forget, so nothing stale is kept or sent later
                self.active, self.books, self.mids, self.memo = False, {}, {}, {}
            return
        bus.publish(TOPIC, None, {"bundle": self.bundle(ex, height, time_ms, hashes, receipts, events, candles, fills)})

    def bundle(self, ex: Exchange, height: int, time_ms: int, hashes: Sequence[bytes],
               receipts: Sequence[list[Any]], events: Sequence[list[Any]], candles: Any,
               fills: Mapping[tuple[int, bytes], Any] | None = None) -> Bundle:
        """The bundle of a block just applied to ``ex`` (``events``: [tx_index, event list];
        ``fills``: node/fillbook.py's context of each fill side, keyed by (seq, account))."""
        self._at(height)
        b = Bundle(height, time_ms)
        b.fills = fills or {}
        traded: set[int] = set()
        status: dict[int, Status] = {}
        for seq, (i, e) in enumerate(events):
            b.events.append((seq, "0x" + hashes[i].hex() if 0 <= i < len(hashes) else ZERO_HASH, e))
            kind = e[0]
            if kind == "fill":
                market, maker, taker, maker_oid, taker_oid = e[1], e[5], e[6], e[7], e[8]
                traded.add(market)
                status[maker_oid] = ("open", market, None, maker, not e[4], e[2])
                status[taker_oid] = ("open", market, None, taker, bool(e[4]), e[2])
            elif kind == "cancel":
                side, px = status.get(e[2], _UNKNOWN)[4:]
                status[e[2]] = (_CANCEL_STATUS.get(e[5], "canceled"), e[1], e[4], e[3], side, px)
            elif kind == "triggered":
                status[e[2]] = ("triggered", e[1], None, e[3], None, None)
            elif kind == "funding":
                b.rates[e[1]] = e[2]
            elif kind == "funding_payment":
                acct = ex.accounts.get(e[1])
                pos = acct.positions.get(e[2]) if acct is not None else None
                b.szi[(e[1], e[2])] = pos.size if pos is not None else 0
        for r in receipts:  # placements that rest, wait for a trigger, or filled whole without another event
            for res in r[5]:
                if res[0] == 0 and res[2] is not None and res[3] in ("resting", "filled", "waiting"):
                    status.setdefault(res[2], _UNKNOWN)
        self._orders(ex, b, status)
        for m in range(len(ex.markets)):
            levels, before = _levels(ex, m), self.books.get(m)
            if levels != before:
                b.books[m] = self.books[m] = levels
                if before is None or best_levels(levels) != best_levels(before):
                    b.bbos[m] = best_levels(levels)
        mids = all_mids(ex)
        if mids != self.mids:
            b.mids = self.mids = mids
        last = getattr(candles, "last", {})
        for m in sorted(traded):
            for code, (name, length) in _INTERVAL_OF_CODE.items():
                row = last.get((m, code))
                if row is not None:
                    start, o, h, lo, c, v, n = row[:7]
                    b.candles[(m, name)] = {"t": start, "T": start + length - 1, "o": o, "h": h, "l": lo, "c": c,
                                            "v": v, "n": n}
        if not self.active:  # from now on every order placed is remembered; learn the live ones
            self.active = True
            for market, book in ex.books.items():
                for o in book.orders.values():
                    self.memo.setdefault(o.oid, OrderInfo(market, o.owner, o.is_buy, o.price, o.orig_size,
                                                          o.cloid, time_ms))
            for t in ex.triggers.values():  # waiting trigger orders, described when they fire or go
                self.memo.setdefault(t.oid, _trigger_info(t, time_ms))
        return b

    def _orders(self, ex: Exchange, b: Bundle, status: dict[int, Status]) -> None:
        """One orderUpdates entry per order the block touched, in oid order: live orders
        from the state, finished ones from the memo (forgotten then), or, for an order the
        memo never saw (it finished in the first block after a start), from its fills."""
        live_in = {oid: m for m, book in ex.books.items() for oid in book.orders} if status else {}
        for oid in sorted(status):
            st, market, remaining, owner, is_buy, px = status[oid]
            m = live_in.get(oid)
            info = self.memo.get(oid)
            trig = ex.triggers.get(oid) if m is None else None
            if trig is not None:  # a trigger order waiting outside the book: "open", as /info lists it
                placed = info.time_ms if info else b.time_ms
                self.memo[oid] = info = _trigger_info(trig, placed)
                u = Units(ex, trig.market)
                order = {"coin": coin_of(ex, trig.market), "side": "B" if trig.is_buy else "A",
                         "limitPx": u.px(info.price), "sz": u.sz(trig.size), "oid": oid, "timestamp": placed,
                         "origSz": u.sz(trig.size)}
                cloid, owner, st = trig.cloid, trig.owner, "open"
            elif m is not None:
                o = ex.books[m].orders[oid]
                u = Units(ex, m)
                placed = info.time_ms if info else b.time_ms
                self.memo[oid] = OrderInfo(m, o.owner, o.is_buy, o.price, o.orig_size, o.cloid, placed)
                order = {"coin": coin_of(ex, m), "side": "B" if o.is_buy else "A", "limitPx": u.px(o.price),
                         "sz": u.sz(o.size), "oid": oid, "timestamp": placed, "origSz": u.sz(o.orig_size)}
                cloid, owner, st = o.cloid, o.owner, "open"
            elif info is not None:
                u = Units(ex, info.market)
                if st == "open":  # traded and gone from the book: filled
                    st, remaining = "filled", 0
                order = {"coin": coin_of(ex, info.market), "side": "B" if info.is_buy else "A",
                         "limitPx": u.px(info.price), "sz": u.sz(remaining or 0), "oid": oid,
                         "timestamp": info.time_ms, "origSz": u.sz(info.orig_size)}
                cloid = info.cloid
                owner = owner if owner is not None else info.owner  # the event names the owner, not an agent
                del self.memo[oid]
            else:  # placed before anyone listened: what its fills tell (side, a price), if it traded
                if market < 0 or owner is None or is_buy is None or px is None:
                    continue
                u = Units(ex, market)
                if st == "open":
                    st, remaining = "filled", 0
                order = {"coin": coin_of(ex, market), "side": "B" if is_buy else "A", "limitPx": u.px(px),
                         "sz": u.sz(remaining or 0), "oid": oid, "timestamp": b.time_ms,
                         "origSz": u.sz(remaining or 0)}
                cloid = None
            if owner is None:
                continue
            if cloid:
                order["cloid"] = "0x" + cloid.hex()
            b.orders.append((owner, {"order": order, "status": st, "statusTimestamp": b.time_ms}))


# ---------------------------------------------------------------------------- messages
def msg(channel: str, data: Any) -> dict[str, Any]:
    return {"channel": channel, "data": data}


def _trade(ex: Exchange, b: Bundle, coin: str, seq: int, tx: str, e: list[Any]) -> dict[str, Any]:
    market, price, size, taker_is_buy, maker, taker = e[1:7]
    u = Units(ex, market)
    buyer, seller = (taker, maker) if taker_is_buy else (maker, taker)
    return {"coin": coin, "side": "B" if taker_is_buy else "A", "px": u.px(price), "sz": u.sz(size),
            "time": b.time_ms, "hash": tx, "tid": (b.height << 20) + seq,
            "users": [address_to_text(buyer), address_to_text(seller)]}


def _user_fills(ex: Exchange, b: Bundle, user: bytes) -> list[dict[str, Any]]:
    """The block's fills of ``user`` and of its isolated accounts (node/hlinfo.py ``own_accounts``)."""
    out = []
    holders = own_accounts(ex, user)
    for seq, tx, e in b.events_of(holders):
        if e[0] != "fill":
            continue
        for holder in holders:
            if holder not in (e[5], e[6]):
                continue
            ctx = b.fills.get((seq, holder))  # the position it started from and the PnL it closed, as /info says
            row = (b.height, seq, b.time_ms, e, Extra([None, ctx.start, ctx.closed_pnl])) if ctx is not None \
                else (b.height, seq, b.time_ms, e)
            for f in user_fills(ex, holder, [row]):
                f["hash"] = tx
                out.append(f)
    return out


def _funding_rate(ex: Exchange, rate_ppb: int) -> str:
    """Per hour, as Hyperliquid quotes it (node/hlinfo.py ``asset_ctxs``)."""
    interval = ex.genesis.risk.funding_interval_ms
    return ratio(rate_ppb * HOUR_MS, interval * 10**9, 12) if interval else "0"


def _fundings(ex: Exchange, b: Bundle, user: bytes) -> list[dict[str, Any]]:
    qdec = ex.genesis.assets[ex.collateral_asset].decimals
    out = []
    for _seq, _tx, e in b.events_of((user,)):
        if e[0] == "funding_payment" and e[1] == user:
            m = e[2]
            out.append({"time": b.time_ms, "coin": coin_of(ex, m), "usdc": dec(-e[3], qdec),
                        "szi": Units(ex, m).sz(b.szi.get((user, m), 0)),
                        "fundingRate": _funding_rate(ex, b.rates.get(m, 0))})
    return out


def _user_notices(ex: Exchange, b: Bundle, user: bytes) -> tuple[list[dict[str, Any]], list[str]]:
    """(userEvents liquidation entries, notification texts) of the user's liquidation,
    ADL and dead-man events in this block."""
    qdec = ex.genesis.assets[ex.collateral_asset].decimals
    liqs: list[dict[str, Any]] = []
    notes: list[str] = []
    for seq, _tx, e in b.events_of((user,)):
        kind = e[0]
        if kind == "liquidation" and e[1] == user and len(e) > 2:
            stage = e[2]
            if stage == "start":
                liqs.append({"lid": (b.height << 20) + seq, "liquidator": ZERO_HASH[:42],
                             "liquidated_user": address_to_text(user), "liquidated_ntl_pos": "0",
                             "liquidated_account_value": dec(e[3], qdec)})
                notes.append(f"Your account is being liquidated: equity {dec(e[3], qdec)} is below the "
                             f"maintenance requirement {dec(e[4], qdec)}")
            elif stage == "backstop":
                notes.append("The insurance fund took over your remaining positions")
        elif kind == "adl" and user in (e[2], e[3]):
            u = Units(ex, e[1])
            notes.append(f"Auto-deleveraged: {u.sz(e[4])} {coin_of(ex, e[1])} closed for "
                         f"{dec(e[5], qdec)} against another account")
        elif kind == "dead_man" and e[1] == user:
            notes.append(f"Scheduled cancel fired: {e[3]} open orders cancelled")
    return liqs, notes


def build(ex: Exchange, sub: Sub, b: Bundle) -> list[dict[str, Any]]:
    """The messages one subscription gets for one bundle (``ex`` is read only for what
    genesis fixes: coin names and units)."""
    kind = sub.kind
    if kind == "allMids":
        return [msg("allMids", {"mids": b.mids})] if b.mids is not None else []
    if kind == "l2Book":
        levels = b.books.get(sub.market)
        return [] if levels is None else [msg("l2Book", {"coin": sub.coin, "time": b.time_ms, "levels": levels})]
    if kind == "bbo":
        bbo = b.bbos.get(sub.market)
        return [] if bbo is None else [msg("bbo", {"coin": sub.coin, "time": b.time_ms, "bbo": bbo})]
    if kind == "trades":
        trades = [_trade(ex, b, sub.coin, seq, tx, e) for seq, tx, e in b.events
                  if e[0] == "fill" and e[1] == sub.market]
        return [msg("trades", trades)] if trades else []
    if kind == "candle":
        row = b.candles.get((sub.market, sub.interval))
        return [] if row is None else [msg("candle", candle_snapshot(ex, sub.coin, sub.interval, [row])[0])]
    user = sub.user
    assert user is not None
    text = address_to_text(user)
    if kind == "orderUpdates":
        orders = b.orders_of(own_accounts(ex, user))
        return [msg("orderUpdates", orders)] if orders else []
    if kind == "userFills":
        fills = _user_fills(ex, b, user)
        return [msg("userFills", {"user": text, "fills": fills})] if fills else []
    if kind == "userFundings":
        fundings = _fundings(ex, b, user)
        return [msg("userFundings", {"user": text, "fundings": fundings})] if fundings else []
    liqs, notes = _user_notices(ex, b, user)
    if kind == "notification":
        return [msg("notification", {"notification": n}) for n in notes]
    out = []  # userEvents: channel "user", one kind per message as Hyperliquid sends them
    fills = _user_fills(ex, b, user)
    if fills:
        out.append(msg("user", {"fills": fills}))
    out += [msg("user", {"funding": f}) for f in _fundings(ex, b, user)]
    out += [msg("user", {"liquidation": x}) for x in liqs]
    mine = own_accounts(ex, user)
    cancels = [{"coin": coin_of(ex, e[1]), "oid": e[2]} for _s, _t, e in b.events_of(mine)
               if e[0] == "cancel" and e[3] in mine and e[5] not in _USER_CANCELS]
    if cancels:
        out.append(msg("user", {"nonUserCancel": cancels}))
    return out


_NO_STATE: Any = object()  # a kind whose pushes are events, not states (trades, fills, ...)


def _state_of(sub: Sub, b: Bundle) -> Any:
    """What a push of ``b`` would give a state subscription (None: nothing changed in the
    bundle), or ``_NO_STATE`` for the other kinds."""
    if sub.kind == "l2Book":
        return b.books.get(sub.market)
    if sub.kind == "bbo":
        return b.bbos.get(sub.market)
    if sub.kind == "allMids":
        return b.mids
    return _NO_STATE


def snapshot(ex: Exchange, sub: Sub, src: Any) -> list[dict[str, Any]]:
    """What a subscription gets at once, from the live state and the node's indexes:
    the book, best bid/offer, mids, the latest candle, the user's recent fills and funding
    payments (``isSnapshot``). Streams of changes (trades, orderUpdates, userEvents,
    notification) start empty, as on Hyperliquid. For l2Book, bbo and allMids the state
    sent is recorded on ``sub`` (``sent``), which later pushes are compared with."""
    kind = sub.kind
    if kind == "allMids":
        sub.sent = all_mids(ex)
        return [msg("allMids", {"mids": sub.sent})]
    if kind == "l2Book":
        book = l2_book(ex, sub.coin)
        sub.sent = book["levels"]
        return [msg("l2Book", book)]
    if kind == "bbo":
        book = l2_book(ex, sub.coin)
        sub.sent = best_levels(book["levels"])
        return [msg("bbo", {"coin": sub.coin, "time": book["time"], "bbo": sub.sent})]
    if kind == "candle":
        rows = src.candles(sub.market, sub.interval, 0, None, 1)
        return [msg("candle", c) for c in candle_snapshot(ex, sub.coin, sub.interval, rows)]
    user = sub.user
    if user is None:  # trades
        return []
    text = address_to_text(user)
    if kind == "userFills":
        newest = own_fills(ex, user, lambda holder: src.history(holder, SNAPSHOT_FILLS, None, None, None, ["fill"])[0])
        fills = newest[:SNAPSHOT_FILLS][::-1]  # oldest first, as pushes follow
        return [msg("userFills", {"isSnapshot": True, "user": text, "fills": fills})]
    if kind == "userFundings":
        entries, _ = src.history(user, SNAPSHOT_FILLS, None, None, None, ["funding_payment"])
        qdec = ex.genesis.assets[ex.collateral_asset].decimals
        fundings = [{"time": t, "coin": coin_of(ex, e[2]), "usdc": dec(-e[3], qdec), "szi": "0", "fundingRate": "0"}
                    for _h, _s, t, e in reversed(entries) if 0 <= e[2] < len(ex.markets)]
        return [msg("userFundings", {"isSnapshot": True, "user": text, "fundings": fundings})]
    return []


# ---------------------------------------------------------------------------- sessions
class Node(Protocol):
    """What a session reads of a node (node/ports.py ``RpcHost`` has it)."""

    @property
    def sm(self) -> Any: ...

    @property
    def blocks(self) -> Any: ...

    @property
    def execution(self) -> Any: ...


def error(text: str) -> dict[str, Any]:
    return msg("error", text)


class Session:
    """One connection's protocol state, socket-free: ``receive`` answers a client text
    message, ``push`` renders a bundle for this connection's subscriptions."""

    __slots__ = ("client", "node", "quota", "subs")

    def __init__(self, node: Node, quota: WsQuota | None = None, client: str | None = None) -> None:
        self.node = node
        self.quota = quota  # the node's subscriptions in all (node/wsquota.py); None: uncounted
        self.client = client  # the connection's client address, whose subscriptions the quota counts too
        self.subs: dict[tuple[str, str, str, str], Sub] = {}

    def receive(self, text: str) -> list[dict[str, Any]]:
        try:
            req = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):  # RecursionError: nested too deeply
            return [error(f"Error parsing JSON into valid websocket request: {text[:200]}")]
        method = req.get("method") if isinstance(req, dict) else None
        if method == "ping":
            return [{"channel": "pong"}]
        if method not in ("subscribe", "unsubscribe"):
            return [error(f"Error parsing JSON into valid websocket request: {text[:200]}")]
        raw = req.get("subscription")
        ex = self.node.sm.ex
        try:
            sub = parse_subscription(ex, raw)
        except WsError as err:
            return [error(str(err))]
        ack = msg("subscriptionResponse", {"method": method, "subscription": raw})
        if method == "unsubscribe":
            if self.subs.pop(sub.ident, None) is None:
                return [error(f"Already unsubscribed: {json.dumps(raw)}")]
            if self.quota is not None:
                self.quota.unsubscribe(1, self.client)
            return [ack]
        if sub.ident in self.subs:
            return [error(f"Already subscribed: {json.dumps(raw)}")]
        if len(self.subs) >= MAX_SUBSCRIPTIONS:
            return [error(f"Cannot track more than {MAX_SUBSCRIPTIONS} total subscriptions")]
        refusal = self.quota.subscribe(self.client) if self.quota is not None else None
        if refusal is not None:
            return [error(refusal)]
        sub.since = self.node.sm.height
        self.subs[sub.ident] = sub
        return [ack, *snapshot(ex, sub, self.node.blocks)]

    def close(self) -> None:
        """The connection closed: its subscriptions leave the node's count."""
        if self.quota is not None:
            self.quota.unsubscribe(len(self.subs), self.client)
        self.subs.clear()

    def push(self, b: Bundle) -> list[str]:
        """The texts this connection gets for ``b`` (each built once per bundle and shared)."""
        ex = self.node.sm.ex
        out: list[str] = []
        for ident, sub in list(self.subs.items()):
            if b.height <= sub.since:
                continue
            state = _state_of(sub, b)
            if state is not _NO_STATE:
                # the publisher's bundle carries every book after a pause (it cannot know
                # what the pause changed), so the first block after a subscription would
                # repeat its snapshot: a subscription gets a state only when it differs
                # from the last one it got
                if state is None or state == sub.sent:
                    continue
                sub.sent = state
            texts = b.cache.get(ident)
            if texts is None:
                texts = b.cache[ident] = [json.dumps(m, separators=(",", ":")) for m in build(ex, sub, b)]
            out += texts
        return out


# ---------------------------------------------------------------------------- aiohttp
class WsHost(Protocol):
    """The RPC server members the endpoint uses: the node and the websocket quota shared
    with ``/websocket`` (node/wsquota.py)."""

    ws_quota: WsQuota
    read_budget: ReadBudget
    submit_limit: SubmitLimit

    @property
    def rt(self) -> Any: ...


class Endpoint:
    """``GET /ws``: one session per socket; a bus queue only while it subscribes to something.

    A subscription's snapshot is a read (node/readbudget.py, the client's share and the
    node's); so is building a bundle's pushes, which waits for the budget instead of being
    refused. A connection's queue holds ``PUSH_QUEUE`` bundles: one that fills (the client,
    or the budget, does not keep up) closes the connection (node/wsquota.py ``drop_lagging``)."""

    __slots__ = ("host",)

    def __init__(self, host: WsHost) -> None:
        self.host = host

    async def handle(self, request: web.Request) -> web.StreamResponse:
        host = self.host
        ws = await wsquota.accept(host.ws_quota, request)
        if isinstance(ws, tuple):
            status, code, message = ws
            return web.json_response({"error": {"code": int(code), "name": code.name, "message": message}},
                                     status=status)
        bus = host.rt.bus
        client = client_of(request)
        session = Session(host.rt, host.ws_quota, client)
        bus_sub: Any = None  # on the bus only while subscribed: an idle socket costs no bundles
        forward: asyncio.Future[None] | None = None
        lagging = False

        def on_lag() -> None:  # the bus found the queue full: stop working for this client
            nonlocal lagging
            if not lagging:
                lagging = True
                if forward is not None:
                    forward.cancel()
                wsquota.drop_lagging(host.ws_quota, ws)

        try:
            async for m in wsquota.charged_messages(ws, host.submit_limit, client, lambda: lagging):
                if m.type == WSMsgType.BINARY:  # answered, as anything else it cannot read
                    await ws.send_str(json.dumps(error("binary frames are not understood: send JSON text")))
                    continue
                if m.type != WSMsgType.TEXT:
                    continue
                await host.rt.execution.gate.wait_open()  # a subscription's snapshot reads the state
                try:  # a subscription's snapshot is a read: loop time from node/readbudget.py
                    replies = host.read_budget.run(lambda: session.receive(m.data), client)  # noqa: B023 (run now)
                except OverBudget as err:
                    await ws.send_str(json.dumps(error(str(err))))
                    continue
                if session.subs and bus_sub is None:  # queue from now on: no block is missed
                    bus_sub = bus.subscribe(TOPIC, queue=asyncio.Queue(PUSH_QUEUE), on_lag=on_lag)
                elif not session.subs and bus_sub is not None:
                    if forward is not None:
                        forward.cancel()
                    bus.unsubscribe(bus_sub)
                    bus_sub = forward = None
                for reply in replies:
                    await ws.send_str(json.dumps(reply, separators=(",", ":")))
                if bus_sub is not None and forward is None and not lagging:  # pushes only after the snapshot
                    forward = asyncio.ensure_future(self._forward(ws, session, bus_sub, host.read_budget, client))
        finally:
            if forward is not None:
                forward.cancel()
            if bus_sub is not None:
                bus.unsubscribe(bus_sub)
            session.close()
            host.ws_quota.leave(client_of(request))
        return ws

    @staticmethod
    async def _forward(ws: web.WebSocketResponse, session: Session, bus_sub: Any, budget: ReadBudget,
                       client: str | None) -> None:
        while True:
            item = await bus_sub.queue.get()
            await budget.wait_turn(client)  # the reads' share is spent: later, or lag and go
            await session.node.execution.gate.wait_open()  # building a push reads the state
            for text in budget.spend(client, session.push, item["data"]["bundle"]):
                await ws.send_str(text)


def route(host: WsHost) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """The handler node/rpc.py registers on ``GET /ws``."""
    return Endpoint(host).handle
