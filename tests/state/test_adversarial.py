"""The adversarial suite: hypothesis draws attack flows (tests/state/adversary.py) and every
block must apply and keep every invariant; a node that restarts from its store at random
heights must compute the very same chain as one that never stopped."""

from __future__ import annotations

import tempfile
from typing import Any

from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from tests.harness import Chain
from tests.state.adversary import Adversary, flows

# no shrinking: one example is a whole chain; a failure prints the example and its seed
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow],
                    phases=[Phase.explicit, Phase.reuse, Phase.generate])


@SETTINGS
@given(flows)
def test_attack_flows_keep_every_invariant(flow: tuple[Any, ...]) -> None:
    """With an empty insurance fund: write-offs happen, and only once the fund is exhausted."""
    Adversary.open().run(flow)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(flows)
def test_attack_flows_with_a_seeded_fund_keep_every_invariant(flow: tuple[Any, ...]) -> None:
    """The devnet's configuration: the fund seeded at genesis ($1M)."""
    Adversary.open(insurance_fund=1_000_000 * 10**6).run(flow)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(flows, st.integers(1, 7))
# a trader liquidated to nothing kept an empty Account in memory but not in the store: the
# reopened node answered its borrow "holds nothing to borrow against", the other a shortfall
@example(([(True, 18, 25), (True, 8, 2), (False, 11, 12), (True, 10, 15), (False, 5, 3), (True, 9, 23)],
          [-138, -18, -742, -636, 157, -318, -610, -276],
          [[("grief", 0, 124)], [("perp", 2, True, 8)],
           [("borrow", 0, 0, 21), ("grief", 0, 103), ("replay", 37), ("pull",), ("unwind_order", 3)]]), 2)
def test_a_store_reopened_every_k_blocks_computes_the_same_chain(flow: tuple[Any, ...], k: int) -> None:
    """One node never stops; another is closed and reopened from LevelDB every ``k`` blocks.
    At every height both hold the same app hash, and after every reopening the same records."""
    adv = Adversary.open()
    adv.run(flow)
    with tempfile.TemporaryDirectory() as d:
        node = Chain(d, genesis=adv.chain.genesis)
        for blk, result in zip(adv.chain.blocks, adv.results, strict=True):
            got = node.sm.apply_block(blk)
            assert got.app_hash == result.app_hash, f"height {blk.height}"
            assert [(r.code, r.message) for r in got.receipts] == [(r.code, r.message) for r in result.receipts]
            if blk.height % k == 0:
                node.reopen()
                assert node.sm.app_hash == result.app_hash
                assert node.sm.stored_records() == node.ex.snapshot_records()
        assert node.sm.state_digest() == adv.chain.sm.state_digest()
        node.sm.close()
