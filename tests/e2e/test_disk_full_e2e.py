"""A validator whose disk fills up stops cleanly, loses nothing, and recovers when space
returns (issue 25, "Chaos under real load").

Node 3's data directory is a small tmpfs. Under light load (acknowledged =
``/broadcast_tx_commit`` answered with a height, from any node, node 3 included), a filler
file takes every free byte: node 3 must exit with ``EXIT_DISK_FULL`` after one log line
naming the path and "disk full", with no traceback, while the other three keep committing.
Started again on the still-full disk it refuses to start, with the same code. With the
filler gone, a plain restart catches up: the same block hashes at every height and the same
app hash as the others, every acknowledged transaction at the height it was acknowledged
at, and no equivocation anywhere.
"""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from devnet.cluster import Cluster
from devnet.diskfill import Filler, mount_tmpfs, umount
from devnet.supervisor import stdout_log
from node.client import NodeUnreachable
from node.diskfull import EXIT_DISK_FULL
from state.tx import PlaceOrder, Tif, tx_hash

pytestmark = pytest.mark.e2e

TMPFS_SIZE = "24m"
VICTIM = 3


class Load:
    """Light load: a few clients, each placing resting orders through ``broadcast_tx_commit``
    on every node in turn; what is answered with a height is acknowledged."""

    def __init__(self, c: Cluster, clients: int = 3) -> None:
        self.c = c
        self.lock = threading.Lock()
        self.acked: dict[bytes, int] = {}  # tx hash -> the height it was acknowledged at
        self.refused = 0
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._client, args=(k,), daemon=True) for k in range(clients)]

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=30)

    def _client(self, k: int) -> None:
        n = 0
        while not self.stop.is_set():
            n += 1
            node = (k + n) % 4
            buy = n % 2 == 0
            price = 58_000 - n % 500 if buy else 62_000 + n % 500
            with self.lock:
                raw = self.c.sign(f"trader{k}", PlaceOrder(0, buy, price, 3, Tif.GTC, False, None))
            try:
                status, body = self.c.post(node, "/broadcast_tx_commit", {"tx": raw.hex(), "timeout_ms": 10_000},
                                           timeout=15)
            except (NodeUnreachable, OSError):
                status, body = 0, None
            with self.lock:
                if status == 200 and isinstance(body, dict) and body.get("height"):
                    self.acked[tx_hash(raw)] = int(body["height"])
                else:
                    self.refused += 1
            if status != 200:
                time.sleep(0.05)  # a node that is down refuses at once: do not spin

    def count(self) -> int:
        with self.lock:
            return len(self.acked)


def _wait(pred: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _block_hashes(c: Cluster, i: int, top: int) -> list[str]:
    out: list[str] = []
    for lo in range(1, top + 1, 100):
        blocks = c.get(i, f"/blocks?from={lo}&to={min(top, lo + 99)}", timeout=30)["blocks"]
        out.extend(b["hash"] for b in blocks)
    return out


@pytest.mark.timeout(180)
def test_a_full_disk_stops_the_validator_cleanly_and_a_restart_catches_up(tmp_path: Path) -> None:
    c = Cluster(tmp_path / "net")
    home = Path(c.manifest.nodes[VICTIM].home)
    data = home / "data"
    why = mount_tmpfs(data, TMPFS_SIZE)
    if why is not None:
        pytest.skip(f"cannot give one validator a small disk: {why}")
    filler: Filler | None = None
    try:
        c.start_all()
        log_out, log_file = stdout_log(c.manifest.nodes[VICTIM]), home / "logs" / "node.log"
        with Load(c) as load:
            _wait(lambda: load.count() >= 20, 30, "20 acknowledged transactions")
            acked_before = load.count()
            filler = Filler(data / "filler")
            t_full = time.monotonic()
            proc = c.procs[VICTIM]
            while proc.poll() is None and time.monotonic() - t_full < 30:
                filler.take()  # what the node frees (a truncated WAL) is taken again
                time.sleep(0.05)
            assert proc.poll() == EXIT_DISK_FULL, f"node {VICTIM} did not stop on the full disk:\n{c.log_tail(VICTIM)}"

            # one line naming the path and "disk full", no traceback, in both logs
            for log in (log_out, log_file):
                text = log.read_text(errors="replace")
                assert "Traceback" not in text, f"{log}:\n{text[-3000:]}"
                critical = [line for line in text.splitlines() if " CRITICAL " in line]
                assert len(critical) == 1, f"{log}:\n" + "\n".join(critical)
                assert "disk full: cannot write " + str(data) in critical[0], critical[0]
                assert f"(exit {EXIT_DISK_FULL})" in critical[0], critical[0]

            # the other three keep committing, and the load keeps being acknowledged
            h_stop = c.current_height(0)
            c.wait_height(h_stop + 5, nodes=[0, 1, 2], timeout=20)
            _wait(lambda: load.count() >= acked_before + 10, 20, "acknowledgements without node 3")

            # still full: the node refuses to start, same code, one line
            filler.take()  # whatever the stopping node freed
            c.start(VICTIM)
            assert c.procs[VICTIM].wait(timeout=60) == EXIT_DISK_FULL, c.log_tail(VICTIM)
            tail = log_file.read_text(errors="replace").splitlines()[-3:]
            assert any("refusing to start: disk full: cannot write " + str(data) in line for line in tail), tail
            assert "Traceback" not in log_out.read_text(errors="replace")

            # space returns: a plain restart recovers and catches up under load
            filler.free()
            filler = None
            c.start(VICTIM)
            _wait(lambda: c.height(VICTIM) >= c.height(0) > h_stop + 5, 40, f"node {VICTIM} to catch up")
            _wait(lambda: load.count() >= acked_before + 20, 20, "more acknowledgements")
        # quiet: every node at the same height
        top = max(c.current_height(i) for i in range(4))
        c.wait_height(top, timeout=20)
        hashes = [_block_hashes(c, i, top) for i in range(4)]
        assert len(hashes[0]) == top and all(h == hashes[0] for h in hashes), "the chains differ"
        app_hashes = {c.get(i, f"/block_results?height={top}")["app_hash"] for i in range(4)}
        assert len(app_hashes) == 1, app_hashes
        # every acknowledged transaction is in every chain, at the height it was acknowledged at
        assert load.count() >= 40
        for h, height in list(load.acked.items()):
            for i in (0, VICTIM):
                assert c.get(i, f"/tx?hash={h.hex()}")["height"] == height
        # no node saw node 3 (or anyone) sign two votes
        assert all(c.get(i, "/status")["consensus"]["evidence"] == 0 for i in range(4))
        assert "Traceback" not in log_out.read_text(errors="replace")
    finally:
        c.stop_all()
        if filler is not None:
            with contextlib.suppress(OSError):
                filler.free()
        umount(data)
