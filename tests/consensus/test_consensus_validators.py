"""Validator set thresholds, weighted proposer rotation, Merkle roots and commit certificates."""

from __future__ import annotations

import hashlib
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consensus import CommitCertificate, ValidatorSet, Vote
from consensus.merkle import EMPTY_ROOT, inclusion_proof, txs_root, verify_inclusion
from state.keys import PrivateKey

from .helpers import CHAIN, KEYS, PRECOMMIT, PREVOTE, VALSET, block_for, vote

PUBKEYS = [bytes([i]) * 32 for i in range(1, 11)]


# ----------------------------------------------------------------------------- thresholds
def test_quorum_is_strictly_more_than_two_thirds() -> None:
    four = ValidatorSet([(k, 1) for k in PUBKEYS[:4]])
    assert not four.is_quorum(2) and four.is_quorum(3)
    assert not four.is_one_third(1) and four.is_one_third(2)
    three = ValidatorSet([(k, 1) for k in PUBKEYS[:3]])
    assert not three.is_quorum(2) and three.is_quorum(3)  # 2/3 exactly is not enough
    weighted = ValidatorSet([(PUBKEYS[0], 3), (PUBKEYS[1], 1), (PUBKEYS[2], 2)])  # total 6
    assert not weighted.is_quorum(4) and weighted.is_quorum(5)
    assert not weighted.is_one_third(2) and weighted.is_one_third(3)


def test_invalid_sets_are_refused() -> None:
    with pytest.raises(ValueError):
        ValidatorSet([])
    with pytest.raises(ValueError):
        ValidatorSet([(PUBKEYS[0], 1), (PUBKEYS[0], 2)])
    with pytest.raises(ValueError):
        ValidatorSet([(PUBKEYS[0], 0)])
    with pytest.raises(ValueError):
        ValidatorSet([(b"short", 1)])


def test_membership_and_order_do_not_depend_on_genesis_order() -> None:
    a = ValidatorSet([(k, i + 1) for i, k in enumerate(PUBKEYS[:5])])
    b = ValidatorSet(reversed([(k, i + 1) for i, k in enumerate(PUBKEYS[:5])]))
    assert a.validators == b.validators
    assert [a.proposer(h, r) for h in range(1, 30) for r in range(3)] == [
        b.proposer(h, r) for h in range(1, 30) for r in range(3)
    ]
    assert a.power_of(PUBKEYS[9]) == 0 and PUBKEYS[9] not in a


# ----------------------------------------------------------------------------- proposer
def test_proposer_rotation_is_weighted_by_power() -> None:
    powers = [1, 2, 3, 4]
    vs = ValidatorSet(list(zip(PUBKEYS, powers, strict=False)))
    schedule = [vs.proposer(h, 0) for h in range(1, 1 + 10 * 7)]
    counts = Counter(schedule)
    assert [counts[k] for k in PUBKEYS[:4]] == [7 * p for p in powers]
    # Smooth, not in runs: the heaviest validator never proposes more than twice in a row.
    longest = max(len(run) for run in _runs(schedule))
    assert longest <= 2


def _runs(seq: list[bytes]) -> list[list[bytes]]:
    runs: list[list[bytes]] = [[seq[0]]]
    for item in seq[1:]:
        if item == runs[-1][-1]:
            runs[-1].append(item)
        else:
            runs.append([item])
    return runs


def test_equal_power_is_round_robin_in_key_order() -> None:
    vs = ValidatorSet([(k, 5) for k in PUBKEYS[:4]])
    assert [vs.proposer(h, 0) for h in range(1, 9)] == PUBKEYS[:4] * 2


def test_round_advances_the_schedule_like_cometbft() -> None:
    vs = ValidatorSet([(k, p) for k, p in zip(PUBKEYS, [1, 2, 3], strict=False)])
    for h in range(1, 20):
        for r in range(5):
            assert vs.proposer(h, r) == vs.proposer(h + r, 0)


def test_schedule_matches_reference_priority_algorithm() -> None:
    """CometBFT's IncrementProposerPriority without rescaling (a fixed set never needs it)."""
    powers = [7, 1, 3, 10, 2]
    vs = ValidatorSet(list(zip(PUBKEYS, powers, strict=False)))
    total = sum(powers)
    priorities = [0] * len(powers)
    for step in range(3000):
        for i, p in enumerate(powers):
            priorities[i] += p
        best = max(range(len(powers)), key=lambda i: (priorities[i], -i))
        priorities[best] -= total
        assert vs.proposer(1 + step, 0) == PUBKEYS[best], step


