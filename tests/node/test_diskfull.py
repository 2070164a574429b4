"""A failed durable write stops the node cleanly (node/diskfull.py), without root: the error
and its one line, short and failing WAL writes, the evidence pool and snapshots leaving
their old files, the driver sending nothing after a failed WAL record, the RPC refusing
and releasing clients, and real LevelDB write errors (a file-size limit stands in for a
full disk) leaving the block and state stores at the last height they acknowledged."""

from __future__ import annotations

import asyncio
import errno
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import plyvel
import pytest

from consensus.actions import BroadcastVote, RecordWal
from consensus.block import Block
from consensus.config import ConsensusConfig
from consensus.core import ConsensusCore
from consensus.events import Start, TimeoutFired
from consensus.evidence import DuplicateVote
from consensus.messages import Vote, VoteType
from consensus.steps import RoundStep, TimeoutStep
from consensus.validators import ValidatorSet
from consensus.wal import WalRecord, WalStep, WalVote
from node.diskfull import EXIT_DISK_FULL, StorageFailure, is_disk_full, must_write_probe, writing
from node.driver import ConsensusDriver
from node.evidence_pool import EvidencePool
from node.execution import Execution, NodeStopping
from node.snapshots import Snapshot, write_snapshot
from node.wal_file import WalFile
from state.keys import PrivateKey

ROOT = Path(__file__).resolve().parents[2]
CHAIN = "diskfull-test"


def enospc(*_: Any, **__: Any) -> Any:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


