"""A small certified chain in a node home, with the snapshots its node would have written,
and the two ways to forge a snapshot: alter a record and keep the stated app hash, or
alter it and restate the app hash its records now give (which only block h+1's
certificate can catch)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from consensus.block import make_block
from consensus.certificate import CommitCertificate
from consensus.messages import Vote, VoteType
from node.blockstore import BlockStore
from node.execblock import exec_block
from node.snapshots import Snapshot
from node.syncverify import records_app_hash
from state import records
from state.genesis import Genesis, make_genesis_doc
from state.keys import PrivateKey, address_to_text
from state.machine import StateMachine
from state.tx import Deposit, PlaceOrder, Tif, sign_tx

CHAIN = "sync-test"
VALIDATORS = [PrivateKey(bytes([60 + i]) * 32) for i in range(4)]
BRIDGE = PrivateKey(b"\x01" * 32)
ALICE = PrivateKey(b"\x0a" * 32)
BOB = PrivateKey(b"\x0b" * 32)  # funded at genesis; no block touches his account
T0 = 1_700_000_000_000


def genesis_doc() -> dict[str, object]:
    return make_genesis_doc(
        chain_id=CHAIN, genesis_time_ms=T0, bridge_pubkey=BRIDGE.pubkey,
        validators=[{"name": f"v{i}", "pubkey": k.pubkey.hex(), "power": 1} for i, k in enumerate(VALIDATORS)],
        balances=[{"address": address_to_text(ALICE.address), "asset": "BTC", "amount": 10**9},
                  {"address": address_to_text(BOB.address), "asset": "BTC", "amount": 7 * 10**8}])


def build(home: Path, heights: int = 6, *, tamper_app_hash_at: int | None = None,
          evidence: dict[int, tuple[bytes, ...]] | None = None, doc: dict[str, object] | None = None,
          ) -> dict[int, Snapshot]:
    """Blocks 1..heights with certificates and results in ``home``'s block store; returns the
    snapshot of every height (as ``after_commit`` writes them). ``evidence``: encoded
    equivocation evidence per height (not checked here: a chain a replay may refuse)."""
    doc = doc if doc is not None else genesis_doc()
    home.mkdir(parents=True)
    (home / "genesis.json").write_text(json.dumps(doc))
    genesis = Genesis.from_json(doc)
    sm = StateMachine.open(genesis, None)
    store = BlockStore(str(home / "data" / "blocks"))
    snaps: dict[int, Snapshot] = {}
    prev = b""
    for h in range(1, heights + 1):
        txs = (sign_tx(BRIDGE, T0 + h, Deposit(ALICE.address, 0, 10**9 + h), CHAIN),
               sign_tx(ALICE, T0 + 100 + h, PlaceOrder(0, False, 60_000 + h, 5, Tif.GTC, False, None), CHAIN))
        app_hash = sm.app_hash if h != tamper_app_hash_at else b"\x13" * 32
        block = make_block(chain_id=CHAIN, height=h, round=0, time_ms=T0 + 1000 * h, prev_block_hash=prev,
                           prev_app_hash=app_hash, proposer=VALIDATORS[0].pubkey, txs=txs,
                           evidence=(evidence or {}).get(h, ()))
        cert = CommitCertificate.from_votes(
            [Vote.create(k, CHAIN, VoteType.PRECOMMIT, h, 0, block.hash) for k in VALIDATORS[:3]])
        result = sm.apply_block(exec_block(block))
        store.save_block(h, block.encode(), cert.encode())
        store.save_results(h, [result.app_hash, [], [], [list(d) for d in result.write_digests]], [], [])
        snaps[h] = Snapshot(CHAIN, h, sm.app_hash, block.hash, block.header.time_ms, sm.ex.snapshot_records())
        prev = block.hash
    store.close()
    return snaps


def next_block(home: Path, height: int) -> tuple[bytes, bytes]:
    store = BlockStore(str(home / "data" / "blocks"))
    try:
        raw_block, raw_cert = store.block(height), store.certificate(height)
        assert raw_block is not None and raw_cert is not None
        return raw_block, raw_cert
    finally:
        store.close()


def forge_balance(snap: Snapshot, address: bytes, genesis_hash: bytes, *, restate: bool,
                  extra: int = 10**6) -> Snapshot:
    """``address``'s first balance raised by ``extra``; with ``restate`` the stated app hash
    is the one the altered records give (so the root check passes)."""
    key = records.account_key(address)
    out = []
    for k, v in snap.records:
        if k == key:
            rec = records.decode_record(v)
            asset = rec[0][0]  # [asset, idle, scaled]: lent by default, so the balance is scaled
            asset[2 if asset[2] else 1] += extra
            v = records.encode_record(rec)
        out.append((k, v))
    assert out != snap.records, "the account is in the snapshot"
    app_hash = records_app_hash(out, genesis_hash) if restate else snap.app_hash
    return dataclasses.replace(snap, records=out, app_hash=app_hash)


def forge_bob(snap: Snapshot, *, restate: bool) -> Snapshot:
    return forge_balance(snap, BOB.address, Genesis.from_json(genesis_doc()).hash(), restate=restate)
