"""What consensus needs from the application, as a Protocol.

Both methods must be deterministic functions of their inputs and of committed state:
``validate_block`` decides this node's prevote, so two honest nodes must give the same
answer for the same block, and neither may do I/O that can fail differently per node.
"""

from __future__ import annotations

from typing import Protocol

from consensus.block import Block


class App(Protocol):
    def propose_txs(self, height: int) -> list[bytes]:
        """Transactions for this node's proposal at ``height`` (the mempool's reap)."""
        ...

    def validate_block(self, block: Block) -> bool:
        """The state machine's stateless check of a proposed block (tx decoding, sizes)."""
        ...


class EmptyApp:
    """An application that proposes empty blocks and accepts any block (tests, followers)."""

    def propose_txs(self, height: int) -> list[bytes]:
        return []

    def validate_block(self, block: Block) -> bool:
        return True
