"""Isolated margin: a position with its own margin, liquidated alone, never drawing on the
account's other collateral.

Hand-computed at BTC $60,000 (a lot = 0.0001 BTC = $6): ISO holds $100,000 in cross and puts
$4,000 into an isolated BTC-PERP long of 1 BTC ($60,000). Maintenance of a naked 1 BTC is
3% + the size add-on, ~$1,807; the position is liquidated when its $4,000 margin less the
loss falls below that, near $57,800, while the $96,000 of cross collateral stays put.
"""

from __future__ import annotations

from state.errors import Code
from state.isolated import isolated_address
from state.tx import CancelAll, PlaceOrder, SetMarginMode, Tif, UpdateIsolatedMargin
from tests.harness import BTC_PERP, BTC_SPOT, USDC, key
from tests.state.riskkit import PX_60K, USD, risk_chain, set_prices

ISO, MAKER, BIDDER = key(90), key(91), key(92)


def _isolated_long():  # type: ignore[no-untyped-def]
    c = risk_chain()
    set_prices(c, btc=PX_60K)
    c.fund(ISO, USDC, 100_000 * USD)
    for k in (MAKER, BIDDER):
        c.fund(k, USDC, 10_000_000 * USD)
    assert c.result(ISO, SetMarginMode(BTC_PERP, True)).status == "ok"
    iso = isolated_address(ISO.address, BTC_PERP)
    assert c.result(ISO, UpdateIsolatedMargin(BTC_PERP, 4_000 * USD)).status == "ok"
    assert c.order(MAKER, BTC_PERP, False, 60_000, 10_000).status == "resting"
    assert c.order(ISO, BTC_PERP, True, 60_000, 10_000, tif=Tif.IOC).status == "filled"
    return c, iso


def test_orders_on_an_isolated_market_trade_from_its_own_margin() -> None:
    c, iso = _isolated_long()
    assert c.ex.accounts[iso].positions[BTC_PERP].size == 10_000
    assert BTC_PERP not in c.ex.accounts[ISO.address].positions
    assert c.balance(ISO, USDC) == 96_000 * USD
    # a second BTC would need ~$3,000 more initial margin than the isolated $4,000 holds,
    # whatever the cross account holds
    assert c.order(ISO, BTC_PERP, True, 60_000, 10_000).code == Code.INSUFFICIENT_MARGIN
    # the spot market is not isolated: that order is the cross account's
    assert c.order(ISO, BTC_SPOT, True, 59_000, 10).status == "resting"
    assert len(c.ex.accounts[ISO.address].open_orders) == 1


def test_an_isolated_position_is_liquidated_alone() -> None:
    c, iso = _isolated_long()
    assert c.order(BIDDER, BTC_PERP, True, 56_000, 10_000).status == "resting"  # liquidity below
    set_prices(c, btc=57_000 * USD)
    liquidated = [e for _, e in c.last.events if isinstance(e, tuple) and e[0] == "liquidation"]
    assert liquidated and all(e[1] == iso for e in liquidated)
    assert c.balance(ISO, USDC) == 96_000 * USD  # the cross account is untouched
    assert c.ex.accounts[iso].positions[BTC_PERP].size < 10_000


def test_a_loss_beyond_the_isolated_margin_never_reaches_cross_collateral() -> None:
    """A gap from $60,000 to $54,000 with no bids in between: the isolated account's $4,000
    cannot cover the $6,000 loss; the backstop (the insurance fund) takes it, and the cross
    account keeps its $96,000."""
    c, iso = _isolated_long()
    stages: list[str] = []
    for px in (57_000, 54_000):
        set_prices(c, btc=px * USD)
        stages += [e[2] for _, e in c.last.events if isinstance(e, tuple) and e[0] == "liquidation" and e[1] == iso]
    assert "backstop" in stages
    acct = c.ex.accounts.get(iso)
    assert acct is None or not acct.positions.get(BTC_PERP) or acct.positions[BTC_PERP].size == 0
    assert c.balance(ISO, USDC) == 96_000 * USD


def test_margin_moves_in_and_out_and_back_to_cross() -> None:
    c, iso = _isolated_long()
    # taking out more than the position can spare is refused: what stays covers its initial margin
    assert c.result(ISO, UpdateIsolatedMargin(BTC_PERP, -3_000 * USD)).code == Code.INSUFFICIENT_MARGIN
    assert c.result(ISO, UpdateIsolatedMargin(BTC_PERP, -500 * USD)).status == "ok"
    assert c.balance(ISO, USDC) == 96_500 * USD
    # back to cross needs the position closed
    assert c.result(ISO, SetMarginMode(BTC_PERP, False)).code == Code.UNAUTHORIZED
    assert c.order(MAKER, BTC_PERP, True, 60_000, 10_000).status == "resting"
    assert c.order(ISO, BTC_PERP, False, 60_000, 10_000, tif=Tif.IOC, reduce_only=True).status == "filled"
    left = c.ex.accounts[iso].balance(USDC)  # $3,500 less the two fees
    assert 3_400 * USD < left < 3_500 * USD
    assert c.result(ISO, SetMarginMode(BTC_PERP, False)).status == "ok"
    assert c.balance(ISO, USDC) == 96_500 * USD + left
    assert iso not in c.ex.subs
    assert iso not in c.ex.accounts or c.ex.accounts[iso].is_empty()  # nothing left behind (no record)


def test_margin_mode_rules() -> None:
    c = risk_chain()
    set_prices(c, btc=PX_60K)
    c.fund(ISO, USDC, 10_000 * USD)
    assert c.result(ISO, SetMarginMode(BTC_SPOT, True)).code == Code.LEVERAGE_OUT_OF_RANGE
    assert c.result(ISO, UpdateIsolatedMargin(BTC_PERP, 1)).code == Code.UNAUTHORIZED  # not isolated
    assert c.order(ISO, BTC_PERP, True, 59_000, 10).status == "resting"
    assert c.result(ISO, SetMarginMode(BTC_PERP, True)).code == Code.UNAUTHORIZED  # an order is open
    assert c.result(ISO, CancelAll(None)).status == "ok"
    assert c.result(ISO, SetMarginMode(BTC_PERP, True)).status == "ok"
    assert c.result(ISO, UpdateIsolatedMargin(BTC_PERP, 20_000 * USD)).code == Code.INSUFFICIENT_BALANCE
    assert c.result(ISO, UpdateIsolatedMargin(BTC_PERP, 0)).code == Code.AMOUNT_OUT_OF_RANGE
    # cancel_all reaches the isolated account's orders too
    assert c.result(ISO, UpdateIsolatedMargin(BTC_PERP, 1_000 * USD)).status == "ok"
    placed = c.result(ISO, PlaceOrder(BTC_PERP, True, 59_000, 10, Tif.GTC, False, None))
    assert placed.status == "resting"
    assert c.result(ISO, CancelAll(None)).status == "ok"
    assert not c.ex.books[BTC_PERP].orders
