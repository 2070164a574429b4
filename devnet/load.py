"""Load generator: submit a pre-signed flow at a target rate, measure submit-to-commit.

Submission: every ``interval`` seconds (by an absolute schedule, so slow answers do not
stretch the run) one batch of ``tps * interval`` txs (or ``batch_txs``) goes to
``/broadcast_txs`` of the next node in turn, as its own task, so a slow node does not hold
back the others (one node's large batches go out one after another, in order: see
``_submit_batch``). A trader talks to one node only, as a real client talks to one
endpoint: trader ``i``'s txs go to node ``i % nodes``, and the batch for a node is the
next txs of that node's traders in flow (= nonce) order. Sending one trader's batches to
the nodes in turn let its nonces overtake each other across nodes, and at saturation more
than the 100 kept nonces did, which came back as ``NONCE_TOO_LOW``. One batch per tick to
one node (each node gets one every ``nodes`` ticks) rather than a slice to every node each
tick: every request costs the node its HTTP round, a hand-off to the verification threads
and a journal write, and what it admits goes to the peers in libp2p frames (at most one
per ``gossip_gap_ms``), each costing the sender and each receiver ~0.4 ms of CPU in its
p2p worker; so four times the requests cost the devnet measurably more CPU per tx.
``batch_txs`` measures exactly that: the load of many clients each sending a few orders.
Batches of at most half a trader's kept nonces go out without waiting for the node's
previous answer (one overtaking another cannot push a nonce out of the kept window).
Batches travel in the msgpack form (raw bytes, one ``[hash, code, message]`` per tx back):
hex JSON cost the generator and the node more than the transactions' own checks.

Tracking: one task follows the chain with ``/commits`` on the first node, in msgpack: per
block the tx hashes (32 bytes each) and their receipt codes, matched against the submitted
hashes. It long-polls (``wait_ms``) for the next height, so a block is seen as soon as the
node has stored its results; commit time is when that answer arrived. It replaces
``/status`` plus a full JSON ``/block_results`` per block, which cost the followed node
more CPU than executing the block's transactions.

Counted apart: *admitted* txs (the node answered OK), *refused* ones (the node's admission
answer, by code name, e.g. ``MEMPOOL_BUSY`` when the admission window is full, and
whole-batch RPC errors), and committed txs whose receipt code is not OK (*failed in block*,
e.g. ``UNKNOWN_ORDER`` for a cancel that lost the race with a fill). A refused tx was
never the chain's: it is not lost, and not counted as uncommitted. Latency percentiles
are of admitted txs only (from the scheduled submit to the commit seen); ``submit_*_ms``
are the round trips of the ``/broadcast_txs`` calls (a node's admission answer time, plus
the wire and the wait of each side's event loop); ``lone_*_ms`` are those of the lone
client (``lone_schedule``: one trader's txs, one per request, as a single submission
waits under the load); ``node_answer_*_ms`` are the nodes' own
answer times over the run (their ``bookchain_admission_ms`` histograms, read from
``/metrics`` before and after: the upper bound of the percentile's bucket). ``rejected``
and ``rejected_by_code`` sum both kinds, as before.
``tx_per_s`` counts every committed tx: a failed-in-block tx still went through consensus
and execution.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from devnet.flow import SignedFlow, generate
from devnet.manifest import load_manifest
from node.client import AsyncClient, NodeUnreachable, RpcError, as_int
from node.codes import unpack_codes
from node.jsonfmt import code_name
from node.wallet.keystore import KeyStore
from state import nonces
from state.genesis import Genesis

UNREACHABLE = "UNREACHABLE"
BATCH_INTERVAL_S = 0.1  # a batch per this much of the rate, unless ``batch_txs`` says otherwise
OVERTAKE_SAFE_TXS = nonces.KEEP // 2  # half the nonces a signer keeps


@dataclass(frozen=True, slots=True)
class LoadReport:
    target_tps: float
    seconds: float
    nodes: int
    accounts: int
    submitted: int
    accepted: int
    committed: int
    committed_ok: int
    uncommitted: int
    rejected: int
    rejected_by_code: dict[str, int]
    refused: int
    refused_by_code: dict[str, int]
    failed_in_block_by_code: dict[str, int]
    tx_per_s: float
    ok_tx_per_s: float
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    submit_s: float
    duration_s: float
    blocks: int
    first_height: int | None
    last_height: int | None
    submit_p50_ms: float | None = None
    submit_p99_ms: float | None = None
    submit_max_ms: float | None = None
    node_answer_p50_ms: float | None = None
    node_answer_p99_ms: float | None = None
    loop_lag_p50_ms: float | None = None  # the nodes' event loops' lag (bucket bounds)
    loop_lag_p99_ms: float | None = None
    lone_requests: int = 0
    lone_p50_ms: float | None = None
    lone_p99_ms: float | None = None
    lone_max_ms: float | None = None
    mix: dict[str, int] = field(default_factory=dict)

    @property
    def admitted(self) -> int:
        return self.accepted

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


#: the nodes' own answer time to a client's submission, and their event loops' lag
#: (node/metrics.py), histograms
ANSWER_METRIC = "bookchain_admission_ms"
LAG_METRIC = "bookchain_event_loop_lag_ms"


async def node_histograms(session: Any, urls: Sequence[str]) -> dict[str, Counter[float]]:
    """The nodes' ``ANSWER_METRIC`` and ``LAG_METRIC`` histograms, each summed over the
    nodes: bucket bound -> cumulative count. A node that does not answer adds nothing."""
    import aiohttp
    from prometheus_client.parser import text_string_to_metric_families

    totals: dict[str, Counter[float]] = {ANSWER_METRIC: Counter(), LAG_METRIC: Counter()}
    for url in urls:
        try:
            async with session.get(url.rstrip("/") + "/metrics", timeout=aiohttp.ClientTimeout(total=10)) as resp:
                if resp.status != 200:
                    continue
                families = list(text_string_to_metric_families(await resp.text()))
        except (aiohttp.ClientError, TimeoutError, ValueError):
            continue
        for family in families:
            total = totals.get(family.name)
            if total is not None:
                for sample in family.samples:
                    if sample.name.endswith("_bucket"):
                        total[float(sample.labels["le"])] += int(sample.value)
    return totals


def bucket_percentile(before: Counter[float], after: Counter[float], q: float) -> float | None:
    """The upper bound of the histogram bucket that holds the ``q``-th percentile of what
    was observed between two scrapes (None when nothing was; ``inf`` past the last bound).
    The bound, not an interpolation: the node's buckets are all it kept."""
    counts = sorted((le, max(0, after[le] - before.get(le, 0))) for le in after)
    if not counts or counts[-1][1] == 0:
        return None
    rank = max(1, math.ceil(q / 100 * counts[-1][1]))
    return next(le for le, c in counts if c >= rank)


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile of an ascending list (None when empty)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


