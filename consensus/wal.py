"""The consensus write-ahead log: record types and their framing (pure, no file I/O).

Why: a validator that signs a vote, crashes and restarts must not sign a different vote
for the same (height, round, type); that would be equivocation, and enough of it breaks
safety. So the driver writes (and fsyncs) each own vote and proposal before sending it,
and a restarted core replays them (``ConsensusCore.restore``): it resumes where it was
and re-sends the recorded messages instead of signing new ones.

Framing: ``len (4 bytes, big endian) || crc32(body) (4 bytes, big endian) || body`` where
body is the canonical msgpack array of the record. A crash in the middle of a write
leaves a torn tail; ``decode_stream`` stops at the first frame that is short, too long,
fails its CRC or does not decode, and reports the length of the clean prefix so the node
can truncate.

Truncating is right only for a torn *tail*. Damage in the middle of the file (a bit flip, a
lost sector) followed by good records would drop own votes that were fsynced and sent, and
the restarted validator could sign a conflicting one: ``frame_after`` scans past the bad
frame for a valid one, and the node refuses to start when it finds one (node/wal_file.py).
A valid frame is what ``decode_stream`` takes: a length within bounds, a body inside the
data, its CRC-32 and a body that decodes as a record. The scan looks only where a body can
begin (every body starts with the same few bytes: its array header and its kind), so
garbage passes as a frame only by matching those 2 bytes, a bounded length that fits the
data, a 32-bit CRC and the strict record decoder together.
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from consensus.errors import MalformedMessage, decoder
from consensus.fields import MAX_PROPOSAL_BYTES, must_height, must_round
from consensus.messages import Proposal, Vote
from consensus.steps import RoundStep
from state.codec import decode, encode, must_list, must_uint
from state.errors import Code, TxError

_HEADER = struct.Struct(">II")
HEADER_LEN = _HEADER.size
MAX_RECORD_BYTES = MAX_PROPOSAL_BYTES + 64

_PROPOSAL = 1
_VOTE = 2
_STEP = 3
_END_HEIGHT = 4


@dataclass(frozen=True, slots=True)
class WalProposal:
    """An own proposal, written before it is broadcast."""

    proposal: Proposal


@dataclass(frozen=True, slots=True)
class WalVote:
    """An own vote, written before it is broadcast."""

    vote: Vote


@dataclass(frozen=True, slots=True)
class WalStep:
    """The node entered ``step`` of (height, round); lets a restart resume the round."""

    height: int
    round: int
    step: RoundStep


@dataclass(frozen=True, slots=True)
class WalEndHeight:
    """The block at ``height`` was decided; records up to here may be pruned once the
    block store holds it."""

    height: int


WalRecord = WalProposal | WalVote | WalStep | WalEndHeight


def record_height(record: WalRecord) -> int:
    if isinstance(record, WalProposal):
        return record.proposal.height
    if isinstance(record, WalVote):
        return record.vote.height
    return record.height


def record_to_list(record: WalRecord) -> list[Any]:
    if isinstance(record, WalProposal):
        return [_PROPOSAL, record.proposal.to_list()]
    if isinstance(record, WalVote):
        return [_VOTE, record.vote.to_list()]
    if isinstance(record, WalStep):
        return [_STEP, record.height, record.round, int(record.step)]
    return [_END_HEIGHT, record.height]


def record_from_list(obj: Any) -> WalRecord:
    items = must_list(obj, "wal record", max_len=4)
    if not items:
        raise TxError(Code.MALFORMED, "empty wal record")
    kind = must_uint(items[0], "wal record kind")
    if kind == _PROPOSAL:
        must_list(items, "wal proposal", length=2)
        return WalProposal(Proposal.from_list(items[1]))
    if kind == _VOTE:
        must_list(items, "wal vote", length=2)
        return WalVote(Vote.from_list(items[1]))
    if kind == _STEP:
        must_list(items, "wal step", length=4)
        step = must_uint(items[3], "wal step.step")
        if step not in set(RoundStep):
            raise TxError(Code.MALFORMED, "unknown round step")
        return WalStep(
            must_height(items[1], "wal step.height"),
            must_round(items[2], "wal step.round"),
            RoundStep(step),
        )
    if kind == _END_HEIGHT:
        must_list(items, "wal end height", length=2)
        return WalEndHeight(must_height(items[1], "wal end height.height"))
    raise TxError(Code.MALFORMED, f"unknown wal record kind {kind}")


def encode_record(record: WalRecord) -> bytes:
    """One framed record, ready to append."""
    body = encode(record_to_list(record))
    return _HEADER.pack(len(body), zlib.crc32(body)) + body


@decoder
def decode_record_body(body: bytes) -> WalRecord:
    return record_from_list(decode(body, max_bytes=MAX_RECORD_BYTES))


def _frame_at(data: bytes, offset: int) -> tuple[WalRecord, int] | None:
    """The record of the valid frame at ``offset`` and the offset just after the frame, or
    None (short, too long, a bad CRC, an undecodable body). Never raises on garbage."""
    if offset + HEADER_LEN > len(data):
        return None
    length, crc = _HEADER.unpack_from(data, offset)
    start = offset + HEADER_LEN
    if length > MAX_RECORD_BYTES or start + length > len(data):
        return None
    body = data[start : start + length]
    if zlib.crc32(body) != crc:
        return None
    try:
        return decode_record_body(body), start + length
    except MalformedMessage:
        return None


def decode_stream(data: bytes) -> tuple[list[WalRecord], int]:
    """Decode framed records from the start of ``data``.

    Returns the records and the length of the clean prefix: the offset just after the last
    good record. What follows it is a torn tail (truncate it before appending) unless
    ``frame_after`` finds a valid frame in it. Never raises on garbage.
    """
    records: list[WalRecord] = []
    offset = 0
    while (frame := _frame_at(data, offset)) is not None:
        record, offset = frame
        records.append(record)
    return records, offset


#: Every record body starts with its canonical array header and its kind (one byte each:
#: the kinds are positive fixints, the arrays fixarrays), so a frame can start only 8 bytes
#: before one of these.
_BODY_STARTS = re.compile(b"|".join(sorted({
    re.escape(encode(record_to_list(record))[:2])
    for record in (WalEndHeight(0), WalStep(0, 0, RoundStep.PROPOSE))
} | {re.escape(encode([kind, None])[:2]) for kind in (_PROPOSAL, _VOTE)})))
#: Bytes the resync scan may checksum before it gives up (~0.3 s of CRC-32): random bytes
#: never come near it, but a torn tail of attacker-chosen transaction bytes could be packed
#: with frame-like candidates each claiming megabytes.
SCAN_BUDGET_BYTES = 64 * MAX_RECORD_BYTES


@dataclass(frozen=True, slots=True)
class FrameAfter:
    """What ``frame_after`` found: a valid frame at ``offset`` (``verified``), or, when
    the scan ran out of budget there, a frame-like candidate it did not check."""

    offset: int
    verified: bool


def frame_after(data: bytes, bad: int) -> FrameAfter | None:
    """The first valid frame that starts after ``bad`` (the offset of a frame
    ``decode_stream`` stopped at), or None: then everything from ``bad`` on is a torn tail.

    Why scan every offset rather than follow ``bad``'s length: the damage may be in that
    length itself. A candidate is checked in full (bounds, CRC, decode); the bytes
    checksummed are bounded by ``SCAN_BUDGET_BYTES``, past which the scan answers the
    candidate unchecked (the caller treats it as a frame: refusing to start is the safe
    side). Pure and deterministic; never raises on garbage.
    """
    spent = 0
    for match in _BODY_STARTS.finditer(data, bad + 1 + HEADER_LEN):
        offset = match.start() - HEADER_LEN
        length = _HEADER.unpack_from(data, offset)[0]
        if length > MAX_RECORD_BYTES or match.start() + length > len(data):
            continue
        spent += length
        if spent > SCAN_BUDGET_BYTES:
            return FrameAfter(offset, verified=False)
        if _frame_at(data, offset) is not None:
            return FrameAfter(offset, verified=True)
    return None


class WalWriter:
    """Appends framed records through injected callables (the node owns the file).

    ``write`` appends bytes; ``sync`` makes them durable (fsync). A record that protects
    against double signing must be synced before the matching broadcast is sent.
    """

    __slots__ = ("_sync", "_write")

    def __init__(self, write: Callable[[bytes], object], sync: Callable[[], object]) -> None:
        self._write = write
        self._sync = sync

    def append(self, record: WalRecord, *, sync: bool = True) -> None:
        self._write(encode_record(record))
        if sync:
            self._sync()
