"""Agent (API) keys and sub-accounts: who a transaction acts for, and what an agent may not do."""

from __future__ import annotations

from state.agents import sub_account_address
from state.errors import Code
from state.tx import (
    ActAs,
    ApproveAgent,
    Cancel,
    CreateSubAccount,
    PlaceOrder,
    RevokeAgent,
    Tif,
    Transfer,
    UpdateLeverage,
    Withdraw,
)
from tests.harness import BTC_PERP, BTC_SPOT, USDC, Chain, key

MASTER, BOT, OTHER, MAKER = key(80), key(81), key(82), key(83)
USD = 10**6


def bid(price: int = 59_000, size: int = 10, market: int = BTC_SPOT) -> PlaceOrder:
    return PlaceOrder(market, True, price, size, Tif.GTC, False, None)


def _chain() -> Chain:
    c = Chain()
    c.fund(MASTER, USDC, 100_000 * USD)
    c.fund(OTHER, USDC, 100_000 * USD)
    return c


def test_an_agent_trades_for_its_master() -> None:
    c = _chain()
    assert c.result(MASTER, ApproveAgent(BOT.address, "bot", 0)).status == "ok"
    r = c.result(BOT, bid())
    assert r.status == "resting"
    assert c.ex.books[BTC_SPOT].orders[r.oid].owner == MASTER.address
    assert BOT.address not in c.ex.accounts  # the agent holds nothing
    assert c.result(BOT, Cancel(BTC_SPOT, r.oid, None)).status == "cancelled"
    assert BOT.address in c.ex.nonces  # the agent's transactions use its own nonces


def test_an_agent_cannot_move_funds_or_change_settings() -> None:
    c = _chain()
    c.result(MASTER, ApproveAgent(BOT.address, "bot", 0))
    for action in (Withdraw(USDC, 1, b"out"), Transfer(BOT.address, USDC, 1), UpdateLeverage(BTC_PERP, 2),
                   ApproveAgent(key(90).address, "x", 0), CreateSubAccount("s")):
        r = c.run(BOT, action)
        assert r.code == Code.UNAUTHORIZED, action
    assert c.balance(MASTER, USDC) == 100_000 * USD


def test_revoked_agent_is_refused_and_its_old_transactions_do_not_replay() -> None:
    c = _chain()
    c.result(MASTER, ApproveAgent(BOT.address, "bot", 0))
    placed = c.sign(BOT, bid())
    assert c.block(placed).receipts[0].code == Code.OK
    unsent = c.sign(BOT, bid(58_000))  # signed while approved, never sent
    assert c.result(MASTER, RevokeAgent(BOT.address)).status == "ok"
    assert c.block(placed).receipts[0].code == Code.NONCE_USED  # the bytes themselves
    late = c.block(unsent).receipts[0]  # acts for the agent's own, empty address now
    assert late.code in (Code.INSUFFICIENT_BALANCE, Code.INSUFFICIENT_MARGIN)
    assert len(c.ex.accounts[MASTER.address].open_orders) == 1
    # a revoked key that has signed is never an agent again: approving it is refused
    assert c.result(MASTER, ApproveAgent(BOT.address, "bot", 0)).code == Code.UNAUTHORIZED


def test_an_agent_expires_and_a_transaction_signed_before_approval_never_acts() -> None:
    c = _chain()
    early = c.sign(BOT, bid(), nonce=c.time)  # signed before the approval below
    until = c.time + 5_000
    c.result(MASTER, ApproveAgent(BOT.address, "bot", until))
    assert c.block(early).receipts[0].code == Code.UNAUTHORIZED
    assert c.result(BOT, bid()).status == "resting"
    while c.time <= until:
        c.block()
    assert c.run(BOT, bid(58_000)).code == Code.UNAUTHORIZED


def test_agent_approval_rules() -> None:
    c = _chain()
    assert c.result(MASTER, ApproveAgent(OTHER.address, "x", 0)).code == Code.UNAUTHORIZED  # an account
    assert c.result(MASTER, ApproveAgent(MASTER.address, "x", 0)).code == Code.UNAUTHORIZED
    assert c.result(MASTER, ApproveAgent(BOT.address, "bot", c.time)).code == Code.AMOUNT_OUT_OF_RANGE
    assert c.result(MASTER, ApproveAgent(BOT.address, "bot", 0)).status == "ok"
    assert c.result(OTHER, ApproveAgent(BOT.address, "mine", 0)).code == Code.UNAUTHORIZED  # taken
    assert c.result(OTHER, RevokeAgent(BOT.address)).code == Code.UNKNOWN_ACCOUNT
    for i in range(9):
        assert c.result(MASTER, ApproveAgent(key(100 + i).address, f"a{i}", 0)).status == "ok"
    assert c.result(MASTER, ApproveAgent(key(120).address, "one too many", 0)).code == Code.TOO_MANY_AGENTS