class _Tracker:
    """Shared bookkeeping between the submit tasks and the block follower."""

    def __init__(self) -> None:
        self.waiting: dict[bytes, float] = {}  # tx hash -> submit time, until committed or refused
        self.latencies: list[float] = []
        self.refused_by: Counter[str] = Counter()  # admission answers that were not OK
        self.failed_by: Counter[str] = Counter()  # committed with a receipt code that is not OK
        self.round_trips: list[float] = []  # ms per /broadcast_txs call
        self.lone_trips: list[float] = []  # ms per call of the lone client (one tx each)
        self.accepted = 0
        self.committed = 0
        self.committed_ok = 0
        self.blocks = 0
        self.first_height: int | None = None
        self.last_height: int | None = None
        self.last_commit: float | None = None

    def sent(self, hashes: Sequence[bytes], now: float) -> None:
        self.waiting.update(dict.fromkeys(hashes, now))

    @property
    def rejected(self) -> Counter[str]:
        """Refusals and failures in blocks together (the report's ``rejected_by_code``)."""
        return self.refused_by + self.failed_by

    def refused(self, h: bytes, name: str) -> None:
        if self.waiting.pop(h, None) is not None:
            self.refused_by[name] += 1

    def in_block(self, height: int, hashes: bytes, codes: Sequence[int], now: float) -> None:
        """Block ``height`` committed ``hashes`` (32 bytes each, concatenated) with ``codes``."""
        self.blocks += 1
        if self.first_height is None:
            self.first_height = height
        self.last_height = height
        pop = self.waiting.pop
        latencies = self.latencies
        for i, code in enumerate(codes):
            sent = pop(hashes[32 * i: 32 * i + 32], None)
            if sent is None:
                continue
            self.committed += 1
            latencies.append((now - sent) * 1000)
            self.last_commit = now
            if code == 0:
                self.committed_ok += 1
            else:
                self.failed_by[code_name(code)] += 1


