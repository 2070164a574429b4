"""Encodings of blocks, proposals, votes, certificates and wire frames: round trips,
strict rejection of malformed input, and fuzzing (nothing but MalformedMessage escapes)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consensus import (
    Block,
    BlockHeader,
    CommitCertificate,
    Proposal,
    Vote,
    decode_message,
    encode_message,
)
from consensus.errors import MalformedMessage
from consensus.fields import MAX_VOTE_BYTES
from consensus.messages import NIL, VoteType
from consensus.wal import decode_record_body
from state.codec import encode
from state.errors import Code

from .helpers import CHAIN, KEYS, PRECOMMIT, PREVOTE, block_for, proposal_for, vote

BLOCK = block_for(height=3, round_=1, txs=[b"tx-%d" % i for i in range(5)])
PROPOSAL = proposal_for(block_for(txs=[b"a", b"b"]))
VOTE = vote(1, PREVOTE, 2, BLOCK.hash, height=3)
CERT = CommitCertificate.from_votes([vote(i, PRECOMMIT, 0, BLOCK.hash, height=3) for i in range(3)])

DECODERS: dict[str, Callable[[bytes], object]] = {
    "header": BlockHeader.decode,
    "block": Block.decode,
    "proposal": Proposal.decode,
    "vote": Vote.decode,
    "certificate": CommitCertificate.decode,
    "message": decode_message,
    "wal body": decode_record_body,
}


def rejects(decoder: Callable[[bytes], object], data: bytes) -> Code:
    """The decoder refuses ``data`` with a consensus error (the codec's code is MALFORMED)."""
    with pytest.raises(MalformedMessage) as info:
        decoder(data)
    return info.value.code


# ----------------------------------------------------------------------------- round trips
def test_round_trips() -> None:
    assert BlockHeader.decode(BLOCK.header.encode()) == BLOCK.header
    assert Block.decode(BLOCK.encode()) == BLOCK
    assert Proposal.decode(PROPOSAL.encode()) == PROPOSAL
    assert Vote.decode(VOTE.encode()) == VOTE
    assert CommitCertificate.decode(CERT.encode()) == CERT
    assert decode_message(encode_message(PROPOSAL)) == PROPOSAL
    assert decode_message(encode_message(VOTE)) == VOTE


def test_block_hash_is_sha256_of_the_canonical_header() -> None:
    assert BLOCK.hash == hashlib.sha256(BLOCK.header.encode()).digest()
    changed = block_for(height=3, round_=1, txs=[b"tx-other"])
    assert changed.hash != BLOCK.hash


def test_vote_sign_bytes_exclude_the_signature_and_bind_the_chain() -> None:
    other_sig = Vote(VOTE.type, VOTE.height, VOTE.round, VOTE.block_hash, VOTE.validator, bytes(64))
    assert other_sig.sign_bytes(CHAIN) == VOTE.sign_bytes(CHAIN)
    assert VOTE.verify(CHAIN) and not other_sig.verify(CHAIN)
    assert not VOTE.verify("another-chain")
    precommit = Vote.create(KEYS[1], CHAIN, PRECOMMIT, 3, 2, BLOCK.hash)
    assert precommit.sign_bytes(CHAIN) != VOTE.sign_bytes(CHAIN)  # the type is signed


def test_votes_are_small() -> None:
    assert len(VOTE.encode()) < 200 < MAX_VOTE_BYTES


def test_proposal_of_ten_thousand_txs_fits() -> None:
    txs = [hashlib.sha256(b"%d" % i).digest() * 5 for i in range(10_000)]  # 160 bytes each
    big = proposal_for(block_for(txs=txs))
    data = big.encode()
    assert len(data) < 4 * 1024 * 1024
    assert Proposal.decode(data) == big


# ----------------------------------------------------------------------------- rejections
def test_wrong_arity_and_types_are_malformed() -> None:
    vote_list = VOTE.to_list()
    bad_votes: list[Any] = [
        vote_list[:-1],
        [*vote_list, 0],
        [3, *vote_list[1:]],  # unknown vote type
        [vote_list[0], 0, *vote_list[2:]],  # height 0
        [vote_list[0], -1, *vote_list[2:]],
        [vote_list[0], "3", *vote_list[2:]],
        [*vote_list[:3], b"\x00" * 31, *vote_list[4:]],  # short hash
        [*vote_list[:4], b"\x00" * 31, vote_list[5]],  # short pubkey
        [*vote_list[:5], b"\x00" * 63],  # short signature
        [*vote_list[:3], True, *vote_list[4:]],
    ]
    for item in bad_votes:
        assert rejects(Vote.decode, encode(item)) == Code.MALFORMED, item


def test_proposal_structure_is_checked() -> None:
    items = PROPOSAL.to_list()
    assert (
        rejects(Proposal.decode, encode([items[0], 0, 0, *items[3:]])) == Code.MALFORMED
    )  # pol >= round
    assert rejects(Proposal.decode, encode([items[0], 1, -2, *items[3:]])) == Code.MALFORMED
    assert rejects(Proposal.decode, encode([2, *items[1:]])) == Code.MALFORMED  # height != block's


def test_header_prev_hash_must_be_empty_exactly_at_height_one() -> None:
    header = BLOCK.header.to_list()
    assert rejects(BlockHeader.decode, encode([header[0], 1, *header[2:]])) == Code.MALFORMED
    genesis_child = block_for().header.to_list()
    assert (
        rejects(BlockHeader.decode, encode([genesis_child[0], 2, *genesis_child[2:]]))
        == Code.MALFORMED
    )


def test_non_canonical_encoding_is_rejected() -> None:
    items = VOTE.to_list()
    # height 3 as a uint16 instead of a positive fixint
    body = bytearray(msgpack.packb(items, use_bin_type=True))
    non_canonical = bytes(body[:2]) + b"\xcd\x00\x03" + bytes(body[3:])
    assert msgpack.unpackb(non_canonical) == items
    assert rejects(Vote.decode, non_canonical) == Code.MALFORMED


def test_oversize_input_is_rejected() -> None:
    assert rejects(Vote.decode, b"\x00" * (MAX_VOTE_BYTES + 1)) == Code.OVERSIZE


def test_maps_are_rejected() -> None:
    assert rejects(Vote.decode, msgpack.packb({"type": 1})) == Code.MALFORMED


def test_certificate_entries_are_checked() -> None:
    items = CERT.to_list()
    assert (
        rejects(CommitCertificate.decode, encode([*items[:3], [[b"\x00" * 32]]])) == Code.MALFORMED
    )
    assert rejects(CommitCertificate.decode, encode([*items[:2], NIL, items[3]])) == Code.MALFORMED


# ----------------------------------------------------------------------------- fuzzing
def only_malformed(data: bytes) -> None:
    for name, decoder in DECODERS.items():
        try:
            decoder(data)
        except MalformedMessage:
            pass
        except Exception as exc:  # pragma: no cover - the failure being tested for
            raise AssertionError(f"{name} raised {type(exc).__name__}: {exc}") from exc


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_fuzz_random_bytes(data: bytes) -> None:
    only_malformed(data)


msgpack_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(1 << 64), max_value=(1 << 64) - 1)
    | st.binary(max_size=70)
    | st.text(max_size=10),
    lambda children: st.lists(children, max_size=9),
    max_leaves=40,
)


