"""Replay: re-execute a chain from genesis into a fresh state and audit every height.

For each height: decode the block and its commit certificate, check the certificate
against the genesis validator set (>2/3 of the power signed this block hash), check that
the block's ``prev_app_hash`` equals the app hash our replay computed for the previous
height, apply the block, and compare our app hash with the chain's record of it (the
certified ``prev_app_hash`` of the next block and, when available, the node's stored
results). At the first divergence the report names the height and the state keys whose
writes differ (from the per-block write digests in block results).

From a snapshot (``snapshot=``, ``bookchain replay --from-snapshot``: how a pruned node's
chain is audited): the snapshot is verified first, as state sync verifies it
(node/syncverify.py): its records must give its stated app hash, and block h+1, whose
certificate is checked against the genesis validators, must carry that app hash and link
to the snapshot's block hash. A snapshot that fails is refused (the report names the code
and the snapshot's height). Otherwise its records are the starting state and every later
height is audited as above. The snapshot's state records the offences committed before it
(state/offences.py), so a piece repeating one after it is caught as from genesis.

Equivocation evidence in a block is re-checked as consensus checked it (both signatures,
one validator of the set, conflicting votes of an earlier height no older than the
genesis ``evidence.max_age_blocks``, no offence the replayed state records as committed:
the rule ``NodeApp.validate_block`` applies); a block with evidence that fails is a
divergence. The report lists every committed equivocation: double-signing is visible to
anyone replaying the chain.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from consensus.block import Block
from consensus.certificate import CertificateError, CommitCertificate
from consensus.evidence import check_block_evidence
from consensus.validators import ValidatorSet
from node import sigbatch, syncverify
from node.execblock import exec_block
from node.syncverify import SnapshotError
from state import offences
from state.errors import Code, StateIntegrityError
from state.genesis import Genesis
from state.machine import StateMachine
from state.store import StateStore

if TYPE_CHECKING:
    from node.snapshots import Snapshot


class BlockSource(Protocol):
    def genesis_doc(self) -> dict[str, Any]: ...
    def height(self) -> int: ...
    def blocks(self, start: int, end: int) -> Iterator[tuple[int, bytes, bytes]]: ...
    def result_digests(self, height: int) -> tuple[bytes, list[tuple[bytes, bytes]]] | None: ...
    def close(self) -> None: ...


class DirSource:
    """A node home directory (or a copy of it). A running node holds the LevelDB lock, so
    the block store is copied to a temporary directory first when it is locked."""

    def __init__(self, home: str) -> None:
        import plyvel

        from node.blockstore import BlockStore

        self.home = Path(home)
        blocks_dir = self.home / "data" / "blocks"
        if not blocks_dir.exists():
            raise FileNotFoundError(f"{blocks_dir} does not exist (is {home} a node home?)")
        self._tmp: str | None = None
        try:
            self.store = BlockStore(str(blocks_dir))
        except plyvel.IOError:
            self._tmp = tempfile.mkdtemp(prefix="bookchain-replay-")
            copy = Path(self._tmp) / "blocks"
            shutil.copytree(blocks_dir, copy, ignore=shutil.ignore_patterns("LOCK"))
            self.store = BlockStore(str(copy))

    def genesis_doc(self) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads((self.home / "genesis.json").read_text())
        return doc

    def height(self) -> int:
        return self.store.height

    def blocks(self, start: int, end: int) -> Iterator[tuple[int, bytes, bytes]]:
        for h in range(start, end + 1):
            raw_block, raw_cert = self.store.block(h), self.store.certificate(h)
            if raw_block is None or raw_cert is None:
                raise LookupError(f"block {h} is missing from the block store")
            yield h, raw_block, raw_cert

    def result_digests(self, height: int) -> tuple[bytes, list[tuple[bytes, bytes]]] | None:
        rec = self.store.results(height)
        if rec is None:
            return None
        try:
            return _digests(height, rec[0], rec[3])
        except (TypeError, IndexError, KeyError) as err:
            raise ValueError(f"the stored results of block {height} are malformed: {err!r}") from None

    def close(self) -> None:
        self.store.close()
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)


class RpcSource:
    """A node's RPC: /genesis, /blocks (100 per call) and /block_results."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def _get(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=self.timeout) as resp:
            try:
                return json.load(resp)
            except RecursionError:
                raise ValueError(f"{self.url}{path} answered JSON nested too deep to parse") from None

    def genesis_doc(self) -> dict[str, Any]:
        doc: dict[str, Any] = self._get("/genesis")["genesis"]
        return doc

    def height(self) -> int:
        return int(self._get("/status")["latest_height"])

    def blocks(self, start: int, end: int) -> Iterator[tuple[int, bytes, bytes]]:
        h = start
        while h <= end:
            try:
                batch = self._get(f"/blocks?from={h}&to={min(end, h + 99)}")["blocks"]
                if not batch:
                    raise LookupError(f"the node returned no block at {h}")
                got = [(b["height"], bytes.fromhex(b["raw_block"]), bytes.fromhex(b["raw_certificate"]))
                       for b in batch]
            except (TypeError, KeyError) as err:
                raise ValueError(f"the node's /blocks answer is malformed: {err!r}") from None
            for bh, raw_block, raw_cert in got:
                if type(bh) is not int:
                    raise ValueError(f"the node's /blocks answer has a height {bh!r}")
                yield bh, raw_block, raw_cert
                h = bh + 1

    def result_digests(self, height: int) -> tuple[bytes, list[tuple[bytes, bytes]]] | None:
        try:
            r = self._get(f"/block_results?height={height}")
        except urllib.error.HTTPError:
            return None
        try:
            return _digests(height, bytes.fromhex(r["app_hash"]),
                            [(bytes.fromhex(k), bytes.fromhex(d)) for k, d in r["write_digests"]])
        except (TypeError, KeyError) as err:
            raise ValueError(f"the node's results of block {height} are malformed: {err!r}") from None

    def close(self) -> None:
        pass


