"""End to end: `bookchain testnet` homes on four addresses, started, making blocks.

The hosts are 127.0.0.2 .. 127.0.0.5 (Linux routes all of 127.0.0.0/8 to the loopback), so
each node listens on its own address with the same two ports, as validators on four
machines would, and dials the others by the addresses `testnet` wrote. Everything runs
through the `bookchain` executable: testnet, devnet up/status/load/down against the
directory `testnet` wrote.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devnet.manifest import Manifest, load_manifest
from devnet.procs import is_ours_and_alive, stop
from node.client import Client, as_int

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

HOSTS = [f"127.0.0.{i}" for i in range(2, 6)]


def bookchain(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "COLUMNS": "200"})


def ports_free_on_every_host() -> tuple[int, int]:
    """Two ports free on 127.0.0.2 that are also free on the other hosts."""
    for _ in range(50):
        with socket.socket() as a, socket.socket() as b:
            a.bind((HOSTS[0], 0))
            b.bind((HOSTS[0], 0))
            ports = (a.getsockname()[1], b.getsockname()[1])
        try:
            for host in HOSTS:
                for port in ports:
                    with socket.socket() as s:
                        s.bind((host, port))
        except OSError:
            continue
        return ports
    raise AssertionError("no pair of ports free on every loopback host")


@pytest.fixture(scope="module")
def testnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Manifest]:
    out = tmp_path_factory.mktemp("testnet") / "net"
    p2p, rpc = ports_free_on_every_host()
    res = bookchain("testnet", "--hosts", ",".join(HOSTS), "--out", str(out), "--p2p-port", str(p2p),
                    "--rpc-port", str(rpc), "--traders", "4")
    assert res.returncode == 0, res.stdout + res.stderr
    try:
        up = bookchain("devnet", "up", "--home", str(out), "--timeout", "60")
        assert up.returncode == 0, up.stdout + up.stderr
        m = load_manifest(out)
        assert m is not None
        yield m
    finally:
        down = bookchain("devnet", "down", "--home", str(out))
        m = load_manifest(out)
        if m is not None:  # the recorded pids only
            stop({n: e for n, e in m.processes.items() if is_ours_and_alive(e)}, timeout=5)
        assert down.returncode == 0, down.stdout + down.stderr


def test_nodes_on_their_own_addresses_reach_height_3(testnet: Manifest) -> None:
    for n, host in zip(testnet.nodes, HOSTS, strict=True):
        assert n.rpc_url.startswith(f"http://{host}:")
        st = Client(n.rpc_url).wait_for_height(3, timeout=30)
        assert as_int(st["latest_height"]) >= 3
    peers = Client(testnet.nodes[0].rpc_url).status()["peers"]
    assert len(peers) == 3
    res = bookchain("devnet", "status", "--home", str(Path(testnet.nodes[0].home).parent), "--json")
    assert res.returncode == 0, res.stdout + res.stderr
    doc: dict[str, Any] = json.loads(res.stdout)
    assert doc["hashes_agree"] is True
    assert [r["rpc_url"] for r in doc["nodes"]] == [n.rpc_url for n in testnet.nodes]


def test_load_targets_the_given_urls(testnet: Manifest) -> None:
    urls = ",".join(n.rpc_url for n in testnet.nodes[1:3])
    res = bookchain("devnet", "load", "--home", str(Path(testnet.nodes[0].home).parent), "--nodes", urls,
                    "--tps", "20", "--seconds", "1", "--drain-timeout", "20", "--json", "-")
    assert res.returncode == 0, res.stdout + res.stderr
    report = json.loads(res.stdout)
    assert report["nodes"] == 2
    assert report["committed"] == report["submitted"] == 20
