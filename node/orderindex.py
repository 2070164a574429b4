"""What became of each order: the node's index of order outcomes, from block results.

The state machine keeps only live orders (on the book, or waiting for their trigger); an
order that filled, was cancelled, expired or triggered leaves no record there. A trader
asking "what happened to order 42" (Hyperliquid's ``orderStatus``) is answered by the node
from what each block emitted, as CometBFT indexes transactions: nothing here is consensus
state, every node derives the same entries from the same blocks, and a node restarted or
state-synced indexes from where its results begin.

Per block, in event order (the last word about an order wins):

- ``Cancelled`` (``cancel`` events): ``cancelled`` with the event's reason (``cancelled`` by
  its owner, ``ioc``, ``reduce_only``, ``self_trade``, ``modified``, ``liquidation``, ...),
  except the reason ``expired``, which is the status ``expired``;
- a fill whose maker order is no longer live after the block: ``filled``;
- an order result with status ``filled`` and nothing cancelled (a taker that filled whole);
- ``triggered`` events: ``triggered`` (if the order it became rests, the live state answers
  ``open`` first; if it then trades or is cancelled in the same block, that comes later);

and for every placement that named a client order id, ``(owner, cloid) -> oid``, so the
status can be asked by cloid after the order is gone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import msgpack

from state import hlexec
from state.errors import TxError
from state.exchange import Exchange
from state.keys import address_to_text
from state.receipts import Cancelled, Fill, Receipt
from state.tx import SCHEME_HL, ActAs, Batch, PlaceGroup, PlaceOrder, SignedTx

# the Cancelled reasons that are a status of their own
_STATUS_OF_REASON = {"expired": "expired"}


def outcomes(ex: Exchange, height: int, events: Sequence[tuple[int, Any]],
             receipts: Sequence[Receipt]) -> dict[int, list[Any]]:
    """oid -> [status, reason, height, owner, market] for the orders this block finished
    (``ex`` is the state after the block: a maker still on a book is still open)."""
    out: dict[int, list[Any]] = {}
    for r in receipts:
        for res in r.results:
            if res.oid is not None and res.status == "filled" and not res.cancelled:
                fill = res.fills[0] if res.fills else None
                out[res.oid] = ["filled", "", height, r.signer, fill.market if fill else None]
    for _, e in events:
        kind = type(e)
        if kind is Fill:
            if e.maker_oid not in ex.books[e.market].orders:
                out[e.maker_oid] = ["filled", "", height, e.maker, e.market]
        elif kind is Cancelled:
            out[e.oid] = [_STATUS_OF_REASON.get(e.reason, "cancelled"), e.reason, height, e.owner, e.market]
        elif isinstance(e, tuple) and e and e[0] == "triggered":
            fields = e._asdict()  # type: ignore[attr-defined]
            out[fields["oid"]] = ["triggered", "", height, fields["owner"], fields["market"]]
    return out


#: one committed tx as the indexes read it: its receipt, the account it acted for, and the
#: native action behind each of the receipt's results (``native_view``)
TxView = tuple[Receipt, bytes, tuple[Any, ...]]


def block_views(ex: Exchange, receipts: Sequence[Receipt], txs: Sequence[bytes],
                verified: Mapping[bytes, SignedTx]) -> list[TxView]:
    """``native_view`` of each receipt's tx, once (a Hyperliquid action is mapped again
    here, so the cloid and placement indexes share one mapping). The actions come from the
    node's cache of decoded transactions (every tx of a block it executed is in it); a
    receipt whose tx is not in it is read as its signer's, with no actions."""
    by_hash = {}
    for raw in txs:
        tx = verified.get(raw)
        if tx is not None:
            by_hash[tx.hash] = tx
    out: list[TxView] = []
    for r in receipts:
        tx = by_hash.get(r.tx_hash)
        owner, items = native_view(ex, tx) if tx is not None else (r.signer, ())
        out.append((r, owner, items))
    return out


def cloids(views: Sequence[TxView]) -> list[tuple[bytes, bytes, int]]:
    """(owner, cloid, oid) for every order placed in the block with a client order id, the
    owner being the account it acts for, each action paired with its result one to one."""
    out: list[tuple[bytes, bytes, int]] = []
    for receipt, owner, items in views:
        if len(items) != len(receipt.results):
            continue  # a rejected tx placed nothing
        for item, res in zip(items, receipt.results, strict=True):
            cloid = getattr(item, "cloid", None)
            if cloid is not None and res.oid is not None:
                out.append((owner, cloid, res.oid))
    return out


