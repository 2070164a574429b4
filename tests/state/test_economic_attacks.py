"""Economic attacks a funded adversary could run against the state machine (found by a
campaign of scenario fuzzers over isolated margin, the risk checks and agent keys): each
test is one exploit, refused now, and fails on the code before its fix."""

from __future__ import annotations

from state import hltx, risk
from state.eip712 import EthKey
from state.errors import Code
from state.isolated import isolated_address
from state.tx import (
    ActAs,
    ApproveAgent,
    Batch,
    Deposit,
    PlaceOrder,
    RevokeAgent,
    SetMarginMode,
    Tif,
    UpdateIsolatedMargin,
    Withdraw,
)
from tests.harness import BTC_PERP, ETH_PERP, USDC, key
from tests.state.riskkit import PX_60K, USD, risk_chain, set_prices

ATTACKER, MAKER = key(90), key(91)


def test_an_isolated_account_trades_only_its_own_market() -> None:
    """``act_as`` into an isolated account let its owner open a position on another market
    on the isolated margin; switching the isolated market back to cross then swept that
    margin to the owner and left the position with negative equity, which liquidation took
    from the counterparty (the owner kept the margin, the maker lost it)."""
    c = risk_chain()
    set_prices(c, btc=PX_60K, eth=3_000 * USD)
    c.fund(ATTACKER, USDC, 100_000 * USD)
    c.fund(MAKER, USDC, 10_000_000 * USD)
    assert c.result(ATTACKER, SetMarginMode(BTC_PERP, True)).status == "ok"
    iso = isolated_address(ATTACKER.address, BTC_PERP)
    assert c.result(ATTACKER, UpdateIsolatedMargin(BTC_PERP, 20_000 * USD)).status == "ok"
    px = 3_000 * USD // c.ex.markets[ETH_PERP].tick_size
    assert c.order(MAKER, ETH_PERP, False, px, 50_000).status == "resting"
    buy_eth = PlaceOrder(ETH_PERP, True, px, 50_000, Tif.IOC, False, None)
    assert c.run(ATTACKER, ActAs(iso, buy_eth)).code == Code.UNAUTHORIZED
    # nor as a Hyperliquid order signed with the isolated account as its vaultAddress
    eth_key = EthKey(bytes([7]) * 32)
    c.run(key(1), Deposit(eth_key.address, USDC, 100_000 * USD))
    to_isolated = {"type": "updateLeverage", "asset": 0, "isCross": False, "leverage": 10}
    assert c.block(hltx.sign_l1(eth_key, to_isolated, c.time + 1)).receipts[0].code == Code.OK
    eth_iso = isolated_address(eth_key.address, BTC_PERP)
    assert eth_iso in c.ex.subs
    order = {"a": 1, "b": True, "p": "3000", "s": "1", "r": False, "t": {"limit": {"tif": "Ioc"}}}
    raw = hltx.sign_l1(eth_key, {"type": "order", "orders": [order], "grouping": "na"}, c.time + 1, vault=eth_iso)
    assert c.block(raw).receipts[0].code == Code.UNAUTHORIZED
    assert c.ex.accounts[MAKER.address].positions.get(ETH_PERP) is None \
        or c.ex.accounts[MAKER.address].positions[ETH_PERP].size == 0
    assert c.result(ATTACKER, SetMarginMode(BTC_PERP, False)).status == "ok"
    assert c.balance(ATTACKER, USDC) == 100_000 * USD


def test_closing_orders_are_free_of_margin_only_together() -> None:
    """An order that only reduces a position skips the margin check; each of twenty sells
    of the whole long passed alone, and filled together they opened a short of nineteen
    times the position on the margin of none (a free option whose losses the
    counterparties or the insurance fund carry)."""
    c = risk_chain()
    set_prices(c, btc=PX_60K)
    c.fund(ATTACKER, USDC, 2_000 * USD)
    c.fund(MAKER, USDC, 10_000_000 * USD)
    assert c.order(MAKER, BTC_PERP, False, 60_000, 2_000).status == "resting"
    assert c.order(ATTACKER, BTC_PERP, True, 60_000, 2_000, tif=Tif.IOC).status == "filled"
    sells = Batch(tuple(PlaceOrder(BTC_PERP, False, 60_010, 2_000, Tif.GTC, False, None) for _ in range(20)))
    codes = [x.code for x in c.block(c.sign(ATTACKER, sells)).receipts[0].results]
    assert codes[0] == Code.OK  # the first closes the long
    assert codes.count(Code.OK) < 10 and Code.INSUFFICIENT_MARGIN in codes  # the rest need margin
    after = risk.assess(c.ex, c.ex.accounts[ATTACKER.address], True, orders=True)
    assert after.equity >= after.requirement  # what rests beyond the long is margined


def test_an_address_made_someone_elses_agent_can_renounce_it() -> None:
    """Anyone could approve a fresh address as their own agent before its first deposit:
    everything it then signed acted for the squatter, and its withdrawals, transfers and
    even the revocation were refused, so what it received was frozen until the squatter
    let it go. The agent key may now renounce the approval itself."""
    c = risk_chain()
    c.fund(ATTACKER, USDC, 10 * USD)
    assert c.result(ATTACKER, ApproveAgent(MAKER.address, "mine", 0)).status == "ok"
    c.fund(MAKER, USDC, 50_000 * USD)
    assert c.run(MAKER, Withdraw(USDC, 1 * USD, b"\x11" * 20)).code == Code.UNAUTHORIZED
    assert c.run(MAKER, RevokeAgent(MAKER.address)).code == Code.OK
    assert MAKER.address not in c.ex.agents and MAKER.address not in c.ex.agents_of.get(ATTACKER.address, set())
    assert c.run(MAKER, Withdraw(USDC, 50_000 * USD, b"\x11" * 20)).code == Code.OK
    assert c.balance(MAKER, USDC) == 0 and c.balance(ATTACKER, USDC) == 10 * USD
