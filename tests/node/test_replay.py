"""Replay against fabricated block stores: a good chain passes; forged certificates,
broken links and a diverging state are each reported with their height."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from consensus.block import make_block
from consensus.certificate import CommitCertificate
from consensus.messages import Vote, VoteType
from node.blockstore import BlockStore
from node.execblock import exec_block
from node.replay import DirSource, replay
from state.genesis import Genesis, make_genesis_doc
from state.keys import PrivateKey, address_to_text
from state.machine import StateMachine
from state.tx import Deposit, PlaceOrder, Tif, sign_tx

VALIDATORS = [PrivateKey(bytes([60 + i]) * 32) for i in range(4)]
BRIDGE = PrivateKey(b"\x01" * 32)
ALICE = PrivateKey(b"\x0a" * 32)
T0 = 1_700_000_000_000


def build_chain(home: Path, heights: int = 5, *, tamper_app_hash_at: int | None = None,
                forge_certificate_at: int | None = None, signers: int = 3,
                evidence: Mapping[int, tuple[bytes, ...]] | None = None) -> None:
    """``heights`` blocks, each with a deposit and a resting order of Alice's, certified;
    block h carries ``evidence[h]`` (encoded ``DuplicateVote``s), if given."""
    doc = make_genesis_doc(chain_id="replay-test", genesis_time_ms=T0, bridge_pubkey=BRIDGE.pubkey,
                           validators=[{"name": f"v{i}", "pubkey": k.pubkey.hex(), "power": 1} for i, k in enumerate(VALIDATORS)],
                           balances=[{"address": address_to_text(ALICE.address), "asset": "BTC", "amount": 10**9}])
    home.mkdir(parents=True)
    (home / "genesis.json").write_text(json.dumps(doc))
    genesis = Genesis.from_json(doc)
    sm = StateMachine.open(genesis, None)
    store = BlockStore(str(home / "data" / "blocks"))
    prev = b""
    for h in range(1, heights + 1):
        txs = (sign_tx(BRIDGE, T0 + h, Deposit(ALICE.address, 0, 10**9 + h), "replay-test"),
               sign_tx(ALICE, T0 + 100 + h, PlaceOrder(0, False, 60_000 + h, 5, Tif.GTC, False, None), "replay-test"))
        app_hash = sm.app_hash if h != tamper_app_hash_at else b"\x13" * 32
        block = make_block(chain_id="replay-test", height=h, round=0, time_ms=T0 + 1000 * h, prev_block_hash=prev,
                           prev_app_hash=app_hash, proposer=VALIDATORS[0].pubkey, txs=txs,
                           evidence=(evidence or {}).get(h, ()))
        keys = VALIDATORS[:signers] if h != forge_certificate_at else [PrivateKey(b"\x55" * 32)] * 3
        votes = [Vote.create(k, "replay-test", VoteType.PRECOMMIT, h, 0, block.hash) for k in keys]
        cert = CommitCertificate.from_votes(votes)
        result = sm.apply_block(exec_block(block))
        store.save_block(h, block.encode(), cert.encode())
        digests = [list(d) for d in result.write_digests]
        store.save_results(h, [result.app_hash, [], [], digests], [], [])
        prev = block.hash
    store.close()


def run(home: Path) -> object:
    src = DirSource(str(home))
    try:
        return replay(src, None)
    finally:
        src.close()


def test_a_good_chain_replays_to_the_same_app_hash(tmp_path: Path) -> None:
    build_chain(tmp_path / "n")
    report = run(tmp_path / "n")
    assert report.ok and report.replayed == 5 and report.txs == 10  # type: ignore[attr-defined]


def test_a_certified_but_diverging_app_hash_is_reported_with_height(tmp_path: Path) -> None:
    build_chain(tmp_path / "n", tamper_app_hash_at=4)
    report = run(tmp_path / "n")
    assert not report.ok and report.divergence_height == 3  # type: ignore[attr-defined]
    assert "app hash after height 3" in report.reason  # type: ignore[attr-defined]


def test_a_certificate_from_non_validators_is_rejected(tmp_path: Path) -> None:
    build_chain(tmp_path / "n", forge_certificate_at=2)
    report = run(tmp_path / "n")
    assert not report.ok and report.divergence_height == 2  # type: ignore[attr-defined]
    assert "certificate" in report.reason  # type: ignore[attr-defined]


def test_a_certificate_without_quorum_is_rejected(tmp_path: Path) -> None:
    build_chain(tmp_path / "n", signers=2)
    report = run(tmp_path / "n")
    assert not report.ok and report.divergence_height == 1  # type: ignore[attr-defined]


def test_replay_names_the_differing_keys_when_results_disagree(tmp_path: Path) -> None:
    build_chain(tmp_path / "n")
    store = BlockStore(str(tmp_path / "n" / "data" / "blocks"))
    rec = store.results(5)
    assert rec is not None
    key = rec[3][0][0]
    rec[0] = b"\x00" * 32
    rec[3][0][1] = b"\xff" * 8
    store.db.put(b"r" + (5).to_bytes(8, "big"), __import__("msgpack").packb(rec, use_bin_type=True))
    store.close()
    report = run(tmp_path / "n")
    assert not report.ok and report.divergence_height == 5  # type: ignore[attr-defined]
    assert report.differing_keys == [key.hex()]  # type: ignore[attr-defined]
