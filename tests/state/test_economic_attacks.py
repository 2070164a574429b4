"""Economic attacks a funded adversary could run against the state machine (found by a
campaign of scenario fuzzers over isolated margin, the risk checks and agent keys): each
test is one exploit, refused now, and fails on the code before its fix."""

from __future__ import annotations

import pytest

from state import hltx, risk
from state.eip712 import EthKey
from state.errors import Code
from state.isolated import isolated_address
from state.tx import (
    ActAs,
    ApproveAgent,
    Batch,
    Cancel,
    Deposit,
    PlaceOrder,
    PlaceTrigger,
    RevokeAgent,
    SetMarginMode,
    Tif,
    UpdateIsolatedMargin,
    UpdateLeverage,
    Withdraw,
)
from tests.harness import BTC, BTC_PERP, BTC_SPOT, ETH, ETH_PERP, ETH_SPOT, USDC, Chain, key
from tests.state.riskkit import BTC_UNIT, PX_60K, USD, V, risk_chain, set_prices

ATTACKER, MAKER, ACCOMPLICE, LENDER = key(94), key(95), key(96), key(97)


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


def _short_eth(lots: int = 50_000, accomplice_usd: int = 20_000) -> tuple[Chain, int]:
    """The attacker short ``lots`` of ETH-PERP at $3,000 (50 ETH: 15x on its $10k); its
    accomplice holds ``accomplice_usd``; a lender supplies $1M of USDC."""
    c = risk_chain()
    set_prices(c, btc=PX_60K, eth=3_000 * USD)
    c.fund(LENDER, USDC, 1_000_000 * USD)
    c.fund(ATTACKER, USDC, 10_000 * USD)
    c.fund(ACCOMPLICE, USDC, accomplice_usd * USD)
    c.fund(MAKER, USDC, 5_000_000 * USD)
    px = 3_000 * USD // c.ex.markets[ETH_PERP].tick_size
    assert c.order(MAKER, ETH_PERP, True, px, lots).status == "resting"
    assert c.order(ATTACKER, ETH_PERP, False, px, lots, tif=Tif.IOC).status == "filled"
    return c, px


def test_a_close_that_would_bankrupt_the_account_is_refused() -> None:
    """A closing order skipped the margin check at any price inside the band: the attacker
    bought back its short 20% above the mark from its accomplice, realized $30k of loss on
    $10k of equity, and the $20k deficit fell on the insurance fund and then the USDC
    lenders while the accomplice held the $30k."""
    c, px = _short_eth()
    top = px * 12 // 10
    assert c.order(ACCOMPLICE, ETH_PERP, False, top, 50_000).status == "resting"
    assert c.order(ATTACKER, ETH_PERP, True, top, 50_000, tif=Tif.IOC).code == Code.INSUFFICIENT_MARGIN
    assert c.ex.accounts[ATTACKER.address].positions[ETH_PERP].size == -50_000
    assert c.balance(LENDER, USDC) == 1_000_000 * USD


def test_a_close_near_the_mark_is_still_free_of_margin() -> None:
    c, _ = _short_eth()
    set_prices(c, eth=3_100 * USD)  # the short is now below initial margin: closing must still work
    near = 3_100 * USD // c.ex.markets[ETH_PERP].tick_size + 3
    assert c.order(MAKER, ETH_PERP, False, near, 50_000).status == "resting"
    assert c.order(ATTACKER, ETH_PERP, True, near, 50_000, tif=Tif.IOC).status == "filled"
    assert c.ex.accounts[ATTACKER.address].positions[ETH_PERP].size == 0


