"""Bounds: every integer the state machine stores or sums stays in its documented range,
whatever transactions the decoder accepts (audit: "a chain halt anyone with margin can
trigger"), and a one-sided book cannot set the funding rate.

Each finding has a named reproduction that failed on the code before the fix; the
hypothesis flows at the end drive the extremes the decoders allow through many blocks and
check that every block applies and every record encodes.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from state import funding
from state.codec import MAX_U64
from state.exchange import Exchange
from state.genesis import Genesis, default_markets, make_genesis_doc
from state.machine import ExecBlock
from state.tx import OraclePrices, PlaceOrder, Tif
from tests.harness import (
    BRIDGE,
    BTC,
    BTC_PERP,
    CHAIN_ID,
    ETH,
    ETH_PERP,
    T0,
    USDC,
    Chain,
    key,
    make_genesis,
)
from tests.state.riskkit import PX_60K, USD, V, risk_chain, set_prices

WHALE, SHORT, MAKER = key(120), key(121), key(122)
MAX_TICKS = make_genesis().markets[BTC_PERP].max_price_ticks  # the default top price
BIG = 10**15  # $1B: margin for a 1-lot bid at max_price_ticks ($100M notional)


# a price band wider than any price can be from its oracle: these tests check that the
# engine's integers stay bounded at the extremes a band would otherwise keep orders from
NO_BAND = 1 << 60


def _markets(**fields: Any) -> list[dict[str, Any]]:
    """The default markets with ``fields`` set on each."""
    return [{**m, **fields} for m in default_markets()]


def _fast_blocks(c: Chain, n: int, step_ms: int = 100, txs: tuple[bytes, ...] = ()) -> None:
    """``n`` blocks ``step_ms`` apart (the first carries ``txs``)."""
    for i in range(n):
        c.time += step_ms
        blk = ExecBlock(c.sm.height + 1, c.time, txs if i == 0 else ())
        c.blocks.append(blk)
        c.last = c.sm.apply_block(blk)


def _all_records_encode(ex: Exchange) -> None:
    """Every record of the state encodes (``snapshot_records`` encodes each one, as the
    write set does), and the market records' integers are within 64 bits."""
    for _key, value in ex.snapshot_records():
        assert isinstance(value, bytes)
    for m in range(len(ex.markets)):
        for v in [ex.last_price.get(m, 0), *ex.mstate[m].record()]:
            assert -(1 << 63) <= v <= MAX_U64, (m, ex.mstate[m].record())


# ----------------------------------------------------------------------------- finding 1: premium_sum


def test_premium_sum_cannot_overflow_with_a_bid_at_max_price_ticks() -> None:
    """A 1-lot BTC-PERP bid at max_price_ticks = 10^12 (an ask one tick above, so both impact
    prices exist), oracle $60k, 100 ms blocks: each sample was ~1.7e16 ppb and the market
    record overflowed 64 bits 1,106 blocks later, on every node. Samples are clamped now."""
    # the finding's top price, and no price band (the bounds must hold without one)
    c = risk_chain(markets=_markets(max_price_ticks=10**12, price_band_ppm=NO_BAND))
    set_prices(c, btc=PX_60K)
    c.fund(WHALE, USDC, BIG)
    c.fund(SHORT, USDC, BIG)
    assert c.order(WHALE, BTC_PERP, True, 10**12 - 1, 1).code == 0
    assert c.order(SHORT, BTC_PERP, False, 10**12, 1).code == 0
    _fast_blocks(c, 1_300)  # no funding boundary inside (1 h at 100 ms is 36,000 blocks)
    st_ = c.ex.mstate[BTC_PERP]
    cap = c.genesis.risk.funding_cap_ppb
    assert 0 < st_.premium_sum <= st_.premium_count * cap
    _all_records_encode(c.ex)


def test_oracle_price_of_one_cannot_halt_the_chain() -> None:
    """A validator submits BTC = 1 while perp quotes sit at $60k: the premium sample was
    6e19 ppb in that very block (OverflowError in the market record). The oracle now moves
    at most ``oracle.max_move_ppm`` per block."""
    c = risk_chain()
    set_prices(c, btc=PX_60K)
    c.fund(WHALE, USDC, 10**12)
    c.fund(SHORT, USDC, 10**12)
    assert c.order(WHALE, BTC_PERP, True, 60_000, 1_000).code == 0
    assert c.order(SHORT, BTC_PERP, False, 60_010, 1_000).code == 0
    c.block(c.sign(V, OraclePrices(((BTC, 1),))))
    assert all(r.code == 0 for r in c.last.receipts)
    band = c.genesis.risk.oracle_max_move_ppm
    assert c.ex.pools[BTC].oracle_px == PX_60K - PX_60K * band // 1_000_000
    _all_records_encode(c.ex)


