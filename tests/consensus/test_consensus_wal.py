"""WAL framing (torn and corrupt tails) and restart from WAL records without double signing."""

from __future__ import annotations

import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consensus import (
    CommitBlock,
    Event,
    ProposalReceived,
    RecordWal,
    RoundStep,
    TimeoutFired,
    TimeoutStep,
    VoteReceived,
    WalEndHeight,
    WalProposal,
    WalRecord,
    WalStep,
    WalVote,
    WalWriter,
    decode_stream,
    encode_record,
)
from consensus import wal as wal_module
from consensus.actions import Action
from consensus.core import ConsensusCore
from consensus.messages import NIL
from consensus.wal import HEADER_LEN, FrameAfter, frame_after

from .helpers import (
    CHAIN,
    NOW,
    PRECOMMIT,
    PREVOTE,
    TestApp,
    block_for,
    feed_proposal,
    feed_votes,
    make_core,
    not_proposer,
    of_type,
    others,
    proposal_for,
    proposer_index,
    quiet_validator,
    sent_proposals,
    sent_votes,
    start,
    vote,
)


def sample_records() -> list[WalRecord]:
    block = block_for(txs=[b"tx-1", b"tx-2"])
    return [
        WalStep(1, 0, RoundStep.PROPOSE),
        WalProposal(proposal_for(block)),
        WalVote(vote(0, PREVOTE, 0, block.hash)),
        WalVote(vote(0, PRECOMMIT, 0, NIL)),
        WalStep(1, 3, RoundStep.PRECOMMIT),
        WalEndHeight(1),
    ]


def records_of(actions: list[Action]) -> list[WalRecord]:
    return [a.record for a in of_type(actions, RecordWal)]


# ----------------------------------------------------------------------------- framing
def test_records_round_trip() -> None:
    records = sample_records()
    data = b"".join(encode_record(r) for r in records)
    decoded, clean = decode_stream(data)
    assert decoded == records and clean == len(data)


def test_frame_layout_is_length_crc_body() -> None:
    frame = encode_record(WalEndHeight(7))
    length = int.from_bytes(frame[:4], "big")
    crc = int.from_bytes(frame[4:8], "big")
    body = frame[HEADER_LEN:]
    assert length == len(body) and crc == zlib.crc32(body)


def test_torn_tail_at_every_cut_point_keeps_the_clean_prefix() -> None:
    records = sample_records()
    frames = [encode_record(r) for r in records]
    data = b"".join(frames)
    boundaries = [0]
    for frame in frames:
        boundaries.append(boundaries[-1] + len(frame))
    for cut in range(len(data) + 1):
        decoded, clean = decode_stream(data[:cut])
        complete = max(i for i, b in enumerate(boundaries) if b <= cut)
        assert decoded == records[:complete], cut
        assert clean == boundaries[complete], cut
        assert frame_after(data[:cut], clean) is None, cut  # a torn tail: nothing valid follows


def test_corrupt_record_stops_decoding_there() -> None:
    records = sample_records()
    frames = [encode_record(r) for r in records]
    data = bytearray(b"".join(frames))
    offset = len(frames[0]) + len(frames[1]) + HEADER_LEN + 3  # inside record 3's body
    data[offset] ^= 0xFF
    decoded, clean = decode_stream(bytes(data))
    assert decoded == records[:2]
    assert clean == len(frames[0]) + len(frames[1])


def test_every_damaged_byte_of_a_middle_record_is_seen_to_have_records_after_it() -> None:
    """Damage in the middle (any byte of a record's length, CRC or body) is told from a torn
    tail: the scan finds the next record where it starts, so the node does not cut it off."""
    frames = [encode_record(r) for r in sample_records()]
    data = b"".join(frames)
    start = len(frames[0]) + len(frames[1])
    after = start + len(frames[2])
    for offset in range(start, after):
        for flip in (0x01, 0x80, 0xFF):
            damaged = bytearray(data)
            damaged[offset] ^= flip
            _, clean = decode_stream(bytes(damaged))
            assert clean == start, (offset, flip)
            assert frame_after(bytes(damaged), clean) == FrameAfter(after, verified=True), (offset, flip)


def test_a_lost_sector_in_the_middle_is_seen_to_have_records_after_it() -> None:
    frames = [encode_record(r) for r in sample_records()]
    data = bytearray(b"".join(frames))
    start = len(frames[0]) + 10
    data[start : start + len(frames[1])] = bytes(len(frames[1]))  # zeroes across records 1 and 2
    _, clean = decode_stream(bytes(data))
    assert clean == len(frames[0])
    assert frame_after(bytes(data), clean) == FrameAfter(sum(map(len, frames[:3])), verified=True)


