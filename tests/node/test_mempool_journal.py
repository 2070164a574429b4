"""The mempool journal (node/mempool_journal.py): admitted client batches survive a crash;
a torn tail is cut, not trusted; damage in the middle is salvaged past (the valid frames
after it are kept, the file rewritten to them) within a bounded scan; compaction keeps
exactly the pending set; group commit shares fsyncs; a failed write is a StorageFailure."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import struct
import zlib
from pathlib import Path

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node import mempool_journal
from node.config import MempoolConfig
from node.diskfull import StorageFailure
from node.mempool import Mempool
from node.mempool_journal import COMPACT_BYTES, MempoolJournal, encode_frame, read_frames
from state.errors import Code
from tests.harness import Chain

TXS = [bytes([i]) * (40 + i) for i in range(10)]


def test_written_batches_come_back_after_a_reopen(tmp_path: Path) -> None:
    j = MempoolJournal(tmp_path)
    j.write(TXS[:3])
    j.write(TXS[3:5])
    j.close()  # no sync, no clean stop: what a kill -9 leaves (the page cache keeps it)
    again = MempoolJournal(tmp_path)
    assert again.read_and_repair() == TXS[:5]
    again.write(TXS[2:4])  # admitted again after the restart: read back once
    again.close()
    assert MempoolJournal(tmp_path).read_and_repair() == TXS[:5]


def test_a_torn_or_corrupt_tail_is_cut_off(tmp_path: Path) -> None:
    j = MempoolJournal(tmp_path)
    j.write(TXS[:2])
    j.write(TXS[2:4])
    j.close()
    path = tmp_path / "journal.bin"
    whole = path.read_bytes()
    first = len(encode_frame(TXS[:2]))
    path.write_bytes(whole[:-3])  # a crash mid-write
    j = MempoolJournal(tmp_path)
    assert j.read_and_repair() == TXS[:2]
    assert path.stat().st_size == first  # repaired: the next frame starts clean
    j.write(TXS[5:6])
    j.close()
    assert MempoolJournal(tmp_path).read_and_repair() == TXS[:2] + TXS[5:6]
    flipped = bytearray(path.read_bytes())
    flipped[-1] ^= 0xFF  # a bit flipped in the last frame: the CRC refuses it
    path.write_bytes(bytes(flipped))
    assert MempoolJournal(tmp_path).read_and_repair() == TXS[:2]


@settings(max_examples=200, deadline=None)
@given(batches=st.lists(st.lists(st.binary(min_size=1, max_size=60), min_size=1, max_size=4), max_size=5),
       cut=st.integers(min_value=0, max_value=2000), garbage=st.binary(max_size=40))
def test_decoding_any_prefix_gives_whole_batches_only(batches: list[list[bytes]], cut: int, garbage: bytes) -> None:
    frames = [encode_frame(b) for b in batches]
    data = b"".join(frames)
    found = read_frames(data[:cut] + garbage)
    whole = 0
    expect: list[bytes] = []
    for f, b in zip(frames, batches, strict=True):
        if whole + len(f) > min(cut, len(data)):
            break
        whole += len(f)
        expect.extend(b)
    # garbage may parse only as a whole valid frame
    assert found.raws[:len(expect)] == expect and found.end >= whole and not found.gave_up


def _journal_of(tmp_path: Path, batches: list[list[bytes]]) -> tuple[Path, list[int]]:
    """A journal holding ``batches``, one frame each, and where each frame starts."""
    j = MempoolJournal(tmp_path)
    starts = []
    for b in batches:
        starts.append(j.size)
        j.write(b)
    j.close()
    return tmp_path / "journal.bin", starts


@pytest.mark.parametrize("where", ["payload", "length", "crc"])
def test_damage_in_the_middle_keeps_the_valid_frames_after_it(tmp_path: Path, where: str,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    batches = [TXS[:2], TXS[2:4], TXS[4:7], TXS[7:10]]
    path, starts = _journal_of(tmp_path, batches)
    damaged = bytearray(path.read_bytes())
    at = starts[1] + {"payload": 20, "length": 1, "crc": 6}[where]  # a bit flipped in the second frame
    damaged[at] ^= 0x10
    path.write_bytes(bytes(damaged))
    inode = path.stat().st_ino
    j = MempoolJournal(tmp_path)
    with caplog.at_level(logging.WARNING, logger="bookchain.mempool"):
        assert j.read_and_repair() == TXS[:2] + TXS[4:10]  # the frames acknowledged after the damage survive
    assert (j.damaged_bytes, j.salvaged_txs) == (starts[2] - starts[1], 6)
    assert f"at bytes {starts[1]}-{starts[2]} " in caplog.text and "salvaged 6 transactions" in caplog.text
    # rewritten to the valid frames, whole (a new file: write_atomically), and nothing else left beside it
    assert path.read_bytes() == b"".join(encode_frame(b) for b in (batches[0], batches[2], batches[3]))
    assert path.stat().st_ino != inode and j.size == path.stat().st_size
    assert sorted(p.name for p in tmp_path.iterdir()) == ["journal.bin"]
    j.write(TXS[:1])  # appends go to the rewritten file
    j.close()
    again = MempoolJournal(tmp_path)
    assert again.read_and_repair() == TXS[:2] + TXS[4:10]
    assert again.damaged_bytes == 0  # the damage did not linger
    again.close()


def test_a_torn_tail_is_truncated_in_place_not_salvaged(tmp_path: Path) -> None:
    path, starts = _journal_of(tmp_path, [TXS[:2], TXS[2:4], TXS[4:7]])
    path.write_bytes(path.read_bytes()[:-5])  # a crash mid-write of the last frame
    inode = path.stat().st_ino
    j = MempoolJournal(tmp_path)
    assert j.read_and_repair() == TXS[:4]
    assert (j.damaged_bytes, j.salvaged_txs) == (0, 0)
    assert path.stat().st_size == starts[2] and path.stat().st_ino == inode  # cut where the torn frame began
    j.close()


def test_damage_over_several_frames_and_a_torn_tail_together(tmp_path: Path) -> None:
    batches = [[bytes([i]) * 50, bytes([i, i])] for i in range(12)]
    path, starts = _journal_of(tmp_path, batches)
    data = bytearray(path.read_bytes())
    data[starts[2]:starts[4] + 3] = os.urandom(starts[4] + 3 - starts[2])  # frames 2-4 overwritten
    data[starts[7] + 9] ^= 1  # frame 7's payload
    path.write_bytes(bytes(data[:-1]))  # frame 11 torn
    j = MempoolJournal(tmp_path)
    kept = [0, 1, 5, 6, 8, 9, 10]
    assert j.read_and_repair() == [tx for i in kept for tx in batches[i]]
    assert j.damaged_bytes == starts[5] - starts[2] + starts[8] - starts[7]
    j.close()
    assert path.read_bytes() == b"".join(encode_frame(batches[i]) for i in kept)


_damage = st.tuples(st.sampled_from(["flip", "insert", "delete", "overwrite"]), st.integers(min_value=0),
                    st.integers(min_value=1, max_value=40), st.binary(min_size=1, max_size=40))


@settings(max_examples=300, deadline=None)
@given(batches=st.lists(st.lists(st.binary(max_size=80), min_size=1, max_size=20), min_size=1, max_size=8),
       damages=st.lists(_damage, min_size=1, max_size=3))
def test_random_damage_never_raises_and_every_untouched_frame_survives(
        batches: list[list[bytes]], damages: list[tuple[str, int, int, bytes]]) -> None:
    frames = [encode_frame(b) for b in batches]
    data = b"".join(frames)
    bounds, at = [], 0
    for f in frames:
        bounds.append((at, at + len(f)))
        at += len(f)
    # applied from the highest offset down, each kept below the one before it: the
    # offsets of the original bytes below a damage do not move
    hit: list[tuple[int, int]] = []  # the original bytes each damage touches, [start, end)
    top, out = len(data), data
    for kind, pos, length, garbage in sorted(damages, key=lambda d: -(d[1] % (len(data) + 1))):
        pos = min(pos % (len(data) + 1), top)
        length = min(length, top - pos)
        if kind == "flip" and pos < top:
            out = out[:pos] + bytes([out[pos] ^ (garbage[0] or 1)]) + out[pos + 1:]
            hit.append((pos, pos + 1))
        elif kind == "insert":
            out = out[:pos] + garbage + out[pos:]
            hit.append((pos, pos))  # splits the frame it falls inside, not one it only borders
        elif kind == "delete" and length:
            out = out[:pos] + out[pos + length:]
            hit.append((pos, pos + length))
        elif kind == "overwrite" and length:
            out = out[:pos] + garbage[:length].ljust(length, b"\0") + out[pos + length:]
            hit.append((pos, pos + length))
        top = pos
    found = read_frames(out)
    assert not found.gave_up and all(type(r) is bytes for r in found.raws)
    got = [read_frames(out[a:b]).raws for a, b in found.spans]  # each valid frame's batch
    untouched = [b for b, (s, e) in zip(batches, bounds, strict=True)
                 if not any(s < he and hs < e if hs < he else s < hs < e for hs, he in hit)]
    it = iter(got)
    assert all(any(g == b for g in it) for b in untouched), (untouched, got)  # in order, each one whole


_payloads = st.one_of(
    st.binary(min_size=1, max_size=60),
    st.lists(st.binary(max_size=300), max_size=20).map(lambda b: msgpack.packb(b, use_bin_type=True)),
    st.lists(st.one_of(st.binary(max_size=20), st.text(max_size=5), st.integers(-(1 << 63), (1 << 64) - 1))).map(msgpack.packb))


@settings(max_examples=200, deadline=None)
@given(payload=_payloads, edit=st.tuples(st.integers(min_value=0), st.binary(max_size=3)))
def test_reading_on_and_salvaging_agree_on_what_a_frame_is(payload: bytes, edit: tuple[int, bytes]) -> None:
    # frame after frame, the CRC and msgpack's decoder judge; a salvage candidate, the
    # array walk and the CRC: the same frames either way
    at = edit[0] % (len(payload) + 1)
    payload = (payload[:at] + edit[1] + payload[at + len(edit[1]):]) or b"\x90"
    frame = struct.pack(">II", len(payload), zlib.crc32(payload)) + payload
    assert mempool_journal._frame_at(frame, 0, None) == mempool_journal._frame_at(
        frame, 0, mempool_journal._Budget(1 << 30))


def test_the_scan_gives_up_on_crafted_bytes_within_its_budget(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    # every other offset a frame-like candidate claiming to run to the end of the file:
    # unbounded, checking them all would checksum ~n^2/28 bytes
    n, crafted = 1 << 18, bytearray()
    while len(crafted) < n - 14:
        size = n - len(crafted) - 8
        crafted += size.to_bytes(4, "big") + bytes(4) + b"\x91\xc6" + (size - 6).to_bytes(4, "big")
    crafted += bytes(n - len(crafted))
    good = encode_frame(TXS[:2])
    checksummed = []
    real = mempool_journal.zlib.crc32
    monkeypatch.setattr(mempool_journal.zlib, "crc32", lambda b, *a: (checksummed.append(len(b)), real(b, *a))[1])
    found = read_frames(good + b"\xff" + bytes(crafted) + good, budget=4 << 20)
    assert found.gave_up and found.raws == TXS[:2] and found.end == len(good)
    assert len(good) < sum(checksummed) <= (4 << 20) + 2 * len(good)  # the budget bounds the work
    # with the budget to spare, the frame after the crafted bytes is found
    assert read_frames(good + b"\xff" + bytes(crafted[:4096]) + good).raws == TXS[:2] * 2

    monkeypatch.setattr(mempool_journal, "SCAN_BUDGET", 1 << 20)
    (tmp_path / "journal.bin").write_bytes(good + b"\xff" + bytes(crafted) + good)
    j = MempoolJournal(tmp_path)
    with caplog.at_level(logging.WARNING, logger="bookchain.mempool"):
        assert j.read_and_repair() == TXS[:2]
    assert "gave up salvaging" in caplog.text and j.damaged_bytes == len(crafted) + 1 + len(good)
    assert (tmp_path / "journal.bin").read_bytes() == good  # cut after the last frame it could vouch for
    j.close()


def test_garbage_a_false_frame_yields_is_refused_on_resubmission(tmp_path: Path) -> None:
    # damage in the middle, and inside it bytes that pass for a valid frame of non-transactions
    # (a client-chosen field can hold them): they are read back, and the mempool refuses them
    junk = [b"", b"\x93garbage", b"\xc1", bytes(range(256)), encode_frame([b"x"])]
    path, starts = _journal_of(tmp_path, [TXS[:1], TXS[1:2]])
    data = path.read_bytes()
    path.write_bytes(data[:starts[1]] + b"\xff\xff" + encode_frame(junk) + data[starts[1]:])
    j = MempoolJournal(tmp_path)
    raws = j.read_and_repair()
    j.close()
    assert raws == [TXS[0], *junk, TXS[1]]
    chain = Chain()
    pool = Mempool(chain.sm, MempoolConfig())
    adms = asyncio.run(pool.add_many(raws, None))  # as the node resubmits the journal at start
    assert [a.code for a in adms] == [Code.MALFORMED] * len(raws) and len(pool) == 0


@settings(max_examples=100, deadline=None)
@given(raws=st.lists(st.binary(max_size=300), max_size=8))
def test_resubmitting_any_bytes_never_raises_and_admits_nothing(raws: list[bytes]) -> None:
    pool = Mempool(_CHAIN.sm, MempoolConfig())
    adms = asyncio.run(pool.add_many(raws, None))
    assert len(adms) == len(raws) and all(a.code != Code.OK for a in adms) and len(pool) == 0


_CHAIN = Chain()


def test_compaction_keeps_the_pending_set_and_truncates_when_empty(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mempool_journal, "COMPACT_BYTES", 200)
    j = MempoolJournal(tmp_path)
    j.write(TXS[:2])
    assert not j.compact([TXS[1]], empty=False)  # under the threshold: left as it is
    j.write(TXS[2:8])
    assert j.size >= 200 and j.compact([TXS[1], TXS[7]], empty=False)
    assert j.size == len(encode_frame([TXS[1], TXS[7]]))
    j.write(TXS[8:9])  # appends go to the new file
    j.close()
    j = MempoolJournal(tmp_path)
    assert j.read_and_repair() == [TXS[1], TXS[7], TXS[8]]
    assert j.compact([], empty=True) and j.size == 0
    j.close()
    assert MempoolJournal(tmp_path).read_and_repair() == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["journal.bin"]  # no temporary file left
    assert COMPACT_BYTES >= 1 << 20  # the real threshold: compaction is rare under load


def test_concurrent_syncs_share_fsyncs_and_each_waits_for_its_own_frame(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = os.fsync
    monkeypatch.setattr(mempool_journal.os, "fsync", lambda fd: (calls.append(fd), real(fd))[1])
    j = MempoolJournal(tmp_path)

    async def submit(i: int) -> None:
        j.write([TXS[i]])
        await j.sync()

    async def run() -> None:
        await asyncio.gather(*(submit(i) for i in range(8)))
        assert j._synced == j._written == 8

    asyncio.run(run())
    assert 1 <= len(calls) <= 2  # eight batches, one or two fsyncs (a frame written during one waits for the next)
    j.close()


def test_a_failed_write_is_a_storage_failure_and_adds_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    j = MempoolJournal(tmp_path)
    j.write(TXS[:1])

    def full(fd: int, data: bytes) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(mempool_journal, "write_all", full)
    with pytest.raises(StorageFailure) as failed:
        j.write(TXS[1:2])
    assert failed.value.disk_full
    assert j._written == 1
    j.close()
    assert MempoolJournal(tmp_path).read_and_repair() == TXS[:1]
