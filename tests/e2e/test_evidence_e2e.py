"""End to end: a validator that double-signs ends up in the chain, for good.

Node 1 runs with the ``equivocate`` test switch (node/faults.py): every vote it sends has a
conflicting twin. The others catch the pair, gossip it, and a proposer commits it in a
block; ``/evidence`` and ``bookchain query evidence`` serve it, it is still there after every
node restarts, and a replay of a node's home re-checks it and lists the equivocation.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cli.main import bookchain
from devnet.cluster import Cluster
from node.replay import DirSource, replay

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

EQUIVOCATOR = 1


def wait_for_evidence(c: Cluster, node: int, timeout: float = 40) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            committed: list[dict[str, Any]] = c.get(node, "/evidence")["evidence"]
        except Exception:
            committed = []
        if committed:
            return committed
        time.sleep(0.3)
    raise AssertionError(f"no evidence committed on node {node}\n" + c.log_tail(node))


def test_double_signing_is_committed_queryable_and_survives_restarts(tmp_path: Path) -> None:
    c = Cluster(tmp_path / "net", switches={EQUIVOCATOR: {"equivocate": True}})
    bad_validator = c.manifest.nodes[EQUIVOCATOR].validator_pubkey
    try:
        c.start_all()
        committed = wait_for_evidence(c, 0)
        first = committed[-1]
        assert first["validator"] == bad_validator
        assert first["committed_height"] > first["height"]
        assert len(first["votes"]) == 2 and first["votes"][0]["block_hash"] != first["votes"][1]["block_hash"]
        h = first["committed_height"]
        c.wait_height(h)
        block = c.get(2, f"/block?height={h}")
        assert first["raw"] in [e["raw"] for e in block["evidence"]] and "evidence_root" in block["header"]
        assert len({c.get(i, f"/block?height={h}")["hash"] for i in range(4)}) == 1
        one = c.get(3, f"/evidence?height={h}")["evidence"]
        assert first["hash"] in [e["hash"] for e in one]
        res = CliRunner().invoke(bookchain, ["--node", c.url(0), "query", "evidence", "--height", str(h), "--json"])
        assert res.exit_code == 0, res.output
        assert first["hash"] in [e["hash"] for e in json.loads(res.output)["evidence"]]
        table = CliRunner().invoke(bookchain, ["--node", c.url(0), "query", "evidence"], env={"COLUMNS": "200"})
        assert table.exit_code == 0 and "committed" in table.output, table.output

        c.stop_all()
        for i in range(4):
            c.start(i)
        c.wait_height(h + 2, timeout=60)
        again = c.get(0, f"/evidence?height={h}")["evidence"]
        assert first["hash"] in [e["hash"] for e in again]
    finally:
        c.stop_all()
    report = replay(DirSource(c.manifest.nodes[0].home), None)
    assert report.ok, report.reason
    seen = [e for e in report.evidence if e["committed_height"] == h and e["height"] == first["height"]]
    assert seen and all(e["validator"] == bad_validator for e in report.evidence)
