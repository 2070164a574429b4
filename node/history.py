"""Account history, historical orders and OHLCV candles: node indexes built from block results.

Nothing here is consensus state. Like the fill and order outcome indexes, every node derives
the same entries from the same blocks, written in the block's ``save_results`` batch, which
runs only for heights above the store's ``results_height``: a handshake re-applying stored
blocks writes nothing twice, so a candle is never double-counted, and a restarted node
re-derives nothing (it is all stored).

Three indexes (key prefixes below; all big-endian so a range is one prefix scan):

- history, ``_HIST + address(20) + height(8) + seq(4) -> [time_ms, event list]``: every event
  of the block that names the account (fills as maker and taker, cancels as owner, deposits,
  withdrawals, transfers on both sides, borrows, repays, liquidation and ADL events on both
  sides, ``funding_payment``). ``seq`` is the event's index in the block's events, so a
  cursor ``height:seq`` means the same for every account. It is also the per-account fill
  index: ``/fills`` reads its fill entries (BlockStore.fills), so a fill costs one entry
  per account, as before the history existed. An entry may carry the emitting
  transaction's hash and, for a fill, the side's start position and closed PnL
  (node/fillbook.py), read back as ``Extra``. Interest on lending and borrowing is itemized
  by node/interest.py: hourly ``interest`` entries per (account, asset), at a ``seq`` above
  any event index. Pruned with the blocks.
- historical orders, ``_OHIST + owner(20) + height(8) + oid(8) -> [status, reason, market]``:
  the order outcomes of node/orderindex.py, listable per account. Pruned with the blocks.
- funding rates, ``_FUNDING + market(2) + time_ms(8) -> [rate_ppb, per_lot, funding_index]``:
  one per perp per funding boundary, from the block's ``funding`` events (Hyperliquid's
  ``fundingHistory``). Kept when blocks are pruned, like candles (24 a day per perp).
- candles, ``_CANDLE + market(2) + interval(1) + start_ms(8) -> [o, h, l, c, v, n, quote]``:
  prices in ticks, ``v`` in lots, ``quote`` = sum(price * size * tick_value) in quote units,
  ``n`` fills. Built from each block's fills at the block's time. Kept when blocks are
  pruned: a market has at most 1,440 + 288 + 96 + 24 + 6 + 1 candles a day (~40 bytes each,
  ~75 KB/day per market), so years of them take less room than a minute of blocks.

Per block the cost is one put per (event, address), one per finished order and, per market
that traded, one per interval; no LevelDB read except the first candle of each (market,
interval) after a start (``CandleBook`` keeps the last candle of each in memory). Measured
on a block of 2,500 fills, 500 cancels and 2,500 finished orders: 4-7 ms to build the
~8,000 entries and ~22 ms to build and write them in ``save_results``' batch, where the
fill index it replaces took ~15 ms. Each fill side's own value (tx hash, start position,
closed PnL) and node/fillbook.py's position walk add ~8 ms to such a block (2,500 fills over
500 accounts: ~2.5 ms for the plain entries, ~11 ms with the context, 2-core machine).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import msgpack

from state.events import SCHEMA

_HIST = b"h"
_OHIST = b"O"
_CANDLE = b"C"
_FUNDING = b"F"

ADDRESS_LEN = 20

# name -> (code in the key, length in ms)
INTERVALS: dict[str, tuple[int, int]] = {
    "1m": (1, 60_000), "5m": (2, 300_000), "15m": (3, 900_000),
    "1h": (4, 3_600_000), "4h": (5, 14_400_000), "1d": (6, 86_400_000),
}
_INTERVAL_LIST = tuple(INTERVALS.values())

# history kinds a client may filter on (the ``kinds`` parameter)
KINDS = ("fill", "cancel", "deposit", "withdraw", "transfer", "borrow", "repay", "funding_payment",
         "liquidation", "adl", "interest")

_ACCOUNT_FIELDS = ("account", "counterparty", "owner", "maker", "taker", "address")


def _address_positions() -> dict[str, tuple[int, ...]]:
    """Schema key -> indices (in the event's list form) of its account fields."""
    out: dict[str, tuple[int, ...]] = {}
    for key, names in SCHEMA.items():
        out[key] = tuple(i for i, n in enumerate(names) if n in _ACCOUNT_FIELDS)
    return out


_POSITIONS = _address_positions()


def addresses_of(event: Sequence[Any]) -> list[bytes]:
    """The distinct accounts an event (list form) concerns, in field order: a fill's maker
    and taker, a cancel's owner, any ``account``/``counterparty`` field; [] for events about
    no account (``funding``, ``socialized``) and kinds this version does not know."""
    kind = event[0]
    if kind == "fill":
        maker, taker = event[5], event[6]
        return [maker] if maker == taker else [maker, taker]
    if kind == "cancel":
        return [event[3]]
    key = f"liquidation:{event[2]}" if kind == "liquidation" and len(event) > 2 else kind
    positions = _POSITIONS.get(key)
    if positions is None:  # a kind this version does not know
        return []
    out: list[bytes] = []
    for i in positions:
        if i < len(event):
            a = event[i]
            if isinstance(a, bytes) and len(a) == ADDRESS_LEN and a not in out:
                out.append(a)
    return out


# ---------------------------------------------------------------------------- history
_HIST_SUFFIX = struct.Struct(">Q")


def hist_key(address: bytes, height: int, seq: int) -> bytes:
    return _HIST + address + struct.pack(">QI", height, seq)


def history_puts(height: int, time_ms: int, events: Sequence[Sequence[Any]],
                 hashes: Sequence[bytes] = (), fills: Mapping[tuple[int, bytes], Any] | None = None,
                 ) -> list[tuple[bytes, bytes]]:
    """The history entries of a block: ``events`` are the results' ``[tx_index, event list]``
    pairs. An entry is ``[time_ms, event]``, or ``[time_ms, event, extra]`` with ``extra`` =
    ``[tx hash]`` when ``hashes`` (the block's tx hashes in block order) names the event's
    transaction, and for a fill ``[tx hash or b"", start position, closed PnL]`` per side
    from ``fills`` (node/fillbook.py ``FillBook.block``). Fills and cancels (nearly all of a
    busy block) take an inlined path: this runs for every block at thousands of events each."""
    pack = msgpack.Packer(use_bin_type=True).pack
    head = b"\x92" + pack(time_ms)
    head3 = b"\x93" + pack(time_ms)
    hb = _HIST_SUFFIX.pack(height)
    n_tx = len(hashes)
    out: list[tuple[bytes, bytes]] = []
    append = out.append
    for seq, (i, e) in enumerate(events):
        kind = e[0]
        h = hashes[i] if 0 <= i < n_tx else None
        if kind == "fill":
            maker, taker = e[5], e[6]
            suffix = hb + seq.to_bytes(4, "big")
            packed = pack(e)
            for a in (maker,) if maker == taker else (maker, taker):
                ctx = fills.get((seq, a)) if fills is not None else None
                if ctx is not None:
                    value = head3 + packed + pack([h or b"", ctx.start, ctx.closed_pnl])
                elif h is not None:
                    value = head3 + packed + pack([h])
                else:
                    value = head + packed
                append((_HIST + a + suffix, value))
            continue
        value = head + pack(e) if h is None else head3 + pack(e) + pack([h])
        if kind == "cancel":
            append((_HIST + e[3] + hb + seq.to_bytes(4, "big"), value))
            continue
        addrs = addresses_of(e)
        if addrs:
            suffix = hb + seq.to_bytes(4, "big")
            for a in addrs:
                append((_HIST + a + suffix, value))
    return out


def history_prune_keys(height: int, events: Sequence[Sequence[Any]]) -> list[bytes]:
    """The keys ``history_puts`` wrote for this block (recomputed from its results)."""
    return [hist_key(a, height, seq) for seq, (_, e) in enumerate(events) for a in addresses_of(e)]


def parse_cursor(text: str) -> tuple[int, int]:
    """``height:seq`` (or a bare height: everything below it) -> (height, seq)."""
    h, _, s = text.partition(":")
    height, seq = int(h), (int(s) if s else 0)
    if height < 0 or seq < 0 or height >= 1 << 64 or seq >= 1 << 32:
        raise ValueError("cursor out of range")
    return height, seq


def read_history(db: Any, address: bytes, *, limit: int, before: tuple[int, int] | None = None,
                 start_ms: int | None = None, end_ms: int | None = None,
                 kinds: Iterable[str] | None = None, max_scan: int = 20_000,
                 ) -> tuple[list[tuple[int, int, int, list[Any]]], str | None]:
    """Newest first: (height, seq, time_ms, event list) of ``address``'s entries strictly
    before the cursor, within [start_ms, end_ms] and of the given kinds; and the cursor of
    the next page (None at the end). At most ``max_scan`` entries are looked at per call (a
    rare kind in a long history): the cursor then continues the scan."""
    rows, cursor = read_history_extra(db, address, limit=limit, before=before, start_ms=start_ms,
                                      end_ms=end_ms, kinds=kinds, max_scan=max_scan)
    return [(h, s, t, e) for h, s, t, e, _x in rows], cursor


def read_history_extra(db: Any, address: bytes, *, limit: int, before: tuple[int, int] | None = None,
                       start_ms: int | None = None, end_ms: int | None = None,
                       kinds: Iterable[str] | None = None, max_scan: int = 20_000,
                       ) -> tuple[list[tuple[int, int, int, list[Any], Extra]], str | None]:
    """``read_history`` with each entry's ``Extra`` (tx hash; a fill's start position and
    closed PnL), as written by ``history_puts``."""
    prefix = _HIST + address
    stop = prefix + struct.pack(">QI", *before) if before is not None else None
    wanted = frozenset(kinds) if kinds else None
    out: list[tuple[int, int, int, list[Any], Extra]] = []
    it = db.iterator(prefix=prefix, reverse=True) if stop is None else \
        db.iterator(start=prefix, stop=stop, reverse=True)
    for scanned, (key, value) in enumerate(it, 1):
        height, seq = struct.unpack(">QI", key[len(prefix):])
        rec = msgpack.unpackb(value, raw=False)
        time_ms, event = rec[0], rec[1]
        if start_ms is not None and time_ms < start_ms:
            return out, None  # block times never decrease: nothing older matches
        if (end_ms is None or time_ms <= end_ms) and (wanted is None or event[0] in wanted):
            out.append((height, seq, time_ms, event, Extra(rec[2] if len(rec) > 2 else None)))
            if len(out) >= limit:
                return out, f"{height}:{seq}"
        if scanned >= max_scan:
            return out, f"{height}:{seq}"
    return out, None


class Extra:
    """What an entry carries besides its event: the hash of the transaction that emitted it
    (None for block-level events: funding, interest, expiries), and for a fill the side's
    start position (signed lots; None when not tracked: spot, or an entry written before)
    and closed PnL (quote units)."""

    __slots__ = ("closed_pnl", "start", "tx_hash")

    def __init__(self, raw: list[Any] | None) -> None:
        self.tx_hash: bytes | None = raw[0] if raw and raw[0] else None
        self.start: int | None = raw[1] if raw is not None and len(raw) > 2 else None
        self.closed_pnl: int = raw[2] if raw is not None and len(raw) > 2 else 0


# ---------------------------------------------------------------------------- orders
def order_puts(outcomes: Mapping[int, Sequence[Any]], time_ms: int | None = None) -> list[tuple[bytes, bytes]]:
    """Per-account entries of a block's order outcomes (oid -> [status, reason, height,
    owner, market], node/orderindex.py): ``[status, reason, market]``, plus the block's
    ``time_ms`` when given (the status time /info reports)."""
    pack = msgpack.Packer(use_bin_type=True).pack
    key = _ORDER_SUFFIX.pack
    tail = [] if time_ms is None else [time_ms]
    filled: dict[Any, bytes] = {}  # most outcomes are a plain "filled": pack each market's once
    out: list[tuple[bytes, bytes]] = []
    for oid, (status, reason, height, owner, market) in outcomes.items():
        if type(owner) is bytes and len(owner) == ADDRESS_LEN:
            if status == "filled" and not reason:
                value = filled.get(market)
                if value is None:
                    value = filled[market] = pack([status, reason, market, *tail])
            else:
                value = pack([status, reason, market, *tail])
            out.append((_OHIST + owner + key(height, oid), value))
    return out


_ORDER_SUFFIX = struct.Struct(">QQ")


def order_key(owner: bytes, height: int, oid: int) -> bytes:
    return _OHIST + owner + struct.pack(">QQ", height, oid)


def read_orders(db: Any, owner: bytes, *, limit: int, before: int | None = None) -> list[dict[str, Any]]:
    """Newest first, each order once (its latest outcome: a triggered order that later
    filled reads filled): {oid, status, reason, market, height, time_ms (when recorded)};
    ``before`` a height."""
    prefix = _OHIST + owner
    it = db.iterator(prefix=prefix, reverse=True) if before is None else \
        db.iterator(start=prefix, stop=prefix + struct.pack(">Q", before), reverse=True)
    seen: set[int] = set()
    out: list[dict[str, Any]] = []
    for key, value in it:
        height, oid = struct.unpack(">QQ", key[len(prefix):])
        if oid in seen:
            continue
        seen.add(oid)
        rec = msgpack.unpackb(value, raw=False)
        status, reason, market = rec[:3]
        row = {"oid": oid, "status": status, "reason": reason, "market": market, "height": height}
        if len(rec) > 3:
            row["time_ms"] = rec[3]
        out.append(row)
        if len(out) >= limit:
            break
    return out


# ---------------------------------------------------------------------------- candles
def candle_key(market: int, code: int, start_ms: int) -> bytes:
    return _CANDLE + struct.pack(">HBQ", market, code, start_ms)


def block_trades(events: Sequence[Sequence[Any]], tick_value: Callable[[int], int]
                 ) -> dict[int, list[int]]:
    """market -> [open, high, low, close, lots, fills, quote] of one block's fills."""
    out: dict[int, list[int]] = {}
    for _, e in events:
        if e[0] != "fill":
            continue
        market, price, size = e[1], e[2], e[3]
        agg = out.get(market)
        quote = price * size * tick_value(market)
        if agg is None:
            out[market] = [price, price, price, price, size, 1, quote]
        else:
            _merge_into(agg, 0, price, price, price, size, 1, quote)
    return out


def _merge_into(agg: list[int], i: int, high: int, low: int, close: int, volume: int, count: int,
                quote: int) -> None:
    """Fold later trades into a candle whose open is at ``agg[i]``: high, low, close, volume,
    count and quote volume follow it."""
    if high > agg[i + 1]:
        agg[i + 1] = high
    if low < agg[i + 2]:
        agg[i + 2] = low
    agg[i + 3] = close
    agg[i + 4] += volume
    agg[i + 5] += count
    agg[i + 6] += quote


class CandleBook:
    """The last candle of each (market, interval), so a block's update is a write only.
    ``get`` reads a stored candle (bytes or None) on the first touch after a start."""

    __slots__ = ("_get", "last")

    def __init__(self, get: Callable[[bytes], bytes | None]) -> None:
        self._get = get
        self.last: dict[tuple[int, int], list[int]] = {}  # -> [start_ms, o, h, l, c, v, n, quote]

    def puts(self, time_ms: int, trades: Mapping[int, list[int]]) -> list[tuple[bytes, bytes]]:
        """Merge one block's per-market trades into the candles of its time; the puts."""
        pack = msgpack.Packer(use_bin_type=True).pack
        out: list[tuple[bytes, bytes]] = []
        last = self.last
        for market in sorted(trades):
            o, h, lo, c, v, n, q = trades[market]
            for code, length in _INTERVAL_LIST:
                start = time_ms - time_ms % length
                cur = last.get((market, code))
                if cur is None or cur[0] != start:
                    cur = self._load(market, code, start)
                if cur is None:
                    cur = [start, o, h, lo, c, v, n, q]
                else:
                    _merge_into(cur, 1, h, lo, c, v, n, q)
                last[(market, code)] = cur
                out.append((candle_key(market, code, start), pack(cur[1:])))
        return out

    def _load(self, market: int, code: int, start: int) -> list[int] | None:
        """The stored candle starting at ``start``, read only when nothing is cached for
        (market, interval): a cached candle of an earlier interval means this one is new."""
        if (market, code) in self.last:
            return None
        raw = self._get(candle_key(market, code, start))
        return None if raw is None else [start, *msgpack.unpackb(raw)]


def read_candles(db: Any, market: int, interval: str, *, start_ms: int = 0, end_ms: int | None = None,
                 limit: int = 500) -> list[dict[str, Any]]:
    """Oldest first, the candles of ``market`` whose start lies in [start_ms, end_ms];
    with no ``start_ms``, the latest ``limit`` of them."""
    code, length = INTERVALS[interval]
    prefix = _CANDLE + struct.pack(">HB", market, code)
    stop = prefix + struct.pack(">Q", end_ms + 1) if end_ms is not None and end_ms + 1 < 1 << 64 else None
    out: list[dict[str, Any]] = []
    if start_ms:
        it = db.iterator(start=prefix + struct.pack(">Q", start_ms), stop=stop or prefix + b"\xff" * 9)
        for key, value in it:
            out.append(_candle_json(key, value, length))
            if len(out) >= limit:
                break
        return out
    it = db.iterator(start=prefix, stop=stop, reverse=True) if stop is not None else \
        db.iterator(prefix=prefix, reverse=True)
    for key, value in it:
        out.append(_candle_json(key, value, length))
        if len(out) >= limit:
            break
    out.reverse()
    return out


def _candle_json(key: bytes, value: bytes, length: int) -> dict[str, Any]:
    start = struct.unpack(">Q", key[-8:])[0]
    o, h, lo, c, v, n, q = msgpack.unpackb(value)
    return {"t": start, "T": start + length - 1, "o": o, "h": h, "l": lo, "c": c, "v": v, "n": n,
            "quote_volume": q}


# ---------------------------------------------------------------------------- funding rates
def funding_key(market: int, time_ms: int) -> bytes:
    return _FUNDING + struct.pack(">HQ", market, time_ms)


def funding_puts(time_ms: int, events: Sequence[Sequence[Any]]) -> list[tuple[bytes, bytes]]:
    """One entry per market that settled a funding interval in the block (its ``funding``
    event): ``[rate_ppb, per_lot, funding_index]`` at the block's time."""
    out = []
    for _, e in events:
        if e[0] == "funding" and len(e) >= 5:
            out.append((funding_key(e[1], time_ms), msgpack.packb(list(e[2:5]), use_bin_type=True)))
    return out


def read_funding(db: Any, market: int, *, start_ms: int = 0, end_ms: int | None = None,
                 limit: int = 500) -> list[dict[str, int]]:
    """Oldest first, the funding settlements of ``market`` in [start_ms, end_ms]:
    {time, rate_ppb (per interval), per_lot, funding_index}."""
    prefix = _FUNDING + struct.pack(">H", market)
    stop = prefix + struct.pack(">Q", end_ms + 1) if end_ms is not None and end_ms + 1 < 1 << 64 else \
        prefix + b"\xff" * 9
    out = []
    for key, value in db.iterator(start=prefix + struct.pack(">Q", start_ms), stop=stop):
        rate, per_lot, index = msgpack.unpackb(value)
        out.append({"time": struct.unpack(">Q", key[-8:])[0], "rate_ppb": rate, "per_lot": per_lot,
                    "funding_index": index})
        if len(out) >= limit:
            break
    return out


def block_puts(height: int, time_ms: int, events: Sequence[Sequence[Any]], outcomes: Mapping[int, Sequence[Any]],
               candles: CandleBook, markets: Sequence[Any], *, hashes: Sequence[bytes] = (),
               fills: Mapping[tuple[int, bytes], Any] | None = None) -> list[tuple[bytes, bytes]]:
    """Everything this module indexes for one block (node/execution.py calls it with the
    block's results, just before ``save_results``): history (with the block's tx
    ``hashes`` and the fill contexts of node/fillbook.py), per-account orders, candles and
    funding rates. ``markets`` are the genesis market specs (their ``tick_value`` prices
    the quote volume)."""
    puts = history_puts(height, time_ms, events, hashes, fills)
    puts += order_puts(outcomes, time_ms)
    tick_values = [int(m.tick_value) for m in markets]
    trades = block_trades(events, lambda m: tick_values[m] if 0 <= m < len(tick_values) else 0)
    if trades:
        puts += candles.puts(time_ms, trades)
    puts += funding_puts(time_ms, events)
    return puts
