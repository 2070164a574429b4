"""Transfers between accounts: checked as withdrawals, credited as deposits, custody unmoved."""

from __future__ import annotations

from state.errors import Code
from state.tx import Borrow, Lend, Transfer
from tests.harness import BTC, BTC_PERP, USDC, Chain, key

A, B, C = key(40), key(41), key(42)
USD = 10**6


def _chain() -> Chain:
    c = Chain()
    c.fund(A, USDC, 1_000 * USD)
    c.fund(A, BTC, 10**8)
    return c


def test_transfer_moves_free_balance_and_keeps_custody() -> None:
    c = _chain()
    custody = c.ex.pools[USDC].custody
    r = c.run(A, Transfer(B.address, USDC, 250 * USD))
    assert r.code == Code.OK
    assert (c.balance(A, USDC), c.balance(B, USDC)) == (750 * USD, 250 * USD)
    assert c.ex.pools[USDC].custody == custody
    events = [e for _, e in c.last.events if isinstance(e, tuple) and e[0] == "transfer"]
    assert events == [("transfer", A.address, B.address, USDC, 250 * USD)]


def test_transfer_beyond_the_free_balance_is_refused() -> None:
    c = _chain()
    assert c.run(A, Transfer(B.address, USDC, 1_000 * USD + 1)).code == Code.INSUFFICIENT_BALANCE
    assert c.balance(A, USDC) == 1_000 * USD and B.address not in c.ex.accounts


def test_transfer_must_leave_initial_margin() -> None:
    """A long of 0.1 BTC-PERP at $60,000 ($6,000 notional) on $1,000: sending almost all the
    USDC away would leave the position without initial margin (the BTC is worth more than
    enough, so the account sends it elsewhere first)."""
    c = _chain()
    assert c.run(A, Transfer(C.address, BTC, 10**8)).code == Code.OK
    c.fund(B, USDC, 100_000 * USD)
    assert c.order(B, BTC_PERP, False, 60_000, 1_000).status == "resting"
    assert c.order(A, BTC_PERP, True, 60_000, 1_000).status == "filled"
    assert c.run(A, Transfer(C.address, USDC, 990 * USD)).code == Code.INSUFFICIENT_MARGIN
    assert c.run(A, Transfer(C.address, USDC, 1 * USD)).code == Code.OK


def test_transfer_never_draws_a_borrow_but_can_send_borrowed_funds() -> None:
    """A's $1,000 can go, not a unit more (a transfer never opens a debt). B holds only
    BTC, borrows $100 (drawn into its idle balance) and sends it on: the debt stays with B."""
    c = _chain()
    assert c.run(A, Transfer(B.address, USDC, 1_000 * USD)).code == Code.OK
    assert c.run(A, Transfer(B.address, USDC, 1)).code == Code.INSUFFICIENT_BALANCE
    c.fund(C, BTC, 10**8)
    assert c.result(C, Borrow(USDC, 100 * USD)).status == "ok"
    assert c.run(C, Transfer(B.address, USDC, 100 * USD)).code == Code.OK
    assert -100 * USD - 2 <= c.balance(C, USDC) <= -100 * USD  # share rounding and a second of interest
    assert c.balance(B, USDC) == 1_100 * USD


def test_transfer_repays_the_receivers_debt_first_and_respects_lending_off() -> None:
    """B borrowed $50 (drawn idle: net 0) with lending off; receiving $80 repays the debt
    and leaves $80 net, idle (pool shares round against the account: at most 1 unit)."""
    c = _chain()
    c.fund(B, BTC, 10**8)
    assert c.result(B, Borrow(USDC, 50 * USD)).status == "ok"
    assert c.result(B, Lend(USDC, False)).status == "ok"
    assert c.run(A, Transfer(B.address, USDC, 80 * USD)).code == Code.OK
    acct = c.ex.accounts[B.address]
    assert 80 * USD - 1 <= c.balance(B, USDC) <= 80 * USD
    assert c.ex.pools.debt(acct, USDC) == 0


def test_self_and_protocol_account_transfers_are_refused() -> None:
    c = _chain()
    assert c.run(A, Transfer(A.address, USDC, 1)).code == Code.MALFORMED
    assert c.run(A, Transfer(c.ex.insurance_account, USDC, 1)).code == Code.UNAUTHORIZED
    assert c.run(A, Transfer(B.address, USDC, 0)).code == Code.AMOUNT_OUT_OF_RANGE
    assert c.run(A, Transfer(B.address, 9, 1)).code == Code.UNKNOWN_ASSET
