"""``DEVNET/devnet.json``: what a devnet consists of and which processes it started.

Why a manifest: ``down`` must stop exactly the processes ``up`` started and nothing else,
also from another shell hours later, so pids are recorded with the process start time
(pid reuse check) next to the node list. Written atomically (temp file + rename) so a
crash mid-write never leaves a manifest that forgets a running node.

Each node carries the host its peers and clients reach it at (``host``): a local devnet
says 127.0.0.1, a ``bookchain testnet`` the addresses given to ``--hosts``, so ``status``,
``load`` and the node list work the same for validators on other machines. Manifests
written before hosts existed have none and mean 127.0.0.1.
"""

from __future__ import annotations

import ipaddress
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

MANIFEST = "devnet.json"
LOCALHOST = "127.0.0.1"


def ip_version(host: str) -> int | None:
    """4 or 6 for an IP literal, None for a DNS name."""
    try:
        return ipaddress.ip_address(host).version
    except ValueError:
        return None


def host_multiaddr(host: str, port: int) -> str:
    """``/ip4/A/tcp/P``, ``/ip6/A/tcp/P`` or ``/dns4/NAME/tcp/P`` (libp2p resolves dns4 when it dials)."""
    proto = {4: "ip4", 6: "ip6", None: "dns4"}[ip_version(host)]
    return f"/{proto}/{host}/tcp/{port}"


def http_url(host: str, port: int) -> str:
    """``http://HOST:PORT``, an IPv6 literal in brackets as URLs want it."""
    return f"http://[{host}]:{port}" if ip_version(host) == 6 else f"http://{host}:{port}"


@dataclass(frozen=True, slots=True)
class NodeEntry:
    name: str
    home: str
    rpc_port: int
    p2p_port: int
    peer_id: str
    validator_pubkey: str
    host: str = LOCALHOST  # where peers and clients reach this node (an IP or a DNS name)

    @property
    def rpc_url(self) -> str:
        return http_url(self.host, self.rpc_port)

    @property
    def p2p_addr(self) -> str:
        return f"{host_multiaddr(self.host, self.p2p_port)}/p2p/{self.peer_id}"


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
                           n["validator_pubkey"], str(n.get("host", LOCALHOST))) for n in doc["nodes"]]
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
