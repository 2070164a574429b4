"""``GET /proof`` over HTTP and the light client (node/lightclient.py) that checks it.

The node is real but has no processes (tests/node/proofchain.py): blocks with commit
certificates signed by 3 of 4 validators, applied by node/execution.py into LevelDB, the
real RPC app. Answers are fetched once and then handed to the light client, as is and
tampered with: every lie about a value, a sibling, a root, an app hash, a certificate or
a key must fail with the reason, and every honest answer must pass.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from consensus.certificate import CommitCertificate
from consensus.evidence import DuplicateVote
from consensus.messages import Vote, VoteType
from node import recordkeys
from node.lightclient import VerifyError, check_block, check_proof, verify_keys
from state import records
from state.keys import PrivateKey, address_to_text
from tests.node.proofchain import ALICE, VALIDATORS, ProvingNode

HEIGHTS = 6
STRANGER = PrivateKey(b"\x77" * 32).address
OFFENDER = VALIDATORS[3]  # genesis validator 3, "v3": equivocated at height 1, committed by block 2


def equivocation(key: PrivateKey, height: int) -> bytes:
    """Evidence of ``key`` prevoting for two blocks at ``height``."""
    a, b = (Vote.create(key, "replay-test", VoteType.PREVOTE, height, 0, bytes([n]) * 32) for n in (1, 2))
    return DuplicateVote.make(a, b).encode()


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProvingNode]:
    n = ProvingNode(tmp_path_factory.mktemp("proofs"), heights=HEIGHTS, keep=3,
                    evidence={2: (equivocation(OFFENDER, 1),)})
    yield n
    n.close()


def get_all(node: ProvingNode, requests: list[tuple[str, dict[str, Any]]]) -> list[tuple[int, dict[str, Any]]]:
    """Answers (status, JSON) of the real app, in order."""

    async def go() -> list[tuple[int, dict[str, Any]]]:
        out = []
        async with TestClient(TestServer(node.app())) as client:
            for path, params in requests:
                resp = await client.get(path, params={k: str(v) for k, v in params.items()})
                out.append((resp.status, await resp.json()))
        return out

    return asyncio.run(go())


class Recorded:
    """A fetch for ``verify_keys`` that answers from recorded JSON (mutable: tamper with it)."""

    def __init__(self, node: ProvingNode) -> None:
        self.node = node
        self.answers: dict[tuple[str, tuple[tuple[str, str], ...]], dict[str, Any]] = {}

    def record(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        ((status, doc),) = get_all(self.node, [(path, params)])
        assert status == 200, doc
        self.answers[self._key(path, params)] = doc
        return doc

    @staticmethod
    def _key(path: str, params: dict[str, Any]) -> tuple[str, tuple[tuple[str, str], ...]]:
        return path, tuple(sorted((k, str(v)) for k, v in params.items()))

    def __call__(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        key = self._key(path, params)
        if key not in self.answers:
            self.record(path, params)
        return copy.deepcopy(self.answers[key])


def alice_key() -> bytes:
    return records.account_key(ALICE.address)


def test_present_and_absent_keys_verify_at_every_provable_height(node: ProvingNode) -> None:
    fetch = Recorded(node)
    values = {}
    for h in (3, 4, 5):
        alice, stranger, order = verify_keys(fetch, node.genesis, [alice_key(), records.account_key(STRANGER),
                                                                     records.order_key(1)], height=h)
        assert alice.height == h and alice.value is not None and alice.certified_by.height == h + 1
        assert (alice.certified_by.signed_power, alice.certified_by.total_power) == (3, 4)
        assert stranger.value is None  # proven absent
        assert order.value is not None  # alice's first resting sell (build_chain places one a block)
        values[h] = alice.value
    assert len(set(values.values())) == 3
    (newest,) = verify_keys(fetch, node.genesis, [alice_key()])  # no height: the newest provable
    assert newest.height == HEIGHTS - 1


def test_convenience_kinds_name_the_same_records_as_keys(node: ProvingNode) -> None:
    alice = address_to_text(ALICE.address)
    answers = get_all(node, [
        ("/proof", {"kind": "account", "address": alice}),
        ("/proof", {"key": alice_key().hex()}),
        ("/proof", {"kind": "order", "oid": 1}),
        ("/proof", {"kind": "pool", "asset": "btc"}),
        ("/proof", {"kind": "pool", "asset": 1}),
        ("/proof", {"kind": "market", "market": "BTC/USDC"}),
        ("/proof", {"kind": "trigger", "oid": 1}),
        ("/proof", {"kind": "counters", "height": 3}),
    ])
    assert all(status == 200 for status, _ in answers), answers
    docs = [d for _, d in answers]
    assert docs[0] == docs[1]
    assert docs[2]["key"] == records.order_key(1).hex() and docs[2]["value"] is not None
    assert docs[3] == docs[4] and docs[3]["key"] == records.pool_key(1).hex()
    assert docs[5]["key"] == records.market_key(0).hex()
    assert docs[6]["value"] is None  # no trigger order
    assert docs[7]["height"] == 3 and docs[7]["value"] is not None
    d = docs[0]
    assert d["height"] == HEIGHTS - 1 and d["certified_by"] == HEIGHTS and d["provable"] == {"from": 3, "to": 5}
    assert set(d) >= {"key", "value", "proof", "state_root", "genesis_hash", "app_hash"}
    assert d["genesis_hash"] == node.genesis.hash().hex()


def test_an_offence_is_named_by_its_height_and_validator_and_proven_against_the_state_root(
        node: ProvingNode) -> None:
    """``kind=offence``: the record state/offences.py keeps per (height, validator), the
    validator named by genesis name (any case), genesis index or public key hex; proven
    present (the height of the block that committed it) and absent with the light client."""
    pubkey = OFFENDER.pubkey
    names = ["v3", "V3", "3", pubkey.hex(), "0x" + pubkey.hex()]
    answers = get_all(node, [
        *(("/proof", {"kind": "offence", "offence_height": 1, "validator": v, "height": 4}) for v in names),
        ("/proof", {"key": records.offence_key(1, pubkey).hex(), "height": 4}),
        ("/proof", {"kind": "offence", "offence_height": 1, "validator": "v2", "height": 4}),
        ("/proof", {"kind": "offence", "offence_height": 2, "validator": "v3", "height": 4}),
    ])
    assert all(status == 200 for status, _ in answers), answers
    docs = [d for _, d in answers]
    assert all(d == docs[0] for d in docs[:len(names) + 1])
    assert docs[0]["key"] == records.offence_key(1, pubkey).hex()
    assert records.decode_record(bytes.fromhex(docs[0]["value"])) == [2]  # committed by block 2
    assert docs[-2]["value"] is None and docs[-1]["value"] is None  # v2 never equivocated; v3 not at 2

    fetch = Recorded(node)
    present, absent = verify_keys(fetch, node.genesis, [
        recordkeys.key_for(node.genesis, "offence", {"offence_height": "1", "validator": "v3"}),
        recordkeys.key_for(node.genesis, "offence", {"offence_height": "1", "validator": VALIDATORS[2].pubkey.hex()}),
    ], height=4)
    assert present.value is not None and records.decode_record(present.value) == [2]
    assert absent.value is None  # proven absent
    assert present.state_root.hex() == docs[0]["state_root"] and present.certified_by.height == 5


def test_heights_outside_the_window_and_bad_input_get_stable_codes(node: ProvingNode) -> None:
    alice = address_to_text(ALICE.address)
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"key": alice_key().hex(), "height": 2}, 404, "NOT_FOUND"),  # no longer kept
        ({"key": alice_key().hex(), "height": 6}, 404, "NOT_READY"),  # block 7 does not exist yet
        ({"key": alice_key().hex(), "height": 99}, 404, "NOT_READY"),
        ({"key": alice_key().hex(), "height": -1}, 400, "MALFORMED"),
        ({"key": alice_key().hex(), "height": "x"}, 400, "MALFORMED"),
        ({"key": "zz"}, 400, "MALFORMED"),
        ({"key": ""}, 400, "MALFORMED"),
        ({"key": "00" * 65}, 400, "MALFORMED"),
        ({}, 400, "MALFORMED"),
        ({"kind": "bogus"}, 400, "MALFORMED"),
        ({"kind": "account"}, 400, "MALFORMED"),
        ({"kind": "account", "address": "0x12"}, 400, "MALFORMED"),
        ({"kind": "order", "oid": "-3"}, 400, "MALFORMED"),
        ({"kind": "order", "oid": str(1 << 64)}, 400, "MALFORMED"),
        ({"kind": "pool", "asset": "DOGE"}, 404, "UNKNOWN_ASSET"),
        ({"kind": "market", "market": "DOGE-PERP"}, 404, "UNKNOWN_MARKET"),
        ({"kind": "account", "address": alice, "height": 0}, 404, "NOT_FOUND"),
        ({"kind": "offence", "validator": "v3"}, 400, "MALFORMED"),
        ({"kind": "offence", "offence_height": 1}, 400, "MALFORMED"),
        ({"kind": "offence", "offence_height": "x", "validator": "v3"}, 400, "MALFORMED"),
        ({"kind": "offence", "offence_height": str(1 << 64), "validator": "v3"}, 400, "MALFORMED"),
        ({"kind": "offence", "offence_height": 1, "validator": "v9"}, 404, "NOT_A_VALIDATOR"),
        ({"kind": "offence", "offence_height": 1, "validator": "4"}, 404, "NOT_A_VALIDATOR"),  # 4 validators
        ({"kind": "offence", "offence_height": 1, "validator": "zz" * 32}, 404, "NOT_A_VALIDATOR"),
        ({"kind": "offence", "offence_height": 1, "validator": "ab" * 31}, 404, "NOT_A_VALIDATOR"),
    ]
    answers = get_all(node, [("/proof", q) for q, _, _ in cases])
    for (q, status, name), (got, doc) in zip(cases, answers, strict=True):
        assert (got, doc["error"]["name"]) == (status, name), (q, doc)
    for _status, doc in answers[:3]:
        assert doc["error"]["provable"] == {"from": 3, "to": 5}
        assert "3..5" in doc["error"]["message"]


def test_no_provable_height_before_the_next_block(tmp_path: Path) -> None:
    node = ProvingNode(tmp_path, heights=2, keep=0)
    try:
        ((status, doc),) = get_all(node, [("/proof", {"kind": "counters"})])
        assert (status, doc["error"]["name"], doc["error"]["provable"]) == (404, "NOT_READY", None)
    finally:
        node.close()


# ---------------------------------------------------------------------------- lies
def _flip(hex_text: str) -> str:
    raw = bytearray(bytes.fromhex(hex_text))
    raw[-1] ^= 1
    return raw.hex()


def _cert(keys: list[PrivateKey], height: int, block_hash: bytes) -> str:
    votes = [Vote.create(k, "replay-test", VoteType.PRECOMMIT, height, 0, block_hash) for k in keys]
    return CommitCertificate.from_votes(votes).encode().hex()


def _tamper_proof(doc: dict[str, Any], how: str) -> None:
    if how == "value":
        doc["value"] = _flip(doc["value"])
    elif how == "value_dropped":
        doc["value"] = None
    elif how == "sibling":
        doc["proof"]["siblings"][0] = _flip(doc["proof"]["siblings"][0])
    elif how == "sibling_dropped":
        doc["proof"]["siblings"].pop()
    elif how == "state_root":
        doc["state_root"] = _flip(doc["state_root"])
    elif how == "app_hash":
        doc["app_hash"] = _flip(doc["app_hash"])
    elif how == "key":
        doc["key"] = records.account_key(STRANGER).hex()
    elif how == "height":
        doc["height"] = doc["height"] - 1
    elif how == "malformed_proof":
        doc["proof"]["siblings"][0] = "nothex"


@pytest.mark.parametrize("how, reason", [
    ("value", "proof does not show"),
    ("value_dropped", "proof does not show"),
    ("sibling", "proof does not show"),
    ("sibling_dropped", "proof does not show"),
    ("state_root", "does not give the app hash"),
    ("app_hash", "app hash is not the one"),
    ("key", "another key"),
    ("height", "answered for height 3"),
    ("malformed_proof", "malformed"),
])
def test_a_tampered_proof_answer_fails(node: ProvingNode, how: str, reason: str) -> None:
    fetch = Recorded(node)
    params = {"key": alice_key().hex(), "height": 4}
    _tamper_proof(fetch.record("/proof", params), how)  # the recorded answer itself
    with pytest.raises(VerifyError, match=reason):
        verify_keys(fetch, node.genesis, [alice_key()], height=4)


def test_an_absence_claimed_for_a_present_key_or_a_value_for_an_absent_one_fails(node: ProvingNode) -> None:
    fetch = Recorded(node)
    block = check_block(node.genesis, 5, fetch("/block", {"height": 5}))
    present = fetch("/proof", {"key": alice_key().hex(), "height": 4})
    absent_key = records.account_key(STRANGER)
    absent = fetch("/proof", {"key": absent_key.hex(), "height": 4})
    check_proof(node.genesis, absent_key, 4, absent, block)
    absent["value"] = present["value"]
    with pytest.raises(VerifyError, match="proof does not show"):
        check_proof(node.genesis, absent_key, 4, absent, block)
    present["value"] = None
    with pytest.raises(VerifyError, match="proof does not show"):
        check_proof(node.genesis, alice_key(), 4, present, block)


@pytest.mark.parametrize("how, reason", [
    ("non_validators", "not a validator"),
    ("no_quorum", "not more than 2/3"),
    ("other_height", "asked for block"),
    ("other_block", "commits another block"),
    ("garbage", "does not decode"),
])
def test_a_bad_certificate_fails(node: ProvingNode, how: str, reason: str) -> None:
    fetch = Recorded(node)
    doc = fetch.record("/block", {"height": 5})
    block_hash = bytes.fromhex(doc["hash"])
    if how == "non_validators":
        doc["raw_certificate"] = _cert([PrivateKey(bytes([90 + i]) * 32) for i in range(3)], 5, block_hash)
    elif how == "no_quorum":
        doc["raw_certificate"] = _cert(VALIDATORS[:2], 5, block_hash)
    elif how == "other_height":
        doc.update(fetch("/block", {"height": 6}))  # block 6 and its (valid) certificate
    elif how == "other_block":
        doc["raw_certificate"] = _cert(VALIDATORS[:3], 5, bytes(32))  # validly signed, for another block
    elif how == "garbage":
        doc["raw_block"] = "00ff"
    with pytest.raises(VerifyError, match=reason):
        verify_keys(fetch, node.genesis, [alice_key()], height=4)


def test_another_chains_genesis_is_not_fooled(node: ProvingNode) -> None:
    """A proof checked against a genesis the node does not run: same validators, but its
    hash differs, so no app hash of this chain matches."""
    import json

    from state.genesis import Genesis

    doc = json.loads(node.genesis_path.read_text())
    doc["genesis_time_ms"] += 1
    other = Genesis.from_json(doc)
    with pytest.raises(VerifyError, match="does not give the app hash"):
        verify_keys(Recorded(node), other, [alice_key()], height=4)
