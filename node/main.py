"""``bookchain node start --home DIR``: run one node until SIGINT/SIGTERM.

The node runs on one asyncio event loop (uvloop) that also hosts py-libp2p's trio in
guest mode (node/p2p/bridge.py). Logs go to DIR/logs/node.log and stderr, one line per
event, with the height in every consensus line.

Exit status: 0 after SIGINT/SIGTERM, 1 when the node refuses the state it was given (a
snapshot or a store that fails its checks, a file where a store's directory belongs),
``EXIT_DISK_FULL`` (6) when a write to its
data directory failed, or the directory cannot take one at start (node/diskfull.py),
``EXIT_WAL_DAMAGED`` (7) when the consensus WAL is damaged before records that follow
(node/wal_file.py).
Each is one log line, never a traceback.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import sys
from pathlib import Path

from node.config import ConfigError, NodeConfig
from node.diskfull import EXIT_DISK_FULL, StorageFailure, writing
from node.gctune import tune_for_throughput

log = logging.getLogger("bookchain.node")


#: The environment variable that sets the level of what the node (and its p2p worker, which
#: inherits it) also writes to stderr: ``bookchain node start --stderr-level``.
STDERR_LEVEL_ENV = "BOOKCHAIN_LOG_STDERR"


def setup_logging(log_path: Path, level: str = "INFO", *, with_libp2p: bool = True) -> None:
    """Every record to the log file; to stderr from ``BOOKCHAIN_LOG_STDERR``'s level (all of
    them without it). Why a level of its own: a supervisor that keeps stderr in a file of its
    own (the devnet's ``logs/stdout.log``) needs only what the log file may miss there, the
    warnings and errors and whatever the interpreter prints, not a second copy of every line."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    fmt = logging.Formatter("%(asctime)s.%(msecs)03d %(levelname)s %(name)s %(message)s", "%Y-%m-%dT%H:%M:%S")
    root = logging.getLogger()
    root.handlers.clear()
    stderr = logging.StreamHandler(sys.stderr)
    stderr.setLevel(os.environ.get(STDERR_LEVEL_ENV) or logging.NOTSET)
    for handler in (_LogFile(log_path), stderr):
        handler.setFormatter(fmt)
        root.addHandler(handler)
    root.setLevel(os.environ.get("BOOKCHAIN_LOG", level))
    for noisy in ("libp2p", "multiaddr", "aiohttp.access", "trio", "async_service"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if with_libp2p and not os.environ.get("LIBP2P_DEBUG"):
        # (``with_libp2p``: this process runs it; the RPC front-end does not, and skips the ~1 s import)
        # importing libp2p detaches its logger (no handler, no propagation), so its warnings
        # would reach stderr through logging's last resort, unformatted and not in the log
        # file: import it first (the node and its p2p worker import it anyway), then attach
        import libp2p  # noqa: F401

        library = logging.getLogger("libp2p")
        library.handlers.clear()
        library.propagate = True
    for attached in root.handlers:
        attached.addFilter(_one_line_for_libraries)


def _one_line_for_libraries(record: logging.LogRecord) -> bool:
    """Fold a library's record to its first line, naming the exception it carried (class and
    message, not the traceback). libp2p writes the traceback of a task cancelled at shutdown
    into a warning's text; a node's log names what happened in one line and shows no
    traceback for what the node handles."""
    if record.name.startswith("bookchain"):
        return True
    message = record.getMessage()
    first = message.split("\n", 1)[0]
    if first != message or record.exc_info or record.exc_text:
        err = record.exc_info[1] if record.exc_info else None
        if err is not None:
            detail = str(err).split("\n", 1)[0]
            first += f": {type(err).__name__}" + (f": {detail}" if detail else "")
        record.msg, record.args = first, None
        record.exc_info, record.exc_text = None, None
    return True


class _LogFile(logging.FileHandler):
    """The log file, which may sit on the disk that filled up: a record it cannot write is
    dropped without the handler's usual traceback on stderr (stderr still has the line)."""

    def handleError(self, record: logging.LogRecord) -> None:
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handleError(record)


def _refuse_start(err: StorageFailure) -> int:
    log.critical("refusing to start: %s (exit %d): free space or fix the disk, then start again",
                 err.describe(), EXIT_DISK_FULL)
    return EXIT_DISK_FULL


async def serve(config: NodeConfig) -> int:
    """Run until a signal or a failed write; the process's exit status. A node restored
    from a snapshot whose next block every peer has pruned stops with ``resync`` set: its
    restored state is discarded and it runs again, state-syncing from a newer snapshot
    (node/syncfallback.py)."""
    from node.syncfallback import discard_synced_state

    while True:
        status, resync = await _serve_once(config)
        if not resync:
            return status
        try:
            discard_synced_state(config)
        except StorageFailure as err:
            return _refuse_start(err)
        gc.unfreeze()  # the stopped run's objects (frozen by tune_for_throughput) may be collected
        log.info("restored state discarded: state-syncing again from %s", config.storage.state_sync_from)


async def _serve_once(config: NodeConfig) -> tuple[int, bool]:
    """One run of the node: its exit status, and whether it stopped to state-sync again."""
    from node.runtime import NodeRuntime

    try:
        rt = NodeRuntime(config)
    except StorageFailure as err:
        return _refuse_start(err), False
    loop = asyncio.get_running_loop()
    signalled = False

    def on_signal() -> None:
        nonlocal signalled
        signalled = True  # a stop asked for outranks a fallback in progress: no second run
        rt.stop_requested.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    status = 0
    try:
        await rt.start()
        tune_for_throughput()  # after start-up loaded the state: see node/gctune.py
        with writing(config.pid_path):
            config.pid_path.write_text(str(os.getpid()))
        await rt.stop_requested.wait()
        if rt.storage_failure is not None:  # logged once where it failed (NodeRuntime.fail_storage)
            status = EXIT_DISK_FULL
        elif rt.exit_status:  # logged once where it failed (the p2p worker)
            status = rt.exit_status
        elif not rt.resync:
            log.info("h=%d shutting down", rt.sm.height)
    except StorageFailure as err:  # before the node was up: start-up recovery could not write
        status = _refuse_start(err)
    finally:
        await rt.stop()
        config.pid_path.unlink(missing_ok=True)
        log.info("stopped cleanly")
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    return status, rt.resync and status == 0 and not signalled


def run(home: str, stderr_level: str | None = None) -> None:
    """Run the node; a refusal to start on the state it was given (a snapshot that fails its
    checks, a store whose records do not give its app hash) is one log line with its code
    and exit status 1, never a traceback. ``stderr_level``: what also goes to stderr
    (``setup_logging``; the p2p worker, a child, inherits it through the environment)."""
    import plyvel

    from node.p2p.identity import IdentityError
    from node.syncverify import SnapshotError
    from node.wal_file import EXIT_WAL_DAMAGED, WalDamaged
    from state.errors import StateIntegrityError

    if stderr_level is not None:
        os.environ[STDERR_LEVEL_ENV] = stderr_level
    try:
        config = NodeConfig.load(home)
    except ConfigError as err:  # nothing started yet, no log file: one line on stderr
        print(f"Error: {home}/config.json: {err}", file=sys.stderr)
        sys.exit(1)
    try:
        setup_logging(config.log_path)
    except OSError as err:  # logs/ is a file, unwritable, or the disk is full: no log file to say it in
        print(f"Error: refusing to start: the log file {config.log_path} cannot be opened: "
              f"{err.strerror or err}", file=sys.stderr)
        sys.exit(1)
    try:
        try:
            import uvloop
        except ImportError:  # pragma: no cover - uvloop is a dependency; keep running without it
            log.warning("uvloop unavailable, using the default asyncio loop")
            status = asyncio.run(serve(config))
        else:
            status = uvloop.run(serve(config))
    except SnapshotError as err:
        log.critical("state sync refused [%s %d]: %s", err.code.name,
                     int(err.code), err.message)
        sys.exit(1)
    except (StateIntegrityError, IdentityError) as err:
        log.critical("refusing to start: %s", err)
        sys.exit(1)
    except WalDamaged as err:  # the message names the file, the offsets and the exit status
        log.critical("refusing to start: %s", err)
        sys.exit(EXIT_WAL_DAMAGED)
    except plyvel.Error as err:  # LevelDB cannot open a store: corrupt or missing files
        text = err.args[0].decode(errors="replace") if err.args and isinstance(err.args[0], bytes) else str(err)
        log.critical("refusing to start: a data store under %s/data cannot be opened: %s", home, text)
        sys.exit(1)
    if status:
        sys.exit(status)


if __name__ == "__main__":
    run(sys.argv[1])
