"""A light client: check a node's answer about state against nothing but a trusted genesis.

What it trusts: the genesis document the user holds (its chain id, its validator set, and
its hash, which the app hash binds). What it checks, for state after block h:

1. block h+1 and its commit certificate (``/block?height=h+1``): the certificate commits
   that block's hash at that height, and validators of the genesis set holding more than
   2/3 of the power signed it (consensus/certificate.py, as replay checks it);
2. the certified header's ``prev_app_hash`` equals ``app_hash(genesis hash, state_root)``
   (state/apphash.py) for the state root the node's ``/proof`` answer names;
3. the Merkle proof shows the key holding exactly the value the node sent (or absent)
   under that root (state/merkle.py ``verify``).

Keys are built here from the caller's words (node/recordkeys.py, names resolved in the
trusted genesis), never taken from the node's answer, so a node cannot prove a different
record. Every failure is a ``VerifyError`` saying which check failed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from consensus.block import Block
from consensus.certificate import CertificateError, CommitCertificate
from consensus.validators import ValidatorSet
from state.apphash import app_hash
from state.genesis import Genesis
from state.merkle import MAX_DEPTH, Proof, verify

Fetch = Callable[[str, dict[str, Any]], dict[str, Any]]  # (path, query) -> the node's JSON answer


class VerifyError(Exception):
    """The node's answer does not prove what it claims (the message says which check failed)."""


@dataclass(frozen=True, slots=True)
class Certified:
    """A block whose certificate checked out against the trusted validator set."""

    height: int
    block_hash: bytes
    prev_app_hash: bytes  # the app hash after block height - 1
    signed_power: int
    total_power: int


@dataclass(frozen=True, slots=True)
class Verified:
    """One record proven at one height (``value`` None: proven absent)."""

    height: int
    key: bytes
    value: bytes | None
    state_root: bytes
    app_hash: bytes
    certified_by: Certified

    def as_json(self) -> dict[str, Any]:
        c = self.certified_by
        return {"verified": True, "height": self.height, "key": self.key.hex(),
                "value": None if self.value is None else self.value.hex(), "state_root": self.state_root.hex(),
                "app_hash": self.app_hash.hex(), "certified_by": {
                    "height": c.height, "block_hash": c.block_hash.hex(), "signed_power": c.signed_power,
                    "total_power": c.total_power}}


def _answer(doc: Any, what: str) -> dict[str, Any]:
    """The node's JSON answer, which must be an object (a node can send any JSON value)."""
    if not isinstance(doc, dict):
        raise VerifyError(f"the node's {what} answer is not a JSON object")
    return doc


def _hex(doc: dict[str, Any], name: str, size: int | None = None) -> bytes:
    raw = doc.get(name)
    if not isinstance(raw, str):
        raise VerifyError(f"the node's answer has no {name}")
    try:
        out = bytes.fromhex(raw)
    except ValueError:
        raise VerifyError(f"the node's {name} is not hex") from None
    if size is not None and len(out) != size:
        raise VerifyError(f"the node's {name} is not {size} bytes")
    return out


def check_block(genesis: Genesis, height: int, doc: dict[str, Any]) -> Certified:
    """Block ``height`` from a ``/block`` answer, its certificate checked against the
    genesis validator set."""
    try:
        block = Block.decode(_hex(doc, "raw_block"))
        cert = CommitCertificate.decode(_hex(doc, "raw_certificate"))
    except VerifyError:
        raise
    except Exception as err:  # a decoder's refusal of a forged or damaged encoding
        raise VerifyError(f"block {height} does not decode: {err}") from None
    if block.header.chain_id != genesis.chain_id:
        raise VerifyError(f"block {height} is of chain {block.header.chain_id!r}, not {genesis.chain_id!r}")
    if block.height != height or cert.height != height:
        raise VerifyError(f"asked for block {height}, the node sent block {block.height} "
                          f"with a certificate for {cert.height}")
    if cert.block_hash != block.hash:
        raise VerifyError(f"the certificate of block {height} commits another block")
    try:
        validators = ValidatorSet((v.pubkey, v.power) for v in genesis.validators)
    except ValueError as err:
        raise VerifyError(f"the trusted genesis has no usable validator set: {err}") from None
    try:
        cert.must_verify(validators, genesis.chain_id)
    except CertificateError as err:
        raise VerifyError(f"the certificate of block {height} does not check against the genesis "
                          f"validators: {err}") from None
    signed = sum(validators.power_of(pk) for pk, _sig in cert.precommits)
    return Certified(height, block.hash, block.header.prev_app_hash, signed, validators.total_power)


def parse_proof(doc: Any) -> Proof:
    """The ``proof`` object of a ``/proof`` answer."""
    if not isinstance(doc, dict):
        raise VerifyError("the node's answer has no proof")
    try:
        siblings = doc.get("siblings")
        leaf = doc.get("leaf")
        if not isinstance(siblings, list) or len(siblings) > MAX_DEPTH:
            raise ValueError(f"a proof has a list of at most {MAX_DEPTH} siblings")
        raw_leaf = None if leaf is None else [bytes.fromhex(x) for x in leaf]
        return Proof.from_wire([[bytes.fromhex(s) for s in siblings], raw_leaf])
    except (ValueError, TypeError) as err:
        raise VerifyError(f"the node's proof is malformed: {err}") from None


def check_proof(genesis: Genesis, key: bytes, height: int, doc: dict[str, Any], block: Certified) -> Verified:
    """The ``/proof`` answer ``doc`` for ``key`` at ``height``, against block ``height + 1``."""
    doc = _answer(doc, "/proof")
    if doc.get("height") != height:
        raise VerifyError(f"asked for height {height}, the node answered for {doc.get('height')!r}")
    if _hex(doc, "key") != key:
        raise VerifyError("the node answered for another key")
    if block.height != height + 1:
        raise VerifyError(f"the state after block {height} is certified by block {height + 1}, not {block.height}")
    value = None if doc.get("value") is None else _hex(doc, "value")
    proof = parse_proof(doc.get("proof"))
    root = _hex(doc, "state_root", 32)
    expected = app_hash(genesis.hash(), root)
    if block.prev_app_hash != expected:
        raise VerifyError(f"the state root the node sent does not give the app hash block {block.height} "
                          f"certifies ({block.prev_app_hash.hex()[:16]}..., the root gives {expected.hex()[:16]}...)")
    if "app_hash" in doc and doc["app_hash"] != expected.hex():
        raise VerifyError("the node's app hash is not the one its state root gives")
    if not verify(root, key, value, proof):
        shown = "absent" if value is None else "this value"
        raise VerifyError(f"the proof does not show the record {key.hex()} {shown} under the certified state root")
    return Verified(height, key, value, root, expected, block)


def verify_keys(fetch: Fetch, genesis: Genesis, keys: Sequence[bytes], height: int | None = None) -> list[Verified]:
    """Fetch and check ``keys`` at one height (default: the node's newest provable one, the
    height the first answer names). One ``/block`` fetch serves every key."""
    if not keys:
        return []
    first = fetch("/proof", {"key": keys[0].hex(), **({} if height is None else {"height": height})})
    h = _answer(first, "/proof").get("height")
    if not isinstance(h, int) or isinstance(h, bool) or h < 0 or (height is not None and h != height):
        raise VerifyError(f"the node answered for height {h!r}")
    block = check_block(genesis, h + 1, fetch("/block", {"height": h + 1}))
    out = [check_proof(genesis, keys[0], h, first, block)]
    for key in keys[1:]:
        out.append(check_proof(genesis, key, h, fetch("/proof", {"key": key.hex(), "height": h}), block))
    return out
