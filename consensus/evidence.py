"""Equivocation evidence: two conflicting signed votes by one validator, and its check.

Why a record of its own (CometBFT's ``DuplicateVoteEvidence``): a validator that signs two
different votes for one (height, round, type) breaks the assumption safety rests on. The
two votes are a proof anyone holding the validator set can check without trusting the
node that found them, so nodes gossip them, a proposer puts them into a block, and every
node (and every replay) re-checks each one; once committed, the double-signing is part of
the chain. There is nothing to slash (validators hold no stake): evidence is recorded,
that is all.

The check is stateless: both signatures valid over this chain id, one validator of the
set, the same height, round and type, different block ids (nil counts as a block id).

One offence per (validator, height): a validator that equivocates in several rounds or steps
of a height is recorded once (``DuplicateVote.offence``). A block holds at most one piece per
offence, a piece whose offence an earlier block committed is refused (the state records
committed offences: state/offences.py, read by ``NodeApp.validate_block`` in node/runtime.py),
and pools and the core keep one, so the record counts double-signing heights, not pairs of
votes an equivocator can multiply at will.

A maximum age (the genesis ``evidence.max_age_blocks``, CometBFT's ``max_age_num_blocks``):
evidence of an offence at height h is valid only in blocks at heights <= h + max_age
(``EVIDENCE_EXPIRED`` after), so the state need keep committed offences only that long.
``DuplicateVote.make`` orders the two votes by block id, so one equivocation has one
encoding and one hash whichever vote a node saw first. Results are values (``Code``), not
exceptions: a block with bad evidence is invalid, and the code says why.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from consensus.block import MAX_BLOCK_EVIDENCE, MAX_EVIDENCE_ITEM_BYTES
from consensus.errors import decoder
from consensus.fields import MAX_VOTE_BYTES
from consensus.messages import Vote, VoteType
from consensus.validators import ValidatorSet
from state.codec import decode, encode, must_list
from state.errors import Code, TxError
from state.genesis import DEFAULT_EVIDENCE_MAX_AGE
from state.keys import PrefixVerifier, SigItem, valid_prefix
from state.offences import expired

#: At most this many pieces of evidence in one block (a proposer includes the oldest first).
MAX_EVIDENCE_PER_BLOCK = MAX_BLOCK_EVIDENCE
#: One encoded piece of evidence: two votes and the list framing.
MAX_EVIDENCE_BYTES = MAX_EVIDENCE_ITEM_BYTES
assert MAX_EVIDENCE_BYTES >= 2 * MAX_VOTE_BYTES + 16


@dataclass(frozen=True, slots=True)
class DuplicateVote:
    """Two votes by ``vote_a.validator`` for one (height, round, type), ``vote_a`` with the
    smaller block id. Build with ``make`` (any order) or ``decode``."""

    vote_a: Vote
    vote_b: Vote
    _encoded: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_encoded", encode(self.to_list()))

    @classmethod
    def make(cls, first: Vote, second: Vote) -> DuplicateVote:
        a, b = sorted((first, second), key=lambda v: v.block_hash)
        return cls(a, b)

    # ------------------------------------------------------------------ identity
    @property
    def validator(self) -> bytes:
        return self.vote_a.validator

    @property
    def height(self) -> int:
        return self.vote_a.height

    @property
    def round(self) -> int:
        return self.vote_a.round

    @property
    def type(self) -> VoteType:
        return self.vote_a.type

    @property
    def key(self) -> tuple[int, bytes, int, int]:
        """(height, validator, round, type): one equivocation, whichever pair of its votes
        proves it (a validator may sign more than two values; one proof is enough)."""
        return (self.height, self.validator, self.round, int(self.type))

    @property
    def offence(self) -> tuple[int, bytes]:
        """(height, validator): what is recorded once, whichever round or step proves it."""
        return (self.height, self.validator)

    @property
    def hash(self) -> bytes:
        return hashlib.sha256(self._encoded).digest()

    # ------------------------------------------------------------------ codec
    def to_list(self) -> list[Any]:
        return [self.vote_a.to_list(), self.vote_b.to_list()]

    @classmethod
    def from_list(cls, obj: Any) -> DuplicateVote:
        items = must_list(obj, "evidence", length=2)
        a, b = Vote.from_list(items[0]), Vote.from_list(items[1])
        if a.block_hash >= b.block_hash:
            raise TxError(Code.MALFORMED, "evidence votes must be ordered by block id and differ")
        return cls(a, b)

    def encode(self) -> bytes:
        return self._encoded

    @classmethod
    @decoder
    def decode(cls, data: bytes) -> DuplicateVote:
        return cls.from_list(decode(data, max_bytes=MAX_EVIDENCE_BYTES))

    # ------------------------------------------------------------------ check
    def check(self, validators: ValidatorSet, chain_id: str,
              verifier: PrefixVerifier = valid_prefix) -> Code:
        """``Code.OK`` when this proves that a validator of ``validators`` equivocated on
        ``chain_id``; otherwise the first reason it does not."""
        return check_pair(self.vote_a, self.vote_b, validators, chain_id, verifier)

    def signed_items(self, chain_id: str) -> list[SigItem]:
        """The two votes' (signature, message, public key), for a verifier."""
        return [(v.signature, v.sign_bytes(chain_id), v.validator) for v in (self.vote_a, self.vote_b)]


