"""Run a devnet's node processes in the background: up, status, logs, down.

``up`` creates the devnet if the home has none, starts one detached process per node
(``python -m cli.main node start --home NODE``; the command is injectable so tests can
run a stand-in), records the pids in devnet.json before waiting for anything (so ``down``
works even after a failed or interrupted ``up``), and waits until every node answers
/status at height >= 2. A failed ``up`` stops what it started and shows the failing
node's log tail: a half-started devnet left behind is worse than an error.
"""

from __future__ import annotations

import shutil
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from devnet import procs
from devnet.genesis import DevnetSpec, create_devnet
from devnet.manifest import (
    LOCALHOST,
    Manifest,
    NodeEntry,
    ProcessEntry,
    ip_version,
    load_manifest,
    manifest_path,
    save_manifest,
)
from node.client import Client, NodeUnreachable, RpcError, as_int

NodeCommand = Callable[[NodeEntry], list[str]]
Progress = Callable[[str], None]
DEFAULT_HOME = "./devnet-home"


def default_node_command(node: NodeEntry) -> list[str]:
    """``-P``: the node imports the installed packages, never a ``state/`` that happens to
    sit in the current directory (a checkout next to a compiled install would shadow it)."""
    return [sys.executable, "-P", "-m", "cli.main", "node", "start", "--home", node.home,
            "--stderr-level", "WARNING"]  # the log file has every line; stdout.log what it may miss


class DevnetError(Exception):
    """The devnet cannot do what was asked; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class NodeStatus:
    name: str
    rpc_url: str
    pid: int | None
    alive: bool
    height: int | None
    peers: int | None
    catching_up: bool | None
    app_hash: str | None  # at the devnet's common height
    error: str | None


@dataclass(frozen=True, slots=True)
class DevnetStatus:
    nodes: tuple[NodeStatus, ...]
    common_height: int | None
    hashes_agree: bool | None  # None when fewer than two nodes answered


def is_local_address(host: str) -> bool:
    """Whether this machine can bind ``host`` (an IP of one of its interfaces, or any
    loopback address: Linux routes all of 127.0.0.0/8 to ``lo``)."""
    version = ip_version(host)
    if version is None:
        return False
    family = socket.AF_INET6 if version == 6 else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
    except OSError:
        return False
    return True


def stdout_log(node: NodeEntry) -> Path:
    """The node's stdout and stderr: its warnings and errors, and anything the interpreter
    printed (a crash before logging started)."""
    return Path(node.home) / "logs" / "stdout.log"


def node_log(node: NodeEntry) -> Path:
    """The node's own log file (node/config.py ``log_path``): every record."""
    return Path(node.home) / "logs" / "node.log"


def last_lines(node: NodeEntry, n: int = 20) -> str:
    """The end of a node's log and of its stdout (where a crash's own output goes), to show
    why it failed."""
    parts = []
    for path in (node_log(node), stdout_log(node)):
        lines = tail(path, n)
        if lines:
            parts.append(f"last lines of {path}:\n" + "\n".join(f"  | {line}" for line in lines))
    return "\n".join(parts) or f"nothing in {node_log(node)} or {stdout_log(node)}"


def tail(path: Path, n: int = 30) -> list[str]:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - 256 * 1024))
            lines = fh.read().decode("utf-8", "replace").splitlines()
    except FileNotFoundError:
        return [f"({path} does not exist)"]
    return lines[-n:]


def _noop(_msg: str) -> None:
    pass


