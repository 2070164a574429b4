"""Audit finding "Prices that an attacker sets": each attack replayed as reported.

1. Index from the book. A chain whose assets have no oracle price (a genesis without
   validators and without initial prices) used to take the index from the book: an
   attacker bids $1/BTC for 200,000 lots (20 BTC), an accomplice sells 20 BTC it does not
   have into it (a margin borrow valued at $1), the attacker withdraws the 20 BTC and both
   withdraw their USDC: $2,000 in, 20 BTC (the lenders') plus $1,979 out.
2. Mark on a thin perp book. The oracle stays at $60k; an attacker quotes 65,990 / 66,010
   and wash-trades 2 lots at 65,995 every block with an accomplice. The mark used to follow
   the book (EMA by block count, best bid/ask/last) until a 1 BTC short was liquidated by
   buying from the attacker's ask.
"""

from __future__ import annotations

from state.errors import Code
from state.genesis import default_markets
from state.prices import mark_price
from state.tx import PlaceOrder, Tif, Withdraw
from tests.harness import BTC, BTC_PERP, BTC_SPOT, USDC, Chain, key, make_genesis
from tests.state.riskkit import USD, risk_chain, set_prices

ATTACKER, ACCOMPLICE, LENDER, VICTIM, MAKER = key(60), key(61), key(62), key(63), key(64)
BTC_UNIT = 10**8
LOTS_PER_BTC = 10_000  # BTC lot size 0.0001 BTC


# ------------------------------------------------------------------------------ attack 1
def _spot_attack(c: Chain) -> dict[str, int]:
    """Replay attack 1 on ``c``; returns the codes of each step."""
    c.fund(LENDER, BTC, 100 * BTC_UNIT)  # auto-lend: the pool holds the lenders' 100 BTC
    c.fund(ATTACKER, USDC, 1_000 * USD)
    c.fund(ACCOMPLICE, USDC, 1_000 * USD)
    lots = 20 * LOTS_PER_BTC * 1  # 200,000 lots = 20 BTC
    codes = {"bid": c.order(ATTACKER, BTC_SPOT, True, 1, lots).code}
    codes["short_sale"] = c.order(ACCOMPLICE, BTC_SPOT, False, 1, lots, Tif.IOC).code
    codes["withdraw_btc"] = c.result(ATTACKER, Withdraw(BTC, 20 * BTC_UNIT, b"out")).code
    codes["withdraw_usdc_a"] = c.result(ATTACKER, Withdraw(USDC, 979 * USD, b"out")).code
    codes["withdraw_usdc_b"] = c.result(ACCOMPLICE, Withdraw(USDC, 1_000 * USD, b"out")).code
    return codes


def test_attack1_no_oracle_price_means_no_index_and_no_short_sale() -> None:
    """No validators, no initial prices: BTC has no index. It must not be priced from the
    book (old: $1 after the attacker's own bid), so the accomplice cannot sell BTC it does
    not hold, and the lenders' BTC stays in the pool."""
    c = Chain(genesis=make_genesis(initial_oracle_prices={}))
    codes = _spot_attack(c)
    assert codes["bid"] == Code.OK  # buying with USDC it holds is fine: the BTC counts as zero
    assert codes["short_sale"] == Code.STALE_PRICE, codes
    assert c.ex.index_px[BTC] == 0  # the book did not become the index
    accomplice = c.ex.accounts.get(ACCOMPLICE.address)  # withdrew everything: no account left
    assert accomplice is None or c.ex.pools.debt(accomplice, BTC) == 0
    assert codes["withdraw_btc"] == Code.INSUFFICIENT_BALANCE
    assert c.ex.pools[BTC].custody == 100 * BTC_UNIT


