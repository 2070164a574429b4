"""The node's account history, per-account order history and candles (node/history.py),
indexed into a real block store exactly as node/execution.py does it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from node import history
from node.blockstore import BlockStore
from state.tx import Cancel, PlaceOrder, Tif, Transfer, Withdraw
from tests.harness import BRIDGE, BTC, BTC_SPOT, T0, USDC, Chain, key
from tests.node.indexing import index_block

A, B, C = key(40), key(41), key(42)
TV = 100  # BTC/USDC's tick_value in the test genesis: quote units per tick per lot
M = T0 + 40_000  # a minute boundary (T0 is 20 s into its minute) that is not a 5-minute one


class HistChain:
    """A harness chain whose blocks are indexed into a block store with node/history.py."""

    def __init__(self, tmp: Path, fund: bool = True, chain: Chain | None = None) -> None:
        self.c = chain or Chain()
        self.path = str(tmp / "blocks")
        self.store = BlockStore(self.path)
        self.candles = history.CandleBook(self.store.get)
        if fund:
            for k in (A, B):
                self.block(self.c.sign(BRIDGE, _deposit(k.address, USDC, 10_000_000 * 10**6)))
                self.block(self.c.sign(BRIDGE, _deposit(k.address, BTC, 10 * 10**8)))

    def block(self, *txs: bytes, at: int | None = None) -> Any:
        if at is not None:
            self.c.time = at - 1000  # Chain.block adds a second
        r = self.c.block(*txs)
        index_block(self.store, self.candles, self.c.ex, r, txs, self.c.time)
        return r

    def order(self, k: Any, is_buy: bool, price: int, size: int, tif: Tif = Tif.GTC, at: int | None = None) -> int:
        r = self.block(self.c.sign(k, PlaceOrder(BTC_SPOT, is_buy, price, size, tif, False, None)), at=at)
        oid = r.receipts[0].results[0].oid
        assert oid is not None
        return int(oid)

    def kinds(self, k: Any, **kw: Any) -> list[str]:
        entries, _ = self.store.history(k.address, kw.pop("limit", 100), **kw)
        return [e[3][0] for e in entries]


def _deposit(to: bytes, asset: int, amount: int) -> Any:
    from state.tx import Deposit

    return Deposit(to, asset, amount)


# ---------------------------------------------------------------------------- candles
def _trade_across_a_minute(tmp: Path) -> HistChain:
    """A rests asks of 10 lots at 60,000, 60,005 and 60,010; B lifts them with IOC buys in
    four blocks, two before the minute boundary M and two after it:
    M-2s: 4 @ 60,000 | M-1s: 6 @ 60,000 + 4 @ 60,005 | M: 3 @ 60,005 | M+1s: 3 @ 60,005 + 7 @ 60,010."""
    hc = HistChain(tmp)
    for price in (60_000, 60_005, 60_010):
        hc.order(A, False, price, 10)
    hc.order(B, True, 60_000, 4, Tif.IOC, at=M - 2000)
    hc.order(B, True, 60_005, 10, Tif.IOC, at=M - 1000)
    hc.order(B, True, 60_005, 3, Tif.IOC, at=M)
    hc.order(B, True, 60_010, 10, Tif.IOC, at=M + 1000)
    return hc


def test_one_minute_candles_match_the_fills_that_made_them(tmp_path: Path) -> None:
    hc = _trade_across_a_minute(tmp_path)
    got = hc.store.candles(BTC_SPOT, "1m", start_ms=M - 60_000)
    assert got == [
        {"t": M - 60_000, "T": M - 1, "o": 60_000, "h": 60_005, "l": 60_000, "c": 60_005, "v": 14, "n": 3,
         "quote_volume": (4 * 60_000 + 6 * 60_000 + 4 * 60_005) * TV},
        {"t": M, "T": M + 59_999, "o": 60_005, "h": 60_010, "l": 60_005, "c": 60_010, "v": 13, "n": 3,
         "quote_volume": (3 * 60_005 + 3 * 60_005 + 7 * 60_010) * TV},
    ]


def test_five_minute_and_daily_candles_span_the_minute_boundary(tmp_path: Path) -> None:
    hc = _trade_across_a_minute(tmp_path)
    five = M - M % 300_000
    assert five != M
    (c5,) = hc.store.candles(BTC_SPOT, "5m")
    assert (c5["t"], c5["T"], c5["o"], c5["h"], c5["l"], c5["c"], c5["v"], c5["n"]) == \
        (five, five + 299_999, 60_000, 60_010, 60_000, 60_010, 27, 6)
    (cd,) = hc.store.candles(BTC_SPOT, "1d")
    assert cd["v"] == 27 and cd["quote_volume"] == (10 * 60_000 + 10 * 60_005 + 7 * 60_010) * TV
    assert hc.store.candles(1, "1m") == []  # ETH/USDC never traded


def test_candle_range_and_limit(tmp_path: Path) -> None:
    hc = _trade_across_a_minute(tmp_path)
    assert [c["t"] for c in hc.store.candles(BTC_SPOT, "1m", limit=1)] == [M]  # the latest
    assert [c["t"] for c in hc.store.candles(BTC_SPOT, "1m", start_ms=0, end_ms=M - 1)] == [M - 60_000]
    assert [c["t"] for c in hc.store.candles(BTC_SPOT, "1m", start_ms=M)] == [M]


def test_a_restarted_node_continues_the_stored_candle(tmp_path: Path) -> None:
    """The in-memory last candle is gone after a restart: the first block reads the stored
    one and adds to it, not over it."""
    hc = _trade_across_a_minute(tmp_path)
    hc.candles = history.CandleBook(hc.store.get)  # a fresh process
    hc.order(A, False, 60_020, 5)
    hc.order(B, True, 60_020, 5, Tif.IOC, at=M + 5000)  # 3 @ 60,010 (left over) + 2 @ 60,020
    c = hc.store.candles(BTC_SPOT, "1m")[-1]
    assert (c["t"], c["o"], c["h"], c["l"], c["c"], c["v"], c["n"]) == (M, 60_005, 60_020, 60_005, 60_020, 18, 5)


def test_candles_survive_pruning(tmp_path: Path) -> None:
    hc = _trade_across_a_minute(tmp_path)
    before = hc.store.candles(BTC_SPOT, "1m", start_ms=1)
    assert hc.store.prune_below(hc.c.sm.height) > 0
    assert hc.store.candles(BTC_SPOT, "1m", start_ms=1) == before


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 200_000), st.lists(st.tuples(st.integers(1, 10**6), st.integers(1, 10**4)),
                                                          min_size=0, max_size=4)), min_size=1, max_size=12))
def test_candles_equal_a_recomputation_from_all_fills(blocks: list[tuple[int, list[tuple[int, int]]]]) -> None:
    """Property: however fills fall into blocks and intervals, the incremental candles equal
    OHLCV recomputed from the whole list of fills (in a dict standing in for LevelDB)."""
    db: dict[bytes, bytes] = {}
    book = history.CandleBook(db.get)
    t = T0
    all_fills: list[tuple[int, int, int]] = []
    for gap, fills in blocks:
        t += gap
        events = [[0, ["fill", 0, p, s, True, A.address, B.address, 1, 2, 0, 0]] for p, s in fills]
        trades = history.block_trades(events, lambda m: TV)
        db.update(book.puts(t, trades))
        all_fills += [(t, p, s) for p, s in fills]
        if gap % 7 == 0:  # now and then a restart: the book forgets its cache
            book = history.CandleBook(db.get)
    for name, (code, length) in history.INTERVALS.items():
        expect: dict[int, list[int]] = {}
        for tm, p, s in all_fills:
            start = tm - tm % length
            c = expect.get(start)
            if c is None:
                expect[start] = [p, p, p, p, s, 1, p * s * TV]
            else:
                expect[start] = [c[0], max(c[1], p), min(c[2], p), p, c[4] + s, c[5] + 1, c[6] + p * s * TV]
        import msgpack

        got = {k: msgpack.unpackb(v) for k, v in db.items() if k[:4] == history.candle_key(0, code, 0)[:4]}
        assert got == {history.candle_key(0, code, s): v for s, v in expect.items()}, name


# ---------------------------------------------------------------------------- history
def test_history_lists_every_kind_of_the_account_newest_first(tmp_path: Path) -> None:
    hc = HistChain(tmp_path)  # A: deposits of USDC then BTC
    ask = hc.order(A, False, 60_000, 10)
    hc.order(B, True, 60_000, 4, Tif.IOC)  # A maker, B taker; B's IOC fills whole
    hc.block(hc.c.sign(A, Cancel(BTC_SPOT, ask, None)))
    hc.block(hc.c.sign(A, Transfer(C.address, USDC, 5 * 10**6)))
    hc.block(hc.c.sign(A, Withdraw(USDC, 1 * 10**6, b"\x01" * 20)))
    assert hc.kinds(A) == ["withdraw", "transfer", "cancel", "fill", "deposit", "deposit"]
    assert hc.kinds(C) == ["transfer"]  # the receiving side
    assert hc.kinds(B) == ["fill", "deposit", "deposit"]
    entries, _ = hc.store.history(C.address, 10)
    height, _seq, time_ms, event = entries[0]
    assert (height, time_ms) == (hc.c.sm.height - 1, hc.c.time - 1000)
    assert event == ["transfer", A.address, C.address, USDC, 5 * 10**6]


def test_history_pages_with_a_cursor_and_filters_kinds_and_time(tmp_path: Path) -> None:
    hc = HistChain(tmp_path)
    for _ in range(3):
        hc.block(hc.c.sign(A, Transfer(C.address, USDC, 10**6)))
    first, cursor = hc.store.history(A.address, 2)
    assert [e[3][0] for e in first] == ["transfer", "transfer"] and cursor is not None
    rest, end = hc.store.history(A.address, 10, before=history.parse_cursor(cursor))
    assert [e[3][0] for e in rest] == ["transfer", "deposit", "deposit"] and end is None
    assert hc.kinds(A, kinds=["deposit"]) == ["deposit", "deposit"]
    newest_time = first[0][2]
    assert hc.kinds(A, start_ms=newest_time) == ["transfer"]
    assert hc.kinds(A, end_ms=newest_time - 1000) == ["transfer", "transfer", "deposit", "deposit"]


def test_history_is_pruned_with_the_blocks(tmp_path: Path) -> None:
    """Every entry of a pruned height goes (deposits, both sides of a fill, an IOC's cancel);
    later ones stay."""
    hc = HistChain(tmp_path)  # deposits at heights 1-4
    hc.order(A, False, 60_000, 5)
    hc.order(B, True, 60_000, 8, Tif.IOC)  # 5 filled, 3 cancelled
    cut = hc.c.sm.height + 1
    hc.block(hc.c.sign(A, Transfer(C.address, USDC, 10**6)))
    assert hc.store.prune_below(cut) > 0
    assert hc.kinds(A) == ["transfer"]
    assert hc.kinds(B) == []
    assert hc.kinds(C) == ["transfer"]
    left = [k for k, _ in hc.store.db.iterator(prefix=b"h")]
    assert len(left) == 2 and all(int.from_bytes(k[21:29], "big") >= cut for k in left)


def test_accounts_of_each_event_kind() -> None:
    a, b = A.address, B.address
    cases: list[tuple[list[Any], list[bytes]]] = [
        (["fill", 0, 1, 1, True, a, b, 1, 2, 0, 0], [a, b]),
        (["fill", 0, 1, 1, True, a, a, 1, 2, 0, 0], [a]),  # self-trade: one entry
        (["cancel", 0, 7, a, 3, "ioc"], [a]),
        (["deposit", a, 0, 5], [a]),
        (["withdraw", a, 0, 5, b"\x01"], [a]),
        (["transfer", a, b, 0, 5], [a, b]),
        (["borrow", a, 0, 5], [a]),
        (["repay", a, 0, 5], [a]),
        (["funding_payment", a, 2, 150, -20], [a]),
        (["liquidation", a, "start", 10, 20], [a]),
        (["liquidation", a, "book", 2, True, 3, 60_000], [a]),
        (["liquidation", a, "backstop", -5], [a]),
        (["adl", 2, a, b, 3, 100], [a, b]),
        (["funding", 2, 10, 3, 30], []),
        (["socialized", 0, 5, 100], []),
        (["some_future_kind", a], []),
    ]
    for event, accounts in cases:
        assert history.addresses_of(event) == accounts, event


def test_funding_payments_are_indexed_for_their_account() -> None:
    """A funding boundary's per-position ``funding_payment`` reaches the account's history
    with the block's time; the market-wide ``funding`` event reaches nobody's."""
    events = [[0, ["funding", 2, 10, 3, 30]], [0, ["funding_payment", A.address, 2, 150, -20]]]
    puts = history.history_puts(9, T0, events)
    assert [k for k, _ in puts] == [history.hist_key(A.address, 9, 1)]


# ---------------------------------------------------------------------------- orders
def test_order_history_lists_finished_orders_newest_first(tmp_path: Path) -> None:
    hc = HistChain(tmp_path)
    ask = hc.order(A, False, 60_000, 10)
    taker = hc.order(B, True, 60_000, 10, Tif.IOC)  # fills A's ask whole
    bid = hc.order(A, True, 59_000, 5)
    hc.block(hc.c.sign(A, Cancel(BTC_SPOT, bid, None)))
    still_open = hc.order(A, True, 58_000, 5)
    got = hc.store.order_history(A.address, 10)
    assert [(o["oid"], o["status"], o["reason"]) for o in got] == [(bid, "cancelled", "cancelled"), (ask, "filled", "")]
    assert still_open not in [o["oid"] for o in got]
    assert [(o["oid"], o["status"]) for o in hc.store.order_history(B.address, 10)] == [(taker, "filled")]
    assert [o["oid"] for o in hc.store.order_history(A.address, 1)] == [bid]
    assert [o["oid"] for o in hc.store.order_history(A.address, 10, before=got[0]["height"])] == [ask]


def test_order_history_is_pruned_with_the_blocks(tmp_path: Path) -> None:
    hc = HistChain(tmp_path)
    early = hc.order(A, True, 59_000, 5)
    hc.block(hc.c.sign(A, Cancel(BTC_SPOT, early, None)))
    cut = hc.c.sm.height + 1
    late = hc.order(A, True, 58_000, 5)
    hc.block(hc.c.sign(A, Cancel(BTC_SPOT, late, None)))
    assert hc.store.prune_below(cut) > 0
    assert [o["oid"] for o in hc.store.order_history(A.address, 10)] == [late]


# ---------------------------------------------------------------------------- the account stream
def test_account_stream_reaches_every_named_account_once() -> None:
    """Execution._notify publishes each event to every address it names: both sides of a
    fill, transfer and ADL, a cancel's owner; a self-trade once."""
    from node.events import EventBus
    from node.execution import Execution
    from state.keys import address_to_text

    bus = EventBus()

    class _Block:
        height = 5
        hash = b"\x00" * 32
        txs = ()

        class header:
            time_ms = T0

    class _Ex:
        markets: tuple[Any, ...] = ()
        books: dict[int, Any] = {}

    class _Sm:
        ex = _Ex()
        app_hash = b"\x00" * 32

    ex = Execution.__new__(Execution)
    ex.bus, ex.waiters, ex.sm = bus, {}, _Sm()  # type: ignore[assignment]

    async def run() -> dict[str, list[str]]:
        subs = {n: bus.subscribe("account", address_to_text(k.address)) for n, k in (("a", A), ("b", B), ("c", C))}
        events = [[0, ["fill", 0, 60_000, 1, True, A.address, B.address, 1, 2, 0, 0]],
                  [0, ["fill", 0, 60_000, 1, True, A.address, A.address, 3, 4, 0, 0]],
                  [0, ["cancel", 0, 7, C.address, 3, "ioc"]],
                  [0, ["adl", 2, B.address, C.address, 3, 100]],
                  [0, ["funding_payment", C.address, 2, 150, -20]]]
        ex._notify(_Block(), [], [], events)  # type: ignore[arg-type]
        out: dict[str, list[str]] = {}
        for n, s in subs.items():
            out[n] = []
            while not s.queue.empty():
                out[n].append(s.queue.get_nowait()["data"]["type"])
        return out

    got = asyncio.run(run())
    assert got == {"a": ["fill", "fill"], "b": ["fill", "adl"], "c": ["cancel", "adl", "funding_payment"]}


# ---------------------------------------------------------------------------- through the node's execution
def test_execution_indexes_blocks_and_a_handshake_does_not_double_count(tmp_path: Path) -> None:
    """Blocks committed through node/execution.py index history and candles; a state that
    restarts behind the block store re-applies them (handshake) without indexing them again,
    and the next trade adds to the stored candle (the fresh process has no cached one)."""
    from consensus.block import make_block
    from consensus.certificate import CommitCertificate
    from consensus.messages import Vote, VoteType
    from node.config import MempoolConfig
    from node.events import EventBus
    from node.execution import Execution
    from node.mempool import Mempool
    from state.genesis import Genesis, make_genesis_doc
    from state.keys import PrivateKey, address_to_text
    from state.machine import StateMachine
    from state.tx import sign_tx

    vals = [PrivateKey(bytes([60 + i]) * 32) for i in range(3)]
    balances = [{"address": address_to_text(k.address), "asset": sym, "amount": amt}
                for k in (A, B) for sym, amt in (("USDC", 10**12), ("BTC", 10**9))]
    doc = make_genesis_doc(chain_id="hist-test", genesis_time_ms=T0, bridge_pubkey=BRIDGE.pubkey, balances=balances,
                           validators=[{"name": f"v{i}", "pubkey": k.pubkey.hex(), "power": 1} for i, k in enumerate(vals)],
                           initial_oracle_prices={"BTC": 60_000_000_000})
    genesis = Genesis.from_json(doc)
    store = BlockStore(str(tmp_path / "blocks"))

    def node(sm: StateMachine) -> Execution:
        return Execution(sm, store, Mempool(sm, MempoolConfig()), EventBus(), None)

    def commit(ex: Execution, k: Any, action: Any) -> None:
        h = ex.sm.height + 1
        txs = (sign_tx(k, T0 + h, action, "hist-test"),)
        block = make_block(chain_id="hist-test", height=h, round=0, time_ms=M + 1000 * h, prev_block_hash=ex.last_block_hash,
                           prev_app_hash=ex.sm.app_hash, proposer=vals[0].pubkey, txs=txs)
        cert = CommitCertificate.from_votes([Vote.create(v, "hist-test", VoteType.PRECOMMIT, h, 0, block.hash) for v in vals])
        ex.commit(block, cert)

    ex = node(StateMachine.open(genesis, None))
    commit(ex, A, PlaceOrder(BTC_SPOT, False, 60_000, 10, Tif.GTC, False, None))
    commit(ex, B, PlaceOrder(BTC_SPOT, True, 60_000, 4, Tif.IOC, False, None))
    commit(ex, B, PlaceOrder(BTC_SPOT, True, 60_000, 6, Tif.IOC, False, None))

    def state() -> tuple[Any, ...]:
        (c,) = store.candles(BTC_SPOT, "1m")
        return (c["v"], c["n"], len(store.history(A.address, 100)[0]), len(store.history(B.address, 100)[0]),
                [o["status"] for o in store.order_history(A.address, 10)])

    assert state() == (10, 2, 2, 2, ["filled"])
    restarted = node(StateMachine.open(genesis, None))  # a state at height 0 behind a store at 3
    assert restarted.handshake() == 3
    assert state() == (10, 2, 2, 2, ["filled"])
    commit(restarted, A, PlaceOrder(BTC_SPOT, False, 60_100, 5, Tif.GTC, False, None))
    commit(restarted, B, PlaceOrder(BTC_SPOT, True, 60_100, 5, Tif.IOC, False, None))
    (c,) = store.candles(BTC_SPOT, "1m")
    assert (c["o"], c["h"], c["c"], c["v"], c["n"]) == (60_000, 60_100, 60_100, 15, 3)
    store.close()


def test_fills_are_served_from_the_history_then_the_old_fill_index(tmp_path: Path) -> None:
    """/fills reads fills from the account history; a store written before the history
    existed still answers with its fill index entries, below the history's heights."""
    hc = HistChain(tmp_path)
    legacy = ["legacy"]  # a fill index entry as an older node wrote it (at height 1)
    hc.store.db.put(b"f" + A.address + (1).to_bytes(8, "big") + (0).to_bytes(4, "big"),
                    __import__("msgpack").packb(legacy))
    hc.order(A, False, 60_000, 10)
    hc.order(B, True, 60_000, 3, Tif.IOC)
    hc.order(B, True, 60_000, 2, Tif.IOC)
    got = hc.store.fills(A.address, 10)
    assert [(f[1], f[2]) for _, f in got[:2]] == [(60_000, 2), (60_000, 3)]
    assert got[2] == (1, legacy) and len(got) == 3
    assert [f[2] for _, f in hc.store.fills(B.address, 1)] == [2]


def test_a_funding_boundary_reaches_both_positions_histories(tmp_path: Path) -> None:
    """End to end from the state machine: W long and LO short 1 BTC-PERP at $60,000, the
    oracle at $63,000 at the boundary (tests/state/test_interest_bearing_pnl.py's numbers):
    W pays 780,000 funding and realizes +$3,000; LO the opposite. Each history has its
    own ``funding_payment``; the market-wide ``funding`` event is in neither."""
    from state.tx import OraclePrices
    from tests.harness import BTC_PERP
    from tests.state.riskkit import BTC_UNIT, PX_60K, USD, V, risk_chain, set_prices

    day = 86_400_000
    c = risk_chain(risk={"funding": {"interval_ms": 400 * day}})
    hc = HistChain(tmp_path, fund=False, chain=c)
    set_prices(c, btc=PX_60K)
    c.fund(A, USDC, 10_000 * USD)
    c.fund(B, BTC, BTC_UNIT)
    c.fund(B, USDC, 10 * USD)
    hc.block(c.sign(B, PlaceOrder(BTC_PERP, False, 60_000, 10_000, Tif.GTC, False, None)))
    hc.block(c.sign(A, PlaceOrder(BTC_PERP, True, 60_000, 10_000, Tif.GTC, False, None)))
    set_prices(c, btc=63_000 * USD)
    boundary = c.genesis.genesis_time_ms + 400 * day
    hc.block(c.sign(V, OraclePrices(((BTC, 63_000 * USD),))), at=boundary)
    for k, funding, pnl in ((A, 780_000, 3_000 * USD), (B, -780_000, -3_000 * USD)):
        entries, _ = hc.store.history(k.address, 10, kinds=["funding_payment"])
        assert [(t, e) for _, _, t, e in entries] == [(boundary, ["funding_payment", k.address, BTC_PERP, funding, pnl])]
        assert "funding" not in hc.kinds(k)