def _digests(height: int, app_hash: object, digests: Any) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """A source's (app hash, write digests) of block ``height``, its types checked: the
    source is untrusted, so a malformed record is a ``ValueError`` (the source cannot be read)."""
    pairs = [(k, d) for k, d in digests]
    if type(app_hash) is not bytes or not all(type(k) is bytes and type(d) is bytes for k, d in pairs):
        raise ValueError(f"the results of block {height} are malformed")
    return app_hash, pairs


def open_source(where: str) -> BlockSource:
    if where.startswith(("http://", "https://")):
        return RpcSource(where)
    return DirSource(where)


@dataclass
class ReplayReport:
    chain_id: str = ""
    from_height: int = 1
    to_height: int = 0
    replayed: int = 0
    txs: int = 0
    final_app_hash: str = ""
    ok: bool = True
    divergence_height: int | None = None
    reason: str = ""
    differing_keys: list[str] = field(default_factory=list)
    seconds: float = 0.0
    # committed equivocations: {"committed_height", "validator", "height", "round", "type"}
    evidence: list[dict[str, Any]] = field(default_factory=list)
    snapshot_height: int | None = None  # replay started from a verified snapshot at this height
    code: str = ""  # why a snapshot was refused (state/errors.py name); empty otherwise

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _diff_keys(ours: list[tuple[bytes, bytes]], theirs: list[tuple[bytes, bytes]]) -> list[str]:
    a, b = dict(ours), dict(theirs)
    return sorted(k.hex() for k in set(a) | set(b) if a.get(k) != b.get(k))