def test_attack1_a_genesis_reference_price_values_the_short_sale() -> None:
    """With an initial oracle price in genesis (and still no validator), the $1 trade does
    not move the index: the accomplice's 20 BTC short is valued at $60k each and refused.
    (The markets' price band would refuse the $1 orders first; without one, the margin rule
    still holds.)"""
    banded = _spot_attack(Chain(genesis=make_genesis(initial_oracle_prices={"BTC": 60_000 * USD})))
    assert banded["bid"] == banded["short_sale"] == Code.PRICE_OUT_OF_BAND, banded
    no_band = [{**m, "price_band_ppm": 1 << 60} for m in default_markets()]
    c = Chain(genesis=make_genesis(initial_oracle_prices={"BTC": 60_000 * USD}, markets=no_band))
    codes = _spot_attack(c)
    assert codes["short_sale"] in (Code.INSUFFICIENT_BALANCE, Code.INSUFFICIENT_MARGIN), codes
    assert c.ex.index_px[BTC] == 60_000 * USD
    assert codes["withdraw_btc"] == Code.INSUFFICIENT_BALANCE
    assert c.ex.pools[BTC].custody == 100 * BTC_UNIT


def test_attack1_an_unpriced_asset_cannot_be_borrowed_or_perp_traded() -> None:
    """The rest of the rule: no index, no borrow and no perp position on the asset (its mark
    would be the book's); the asset bought with USDC can be withdrawn (it was paid for)."""
    from state.tx import Borrow

    c = Chain(genesis=make_genesis(initial_oracle_prices={}))
    c.fund(LENDER, BTC, 100 * BTC_UNIT)
    c.fund(ATTACKER, USDC, 100_000 * USD)
    assert c.result(ATTACKER, Borrow(BTC, BTC_UNIT)).code == Code.STALE_PRICE
    assert c.order(ATTACKER, BTC_PERP, True, 60_000, 100).code == Code.STALE_PRICE
    assert c.order(ATTACKER, BTC_PERP, False, 60_000, 100).code == Code.STALE_PRICE
    assert mark_price(c.ex, BTC_PERP) == 0
    assert c.order(LENDER, BTC_SPOT, False, 50_000, 100).code == Code.OK  # sells BTC it holds
    assert c.order(ATTACKER, BTC_SPOT, True, 50_000, 100, Tif.IOC).code == Code.OK
    assert c.balance(ATTACKER, BTC) == 100 * 10_000
    # BTC counts as zero collateral: the lender's 99.99 BTC back no USDC loan (the loan-to-value
    # cap sees assets worth only the $500 of the sale)
    assert c.result(LENDER, Borrow(USDC, 10_000 * USD)).code == Code.BORROW_LIMIT
    assert c.result(ATTACKER, Withdraw(BTC, 100 * 10_000, b"out")).code == Code.OK


def test_attack1_withdrawing_the_base_under_an_open_ask_is_refused() -> None:
    """An ask on an unpriced asset is fine while the balance covers it; withdrawing the
    balance from under it would turn the ask into a short sale, so it is refused."""
    c = Chain(genesis=make_genesis(initial_oracle_prices={}))
    c.fund(LENDER, BTC, 10 * BTC_UNIT)
    c.fund(ACCOMPLICE, BTC, BTC_UNIT)
    c.fund(ACCOMPLICE, USDC, 1_000 * USD)
    assert c.order(ACCOMPLICE, BTC_SPOT, False, 10, LOTS_PER_BTC).code == Code.OK
    assert c.result(ACCOMPLICE, Withdraw(BTC, BTC_UNIT, b"out")).code == Code.STALE_PRICE
    assert c.result(ACCOMPLICE, Withdraw(USDC, 1_000 * USD, b"out")).code == Code.OK


# ------------------------------------------------------------------------------ attack 2
BAND_PPM = 20_000  # the default mark band: 2% around the oracle
QUOTE_LOTS = 3_000  # the attacker's quotes: 0.3 BTC a side (~$20k, above the impact notional)


