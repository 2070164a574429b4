"""Chaos scenarios for a 4-validator devnet under a steady signed order load.

Each scenario injects faults (SIGKILL, SIGSTOP, a network cut, restarting all nodes, an
equivocating or slow validator) while a load thread submits orders with
``/broadcast_tx_commit``, then checks through RPC only:
- every node has the same block hash at every common height (forks must be 0);
- every node reports the same app hash (mismatches must be 0);
- every acknowledged transaction is in a block on every node (acked == found);
- the chain made progress whenever 3 of 4 validators were up (longest stall);
- a replay of the final chain from RPC reproduces every app hash.
Scenarios are seeded: the same seed picks the same victims and timings.
"""

from __future__ import annotations

import random
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from devnet.cluster import Cluster
from node.client import NodeUnreachable, RpcError
from state.tx import Cancel, PlaceOrder, Tif

NODES = 4


@dataclass
class ScenarioResult:
    name: str
    seed: int
    duration_s: float = 0.0
    acked: int = 0
    found: int = 0
    forks: int = 0
    app_hash_mismatches: int = 0
    longest_stall_s: float = 0.0
    stall_with_quorum_s: float = 0.0  # longest stall while >= 3 validators were up
    replay_ok: bool = False
    heights: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (self.forks == 0 and self.app_hash_mismatches == 0 and self.acked == self.found
                and self.replay_ok and not self.errors)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


class Load(threading.Thread):
    """Steady signed orders via broadcast_tx_commit, round-robin over the live nodes."""

    def __init__(self, cluster: Cluster, seed: int, rate_per_s: float = 20.0) -> None:
        super().__init__(daemon=True)
        self.c = cluster
        self.rng = random.Random(seed)
        self.period = 1.0 / rate_per_s
        self.stop_flag = threading.Event()
        self.acked: list[str] = []
        self.failures = 0

    def run(self) -> None:
        accounts = ["trader0", "trader1", "trader2", "trader3"]
        k = 0
        while not self.stop_flag.is_set():
            k += 1
            live = [i for i in range(NODES) if self.c.alive(i)]
            if not live:
                time.sleep(0.1)
                continue
            node = live[k % len(live)]
            who = accounts[k % len(accounts)]
            side = self.rng.random() < 0.5
            price = 60_000 + self.rng.randint(-20, 20)
            if self.rng.random() < 0.2:
                action: Any = Cancel(0, None, self.rng.randbytes(16))
            else:
                action = PlaceOrder(0, side, price, self.rng.randint(2, 10), Tif.GTC, False, None)
            try:
                status, body = self.c.post(node, "/broadcast_tx_commit",
                                           {"tx": self.c.sign(who, action).hex(), "timeout_ms": 15_000}, timeout=20)
                if status == 200 and body.get("height"):
                    self.acked.append(body["hash"])
            except (NodeUnreachable, RpcError):
                self.failures += 1  # the node died under us: the tx was not acknowledged
            time.sleep(self.period)


class HeightWatcher(threading.Thread):
    """Tracks the longest time the chain's top height did not move, overall and while a
    quorum (3 of 4) of validators was up and reachable.

    ``quorum_up`` is given the heights just polled (-1: not running, SIGSTOP'd, or no
    answer), so a caller can count only validators that answer. A stopped node is not
    polled: its RPC would hold the poll for the client's whole timeout. ``take_window()``
    returns the longest stall with a quorum since the last call (per perturbation)."""

    def __init__(self, cluster: Cluster, quorum_up: Callable[[list[int]], bool]) -> None:
        super().__init__(daemon=True)
        self.c = cluster
        self.quorum_up = quorum_up
        self.stop_flag = threading.Event()
        self.longest = 0.0
        self.longest_with_quorum = 0.0
        self.window_with_quorum = 0.0

    def take_window(self) -> float:
        out, self.window_with_quorum = self.window_with_quorum, 0.0
        return out

    def run(self) -> None:
        top, since, quorum_since = -1, time.monotonic(), time.monotonic()
        while not self.stop_flag.is_set():
            heights = [self.c.height(i) if self.c.alive(i) and not _stopped(self.c, i) else -1 for i in range(NODES)]
            h = max(heights)
            now = time.monotonic()
            if h > top:
                top, since, quorum_since = h, now, now
            if not self.quorum_up(heights):
                quorum_since = now
            self.longest = max(self.longest, now - since)
            self.longest_with_quorum = max(self.longest_with_quorum, now - quorum_since)
            self.window_with_quorum = max(self.window_with_quorum, now - quorum_since)
            time.sleep(0.1)