def test_far_heights_are_cheap_and_identical_on_fresh_instances() -> None:
    powers = [1_000_003, 999_983, 7]
    first = ValidatorSet(list(zip(PUBKEYS, powers, strict=False)))
    second = ValidatorSet(list(zip(PUBKEYS, powers, strict=False)))
    for h in (5_000_000, 123_456, 10, 5_000_001):
        assert first.proposer(h, 2) == second.proposer(h, 2)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 12), min_size=1, max_size=7))
def test_each_validator_proposes_its_power_per_period(powers: list[int]) -> None:
    vs = ValidatorSet(list(zip(PUBKEYS, powers, strict=False)))
    total = sum(powers)
    counts = Counter(vs.proposer(h, 0) for h in range(1, total + 1))
    assert [counts[k] for k in PUBKEYS[: len(powers)]] == powers
    assert [vs.proposer(h, 0) for h in range(1, total + 1)] == [
        vs.proposer(h, 0) for h in range(total + 1, 2 * total + 1)
    ]


# ----------------------------------------------------------------------------- merkle
def reference_root(leaves: list[bytes]) -> bytes:
    """RFC 6962 MTH, recursively."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(
        b"\x01" + reference_root(leaves[:k]) + reference_root(leaves[k:])
    ).digest()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=20), max_size=40))
def test_txs_root_is_rfc6962(txs: list[bytes]) -> None:
    root = txs_root(txs)
    assert root == reference_root(txs)
    for i, tx in enumerate(txs):
        assert verify_inclusion(root, tx, inclusion_proof(txs, i))
    if txs:
        assert not verify_inclusion(root, txs[0] + b"!", inclusion_proof(txs, 0))
    else:
        assert root == EMPTY_ROOT


# ----------------------------------------------------------------------------- certificates
BLOCK = block_for()


def certificate(indices: list[int], round_: int = 0) -> CommitCertificate:
    return CommitCertificate.from_votes([vote(i, PRECOMMIT, round_, BLOCK.hash) for i in indices])


def test_certificate_with_quorum_verifies() -> None:
    cert = certificate([0, 1, 2])
    assert cert.verify(VALSET, CHAIN)
    assert [pk for pk, _ in cert.precommits] == sorted(pk for pk, _ in cert.precommits)
    assert cert.verify(VALSET, CHAIN) == CommitCertificate.decode(cert.encode()).verify(
        VALSET, CHAIN
    )


def test_certificate_with_insufficient_power_fails() -> None:
    assert not certificate([0, 1]).verify(VALSET, CHAIN)


def test_certificate_power_is_weighted() -> None:
    weighted = ValidatorSet([(KEYS[0].pubkey, 3), (KEYS[1].pubkey, 1), (KEYS[2].pubkey, 1)])
    assert not certificate([0]).verify(weighted, CHAIN)  # 3 of 5
    assert certificate([0, 1]).verify(weighted, CHAIN)  # 4 of 5
    assert not certificate([1, 2]).verify(weighted, CHAIN)


def test_forged_certificates_fail() -> None:
    good = certificate([0, 1, 2])
    (pk0, sig0), rest = good.precommits[0], good.precommits[1:]
    outsider = PrivateKey(hashlib.sha256(b"outsider").digest())
    outsider_vote = Vote.create(outsider, CHAIN, PRECOMMIT, 1, 0, BLOCK.hash)
    prevote_sig = vote(3, PREVOTE, 0, BLOCK.hash).signature
    forged = [
        CommitCertificate(1, 0, BLOCK.hash, ((pk0, bytes(64)), *rest)),  # bad signature
        CommitCertificate(1, 1, BLOCK.hash, good.precommits),  # signatures for another round
        CommitCertificate(2, 0, BLOCK.hash, good.precommits),  # another height
        CommitCertificate(1, 0, hashlib.sha256(b"x").digest(), good.precommits),  # another block
        CommitCertificate(
            1, 0, BLOCK.hash, ((pk0, sig0), (pk0, sig0), *rest[:1])
        ),  # repeated signer
        CommitCertificate(1, 0, BLOCK.hash, tuple(reversed(good.precommits))),  # unsorted
        CommitCertificate(
            1,
            0,
            BLOCK.hash,
            tuple(sorted([*good.precommits[:2], (outsider.pubkey, outsider_vote.signature)])),
        ),  # a non-validator's signature
        CommitCertificate(
            1, 0, BLOCK.hash, tuple(sorted([*good.precommits[:2], (KEYS[3].pubkey, prevote_sig)]))
        ),
        CommitCertificate(1, 0, b"", good.precommits),  # nil
    ]
    for cert in forged:
        assert not cert.verify(VALSET, CHAIN), cert
    assert not good.verify(VALSET, "other-chain")
