"""A P2PNode in its own process, for tests and benchmarks.

Echoes every consensus frame back to its sender and answers sync requests with
``b"pong:" + request``. Prints one JSON line ``{"peer_id", "addrs"}`` once listening,
then runs until stdin closes or SIGTERM arrives, and stops cleanly.

    python -m tests.p2p.peer_proc --home DIR --listen /ip4/127.0.0.1/tcp/PORT [--peer MA]...
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys

import uvloop

from node.p2p import CONSENSUS, SYNC, P2PNode


async def main(args: argparse.Namespace) -> None:
    node = P2PNode(args.home, args.listen, peers=args.peer)

    async def echo(peer_id: str, frame: bytes) -> None:
        node.send(peer_id, CONSENSUS, frame)

    async def pong(peer_id: str, request: bytes) -> bytes:
        return b"pong:" + request

    node.register(CONSENSUS, echo)
    node.register_request(SYNC, pong)
    await node.start()
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, done.set)

    def on_stdin() -> None:
        if not os.read(sys.stdin.fileno(), 4096):  # EOF: the parent wants us to stop
            done.set()

    loop.add_reader(sys.stdin.fileno(), on_stdin)
    print(json.dumps({"peer_id": node.peer_id, "addrs": node.listen_addrs}), flush=True)
    try:
        await done.wait()
    finally:
        loop.remove_reader(sys.stdin.fileno())
        await node.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--home", required=True)
    parser.add_argument("--listen", default="/ip4/127.0.0.1/tcp/0")
    parser.add_argument("--peer", action="append", default=[])
    uvloop.run(main(parser.parse_args()))