@pytest.mark.parametrize("tail", [bytes(4096), b"\xff" * 100, b"\x00\x00\x00\x10" + bytes(4) + b"\x92\x04\x01"])
def test_garbage_after_the_records_is_a_torn_tail(tail: bytes) -> None:
    """Zeroes (a torn sector), ones and a frame-shaped header whose CRC fails: nothing valid."""
    good = b"".join(encode_record(r) for r in sample_records())
    assert decode_stream(good + tail)[1] == len(good)
    assert frame_after(good + tail, len(good)) is None


def test_the_scan_stops_at_its_budget_and_answers_the_candidate_unchecked(monkeypatch: pytest.MonkeyPatch) -> None:
    """A tail packed with frame-like candidates each claiming the rest of the file costs a
    bounded number of checksummed bytes: past the budget the candidate is answered unchecked
    (the node refuses to start rather than guess)."""
    candidate = (1000).to_bytes(4, "big") + bytes(4) + b"\x92\x04"
    data = encode_record(WalEndHeight(1)) + b"\xff" * 8 + candidate * 300
    clean = decode_stream(data)[1]
    assert frame_after(data, clean) is None  # every candidate checked, none valid
    monkeypatch.setattr(wal_module, "SCAN_BUDGET_BYTES", 5000)
    found = frame_after(data, clean)
    assert found is not None and not found.verified and found.offset == clean + 8 + 5 * len(candidate)


def test_absurd_length_is_a_torn_tail() -> None:
    good = encode_record(WalEndHeight(1))
    data = good + (0xFFFFFFFF).to_bytes(4, "big") + b"\x00" * 20
    assert decode_stream(data) == ([WalEndHeight(1)], len(good))


def test_valid_crc_over_garbage_body_is_rejected() -> None:
    body = b"\x93\x01\x02"  # [1, 2, ...] truncated array
    frame = len(body).to_bytes(4, "big") + zlib.crc32(body).to_bytes(4, "big") + body
    assert decode_stream(frame) == ([], 0)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_decode_stream_never_raises_on_garbage(data: bytes) -> None:
    records, clean = decode_stream(data)
    assert 0 <= clean <= len(data)
    assert decode_stream(data[:clean]) == (records, clean)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_decode_stream_survives_random_tail_damage(data: st.DataObject) -> None:
    records = sample_records()
    frames = [encode_record(r) for r in records]
    encoded = b"".join(frames)
    cut = data.draw(st.integers(0, len(encoded)))
    junk = data.draw(st.binary(max_size=40))
    decoded, clean = decode_stream(encoded[:cut] + junk)
    complete, end = 0, 0
    while complete < len(frames) and end + len(frames[complete]) <= cut:
        end += len(frames[complete])
        complete += 1
    assert decoded[:complete] == records[:complete]  # every intact record survives
    assert clean >= end and clean <= cut + len(junk)
    assert frame_after(encoded[:cut] + junk, clean) is None  # damage at the tail is a torn tail


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600), st.integers(0, 600))
def test_frame_after_never_raises_and_answers_a_frame_that_decodes(data: bytes, bad: int) -> None:
    bad = min(bad, len(data))
    found = frame_after(data, bad)
    if found is not None:
        assert found.verified and found.offset > bad
        assert decode_stream(data[found.offset:])[0]


def test_wal_writer_uses_injected_write_and_sync() -> None:
    written: list[bytes] = []
    syncs: list[int] = []
    writer = WalWriter(written.append, lambda: syncs.append(1))
    writer.append(WalEndHeight(1))
    writer.append(WalStep(2, 0, RoundStep.PROPOSE), sync=False)
    assert decode_stream(b"".join(written))[0] == [
        WalEndHeight(1),
        WalStep(2, 0, RoundStep.PROPOSE),
    ]
    assert syncs == [1]


# ----------------------------------------------------------------------------- restart
def restart(
    index: int, wal: list[WalRecord], app: TestApp | None = None
) -> tuple[ConsensusCore, list[Action]]:
    data = b"".join(encode_record(r) for r in wal)
    records, _ = decode_stream(data)
    core = make_core(index, app=app)
    core.restore(records)
    return core, start(core)


def test_restart_never_signs_a_different_prevote() -> None:
    me = not_proposer(1, 0)
    core = make_core(me)
    wal = records_of(start(core))
    actions = core.handle(TimeoutFired(1, 0, TimeoutStep.PROPOSE, NOW))  # prevote nil
    wal += records_of(actions)
    (nil_prevote,) = sent_votes(actions)
    # Crash. The restarted node now receives the proposal it missed: it must not prevote it.
    again, boot = restart(me, wal)
    assert sent_votes(boot) == [nil_prevote]  # re-sent, not re-signed
    assert not [r for r in records_of(boot) if isinstance(r, WalVote)]
    actions = feed_proposal(again, proposal_for(block_for()))
    assert not sent_votes(actions)
    assert again.step == RoundStep.PREVOTE


