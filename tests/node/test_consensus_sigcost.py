"""Consensus checks a peer's signatures with the verifier the node gives it
(``state.keys.PrefixVerifier``): a proposed block's evidence, certificates in block sync and
state-sync certification never run the chain rule in plain Python (state/sigrule.py, 6-17 ms
a signature) on the node's loop with the batch verifier built, run it once per signature
without it, and answer exactly what checking each signature with ``state.keys.verify`` in
order answers. Costs are counted (calls of the plain-Python rule, signatures handed to the
compiled verifier), never timed."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterator, Sequence
from functools import cache
from types import SimpleNamespace
from typing import cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consensus import SyncedBlock, ValidatorSet
from consensus.block import Block, make_block
from consensus.certificate import CertificateError, CommitCertificate
from consensus.evidence import MAX_EVIDENCE_PER_BLOCK, DuplicateVote, check_block_evidence
from consensus.messages import Vote, VoteType, vote_sign_bytes
from node import sigbatch, syncverify
from state import keys, sigrule
from state.errors import Code
from state.genesis import Genesis
from state.keys import PrefixVerifier, PrivateKey, SigItem
from state.offences import expired
from state.sigrule import BASE, L, Point, add, encode_point, multiply
from tests.consensus.helpers import (
    CHAIN,
    KEYS,
    VALSET,
    block_for,
    feed_proposal,
    make_core,
    proposal_for,
    sent_votes,
    start,
)
from tests.harness import Calls, count_calls
from tests.state.sigvectors import torsion_point_of_order_8

H1 = hashlib.sha256(b"one").digest()
H2 = hashlib.sha256(b"two").digest()
NATIVE = sigbatch.backend() == "batch"


# ------------------------------------------------------------------ instruments
@pytest.fixture
def slow_calls(monkeypatch: pytest.MonkeyPatch) -> Calls:
    """Counts runs of the plain-Python rule (``state.keys.verify`` and the node's per-call
    backend both reach it as ``sigrule.verify``); the per-call backend's cache starts empty."""
    calls = count_calls(monkeypatch, sigrule, "verify")
    monkeypatch.setattr(sigbatch, "_rule_answers", type(sigbatch._rule_answers)())
    return calls


@pytest.fixture
def per_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """The node's verifier without the compiled extension."""
    monkeypatch.setattr(sigbatch, "_NATIVE", None)


# ------------------------------------------------------------------ crafted signatures
@cache
def _secret_and_point(key: PrivateKey) -> tuple[int, Point]:
    h = bytearray(hashlib.sha512(key.seed).digest()[:32])
    h[0] &= 248
    h[31] &= 127
    h[31] |= 64
    secret = int.from_bytes(h, "little")
    assert BASE is not None
    point = multiply(secret, BASE)
    assert encode_point(point) == key.pubkey
    return secret, point


@cache
def crafted_sign(key: PrivateKey, message: bytes) -> bytes:
    """A signature valid under the chain's rule that libsodium rejects: R carries a torsion
    component (only the key's holder can make one; no honest signer does)."""
    secret, _ = _secret_and_point(key)
    nonce = int.from_bytes(hashlib.sha512(b"nonce" + key.seed + message).digest(), "little") % L
    assert BASE is not None
    r = encode_point(add(multiply(nonce, BASE), torsion_point_of_order_8()))
    k = int.from_bytes(hashlib.sha512(r + key.pubkey + message).digest(), "little") % L
    return r + ((nonce + k * secret) % L).to_bytes(32, "little")


def crafted_vote(key: PrivateKey, height: int, block_hash: bytes) -> Vote:
    sig = crafted_sign(key, vote_sign_bytes(CHAIN, VoteType.PREVOTE, height, 0, block_hash))
    return Vote(VoteType.PREVOTE, height, 0, block_hash, key.pubkey, sig)


@cache
def crafted_evidence(count: int = MAX_EVIDENCE_PER_BLOCK) -> tuple[bytes, ...]:
    """``count`` valid pieces (one offence each: heights 1..count), every signature crafted."""
    return tuple(
        DuplicateVote.make(crafted_vote(KEYS[h % 4], h, H1), crafted_vote(KEYS[h % 4], h, H2)).encode()
        for h in range(1, count + 1)
    )


