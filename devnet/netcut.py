"""Real network cuts for a devnet: each node in its own Linux network namespace.

Why not the ``/debug/isolate`` switch: it drops traffic inside the node while TCP stays
healthy underneath, so it cannot show what a real cut does (connections stay open but
dead, writes pile up, the kernel retransmits with a growing back-off). Here every node
runs in a namespace ``<prefix><i>`` with one veth into a bridge; the validators of
``group_a`` share bridge A, the others bridge B, and a veth pair joins the two bridges.
``split()`` takes that joining link down (a 2-2 split: packets are dropped silently,
connections stay ESTABLISHED); ``isolate(i)`` takes node i's own link down. ``heal()``
brings every link up again. RPC stays on each namespace's own 127.0.0.1, reached from
the test process by switching one thread into the namespace (``setns``) to open the
socket, so nothing listens on a routable address.

Needs root and ``ip`` (iproute2); ``available()`` says whether this machine has both.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import subprocess
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from devnet.cluster import Cluster
from devnet.supervisor import default_node_command, stdout_log
from node.client import Client, RpcError

CLONE_NEWNET = 0x40000000
SUBNET = "10.77.0"
_setns_lock = threading.Lock()


def _ip(*args: str, ns: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    cmd = ["ip", *(("-n", ns) if ns else ()), *args]
    return subprocess.run(cmd, capture_output=True, text=True, check=check, timeout=10)


def available() -> str:
    """"" if namespaces can be built here, else why not (for a test's skip reason)."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    probe = f"bcprobe{os.getpid()}"
    try:
        _ip("netns", "add", probe)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"cannot create a network namespace: {exc}"
    _ip("netns", "del", probe, check=False)
    return ""


class NetCut:
    """Namespaces, bridges and veths for ``nodes`` nodes; ``close()`` removes them all."""

    def __init__(self, nodes: int, group_a: Sequence[int], prefix: str = "bc") -> None:
        self.nodes = nodes
        self.group_a = set(group_a)
        tag = f"{prefix}{os.getpid() % 10000}"
        self.ns = [f"{tag}n{i}" for i in range(nodes)]
        self.bridges = (f"{tag}ba", f"{tag}bb")
        self.link = (f"{tag}la", f"{tag}lb")  # the veth pair joining the two bridges
        self.host_veth = [f"{tag}h{i}" for i in range(nodes)]
        self._built: list[tuple[str, str]] = []  # ("netns"|"link", name) to remove
        # the cuts in force, for connected(): which bridge each host link is on, the split,
        # the links down, the one-way drops (src, dst)
        self._bridge_of = [self.bridges[0] if i in self.group_a else self.bridges[1] for i in range(nodes)]
        self._split = False
        self._down: set[int] = set()
        self._one_way: set[tuple[int, int]] = set()

    def addr(self, i: int) -> str:
        return f"{SUBNET}.{i + 1}"

    def build(self) -> None:
        try:
            for bridge in self.bridges:
                _ip("link", "add", bridge, "type", "bridge")
                self._built.append(("link", bridge))
                _ip("link", "set", bridge, "up")
            _ip("link", "add", self.link[0], "type", "veth", "peer", "name", self.link[1])
            self._built.append(("link", self.link[0]))
            _ip("link", "set", self.link[0], "master", self.bridges[0], "up")
            _ip("link", "set", self.link[1], "master", self.bridges[1], "up")
            for i, ns in enumerate(self.ns):
                _ip("netns", "add", ns)
                self._built.append(("netns", ns))
                _ip("link", "set", "lo", "up", ns=ns)
                host, inner = self.host_veth[i], f"{self.host_veth[i]}x"
                _ip("link", "add", host, "type", "veth", "peer", "name", inner)
                self._built.append(("link", host))
                _ip("link", "set", inner, "netns", ns)
                _ip("link", "set", inner, "name", "eth0", ns=ns)
                _ip("addr", "add", f"{self.addr(i)}/24", "dev", "eth0", ns=ns)
                _ip("link", "set", "eth0", "up", ns=ns)
                _ip("link", "set", host, "master", self._bridge_of[i], "up")
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        for kind, name in reversed(self._built):
            if kind == "netns":
                _ip("netns", "del", name, check=False)
            else:
                _ip("link", "del", name, check=False)
        self._built.clear()

    # ------------------------------------------------------------------ faults
    def split(self, groups: Sequence[Sequence[int]] | None = None) -> None:
        """Cut one group of nodes from the other (each half still talks within itself).

        ``groups`` (two lists of node indexes) may be any split: each node's host link is
        moved onto the bridge of its side before the joining link goes down, so a 0,2 | 1,3
        split needs no other wiring than the 0,1 | 2,3 one. Default: ``group_a`` against the rest.
        """
        if groups is not None:
            side_a = set(groups[0])
            for i, host in enumerate(self.host_veth):
                want = self.bridges[0] if i in side_a else self.bridges[1]
                if self._bridge_of[i] != want:
                    _ip("link", "set", host, "nomaster")
                    _ip("link", "set", host, "master", want, "up")
                    self._bridge_of[i] = want
        _ip("link", "set", self.link[0], "down")
        self._split = True

    def isolate(self, i: int) -> None:
        """Cut node ``i`` from everyone."""
        _ip("link", "set", self.host_veth[i], "down")
        self._down.add(i)

    def one_way(self, src: int, dst: int) -> None:
        """An asymmetric cut: ``src`` still reaches ``dst``, ``dst`` no longer reaches ``src``.

        In ``dst``'s namespace a permanent neighbour entry gives ``src``'s address a MAC no
        one has, so every packet ``dst`` sends to ``src`` is dropped silently on the bridge
        while ``src``'s packets still arrive (this machine has neither nftables nor
        iptables, and no tc actions; a permanent entry is never overwritten by ARP).
        TCP needs both ways, so connections stall, but one-way traffic already in flight
        (``src``'s segments) is still delivered.
        """
        _ip("neigh", "replace", self.addr(src), "lladdr", "02:00:00:00:00:01", "nud", "permanent",
            "dev", "eth0", ns=self.ns[dst])
        self._one_way.add((src, dst))

    def heal(self) -> None:
        _ip("link", "set", self.link[0], "up")
        for host in self.host_veth:
            _ip("link", "set", host, "up")
        for src, dst in self._one_way:
            _ip("neigh", "del", self.addr(src), "dev", "eth0", ns=self.ns[dst], check=False)
        self._split, self._down, self._one_way = False, set(), set()

    def connected(self, a: int, b: int) -> bool:
        """Can ``a`` and ``b`` exchange packets both ways under the cuts in force?"""
        if a in self._down or b in self._down or (a, b) in self._one_way or (b, a) in self._one_way:
            return False
        return not (self._split and self._bridge_of[a] != self._bridge_of[b])

    # ------------------------------------------------------------------ nodes
    def command(self, i: int, cmd: Sequence[str]) -> list[str]:
        """``cmd`` run inside node ``i``'s namespace (``ip netns exec`` execs it, so the
        child's pid is the node's)."""
        return ["ip", "netns", "exec", self.ns[i], *cmd]

    def rewrite_config(self, home: Path, i: int, addrs: dict[str, str]) -> None:
        """Point node ``i``'s p2p listen address and its peers at the namespace addresses.

        ``addrs`` maps each node's 127.0.0.1 p2p multiaddr prefix
        (``/ip4/127.0.0.1/tcp/<port>``) to the node index it belongs to, as text.
        """
        path = home / "config.json"
        cfg = json.loads(path.read_text())
        p2p = cfg["p2p"]
        p2p["listen"] = p2p["listen"].replace("/ip4/127.0.0.1/", f"/ip4/{self.addr(i)}/")
        peers = []
        for peer in p2p.get("peers", []):
            for prefix, index in addrs.items():
                if peer.startswith(prefix + "/"):
                    peer = peer.replace("/ip4/127.0.0.1/", f"/ip4/{self.addr(int(index))}/")
            peers.append(peer)
        p2p["peers"] = peers
        path.write_text(json.dumps(cfg, indent=2))

    @contextlib.contextmanager
    def inside(self, i: int) -> Iterator[None]:
        """Run the block with this thread in node ``i``'s namespace (sockets opened in it
        stay there). One thread at a time: setns changes only the calling thread, but the
        lock keeps two callers from handing each other the wrong namespace."""
        libc = ctypes.CDLL(None, use_errno=True)
        with _setns_lock:
            home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
            target = os.open(f"/run/netns/{self.ns[i]}", os.O_RDONLY)
            try:
                if libc.setns(target, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), f"setns into {self.ns[i]} failed")
                try:
                    yield
                finally:
                    if libc.setns(home, CLONE_NEWNET) != 0:
                        raise OSError(ctypes.get_errno(), "setns back to the test's namespace failed")
            finally:
                os.close(target)
                os.close(home)

    def enter(self, i: int) -> None:
        """Move the calling thread into node ``i``'s namespace for good: for a thread that
        only ever talks to node ``i`` (a load client with its own event loop), which would
        otherwise hold ``inside``'s lock for its whole life."""
        libc = ctypes.CDLL(None, use_errno=True)
        target = os.open(f"/run/netns/{self.ns[i]}", os.O_RDONLY)
        try:
            if libc.setns(target, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), f"setns into {self.ns[i]} failed")
        finally:
            os.close(target)


