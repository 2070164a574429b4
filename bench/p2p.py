"""Benchmark the p2p layer: 4 nodes on loopback, each in its own process.

    python -m bench.p2p [--small-count 20000] [--large-count 300] [--requests 2000]

Scenarios (all-to-all, every node broadcasting to the 3 others at the same time, so
each node is sender and receiver at once, as validators are):

* ``200 B`` and ``100 KB`` frames on ``/bookchain/consensus/1``: frames/s and MB/s
  *per receiver*, measured from the start command to the last frame arriving; the
  senders pace themselves on ``P2PNode.queued()`` so nothing is dropped, and each
  receiver checks that every sender's frames arrive complete and in order.
* request/response on ``/bookchain/sync/1``: sequential round trips from node 0 to the
  others (100 B -> 100 B, and 100 B -> 1 MB), p50 / p99 / max latency.

The orchestrator talks to the workers with JSON lines on stdin/stdout and kills them
on exit whatever happens.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import statistics
import struct
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import uvloop

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.common import print_table, write_json  # noqa: E402
from node.p2p import CONSENSUS, SYNC, P2PNode, identity  # noqa: E402

NODES = 4
HEADER = struct.Struct(">IQ")  # sender index, sequence number


# ============================================================================ worker


class Worker:
    """One benchmark node: floods on command, counts what it receives, serves requests."""

    def __init__(self, node: P2PNode, index: int, peer_ids: list[str]) -> None:
        self.node = node
        self.index = index
        self.peer_ids = peer_ids
        self.expect = 0
        self.received = 0
        self.bytes = 0
        self.next_seq: dict[int, int] = {}
        self.out_of_order = 0
        self.done = asyncio.Event()
        node.register(CONSENSUS, self.on_frame)
        node.register_request(SYNC, self.on_request)

    async def on_frame(self, peer_id: str, frame: bytes) -> None:
        sender, seq = HEADER.unpack_from(frame)
        if self.next_seq.get(sender, 0) != seq:
            self.out_of_order += 1
        self.next_seq[sender] = seq + 1
        self.received += 1
        self.bytes += len(frame)
        if self.received >= self.expect:
            self.done.set()

    async def on_request(self, peer_id: str, request: bytes) -> bytes:
        size = int.from_bytes(request[:4], "big")
        return bytes(size)

    async def flood(self, size: int, count: int, timeout_s: float) -> dict[str, Any]:
        self.expect, self.received, self.bytes, self.out_of_order = 3 * count, 0, 0, 0
        self.next_seq.clear()
        self.done.clear()
        started = time.perf_counter()
        cpu0 = time.process_time()
        pad = bytes(size - HEADER.size)
        # Stay well below the queue bounds (10,000 frames / 64 MB per peer): past them
        # the queue drops its oldest frames, which is not what we want to measure.
        max_bytes = max(4 * 1024 * 1024, 8 * size)
        max_frames = 3 * 2000
        for seq in range(count):
            if seq % 16 == 0:
                while True:
                    frames, queued = self.node.queued(protocol_id=CONSENSUS)
                    if frames <= max_frames and queued <= max_bytes:
                        break
                    await asyncio.sleep(0.0005)
            self.node.broadcast(CONSENSUS, HEADER.pack(self.index, seq) + pad)
        sent_s = time.perf_counter() - started
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.done.wait(), timeout_s)
        elapsed = time.perf_counter() - started
        dropped = sum(p["dropped_out"] for p in self.node.metrics_snapshot()["protocols"].values())
        return {
            "received": self.received,
            "expected": self.expect,
            "bytes": self.bytes,
            "seconds": elapsed,
            "send_seconds": sent_s,
            "cpu_seconds": time.process_time() - cpu0,
            "out_of_order": self.out_of_order,
            "dropped": dropped,
        }

    async def latency(self, count: int, response_size: int) -> dict[str, Any]:
        samples: list[float] = []
        request = response_size.to_bytes(4, "big") + bytes(96)
        for i in range(count):
            peer = self.peer_ids[i % len(self.peer_ids)]
            t0 = time.perf_counter()
            response = await self.node.request(peer, SYNC, request, timeout_s=10)
            samples.append(time.perf_counter() - t0)
            assert len(response) == response_size
        samples.sort()
        return {
            "count": count,
            "p50_ms": 1000 * samples[len(samples) // 2],
            "p99_ms": 1000 * samples[min(len(samples) - 1, int(len(samples) * 0.99))],
            "max_ms": 1000 * samples[-1],
            "mean_ms": 1000 * statistics.fmean(samples),
        }


async def worker_main(args: argparse.Namespace) -> None:
    # Peers dial each other before all of them listen; libp2p logs each refused dial
    # at ERROR. Our reconnect loop handles that, so keep the bench output readable.
    logging.getLogger("libp2p").setLevel(logging.CRITICAL)
    node = P2PNode(args.home, f"/ip4/127.0.0.1/tcp/{args.port}", peers=args.peer)
    peer_ids = [p.rsplit("/p2p/", 1)[1] for p in args.peer]
    worker = Worker(node, args.index, peer_ids)
    await node.start()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    def reply(obj: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    try:
        await node.wait_for_peers(peer_ids, 30)
        reply({"event": "ready", "peer_id": node.peer_id})
        while line := await reader.readline():
            cmd = json.loads(line)
            if cmd["cmd"] == "flood":
                reply(await worker.flood(cmd["size"], cmd["count"], cmd["timeout_s"]))
            elif cmd["cmd"] == "latency":
                reply(await worker.latency(cmd["count"], cmd["response_size"]))
            elif cmd["cmd"] == "metrics":
                reply(node.metrics_snapshot())
            else:
                break
    finally:
        await node.stop()


# ============================================================================ orchestrator


class Cluster:
    """Four worker processes wired into a full mesh."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.procs: list[asyncio.subprocess.Process] = []

    async def start(self) -> None:
        ports = [_free_port() for _ in range(NODES)]
        ids = [identity.load_or_create(identity.key_path(self.root / f"n{i}"))[1] for i in range(NODES)]
        addrs = [f"/ip4/127.0.0.1/tcp/{ports[i]}/p2p/{ids[i]}" for i in range(NODES)]
        for i in range(NODES):
            argv = [sys.executable, "-m", "bench.p2p", "--worker", "--index", str(i)]
            argv += ["--home", str(self.root / f"n{i}"), "--port", str(ports[i])]
            for j in range(NODES):
                if j != i:
                    argv += ["--peer", addrs[j]]
            proc = await asyncio.create_subprocess_exec(
                *argv,
                cwd=REPO,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                start_new_session=True,
            )
            self.procs.append(proc)
        for proc in self.procs:
            ready = await self.read(proc, 60)
            assert ready.get("event") == "ready", ready

    async def read(self, proc: asyncio.subprocess.Process, timeout_s: float) -> dict[str, Any]:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), timeout_s)
        if not line:
            raise RuntimeError(f"worker {proc.pid} exited")
        result: dict[str, Any] = json.loads(line)
        return result

    def send(self, proc: asyncio.subprocess.Process, cmd: dict[str, Any]) -> None:
        assert proc.stdin is not None
        proc.stdin.write((json.dumps(cmd) + "\n").encode())

    async def all(self, cmd: dict[str, Any], timeout_s: float) -> list[dict[str, Any]]:
        for proc in self.procs:
            self.send(proc, cmd)
        return await asyncio.gather(*(self.read(p, timeout_s) for p in self.procs))

    async def stop(self) -> None:
        for proc in self.procs:
            if proc.returncode is None and proc.stdin is not None:
                with contextlib.suppress(Exception):
                    proc.stdin.close()
        for proc in self.procs:
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                await proc.wait()


