"""A devnet with per-node process control, for end-to-end tests and the chaos suite.

Built on devnet.genesis.create_devnet (the same homes, keys and configs `bookchain
devnet up` writes), the supervisor's node command and log files, and node.client for RPC.
Unlike the supervisor, which manages a long-lived devnet for people, this keeps a handle
per node so a test can SIGKILL, SIGSTOP, restart or cut off one node, and can give single
nodes fault-injection switches (config "test" section, node/faults.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from devnet.genesis import DevnetSpec, Placement, create_devnet
from devnet.supervisor import default_node_command, last_lines, stdout_log
from node.client import Client, NodeUnreachable, RpcError
from state.keys import PrivateKey
from state.tx import sign_tx


class Cluster:
    def __init__(self, root: Path, nodes: int = 4, consensus: dict[str, Any] | None = None,
                 switches: dict[int, dict[str, Any]] | None = None, traders: int = 4,
                 sections: dict[int, dict[str, Any]] | None = None,
                 placements: list[Placement] | None = None) -> None:
        """``placements`` put the nodes on given hosts and ports (e.g. 127.0.0.2..N, which Linux
        routes to the loopback), as on separate machines; by default all are on 127.0.0.1."""
        # Shorter rounds than a node's defaults, and an idle chain's block every 100 ms at
        # the latest instead of every second: tests wait for heights, mostly on idle chains
        # (benchmarks of the defaults pass ``consensus=NODE_DEFAULTS``).
        overrides = {"timeout_propose_ms": 800, "timeout_prevote_ms": 400, "timeout_precommit_ms": 400,
                     "timeout_commit_ms": 100, "empty_block_interval_ms": 100, **(consensus or {})}
        self.manifest = create_devnet(root, DevnetSpec(nodes=nodes, traders=traders,
                                                       consensus=tuple(overrides.items())),
                                      placements=placements)
        for i, node in enumerate(self.manifest.nodes):
            cfg_path = Path(node.home) / "config.json"
            cfg = json.loads(cfg_path.read_text())
            cfg["test"] = {**cfg.get("test", {}), "allow_isolate": True, **(switches or {}).get(i, {})}
            cfg.update((sections or {}).get(i, {}))
            cfg_path.write_text(json.dumps(cfg, indent=2))
        self.root = root
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self.chain_id = self.manifest.chain_id
        self._nonce = 0

    # ------------------------------------------------------------------ processes
    def start(self, i: int, env: dict[str, str] | None = None) -> None:
        node = self.manifest.nodes[i]
        log = open(stdout_log(node), "ab")  # noqa: SIM115 - owned by the process
        self.procs[i] = subprocess.Popen(
            default_node_command(node), stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})}, start_new_session=True)

    def start_all(self) -> None:
        for i in range(len(self.manifest.nodes)):
            (Path(self.manifest.nodes[i].home) / "logs").mkdir(parents=True, exist_ok=True)
            self.start(i)
        self.wait_height(2, timeout=60)

    def kill(self, i: int, sig: int = signal.SIGKILL) -> None:
        proc = self.procs[i]
        proc.send_signal(sig)
        if sig in (signal.SIGKILL, signal.SIGTERM):
            proc.wait(timeout=20)

    def set_config(self, i: int, section: str, values: dict[str, Any]) -> None:
        """Change one node's config.json (takes effect at its next start)."""
        path = Path(self.manifest.nodes[i].home) / "config.json"
        cfg = json.loads(path.read_text())
        cfg[section] = {**cfg.get(section, {}), **values}
        path.write_text(json.dumps(cfg, indent=2))

    def alive(self, i: int) -> bool:
        return i in self.procs and self.procs[i].poll() is None

    def isolate(self, i: int, seconds: float) -> None:
        """Cut node ``i`` off the network for ``seconds`` (test switch, libp2p layer)."""
        status, body = self.post(i, "/debug/isolate", {"seconds": seconds})
        assert status == 200, body

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGCONT)
                    proc.terminate()
                except ProcessLookupError:
                    pass
        for proc in self.procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    # ------------------------------------------------------------------ rpc
    def url(self, i: int) -> str:
        return self.manifest.nodes[i].rpc_url

    def client(self, i: int, timeout: float = 10) -> Client:
        return Client(self.url(i), timeout=timeout)

    def get(self, i: int, path: str, timeout: float = 10) -> Any:
        """GET ``path`` (with its query string) from node ``i``; RpcError on an error answer."""
        return self.client(i, timeout).request("GET", path)

    def post(self, i: int, path: str, body: dict[str, Any], timeout: float = 30) -> tuple[int, Any]:
        """POST ``body``; (HTTP status, answer), error answers included."""
        try:
            return 200, self.client(i, timeout).post(path, body)
        except RpcError as err:
            return err.http_status, {"error": {"code": err.code, "name": err.name, "message": err.message}}

    def height(self, i: int) -> int:
        try:
            return int(self.get(i, "/status", timeout=3)["latest_height"])
        except (NodeUnreachable, RpcError, ValueError):
            return -1

    def current_height(self, i: int, timeout: float = 30) -> int:
        """Node ``i``'s height, asked again until it answers: ``height`` says -1 for a node
        that is down or too slow to answer, which is no base for a target height."""
        deadline = time.monotonic() + timeout
        while (h := self.height(i)) < 0:
            if time.monotonic() > deadline:
                raise AssertionError(f"node {i} gave no height within {timeout} s\n" + self.log_tail(i))
            time.sleep(0.2)
        return h

    def wait_height(self, h: int, nodes: list[int] | None = None, timeout: float = 60) -> None:
        nodes = list(range(len(self.manifest.nodes))) if nodes is None else nodes
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self.height(i) >= h for i in nodes):
                return
            time.sleep(0.2)
        raise AssertionError(f"nodes {nodes} did not reach height {h}: {[self.height(i) for i in nodes]}\n"
                             + self.log_tail(nodes[0]))

    def log_tail(self, i: int, n: int = 30) -> str:
        return last_lines(self.manifest.nodes[i], n)

    # ------------------------------------------------------------------ txs
    def key(self, name: str) -> PrivateKey:
        doc = json.loads((Path(self.manifest.cli_home) / "keys" / f"{name}.json").read_text())
        return PrivateKey.from_hex(doc["seed"])

    def nonce(self) -> int:
        self._nonce = max(self._nonce + 1, time.time_ns() // 1_000_000)
        return self._nonce

    def sign(self, name: str, action: Any, nonce: int | None = None) -> bytes:
        return sign_tx(self.key(name), self.nonce() if nonce is None else nonce, action, self.chain_id)

    def commit(self, i: int, raw: bytes) -> Any:
        status, body = self.post(i, "/broadcast_tx_commit", {"tx": raw.hex(), "timeout_ms": 20_000})
        assert status == 200, body
        return body