async def _submit_batch(client: AsyncClient, txs: Sequence[bytes], hashes: Sequence[bytes], tr: _Tracker,
                        in_order: asyncio.Lock | None, trips: list[float] | None = None) -> None:
    """Send one batch; ``in_order`` (one per node, FIFO) keeps a node's batches in the order
    they were scheduled. Two requests in flight to one node may be admitted in either order
    (a node whose loop was busy applying a block reads both sockets at once), and a batch
    holding more than 100 txs of one trader that overtakes the previous one turns the
    latter's tail into ``NONCE_TOO_LOW``. Latency counts from the scheduled time, so
    waiting here for a slow node is measured, not hidden. The lone client's calls (one tx
    each, ``in_order`` None) go out at once and their round trips to ``trips``."""
    tr.sent(hashes, time.perf_counter())
    try:
        async with in_order or contextlib.nullcontext():
            t0 = time.perf_counter()
            answer = await client.broadcast_txs_packed(txs)
            (tr.round_trips if trips is None else trips).append((time.perf_counter() - t0) * 1000)
    except RpcError as err:
        for h in hashes:
            tr.refused(h, err.name)
        return
    except NodeUnreachable:
        for h in hashes:
            tr.refused(h, UNREACHABLE)
        return
    for h, (_hash, code, _message) in zip(hashes, answer, strict=False):
        if code != 0:
            tr.refused(h, code_name(code))
        else:
            tr.accepted += 1


Batch = tuple[list[bytes], list[bytes]]  # raw txs and their hashes


def split_by_node(flow: SignedFlow, per_tick: int, nodes: int, lone: int | None = None) -> list[tuple[int, Batch]]:
    """One batch per tick: tick ``k`` goes to node ``k % nodes`` (the next node that still
    has txs once a node's share is used up) and holds the next ``per_tick`` txs of that
    node's traders (trader ``i`` belongs to node ``i % nodes``), in flow (= nonce) order.
    The flow is round-robin over traders, so with a multiple of ``nodes`` traders every
    node gets the same rate. Trader ``lone``'s txs are left out (``lone_schedule``)."""
    queues: list[list[int]] = [[] for _ in range(nodes)]
    for j, trader in enumerate(flow.traders):
        if trader != lone:
            queues[trader % nodes].append(j)
    taken = [0] * nodes
    left = sum(len(q) for q in queues)
    out: list[tuple[int, Batch]] = []
    k = 0
    while left:
        node = k % nodes
        while taken[node] >= len(queues[node]):
            node = (node + 1) % nodes
        picked = queues[node][taken[node]: taken[node] + per_tick]
        taken[node] += len(picked)
        left -= len(picked)
        out.append((node, ([flow.txs[j] for j in picked], [flow.hashes[j] for j in picked])))
        k += 1
    return out


def lone_schedule(flow: SignedFlow, lone: int, tps: float) -> list[tuple[float, int]]:
    """The lone client: trader ``lone`` sends each of its txs in a request of its own, at
    the tx's place in the flow (``j / tps`` seconds in), as a client that trades by hand or
    from a bot does; (offset s, flow index) per tx. Its requests do not wait for each
    other: a tx that overtakes an earlier one of the same trader is only refused once 100
    later nonces of it committed first."""
    return [(j / tps, j) for j, trader in enumerate(flow.traders) if trader == lone]


