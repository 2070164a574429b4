"""After a real network cut heals, the chain moves again within seconds (issue 25 item 3).

Each validator runs in its own network namespace (devnet/netcut.py); a cut drops packets
silently, so TCP connections stay open but dead, the case the keepalive exists for. The
same measurement, with more cut lengths and against other code, is ``python -m
bench.partition``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.partition import run
from devnet.netcut import available

pytestmark = pytest.mark.e2e

_WHY = available()


@pytest.mark.skipif(bool(_WHY), reason=f"real network cuts unavailable: {_WHY}")
@pytest.mark.timeout(150)
def test_the_chain_resumes_within_3_s_of_the_heal(tmp_path: Path) -> None:
    # 15 s is past the point where TCP alone would wait ~10 s more for its next
    # retransmission (back-off 0.2 s doubling: 12.6 s, then 25.4 s), so a heal within 3 s
    # is the keepalive's doing.
    split5, split15, isolate15 = run(tmp_path, [("split", 5), ("split", 15), ("isolate", 15)])
    for cut in (split5, split15):
        # A 2-2 split commits nothing; the first block after the heal is the stall.
        assert 0 <= cut.heal_to_block_s < 3, cut
        # The dead connections were found by the keepalive, not by TCP, and redialed.
        assert cut.peer_timeouts >= 4 and cut.reconnects >= 4, cut
    # The isolated validator missed ~15 s of blocks; fetching them is part of its time.
    assert 0 <= isolate15.catch_up_s < 5, isolate15
    assert isolate15.peer_timeouts >= 1 and isolate15.reconnects >= 1, isolate15
