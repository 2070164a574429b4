"""``bench.mempool_path`` stays runnable: its rounds admit every signed order (a peer's
gossip and a client's batch) and the commit clean-up leaves the mempool empty."""

from __future__ import annotations

from pathlib import Path

from bench.mempool_path import one_round, signed_orders
from bench.state_apply import make_chain
from state.machine import decode_verified


def test_a_round_admits_every_order_and_commits_them_all(tmp_path: Path) -> None:
    genesis, keys, sm = make_chain(8, str(tmp_path / "state"))
    try:
        raws = signed_orders(genesis.chain_id, keys, 600, sm.ex.time_ms)
        decoded = {raw: decode_verified(raw, genesis.chain_id) for raw in raws}
        for bound in (False, True):
            admit_ns, commit_ns = one_round(sm, raws, decoded, 250, bound)  # raises if any is refused
            assert admit_ns > 0 and commit_ns > 0
    finally:
        sm.close()
