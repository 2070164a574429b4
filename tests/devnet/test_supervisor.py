"""Supervisor with a stand-in node process: up, status, refuse, logs, down, failures."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import bookchain
from devnet.genesis import DevnetSpec
from devnet.manifest import NodeEntry, ProcessEntry, load_manifest
from devnet.procs import is_ours_and_alive, proc_start_time, stop
from devnet.supervisor import DevnetError, Supervisor

STANDIN = str(Path(__file__).with_name("standin_node.py"))
SPEC = DevnetSpec(nodes=3, traders=1)


def standin(node: NodeEntry) -> list[str]:
    return [sys.executable, STANDIN, "--home", node.home]


def pids(home: Path) -> list[int]:
    m = load_manifest(home)
    assert m is not None
    return [e.pid for e in m.processes.values()]


def alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"


def test_up_status_refuse_down(devnet_home: Path) -> None:
    sup = Supervisor(devnet_home, node_command=standin)
    m = sup.up(SPEC, timeout=20)
    started = pids(devnet_home)
    assert len(started) == 3 and all(alive(p) for p in started)
    # every process is in its own session, detached from ours
    assert all(os.getsid(p) == p for p in started)

    st = sup.status()
    assert st.common_height is not None and st.common_height >= 2
    assert all(r.alive and r.peers == 2 for r in st.nodes)
    assert st.hashes_agree is True

    with pytest.raises(DevnetError, match="already running"):
        sup.up(SPEC)
    assert pids(devnet_home) == started

    assert sup.log_file("1") == Path(m.nodes[1].home) / "logs" / "node.log"
    log = sup.log_file("1", stdout=True)
    assert log == Path(m.nodes[1].home) / "logs" / "stdout.log"
    assert "standin node1" in log.read_text()

    outcome = sup.down()
    assert outcome == {"node0": "stopped", "node1": "stopped", "node2": "stopped"}
    assert not any(alive(p) for p in started)
    m2 = load_manifest(devnet_home)
    assert m2 is not None and m2.processes == {}
    assert sup.down() == {}  # idempotent


def test_restart_reuses_the_devnet_and_reset_replaces_it(devnet_home: Path) -> None:
    sup = Supervisor(devnet_home, node_command=standin)
    first = sup.up(SPEC, timeout=20)
    sup.down()
    again = sup.up(SPEC, timeout=20)
    assert [n.peer_id for n in again.nodes] == [n.peer_id for n in first.nodes]
    old = pids(devnet_home)
    fresh = sup.up(SPEC, reset=True, timeout=20)
    assert not any(alive(p) for p in old)
    assert [n.peer_id for n in fresh.nodes] != [n.peer_id for n in first.nodes]
    sup.down()


def test_crashing_node_fails_up_with_its_log_and_leaves_nothing(devnet_home: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STANDIN_MODE", "crash")
    sup = Supervisor(devnet_home, node_command=standin)
    with pytest.raises(DevnetError) as e:
        sup.up(SPEC, timeout=20)
    assert "exited during start-up" in str(e.value)
    assert "cannot open data/state (simulated)" in str(e.value)
    m = load_manifest(devnet_home)
    assert m is not None and not any(is_ours_and_alive(p) for p in m.processes.values())


def test_timeout_names_the_stuck_node_and_stops_everything(devnet_home: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STANDIN_MODE", "stall")
    sup = Supervisor(devnet_home, node_command=standin)
    with pytest.raises(DevnetError, match=r"timed out after 2s waiting for height 2 .*node0: height 0"):
        sup.up(SPEC, timeout=2)
    m = load_manifest(devnet_home)
    assert m is not None and m.processes == {}


def test_down_sigkills_a_node_that_ignores_sigterm(devnet_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STANDIN_MODE", "stubborn")
    sup = Supervisor(devnet_home, node_command=standin)
    sup.up(DevnetSpec(nodes=1, traders=0), timeout=20)
    (pid,) = pids(devnet_home)
    time.sleep(0.3)  # let it install its SIGTERM handler
    assert sup.down(timeout=0.5) == {"node0": "killed"}
    assert not alive(pid)


def test_never_signals_a_process_it_did_not_start(tmp_path: Path) -> None:
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        start = proc_start_time(other.pid)
        assert start is not None
        impostor = ProcessEntry(other.pid, start + 1, 0, ("x",))  # same pid, different process
        assert not is_ours_and_alive(impostor)
        assert stop({"n": impostor}, timeout=0.2) == {"n": "not running"}
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()


def test_refuses_a_non_empty_foreign_directory(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    sup = Supervisor(tmp_path, node_command=standin)
    with pytest.raises(DevnetError, match="not empty"):
        sup.up(SPEC)
    with pytest.raises(DevnetError, match="refusing to delete"):
        sup.up(SPEC, reset=True)
    assert (tmp_path / "precious.txt").read_text() == "keep me"


def test_cli_status_logs_and_down_without_a_devnet(tmp_path: Path) -> None:
    r = CliRunner()
    res = r.invoke(bookchain, ["devnet", "status", "--home", str(tmp_path / "none")])
    assert res.exit_code == 1 and "no devnet" in res.output
    res = r.invoke(bookchain, ["devnet", "down", "--home", str(tmp_path / "none")])
    assert res.exit_code == 0 and "no devnet processes" in res.output


def test_cli_status_and_logs_with_standins(devnet_home: Path) -> None:
    sup = Supervisor(devnet_home, node_command=standin)
    sup.up(SPEC, timeout=20)
    r = CliRunner()
    res = r.invoke(bookchain, ["devnet", "status", "--home", str(devnet_home)])
    assert res.exit_code == 0, res.output
    assert "agree" in res.output and "node2" in res.output
    res = r.invoke(bookchain, ["devnet", "logs", "node2", "--home", str(devnet_home), "-n", "5"])
    assert res.exit_code == 0 and "standin node2 log" in res.output
    res = r.invoke(bookchain, ["devnet", "logs", "node2", "--stdout", "--home", str(devnet_home), "-n", "5"])
    assert res.exit_code == 0 and "standin node2 mode=ok" in res.output
    res = r.invoke(bookchain, ["devnet", "logs", "node9", "--home", str(devnet_home)])
    assert res.exit_code == 1 and "no node 'node9'" in res.output
    res = r.invoke(bookchain, ["devnet", "down", "--home", str(devnet_home)])
    assert res.exit_code == 0 and res.output.count("stopped") == 3
