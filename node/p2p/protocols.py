"""Protocol ids the node speaks and their frame size limits.

The limits bound what a peer can make us buffer for one frame: consensus proposals
carry a block (8 MB), a tx frame carries a batch of transactions (4 MB), and a sync
response carries a range of blocks with their commit certificates (32 MB).
"""

from __future__ import annotations

from typing import Final

CONSENSUS: Final = "/bookchain/consensus/1"
TX: Final = "/bookchain/tx/1"
SYNC: Final = "/bookchain/sync/1"
# Keepalive (keepalive.py): the dialer writes 8-byte pings, the listener echoes them.
PING: Final = "/bookchain/ping/1"
EVIDENCE: Final = "/bookchain/evidence/1"  # one encoded DuplicateVote per frame (consensus/evidence.py)

MiB: Final = 1024 * 1024

DEFAULT_MAX_FRAME_BYTES: Final[dict[str, int]] = {
    CONSENSUS: 8 * MiB,
    TX: 4 * MiB,
    SYNC: 32 * MiB,
    EVIDENCE: 4096,
}

# For protocols not listed above (tests, future protocols).
FALLBACK_MAX_FRAME_BYTES: Final = 4 * MiB

# The wire length prefix is a 4-byte unsigned big-endian integer.
ABSOLUTE_MAX_FRAME_BYTES: Final = (1 << 32) - 1

# The largest message on the pipe between a node and its p2p worker (node/pipe.py): the
# largest frame any protocol takes (a synced batch of blocks, 32 MiB) plus its envelope.
PIPE_MESSAGE_BYTES: Final = max(*DEFAULT_MAX_FRAME_BYTES.values(), FALLBACK_MAX_FRAME_BYTES) + 64 * 1024
