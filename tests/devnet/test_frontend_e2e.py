"""The RPC front-end process on a real node (node/frontend/): the node's clients reach it
through its front-end by default, and a node whose front-end dies stops (as it does when
its p2p worker dies) rather than run on with no way for clients to reach it."""

from __future__ import annotations

import json
import os
import re
import signal
import time
import urllib.request
from pathlib import Path

from tests.devnet.conftest import running_devnet


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        out += [int(c) for c in (task / "children").read_text().split()]
    return out


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_clients_reach_the_node_through_its_front_end_and_the_node_stops_if_it_dies(devnet_home: Path) -> None:
    with running_devnet(devnet_home) as (m, _):
        node_pid = m.processes["node0"].pid
        (frontend,) = [c for c in _children(node_pid) if "node.frontend.worker" in _cmdline(c)]
        url = m.nodes[0].rpc_url
        # a submission the front-end parses and the node judges: bytes that are no tx
        req = urllib.request.Request(url + "/broadcast_txs", data=json.dumps({"txs": ["00"]}).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            (result,) = json.loads(resp.read())["results"]
        assert result["name"] == "MALFORMED" and result["code"] != 0
        with urllib.request.urlopen(url + "/status", timeout=30) as resp:  # relayed to the node
            assert json.loads(resp.read())["latest_height"] >= 2
        with urllib.request.urlopen(url + "/metrics", timeout=30) as resp:
            metrics = resp.read().decode()
        assert "bookchain_rpc_connections " in metrics
        os.kill(frontend, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while _alive(node_pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(node_pid), "the node ran on without its front-end"
        log = (Path(m.nodes[0].home) / "logs" / "node.log").read_text()
        assert re.search(r"CRITICAL .*the RPC front-end('s pipe ended| exited).*: the node stops", log)
