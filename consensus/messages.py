"""Signed consensus messages: votes (prevote, precommit) and proposals.

Why the signed payload is a small array and not the message encoding: a vote's sign
bytes must not include its signature, and a proposal signs the block *hash* (the header
commits to the transactions) so signing and verifying cost the same for an empty block and
a 4 MB one. Every signature is domain separated (``DOMAIN_VOTE`` / ``DOMAIN_PROPOSAL``) and
bound to the chain id, so a vote is never a valid transaction or a vote on another chain.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from consensus.block import Block
from consensus.errors import decoder
from consensus.fields import (
    MAX_PROPOSAL_BYTES,
    MAX_VOTE_BYTES,
    must_hash_or_empty,
    must_height,
    must_pol_round,
    must_pubkey,
    must_round,
    must_signature,
)
from state.codec import decode, encode, must_list, must_uint
from state.errors import Code, TxError
from state.keys import DOMAIN_PROPOSAL, DOMAIN_VOTE, PrivateKey, signing_message, verify

NIL = b""


class VoteType(IntEnum):
    PREVOTE = 1
    PRECOMMIT = 2


def vote_sign_bytes(
    chain_id: str, vote_type: VoteType, height: int, round: int, block_hash: bytes
) -> bytes:
    """What a validator signs for a vote; shared with commit certificate verification."""
    payload = encode([int(vote_type), height, round, block_hash])
    return signing_message(DOMAIN_VOTE, chain_id, payload)


def proposal_sign_bytes(
    chain_id: str, height: int, round: int, pol_round: int, block_hash: bytes
) -> bytes:
    payload = encode([height, round, pol_round, block_hash])
    return signing_message(DOMAIN_PROPOSAL, chain_id, payload)


@dataclass(frozen=True, slots=True)
class Vote:
    """A prevote or precommit for ``block_hash`` (``b""`` = nil) at (height, round)."""

    type: VoteType
    height: int
    round: int
    block_hash: bytes
    validator: bytes
    signature: bytes

    @property
    def is_nil(self) -> bool:
        return not self.block_hash

    @classmethod
    def create(
        cls,
        key: PrivateKey,
        chain_id: str,
        vote_type: VoteType,
        height: int,
        round: int,
        block_hash: bytes,
    ) -> Vote:
        message = vote_sign_bytes(chain_id, vote_type, height, round, block_hash)
        return cls(vote_type, height, round, block_hash, key.pubkey, key.sign(message))

    def sign_bytes(self, chain_id: str) -> bytes:
        return vote_sign_bytes(chain_id, self.type, self.height, self.round, self.block_hash)

    def verify(self, chain_id: str) -> bool:
        """Signature check only; membership in the validator set is the caller's job."""
        return verify(self.validator, self.sign_bytes(chain_id), self.signature)

    def to_list(self) -> list[Any]:
        return [
            int(self.type),
            self.height,
            self.round,
            self.block_hash,
            self.validator,
            self.signature,
        ]

    @classmethod
    def from_list(cls, obj: Any) -> Vote:
        items = must_list(obj, "vote", length=6)
        raw_type = must_uint(items[0], "vote.type")
        if raw_type not in (VoteType.PREVOTE, VoteType.PRECOMMIT):
            raise TxError(Code.MALFORMED, "vote.type must be 1 (prevote) or 2 (precommit)")
        return cls(
            type=VoteType(raw_type),
            height=must_height(items[1], "vote.height"),
            round=must_round(items[2], "vote.round"),
            block_hash=must_hash_or_empty(items[3], "vote.block_hash"),
            validator=must_pubkey(items[4], "vote.validator"),
            signature=must_signature(items[5], "vote.signature"),
        )

    def encode(self) -> bytes:
        return encode(self.to_list())

    @classmethod
    @decoder
    def decode(cls, data: bytes) -> Vote:
        return cls.from_list(decode(data, max_bytes=MAX_VOTE_BYTES))


@dataclass(frozen=True, slots=True)
class Proposal:
    """A proposer's block for (height, round); ``pol_round`` >= 0 re-proposes a block that
    had a proof of lock (>2/3 prevotes) in that earlier round, -1 means a fresh proposal."""

    height: int
    round: int
    pol_round: int
    block: Block
    proposer: bytes
    signature: bytes

    @property
    def block_hash(self) -> bytes:
        return self.block.hash

    @classmethod
    def create(
        cls, key: PrivateKey, chain_id: str, height: int, round: int, pol_round: int, block: Block
    ) -> Proposal:
        message = proposal_sign_bytes(chain_id, height, round, pol_round, block.hash)
        return cls(height, round, pol_round, block, key.pubkey, key.sign(message))

    def sign_bytes(self, chain_id: str) -> bytes:
        return proposal_sign_bytes(
            chain_id, self.height, self.round, self.pol_round, self.block.hash
        )

    def verify(self, chain_id: str) -> bool:
        return verify(self.proposer, self.sign_bytes(chain_id), self.signature)

    def to_list(self) -> list[Any]:
        return [
            self.height,
            self.round,
            self.pol_round,
            self.block.to_list(),
            self.proposer,
            self.signature,
        ]

    @classmethod
    def from_list(cls, obj: Any) -> Proposal:
        items = must_list(obj, "proposal", length=6)
        height = must_height(items[0], "proposal.height")
        round_ = must_round(items[1], "proposal.round")
        pol_round = must_pol_round(items[2], "proposal.pol_round")
        if pol_round >= round_:
            raise TxError(Code.MALFORMED, "proposal.pol_round must be below the round")
        block = Block.from_list(items[3])
        if block.header.height != height:
            raise TxError(Code.MALFORMED, "proposal height differs from its block's height")
        if block.header.round > round_:
            raise TxError(Code.MALFORMED, "block round is after the proposal round")
        return cls(
            height=height,
            round=round_,
            pol_round=pol_round,
            block=block,
            proposer=must_pubkey(items[4], "proposal.proposer"),
            signature=must_signature(items[5], "proposal.signature"),
        )

    def encode(self) -> bytes:
        return encode(self.to_list())

    @classmethod
    @decoder
    def decode(cls, data: bytes, *, max_bytes: int = MAX_PROPOSAL_BYTES) -> Proposal:
        return cls.from_list(decode(data, max_bytes=max_bytes))
