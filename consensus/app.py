"""What consensus needs from the application, as a Protocol.

Both methods must be deterministic functions of their inputs and of committed state:
``validate_block`` decides this node's prevote, so two honest nodes must give the same
answer for the same block, and neither may do I/O that can fail differently per node, nor
read what only some nodes hold (a block store lacks the blocks before a node's snapshot).
"""

from __future__ import annotations

from typing import Protocol

from consensus.block import Block


class App(Protocol):
    def propose_txs(self, height: int) -> list[bytes]:
        """Transactions for this node's proposal at ``height`` (the mempool's reap)."""
        ...

    def validate_block(self, block: Block) -> bool:
        """The application's check of a proposed block of the core's current height, against
        the committed state of the height before it (tx sizes; no evidence repeating an
        offence that state records as committed)."""
        ...


class EmptyApp:
    """An application that proposes empty blocks and accepts any block (tests, followers)."""

    def propose_txs(self, height: int) -> list[bytes]:
        return []

    def validate_block(self, block: Block) -> bool:
        return True
