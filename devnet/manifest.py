"""``DEVNET/devnet.json``: what a devnet consists of and which processes it started.

Why a manifest: ``down`` must stop exactly the processes ``up`` started and nothing else,
also from another shell hours later, so pids are recorded with the process start time
(pid reuse check) next to the node list. Written atomically (temp file + rename) so a
crash mid-write never leaves a manifest that forgets a running node.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

MANIFEST = "devnet.json"


@dataclass(frozen=True, slots=True)
class NodeEntry:
    name: str
    home: str
    rpc_port: int
    p2p_port: int
    peer_id: str
    validator_pubkey: str

    @property
    def rpc_url(self) -> str:
        return f"http://127.0.0.1:{self.rpc_port}"

    @property
    def p2p_addr(self) -> str:
        return f"/ip4/127.0.0.1/tcp/{self.p2p_port}/p2p/{self.peer_id}"


@dataclass(frozen=True, slots=True)
class ProcessEntry:
    pid: int
    start_time: int | None  # /proc/<pid>/stat field 22, to tell our process from a reused pid
    started_ms: int
    cmd: tuple[str, ...]


@dataclass
class Manifest:
    chain_id: str
    created_ms: int
    nodes: list[NodeEntry]
    cli_home: str
    accounts: list[str]
    processes: dict[str, ProcessEntry] = field(default_factory=dict)
    eth_accounts: list[str] = field(default_factory=list)  # CLI names of the secp256k1 test accounts

    def node(self, ref: str) -> NodeEntry:
        """A node by name (``node0``) or index (``0``)."""
        for i, n in enumerate(self.nodes):
            if ref in (n.name, str(i)):
                return n
        raise KeyError(f"no node {ref!r}; nodes: {', '.join(n.name for n in self.nodes)}")

    def to_json(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "created_ms": self.created_ms,
            "cli_home": self.cli_home,
            "accounts": self.accounts,
            "eth_accounts": self.eth_accounts,
            "nodes": [{**asdict(n), "rpc_url": n.rpc_url, "p2p_addr": n.p2p_addr} for n in self.nodes],
            "processes": {k: {**asdict(p), "cmd": list(p.cmd)} for k, p in sorted(self.processes.items())},
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Manifest:
        nodes = [NodeEntry(n["name"], n["home"], int(n["rpc_port"]), int(n["p2p_port"]), n["peer_id"],
                           n["validator_pubkey"]) for n in doc["nodes"]]
        procs = {k: ProcessEntry(int(p["pid"]), p.get("start_time"), int(p.get("started_ms", 0)),
                                 tuple(p.get("cmd", ())))
                 for k, p in doc.get("processes", {}).items()}
        return cls(doc["chain_id"], int(doc["created_ms"]), nodes, doc["cli_home"], list(doc.get("accounts", [])),
                   procs, list(doc.get("eth_accounts", [])))


def manifest_path(home: str | os.PathLike[str]) -> Path:
    return Path(home) / MANIFEST


def load_manifest(home: str | os.PathLike[str]) -> Manifest | None:
    path = manifest_path(home)
    if not path.exists():
        return None
    return Manifest.from_json(json.loads(path.read_text(encoding="utf-8")))


def save_manifest(home: str | os.PathLike[str], manifest: Manifest) -> None:
    path = manifest_path(home)
    tmp = path.with_name(f".{path.name}.tmp.{os.getpid()}")
    tmp.write_text(json.dumps(manifest.to_json(), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