def test_crafted_signatures_are_the_rule_s_and_not_libsodium_s() -> None:
    ev = DuplicateVote.decode(crafted_evidence()[0])
    for sig, msg, pk in ev.signed_items(CHAIN):
        assert not keys.sodium_accepts(pk, msg, sig)
        assert sigrule.verify(pk, msg, sig) and keys.verify(pk, msg, sig)


# ------------------------------------------------------------------ a proposed block's evidence
EV_HEIGHT = MAX_EVIDENCE_PER_BLOCK + 1


def test_a_block_of_crafted_evidence_costs_the_node_no_slow_rule(slow_calls: Calls) -> None:
    """16 pieces (32 signatures libsodium rejects): the default verifier runs the rule 32
    times (~0.5 s), the node's none (with the extension), same answer."""
    raw = crafted_evidence()
    code, out = check_block_evidence(raw, EV_HEIGHT, VALSET, CHAIN)
    assert code == Code.OK and len(out) == MAX_EVIDENCE_PER_BLOCK and slow_calls.n == 32
    slow_calls.n = 0
    assert check_block_evidence(raw, EV_HEIGHT, VALSET, CHAIN, verifier=sigbatch.valid_prefix) == (code, out)
    assert slow_calls.n == (0 if NATIVE else 32)


def test_without_the_extension_each_crafted_signature_costs_the_rule_once(slow_calls: Calls, per_call: None) -> None:
    raw = crafted_evidence()
    for _ in range(3):  # re-proposed, in another block, to another core
        code, out = check_block_evidence(raw, EV_HEIGHT, VALSET, CHAIN, verifier=sigbatch.valid_prefix)
        assert code == Code.OK and len(out) == MAX_EVIDENCE_PER_BLOCK
    assert slow_calls.n == 32


def _proposal_with(evidence: tuple[bytes, ...]):  # type: ignore[no-untyped-def]
    base = block_for(height=EV_HEIGHT)
    block = make_block(chain_id=CHAIN, height=EV_HEIGHT, round=0, time_ms=base.header.time_ms,
                       prev_block_hash=base.header.prev_block_hash, prev_app_hash=base.header.prev_app_hash,
                       proposer=base.header.proposer, txs=base.txs, evidence=evidence)
    return proposal_for(block)


def test_the_core_checks_a_proposed_block_s_evidence_with_its_verifier(slow_calls: Calls) -> None:
    """The node's core (given ``sigbatch.valid_prefix``) prevotes for a block of 16 crafted
    pieces without the plain-Python rule; its answer is the default core's."""
    me = next(i for i, k in enumerate(KEYS) if k.pubkey != VALSET.proposer(EV_HEIGHT, 0))
    prevotes = []
    for verifier in (keys.valid_prefix, sigbatch.valid_prefix):
        slow_calls.n = 0
        core = make_core(me, verifier=verifier)
        start(core, height=EV_HEIGHT)
        actions = feed_proposal(core, _proposal_with(crafted_evidence()))
        prevotes.append([v.block_hash for v in sent_votes(actions) if v.type == VoteType.PREVOTE])
    assert prevotes[0] == prevotes[1] and prevotes[0][0]  # both for the block
    if NATIVE:
        assert slow_calls.n == 0


# ------------------------------------------------------------------ certificates
BIG_KEYS = [PrivateKey(hashlib.sha256(b"big-%d" % i).digest()) for i in range(100)]
BIG_SET = ValidatorSet([(k.pubkey, 1) for k in BIG_KEYS])


def forged_certificate(height: int, block_hash: bytes) -> CommitCertificate:
    """Every one of 100 validators 'signs' with a well-formed signature of another message
    (libsodium rejects it, and so does the rule, after its full equation)."""
    pairs = sorted((k.pubkey, k.sign(b"something else")) for k in BIG_KEYS)
    return CommitCertificate(height, 0, block_hash, tuple(pairs))


