"""State sync verifies a snapshot before anything is written: its records must give its
stated app hash, and block h+1's certificate must sign that app hash. Replay from a snapshot
verifies the same way, then audits every later height as replay from genesis does."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import msgpack
import pytest

from consensus.block import Block, make_block
from consensus.certificate import CommitCertificate
from consensus.messages import Vote, VoteType
from node import syncverify
from node.blockstore import BlockStore
from node.replay import DirSource, ReplayReport, replay
from node.snapshots import (
    MAGIC,
    Snapshot,
    SnapshotError,
    decode_snapshot,
    encode_snapshot,
    restore_into,
)
from node.syncverify import Anchor
from state.errors import Code
from state.genesis import Genesis
from state.keys import PrivateKey
from state.machine import StateMachine
from tests.node import snapchain
from tests.node.snapchain import CHAIN, forge_bob, next_block


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[int, Snapshot]]:
    home = tmp_path_factory.mktemp("chain") / "n"
    return home, snapchain.build(home)


def genesis() -> Genesis:
    return Genesis.from_json(snapchain.genesis_doc())


def paths(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A fresh node home's state dir (created empty, as the runtime does), block store and marker."""
    return tmp_path / "data" / "state", tmp_path / "data" / "blocks", tmp_path / "data" / "state_sync.pending"


def fresh(tmp_path: Path) -> tuple[Path, Path, Path]:
    state, blocks, pending = paths(tmp_path)
    state.mkdir(parents=True)
    return state, blocks, pending


def assert_nothing_written(tmp_path: Path) -> None:
    state, blocks, pending = paths(tmp_path)
    assert not any(state.iterdir()) and not blocks.exists() and not pending.exists()


# ------------------------------------------------------------------ restore

def test_an_honest_snapshot_certified_by_block_h_plus_1_restores(chain: tuple[Path, dict[int, Snapshot]],
                                                                 tmp_path: Path) -> None:
    home, snaps = chain
    state, blocks, pending = fresh(tmp_path)
    assert restore_into(snaps[3], genesis(), state, blocks, pending, next_block(home, 4)) is True
    assert not pending.exists()
    sm = StateMachine.open(genesis(), str(state))
    try:
        assert (sm.height, sm.app_hash) == (3, snaps[3].app_hash)
    finally:
        sm.close()


def test_a_forged_balance_under_the_true_app_hash_is_refused(chain: tuple[Path, dict[int, Snapshot]],
                                                             tmp_path: Path) -> None:
    """Bob's account is touched by no block after genesis, so before this check nothing
    would ever have disagreed: the node would have followed the chain on a forged balance."""
    home, snaps = chain
    state, blocks, pending = fresh(tmp_path)
    for nb in (next_block(home, 4), None):
        with pytest.raises(SnapshotError) as err:
            restore_into(forge_bob(snaps[3], restate=False), genesis(), state, blocks, pending, nb)
        assert err.value.code == Code.SNAPSHOT_ROOT_MISMATCH
        assert_nothing_written(tmp_path)


def test_a_forged_balance_with_a_restated_app_hash_is_refused_by_block_h_plus_1(
        chain: tuple[Path, dict[int, Snapshot]], tmp_path: Path) -> None:
    home, snaps = chain
    state, blocks, pending = fresh(tmp_path)
    forged = forge_bob(snaps[3], restate=True)
    syncverify.must_match_records(forged.records, forged.anchor, genesis().hash())  # its root checks out
    with pytest.raises(SnapshotError) as err:
        restore_into(forged, genesis(), state, blocks, pending, next_block(home, 4))
    assert err.value.code == Code.SNAPSHOT_NOT_CERTIFIED and "certified" in err.value.message
    assert_nothing_written(tmp_path)


def test_a_wrong_stated_app_hash_is_refused(chain: tuple[Path, dict[int, Snapshot]], tmp_path: Path) -> None:
    home, snaps = chain
    state, blocks, pending = fresh(tmp_path)
    wrong = dataclasses.replace(snaps[3], app_hash=snaps[2].app_hash)
    with pytest.raises(SnapshotError) as err:
        restore_into(wrong, genesis(), state, blocks, pending, next_block(home, 4))
    assert err.value.code == Code.SNAPSHOT_ROOT_MISMATCH
    assert_nothing_written(tmp_path)


def test_a_snapshot_stating_another_block_time_than_its_records_is_refused(
        chain: tuple[Path, dict[int, Snapshot]], tmp_path: Path) -> None:
    """The stated block time is what the node continues from (block h+1 must be later),
    and neither the root check nor block h+1's certificate covers it: only the records'
    copy is under the app hash. A time past the chain's had the restored node refuse every
    certified block after the snapshot, for good."""
    home, snaps = chain
    state, blocks, pending = fresh(tmp_path)
    assert syncverify.records_block_time(snaps[3].records, genesis()) == snaps[3].block_time_ms
    for stated in (snaps[3].block_time_ms + 10**9, snaps[3].block_time_ms - 1):
        wrong = dataclasses.replace(snaps[3], block_time_ms=stated)
        for nb in (next_block(home, 4), None):
            with pytest.raises(SnapshotError) as err:
                restore_into(wrong, genesis(), state, blocks, pending, nb)
            assert err.value.code == Code.SNAPSHOT_ROOT_MISMATCH and "block time" in err.value.message
            assert_nothing_written(tmp_path)