@contextlib.asynccontextmanager
async def cluster() -> AsyncIterator[Cluster]:
    with tempfile.TemporaryDirectory(prefix="bench-p2p-") as tmp:
        c = Cluster(Path(tmp))
        try:
            await c.start()
            yield c
        finally:
            await c.stop()
            for proc in c.procs:  # belt and braces: nothing may outlive the bench
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def summarize_flood(name: str, size: int, results: list[dict[str, Any]]) -> dict[str, Any]:
    per_receiver = [r["received"] / r["seconds"] for r in results]
    mb_per_receiver = [r["bytes"] / r["seconds"] / 1e6 for r in results]
    return {
        "scenario": name,
        "frame_bytes": size,
        "frames_per_s_per_receiver": statistics.fmean(per_receiver),
        "min_frames_per_s_per_receiver": min(per_receiver),
        "mb_per_s_per_receiver": statistics.fmean(mb_per_receiver),
        "frames_per_s_total": sum(per_receiver),
        "complete": all(r["received"] == r["expected"] for r in results),
        "out_of_order": sum(r["out_of_order"] for r in results),
        "dropped": sum(r["dropped"] for r in results),
        "cpu_seconds": sum(r["cpu_seconds"] for r in results),
        "seconds": max(r["seconds"] for r in results),
        "workers": results,
    }


async def orchestrate(args: argparse.Namespace) -> None:
    report: dict[str, Any] = {"nodes": NODES, "transport": "tcp/noise/yamux loopback"}
    async with cluster() as c:
        floods = []
        for size, count in ((200, args.small_count), (100_000, args.large_count)):
            await c.all({"cmd": "flood", "size": 200, "count": 50, "timeout_s": 10}, 30)  # warm-up
            results = await c.all({"cmd": "flood", "size": size, "count": count, "timeout_s": 120}, 180)
            floods.append(summarize_flood(f"{size} B all-to-all", size, results))
        report["floods"] = floods
        latencies = []
        for response_size in (100, 1_000_000):
            count = args.requests if response_size <= 100 else max(50, args.requests // 10)
            c.send(c.procs[0], {"cmd": "latency", "count": count, "response_size": response_size})
            result = await c.read(c.procs[0], 300)
            latencies.append({"scenario": f"100 B -> {response_size:,} B", **result})
        report["request_response"] = latencies
    rows: list[tuple[str, Any, str]] = []
    for f in floods:
        rows.append((f"{f['scenario']}: per receiver", f["frames_per_s_per_receiver"], "frames/s"))
        rows.append((f"{f['scenario']}: per receiver", f["mb_per_s_per_receiver"], "MB/s"))
        rows.append((f"{f['scenario']}: all 4 receivers", f["frames_per_s_total"], "frames/s"))
        rows.append((f"{f['scenario']}: complete, in order", f["complete"] and not f["out_of_order"], ""))
    for lat in latencies:
        rows.append((f"request {lat['scenario']}: p50", lat["p50_ms"], "ms"))
        rows.append((f"request {lat['scenario']}: p99", lat["p99_ms"], "ms"))
    print_table("p2p: 4 nodes, separate processes, loopback", rows)
    write_json("p2p", report)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small-count", type=int, default=20_000, help="200 B frames per sender")
    parser.add_argument("--large-count", type=int, default=300, help="100 KB frames per sender")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--index", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--home", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--peer", action="append", default=[], help=argparse.SUPPRESS)
    args = parser.parse_args()
    uvloop.run(worker_main(args) if args.worker else orchestrate(args))


if __name__ == "__main__":
    main()