async def _send_lone(client: AsyncClient, flow: SignedFlow, schedule: list[tuple[float, int]], t0: float,
                     tr: _Tracker, tasks: list[asyncio.Task[None]]) -> None:
    for offset, j in schedule:
        delay = t0 + offset - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(
            _submit_batch(client, [flow.txs[j]], [flow.hashes[j]], tr, None, tr.lone_trips)))


async def _follow(client: AsyncClient, start_height: int, tr: _Tracker, stop: asyncio.Event, poll_s: float) -> None:
    """Follow the chain from ``start_height + 1`` until ``stop``; each call long-polls
    up to ``poll_s`` for the next height."""
    height = start_height
    wait_ms = max(1, round(poll_s * 1000))
    while not stop.is_set():
        try:
            _latest, blocks = await client.commits_packed(height + 1, wait_ms=wait_ms)
        except (NodeUnreachable, RpcError):
            with contextlib.suppress(TimeoutError):  # a busy or restarting node: try again
                await asyncio.wait_for(stop.wait(), poll_s)
            continue
        now = time.perf_counter()
        for h, hashes, codes in blocks:
            if h != height + 1:
                break
            tr.in_block(h, hashes, unpack_codes(codes), now)
            height = h


async def run_load(urls: list[str], flow: SignedFlow, *, tps: float, seconds: float, accounts: int,
                   interval: float = BATCH_INTERVAL_S, drain_timeout: float = 30.0, poll_s: float = 0.25,
                   progress: Any = None, lone: bool = True, batch_txs: int | None = None) -> LoadReport:
    """Submit ``flow`` to ``urls`` at ``tps`` and follow the chain until it is committed.
    ``lone``: the last trader is a lone client, one tx per request (``lone_schedule``),
    whose round trips are what a single submission waits for under this load.
    ``batch_txs``: txs per request instead of ``interval`` seconds of the rate (many small
    requests, as many clients each sending a few orders make)."""
    import aiohttp

    if not urls:
        raise ValueError("no node URLs")
    per_tick = batch_txs if batch_txs else max(1, round(tps * interval))
    interval = per_tick / tps  # keep the rate exact after rounding the batch size
    tr = _Tracker()
    connector = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(connector=connector) as session:
        clients = [AsyncClient(u, timeout=30.0, session=session) for u in urls]
        follower = clients[0]
        histograms_before = await node_histograms(session, urls)
        start_height = as_int((await follower.status())["latest_height"])
        stop = asyncio.Event()
        follow_task = asyncio.create_task(_follow(follower, start_height, tr, stop, poll_s))
        n = len(flow.txs)
        lone_trader = max(flow.traders) if lone and len(set(flow.traders)) > 1 else None
        ticks = split_by_node(flow, per_tick, len(clients), lone_trader)  # before the clock starts
        schedule = [] if lone_trader is None else lone_schedule(flow, lone_trader, tps)
        tasks: list[asyncio.Task[None]] = []
        # batches small enough that one overtaking another cannot push a trader's nonces out
        # of the kept window go out without waiting for the node's previous answer
        in_order = [asyncio.Lock() if per_tick > OVERTAKE_SAFE_TXS else None for _ in clients]
        t0 = time.perf_counter()
        lone_task = None if lone_trader is None else asyncio.create_task(
            _send_lone(clients[lone_trader % len(clients)], flow, schedule, t0, tr, tasks))
        done = len(schedule)
        for k, (node, (txs, hashes)) in enumerate(ticks):
            delay = t0 + k * interval - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(_submit_batch(clients[node], txs, hashes, tr, in_order[node])))
            done += len(txs)
            if progress is not None:
                progress(done)
        if lone_task is not None:
            await lone_task
        await asyncio.gather(*tasks)
        submit_s = time.perf_counter() - t0
        deadline = time.perf_counter() + drain_timeout
        while tr.waiting and time.perf_counter() < deadline:
            await asyncio.sleep(0.05)
        stop.set()
        await follow_task
        histograms_after = await node_histograms(session, urls)
    end = tr.last_commit if tr.last_commit is not None else time.perf_counter()
    window = max(end - t0, 1e-9)
    lat = sorted(tr.latencies)
    trips = sorted(tr.round_trips)
    lone_trips = sorted(tr.lone_trips)
    rejected = tr.rejected
    return LoadReport(
        target_tps=tps, seconds=seconds, nodes=len(urls), accounts=accounts,
        submitted=n, accepted=tr.accepted, committed=tr.committed, committed_ok=tr.committed_ok,
        uncommitted=len(tr.waiting), rejected=sum(rejected.values()),
        rejected_by_code=dict(sorted(rejected.items())),
        refused=sum(tr.refused_by.values()), refused_by_code=dict(sorted(tr.refused_by.items())),
        failed_in_block_by_code=dict(sorted(tr.failed_by.items())),
        tx_per_s=round(tr.committed / window, 1), ok_tx_per_s=round(tr.committed_ok / window, 1),
        p50_ms=_r(percentile(lat, 50)), p90_ms=_r(percentile(lat, 90)), p99_ms=_r(percentile(lat, 99)),
        max_ms=_r(lat[-1] if lat else None), submit_s=round(submit_s, 3), duration_s=round(window, 3),
        blocks=tr.blocks, first_height=tr.first_height, last_height=tr.last_height,
        submit_p50_ms=_r(percentile(trips, 50)), submit_p99_ms=_r(percentile(trips, 99)),
        submit_max_ms=_r(trips[-1] if trips else None),
        node_answer_p50_ms=bucket_percentile(histograms_before[ANSWER_METRIC], histograms_after[ANSWER_METRIC], 50),
        node_answer_p99_ms=bucket_percentile(histograms_before[ANSWER_METRIC], histograms_after[ANSWER_METRIC], 99),
        loop_lag_p50_ms=bucket_percentile(histograms_before[LAG_METRIC], histograms_after[LAG_METRIC], 50),
        loop_lag_p99_ms=bucket_percentile(histograms_before[LAG_METRIC], histograms_after[LAG_METRIC], 99),
        lone_requests=len(lone_trips), lone_p50_ms=_r(percentile(lone_trips, 50)),
        lone_p99_ms=_r(percentile(lone_trips, 99)), lone_max_ms=_r(lone_trips[-1] if lone_trips else None),
        mix=flow.counts(),
    )