def status_view(ex: Exchange, oid: int, stored: list[Any] | None) -> dict[str, Any] | None:
    """The status of ``oid``: open (on a book) from the live state, else what the index
    recorded, else None (no such order, or finished before this node's results begin)."""
    for market, book in ex.books.items():
        order = book.orders.get(oid)
        if order is not None:
            return {"oid": oid, "status": "open", "market": market, "owner": address_to_text(order.owner),
                    "side": "buy" if order.is_buy else "sell", "price": order.price, "size": order.size,
                    "orig_size": order.orig_size, "cloid": order.cloid}
    trig = ex.triggers.get(oid)
    if trig is not None:
        return {"oid": oid, "status": "waiting", "market": trig.market, "owner": address_to_text(trig.owner),
                "side": "buy" if trig.is_buy else "sell", "trigger_price": trig.trigger, "cloid": trig.cloid}
    if stored is None:
        return None
    status, reason, height, owner, market = stored
    return {"oid": oid, "status": status, "reason": reason, "height": height, "owner": address_to_text(owner),
            "market": market}


# ---------------------------------------------------------------------------- placements
# Orders carry no placement time in state. The node records, for every order a block placed,
# the block's time and what the order was, so /info can show a ``timestamp`` for an open order
# and the whole order (side, limit, original size, tif, trigger) after it is gone:
# ``_PLACED + oid(8) -> [time_ms, owner, market, is_buy, limit ticks, orig lots, tif (-1: a
# trigger), reduce_only, cloid (b"": none), trigger ticks (0: none), tpsl (-1: none), is_market,
# whole]``. Kept while the order lives; pruned with its block once the order has finished.
_PLACED = b"T"
_PLACED_STATUSES = frozenset({"resting", "filled", "cancelled", "waiting"})


def placed_key(oid: int) -> bytes:
    return _PLACED + oid.to_bytes(8, "big")


def native_view(ex: Exchange, tx: SignedTx) -> tuple[bytes, tuple[Any, ...]]:
    """(account, native actions) of a committed ``tx``, as the node reads it after its block:
    a Hyperliquid-signed tx's action mapped onto native ones as the block mapped it
    (state/hlexec.py: which orders and cloids depends only on the markets), an agent's for
    its master, ``act_as`` for the sub-account; one item per result the receipt holds
    (a group: its parent, then its children). Nothing when the mapping fails (the tx was
    refused, so it placed nothing)."""
    action = tx.action
    if tx.scheme == SCHEME_HL:
        try:
            action = hlexec.resolve(ex, tx)
        except TxError:
            return tx.signer, ()
    owner = tx.signer
    agent = ex.agents.get(owner)
    if agent is not None:
        owner = agent[0]
    if isinstance(action, ActAs):
        owner, action = action.account, action.action
    if isinstance(action, Batch):
        return owner, tuple(action.actions)
    if isinstance(action, PlaceGroup):
        return owner, ((action.parent,) if action.parent is not None else ()) + tuple(action.children)
    return owner, (action,)


def placements(ex: Exchange, time_ms: int, views: Sequence[TxView]) -> list[tuple[int, list[Any]]]:
    """(oid, placement record) of every order the block placed (see above). What the order
    was comes from the live state when it still rests or waits, else from the decoded
    action (a native order placed and finished in this block), else from its fills."""
    out: list[tuple[int, list[Any]]] = []
    for r, owner, items in views:
        for n, res in enumerate(r.results):
            if res.oid is None or res.status not in _PLACED_STATUSES:
                continue
            item = items[n] if n < len(items) and len(items) == len(r.results) else None
            rec = _placement(ex, time_ms, owner, res, item)
            if rec is not None:
                out.append((res.oid, rec))
    return out


def _placement(ex: Exchange, time_ms: int, signer: bytes, res: Any, item: Any) -> list[Any] | None:
    oid = res.oid
    for market, book in ex.books.items():
        o = book.orders.get(oid)
        if o is not None:
            return [time_ms, o.owner, market, o.is_buy, o.price, o.orig_size, int(o.tif), bool(o.reduce_only),
                    o.cloid or b"", 0, -1, False, False]
    t = ex.triggers.get(oid)
    if t is not None:
        return [time_ms, t.owner, t.market, t.is_buy, t.limit, t.size, -1, bool(t.reduce_only), t.cloid or b"",
                t.trigger, t.tpsl, bool(t.is_market), bool(t.whole)]
    orig = res.filled + res.resting + res.cancelled + res.clipped
    owner = res.fills[0].taker if res.fills else signer
    if isinstance(item, PlaceOrder):
        return [time_ms, owner, item.market, item.is_buy, item.price, orig or item.size, int(item.tif),
                item.reduce_only, item.cloid or b"", 0, -1, False, False]
    if res.fills:
        f = res.fills[0]
        return [time_ms, owner, f.market, f.taker_is_buy, f.price, orig, 1, False, b"", 0, -1, False, False]
    return None


def placement_puts(placed: Sequence[tuple[int, list[Any]]]) -> list[tuple[bytes, bytes]]:
    pack = msgpack.Packer(use_bin_type=True).pack
    return [(placed_key(oid), pack(rec)) for oid, rec in placed]