def test_a_distressed_market_close_is_judged_at_the_book() -> None:
    """Valued at its limit, a market close with the CLI's 5% slippage was refused to an
    account below initial margin though the book offered the whole size at the mark: the
    part that crosses now counts at the resting orders' prices."""
    c, _ = _short_eth()
    set_prices(c, eth=3_090 * USD)  # equity ~$5.4k, maintenance ~$4.7k, initial ~$7.8k
    mark = 3_090 * USD // c.ex.markets[ETH_PERP].tick_size
    assert c.order(MAKER, ETH_PERP, False, mark + 10, 50_000).status == "resting"
    assert c.order(ATTACKER, ETH_PERP, True, mark * 105 // 100, 50_000, tif=Tif.IOC).status == "filled"


def test_own_resting_orders_do_not_price_a_close() -> None:
    """Self-trade prevention cancels the account's own resting orders and the close goes on
    to worse prices: the valuation passes over them (and over reduce-only makers)."""
    c, px = _short_eth(25_000, accomplice_usd=50_000)
    assert c.order(ATTACKER, ETH_PERP, False, px + 10, 25_000).status == "resting"  # its own ask at the mark
    top = px * 12 // 10
    assert c.order(ACCOMPLICE, ETH_PERP, False, top, 25_000).status == "resting"
    assert c.order(ATTACKER, ETH_PERP, True, top, 25_000, tif=Tif.IOC).code == Code.INSUFFICIENT_MARGIN


def test_a_spot_sale_that_only_shrinks_a_holding_cannot_go_below_zero() -> None:
    """The spot twin: a margined BTC long sold to the accomplice's bid 5% under the index
    "only shrank" the holding and skipped the check, ending below zero equity."""
    c = risk_chain()
    set_prices(c, btc=PX_60K)
    c.fund(LENDER, USDC, 5_000_000 * USD)
    c.fund(MAKER, BTC, 100 * BTC_UNIT)
    c.fund(ATTACKER, USDC, 60_000 * USD)
    c.fund(ACCOMPLICE, USDC, 2_000_000 * USD)
    assert c.order(MAKER, BTC_SPOT, False, 60_000, 300_000).status == "resting"
    assert c.order(ATTACKER, BTC_SPOT, True, 60_000, 190_000, tif=Tif.IOC).status == "filled"
    set_prices(c, btc=58_500 * USD)
    low = 58_500 * 951 // 1000
    assert c.order(ACCOMPLICE, BTC_SPOT, True, low, 190_000).status == "resting"
    assert c.order(ATTACKER, BTC_SPOT, False, low, 190_000, tif=Tif.IOC).code == Code.INSUFFICIENT_MARGIN
    assert c.balance(ATTACKER, BTC) == 19 * BTC_UNIT
    fair = 58_500 * 998 // 1000
    assert c.order(MAKER, BTC_SPOT, True, fair, 190_000).status == "resting"
    assert c.order(ATTACKER, BTC_SPOT, False, fair, 190_000, tif=Tif.IOC).status == "filled"


def test_a_spot_sale_that_unhedges_open_orders_is_judged_with_them() -> None:
    """Below initial margin, a spot sale that "only shrinks" the holding was judged without
    the account's open orders: the 5 ETH it sold (bought on $3k of margin) hedged a 40 ETH
    perp ask, so the sale
    deepened the orders' worst case (the extended adversary found it: a shortfall of $422
    grew to $643). It is judged with them now, as a derivative close is; the account
    cancels the ask first."""
    c = risk_chain()
    set_prices(c, eth=3_000 * USD)
    c.fund(LENDER, USDC, 5_000_000 * USD)
    c.fund(MAKER, ETH, 1_000 * 10**8)
    c.fund(MAKER, USDC, 5_000_000 * USD)
    c.fund(ATTACKER, USDC, 12_000 * USD)
    assert c.order(MAKER, ETH_SPOT, False, 30_000, 5_000).status == "resting"
    assert c.order(ATTACKER, ETH_SPOT, True, 30_000, 5_000, tif=Tif.IOC).status == "filled"
    assert c.balance(ATTACKER, USDC) < 0  # borrowed
    ask = c.order(ATTACKER, ETH_PERP, False, 30_500, 40_000)
    assert ask.status == "resting"
    for px in (3_050, 3_100, 3_150, 3_200, 3_300):
        set_prices(c, eth=px * USD)
    acct = c.ex.accounts[ATTACKER.address]
    before = risk.assess(c.ex, acct, True, orders=True).shortfall
    assert before > 0
    assert risk.assess(c.ex, acct, True).shortfall < 0  # margined without the ask
    ticks = c.ex.index_px[ETH] // c.ex.markets[ETH_SPOT].tick_size
    assert c.order(MAKER, ETH_SPOT, True, ticks, 5_000).status == "resting"
    sale = c.order(ATTACKER, ETH_SPOT, False, ticks, 5_000, tif=Tif.IOC)
    assert sale.code == Code.INSUFFICIENT_MARGIN
    assert c.balance(ATTACKER, ETH) == 5 * 10**8
    assert risk.assess(c.ex, acct, True, orders=True).shortfall == before
    assert c.result(ATTACKER, Cancel(ETH_PERP, ask.oid, None)).code == Code.OK
    assert c.order(ATTACKER, ETH_SPOT, False, ticks, 5_000, tif=Tif.IOC).status == "filled"


def test_a_trigger_that_reduces_is_valued_at_its_limit_not_at_todays_book() -> None:
    """A trigger that would reduce the position skipped the initial margin check when it did
    not deepen the shortfall valued at the book it would meet now; but it trades only when
    it fires. A stop-loss 12% under the market, valued at today's bids, passed and left the
    account $1,759 below initial margin with it counted (the extended adversary found the
    same). Valued at its limit it is refused; reduce-only (never margin-counted) it rests."""
    c = risk_chain()
    set_prices(c, btc=PX_60K)
    c.fund(MAKER, USDC, 50_000_000 * USD)
    c.fund(ATTACKER, USDC, 10_000 * USD)
    px = PX_60K // c.ex.markets[BTC_PERP].tick_size
    assert c.order(MAKER, BTC_PERP, False, px, 15_000).status == "resting"
    assert c.order(ATTACKER, BTC_PERP, True, px, 15_000, tif=Tif.IOC).status == "filled"
    assert c.order(MAKER, BTC_PERP, True, px - 5, 150_000).status == "resting"  # bids at the market
    acct = c.ex.accounts[ATTACKER.address]
    before = risk.assess(c.ex, acct, True, orders=True).shortfall
    assert before < 0
    limit = px * 88 // 100
    stop = c.result(ATTACKER, PlaceTrigger(BTC_PERP, False, 15_000, limit + 10, 1, False, limit, False, None))
    assert stop.code == Code.INSUFFICIENT_MARGIN
    assert risk.assess(c.ex, acct, True, orders=True).shortfall == before
    stop = c.result(ATTACKER, PlaceTrigger(BTC_PERP, False, 15_000, limit + 10, 1, False, limit, True, None))
    assert stop.status == "waiting"


def test_a_taker_order_is_judged_with_the_loss_it_realizes_and_the_other_sides_orders() -> None:
    """Open orders count per side as alternatives (every bid filled, or every ask), and a new
    order was judged as one more of its side: the loss a crossing order realizes against the
    index was charged only where its side fills. But it fills now, and the orders of the
    other side stay open: a spot buy 8% over the index under a stack of perp asks passed and
    left the account $149 below initial margin with its orders counted (the extended
    adversary found it on a random seed). Judged as filled, with the other orders, it is
    refused; once the asks are gone it passes."""
    c = risk_chain()
    set_prices(c, btc=PX_60K)
    c.fund(LENDER, USDC, 5_000_000 * USD)
    c.fund(MAKER, USDC, 50_000_000 * USD)
    c.fund(ACCOMPLICE, BTC, 100 * BTC_UNIT)
    c.fund(ATTACKER, USDC, 10_000 * USD)
    px = PX_60K // c.ex.markets[BTC_PERP].tick_size
    assert c.order(MAKER, BTC_PERP, False, px, 15_000).status == "resting"
    assert c.order(ATTACKER, BTC_PERP, True, px, 15_000, tif=Tif.IOC).status == "filled"
    asks = c.order(ATTACKER, BTC_PERP, False, px * 110 // 100, 42_000)  # net short 27k lots if all fill
    assert asks.status == "resting"
    acct = c.ex.accounts[ATTACKER.address]
    before = risk.assess(c.ex, acct, True, orders=True).shortfall
    assert before < 0
    dear = PX_60K // c.ex.markets[BTC_SPOT].tick_size * 108 // 100
    assert c.order(ACCOMPLICE, BTC_SPOT, False, dear, 10**6).status == "resting"
    buy = c.order(ATTACKER, BTC_SPOT, True, dear, 4_000, tif=Tif.IOC)
    assert buy.code == Code.INSUFFICIENT_BALANCE  # (a spot buy that margin cannot borrow for)
    assert risk.assess(c.ex, acct, True, orders=True).shortfall == before
    assert c.result(ATTACKER, Cancel(BTC_PERP, asks.oid, None)).code == Code.OK
    assert c.order(ATTACKER, BTC_SPOT, True, dear, 4_000, tif=Tif.IOC).status == "filled"
    assert risk.assess(c.ex, acct, True, orders=True).shortfall < 0


def test_an_address_made_someone_elses_agent_can_renounce_it() -> None:
    """Anyone could approve a fresh address as their own agent before its first deposit:
    everything it then signed acted for the squatter, and its withdrawals, transfers and
    even the revocation were refused, so what it received was frozen until the squatter
    let it go. The key now moves its own funds, and may renounce the approval itself."""
    c = risk_chain()
    c.fund(ATTACKER, USDC, 10 * USD)
    assert c.result(ATTACKER, ApproveAgent(MAKER.address, "mine", 0)).status == "ok"
    c.fund(MAKER, USDC, 50_000 * USD)
    assert c.run(MAKER, Withdraw(USDC, 1 * USD, b"\x11" * 20)).code == Code.OK  # its own funds, not the squatter's
    assert c.run(MAKER, RevokeAgent(MAKER.address)).code == Code.OK
    assert MAKER.address not in c.ex.agents and MAKER.address not in c.ex.agents_of.get(ATTACKER.address, set())
    assert c.run(MAKER, Withdraw(USDC, 49_999 * USD, b"\x11" * 20)).code == Code.OK
    assert c.balance(MAKER, USDC) == 0 and c.balance(ATTACKER, USDC) == 10 * USD


def test_leverage_on_an_isolated_market_is_the_isolated_accounts() -> None:
    """``update_leverage`` set the cross account's leverage on an isolated market, where
    nothing trades: a Hyperliquid user who chose "isolated 2x" traded at the market's 20x."""
    c = risk_chain()
    set_prices(c, btc=PX_60K)
    c.fund(ATTACKER, USDC, 100_000 * USD)
    c.fund(MAKER, USDC, 10_000_000 * USD)
    assert c.result(ATTACKER, SetMarginMode(BTC_PERP, True)).status == "ok"
    assert c.result(ATTACKER, UpdateLeverage(BTC_PERP, 2)).status == "ok"
    iso = isolated_address(ATTACKER.address, BTC_PERP)
    assert c.ex.accounts[iso].leverage == {BTC_PERP: 2} and BTC_PERP not in c.ex.accounts[ATTACKER.address].leverage
    assert c.result(ATTACKER, UpdateIsolatedMargin(BTC_PERP, 10_000 * USD)).status == "ok"
    assert c.order(MAKER, BTC_PERP, False, 60_000, 20_000).status == "resting"
    # 2 BTC, 12x on $10k of isolated margin: refused at 2x; 0.3 BTC (1.8x) goes
    assert c.order(ATTACKER, BTC_PERP, True, 60_000, 20_000, tif=Tif.IOC).code == Code.INSUFFICIENT_MARGIN
    assert c.order(ATTACKER, BTC_PERP, True, 60_000, 3_000, tif=Tif.IOC).status == "filled"
    assert c.order(MAKER, BTC_PERP, True, 59_990, 3_000).status == "resting"
    assert c.order(ATTACKER, BTC_PERP, False, 59_990, 3_000, tif=Tif.IOC).status == "filled"
    assert c.result(ATTACKER, SetMarginMode(BTC_PERP, False)).status == "ok"
    left = c.ex.accounts.get(iso)  # at most the closed position's realized-PnL history
    assert left is None or (not left.balances and not left.leverage and not any(p.size for p in left.positions.values()))
    assert c.balance(ATTACKER, USDC) > 99_000 * USD


def test_a_squatted_hyperliquid_address_can_move_its_own_funds() -> None:
    """A Hyperliquid key cannot sign a native ``revoke_agent``: made someone's agent, it could
    not ``usdSend`` its deposit out. What an agent may not do for its master, a key whose own
    address holds funds does for itself."""
    c = risk_chain()
    victim = EthKey(bytes([11]) * 32)
    c.fund(ATTACKER, USDC, 10 * USD)
    assert c.result(ATTACKER, ApproveAgent(victim.address, "mine", 0)).status == "ok"
    c.run(key(1), Deposit(victim.address, USDC, 50_000 * USD))
    send = hltx.sign_user(victim, {"type": "usdSend", "destination": "0x" + MAKER.address.hex(), "amount": "49000",
                                   "time": c.time + 1})
    assert c.block(send).receipts[0].code == Code.OK
    assert c.balance(MAKER, USDC) == 49_000 * USD and c.balance(ATTACKER, USDC) == 10 * USD


def test_auto_deleveraging_ranks_each_holder_once_per_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    """ADL ranked every opposite holder afresh for every bankrupt account: a block with
    bankrupt longs and as many profitable shorts cost O(longs x shorts) portfolio
    assessments (400 of each: 0.8 s; a few thousand: minutes of one block). The scan's
    queue scores a holder once, and again only after an ADL trades with it."""
    import hashlib

    from state import liquidation
    from state.keys import PrivateKey
    from state.tx import OraclePrices

    n = 60
    c = risk_chain()
    set_prices(c, btc=PX_60K)
    longs = [PrivateKey(hashlib.sha256(b"L%d" % i).digest()) for i in range(n)]
    shorts = [PrivateKey(hashlib.sha256(b"S%d" % i).digest()) for i in range(n)]
    c.block(*[c.sign(key(1), Deposit(k.address, USDC, 1_300_000)) for k in longs],
            *[c.sign(key(1), Deposit(k.address, USDC, 100 * USD)) for k in shorts])
    c.block(*[c.sign(k, PlaceOrder(BTC_PERP, False, 60_000, 3, Tif.GTC, False, None)) for k in shorts])
    c.block(*[c.sign(k, PlaceOrder(BTC_PERP, True, 60_000, 3, Tif.IOC, False, None)) for k in longs])
    scored = 0
    score = liquidation._adl_score

    def counting(*args: object) -> tuple[int, int]:
        nonlocal scored
        scored += 1
        return score(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(liquidation, "_adl_score", counting)
    r = c.block(c.sign(V, OraclePrices(((BTC, 54_000 * USD),))))
    deleveraged = sum(1 for _, e in r.events if type(e).__name__ == "Deleveraged")
    assert deleveraged >= n // 2  # the bankrupt longs met the shorts
    assert scored <= 3 * n  # not n x n


def test_a_write_off_never_exceeds_what_the_suppliers_hold() -> None:
    """A fill into an account with auto-lend off can leave a pool's supply below its debt
    (a lender sells its supplied coins to an idle holder while they are lent out). A
    bankrupt borrower's debt was then written off beyond the supply: the index floored at 1
    and the rest was owed to nobody, the pool's surplus went negative, and an idle holder
    who never lent could withdraw nothing. The write-off stops at the supply; the rest stays
    the insurance fund's debt. (Every test chain asserts the surplus after each block.)"""
    from state.tx import Lend, OraclePrices

    c = risk_chain()
    short, idle_a, idle_b = key(101), key(102), key(103)
    c.fund(LENDER, BTC, 10 * BTC_UNIT)
    c.fund(short, USDC, 100_000 * USD)
    for k in (idle_a, idle_b):
        c.fund(k, USDC, 1_000_000 * USD)
        assert c.result(k, Lend(BTC, False)).code == Code.OK
    assert c.order(idle_a, BTC_SPOT, True, 60_000, 90_000).code == Code.OK
    assert c.order(short, BTC_SPOT, False, 60_000, 90_000, Tif.IOC).code == Code.OK  # borrows 9 BTC
    assert c.order(idle_b, BTC_SPOT, True, 60_000, 100_000).code == Code.OK
    assert c.order(LENDER, BTC_SPOT, False, 60_000, 100_000, Tif.IOC).code == Code.OK  # sells its supply
    px = 60_000
    for _ in range(4):  # the short goes bankrupt
        px = px * 11 // 10
        c.run(V, OraclePrices(((BTC, px * USD),)))
    assert c.ex.pool_surplus(BTC) >= 0