def _perp_attack(c: Chain, blocks: int, quote_lots: int = QUOTE_LOTS) -> list[int]:
    """Oracle fixed at $60k. A victim is short 1 BTC with $6,924 of equity; an honest maker
    quoted 59,990 / 60,010 (the basis EMA starts near zero) and left. The attacker then
    quotes 65,990 / 66,010 and, every block, bids 2 lots at 65,995 that the accomplice
    sells into. Returns the mark (price units) after each attack block."""
    set_prices(c, btc=60_000 * USD)
    c.fund(MAKER, USDC, 1_000_000 * USD)
    c.fund(VICTIM, USDC, 6_945 * USD)
    c.fund(ATTACKER, USDC, 50_000 * USD)
    c.fund(ACCOMPLICE, USDC, 50_000 * USD)
    assert c.order(MAKER, BTC_PERP, True, 59_990, LOTS_PER_BTC).code == Code.OK
    assert c.order(MAKER, BTC_PERP, False, 60_010, LOTS_PER_BTC).code == Code.OK
    assert c.order(VICTIM, BTC_PERP, False, 59_990, LOTS_PER_BTC, Tif.IOC).code == Code.OK
    c.block(c.sign(MAKER, _cancel_all()))
    assert c.order(ATTACKER, BTC_PERP, True, 65_990, quote_lots).code == Code.OK
    assert c.order(ATTACKER, BTC_PERP, False, 66_010, quote_lots).code == Code.OK
    marks = []
    for _ in range(blocks):
        r = c.block(c.sign(ATTACKER, _perp(True, 65_995, 2, Tif.ALO)),
                    c.sign(ACCOMPLICE, _perp(False, 65_995, 2, Tif.IOC)))
        assert all(x.code == Code.OK for x in r.receipts), r.receipts
        marks.append(c.ex.mstate[BTC_PERP].mark)
    return marks


def _perp(is_buy: bool, price: int, size: int, tif: Tif) -> PlaceOrder:
    return PlaceOrder(BTC_PERP, is_buy, price, size, tif, False, None)


def _cancel_all() -> object:
    from state.tx import CancelAll

    return CancelAll(BTC_PERP)


def test_attack2_wash_trades_on_a_thin_perp_book_cannot_liquidate() -> None:
    """Old code: mark 62,090 after 60 blocks, 63,858 after 150, and at block 258 the
    victim liquidated at mark 64,960 (a quarter of the short bought from the attacker's
    ask at 66,010; victim equity 1,603). Now: the mark stays within the band
    (2% by default) around the oracle, and the victim keeps its short."""
    c = risk_chain()
    marks = _perp_attack(c, 300)
    hi = 60_000 * USD + 60_000 * USD * BAND_PPM // 1_000_000
    assert max(marks) <= hi, (marks[59], marks[149], max(marks))
    assert c.ex.accounts[VICTIM.address].positions[BTC_PERP].size == -LOTS_PER_BTC
    assert c.ex.accounts[ATTACKER.address].positions[BTC_PERP].size == 2 * 300  # only the wash trades
    assert c.genesis.risk.mark_band_ppm == BAND_PPM


def test_attack2_a_book_thinner_than_the_impact_notional_does_not_move_the_mark() -> None:
    """Quotes of 2 lots a side (~$13) and wash trades: no impact price on either side, so no
    basis sample away from the oracle and no book term: the mark stays at the oracle."""
    c = risk_chain()
    marks = _perp_attack(c, 150, quote_lots=2)
    assert set(marks) == {60_000 * USD}


# ------------------------------------------------------------------------------ the oracle's first price
def test_a_first_oracle_price_is_banded_against_the_genesis_reference() -> None:
    """Before any oracle price the index is the genesis reference, but the first submission
    was not banded: validators alone fresh in the first aggregation set BTC to
    1 micro-USDC, and an accomplice with $100 borrowed the lenders' BTC at a value of ~0
    (the honest majority then needed 251 blocks of 10% steps to walk the index back)."""
    from state.tx import Borrow, OraclePrices

    validators = [key(90), key(91), key(92), key(93)]
    c = risk_chain(validators=validators)
    c.fund(LENDER, BTC, 10 * BTC_UNIT)
    c.fund(ATTACKER, USDC, 100 * USD)
    assert c.ex.index_px[BTC] == 60_000 * USD
    # two of four (the default quorum), alone fresh in the first aggregation
    c.block(*(c.sign(v, OraclePrices(((BTC, 1),))) for v in validators[2:]))
    assert c.ex.index_px[BTC] == 54_000 * USD  # one 10% band, not 1
    assert c.result(ATTACKER, Borrow(BTC, BTC_UNIT)).code != Code.OK


