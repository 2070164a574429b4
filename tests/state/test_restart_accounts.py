"""An account the store holds nothing of must not live on in memory either.

A restarted node rebuilds its accounts from the stored records (``Exchange.load_records``);
an account that ends a block empty has its record deleted, so a node that kept the empty
``Account`` object would answer "has an account" differently from a restarted one. It did:
a borrow's rejection message differed (tests/state/test_adversarial.py's explicit example),
and ``approve_agent`` found a drained isolated account's address fresh on one node and taken
on the other, a different decision and app hash: a fork. Each test here applies the same
block to a chain that never stopped and to a copy restored from its records (``fork``).
"""

from __future__ import annotations

from typing import Any

from state.isolated import isolated_address
from state.tx import ApproveAgent, Borrow, CancelAll, SetMarginMode, UpdateIsolatedMargin, Withdraw
from tests.harness import BTC_PERP, USDC, Chain, key
from tests.state.riskkit import PX_60K, USD, risk_chain, set_prices

OWNER, OTHER = key(94), key(95)


def _same_next_block(c: Chain, txs: list[bytes]) -> list[tuple[Any, str]]:
    """Apply ``txs`` as the next block on ``c`` and on a restored copy: same receipts, same
    events, same app hash, same records. Returns the receipts' (code, message)."""
    restored = c.fork()
    live, again = c.block(*txs), restored.block(*txs)
    assert [repr(r) for r in live.receipts] == [repr(r) for r in again.receipts]
    assert live.events == again.events
    assert live.app_hash == again.app_hash
    assert sorted(c.ex.accounts) == sorted(restored.ex.accounts)
    return [(r.code, r.message) for r in live.receipts]


def _chain() -> Chain:
    c = risk_chain()
    set_prices(c, btc=PX_60K)
    c.fund(OWNER, USDC, 10_000 * USD)
    c.fund(OTHER, USDC, 1_000 * USD)
    return c


def test_an_account_emptied_by_a_withdrawal_is_gone_as_after_a_restart() -> None:
    c = _chain()
    assert c.result(OWNER, Withdraw(USDC, 10_000 * USD, b"out")).status == "ok"
    assert OWNER.address not in c.ex.accounts  # its record was deleted: memory agrees
    [(_, message)] = _same_next_block(c, [c.sign(OWNER, Borrow(USDC, 21_000 * USD))])
    assert message == "the account holds nothing to borrow against"


def test_an_account_created_by_a_no_op_is_not_kept() -> None:
    """A CancelAll with nothing to cancel succeeds and creates the signer's account without
    writing it: it must not outlive the block."""
    c = _chain()
    assert c.result(OWNER, Withdraw(USDC, 10_000 * USD, b"out")).status == "ok"
    assert c.result(OWNER, CancelAll(None)).status == "ok"
    assert OWNER.address not in c.ex.accounts
    _same_next_block(c, [c.sign(OWNER, Borrow(USDC, 1 * USD))])


def test_a_drained_isolated_account_does_not_fork_agent_approval() -> None:
    c = _chain()
    assert c.result(OWNER, SetMarginMode(BTC_PERP, True)).status == "ok"
    assert c.result(OWNER, UpdateIsolatedMargin(BTC_PERP, 4_000 * USD)).status == "ok"
    assert c.result(OWNER, SetMarginMode(BTC_PERP, False)).status == "ok"  # margin back to cross
    iso = isolated_address(OWNER.address, BTC_PERP)
    assert iso not in c.ex.accounts
    # the address holds nothing on the chain and never signed: a fresh key on every node
    assert _same_next_block(c, [c.sign(OTHER, ApproveAgent(iso, "a", 0))]) == [(0, "")]
