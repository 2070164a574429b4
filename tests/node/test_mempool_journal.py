"""The mempool journal (node/mempool_journal.py): admitted client batches survive a crash;
a torn tail is cut, not trusted; compaction keeps exactly the pending set; group commit
shares fsyncs; a failed write is a StorageFailure."""

from __future__ import annotations

import asyncio
import errno
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node import mempool_journal
from node.diskfull import StorageFailure
from node.mempool_journal import COMPACT_BYTES, MempoolJournal, decode_frames, encode_frame

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
    raws, clean = decode_frames(data[:cut] + garbage)
    whole = 0
    expect: list[bytes] = []
    for f, b in zip(frames, batches, strict=True):
        if whole + len(f) > min(cut, len(data)):
            break
        whole += len(f)
        expect.extend(b)
    assert raws[:len(expect)] == expect and clean >= whole  # garbage may parse only as a whole valid frame


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