class NetnsCluster(Cluster):
    """A ``Cluster`` whose nodes run in the namespaces of ``net``; RPC goes through
    ``net.inside``. ``code_root`` is put on the nodes' PYTHONPATH (bench.partition runs the
    nodes of another checkout that way); None runs the installed package."""

    def __init__(self, root: Path, net: NetCut, code_root: Path | None = None,
                 p2p: dict[str, Any] | None = None, **cluster: Any) -> None:
        super().__init__(root, **cluster)
        self.net = net
        self.code_root = code_root
        prefixes = {f"/ip4/127.0.0.1/tcp/{n.p2p_port}": str(i) for i, n in enumerate(self.manifest.nodes)}
        for i, node in enumerate(self.manifest.nodes):
            net.rewrite_config(Path(node.home), i, prefixes)
            if p2p:
                self.set_config(i, "p2p", p2p)

    def start(self, i: int, env: dict[str, str] | None = None) -> None:
        node = self.manifest.nodes[i]
        extra = {"PYTHONPATH": str(self.code_root)} if self.code_root is not None else {}
        log = open(stdout_log(node), "ab")  # noqa: SIM115 - owned by the process
        self.procs[i] = subprocess.Popen(
            self.net.command(i, default_node_command(node)), stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, **extra, **(env or {})}, start_new_session=True)

    def get(self, i: int, path: str, timeout: float = 10) -> Any:
        with self.net.inside(i):
            return Client(self.url(i), timeout=timeout).request("GET", path)

    def post(self, i: int, path: str, body: dict[str, Any], timeout: float = 30) -> tuple[int, Any]:
        with self.net.inside(i):
            try:
                return 200, Client(self.url(i), timeout=timeout).post(path, body)
            except RpcError as err:
                return err.http_status, {"error": {"code": err.code, "message": err.message}}