def replay(source: BlockSource, state_dir: str | None, to_height: int | None = None,
           progress: Callable[[int, int], None] | None = None, *, snapshot: Snapshot | None = None) -> ReplayReport:
    """Replay ``source`` into a fresh state at ``state_dir`` (None: in memory), from genesis or,
    given ``snapshot``, from that snapshot once it is verified."""
    import time

    t0 = time.perf_counter()
    genesis = Genesis.from_json(source.genesis_doc())
    validators = ValidatorSet((v.pubkey, v.power) for v in genesis.validators)
    report = ReplayReport(chain_id=genesis.chain_id)
    if state_dir is not None and Path(state_dir).exists() and any(Path(state_dir).iterdir()):
        raise FileExistsError(f"{state_dir} is not empty: replay needs a fresh state directory")
    top = source.height()
    end = min(top, to_height) if to_height is not None else top
    report.to_height = end
    start = 1
    if snapshot is not None:
        start = report.from_height = snapshot.height + 1
        report.snapshot_height = snapshot.height
        if to_height is not None and to_height < start:
            raise ValueError(f"--to {to_height} is not above the snapshot's height {snapshot.height}")
        if top < start:
            raise LookupError(f"block {start} is not available from the source yet (it is at {top}): "
                              f"it is what certifies the snapshot at {snapshot.height}")
        try:
            sm = _load_snapshot(genesis, snapshot)
        except SnapshotError as err:
            report.seconds = time.perf_counter() - t0
            return _refuse(report, snapshot.height, err)
    else:
        sm = StateMachine.open(genesis, state_dir)
    prev_hash = snapshot.block_hash if snapshot is not None else b""
    pending: tuple[int, bytes, list[tuple[bytes, bytes]]] | None = None  # height, our hash, our digests
    try:
        for h, raw_block, raw_cert in source.blocks(start, end):
            block, cert = Block.decode(raw_block), CommitCertificate.decode(raw_cert)
            if block.height != h or cert.height != h or cert.block_hash != block.hash:
                return _fail(report, h, "certificate does not commit this block")
            try:
                cert.must_verify(validators, genesis.chain_id, sigbatch.valid_prefix)
            except CertificateError as err:
                return _fail(report, h, f"invalid commit certificate: {err}")
            if snapshot is not None and h == start:
                try:
                    syncverify.must_agree(snapshot.anchor, block)
                except SnapshotError as err:
                    return _refuse(report, snapshot.height, err)
                if state_dir is not None:  # certified: only now does the snapshot reach the disk
                    sm.store = StateStore(state_dir)
                    sm.store.commit(list(snapshot.records), snapshot.height, snapshot.app_hash)
            if block.header.prev_block_hash != prev_hash:
                return _fail(report, h, "block does not link to the previous block hash")
            if not block.body_matches():
                return _fail(report, h, "transactions or evidence do not match the header's roots")
            if block.evidence:
                code, evidence = check_block_evidence(block.evidence, h, validators, genesis.chain_id,
                                                      max_age=genesis.evidence_max_age,
                                                      verifier=sigbatch.valid_prefix)
                if code != Code.OK:
                    return _fail(report, h, f"invalid equivocation evidence: {code.name}")
                for ev in evidence:
                    if offences.committed_at(sm.ex, ev.offence) is not None:  # the state after h - 1
                        return _fail(report, h, "equivocation evidence committed twice: EVIDENCE_DUPLICATE")
                    report.evidence.append({"committed_height": h, "validator": ev.validator.hex(),
                                            "height": ev.height, "round": ev.round, "type": ev.type.name.lower()})
            if block.header.prev_app_hash != sm.app_hash:
                assert pending is not None or h == start
                keys: list[str] = []
                if pending is not None:
                    theirs = source.result_digests(pending[0])
                    keys = _diff_keys(pending[2], theirs[1]) if theirs else []
                return _fail(report, h - 1, f"app hash after height {h - 1} differs: chain "
                             f"{block.header.prev_app_hash.hex()}, replay {sm.app_hash.hex()}", keys)
            result = sm.apply_block(exec_block(block))
            pending = (h, result.app_hash, list(result.write_digests))
            prev_hash = block.hash
            report.replayed += 1
            report.txs += len(block.txs)
            if progress is not None:
                progress(h, end)
        if pending is not None:  # the last block: compare with the node's stored results
            theirs = source.result_digests(pending[0])
            if theirs is not None and theirs[0] != pending[1]:
                return _fail(report, pending[0], f"app hash differs from the node's results: node "
                             f"{theirs[0].hex()}, replay {pending[1].hex()}", _diff_keys(pending[2], theirs[1]))
        report.final_app_hash = sm.app_hash.hex()
        return report
    finally:
        report.seconds = time.perf_counter() - t0
        sm.close()


def _load_snapshot(genesis: Genesis, snapshot: Snapshot) -> StateMachine:
    """The snapshot's state in memory, once its records give its stated app hash
    (``SnapshotError`` otherwise). Block h+1's certificate is checked by the replay loop,
    which then writes the state to the replay's directory."""
    if snapshot.chain_id != genesis.chain_id:
        raise SnapshotError(Code.SNAPSHOT_MALFORMED, f"the snapshot is for chain {snapshot.chain_id!r}, "
                            f"the source's is {genesis.chain_id!r}")
    sm = StateMachine.open(genesis, None)
    try:
        sm.load(snapshot.records, snapshot.height, snapshot.app_hash, where="the snapshot")
    except StateIntegrityError as err:
        raise SnapshotError(Code.SNAPSHOT_ROOT_MISMATCH, str(err)) from None
    except Exception as err:  # untrusted records into a loader written for our own store
        raise SnapshotError(Code.SNAPSHOT_MALFORMED,
                            f"a snapshot record does not load ({type(err).__name__}: {err})") from None
    return sm


def _refuse(report: ReplayReport, height: int, err: SnapshotError) -> ReplayReport:
    report.code = err.code.name
    return _fail(report, height, f"snapshot refused: {err}")


def _fail(report: ReplayReport, height: int, reason: str, keys: list[str] | None = None) -> ReplayReport:
    report.ok = False
    report.divergence_height = height
    report.reason = reason
    report.differing_keys = keys or []
    return report