def check_pair(a: Vote, b: Vote, validators: ValidatorSet, chain_id: str,
               verifier: PrefixVerifier = valid_prefix) -> Code:
    """The stateless check of two votes as evidence (cheap checks before signatures, which
    ``verifier`` checks: ``state.keys.valid_prefix`` by default, a node's batch verifier in
    a node)."""
    code = _unsigned_code(a, b, validators)
    if code != Code.OK:
        return code
    items = [(v.signature, v.sign_bytes(chain_id), v.validator) for v in (a, b)]
    return Code.OK if verifier(items) == 2 else Code.BAD_SIGNATURE


def _unsigned_code(a: Vote, b: Vote, validators: ValidatorSet) -> Code:
    """Everything ``check_pair`` checks but the signatures: one validator of the set, one
    (height, round, type), two block ids."""
    if a.validator != b.validator:
        return Code.EVIDENCE_MISMATCH
    if (a.height, a.round, a.type) != (b.height, b.round, b.type):
        return Code.EVIDENCE_MISMATCH
    if a.block_hash == b.block_hash:
        return Code.EVIDENCE_NOT_CONFLICTING
    if a.validator not in validators:
        return Code.EVIDENCE_UNKNOWN_VALIDATOR
    return Code.OK


def check_block_evidence(raw: tuple[bytes, ...], height: int, validators: ValidatorSet,
                         chain_id: str, *, max_age: int = DEFAULT_EVIDENCE_MAX_AGE,
                         verifier: PrefixVerifier = valid_prefix,
                         ) -> tuple[Code, list[DuplicateVote]]:
    """A block's evidence list at ``height``: each item decodes and proves equivocation at
    an earlier height no more than ``max_age`` (the chain's ``Genesis.evidence_max_age``)
    below it, no offence (validator, height) twice, at most ``MAX_EVIDENCE_PER_BLOCK``.
    Returns (OK, the decoded evidence) or (the first failure's code, []). Whether an earlier
    block committed an offence is the state's to say (state/offences.py).

    The answer is that of checking each item in order, its signatures last; the signatures
    of the items before the first other failure are checked together, by ``verifier`` (a
    node's batch verifier, node/sigbatch.py: a proposer's block of 16 pieces carrying
    signatures libsodium rejects cost every node ~0.5 s of the plain-Python rule), which
    stops at the first bad one."""
    if len(raw) > MAX_EVIDENCE_PER_BLOCK:
        return Code.OVERSIZE, []
    out: list[DuplicateVote] = []
    keys: set[tuple[int, bytes]] = set()
    failure = Code.OK
    for item in raw:
        try:
            ev = DuplicateVote.decode(item)
        except ValueError:
            failure = Code.MALFORMED
            break
        if ev.height >= height:
            failure = Code.EVIDENCE_TOO_NEW
        elif expired(ev.height, height, max_age):
            failure = Code.EVIDENCE_EXPIRED
        elif ev.offence in keys:
            failure = Code.EVIDENCE_DUPLICATE
        else:
            failure = _unsigned_code(ev.vote_a, ev.vote_b, validators)
        if failure != Code.OK:
            break
        keys.add(ev.offence)
        out.append(ev)
    items = [signed for ev in out for signed in ev.signed_items(chain_id)]
    if verifier(items) < len(items):
        return Code.BAD_SIGNATURE, []
    if failure != Code.OK:
        return failure, []
    return Code.OK, out