class Supervisor:
    def __init__(self, home: str | Path = DEFAULT_HOME, node_command: NodeCommand = default_node_command) -> None:
        self.home = Path(home).absolute()
        self.node_command = node_command

    # ------------------------------------------------------------------ inspection
    def manifest(self) -> Manifest | None:
        return load_manifest(self.home)

    def must_manifest(self) -> Manifest:
        m = self.manifest()
        if m is None:
            raise DevnetError(f"no devnet in {self.home} (create one with `bookchain devnet up --home {self.home}`)")
        return m

    @staticmethod
    def running(m: Manifest) -> dict[str, ProcessEntry]:
        return {name: e for name, e in m.processes.items() if procs.is_ours_and_alive(e)}

    # ------------------------------------------------------------------ up
    def up(self, spec: DevnetSpec | None = None, *, reset: bool = False, timeout: float = 60.0,
           min_height: int = 2, progress: Progress = _noop) -> Manifest:
        spec = spec or DevnetSpec()
        m = self.manifest()
        if m is not None:
            live = self.running(m)
            if live and not reset:
                pids = ", ".join(f"{n}={e.pid}" for n, e in sorted(live.items()))
                raise DevnetError(f"a devnet is already running in {self.home} ({pids}); "
                                  "stop it with `bookchain devnet down` or pass --reset to replace it")
        if reset and self.home.exists():
            self._wipe(progress)
            m = None
        if m is None:
            if self.home.exists() and any(self.home.iterdir()):
                raise DevnetError(f"{self.home} is not empty and holds no devnet.json; refusing to use it")
            progress(f"creating a {spec.nodes}-node devnet in {self.home}")
            m = create_devnet(self.home, spec)
        elif spec.nodes != len(m.nodes):
            progress(f"restarting the existing {len(m.nodes)}-node devnet (use --reset for a new one)")
        self._must_be_local(m)
        self._start(m, progress)
        try:
            self._wait_ready(m, timeout, min_height, progress)
        except BaseException:
            progress("stopping the nodes this `up` started")
            self.down()
            raise
        return m

    def _wipe(self, progress: Progress) -> None:
        if self.home.exists() and not manifest_path(self.home).exists() and any(self.home.iterdir()):
            raise DevnetError(f"{self.home} holds no devnet.json; refusing to delete it")
        if self.manifest() is not None:
            self.down()
        progress(f"removing {self.home}")
        shutil.rmtree(self.home)

    def _must_be_local(self, m: Manifest) -> None:
        """A manifest from ``bookchain testnet`` may name other machines: ``up`` starts nodes
        here only, so it refuses (before starting anything) a node whose host this machine
        cannot bind, instead of a node dying with "cannot listen"."""
        for node in m.nodes:
            if node.host != LOCALHOST and not is_local_address(node.host):
                raise DevnetError(f"{node.name} runs on {node.host}, which is not an address of this machine: "
                                  f"start it there with `bookchain node start --home {node.name}`, and "
                                  f"watch the network with `bookchain devnet status --home {self.home}`")

    def _start(self, m: Manifest, progress: Progress) -> None:
        for node in m.nodes:
            entry = procs.spawn(self.node_command(node), stdout_log(node))
            m.processes[node.name] = entry
            save_manifest(self.home, m)  # record each pid at once: `down` must find it
            progress(f"started {node.name} (pid {entry.pid}), rpc {node.rpc_url}")

    def _wait_ready(self, m: Manifest, timeout: float, min_height: int, progress: Progress) -> None:
        deadline = time.monotonic() + timeout
        pending = {n.name: n for n in m.nodes}
        last: dict[str, str] = {name: "no answer yet" for name in pending}
        while pending:
            for name, node in list(pending.items()):
                entry = m.processes[name]
                if not procs.is_ours_and_alive(entry):
                    raise DevnetError(self._failure(node, f"{name} (pid {entry.pid}) exited during start-up"))
                try:
                    st = Client(node.rpc_url, timeout=2.0).status()
                except (NodeUnreachable, RpcError) as err:
                    last[name] = str(err)
                    continue
                height = as_int(st.get("latest_height", 0))
                last[name] = f"height {height}"
                if height >= min_height:
                    progress(f"{name} is at height {height}")
                    del pending[name]
            if not pending:
                return
            if time.monotonic() >= deadline:
                worst = next(iter(pending.values()))
                waiting = "; ".join(f"{n}: {last[n]}" for n in pending)
                raise DevnetError(self._failure(
                    worst, f"timed out after {timeout:.0f}s waiting for height {min_height} ({waiting})"))
            time.sleep(0.2)

    @staticmethod
    def _failure(node: NodeEntry, what: str) -> str:
        return f"{what}\n{last_lines(node)}"

    # ------------------------------------------------------------------ down
    def down(self, timeout: float = 10.0) -> dict[str, str]:
        """Stop exactly the recorded processes; idempotent (a second call reports "not running")."""
        m = self.manifest()
        if m is None:
            return {}
        outcome = procs.stop(m.processes, timeout)
        m.processes = {n: e for n, e in m.processes.items() if outcome.get(n) == "alive after SIGKILL"}
        save_manifest(self.home, m)
        return outcome

    # ------------------------------------------------------------------ status
    def status(self, rpc_timeout: float = 2.0) -> DevnetStatus:
        m = self.must_manifest()
        raw: list[tuple[NodeEntry, ProcessEntry | None, dict[str, object] | None, str | None]] = []
        for node in m.nodes:
            entry = m.processes.get(node.name)
            try:
                st: dict[str, object] | None = Client(node.rpc_url, timeout=rpc_timeout).status()
                err = None
            except (NodeUnreachable, RpcError) as e:
                st, err = None, str(e)
            raw.append((node, entry, st, err))
        heights = [as_int(st["latest_height"]) for _, _, st, _ in raw if st is not None]
        common = min(heights) if heights else None
        rows: list[NodeStatus] = []
        for node, entry, st, err in raw:
            app_hash = None
            if st is not None and common is not None and common > 0:
                try:
                    app_hash = str(Client(node.rpc_url, timeout=rpc_timeout).block_results(common)["app_hash"])
                except (NodeUnreachable, RpcError, KeyError) as e:
                    err = f"block_results {common}: {e}"
            peers = st.get("peers") if st is not None else None
            rows.append(NodeStatus(
                name=node.name, rpc_url=node.rpc_url, pid=entry.pid if entry else None,
                alive=bool(entry and procs.is_ours_and_alive(entry)),
                height=as_int(st["latest_height"]) if st is not None else None,
                peers=len(peers) if isinstance(peers, list) else None,
                catching_up=bool(st.get("catching_up")) if st is not None else None,
                app_hash=app_hash, error=err,
            ))
        hashes = {r.app_hash for r in rows if r.app_hash is not None}
        answered = sum(1 for r in rows if r.app_hash is not None)
        agree = (len(hashes) == 1) if answered >= 2 else None
        return DevnetStatus(tuple(rows), common, agree)

    # ------------------------------------------------------------------ logs
    def log_file(self, ref: str, stdout: bool = False) -> Path:
        """The node's log file, or (``stdout``) what it wrote to stdout and stderr."""
        m = self.must_manifest()
        try:
            node = m.node(ref)
            return stdout_log(node) if stdout else node_log(node)
        except KeyError as err:
            raise DevnetError(str(err.args[0])) from None