# ---------------------------------------------------------------------------- the error
def test_the_line_names_the_path_and_says_disk_full() -> None:
    err = StorageFailure("/data/wal/wal.log", OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
    assert err.disk_full
    assert err.describe() == "disk full: cannot write /data/wal/wal.log (ENOSPC: No space left on device)"
    quota = StorageFailure("/d", OSError(errno.EDQUOT, os.strerror(errno.EDQUOT)))
    assert quota.disk_full and quota.describe().startswith("disk full: ")
    # LevelDB's errors carry no errno: its message says it
    leveldb = StorageFailure("/data/blocks", plyvel.IOError(b"IO error: /data/blocks/000005.log: No space left on device"))
    assert leveldb.disk_full and leveldb.describe() == ("disk full: cannot write /data/blocks (IO error: "
                                                        "/data/blocks/000005.log: No space left on device)")
    eio = StorageFailure("/d", OSError(errno.EIO, os.strerror(errno.EIO)))
    assert not eio.disk_full and eio.describe() == "storage write failed: cannot write /d (EIO: Input/output error)"
    assert "\n" not in StorageFailure("/d", plyvel.Error("two\nlines")).describe()
    assert not isinstance(err, OSError)  # nothing that handles OSError for its own reasons swallows it
    assert is_disk_full(OSError(errno.ENOSPC, "x")) and not is_disk_full(ValueError("x"))


def test_writing_wraps_os_and_leveldb_errors_only() -> None:
    with pytest.raises(StorageFailure) as caught, writing("/p"):
        enospc()
    assert caught.value.path == "/p" and isinstance(caught.value.cause, OSError)
    with pytest.raises(StorageFailure), writing("/p"):
        raise plyvel.IOError("IO error: x: No space left on device")
    with pytest.raises(KeyError), writing("/p"):
        raise KeyError("a bug is not a disk error")
    with pytest.raises(plyvel.CorruptionError), writing("/p"):
        raise plyvel.CorruptionError(b"Corruption: bad block")  # not the disk's answer to a write
    inner = StorageFailure("/inner", OSError(errno.ENOSPC, "x"))
    with pytest.raises(StorageFailure) as again, writing("/outer"):
        raise inner
    assert again.value is inner


def test_opening_a_store_turns_only_a_full_disk_into_a_failure(tmp_path: Path) -> None:
    """A store another process holds (here: this one) is the caller's business, as before:
    replay copies a running node's block store when its lock says so."""
    from node.blockstore import BlockStore
    from node.diskfull import opening

    held = BlockStore(str(tmp_path / "blocks"))
    try:
        with pytest.raises(plyvel.IOError), opening(tmp_path / "blocks"):
            BlockStore(str(tmp_path / "blocks"))
    finally:
        held.close()
    with pytest.raises(StorageFailure) as caught, opening(tmp_path / "blocks"):
        raise plyvel.IOError(b"IO error: /x/MANIFEST-000004: No space left on device")
    assert caught.value.disk_full


def test_the_exit_code_is_the_next_free_one() -> None:
    from cli import context

    assert EXIT_DISK_FULL == 6 == context.EXIT_DISK_FULL
    assert EXIT_DISK_FULL not in (context.EXIT_OK, context.EXIT_REJECTED, context.EXIT_USAGE,
                                  context.EXIT_UNREACHABLE, context.EXIT_DIVERGED, context.EXIT_UNVERIFIED)


def test_the_start_probe_refuses_a_dir_that_takes_no_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    must_write_probe(tmp_path / "data")
    assert list((tmp_path / "data").iterdir()) == []  # nothing left behind
    monkeypatch.setattr(os, "fsync", enospc)
    with pytest.raises(StorageFailure) as caught:
        must_write_probe(tmp_path / "data")
    assert caught.value.disk_full and caught.value.path == str(tmp_path / "data")
    assert list((tmp_path / "data").iterdir()) == []
    monkeypatch.undo()
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(StorageFailure) as not_dir:
        must_write_probe(tmp_path / "file")
    assert not not_dir.value.disk_full


# ---------------------------------------------------------------------------- the WAL
def test_a_short_wal_write_is_finished_not_taken_for_a_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_write = os.write

    def dribble(fd: int, data: Any) -> int:  # a nearly full disk takes a few bytes at a time
        return real_write(fd, bytes(data[:3]))

    wal = WalFile(tmp_path)
    monkeypatch.setattr(os, "write", dribble)
    wal.append(WalStep(4, 0, RoundStep.PROPOSE))
    wal.append(WalStep(4, 0, RoundStep.PREVOTE))
    monkeypatch.undo()
    wal.close()
    assert WalFile(tmp_path).read_and_repair() == [WalStep(4, 0, RoundStep.PROPOSE), WalStep(4, 0, RoundStep.PREVOTE)]


def test_a_failed_wal_write_raises_and_the_restart_cuts_the_torn_record(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    real_write = os.write
    wal = WalFile(tmp_path)
    wal.append(WalStep(4, 0, RoundStep.PROPOSE))
    calls = 0

    def half_then_full(fd: int, data: Any) -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            return real_write(fd, bytes(data[: len(data) // 2]))
        return enospc()  # type: ignore[no-any-return]

    monkeypatch.setattr(os, "write", half_then_full)
    with pytest.raises(StorageFailure) as caught:
        wal.append(WalStep(4, 0, RoundStep.PREVOTE))
    monkeypatch.undo()
    assert caught.value.disk_full and caught.value.path == str(tmp_path / "wal.log")
    wal.close()
    assert WalFile(tmp_path).read_and_repair() == [WalStep(4, 0, RoundStep.PROPOSE)]  # the torn half is cut


# ---------------------------------------------------------------------------- files rewritten atomically
def test_a_failed_evidence_save_keeps_the_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = PrivateKey.generate(), PrivateKey.generate()

    def piece(key: PrivateKey, height: int) -> DuplicateVote:
        v1 = Vote.create(key, CHAIN, VoteType.PREVOTE, height, 0, b"\x01" * 32)
        v2 = Vote.create(key, CHAIN, VoteType.PREVOTE, height, 0, b"\x02" * 32)
        return DuplicateVote.make(v1, v2)

    pool = EvidencePool(tmp_path)
    assert pool.add(piece(a, 3))
    before = pool.path.read_bytes()
    monkeypatch.setattr(os, "fsync", enospc)
    with pytest.raises(StorageFailure) as caught:
        pool.add(piece(b, 4))
    monkeypatch.undo()
    assert caught.value.disk_full
    assert pool.path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["pending.bin"]
    assert [ev.height for ev in EvidencePool(tmp_path).pending()] == [3]


def test_a_failed_snapshot_write_leaves_no_partial_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    snap = Snapshot(CHAIN, 7, b"\x00" * 32, b"\x01" * 32, 1, [(b"k", b"v" * 1000)])
    monkeypatch.setattr(os, "fsync", enospc)
    with pytest.raises(StorageFailure) as caught:
        write_snapshot(tmp_path / "snaps", snap)
    monkeypatch.undo()
    assert caught.value.disk_full and caught.value.path.endswith("000000000007.snap")
    assert list((tmp_path / "snaps").iterdir()) == []


# ---------------------------------------------------------------------------- the driver
class FailingWal:
    """Takes records until a vote, which the full disk refuses."""

    def __init__(self) -> None:
        self.records: list[WalRecord] = []

    def append(self, record: WalRecord, *, sync: bool = True) -> None:
        if isinstance(record, WalVote):
            raise StorageFailure("/home/data/wal/wal.log", OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
        self.records.append(record)

    def sync(self) -> None:
        """The records taken are durable at once."""


class FakeHost:
    """The parts of a runtime the driver uses, recording what goes out to the network."""

    def __init__(self) -> None:
        self.wal = FailingWal()
        self.sent: list[Any] = []
        self.failures: list[StorageFailure] = []
        self.driver: ConsensusDriver | None = None
        self.config = SimpleNamespace(consensus=ConsensusConfig(), create_empty_blocks=True)
        self.execution = SimpleNamespace(last_apply_ms=0.0, last_block_hash=b"", last_block_time_ms=0)
        self.mempool: list[bytes] = []
        self.faults = SimpleNamespace(isolated=lambda: False, votes_to_send=lambda v: [v], propose_delay_s=lambda: 0)
        self.p2p = SimpleNamespace(broadcast=lambda proto, frame: self.sent.append(frame),
                                   send=lambda peer, proto, frame: self.sent.append(frame))

    def fail_storage(self, err: StorageFailure) -> None:
        self.failures.append(err)
        assert self.driver is not None
        self.driver.stop()


class EmptyApp:
    def propose_txs(self, height: int) -> list[bytes]:
        return []

    def validate_block(self, block: Block) -> bool:
        return True


def test_a_vote_whose_wal_record_failed_is_never_sent() -> None:
    """The safety half: the core signs its prevote, the WAL record that must precede it
    fails, and neither that action list, nor a rebroadcast, nor a reconnecting peer ever
    sends it; the driver reports the failure once and stops."""
    key, other = PrivateKey.generate(), PrivateKey.generate()  # the other one is silent: no quorum
    validators = ValidatorSet([(key.pubkey, 1), (other.pubkey, 1)])

    async def run() -> tuple[FakeHost, ConsensusCore]:
        core = ConsensusCore(CHAIN, validators, EmptyApp(), ConsensusConfig(), key)
        host = FakeHost()
        d = ConsensusDriver(host, core)  # type: ignore[arg-type]
        host.driver = d
        d.feed(Start(height=1, prev_block_hash=b"", prev_app_hash=b"\x00" * 32,
                     prev_block_time_ms=1, now_ms=2))
        for step in (TimeoutStep.PROPOSE, TimeoutStep.REBROADCAST):  # whatever the core would send next
            d.feed(TimeoutFired(1, 0, step, 10_000))
        d.on_peer_connected("peer")
        return host, core

    host, core = asyncio.run(run())
    assert len(host.failures) == 1 and host.failures[0].disk_full
    assert host.driver is not None and host.driver.stopped and not host.driver.timers
    assert not any(frame[:1] == b"V" for frame in host.sent), "a vote went out without its WAL record"
    assert not any(isinstance(r, WalVote) for r in host.wal.records)
    assert any(isinstance(m, Vote) for m in core.own_messages()), "the core did sign: only the driver keeps it in"


def test_perform_order_puts_the_wal_record_before_the_vote() -> None:
    """What the test above relies on: the core emits the record before the broadcast."""
    key = PrivateKey.generate()
    core = ConsensusCore(CHAIN, ValidatorSet([(key.pubkey, 1)]), EmptyApp(), ConsensusConfig(), key)
    actions = core.handle(Start(height=1, prev_block_hash=b"", prev_app_hash=b"\x00" * 32,
                                prev_block_time_ms=1, now_ms=2))
    kinds = [type(a) for a in actions if isinstance(a, (RecordWal, BroadcastVote))]
    votes = [i for i, a in enumerate(actions) if isinstance(a, BroadcastVote)]
    for i in votes:
        assert any(isinstance(a, RecordWal) and isinstance(a.record, WalVote) for a in actions[:i])
    assert kinds


# ---------------------------------------------------------------------------- clients
def submitting_runtime() -> Any:
    """A runtime with only what ``submit`` needs besides what each test sets."""
    from node.coalesce import SubmitCoalescer
    from node.runtime import COALESCE_MAX_TXS, NodeRuntime

    rt: Any = NodeRuntime.__new__(NodeRuntime)
    rt._coalescer = SubmitCoalescer(rt._admit, COALESCE_MAX_TXS)
    rt.metrics = SimpleNamespace(on_admitted=lambda hashes, ms: None)
    return rt


def test_a_stopping_node_admits_nothing_and_releases_waiting_clients() -> None:
    from state.errors import Code

    rt: Any = submitting_runtime()
    rt.storage_failure = StorageFailure("/h/data/blocks", OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
    (adm,) = asyncio.run(rt.submit([b"\x01" * 40]))
    assert adm.code == Code.NOT_READY and "disk full" in adm.message

    async def waiting() -> BaseException | None:
        ex: Any = Execution.__new__(Execution)
        ex.waiters, ex._committed, ex._closing = {}, asyncio.Event(), False
        fut = ex.wait_for(b"h" * 32)
        ex.release_height_waiters()
        try:
            await fut
        except NodeStopping as err:
            return err
        return None

    assert isinstance(asyncio.run(waiting()), NodeStopping)


@pytest.mark.parametrize("fails", ["write", "fsync"])
def test_a_failed_journal_write_refuses_and_a_failed_fsync_answers_outcome_unknown(fails: str) -> None:
    """A failed write: nothing saw the batch, every tx is refused. A failed fsync after a
    good write: the loop ran meanwhile (gossip, a proposal), so the admitted txs are
    answered as possibly committing, the refused one keeps its own refusal."""
    from node.mempool import Admission
    from state.errors import Code

    full = StorageFailure("/h/data/mempool/journal.bin", OSError(errno.EIO, os.strerror(errno.EIO)))

    class Journal:
        def write(self, raws: list[bytes]) -> None:
            if fails == "write":
                raise full

        async def sync(self) -> None:
            raise full

    class Pool:
        async def add_many(self, raws: list[bytes], pool: Any, *, bound: bool) -> list[Admission]:
            return [Admission(b"a" * 32, Code.OK), Admission(b"b" * 32, Code.NONCE_USED, "nonce used")]

    rt: Any = submitting_runtime()
    rt.storage_failure, rt.driver, rt.verify_pool = None, None, None
    rt.journal, rt.mempool, rt.sm = Journal(), Pool(), SimpleNamespace(height=7)
    rt.stop_requested = asyncio.Event()
    ok, refused = asyncio.run(rt.submit([b"\x01" * 40, b"\x02" * 40]))
    assert rt.storage_failure is full and rt.stop_requested.is_set()
    assert ok.code == Code.NOT_READY
    if fails == "write":
        assert refused.code == Code.NOT_READY
        assert "submit to another node" in ok.message and "may still commit" not in ok.message
    else:
        assert "may still commit" in ok.message and ok.hash == b"a" * 32
        assert refused.message == "nonce used"


# ---------------------------------------------------------------------------- real LevelDB write errors
STORE_SCRIPT = textwrap.dedent("""
    import json, resource, signal, sys
    from node.blockstore import BlockStore
    from node.diskfull import StorageFailure, writing
    from state.genesis import Genesis
    from state.machine import StateMachine, ExecBlock
    from tests.node.snapchain import T0, genesis_doc

    root = sys.argv[1]
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
    blocks = BlockStore(root + "/blocks")
    genesis = Genesis.from_json(genesis_doc())
    with writing(root + "/state"):
        sm = StateMachine.open(genesis, root + "/state", sync_commits=False)
    payload = bytes(range(256)) * 200  # 51 kB a block: the log grows fast
    failed = None
    acked_blocks, acked_state = 0, 0
    for h in range(1, 400):
        if h == 3:  # from here on, no file of this process may grow past 600 kB
            resource.setrlimit(resource.RLIMIT_FSIZE, (600_000, resource.RLIM_INFINITY))
        try:
            blocks.save_block(h, payload + h.to_bytes(4, "big"), b"cert%d" % h)
            acked_blocks = h
            with writing(sm.store.path):
                sm.apply_block(ExecBlock(h, T0 + 1_000 * h, ()), None, commit=False)
                sm.commit_pending()
            acked_state = h
        except StorageFailure as err:
            failed = err.describe()
            break
    print(json.dumps({"failed": failed, "blocks": acked_blocks, "state": acked_state,
                      "app_hash": sm.app_hash.hex()}))
""")


def test_leveldb_write_errors_leave_each_store_at_what_it_acknowledged(tmp_path: Path) -> None:
    """A real write error inside LevelDB (a file-size limit: the write that crosses it is
    cut short, the next refused, as on a full disk) is a ``StorageFailure``; reopened, the
    block store holds exactly the blocks it acknowledged and the state store the last
    height it acknowledged, with records that give its app hash (the open checks it)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-P", "-c", STORE_SCRIPT, str(tmp_path)], env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["failed"] is not None and "cannot write" in result["failed"], result
    assert result["blocks"] >= 3 and result["state"] in (result["blocks"] - 1, result["blocks"])

    from node.blockstore import BlockStore
    from state.genesis import Genesis
    from state.machine import StateMachine
    from tests.node.snapchain import genesis_doc

    blocks = BlockStore(str(tmp_path / "blocks"))
    try:
        assert blocks.height == result["blocks"]
        for h in range(1, blocks.height + 1):
            raw = blocks.block(h)
            assert raw is not None and raw.endswith(h.to_bytes(4, "big")) and blocks.certificate(h) == b"cert%d" % h
    finally:
        blocks.close()
    sm = StateMachine.open(Genesis.from_json(genesis_doc()), str(tmp_path / "state"))  # checks the app hash
    try:
        assert sm.height == result["state"]  # the process exited: the OS kept even unsynced commits
        assert sm.app_hash.hex() == result["app_hash"] or sm.height < result["blocks"]
    finally:
        sm.close()


# ---------------------------------------------------------------------------- the process
def test_node_start_refuses_a_data_dir_it_cannot_write(tmp_path: Path) -> None:
    """``node start`` on a home whose data directory cannot be written: exit 6, one line
    naming the path, no traceback. As root, permissions do not stop writes, and a file
    where the directory should be is refused as what it is (not a directory, exit 1:
    tests/node/test_startup_refusals.py), so the data directory is a link to /proc/1, a
    directory in which nobody can create a file."""
    from devnet.genesis import DevnetSpec, create_devnet

    if not Path("/proc/1").is_dir():
        pytest.skip("needs /proc")
    manifest = create_devnet(tmp_path / "net", DevnetSpec(nodes=1, traders=1, eth_accounts=0))
    home = Path(manifest.nodes[0].home)
    (home / "data").symlink_to("/proc/1", target_is_directory=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-P", "-m", "cli.main", "node", "start", "--home", str(home)],
                         env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == EXIT_DISK_FULL, out.stderr
    assert "Traceback" not in out.stderr
    lines = [line for line in out.stderr.splitlines() if "CRITICAL" in line]
    assert len(lines) == 1 and "refusing to start: storage write failed: cannot write" in lines[0], out.stderr
    assert str(home / "data") in lines[0]


# ---------------------------------------------------------------------------- the storage order
class _RefusedBatch:
    """A LevelDB write batch on a full disk: takes puts, and the write is refused."""

    def __enter__(self) -> _RefusedBatch:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            raise plyvel.IOError(b"IO error: /node/000009.log: No space left on device")

    def put(self, key: bytes, value: bytes) -> None:
        pass

    def delete(self, key: bytes) -> None:
        pass


class FullDisk:
    """A plyvel DB whose writes are refused; reads go to the real one."""

    def __init__(self, db: Any) -> None:
        self._db = db

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)

    def write_batch(self, **_: Any) -> _RefusedBatch:
        return _RefusedBatch()


@pytest.mark.parametrize("store", ["block", "results", "state"])
def test_a_refused_commit_write_stops_there_and_a_restart_recovers(tmp_path: Path, store: str) -> None:
    """Block 4's write is refused at each step of the storage order (the block, its
    results, the state batch): ``StorageFailure`` at once, and the node reopened on the same
    stores (the handshake) then takes blocks 4..6 to the chain's app hashes, with nothing
    lost or applied twice."""
    from consensus.certificate import CommitCertificate
    from node.blockstore import BlockStore
    from node.config import MempoolConfig
    from node.events import EventBus
    from node.mempool import Mempool
    from state.genesis import Genesis
    from state.machine import StateMachine
    from tests.node.test_replay import build_chain

    build_chain(tmp_path / "src", heights=6)
    genesis = Genesis.from_json(json.loads((tmp_path / "src" / "genesis.json").read_text()))
    source = BlockStore(str(tmp_path / "src" / "data" / "blocks"))
    chain, app_hashes = [], {}
    for h in range(1, 7):
        raw_block, raw_cert, results = source.block(h), source.certificate(h), source.results(h)
        assert raw_block is not None and raw_cert is not None and results is not None
        chain.append((Block.decode(raw_block), CommitCertificate.decode(raw_cert)))
        app_hashes[h] = results[0]
    source.close()

    def open_node() -> tuple[StateMachine, BlockStore, Execution]:
        (tmp_path / "node" / "state").mkdir(parents=True, exist_ok=True)
        sm = StateMachine.open(genesis, str(tmp_path / "node" / "state"), sync_commits=False)
        blocks = BlockStore(str(tmp_path / "node" / "blocks"))
        execution = Execution(sm, blocks, Mempool(sm, MempoolConfig()), EventBus(), None)
        execution.handshake()
        return sm, blocks, execution

    sm, blocks, execution = open_node()
    for block, cert in chain[:3]:
        execution.commit(block, cert)
    if store == "state":
        assert sm.store is not None
        real, sm.store.db = sm.store.db, FullDisk(sm.store.db)
    else:
        real, blocks.db = blocks.db, FullDisk(blocks.db)
        if store == "results":  # the block itself goes through; its results are refused
            save_block = blocks.save_block

            def save_block_for_real(height: int, raw_block: bytes, raw_certificate: bytes) -> None:
                blocks.db = real
                save_block(height, raw_block, raw_certificate)
                blocks.db = FullDisk(real)

            blocks.save_block = save_block_for_real  # type: ignore[method-assign]
    with pytest.raises(StorageFailure) as caught:
        execution.commit(*chain[3])
    assert caught.value.disk_full
    assert caught.value.path == (str(tmp_path / "node" / "state") if store == "state" else str(tmp_path / "node" / "blocks"))
    if store == "state":
        sm.store.db = real  # type: ignore[union-attr]
    else:
        blocks.db = real
    assert blocks.height == (3 if store == "block" else 4)
    assert blocks.results_height == (4 if store == "state" else 3)
    execution.proofs.close()
    blocks.close()
    sm.close()

    sm, blocks, execution = open_node()  # the restart: stores as they were left, the handshake
    try:
        assert sm.height == blocks.height == (3 if store == "block" else 4)
        for block, cert in chain[sm.height:]:
            execution.commit(block, cert)
        assert (sm.height, sm.app_hash) == (6, app_hashes[6])
        for h in range(1, 7):
            results = blocks.results(h)
            assert results is not None and results[0] == app_hashes[h]
    finally:
        execution.proofs.close()
        blocks.close()
        sm.close()


LEVELDB_SCRIPT = textwrap.dedent("""
    import json, os, resource, signal, sys, plyvel
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    db = plyvel.DB(sys.argv[1], create_if_missing=True, compression=None)
    value, failed, acked_after = os.urandom(10_000), None, []
    resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, resource.RLIM_INFINITY))
    for i in range(30):
        try:
            db.put(b"k%03d" % i, value, sync=True)
            if failed is not None:
                acked_after.append(i)
        except plyvel.IOError:
            failed = i
            resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))  # space returns
    db.close()
    db = plyvel.DB(sys.argv[1])
    print(json.dumps({"failed": failed, "acked_after": acked_after,
                      "kept_after": [i for i in acked_after if db.get(b"k%03d" % i) is not None]}))
""")


def test_why_the_node_never_writes_again_after_a_failed_write(tmp_path: Path) -> None:
    """The reason node/diskfull.py stops instead of pausing: after one refused append,
    LevelDB takes and acknowledges later synced writes once space is back, and loses every
    one of them at the next open. (If a LevelDB release fixes this, the stop is still
    right, and this test says the rationale changed.)"""
    out = subprocess.run([sys.executable, "-P", "-c", LEVELDB_SCRIPT, str(tmp_path / "db")], cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["failed"] is not None and result["acked_after"], result
    assert result["kept_after"] == [], result
