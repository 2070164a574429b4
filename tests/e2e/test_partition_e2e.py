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
    split5, split20, isolate20 = run(tmp_path, [("split", 5), ("split", 20), ("isolate", 20)])
    for cut in (split5, split20):
        # A 2-2 split commits nothing; the first block after the heal is the stall.
        assert 0 <= cut.heal_to_block_s < 3, cut
        # The dead connections were found by the keepalive, not by TCP, and redialed.
        assert cut.peer_timeouts >= 4 and cut.reconnects >= 4, cut
    # The isolated validator missed ~20 s of blocks; fetching them is part of its time.
    assert 0 <= isolate20.catch_up_s < 5, isolate20
    assert isolate20.peer_timeouts >= 1 and isolate20.reconnects >= 1, isolate20