def test_a_snapshot_whose_block_hash_block_h_plus_1_does_not_link_to_is_refused(
        chain: tuple[Path, dict[int, Snapshot]], tmp_path: Path) -> None:
    home, snaps = chain
    state, blocks, pending = fresh(tmp_path)
    wrong = dataclasses.replace(snaps[3], block_hash=b"\x07" * 32)
    with pytest.raises(SnapshotError) as err:
        restore_into(wrong, genesis(), state, blocks, pending, next_block(home, 4))
    assert err.value.code == Code.SNAPSHOT_NOT_CERTIFIED and "block hash" in err.value.message
    assert_nothing_written(tmp_path)


def test_without_block_h_plus_1_the_state_is_written_under_the_pending_marker(
        chain: tuple[Path, dict[int, Snapshot]], tmp_path: Path) -> None:
    """A snapshot file of the newest height: no block h+1 anywhere yet. The root is checked
    now; the marker (written first) keeps the node from serving or voting until peers'
    block h+1 certifies it."""
    _home, snaps = chain
    state, blocks, pending = fresh(tmp_path)
    assert restore_into(snaps[6], genesis(), state, blocks, pending) is False
    assert syncverify.read_pending(pending) == snaps[6].anchor
    store = BlockStore(str(blocks))
    try:
        assert store.anchor() == (6, snaps[6].block_hash, snaps[6].block_time_ms)
    finally:
        store.close()


def test_certifying_a_pending_snapshot(chain: tuple[Path, dict[int, Snapshot]]) -> None:
    """What the node does with each block h+1 a peer sends: the genuine block certifies the
    honest snapshot and proves the restated forgery forged; a block whose certificate does
    not verify proves nothing (the peer's fault)."""
    home, snaps = chain
    raw_block, raw_cert = next_block(home, 4)
    syncverify.must_certify_next(snaps[3].anchor, raw_block, raw_cert, genesis())
    with pytest.raises(SnapshotError) as err:
        syncverify.must_certify_next(forge_bob(snaps[3], restate=True).anchor, raw_block, raw_cert, genesis())
    assert err.value.code == Code.SNAPSHOT_NOT_CERTIFIED
    block = Block.decode(raw_block)
    outsiders = [PrivateKey(bytes([90 + i]) * 32) for i in range(3)]
    fake = make_block(chain_id=CHAIN, height=4, round=0, time_ms=block.header.time_ms,
                      prev_block_hash=block.header.prev_block_hash, prev_app_hash=b"\x42" * 32,
                      proposer=outsiders[0].pubkey, txs=())
    fake_cert = CommitCertificate.from_votes(
        [Vote.create(k, CHAIN, VoteType.PRECOMMIT, 4, 0, fake.hash) for k in outsiders])
    for pair in ((fake.encode(), fake_cert.encode()), (raw_block, fake_cert.encode()), (b"junk", raw_cert)):
        with pytest.raises(SnapshotError) as err:
            syncverify.must_certify_next(snaps[3].anchor, *pair, genesis())
        assert err.value.code == Code.NEXT_BLOCK_UNPROVEN


def test_the_pending_marker_round_trips_and_a_damaged_one_keeps_the_node_gated(tmp_path: Path) -> None:
    path = tmp_path / "state_sync.pending"
    assert syncverify.read_pending(path) is None
    anchor = Anchor(10, b"\x01" * 32, b"\x02" * 32)
    syncverify.write_pending(path, anchor)
    assert syncverify.read_pending(path) == anchor
    path.write_bytes(b"\xc1garbage")
    with pytest.raises(SnapshotError) as err:
        syncverify.read_pending(path)
    assert err.value.code == Code.SNAPSHOT_MALFORMED
    syncverify.clear_pending(path)
    assert syncverify.read_pending(path) is None


def test_a_snapshot_of_another_chain_is_refused(chain: tuple[Path, dict[int, Snapshot]], tmp_path: Path) -> None:
    _home, snaps = chain
    state, blocks, pending = fresh(tmp_path)
    with pytest.raises(SnapshotError) as err:
        restore_into(dataclasses.replace(snaps[3], chain_id="other"), genesis(), state, blocks, pending)
    assert err.value.code == Code.SNAPSHOT_MALFORMED
    assert_nothing_written(tmp_path)


