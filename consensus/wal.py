"""The consensus write-ahead log: record types and their framing (pure, no file I/O).

Why: a validator that signs a vote, crashes and restarts must not sign a different vote
for the same (height, round, type); that would be equivocation, and enough of it breaks
safety. So the driver writes (and fsyncs) each own vote and proposal before sending it,
and a restarted core replays them (``ConsensusCore.restore``): it resumes where it was
and re-sends the recorded messages instead of signing new ones.

Framing: ``len (4 bytes, big endian) || crc32(body) (4 bytes, big endian) || body`` where
body is the canonical msgpack array of the record. A crash in the middle of a write
leaves a torn tail; ``decode_stream`` stops at the first frame that is short, too long or
fails its CRC, and reports the length of the clean prefix so the node can truncate.
"""

from __future__ import annotations

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


def decode_stream(data: bytes) -> tuple[list[WalRecord], int]:
    """Decode framed records from the start of ``data``.

    Returns the records and the length of the clean prefix: the offset just after the last
    good record. Everything after it (a torn or corrupt tail) must be truncated before new
    records are appended. Never raises on garbage.
    """
    view = memoryview(data)
    records: list[WalRecord] = []
    offset = 0
    total = len(view)
    while offset + HEADER_LEN <= total:
        length, crc = _HEADER.unpack_from(view, offset)
        start = offset + HEADER_LEN
        if length > MAX_RECORD_BYTES or start + length > total:
            break
        body = bytes(view[start : start + length])
        if zlib.crc32(body) != crc:
            break
        try:
            record = decode_record_body(body)
        except MalformedMessage:
            break
        records.append(record)
        offset = start + length
    return records, offset


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
