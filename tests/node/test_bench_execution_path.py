"""``bench.execution_path`` stays runnable and measures what a node computes: the execution
thread's whole work (save, apply, index, store, commit) ends at the same app hash as
``apply_block`` alone on the same flow (bench.devnet_flow_apply), and its parts add up."""

from __future__ import annotations

from bench import devnet_flow_apply, execution_path


def test_the_execution_path_reaches_the_app_hash_of_apply_block_alone() -> None:
    r = execution_path.run(traders=8, block_size=100, txs=400)
    alone = devnet_flow_apply.run(traders=8, block_size=100, txs=400)
    assert r["txs"] == alone["txs"] == 400
    assert r["app_hash"] == alone["app_hash"]
    parts = r["apply_us_per_tx"] + r["save_results_us_per_tx"] + r["state_commit_us_per_tx"] + r["rest_us_per_tx"]
    assert abs(parts - r["cpu_us_per_tx"]) < 1e-6 * max(1.0, r["cpu_us_per_tx"])
    assert min(r["apply_us_per_tx"], r["save_results_us_per_tx"], r["state_commit_us_per_tx"]) > 0
