"""A consensus block as the state machine executes it (``ExecBlock``): its height, time,
transactions, and the offences (height, validator) of its equivocation evidence, which the
state records (state/offences.py). Every path that executes a committed block (the node's
execution, its handshake, a replay) builds it here, so none of them leaves the offences
out and computes another app hash."""

from __future__ import annotations

from consensus.block import Block
from node import evidence_index
from state.machine import ExecBlock


def exec_block(block: Block) -> ExecBlock:
    """``block`` for ``StateMachine.apply_block`` (its evidence was checked by consensus, or
    by the replay, before the block was committed or applied)."""
    offences = tuple(ev.offence for ev in evidence_index.decoded(block))
    return ExecBlock(block.height, block.header.time_ms, block.txs, offences)
