"""Chaos under real load on real network namespaces (issue 25 item 4).

One 4-validator devnet, each validator in its own network namespace with an address on a
bridge (devnet/netcut.py), validator 3's data directory on a tmpfs of its own. A tracked
load runs the whole time while a seeded sequence of perturbations hits the cluster, one
after the other, each followed by recovery (heal, restart, every node caught up) and a
check of what was committed since the last check.

The load (``TrackedLoad``): one thread per validator, moved into that validator's
namespace for good, signs the next batch of the order flow of its own traders at every
tick (devnet/flow.py ``FlowGen``) and sends it with msgpack ``/broadcast_txs``. Each tx is
tracked: *acknowledged* (code 0 in the answer), *refused* (by code name: a retryable
refusal is not a lost tx), or *unanswered* (the call failed: the node died or was stopped
under it, so it may or may not have been admitted). A stopped or dead validator gets no
batches (its ticks are counted as skipped), so the offered rate dips during such faults.

The check (``Ledger``): ``/commits`` of the new heights from every node (100 heights a
call, tx hashes only), compared height by height (the same txs in the same order on all
nodes, else a fork), plus the block hash and the app hash at the checked top. Acknowledged
txs are crossed off when found; what is left once the run has drained is lost.

The stall with a connected quorum (``HeightWatcher``): time the top height did not move
while at least 3 validators were running, not stopped, answering RPC, and pairwise
connected both ways under the cuts in force (``NetCut.connected``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import shutil
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from consensus.validators import ValidatorSet
from devnet import diskfill
from devnet.chaos import NODES, HeightWatcher, _stopped
from devnet.flow import FlowGen
from devnet.netcut import NetCut, NetnsCluster, available
from node.client import AsyncClient, NodeUnreachable, RpcError, as_int
from node.diskfull import EXIT_DISK_FULL
from node.jsonfmt import code_name
from state.genesis import Genesis

DISK_NODE = 3
KINDS = ("kill9_one", "kill9_proposer", "kill9_all", "sigstop", "cut_one", "cut_proposer", "split_2_2",
         "asymmetric", "restart_catching_up", "disk_full")
CRASHES = ("kill9_one", "kill9_proposer", "kill9_all", "restart_catching_up", "disk_full")
IN_FLIGHT = -1  # pending value of a tx sent but not answered yet


@dataclass(slots=True)
class Perturbation:
    """One fault, its recovery and the check after it."""

    index: int
    kind: str
    victims: list[int]
    detail: str = ""
    held_s: float = 0.0
    catch_up_s: float = -1.0  # fault removed -> every node past the top height at that moment
    stall_with_quorum_s: float = 0.0
    acked_found: int = 0  # acknowledged txs found on every node in this check
    heights: tuple[int, int] = (0, 0)
    error: str = ""


@dataclass(slots=True)
class RunReport:
    seed: int
    rate_target: float
    capacity_per_s: float | None = None  # measured first when the rate was not given
    perturbations: list[Perturbation] = field(default_factory=list)
    submitted: int = 0
    acked: int = 0
    refused_by_code: dict[str, int] = field(default_factory=dict)
    unanswered: int = 0
    skipped_ticks: int = 0
    found_all: int = 0
    commit_acked: int = 0  # admitted txs their admitting node then reported committed
    lost_commit_acked: int = 0  # of those, not found on every node: must be 0
    lost: int = 0  # admitted (broadcast acknowledged) and never committed
    lost_by: dict[str, int] = field(default_factory=dict)  # by the crash that lost them (NetChaos.blame)
    lost_sample: list[str] = field(default_factory=list)
    committed: int = 0
    committed_unanswered: int = 0
    refused_but_committed: int = 0
    forks: int = 0
    app_hash_mismatches: int = 0
    longest_stall_with_quorum_s: float = 0.0
    longest_stall_s: float = 0.0
    duration_s: float = 0.0
    load_s: float = 0.0
    heights: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (self.forks == 0 and self.app_hash_mismatches == 0 and self.lost_commit_acked == 0 and not self.errors
                and self.refused_but_committed == 0 and not any(p.error for p in self.perturbations))

    def rates(self) -> dict[str, float]:
        d = max(self.load_s, 1e-9)
        return {"submitted_per_s": round(self.submitted / d, 1), "acked_per_s": round(self.acked / d, 1),
                "committed_per_s": round(self.committed / d, 1)}

    def by_kind(self) -> dict[str, dict[str, Any]]:
        """Per kind: count, catch-up p50/max, longest stall with a quorum."""
        out: dict[str, dict[str, Any]] = {}
        for kind in KINDS:
            ps = [p for p in self.perturbations if p.kind == kind]
            if not ps:
                continue
            ups = sorted(p.catch_up_s for p in ps if p.catch_up_s >= 0)
            out[kind] = {"count": len(ps), "catch_up_p50_s": ups[(len(ups) - 1) // 2] if ups else None,
                         "catch_up_max_s": ups[-1] if ups else None,
                         "stall_with_quorum_max_s": max(p.stall_with_quorum_s for p in ps),
                         "errors": sum(bool(p.error) for p in ps)}
        return out

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok, "rates": self.rates(), "by_kind": self.by_kind()}


# ---------------------------------------------------------------------------- load
class TrackedLoad:
    """Signed order load at ``rate`` tx/s split over the validators, every tx tracked."""

    def __init__(self, c: NetnsCluster, rate: float, seed: int, tick_s: float = 0.2) -> None:
        self.c = c
        self.rate = rate
        self.per_tick = max(1, round(rate / NODES * tick_s))
        self.tick_s = tick_s
        self.lock = threading.Lock()
        # hash -> node that admitted it + NODES * the perturbation in force then (IN_FLIGHT: no answer yet)
        self.pending: dict[bytes, int] = {}
        self.commit_acked: dict[bytes, int] = {}  # hash -> the height its admitting node reported it at
        self.commit_acks = 0
        self.phase = 0  # the index of the perturbation in force (set by the runner)
        self.found_early: set[bytes] = set()  # found in a block before its answer arrived
        self.unanswered_hashes: set[bytes] = set()
        self.refused_hashes: set[bytes] = set()  # kept to catch a refused tx that commits (must not)
        self.submitted = self.acked = self.unanswered = self.skipped = 0
        self.refused: Counter[str] = Counter()
        self.stop_flag = threading.Event()
        genesis = Genesis.load(str(Path(c.root) / "genesis.json"))
        traders = sorted(a for a in c.manifest.accounts if a.startswith("trader"))
        base = time.time_ns() // 1_000_000
        self.gens = [FlowGen(genesis, [c.key(t) for k, t in enumerate(traders) if k % NODES == i],
                             seed=seed * 100 + i, nonce_base_ms=base) for i in range(NODES)]
        self.threads = [threading.Thread(target=self._thread, args=(i,), daemon=True) for i in range(NODES)]
        self.t0 = self.t1 = 0.0

    def start(self) -> None:
        self.t0 = time.monotonic()
        for t in self.threads:
            t.start()

    def stop(self) -> None:
        self.stop_flag.set()
        for t in self.threads:
            t.join(timeout=30)
        self.t1 = time.monotonic()

    def _thread(self, i: int) -> None:
        self.c.net.enter(i)
        asyncio.run(self._loop(i))

    def _ready(self, i: int) -> bool:
        return self.c.alive(i) and not _stopped(self.c, i)

    async def _loop(self, i: int) -> None:
        async with AsyncClient(self.c.url(i), timeout=5.0) as client:
            follower = asyncio.create_task(self._follow(i, client))
            await self._submit(i, client)
            await follower

    async def _follow(self, i: int, client: AsyncClient) -> None:
        """Follow node ``i``'s commits, as a ``broadcast_tx_commit`` client of node ``i``
        would: a tx node ``i`` admitted and then reports in block h is *commit-acknowledged*
        at h, and must be at h on every node whatever happens next."""
        height: int | None = None
        while not self.stop_flag.is_set():
            if not self._ready(i):
                await asyncio.sleep(0.2)
                continue
            try:
                if height is None:
                    height = as_int((await client.status())["latest_height"])
                _latest, blocks = await client.commits_packed(height + 1, wait_ms=500)
            except (NodeUnreachable, RpcError, OSError, ValueError, KeyError):
                await asyncio.sleep(0.2)
                continue
            for h, hashes, _codes in blocks:
                if h != height + 1:
                    break
                with self.lock:
                    pending, acked = self.pending, self.commit_acked
                    for k in range(0, len(hashes), 32):
                        x = hashes[k:k + 32]
                        v = pending.get(x)
                        if v is not None and v >= 0 and v % NODES == i:
                            acked[x] = h
                            self.commit_acks += 1
                height = h

    async def _submit(self, i: int, client: AsyncClient) -> None:
        next_t = time.monotonic()
        while not self.stop_flag.is_set():
            next_t += self.tick_s
            if self._ready(i):
                await self._send(i, client)
            else:
                self.skipped += 1
            delay = next_t - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            else:  # fell behind (a slow answer): drop the missed ticks, do not burst
                missed = int(-delay / self.tick_s)
                self.skipped += missed
                next_t += missed * self.tick_s

    async def _send(self, i: int, client: AsyncClient) -> None:
        flow = self.gens[i].take(self.per_tick)
        with self.lock:
            self.submitted += len(flow.txs)
            self.pending.update(dict.fromkeys(flow.hashes, IN_FLIGHT))
        try:
            answer = await client.broadcast_txs_packed(flow.txs)
        except RpcError as err:
            self._settle(flow.hashes, [err.name for _ in flow.hashes], i)
            return
        except (NodeUnreachable, OSError):
            self._settle(flow.hashes, [None] * len(flow.hashes), i)
            return
        names: list[str | None] = [("" if code == 0 else code_name(code)) for _h, code, _m in answer]
        names += [None] * (len(flow.hashes) - len(names))
        self._settle(flow.hashes, names, i)

    def _settle(self, hashes: tuple[bytes, ...], names: Sequence[str | None], i: int) -> None:
        """``""``: acknowledged; a code name: refused; None: no answer."""
        with self.lock:
            for h, name in zip(hashes, names, strict=True):
                early = h in self.found_early
                self.found_early.discard(h)
                if name == "":
                    self.acked += 1
                    if early:
                        self.pending.pop(h, None)
                    else:
                        self.pending[h] = i + NODES * self.phase
                    continue
                self.pending.pop(h, None)
                if name is None:
                    self.unanswered += 1
                    self.unanswered_hashes.add(h)
                else:
                    self.refused[name] += 1
                    self.refused_hashes.add(h)


class Ledger:
    """Checks the heights committed since the last check on every node (see the module doc)."""

    def __init__(self, c: NetnsCluster, load: TrackedLoad, report: RunReport) -> None:
        self.c, self.load, self.report = c, load, report
        self.checked = 0

    def check(self, upto: int) -> int:
        """Check heights ``checked+1 .. upto`` on every node; the acked txs found."""
        found = 0
        for lo in range(self.checked + 1, upto + 1, 100):
            hi = min(upto, lo + 99)
            per_node = [{b["height"]: [t[0] for t in b["txs"]]
                         for b in self.c.get(i, f"/commits?from={lo}&to={hi}", timeout=60)["blocks"]}
                        for i in range(NODES)]
            for h in range(lo, hi + 1):
                lists = [blocks.get(h) for blocks in per_node]
                if any(x is None for x in lists):
                    raise RuntimeError(f"height {h} missing on a node")
                if any(x != lists[0] for x in lists):
                    self.report.forks += 1
                    self.report.errors.append(f"height {h}: the nodes committed different txs")
                found += self._cross_off(h, set.intersection(*(set(x or ()) for x in lists)))
        if upto > self.checked:
            blocks = {self.c.get(i, f"/block?height={upto}", timeout=30)["hash"] for i in range(NODES)}
            apps = {self.c.get(i, f"/block_results?height={upto}", timeout=30)["app_hash"] for i in range(NODES)}
            if len(blocks) != 1:
                self.report.forks += 1
                self.report.errors.append(f"height {upto}: block hashes differ: {sorted(blocks)}")
            if len(apps) != 1:
                self.report.app_hash_mismatches += 1
                self.report.errors.append(f"height {upto}: app hashes differ: {sorted(apps)}")
        self.checked = max(self.checked, upto)
        self.report.heights = self.checked
        return found

    def _cross_off(self, height: int, hashes_hex: set[str]) -> int:
        """Cross off the txs block ``height`` holds on every node; a commit-acknowledged
        one must be at the height its node reported."""
        found = 0
        ld, rep = self.load, self.report
        with ld.lock:
            for hx in hashes_hex:
                h = bytes.fromhex(hx)
                rep.committed += 1
                at = ld.commit_acked.pop(h, None)
                if at is not None and at != height:
                    rep.errors.append(f"tx {hx} acknowledged at height {at}, found at {height}")
                state = ld.pending.pop(h, None)
                if state is None:
                    if h in ld.refused_hashes:
                        rep.refused_but_committed += 1
                    elif h in ld.unanswered_hashes:
                        rep.committed_unanswered += 1
                        ld.unanswered_hashes.discard(h)
                    continue
                if state == IN_FLIGHT:
                    ld.found_early.add(h)
                found += 1
        rep.found_all += found
        return found


# ---------------------------------------------------------------------------- the run
class NetChaos:
    """The cluster, the net, the load and the checks of one long run."""

    def __init__(self, root: Path, seed: int, rate: float, tmpfs_size: str = "4g",
                 keep_logs: Path | None = None) -> None:
        self.root = root
        self.keep_logs = keep_logs
        self.rng = random.Random(seed)
        self.report = RunReport(seed, rate)
        self.rate = rate
        self.tmpfs_size = tmpfs_size
        self.net = NetCut(NODES, (0, 1), prefix="bx")
        self.c: NetnsCluster | None = None
        self.data: Path | None = None
        self.mounted = False

    # -- setup / teardown
    def __enter__(self) -> NetChaos:
        self.net.build()
        try:
            self.c = NetnsCluster(self.root, self.net, traders=8)
            self.data = Path(self.c.manifest.nodes[DISK_NODE].home) / "data"
            why = diskfill.mount_tmpfs(self.data, self.tmpfs_size)
            if why is not None:
                raise RuntimeError(f"cannot give validator {DISK_NODE} a small disk: {why}")
            self.mounted = True
            self.c.start_all()
            vals = self.c.get(0, "/validators")["validators"]
            self.vs = ValidatorSet((bytes.fromhex(v["pubkey"]), int(v["power"])) for v in vals)
            self.index_of = {bytes.fromhex(self.c.get(i, "/status")["validator"]["pubkey"]): i for i in range(NODES)}
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self.c is not None:
            self.c.stop_all()
            if self.keep_logs is not None:  # a stall or an error is explained from the nodes' logs
                self.keep_logs.mkdir(parents=True, exist_ok=True)
                for i, node in enumerate(self.c.manifest.nodes):
                    log = Path(node.home) / "logs" / "node.log"
                    if log.exists():
                        shutil.copyfile(log, self.keep_logs / f"node{i}.log")
        if self.mounted and self.data is not None:
            diskfill.umount(self.data)
        self.net.close()

    @property
    def cluster(self) -> NetnsCluster:
        assert self.c is not None
        return self.c

    # -- helpers
    def heights(self) -> list[int]:
        c = self.cluster
        return [c.height(i) if c.alive(i) and not _stopped(c, i) else -1 for i in range(NODES)]

    def quorum_up(self, heights: list[int]) -> bool:
        up = [i for i, h in enumerate(heights) if h >= 0]
        return any(all(self.net.connected(a, b) for a, b in itertools.combinations(trio, 2))
                   for trio in itertools.combinations(up, 3))

    def proposer(self) -> int:
        """The validator proposing the height and round the most advanced live node is in."""
        best: tuple[int, int] = (0, 0)
        for i in range(NODES):
            if not self.cluster.alive(i) or _stopped(self.cluster, i):
                continue
            with contextlib.suppress(NodeUnreachable, RpcError, KeyError, TypeError):
                cons = self.cluster.get(i, "/status", timeout=3)["consensus"]
                best = max(best, (int(cons["height"]), int(cons["round"])))
        if best[0] < 1:
            return self.rng.randrange(NODES)
        return self.index_of[self.vs.proposer(*best)]

    def recover(self, p: Perturbation, t_fault_off: float, top: int, limit_s: float = 60.0) -> None:
        """Wait for every node to pass ``top`` (the highest height when the fault was
        removed); the catch-up time counts from ``t_fault_off``."""
        while time.monotonic() - t_fault_off < limit_s:
            if min(self.heights()) > top:
                p.catch_up_s = round(time.monotonic() - t_fault_off, 2)
                return
            time.sleep(0.05)
        p.error = f"not caught up {limit_s:.0f} s after the fault: heights {self.heights()} vs {top}"

    def mempools_empty(self) -> bool:
        try:
            return all(int(self.cluster.get(i, "/status", timeout=5)["mempool_size"]) == 0 for i in range(NODES))
        except (NodeUnreachable, RpcError, KeyError, ValueError):
            return False

    def restart_dead(self) -> None:
        for i in range(NODES):
            if not self.cluster.alive(i):
                self.cluster.start(i)

    # -- perturbations: each returns the moment the fault was removed
    def _hold(self, lo: float = 2.0, hi: float = 5.0) -> float:
        s = self.rng.uniform(lo, hi)
        time.sleep(s)
        return s

    def do_kill9_one(self, p: Perturbation) -> float:
        self.cluster.kill(p.victims[0], signal.SIGKILL)
        p.held_s = self._hold(1.0, 3.0)
        self.cluster.start(p.victims[0])
        return time.monotonic()

    do_kill9_proposer = do_kill9_one

    def do_kill9_all(self, p: Perturbation) -> float:
        for i in range(NODES):
            self.cluster.kill(i, signal.SIGKILL)
        p.held_s = self._hold(0.5, 1.5)
        for i in range(NODES):
            self.cluster.start(i)
        return time.monotonic()

    def do_sigstop(self, p: Perturbation) -> float:
        self.cluster.kill(p.victims[0], signal.SIGSTOP)
        p.held_s = self._hold()
        self.cluster.kill(p.victims[0], signal.SIGCONT)
        return time.monotonic()

    def do_cut_one(self, p: Perturbation) -> float:
        self.net.isolate(p.victims[0])
        p.held_s = self._hold()
        self.net.heal()
        return time.monotonic()

    do_cut_proposer = do_cut_one

    def do_split_2_2(self, p: Perturbation) -> float:
        rest = [i for i in range(NODES) if i not in p.victims]
        self.net.split([p.victims, rest])
        p.detail = f"{p.victims} | {rest}"
        p.held_s = self._hold()
        self.net.heal()
        return time.monotonic()

    def do_asymmetric(self, p: Perturbation) -> float:
        src, dst = p.victims
        self.net.one_way(src, dst)
        p.detail = f"{src} -> {dst} passes, {dst} -> {src} dropped"
        p.held_s = self._hold()
        self.net.heal()
        return time.monotonic()

    def do_restart_catching_up(self, p: Perturbation) -> float:
        c, v = self.cluster, p.victims[0]
        c.kill(v, signal.SIGKILL)
        p.held_s = self._hold(3.0, 6.0)  # fall behind
        c.start(v)
        deadline = time.monotonic() + 15
        behind = False
        while time.monotonic() < deadline:  # up and still behind the others: kill it there
            h = self.heights()
            if h[v] >= 0 and h[v] < max(h):
                behind = True
                break
            time.sleep(0.05)
        time.sleep(self.rng.uniform(0.0, 0.5))
        c.kill(v, signal.SIGKILL)
        p.detail = "killed while catching up" if behind else "killed after start (was not seen behind)"
        time.sleep(0.5)
        c.start(v)
        return time.monotonic()

    def do_disk_full(self, p: Perturbation) -> float:
        c, data = self.cluster, self.data
        assert data is not None
        log = Path(c.manifest.nodes[DISK_NODE].home) / "logs" / "node.log"
        start_at = log.stat().st_size if log.exists() else 0
        shrunk = diskfill.shrink(data)
        filler = diskfill.Filler(data / "filler")
        try:
            if not shrunk:  # the node outgrew each headroom: shrink again once the filler holds the rest
                filler.take()
                shrunk = diskfill.shrink(data, headroom=0)
            t0 = time.monotonic()
            proc = c.procs[DISK_NODE]
            while proc.poll() is None and time.monotonic() - t0 < 30:
                filler.take()
                time.sleep(0.05)
            code = proc.poll()
            p.held_s = round(time.monotonic() - t0, 2)
            p.detail = f"exit {code} after {p.held_s} s{'' if shrunk else ' (tmpfs not shrunk: filled)'}"
            if code != EXIT_DISK_FULL:
                p.error = f"validator {DISK_NODE} did not stop with {EXIT_DISK_FULL} on a full disk: {code}"
                if code is None:
                    c.kill(DISK_NODE, signal.SIGKILL)
            new_log = log.read_bytes()[start_at:].decode(errors="replace") if log.exists() else ""
            if "Traceback" in new_log:
                p.error = p.error or "a traceback in the log of the full-disk stop"
        finally:
            filler.free()
            diskfill.resize(data, self.tmpfs_size)
        c.start(DISK_NODE)
        return time.monotonic()

    # -- the sequence
    def plan(self, n: int, kinds: tuple[str, ...]) -> list[str]:
        """``n`` kinds: every kind once per round, each round shuffled."""
        out: list[str] = []
        while len(out) < n:
            r = list(kinds)
            self.rng.shuffle(r)
            out.extend(r)
        return out[:n]

    def victims(self, kind: str) -> list[int]:
        if kind in ("kill9_proposer", "cut_proposer"):
            return [self.proposer()]
        if kind == "kill9_all":
            return list(range(NODES))
        if kind == "disk_full":
            return [DISK_NODE]
        if kind == "split_2_2":
            return sorted([0, *self.rng.sample([1, 2, 3], 1)])  # the side with 0: 3 distinct splits
        if kind == "asymmetric":
            return self.rng.sample(range(NODES), 2)
        return [self.rng.randrange(NODES)]

    def measure_capacity(self, seconds: float = 20.0, offered: float = 4000.0) -> float:
        """Committed tx/s under an offered load well past what the chain takes (the
        refusals are the admission bound at work), on this very cluster and machine."""
        probe = RunReport(self.report.seed, offered)
        load = TrackedLoad(self.cluster, offered, self.report.seed + 1000)
        ledger = Ledger(self.cluster, load, probe)
        ledger.checked = min(self.heights())
        load.start()
        try:
            time.sleep(5.0)
            ledger.check(min(self.heights()))
            t0, before = time.monotonic(), probe.committed
            time.sleep(seconds)
            ledger.check(min(self.heights()))
            rate = (probe.committed - before) / (time.monotonic() - t0)
        finally:
            load.stop()
        deadline = time.monotonic() + 30
        while not self.mempools_empty() and time.monotonic() < deadline:
            time.sleep(0.5)
        return rate

    def run(self, n: int, kinds: tuple[str, ...] = KINDS, progress: Callable[[Perturbation], None] | None = None,
            drain_s: float = 60.0, warmup_s: float = 3.0) -> RunReport:
        rep, c = self.report, self.cluster
        if self.rate <= 0:
            rep.capacity_per_s = round(self.measure_capacity(), 1)
            self.rate = rep.rate_target = round(rep.capacity_per_s / 2)
        t_start = time.monotonic()
        load = TrackedLoad(c, self.rate, rep.seed)
        ledger = Ledger(c, load, rep)
        ledger.checked = min(self.heights())  # what came before (a capacity probe) is not this load's
        watcher = HeightWatcher(c, self.quorum_up)
        load.start()
        watcher.start()
        try:
            time.sleep(warmup_s)  # the load settles (a long warm-up with no perturbation measures capacity)
            for k, kind in enumerate(self.plan(n, kinds)):
                p = Perturbation(k, kind, self.victims(kind))
                load.phase = k
                h0 = max(self.heights())
                try:
                    off = getattr(self, f"do_{kind}")(p)
                    # h0: restarted nodes answer -1 until they are up, which must not lower the bar
                    self.recover(p, off, max(h0, *self.heights()))
                except Exception as err:  # the run goes on: the error is the perturbation's result
                    p.error = p.error or f"{type(err).__name__}: {err}"
                finally:
                    self.net.heal()
                    self.restart_dead()
                    with contextlib.suppress(Exception):
                        c.kill(p.victims[0], signal.SIGCONT)
                p.stall_with_quorum_s = round(watcher.take_window(), 2)
                top = min(self.heights())
                try:
                    p.acked_found = ledger.check(top)
                except (NodeUnreachable, RpcError, RuntimeError) as err:
                    p.error = p.error or f"check: {err}"
                p.heights = (h0, top)
                rep.perturbations.append(p)
                if progress is not None:
                    progress(p)
                time.sleep(self.rng.uniform(0.5, 1.5))
        finally:
            load.stop()
            watcher.stop_flag.set()
            watcher.join(timeout=5)
        self.drain(ledger, load, drain_s)
        rep.longest_stall_with_quorum_s = round(watcher.longest_with_quorum, 2)
        rep.longest_stall_s = round(watcher.longest, 2)
        rep.duration_s = round(time.monotonic() - t_start, 1)
        rep.load_s = round(load.t1 - load.t0, 1)
        return rep

    def blame(self, phase: int, node: int) -> str:
        """What lost a tx ``node`` admitted during perturbation ``phase``: the first fault
        from then on that took ``node``'s memory (its mempool is not durable), else the
        perturbation in force at admission, flagged (such a loss needs explaining)."""
        ps = self.report.perturbations
        for p in ps[phase:]:
            if p.kind in CRASHES and node in p.victims:
                return f"{p.kind} of {node}"
        kind = ps[phase].kind if phase < len(ps) else "end"
        return f"{kind}, admitted by {node}, which did not crash after"

    def drain(self, ledger: Ledger, load: TrackedLoad, limit_s: float) -> None:
        """Wait for the mempools to empty, check up to the common height, count the rest as lost."""
        rep = self.report
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            ledger.check(min(self.heights()))
            with load.lock:
                waiting = sum(1 for v in load.pending.values() if v != IN_FLIGHT) + len(load.commit_acked)
            if not waiting or self.mempools_empty():
                break  # all found, or nothing left anywhere that could still commit
            time.sleep(1.0)
        ledger.check(min(self.heights()))
        with load.lock:
            lost = [(h, v) for h, v in load.pending.items() if v != IN_FLIGHT]
            rep.submitted, rep.acked, rep.unanswered = load.submitted, load.acked, load.unanswered
            rep.commit_acked = load.commit_acks
            rep.lost_commit_acked = len(load.commit_acked)
            rep.refused_by_code = dict(sorted(load.refused.items()))
            rep.skipped_ticks = load.skipped
        by: Counter[str] = Counter()
        for _h, v in lost:
            by[self.blame(*divmod(v, NODES))] += 1
        rep.lost = len(lost)
        rep.lost_by = dict(by.most_common())
        rep.lost_sample = [f"{h.hex()} (node {v % NODES}, perturbation {v // NODES})" for h, v in lost[:10]]


def run(root: Path, n: int, seed: int, rate: float, kinds: tuple[str, ...] = KINDS,
        progress: Callable[[Perturbation], None] | None = None, tmpfs_size: str = "4g",
        warmup_s: float = 3.0, keep_logs: Path | None = None) -> RunReport:
    """Build everything, run ``n`` perturbations, tear everything down (``keep_logs``: a
    directory to copy the nodes' logs to first)."""
    with NetChaos(root, seed, rate, tmpfs_size, keep_logs) as chaos:
        return chaos.run(n, kinds, progress, warmup_s=warmup_s)


__all__ = ["KINDS", "NetChaos", "Perturbation", "RunReport", "TrackedLoad", "available", "run"]