def _r(v: float | None) -> float | None:
    return None if v is None else round(v, 1)


@dataclass(frozen=True, slots=True)
class DevnetLoad:
    """Everything a load run needs, read off a devnet's home."""

    urls: list[str]
    flow: SignedFlow
    accounts: int


def prepare(home: str, *, tps: float, seconds: float, accounts: int | None = None, seed: int = 1,
            progress: Any = None) -> DevnetLoad:
    """Sign ``tps * seconds`` txs from the devnet's trader keys (before any timing starts)."""
    m = load_manifest(home)
    if m is None:
        raise FileNotFoundError(f"no devnet in {home} (run `bookchain devnet up` first)")
    genesis = Genesis.load(str(Path(home) / "genesis.json"))
    names = [a for a in m.accounts if a.startswith("trader")]
    if accounts is not None:
        if accounts > len(names):
            raise ValueError(f"the devnet has {len(names)} trader accounts, asked for {accounts} "
                             "(recreate it with `devnet up --reset --traders N`)")
        names = names[:accounts]
    ks = KeyStore(m.cli_home)
    keys = [ks.load(n).key for n in names]
    count = max(1, round(tps * seconds))
    flow = generate(genesis, keys, count, seed=seed, nonce_base_ms=time.time_ns() // 1_000_000,
                    progress=progress)
    return DevnetLoad([n.rpc_url for n in m.nodes], flow, len(keys))