def test_sub_account_is_funded_traded_and_drained_by_its_master() -> None:
    c = _chain()
    r = c.result(MASTER, CreateSubAccount("hedge"))
    sub = sub_account_address(MASTER.address, "hedge")
    assert r.status == "ok" and r.message == sub.hex()
    # its own funds and margin: none yet, whatever the master holds
    assert c.run(MASTER, ActAs(sub, bid())).code in (Code.INSUFFICIENT_BALANCE, Code.INSUFFICIENT_MARGIN)
    assert c.run(MASTER, Transfer(sub, USDC, 10_000 * USD)).code == Code.OK
    placed = c.result(MASTER, ActAs(sub, bid()))
    assert placed.status == "resting" and c.ex.books[BTC_SPOT].orders[placed.oid].owner == sub
    assert c.run(MASTER, ActAs(sub, Transfer(MASTER.address, USDC, 5_000 * USD))).code == Code.OK
    assert c.balance(MASTER, USDC) == 95_000 * USD
    assert c.run(OTHER, ActAs(sub, Cancel(BTC_SPOT, placed.oid, None))).code == Code.UNAUTHORIZED
    assert c.run(MASTER, ActAs(sub, Cancel(BTC_SPOT, placed.oid, None))).code == Code.OK


def test_an_agent_trades_for_the_masters_sub_accounts_but_cannot_drain_them() -> None:
    c = _chain()
    c.result(MASTER, CreateSubAccount("bot1"))
    sub = sub_account_address(MASTER.address, "bot1")
    c.run(MASTER, Transfer(sub, USDC, 10_000 * USD))
    c.result(MASTER, ApproveAgent(BOT.address, "bot", 0))
    assert c.result(BOT, ActAs(sub, bid())).status == "resting"
    assert c.run(BOT, ActAs(sub, Transfer(BOT.address, USDC, 1))).code == Code.UNAUTHORIZED
    assert c.run(OTHER, ActAs(sub, bid())).code == Code.UNAUTHORIZED


def test_sub_account_rules() -> None:
    c = _chain()
    assert c.result(MASTER, CreateSubAccount("a")).status == "ok"
    assert c.result(MASTER, CreateSubAccount("a")).code == Code.SUB_ACCOUNT_EXISTS
    sub = sub_account_address(MASTER.address, "a")
    c.run(MASTER, Transfer(sub, USDC, 1 * USD))
    nested = c.block(c.sign(MASTER, ActAs(sub, CreateSubAccount("nested")))).receipts[0]
    assert nested.code == Code.MALFORMED  # a sub-account cannot be asked to create one (decoding refuses it)
    for i in range(9):
        assert c.result(MASTER, CreateSubAccount(f"s{i}")).status == "ok"
    assert c.result(MASTER, CreateSubAccount("eleventh")).code == Code.TOO_MANY_SUB_ACCOUNTS


def test_agents_and_sub_accounts_survive_a_restart() -> None:
    c = _chain()
    c.result(MASTER, ApproveAgent(BOT.address, "bot", 0))
    c.result(MASTER, CreateSubAccount("keep"))
    again = c.fork()
    assert again.ex.agents == c.ex.agents and again.ex.subs == c.ex.subs
    assert again.ex.agents_of == c.ex.agents_of and again.ex.subs_of == c.ex.subs_of
    assert again.result(BOT, bid()).status == "resting"


def test_a_sub_account_address_funded_before_creation_is_adopted_not_taken() -> None:
    """Anyone can compute a sub-account's address and send to it first: that used to make
    CreateSubAccount refuse "that address is taken" forever (a griefer's dust blocked the name,
    and a master's own early transfer stranded its funds)."""
    c = _chain()
    sub = sub_account_address(MASTER.address, "hedge")
    assert c.run(OTHER, Transfer(sub, USDC, 1)).code == Code.OK  # dust from a stranger
    assert c.run(MASTER, Transfer(sub, USDC, 500 * USD)).code == Code.OK  # the master, too early
    r = c.result(MASTER, CreateSubAccount("hedge"))
    assert r.status == "ok" and r.message == sub.hex()
    assert c.run(MASTER, ActAs(sub, Transfer(MASTER.address, USDC, 500 * USD))).code == Code.OK
    assert c.balance(MASTER, USDC) == 100_000 * USD