@settings(max_examples=400, deadline=None)
@given(msgpack_values)
def test_fuzz_structured_values(value: Any) -> None:
    try:
        data = msgpack.packb(value, use_bin_type=True)
    except (OverflowError, ValueError):
        return
    only_malformed(data)


SAMPLES = [
    BLOCK.header.encode(),
    BLOCK.encode(),
    PROPOSAL.encode(),
    VOTE.encode(),
    CERT.encode(),
    encode_message(VOTE),
]


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(SAMPLES), st.data())
def test_fuzz_mutated_valid_encodings(sample: bytes, data: st.DataObject) -> None:
    mutated = bytearray(sample)
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(mutated) - 1))
        mutated[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(mutated)))
    only_malformed(bytes(mutated))
    only_malformed(bytes(mutated[:cut]))


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from([VoteType.PREVOTE, VoteType.PRECOMMIT]),
    st.integers(1, (1 << 63) - 1),
    st.integers(0, (1 << 31) - 1),
    st.sampled_from([NIL, BLOCK.hash]),
    st.integers(0, 3),
)
def test_vote_round_trip_property(
    vote_type: VoteType, height: int, round_: int, block_hash: bytes, signer: int
) -> None:
    original = Vote.create(KEYS[signer], CHAIN, vote_type, height, round_, block_hash)
    again = Vote.decode(original.encode())
    assert again == original and again.verify(CHAIN)
