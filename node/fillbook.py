"""Per-fill position context for account history: start position and closed PnL (issue 26).

Hyperliquid's ``userFills`` tell a trader, per fill, the position it started from
(``startPosition``), what it did to it (``dir``: "Open Long", "Close Short", ...) and the
PnL it closed (``closedPnl``). A fill event says none of that, and the state keeps only the
position after the block (its entry is also re-marked at every funding boundary, so it
cannot give the PnL a trader closed against what they paid). So the node follows each
(account, derivative market) position itself, at indexing time, from the block's events
in order: fills, ADL closes and dated-future settlements, with ``state.account.Position``'s
own arithmetic (so the PnL a fill closes is the one the state realizes at the fill price,
fees excluded). Nothing here is consensus state.

Records, ``_POS + address(20) + market(2) -> [size lots, entry_notional quote units]``, are
written in the block's ``save_results`` batch like every other index, and read back on the
first touch after a start (``get``). The state is the authority on size: after each block
every touched position is compared with the state's and, where they differ (a backstop moved
a position whole, or the node started from a snapshot and never saw the position open), the
node takes the state's size and entry. A position first seen mid-life starts from the state's
size before the block (its size after, less this block's trades) at the state's average entry.

Cost per block: one dict update per fill side and one put per touched position; one LevelDB
read per position the first time it is touched after a start.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import msgpack

from state.account import Position

if TYPE_CHECKING:
    from state.exchange import Exchange

_POS = b"P"
ADDRESS_LEN = 20


def pos_key(address: bytes, market: int) -> bytes:
    return _POS + address + struct.pack(">H", market)


class FillContext:
    """What one fill meant to one of its sides: the position before it and the PnL it closed."""

    __slots__ = ("closed_pnl", "start")

    def __init__(self, start: int, closed_pnl: int) -> None:
        self.start = start  # signed lots before the fill (0 for a spot pair: not tracked)
        self.closed_pnl = closed_pnl  # quote units, fees excluded


def _block_trades(events: Sequence[Sequence[Any]], derivative: frozenset[int]) -> dict[tuple[bytes, int], int]:
    """(account, market) -> signed lots this block's fills traded."""
    out: dict[tuple[bytes, int], int] = {}
    for _, e in events:
        if e[0] == "fill" and e[1] in derivative:
            market, size, taker_is_buy, maker, taker = e[1], e[3], e[4], e[5], e[6]
            d = size if taker_is_buy else -size
            out[(taker, market)] = out.get((taker, market), 0) + d
            out[(maker, market)] = out.get((maker, market), 0) - d
    return out


class FillBook:
    """The node's positions per (account, derivative market), from fills (see the module doc)."""

    __slots__ = ("_get", "positions")

    def __init__(self, get: Callable[[bytes], bytes | None]) -> None:
        self._get = get
        self.positions: dict[tuple[bytes, int], Position] = {}

    def _load(self, address: bytes, market: int) -> Position | None:
        raw = self._get(pos_key(address, market))
        if raw is None:
            return None
        size, entry = msgpack.unpackb(raw)
        return Position(size, entry)

    def block(self, events: Sequence[Sequence[Any]], ex: Exchange | None
              ) -> tuple[dict[tuple[int, bytes], FillContext], list[tuple[bytes, bytes]]]:
        """Walk one block's ``[tx_index, event list]`` pairs: the context of each fill side,
        keyed by (seq, account), and the puts of the positions it touched. ``ex`` is the
        state after the block (None in tools without one: nothing is tracked)."""
        out: dict[tuple[int, bytes], FillContext] = {}
        if ex is None:
            return out, []
        derivative = frozenset(m.market_id for m in ex.markets if m.is_derivative)
        tick_values = [int(m.tick_value) for m in ex.markets]
        positions = self.positions
        touched: set[tuple[bytes, int]] = set()
        traded: list[dict[tuple[bytes, int], int]] = []  # this block's trades, computed on a first seed

        def position(address: bytes, market: int) -> Position:
            key = (address, market)
            pos = positions.get(key)
            if pos is None:
                pos = self._load(address, market)
                if pos is None:
                    if not traded:
                        traded.append(_block_trades(events, derivative))
                    pos = _seed(ex, address, market, traded[0].get(key, 0))
                positions[key] = pos
            touched.add(key)
            return pos

        for seq, (_, e) in enumerate(events):
            kind = e[0]
            if kind == "fill":
                market = e[1]
                if market not in derivative:
                    continue
                price, size, taker_is_buy, maker, taker = e[2:7]
                tv = tick_values[market]
                d = size if taker_is_buy else -size
                pos = position(taker, market)
                start = pos.size
                out[(seq, taker)] = FillContext(start, pos.apply_fill(d, price, tv))
                pos = position(maker, market)
                start = pos.size
                pnl = pos.apply_fill(-d, price, tv)
                ctx = out.get((seq, maker))
                if ctx is None:
                    out[(seq, maker)] = FillContext(start, pnl)
                else:  # a self-trade: one context, the taker side's start
                    ctx.closed_pnl += pnl
            elif kind == "adl" and e[1] in derivative:
                market, account, counterparty, lots, notional = e[1:6]
                for a in (account, counterparty):
                    pos = position(a, market)
                    if pos.size:
                        pos.apply_trade(-lots if pos.size > 0 else lots, notional)
            elif kind == "position_settled" and e[1] in derivative:
                pos = position(e[2], e[1])
                pos.size, pos.entry_notional = 0, 0
        return out, self._reconcile(touched, ex)

    def _reconcile(self, touched: set[tuple[bytes, int]], ex: Exchange | None) -> list[tuple[bytes, bytes]]:
        pack = msgpack.Packer(use_bin_type=True).pack
        puts = []
        for key in sorted(touched):
            pos = self.positions[key]
            if ex is not None:
                acct = ex.accounts.get(key[0])
                live = acct.positions.get(key[1]) if acct is not None else None
                size = live.size if live is not None else 0
                if size != pos.size:
                    pos.size, pos.entry_notional = size, live.entry_notional if live is not None else 0
            if pos.size == 0:
                pos.entry_notional = 0
            puts.append((pos_key(*key), pack([pos.size, pos.entry_notional])))
        return puts


def _seed(ex: Exchange | None, address: bytes, market: int, traded: int) -> Position:
    """A position the node has no record of: the state's size before this block (its size
    after, less what the block traded) at the state's average entry."""
    if ex is None:
        return Position()
    acct = ex.accounts.get(address)
    live = acct.positions.get(market) if acct is not None else None
    if live is None:
        return Position(-traded, 0) if traded else Position()
    start = live.size - traded
    if start == 0:
        return Position()
    if live.size and (start > 0) == (live.size > 0):
        return Position(start, live.entry_notional * abs(start) // abs(live.size))
    return Position(start, 0)
