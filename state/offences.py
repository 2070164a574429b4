"""Committed equivocation offences, held in the state so a block's evidence is valid or
invalid alike on every node.

Why in the state: a block whose evidence repeats an offence (height, validator) an earlier
block committed is invalid (consensus/evidence.py: one offence is recorded once). Judged
from a node's own block store, that rule gave a node started from a snapshot (no blocks,
so no evidence, before it) a different answer than the others: block validity depending on
node-local data. Here the offences are state records, so the app hash covers them, a
snapshot carries them, and ``node/runtime.py`` ``NodeApp.validate_block`` and a replay
read them (CometBFT keeps committed evidence in its state the same way).

Why bounded: evidence of an offence at height h is valid only in blocks at heights
<= h + ``max_age`` (``Genesis.evidence_max_age``, the genesis section
``evidence.max_age_blocks``; CometBFT's ``max_age_num_blocks``; ``expired``). An offence
no later block may carry needs no record, so after block H the state holds only offences
at heights in (H - max_age, H): block H records its offences of those heights and removes
those of height H - max_age, which no block after H may repeat. Keyed (in memory and in
the store) by the offence's height first, the removal visits only that height's records:
at most one per validator, each recorded by one earlier block (a block records at most
``MAX_EVIDENCE_PER_BLOCK``), so a block's work here is bounded and the records held are at
most the validators times ``max_age``.

The state machine is given a block's offences by its caller (``ExecBlock.offences``), who
took them from evidence consensus checked; the state machine does not decode votes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:  # at run time this module imports nothing: consensus/evidence.py uses ``expired``
    from state.exchange import Exchange

VALIDATOR_LEN: Final = 32  # an ed25519 public key (state/keys.py PUBKEY_LEN)


def expired(offence_height: int, block_height: int, max_age: int) -> bool:
    """Whether evidence of an offence at ``offence_height`` is too old for a block at
    ``block_height``: valid only up to ``offence_height + max_age``."""
    return block_height > offence_height + max_age


def committed_at(ex: Exchange, offence: tuple[int, bytes]) -> int | None:
    """The height of the block that committed this (height, validator), if the state
    records it (only offences inside the max age are kept: older evidence is refused as
    expired instead). Two dict look-ups, each one atomic step under the GIL, so the node's
    event loop may ask while a block executes (a pool's filter, never the rule:
    node/driver.py)."""
    height, validator = offence
    at = ex.offences.get(height)
    return None if at is None else at.get(validator)


def record_block(ex: Exchange, height: int, offences: Iterable[tuple[int, bytes]]) -> None:
    """Block ``height``'s step 0: record its offences, then remove those that expire with it.

    Never raises. Consensus never passes a block that repeats a recorded offence, or one
    whose evidence is expired or not earlier than the block; given one anyway, the first
    record is kept and an offence no later block could carry (or malformed) is not recorded."""
    max_age = ex.genesis.evidence_max_age
    state = ex.offences
    for h, validator in offences:
        if not max(height - max_age, 0) < h < height or len(validator) != VALIDATOR_LEN:
            continue  # h == height - max_age: valid here, but no later block may repeat it; h < 1: no block
        at = state.get(h)
        if at is None:
            at = state[h] = {}
        if validator in at:
            continue  # keep the first record
        at[validator] = height
        ex.touch_offence(h, validator)
    gone = state.pop(height - max_age, None)
    if gone:
        for validator in sorted(gone):
            ex.touch_offence(height - max_age, validator)