def test_oracle_follows_a_real_crash_over_several_blocks() -> None:
    """The band slows a move, it does not refuse it: fresh submissions at the new price
    walk the oracle there, one band per block."""
    c = risk_chain()
    set_prices(c, btc=PX_60K)
    c.block(c.sign(V, OraclePrices(((BTC, 30_000 * USD),))))
    seen = [c.ex.pools[BTC].oracle_px]
    while seen[-1] != 30_000 * USD:
        c.block()
        seen.append(c.ex.pools[BTC].oracle_px)
    band = c.genesis.risk.oracle_max_move_ppm
    assert all(b >= a - a * band // 1_000_000 for a, b in zip([PX_60K, *seen], seen, strict=False))
    assert 2 <= len(seen) <= 10


def test_oracle_price_above_what_the_books_can_quote_is_refused() -> None:
    """The absolute range of an asset's oracle price is 1..min(max_price_ticks * tick_size)
    of its markets: beyond it no book can trade, and marks, premiums and position values
    are bounded by it."""
    c = risk_chain()
    top = min(m.max_price_ticks * m.tick_size for m in c.genesis.markets if m.base == BTC)
    r = c.run(V, OraclePrices(((BTC, top + 1),)))
    assert r.code == 504  # PRICE_OUT_OF_RANGE
    assert c.run(V, OraclePrices(((BTC, top),))).code == 0


def _doc(**changes: Any) -> dict[str, Any]:
    doc = make_genesis_doc(chain_id=CHAIN_ID, validators=[], bridge_pubkey=BRIDGE.pubkey, genesis_time_ms=T0)
    doc.update(changes)
    return doc


def test_genesis_balance_beyond_range_is_refused_at_parse() -> None:
    """Genesis balances of 2^64 made ``StateMachine.open`` raise OverflowError; now the
    document is refused when it is parsed, with the field named."""
    doc = _doc(balances=[{"address": WHALE.address.hex(), "asset": "USDC", "amount": 1 << 64}])
    with pytest.raises(ValueError, match="balances"):
        Genesis.from_json(doc)
    # two entries that add up past the range for one account are refused too
    half = [{"address": WHALE.address.hex(), "asset": "USDC", "amount": (1 << 61) + 1}] * 2
    with pytest.raises(ValueError, match="balances"):
        Genesis.from_json(_doc(balances=half))
    ok = [{"address": WHALE.address.hex(), "asset": "USDC", "amount": 1 << 61}] * 2
    Genesis.from_json(_doc(balances=ok))
    # nor can several accounts hold more than 2^62 of one asset between them
    many = [{"address": k.address.hex(), "asset": "USDC", "amount": 1 << 61} for k in (WHALE, SHORT, MAKER)]
    with pytest.raises(ValueError, match="in total"):
        Genesis.from_json(_doc(balances=many))


@pytest.mark.parametrize(("path", "value"), [
    (("genesis_time_ms",), -1),
    (("genesis_time_ms",), 1 << 63),
    (("assets", 1, "decimals"), 40),
    (("markets", 2, "tick_size"), 0),
    (("markets", 2, "max_price_ticks"), 1 << 62),
    (("markets", 2, "max_leverage"), 0),
    (("markets", 2, "min_notional"), -5),
    (("fees", "taker_ppm"), 2_000_000),
    (("limits", "max_batch_actions"), 0),
    (("risk", "funding", "cap_ppb"), 10**10),
    (("risk", "funding", "interval_ms"), 0),
    (("risk", "funding", "impact_notional"), 0),
    (("risk", "oracle", "max_move_ppm"), 0),
    (("risk", "oracle", "staleness_s"), 0),
    (("risk", "margin", "size_addon_ref"), 1 << 70),
    (("risk", "assets", "BTC", "slope2_ppm"), 1 << 70),
    (("markets", 2, "tick_size"), 1.5),
    (("markets", 2, "tick_size"), True),
])
def test_genesis_numeric_fields_out_of_range_are_refused(path: tuple[Any, ...], value: Any) -> None:
    doc = copy.deepcopy(_doc())
    node: Any = doc
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value
    with pytest.raises(ValueError):
        Genesis.from_json(doc)


# ----------------------------------------------------------------------------- finding 2: one-sided funding


def test_one_sided_impact_bid_cannot_move_the_funding_rate() -> None:
    """The finding: a 1,600-lot bid at +4.2% on a book with no asks near it drove funding to
    the 4% cap. Without an impact ask (the $10k notional cannot be filled on the ask side)
    there is no premium: the rate is the interest rate, whatever the bid."""
    c = risk_chain(risk={"funding": {"interval_ms": 10_000}})
    set_prices(c, btc=PX_60K)
    c.fund(SHORT, USDC, 100_000 * USD)
    c.fund(MAKER, USDC, 100_000 * USD)
    assert c.order(SHORT, BTC_PERP, True, 62_520, 1_600).code == 0  # +4.2%, $10,003
    assert c.order(MAKER, BTC_PERP, False, 62_600, 2).code == 0  # an ask, far short of $10k
    events: list[Any] = []
    while len(events) < 2:
        c.block()
        events += [e for _, e in c.last.events if isinstance(e, tuple) and e[0] == "funding" and e[1] == BTC_PERP]
    assert [e[2] for e in events] == [c.genesis.risk.funding_interest_ppb] * 2
    book = c.ex.books[BTC_PERP]
    assert funding.impact_level(c.ex, book, True, 100, 10_000 * USD) == 62_520
    assert funding.impact_level(c.ex, book, False, 100, 10_000 * USD) == 0


# ----------------------------------------------------------------------------- hypothesis flows

VALS = [key(130), key(131), key(132)]
TRADERS = [key(140), key(141), key(142)]
MAX_AMOUNT = 1 << 62


def _flow_chain() -> Chain:
    # a quorum of one: each validator's draw moves the oracle alone, to the range's ends
    c = risk_chain(validators=VALS, risk={"funding": {"interval_ms": 60_000}, "oracle": {"min_submissions": 1}},
                   markets=_markets(price_band_ppm=NO_BAND))  # quotes at the extremes
    for k in TRADERS:  # together at the custody cap (2^62 of an asset on the chain)
        c.block(c.sign(BRIDGE, _deposit(k, USDC, MAX_AMOUNT // len(TRADERS))))
    return c


def _deposit(k: Any, asset: int, amount: int) -> Any:
    from state.tx import Deposit

    return Deposit(k.address, asset, amount)


ORACLE_PX = st.sampled_from([1, 2, 10**6, PX_60K, 10**12, 10**13, 10**15, 10**18, MAX_TICKS * 10**6, 1 << 62])
TICKS = st.sampled_from([1, 2, 59_999, 60_000, 60_001, MAX_TICKS - 1, MAX_TICKS])
SIZES = st.sampled_from([1, 2, 1_000, 10**6, 10**10, 10**13])


AMOUNTS = st.sampled_from([1, 10**6, 10**15, MAX_AMOUNT - 1, MAX_AMOUNT, (1 << 63) - 1])


@st.composite
def _tx(draw: Any, c: Chain) -> bytes:
    """One transaction the decoder accepts, with the extreme values of its fields."""
    from state.tx import Borrow, Cancel, CancelAll, Deposit, Lend, Modify, Repay, Withdraw

    kind = draw(st.integers(0, 9))
    if kind <= 1:
        v = draw(st.sampled_from(VALS))
        return c.sign(v, OraclePrices(((BTC, draw(ORACLE_PX)), (ETH, draw(ORACLE_PX)))))
    k = draw(st.sampled_from(TRADERS))
    market = draw(st.sampled_from([BTC_PERP, ETH_PERP, 0]))
    asset = draw(st.sampled_from([USDC, BTC, ETH]))
    oid = draw(st.integers(1, 40))
    action: Any
    if kind <= 4:
        tif = draw(st.sampled_from([Tif.GTC, Tif.IOC, Tif.ALO]))
        action = PlaceOrder(market, draw(st.booleans()), draw(TICKS), draw(SIZES), tif, draw(st.booleans()), None)
    elif kind == 5:
        action = Modify(market, oid, None, draw(TICKS), draw(SIZES))
    elif kind == 6:
        action = draw(st.sampled_from([Cancel(market, oid, None), CancelAll(None), Lend(asset, draw(st.booleans()))]))
    elif kind == 7:
        return c.sign(BRIDGE, Deposit(k.address, asset, draw(AMOUNTS)))
    elif kind == 8:
        action = draw(st.sampled_from([Withdraw(asset, draw(AMOUNTS), b"x"), Borrow(asset, draw(AMOUNTS))]))
    else:
        action = Repay(asset, draw(AMOUNTS))
    return c.sign(k, action)


@settings(max_examples=12, deadline=None)
@given(st.data())
def test_apply_block_never_raises_on_extreme_values(data: Any) -> None:
    """Random blocks of oracle submissions at both ends of the range and orders at the
    price and size extremes, each followed by a run of 100 ms blocks (crossing funding
    boundaries): every block applies and every record encodes."""
    c = _flow_chain()
    for _ in range(data.draw(st.integers(1, 6))):
        txs = tuple(data.draw(st.lists(_tx(c), min_size=1, max_size=6)))
        _fast_blocks(c, data.draw(st.sampled_from([1, 50, 700])), step_ms=100, txs=txs)
        _all_records_encode(c.ex)


@settings(max_examples=8, deadline=None)
@given(st.data())
def test_apply_block_never_raises_from_an_established_market(data: Any) -> None:
    """As above, from a market with an oracle at $60k, a two-sided book and open positions
    (so the move band, liquidations and mark-to-market settlements are exercised)."""
    c = _flow_chain()
    a, b, t = TRADERS
    c.block(*(c.sign(v, OraclePrices(((BTC, PX_60K), (ETH, 3_000 * USD)))) for v in VALS))
    r = c.block(c.sign(a, PlaceOrder(BTC_PERP, True, 59_990, 10**6, Tif.GTC, False, None)),
                c.sign(b, PlaceOrder(BTC_PERP, False, 60_000, 2 * 10**6, Tif.GTC, False, None)),
                c.sign(t, PlaceOrder(BTC_PERP, True, 60_000, 10**6, Tif.IOC, False, None)))
    assert [x.code for x in r.receipts] == [0, 0, 0]
    for _ in range(data.draw(st.integers(1, 8))):
        txs = tuple(data.draw(st.lists(_tx(c), min_size=1, max_size=8)))
        _fast_blocks(c, data.draw(st.sampled_from([1, 20, 300])), step_ms=100, txs=txs)
        _all_records_encode(c.ex)


@settings(max_examples=5, deadline=None)
@given(st.sampled_from([1, 1 << 62, MAX_TICKS * 10**6]), st.sampled_from([2, MAX_TICKS]))
def test_long_run_of_blocks_with_quotes_at_the_extremes(oracle_px: int, bid: int) -> None:
    """Thousands of 100 ms blocks with the book quoting at an extreme and the validators
    pushing the oracle to the other end: the premium sums, the funding index and phi stay
    in range across many funding intervals."""
    c = _flow_chain()
    a, b, t = TRADERS
    # the largest order the notional cap and the position limit at the top price allow
    size = max(1, min(10**15 // (bid * 100 * 2), (1 << 60) // (MAX_TICKS * 100 * 2)))
    r = c.block(c.sign(a, PlaceOrder(BTC_PERP, True, bid - 1, size, Tif.GTC, False, None)),
                c.sign(b, PlaceOrder(BTC_PERP, False, bid, 2 * size, Tif.GTC, False, None)),
                c.sign(t, PlaceOrder(BTC_PERP, True, bid, size, Tif.IOC, False, None)))
    assert [x.code for x in r.receipts] == [0, 0, 0]  # a two-sided book and a position
    for _ in range(4):
        subs = tuple(c.sign(v, OraclePrices(((BTC, oracle_px),))) for v in VALS)
        _fast_blocks(c, 1_000, step_ms=100, txs=subs)
        _all_records_encode(c.ex)
    assert c.ex.funding_epoch >= 6


# ----------------------------------------------------------------------------- position values


def test_position_value_at_the_top_price_fits_64_bits() -> None:
    """A position opened at $60k up to the notional cap (10^17, 1.67M BTC) and the oracle
    walked up within the band to the top price of the market: the position marked to market
    at the settlement (entry notional = size x mark) must still encode. The lots a market
    lets an account hold, counting its open orders, are bounded by the value at the top
    price (``units.MAX_POSITION_VALUE``)."""
    c = risk_chain(risk={"funding": {"interval_ms": 60_000}})
    set_prices(c, btc=PX_60K)
    c.fund(WHALE, USDC, 1 << 61)  # custody of an asset is capped at 2^62
    c.fund(SHORT, USDC, 1 << 61)
    spec = c.genesis.markets[BTC_PERP]
    top = spec.max_price_ticks
    lots = 10**15 // (60_000 * spec.tick_value)  # one order at the order notional cap
    filled = 0
    for _ in range(200):
        r = c.block(c.sign(SHORT, PlaceOrder(BTC_PERP, False, 60_000, lots, Tif.GTC, False, None)),
                    c.sign(WHALE, PlaceOrder(BTC_PERP, True, 60_000, lots, Tif.IOC, False, None)))
        if any(x.code != 0 for x in r.receipts):
            break
        filled += lots
    pos = c.ex.accounts[WHALE.address].positions[BTC_PERP]
    assert pos.size == filled and filled * top * spec.tick_value <= 1 << 60
    for _ in range(400):  # resubmitted every 10 s: submissions go stale after 60 s
        _fast_blocks(c, 10, step_ms=1000, txs=(c.sign(V, OraclePrices(((BTC, top * spec.tick_size),))),))
        if c.ex.pools[BTC].oracle_px == top * spec.tick_size:
            break
    _fast_blocks(c, 70, step_ms=1000)  # past a funding boundary: epoch_mark at the top
    # a touch settles the position to the epoch mark
    c.block(c.sign(WHALE, PlaceOrder(BTC_PERP, False, top, 1, Tif.GTC, False, None)))
    _all_records_encode(c.ex)


def test_premium_count_is_bounded_and_the_mean_kept() -> None:
    """An interval with more samples than MAX_PREMIUM_SAMPLES (blocks sharing a time, or a
    very long interval) halves sum and count instead of growing them: the count stays at
    most the bound, the sum within count x cap, and the mean is kept."""
    c = risk_chain()
    set_prices(c, btc=PX_60K)
    st_ = c.ex.mstate[BTC_PERP]
    cap = c.genesis.risk.funding_cap_ppb
    st_.premium_sum, st_.premium_count = funding.MAX_PREMIUM_SAMPLES * cap, funding.MAX_PREMIUM_SAMPLES
    c.block()
    assert st_.premium_count == funding.MAX_PREMIUM_SAMPLES // 2 + 1
    assert st_.premium_sum == funding.MAX_PREMIUM_SAMPLES // 2 * cap  # the new sample is 0 (empty book)
    assert abs(st_.premium_sum) <= st_.premium_count * cap


def test_funding_index_and_phi_saturate_at_their_bounds() -> None:
    """At the bound the shared index stops moving (so funding stays zero-sum) and phi
    stops growing, instead of leaving 64 bits."""
    c = risk_chain(risk={"funding": {"interval_ms": 10_000}})
    set_prices(c, btc=PX_60K)
    st_ = c.ex.mstate[BTC_PERP]
    st_.funding_index, st_.phi = funding.MAX_FUNDING_INDEX - 1, funding.MAX_PHI - 1
    epoch = c.ex.funding_epoch
    while c.ex.funding_epoch == epoch:
        c.block()
    assert st_.funding_index == funding.MAX_FUNDING_INDEX and st_.phi == funding.MAX_PHI
    (event,) = [e for _, e in c.last.events if isinstance(e, tuple) and e[0] == "funding" and e[1] == BTC_PERP]
    assert event[3] == 1  # the per-lot amount actually applied
    _all_records_encode(c.ex)


def test_total_deposits_of_an_asset_are_capped_at_2_62() -> None:
    """Several accounts at the per-balance cap could otherwise lose to one, whose balance
    would then pass 2^64: custody bounds every balance of the asset."""
    from state.errors import Code
    from state.tx import Deposit
    from tests.harness import BRIDGE, USDC, Chain, key

    c = Chain()
    half = 1 << 61
    assert c.run(BRIDGE, Deposit(key(60).address, USDC, half)).code == Code.OK
    assert c.run(BRIDGE, Deposit(key(61).address, USDC, half - 1)).code == Code.OK
    assert c.run(BRIDGE, Deposit(key(62).address, USDC, 2)).code == Code.AMOUNT_OUT_OF_RANGE