def test_restart_restores_the_lock_from_own_precommit() -> None:
    me = quiet_validator(0, 1)
    core = make_core(me)
    wal = records_of(start(core))
    block = block_for()
    wal += records_of(feed_proposal(core, proposal_for(block)))
    wal += records_of(feed_votes(core, others(me, 2), PREVOTE, 0, block.hash))
    assert core.locked == (0, block.hash)
    again, boot = restart(me, wal)
    assert again.locked == (0, block.hash)
    assert again.round == 0 and again.step == RoundStep.PRECOMMIT
    assert {(v.type, v.block_hash) for v in sent_votes(boot)} == {
        (PREVOTE, block.hash),
        (PRECOMMIT, block.hash),
    }
    # In round 1 a different fresh block gets a nil prevote: the lock survived the crash.
    feed_votes(again, others(me, 2), PREVOTE, 1, NIL)
    other = block_for(round_=1, txs=[b"tx-other"])
    votes = sent_votes(feed_proposal(again, proposal_for(other)))
    assert [(v.round, v.block_hash) for v in votes if v.type == PREVOTE] == [(1, NIL)]


def test_restart_resumes_the_recorded_round() -> None:
    me = quiet_validator(0, 2)
    core = make_core(me)
    wal = records_of(start(core))
    wal += records_of(feed_votes(core, others(me, 2), PREVOTE, 2, NIL))
    assert core.round == 2
    again, _ = restart(me, wal)
    assert again.round == 2 and again.step == RoundStep.PROPOSE


def test_restarted_proposer_rebroadcasts_its_recorded_proposal() -> None:
    me = proposer_index(1, 0)
    core = make_core(me, app=TestApp([b"tx-before-crash"]))
    actions = start(core)
    (original,) = sent_proposals(actions)
    _, boot = restart(me, records_of(actions), app=TestApp([b"tx-after-crash"]))
    assert sent_proposals(boot) == [original]
    assert sent_votes(boot) == sent_votes(actions)
    assert not [r for r in records_of(boot) if isinstance(r, (WalProposal, WalVote))]


def test_restart_after_many_crashes_in_one_height_never_double_signs() -> None:
    """Crash after every event; whatever arrives later, each (round, type) has one vote."""
    me = quiet_validator(0, 1, 2)
    block = block_for()
    other = block_for(round_=1, txs=[b"tx-other"])
    votes = [
        *[vote(i, PREVOTE, 0, block.hash) for i in others(me, 2)],
        *[vote(i, PRECOMMIT, 0, NIL) for i in others(me, 3)],
    ]
    script: list[Event] = [
        TimeoutFired(1, 0, TimeoutStep.PROPOSE, NOW),
        ProposalReceived(proposal_for(block), NOW),
        *[VoteReceived(v, NOW) for v in votes],
        TimeoutFired(1, 0, TimeoutStep.PRECOMMIT, NOW),
        ProposalReceived(proposal_for(other), NOW),
        *[VoteReceived(vote(i, PREVOTE, 1, other.hash), NOW) for i in others(me, 3)],
    ]
    wal: list[WalRecord] = []
    signed: dict[tuple[int, int], bytes] = {}
    core, boot = restart(me, wal)
    wal += records_of(boot)
    for event in script:
        actions = core.handle(event)
        wal += records_of(actions)
        for v in sent_votes(actions):
            assert signed.setdefault((v.round, int(v.type)), v.block_hash) == v.block_hash
        core, boot = restart(me, wal)
        wal += records_of(boot)
        for v in sent_votes(boot):
            assert signed.setdefault((v.round, int(v.type)), v.block_hash) == v.block_hash
    assert signed  # it did vote


def test_end_height_record_follows_commit() -> None:
    me = not_proposer(1, 0)
    core = make_core(me)
    start(core)
    block = block_for()
    feed_proposal(core, proposal_for(block))
    actions = feed_votes(core, others(me, 3), PRECOMMIT, 0, block.hash)
    kinds = [type(a).__name__ for a in actions]
    commit_at = kinds.index(CommitBlock.__name__)
    end = [
        i
        for i, a in enumerate(actions)
        if isinstance(a, RecordWal) and isinstance(a.record, WalEndHeight)
    ]
    assert end and end[0] > commit_at
    assert CHAIN
