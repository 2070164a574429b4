"""Commit certificates: >2/3 of the voting power precommitted a block in one round.

Why it is stored with every block: a node that was offline (or a light client) checks
a fetched block with the validator set alone, without having seen the round, and the
certificate for block h is the proof that h is final. Precommits are sorted by public
key and unique, so one certificate has one encoding and a repeated signer cannot be
counted twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from consensus.errors import decoder
from consensus.fields import (
    MAX_CERTIFICATE_BYTES,
    MAX_VALIDATORS,
    must_hash,
    must_height,
    must_pubkey,
    must_round,
    must_signature,
)
from consensus.messages import Vote, VoteType, vote_sign_bytes
from consensus.validators import ValidatorSet
from state.codec import decode, encode, must_list
from state.keys import PrefixVerifier, valid_prefix


class CertificateError(ValueError):
    """A certificate that does not prove a commit (the message says which check failed)."""


@dataclass(frozen=True, slots=True)
class CommitCertificate:
    height: int
    round: int
    block_hash: bytes
    precommits: tuple[tuple[bytes, bytes], ...]  # (validator pubkey, signature), sorted by pubkey

    @classmethod
    def from_votes(cls, votes: list[Vote]) -> CommitCertificate:
        """Build from precommits for one block in one round (the caller checked the quorum)."""
        if not votes:
            raise ValueError("a certificate needs precommits")
        first = votes[0]
        for vote in votes:
            if (vote.type, vote.height, vote.round, vote.block_hash) != (
                VoteType.PRECOMMIT,
                first.height,
                first.round,
                first.block_hash,
            ):
                raise ValueError("certificate votes must be precommits for one block and round")
        pairs = sorted({v.validator: v.signature for v in votes}.items())
        return cls(first.height, first.round, first.block_hash, tuple(pairs))

    def must_verify(self, validators: ValidatorSet, chain_id: str,
                    verifier: PrefixVerifier = valid_prefix) -> None:
        """Raise ``CertificateError`` unless this proves a commit for ``validators``: the
        first precommit that fails says why (out of order, not a validator, or a bad
        signature), then the power.

        The signatures are checked after the cheap checks, all at once by ``verifier``
        (a node's batch verifier, node/sigbatch.py; ``state.keys.valid_prefix`` one at a
        time by default), which stops at the first bad one: a peer's forged certificate
        costs one failed check, not one per signature. The answer and the message are the
        ones a check of each precommit in order gives."""
        if not self.block_hash:
            raise CertificateError("a certificate cannot commit nil")
        message = vote_sign_bytes(
            chain_id, VoteType.PRECOMMIT, self.height, self.round, self.block_hash
        )
        power = 0
        previous = b""
        failure: CertificateError | None = None
        checked = 0  # precommits before the first cheap failure: their signatures decide first
        for pubkey, _signature in self.precommits:
            if pubkey <= previous:
                failure = CertificateError("precommits must be sorted by public key and unique")
                break
            previous = pubkey
            weight = validators.power_of(pubkey)
            if weight == 0:
                failure = CertificateError(f"signer {pubkey.hex()} is not a validator")
                break
            power += weight
            checked += 1
        signed = self.precommits[:checked]
        good = verifier([(signature, message, pubkey) for pubkey, signature in signed])
        if good < checked:
            raise CertificateError(f"bad signature from {signed[good][0].hex()}")
        if failure is not None:
            raise failure
        if not validators.is_quorum(power):
            raise CertificateError(
                f"precommit power {power} is not more than 2/3 of {validators.total_power}"
            )

    def verify(self, validators: ValidatorSet, chain_id: str,
               verifier: PrefixVerifier = valid_prefix) -> bool:
        """True when the certificate proves a commit; anyone can run it."""
        try:
            self.must_verify(validators, chain_id, verifier)
        except CertificateError:
            return False
        return True

    def votes(self) -> list[Vote]:
        """The precommits as votes (to re-gossip them or to store them as evidence)."""
        return [
            Vote(VoteType.PRECOMMIT, self.height, self.round, self.block_hash, pk, sig)
            for pk, sig in self.precommits
        ]

    def to_list(self) -> list[Any]:
        return [
            self.height,
            self.round,
            self.block_hash,
            [[pubkey, signature] for pubkey, signature in self.precommits],
        ]

    @classmethod
    def from_list(cls, obj: Any) -> CommitCertificate:
        items = must_list(obj, "certificate", length=4)
        raw = must_list(items[3], "certificate.precommits", max_len=MAX_VALIDATORS)
        precommits = []
        for entry in raw:
            pair = must_list(entry, "certificate.precommit", length=2)
            precommits.append(
                (
                    must_pubkey(pair[0], "certificate.validator"),
                    must_signature(pair[1], "certificate.signature"),
                )
            )
        return cls(
            height=must_height(items[0], "certificate.height"),
            round=must_round(items[1], "certificate.round"),
            block_hash=must_hash(items[2], "certificate.block_hash"),
            precommits=tuple(precommits),
        )

    def encode(self) -> bytes:
        return encode(self.to_list())

    @classmethod
    @decoder
    def decode(cls, data: bytes) -> CommitCertificate:
        return cls.from_list(decode(data, max_bytes=MAX_CERTIFICATE_BYTES))
