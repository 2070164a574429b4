"""Start, inspect and stop node processes without ever touching a process we didn't start.

A pid alone is not an identity: after a reboot or a long time the same number can belong
to someone else's process. So each started process is recorded with its kernel start
time (``/proc/<pid>/stat`` field 22), and a recorded pid counts as ours only while that
start time still matches. Zombies (our own exited children, not yet reaped) count as dead.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from devnet.manifest import ProcessEntry


def proc_start_time(pid: int) -> int | None:
    """Kernel start time of ``pid`` in clock ticks, or None where /proc is unavailable."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may contain spaces and parentheses: split after the last ')'
    fields = stat[stat.rfind(")") + 2:].split()
    return int(fields[19])  # field 22 overall; fields[0] is field 3


def _proc_state(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rfind(")") + 2:].split()[0]


def _reap(pid: int) -> None:
    """Collect our own exited child so it stops being a zombie; harmless for non-children."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def is_ours_and_alive(entry: ProcessEntry) -> bool:
    _reap(entry.pid)
    try:
        os.kill(entry.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False  # exists but belongs to another user: certainly not ours
    if _proc_state(entry.pid) in ("Z", "X"):
        return False
    if entry.start_time is not None:
        return proc_start_time(entry.pid) == entry.start_time
    return True


def spawn(cmd: Sequence[str], log_file: Path, *, env: dict[str, str] | None = None,
          cwd: str | None = None) -> ProcessEntry:
    """Start ``cmd`` detached (own session, so the terminal's Ctrl-C does not reach it),
    stdout and stderr appended to ``log_file``."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    full_env = dict(os.environ if env is None else env)
    full_env.setdefault("PYTHONUNBUFFERED", "1")
    with open(log_file, "ab") as out:
        proc = subprocess.Popen(list(cmd), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, env=full_env, cwd=cwd, close_fds=True)
    return ProcessEntry(proc.pid, proc_start_time(proc.pid), time.time_ns() // 1_000_000, tuple(cmd))


def stop(entries: dict[str, ProcessEntry], timeout: float = 10.0) -> dict[str, str]:
    """SIGTERM each recorded process that is still ours, wait, SIGKILL stragglers.

    Returns what happened per name: "not running", "stopped", "killed", or
    "alive after SIGKILL" (e.g. stuck in uninterruptible I/O; reported, never hidden).
    """
    outcome: dict[str, str] = {}
    live: dict[str, ProcessEntry] = {}
    for name, e in entries.items():
        if is_ours_and_alive(e):
            with contextlib.suppress(ProcessLookupError):
                os.kill(e.pid, signal.SIGTERM)
            live[name] = e
        else:
            outcome[name] = "not running"
    deadline = time.monotonic() + timeout
    while live and time.monotonic() < deadline:
        for name, e in list(live.items()):
            if not is_ours_and_alive(e):
                outcome[name] = "stopped"
                del live[name]
        if live:
            time.sleep(0.05)
    for name, e in live.items():
        with contextlib.suppress(ProcessLookupError):
            os.kill(e.pid, signal.SIGKILL)
        outcome[name] = "killed"
    kill_deadline = time.monotonic() + 5.0
    while live and time.monotonic() < kill_deadline:
        live = {n: e for n, e in live.items() if is_ours_and_alive(e)}
        if live:
            time.sleep(0.05)
    for name in live:
        outcome[name] = "alive after SIGKILL"
    return outcome
