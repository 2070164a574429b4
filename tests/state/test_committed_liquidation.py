"""Every mutation a liquidation makes reaches the block's write set.

The audit's reproduction: a spot liquidation through the book changed the liquidated
account in memory while its stored record (what a restarted node loads and what the app
hash covers) kept the old balances; the maker's side of the same trade was written. These
tests compare the store with memory after the very block that liquidates, and reopen the
store to check that a restarted node computes the same next block.
"""

from __future__ import annotations

from pathlib import Path

from state.genesis import default_markets
from state.machine import StateMachine
from state.tx import Borrow, Withdraw
from tests.harness import BTC, BTC_SPOT, USDC, Chain, key
from tests.state.riskkit import PX_60K, USD, risk_chain, set_prices

CAROL, MAKER = key(110), key(111)


def _carol_borrows_against_btc(path: str) -> Chain:
    # a band of 30%: the maker's bid rests 23.5% under the oracle, waiting for the crash
    c = risk_chain(path, markets=[{**m, "price_band_ppm": 300_000} for m in default_markets()])
    set_prices(c, btc=PX_60K)
    c.fund(CAROL, BTC, 10**8)
    c.fund(MAKER, USDC, 10_000_000 * USD)
    assert c.order(MAKER, BTC_SPOT, True, 45_900, 100_000).status == "resting"
    assert c.result(CAROL, Borrow(USDC, 45_000 * USD)).status == "ok"
    assert c.result(CAROL, Withdraw(USDC, 45_000 * USD, b"out")).status == "ok"
    return c


def test_spot_liquidation_through_the_book_is_committed(tmp_path: Path) -> None:
    c = _carol_borrows_against_btc(str(tmp_path / "s"))
    set_prices(c, btc=46_000 * USD)
    stages = [e[2] for _, e in c.last.events if isinstance(e, tuple) and e[0] == "liquidation"]
    assert stages[:2] == ["start", "book"], stages
    carol = c.ex.accounts[CAROL.address]
    assert carol.balance(BTC) < 10**8  # the unwind sold BTC
    assert c.sm.stored_records() == c.ex.snapshot_records()


def test_restart_after_a_spot_liquidation_computes_the_same_chain(tmp_path: Path) -> None:
    """Two nodes, one restarted from disk right after the liquidation block, apply the same
    next blocks and must agree on every app hash."""
    c = _carol_borrows_against_btc(str(tmp_path / "a"))
    set_prices(c, btc=46_000 * USD)
    c.sm.close()
    reopened = StateMachine.open(c.genesis, str(tmp_path / "a"))
    assert reopened.app_hash == c.sm.app_hash
    assert reopened.ex.snapshot_records() == c.ex.snapshot_records()
    live = Chain(None, genesis=c.genesis)
    for blk in c.blocks:
        live.sm.apply_block(blk)
    assert live.sm.app_hash == reopened.app_hash
    # keep going on both: the price falls further and liquidates again
    c.sm = reopened
    c._nonce.clear()
    for px in (45_000, 44_000, 43_000):
        set_prices(c, btc=px * USD)
        live.sm.apply_block(c.blocks[-1])
        assert live.sm.app_hash == c.sm.app_hash, px
