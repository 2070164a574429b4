"""``bookchain node start --home DIR``: run one node until SIGINT/SIGTERM.

The node runs on one asyncio event loop (uvloop) that also hosts py-libp2p's trio in
guest mode (node/p2p/bridge.py). Logs go to DIR/logs/node.log and stderr, one line per
event, with the height in every consensus line.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

from node.config import NodeConfig
from node.gctune import tune_for_throughput

log = logging.getLogger("bookchain.node")


def setup_logging(log_path: Path, level: str = "INFO") -> None:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    fmt = logging.Formatter("%(asctime)s.%(msecs)03d %(levelname)s %(name)s %(message)s", "%Y-%m-%dT%H:%M:%S")
    root = logging.getLogger()
    root.handlers.clear()
    for handler in (logging.FileHandler(log_path), logging.StreamHandler(sys.stderr)):
        handler.setFormatter(fmt)
        root.addHandler(handler)
    root.setLevel(os.environ.get("BOOKCHAIN_LOG", level))
    for noisy in ("libp2p", "multiaddr", "aiohttp.access", "trio", "async_service"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


async def serve(config: NodeConfig) -> None:
    from node.runtime import NodeRuntime

    rt = NodeRuntime(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await rt.start()
        tune_for_throughput()  # after start-up loaded the state: see node/gctune.py
        config.pid_path.write_text(str(os.getpid()))
        await stop.wait()
        log.info("h=%d shutting down", rt.sm.height)
    finally:
        await rt.stop()
        config.pid_path.unlink(missing_ok=True)
        log.info("stopped cleanly")


def run(home: str) -> None:
    """Run the node; a refusal to start on the state it was given (a snapshot that fails its
    checks, a store whose records do not give its app hash) is one log line with its code
    and exit status 1, never a traceback."""
    from node.syncverify import SnapshotError
    from state.errors import StateIntegrityError

    config = NodeConfig.load(home)
    setup_logging(config.log_path)
    try:
        try:
            import uvloop
        except ImportError:  # pragma: no cover - uvloop is a dependency; keep running without it
            log.warning("uvloop unavailable, using the default asyncio loop")
            asyncio.run(serve(config))
        else:
            uvloop.run(serve(config))
    except SnapshotError as err:
        log.critical("state sync refused [%s %d]: %s", err.code.name,
                     int(err.code), err.message)
        sys.exit(1)
    except StateIntegrityError as err:
        log.critical("refusing to start: %s", err)
        sys.exit(1)


if __name__ == "__main__":
    run(sys.argv[1])