# ------------------------------------------------------------------------------ phantom depth
def test_stacked_reduce_only_orders_move_neither_the_mark_nor_funding() -> None:
    """Each reduce-only order is clipped to the position alone, so fifty of 40 lots each can
    rest on a 40-lot position: 2,000 lots of "depth" only 40 of which can ever fill. The
    mark's and the funding premium's impact prices counted them: two accounts with $480 of
    exposure pinned the mark at the band's edge and funding at its cap, paid by every long."""
    from state.tx import Batch, OraclePrices
    from tests.state.riskkit import V

    c = risk_chain()
    x, y, taker = key(80), key(81), key(84)
    c.fund(x, USDC, 2_000 * USD)
    c.fund(y, USDC, 2_000 * USD)
    assert c.order(y, BTC_PERP, False, 60_000, 40).code == Code.OK
    assert c.order(x, BTC_PERP, True, 60_000, 40, Tif.IOC).code == Code.OK
    asks = c.run(x, Batch(tuple(PlaceOrder(BTC_PERP, False, 62_400, 40, Tif.GTC, True, None) for _ in range(50))))
    bids = c.run(y, Batch(tuple(PlaceOrder(BTC_PERP, True, 62_340, 40, Tif.GTC, True, None) for _ in range(50))))
    assert all(r.code == Code.OK for r in (*asks.results, *bids.results))
    assert c.ex.books[BTC_PERP].bids[62_340].total == 2_000
    for _ in range(60):
        c.time += 9_000
        c.run(V, OraclePrices(((BTC, 60_000 * USD),)))
    assert mark_price(c.ex, BTC_PERP) == 60_000 * USD
    assert c.ex.mstate[BTC_PERP].premium_sum == 0
    c.fund(taker, USDC, 100_000 * USD)
    assert c.order(taker, BTC_PERP, False, 62_340, 2_000, Tif.IOC).filled == 40  # the depth was phantom


# ------------------------------------------------------------------------------ a future's last minutes
def test_a_future_in_its_settlement_window_is_margined_at_the_expected_settlement() -> None:
    """A future settles at its window's TWAP, mostly fixed by its last minutes, but was
    margined at the current index: after a crash two minutes before expiry an account shorted
    at the crashed price to its accomplice, both settled at the TWAP ~35% higher, and the
    short's deficit was written off against the USDC lenders ($74k for $60k of margin)."""
    from state.genesis import default_markets, future_market
    from state.tx import OraclePrices
    from tests.harness import T0
    from tests.state.riskkit import V

    fut, window, expiry = 4, 1_800_000, T0 + 3_600_000
    c = risk_chain(markets=[*default_markets(), future_market("BTC-FUT", "BTC", expiry, window)])
    c.fund(LENDER, USDC, 1_000_000 * USD)
    c.fund(ATTACKER, USDC, 100_000 * USD)
    c.fund(ACCOMPLICE, USDC, 60_000 * USD)
    while c.time < expiry - 120_000:
        c.time += 59_000
        c.run(V, OraclePrices(((BTC, 60_000 * USD),)))
    px = 60_000
    for _ in range(3):
        px = px * 9 // 10
        c.run(V, OraclePrices(((BTC, px * USD),)))
    c.order(ACCOMPLICE, fut, False, px, 100_000)
    c.order(ATTACKER, fut, True, px, 100_000, Tif.IOC)
    while c.time < expiry:
        c.time += 20_000
        c.run(V, OraclePrices(((BTC, px * USD),)))
    c.block()
    assert c.ex.pools.real(c.ex.accounts[LENDER.address], USDC) >= 1_000_000 * USD  # the lenders lost nothing
