"""Fuzz the decoders with random and mutated valid inputs (hypothesis): the only outcome
of bad bytes is a TxError with a code, never another exception, and never a state change."""

from __future__ import annotations

import contextlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consensus.block import Block, make_block
from consensus.errors import MalformedMessage
from consensus.messages import Proposal, Vote, VoteType
from state.errors import TxError
from state.keys import PrivateKey
from state.tx import (
    Batch,
    Cancel,
    CancelAll,
    Deposit,
    Modify,
    PlaceOrder,
    Tif,
    Withdraw,
    decode_tx,
    sign_tx,
)
from tests.harness import CHAIN_ID, Chain, key

K = key(10)
VALID = [
    sign_tx(K, 1_700_000_000_123, PlaceOrder(0, True, 60_000, 3, Tif.GTC, False, b"c" * 16), CHAIN_ID),
    sign_tx(K, 1_700_000_000_124, Batch((Cancel(0, 5, None), CancelAll(None), Modify(1, None, b"d" * 16, 5, 6))), CHAIN_ID),
    sign_tx(K, 1_700_000_000_125, Withdraw(0, 10, b"dest"), CHAIN_ID),
    sign_tx(K, 1_700_000_000_126, Deposit(K.address, 1, 99), CHAIN_ID),
]
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    raw = bytearray(draw(st.sampled_from(VALID)))
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        pos = draw(st.integers(0, max(0, len(raw) - 1)))
        if op == "flip" and raw:
            raw[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "insert":
            raw[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete" and raw:
            del raw[pos]
        elif op == "truncate":
            del raw[pos:]
    return bytes(raw)


def _decode_or_code(raw: bytes) -> None:
    try:
        decode_tx(raw)
    except TxError as err:
        assert int(err.code) > 0


@FUZZ
@given(st.binary(max_size=300))
def test_random_bytes_only_ever_give_a_coded_rejection(raw: bytes) -> None:
    _decode_or_code(raw)


@FUZZ
@given(mutated())
def test_mutated_valid_transactions_only_ever_give_a_coded_rejection(raw: bytes) -> None:
    _decode_or_code(raw)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(mutated(), min_size=1, max_size=8))
def test_a_block_of_mutated_transactions_changes_no_state_unless_valid(raws: list[bytes]) -> None:
    """Rejected transactions have no effect beyond what an empty block at the same height
    and time has (per-block steps such as interest accrual may change state every block),
    except that a validly signed one with a fresh nonce uses its nonce."""
    from state.records import NONCE

    chain, twin = Chain(), Chain()
    result = chain.block(*raws)
    twin.block()
    assert len(result.receipts) == len(raws)
    if all(r.code != 0 for r in result.receipts):
        a, b = dict(chain.ex.snapshot_records()), dict(twin.ex.snapshot_records())
        changed = {k for k in a.keys() | b.keys() if a.get(k) != b.get(k)}
        assert all(k.startswith(NONCE) for k in changed), changed


VAL = PrivateKey(b"\x42" * 32)
BLOCK = make_block(chain_id=CHAIN_ID, height=3, round=0, time_ms=5, prev_block_hash=b"\x01" * 32,
                   prev_app_hash=b"\x02" * 32, proposer=VAL.pubkey, txs=tuple(VALID))
CONSENSUS_VALID = [
    BLOCK.encode(),
    Vote.create(VAL, CHAIN_ID, VoteType.PREVOTE, 3, 0, BLOCK.hash).encode(),
    Proposal.create(VAL, CHAIN_ID, 3, 0, -1, BLOCK).encode(),
]


@FUZZ
@given(st.sampled_from(CONSENSUS_VALID), st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=6))
def test_mutated_blocks_votes_and_proposals_only_ever_give_a_coded_rejection(raw: bytes, flips: list[tuple[int, int]]) -> None:
    data = bytearray(raw)
    for pos, value in flips:
        if data:
            data[pos % len(data)] = value
    for decoder in (Block.decode, Vote.decode, Proposal.decode):
        with contextlib.suppress(MalformedMessage):
            decoder(bytes(data))