def test_a_forged_certificate_of_100_signatures_costs_one_check(
        slow_calls: Calls, monkeypatch: pytest.MonkeyPatch) -> None:
    cert = forged_certificate(5, H1)
    with pytest.raises(CertificateError, match="bad signature") as default:
        cert.must_verify(BIG_SET, CHAIN)
    assert slow_calls.n == 1  # the default stops at the first bad signature
    slow_calls.n = 0
    handed: list[int] = []
    native = sigbatch._NATIVE
    if native is not None:
        def counting(items: Sequence[SigItem]) -> list[bool]:
            handed.append(len(items))
            return native(items)
        monkeypatch.setattr(sigbatch, "_NATIVE", counting)
    with pytest.raises(CertificateError, match="bad signature") as node:
        cert.must_verify(BIG_SET, CHAIN, sigbatch.valid_prefix)
    assert str(node.value) == str(default.value)
    if native is not None:
        assert slow_calls.n == 0 and handed == [1]  # its first signature, not all 100
        handed.clear()
        message = vote_sign_bytes(CHAIN, VoteType.PRECOMMIT, 5, 0, H1)
        honest = sorted((k.pubkey, k.sign(message)) for k in BIG_KEYS)
        spoiled = CommitCertificate(5, 0, H1, tuple(honest[:70]) + cert.precommits[70:])
        with pytest.raises(CertificateError, match=f"bad signature from {honest[70][0].hex()}"):
            spoiled.must_verify(BIG_SET, CHAIN, sigbatch.valid_prefix)
        assert handed == [1, 2, 4, 8, 16, 32, 37]  # chunks double: the failing one is no longer than the good


def test_without_the_extension_a_forged_certificate_costs_the_rule_once(slow_calls: Calls, per_call: None) -> None:
    cert = forged_certificate(5, H1)
    for _ in range(3):  # the same forged certificate again (another sync answer)
        assert not cert.verify(BIG_SET, CHAIN, sigbatch.valid_prefix)
    assert slow_calls.n == 1


def _genesis_of(valset: Sequence[PrivateKey]) -> Genesis:
    """What ``must_prove_block`` reads of a genesis: the chain id and the validators."""
    validators = tuple(SimpleNamespace(pubkey=k.pubkey, power=1) for k in valset)
    return cast(Genesis, SimpleNamespace(chain_id=CHAIN, validators=validators))


def test_state_sync_certification_and_block_sync_check_with_the_batch_verifier(slow_calls: Calls) -> None:
    """A peer's block h+1 with a forged certificate (state-sync certification) and a synced
    block with one (block sync, checked by the core): refused, the rule never run."""
    block = Block.decode(block_for(height=1).encode())
    cert = forged_certificate(1, block.hash)
    genesis = _genesis_of(BIG_KEYS)
    with pytest.raises(syncverify.SnapshotError) as err:
        syncverify.must_prove_block(block.encode(), cert.encode(), 1, genesis)
    assert err.value.code == Code.NEXT_BLOCK_UNPROVEN and "bad signature" in str(err.value)
    small = CommitCertificate(1, 0, block.hash, tuple(sorted((k.pubkey, k.sign(b"x")) for k in KEYS)))
    core = make_core(None, verifier=sigbatch.valid_prefix)
    start(core)
    assert core.handle(SyncedBlock(block, small)) == [] and core.decided is None
    if NATIVE:
        assert slow_calls.n == 0


# ------------------------------------------------------------------ same answers
def reference_must_verify(cert: CommitCertificate, validators: ValidatorSet) -> str | None:
    """The certificate check as it was: each precommit in order, its signature by
    ``state.keys.verify``; the message of the first failure, or None."""
    message = vote_sign_bytes(CHAIN, VoteType.PRECOMMIT, cert.height, cert.round, cert.block_hash)
    power, previous = 0, b""
    for pubkey, signature in cert.precommits:
        if pubkey <= previous:
            return "precommits must be sorted by public key and unique"
        previous = pubkey
        weight = validators.power_of(pubkey)
        if weight == 0:
            return f"signer {pubkey.hex()} is not a validator"
        if not keys.verify(pubkey, message, signature):
            return f"bad signature from {pubkey.hex()}"
        power += weight
    if not validators.is_quorum(power):
        return f"precommit power {power} is not more than 2/3 of {validators.total_power}"
    return None