def check(c: Cluster, result: ScenarioResult, acked: list[str]) -> None:
    """The RPC-only invariants, after the scenario healed."""
    from node.replay import RpcSource, replay

    top = max(c.current_height(i) for i in range(NODES))
    c.wait_height(top, timeout=90)
    common = min(c.current_height(i) for i in range(NODES))
    result.heights = common
    for h in range(1, common + 1):
        if len({c.get(i, f"/block?height={h}")["hash"] for i in range(NODES)}) != 1:
            result.forks += 1
    if len({c.get(i, f"/block_results?height={common}")["app_hash"] for i in range(NODES)}) != 1:
        result.app_hash_mismatches += 1
    result.acked = len(acked)
    for tx_hash in acked:
        try:
            if all(c.get(i, f"/tx?hash={tx_hash}")["height"] for i in range(NODES)):
                result.found += 1
        except (NodeUnreachable, RpcError):
            pass
    report = replay(RpcSource(c.url(0)), None, to_height=common)
    result.replay_ok = report.ok
    if not report.ok:
        result.errors.append(f"replay: {report.reason} at {report.divergence_height}")


# ---------------------------------------------------------------------------- scenarios
def kill9(c: Cluster, rng: random.Random, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        victim = rng.randrange(NODES)
        time.sleep(rng.uniform(0.2, 1.5))
        c.kill(victim, signal.SIGKILL)
        time.sleep(rng.uniform(0.5, 2.5))
        c.start(victim)


def pause(c: Cluster, rng: random.Random, seconds: float) -> None:
    victim = rng.randrange(NODES)
    time.sleep(rng.uniform(0.5, 1.5))
    c.kill(victim, signal.SIGSTOP)
    time.sleep(max(3.0, seconds / 2))  # past several rounds
    c.kill(victim, signal.SIGCONT)
    time.sleep(max(1.0, seconds / 2))


def partition(c: Cluster, rng: random.Random, seconds: float) -> None:
    victim = rng.randrange(NODES)
    time.sleep(rng.uniform(0.5, 1.5))
    c.isolate(victim, max(3.0, seconds / 2))
    time.sleep(seconds)


def restart_all(c: Cluster, rng: random.Random, seconds: float) -> None:
    time.sleep(rng.uniform(0.5, 2.0))
    for i in range(NODES):
        c.kill(i, signal.SIGKILL)
    time.sleep(0.5)
    for i in range(NODES):
        c.start(i)
    c.wait_height(max(c.current_height(i) for i in range(NODES)) + 2, timeout=60)
    time.sleep(max(1.0, seconds / 2))


def byzantine(c: Cluster, rng: random.Random, seconds: float) -> None:
    """Run with an equivocating validator and a slow proposer (set by the cluster switches)."""
    time.sleep(seconds)


SCENARIOS: dict[str, tuple[Callable[[Cluster, random.Random, float], None], dict[int, dict[str, Any]]]] = {
    "kill9": (kill9, {}),
    "pause": (pause, {}),
    "partition": (partition, {}),
    "restart_all": (restart_all, {}),
    "equivocator+slow_proposer": (byzantine, {0: {"equivocate": True}, 1: {"slow_propose_ms": 1500}}),
}


def run_scenario(name: str, root: Path, seed: int, seconds: float, load_rate: float = 20.0) -> ScenarioResult:
    fault, switches = SCENARIOS[name]
    result = ScenarioResult(name, seed)
    c = Cluster(root, switches=switches)
    t0 = time.monotonic()
    try:
        c.start_all()
        load = Load(c, seed, load_rate)
        watcher = HeightWatcher(c, lambda heights: sum(h >= 0 for h in heights) >= 3)
        load.start()
        watcher.start()
        try:
            fault(c, random.Random(seed), seconds)
        finally:
            load.stop_flag.set()
            load.join(timeout=30)
            watcher.stop_flag.set()
            watcher.join(timeout=5)
        for i in range(NODES):
            if not c.alive(i):
                c.start(i)
        result.longest_stall_s = round(watcher.longest, 2)
        result.stall_with_quorum_s = round(watcher.longest_with_quorum, 2)
        check(c, result, load.acked)
    except Exception as err:  # a scenario that blows up is a failed scenario, with the reason
        result.errors.append(f"{type(err).__name__}: {err}")
    finally:
        result.duration_s = round(time.monotonic() - t0, 1)
        c.stop_all()
    return result


def _stopped(c: Cluster, i: int) -> bool:
    """Is node i SIGSTOP'd (state T in /proc)?"""
    try:
        stat = Path(f"/proc/{c.procs[i].pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] == "T"
    except (OSError, IndexError):
        return False