def test_snapshot_decoding_refuses_duplicate_or_unsorted_keys_and_bad_fields(
        chain: tuple[Path, dict[int, Snapshot]]) -> None:
    _home, snaps = chain
    honest = snaps[3]
    assert decode_snapshot(encode_snapshot(honest)) == honest
    recs = honest.records
    for bad in (dataclasses.replace(honest, records=[recs[0], *recs]),
                dataclasses.replace(honest, records=list(reversed(recs))),
                dataclasses.replace(honest, app_hash=b"short")):
        with pytest.raises(SnapshotError) as err:
            decode_snapshot(encode_snapshot(bad))
        assert err.value.code == Code.SNAPSHOT_MALFORMED
    body = msgpack.packb(["x", 1, 2, 3], use_bin_type=True)  # a checksummed body of the wrong shape
    with pytest.raises(SnapshotError):
        decode_snapshot(MAGIC + body + hashlib.sha256(body).digest())


# ------------------------------------------------------------------ replay from a snapshot

def run(home: Path, snap: Snapshot, state_dir: str | None = None) -> ReplayReport:
    src = DirSource(str(home))
    try:
        return replay(src, state_dir, snapshot=snap)
    finally:
        src.close()


def test_replay_from_an_honest_snapshot_reaches_the_chain_s_app_hash(
        chain: tuple[Path, dict[int, Snapshot]], tmp_path: Path) -> None:
    home, snaps = chain
    report = run(home, snaps[3], str(tmp_path / "replayed"))
    assert report.ok, report.reason
    assert (report.snapshot_height, report.from_height, report.to_height, report.replayed) == (3, 4, 6, 3)
    assert report.final_app_hash == snaps[6].app_hash.hex()
    sm = StateMachine.open(genesis(), str(tmp_path / "replayed"))  # what replay wrote reopens at 6
    try:
        assert (sm.height, sm.app_hash) == (6, snaps[6].app_hash)
    finally:
        sm.close()


@pytest.mark.parametrize(("restate", "code"), [(False, "SNAPSHOT_ROOT_MISMATCH"), (True, "SNAPSHOT_NOT_CERTIFIED")])
def test_replay_refuses_a_forged_snapshot(chain: tuple[Path, dict[int, Snapshot]], tmp_path: Path,
                                          restate: bool, code: str) -> None:
    home, snaps = chain
    report = run(home, forge_bob(snaps[3], restate=restate), str(tmp_path / "replayed"))
    assert not report.ok and report.code == code and report.divergence_height == 3
    assert report.replayed == 0 and not (tmp_path / "replayed").exists()  # nothing written


def test_replay_from_a_snapshot_of_the_newest_height_cannot_certify_it(
        chain: tuple[Path, dict[int, Snapshot]]) -> None:
    home, snaps = chain
    with pytest.raises(LookupError, match="block 7"):
        run(home, snaps[6])


def test_replay_from_a_snapshot_reports_a_later_divergence_with_its_height(tmp_path: Path) -> None:
    snaps = snapchain.build(tmp_path / "n", tamper_app_hash_at=5)
    report = run(tmp_path / "n", snaps[3])
    assert not report.ok and report.divergence_height == 4 and report.code == ""
    assert "app hash after height 4" in report.reason


def test_replay_from_a_snapshot_names_the_differing_keys(tmp_path: Path) -> None:
    snaps = snapchain.build(tmp_path / "n")
    store = BlockStore(str(tmp_path / "n" / "data" / "blocks"))
    rec = store.results(6)
    assert rec is not None
    key = rec[3][0][0]
    rec[0] = b"\x00" * 32
    rec[3][0][1] = b"\xff" * 8
    store.db.put(b"r" + (6).to_bytes(8, "big"), msgpack.packb(rec, use_bin_type=True))
    store.close()
    report = run(tmp_path / "n", snaps[3])
    assert not report.ok and report.divergence_height == 6 and report.differing_keys == [key.hex()]


def test_a_pruned_node_s_chain_is_audited_from_its_snapshot(tmp_path: Path) -> None:
    snaps = snapchain.build(tmp_path / "n")
    store = BlockStore(str(tmp_path / "n" / "data" / "blocks"))
    assert store.prune_below(4) == 3
    store.close()
    src = DirSource(str(tmp_path / "n"))
    try:
        with pytest.raises(LookupError):
            replay(src, None)  # from genesis: block 1 is gone
    finally:
        src.close()
    report = run(tmp_path / "n", snaps[3])
    assert report.ok and report.replayed == 3 and report.final_app_hash == snaps[6].app_hash.hex()


def test_the_snapshot_verify_bench_s_records_round_trip_and_verify() -> None:
    from bench.snapshot_verify import GENESIS_HASH, build_records

    recs = build_records(1000)
    assert len(recs) == 1000 and len({k for k, _ in recs}) == 1000
    snap = Snapshot("bench", 1, syncverify.records_app_hash(recs, GENESIS_HASH), b"\x00" * 32, 0, recs)
    decoded = decode_snapshot(encode_snapshot(snap))
    syncverify.must_match_records(decoded.records, decoded.anchor, GENESIS_HASH)