def reference_block_evidence(raw: tuple[bytes, ...], height: int) -> Code:
    """``check_block_evidence`` as it was: each item in order, signatures last."""
    if len(raw) > MAX_EVIDENCE_PER_BLOCK:
        return Code.OVERSIZE
    seen: set[tuple[int, bytes]] = set()
    for item in raw:
        try:
            ev = DuplicateVote.decode(item)
        except ValueError:
            return Code.MALFORMED
        if ev.height >= height:
            return Code.EVIDENCE_TOO_NEW
        if expired(ev.height, height, 100_000):
            return Code.EVIDENCE_EXPIRED
        if ev.offence in seen:
            return Code.EVIDENCE_DUPLICATE
        a, b = ev.vote_a, ev.vote_b
        if a.validator != b.validator or (a.height, a.round, a.type) != (b.height, b.round, b.type):
            return Code.EVIDENCE_MISMATCH
        if a.validator not in VALSET:
            return Code.EVIDENCE_UNKNOWN_VALIDATOR
        if not (a.verify(CHAIN) and b.verify(CHAIN)):
            return Code.BAD_SIGNATURE
        seen.add(ev.offence)
    return Code.OK


@contextlib.contextmanager
def memoized_rule() -> Iterator[None]:
    """The plain-Python rule answering each signature once across examples (the answers are
    the rule's; only the property tests' time is saved)."""
    real = sigrule.verify
    answers: dict[tuple[bytes, bytes, bytes], bool] = {}

    def memo(pubkey: bytes, message: bytes, signature: bytes) -> bool:
        key = (pubkey, message, signature)
        if key not in answers:
            answers[key] = real(pubkey, message, signature)
        return answers[key]

    sigrule.verify = memo  # type: ignore[assignment]
    try:
        yield
    finally:
        sigrule.verify = real  # type: ignore[assignment]


def _bad(sig: bytes) -> bytes:
    return sig[:32] + b"\xff" * 32  # S >= L: both rules refuse it at once (no slow equation)


VERIFIERS: list[PrefixVerifier] = [keys.valid_prefix, sigbatch.valid_prefix]
OUTSIDER = PrivateKey(b"\x42" * 32)
CERT_KEYS = sorted([*KEYS, OUTSIDER], key=lambda k: k.pubkey)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(CERT_KEYS) - 1), st.sampled_from(["ok", "bad", "crafted"])),
                max_size=6),
       st.booleans())
def test_certificate_answers_are_the_per_signature_answers(entries: list[tuple[int, str]], sort: bool) -> None:
    if sort:
        entries = sorted(entries)
    message = vote_sign_bytes(CHAIN, VoteType.PRECOMMIT, 3, 0, H1)
    pairs = []
    for index, kind in entries:
        key = CERT_KEYS[index]
        sig = key.sign(message)
        pairs.append((key.pubkey, _bad(sig) if kind == "bad" else crafted_sign(key, message) if kind == "crafted" else sig))
    cert = CommitCertificate(3, 0, H1, tuple(pairs))
    with memoized_rule():
        want = reference_must_verify(cert, VALSET)
        for verifier in VERIFIERS:
            try:
                cert.must_verify(VALSET, CHAIN, verifier)
                got = None
            except CertificateError as err:
                got = str(err)
            assert got == want


PIECES: list[Callable[[int], bytes]] = [
    lambda h: DuplicateVote.make(crafted_vote(KEYS[h % 4], h, H1), crafted_vote(KEYS[h % 4], h, H2)).encode(),
    lambda h: DuplicateVote.make(crafted_vote(KEYS[h % 4], h, H1),
                                 Vote(VoteType.PREVOTE, h, 0, H2, KEYS[h % 4].pubkey, _bad(bytes(64)))).encode(),
    lambda h: DuplicateVote.make(crafted_vote(OUTSIDER, h, H1), crafted_vote(OUTSIDER, h, H2)).encode(),
    lambda h: b"\x00garbage",
    lambda h: DuplicateVote.make(crafted_vote(KEYS[h % 4], h + 50, H1), crafted_vote(KEYS[h % 4], h + 50, H2)).encode(),
]


@cache
def _piece(kind: int, height: int) -> bytes:
    return PIECES[kind](height)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 4), st.integers(0, len(PIECES) - 1)), max_size=6))
def test_block_evidence_answers_are_the_per_signature_answers(items: list[tuple[int, int]]) -> None:
    raw = tuple(_piece(kind, h) for h, kind in items)
    with memoized_rule():
        want = reference_block_evidence(raw, 10)
        for verifier in VERIFIERS:
            assert check_block_evidence(raw, 10, VALSET, CHAIN, verifier=verifier)[0] == want
