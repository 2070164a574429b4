"""ed25519 keys, addresses and domain-separated signatures.

Verification uses libsodium through PyNaCl: on this project's benchmark machine it verifies
about 1.7x faster than ``cryptography`` on the same keys (17.0k vs 9.9k verifications/s on
one core, see bench/state_apply.py), and it releases the GIL, so a thread pool scales
verification across cores. Keys and signatures are plain ed25519 either way. The chain's
rule for which signatures are valid is state/sigrule.py (libsodium's checks with the
cofactored equation, so batches can be verified at once: node/sigbatch.py).

Every signature covers ``domain || chain_id || payload``: the domain separates
transactions from consensus votes and proposals, the chain id separates chains, so a
devnet transaction cannot be replayed on another chain and a vote is never a valid tx.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

import nacl.bindings as sodium
from nacl.exceptions import BadSignatureError

from state import sigrule

PUBKEY_LEN: Final = 32
SIG_LEN: Final = 64
ADDRESS_LEN: Final = 20

DOMAIN_TX: Final = b"bookchain/tx/1\x00"
DOMAIN_PROPOSAL: Final = b"bookchain/proposal/1\x00"
DOMAIN_VOTE: Final = b"bookchain/vote/1\x00"


def address_of(pubkey: bytes) -> bytes:
    """An account address: the first 20 bytes of sha256(public key)."""
    return hashlib.sha256(pubkey).digest()[:ADDRESS_LEN]


def address_to_text(address: bytes) -> str:
    return "0x" + address.hex()


_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


def bytes_from_hex(text: str) -> bytes:
    """``bytes.fromhex`` without its tolerance of whitespace (which made ``"0x" + "11" * 19
    + "  "`` a 19-byte value); raises ValueError on anything but pairs of hex digits."""
    if not _HEX_DIGITS.issuperset(text):
        raise ValueError("not hex digits")
    return bytes.fromhex(text)


def address_from_text(text: str) -> bytes:
    """Parse ``0x`` + 40 hex digits; raises ValueError on anything else."""
    body = text[2:] if text.startswith(("0x", "0X")) else text
    raw = bytes_from_hex(body)
    if len(raw) != ADDRESS_LEN:
        raise ValueError(f"an address is {ADDRESS_LEN} bytes, got {len(raw)}")
    return raw


def signing_message(domain: bytes, chain_id: str, payload: bytes) -> bytes:
    return domain + chain_id.encode() + b"\x00" + payload


#: A check of one signature, ``(public key, message, signature) -> valid``: ``verify``, the
#: plain-Python rule ``sigrule.verify``, or a caller's cached form of either.
Check = Callable[[bytes, bytes, bytes], bool]


def verify(pubkey: bytes, message: bytes, signature: bytes) -> bool:
    """True when ``signature`` is a valid ed25519 signature of ``message`` by ``pubkey``
    under the chain's rule (state/sigrule.py: libsodium's checks, cofactored equation)."""
    return verify_by(sigrule.verify, pubkey, message, signature)


def verify_by(rule: Check, pubkey: bytes, message: bytes, signature: bytes) -> bool:
    """``verify`` with ``rule`` answering for what libsodium rejects: ``sigrule.verify`` here,
    the node's cache of its answers in its per-call verifier (node/sigbatch.py), so both
    answer by the same steps.

    libsodium answers first: every signature it accepts is valid under the rule. Only the
    ones it rejects are checked against the rule itself, which accepts a few more (crafted
    with a small-order component; no honest signer makes them)."""
    if len(pubkey) != PUBKEY_LEN or len(signature) != SIG_LEN:
        return False
    return sodium_accepts(pubkey, message, signature) or rule(pubkey, message, signature)


def sodium_accepts(pubkey: bytes, message: bytes, signature: bytes) -> bool:
    """libsodium's cofactorless check (fast; its yes is the chain rule's yes, its no is not
    the rule's no). Callers check the lengths first."""
    try:
        sodium.crypto_sign_open(signature + message, pubkey)
    except (BadSignatureError, ValueError, TypeError):
        return False
    return True


SigItem = tuple[bytes, bytes, bytes]  # (signature, message, public key)

#: How many of the items, from the first, are valid under the chain's rule: ``len(items)``
#: when all are. What consensus asks of whoever verifies for it (``valid_prefix`` below by
#: default, the node's batch verifier ``node.sigbatch.valid_prefix`` in a node): every
#: check it makes of several signatures (a certificate, a block's evidence) fails at the
#: first bad one, so a verifier may stop there.
PrefixVerifier = Callable[[Sequence[SigItem]], int]


def verify_each(items: Sequence[SigItem]) -> list[bool]:
    """``verify`` for each (signature, message, public key): the reference for batch
    verifiers (node/sigbatch.py must answer exactly this)."""
    return [verify(pk, msg, sig) for sig, msg, pk in items]


def valid_prefix(items: Sequence[SigItem]) -> int:
    """``PrefixVerifier`` by ``verify``, one item at a time, stopping at the first invalid
    one: a list of forged signatures costs one run of the chain rule in plain Python (a few
    ms), not one per signature. The default of consensus's checks (tests, replay, the light
    client); a node passes its batch verifier instead (node/sigbatch.py)."""
    return prefix_by(verify, items)


def prefix_by(check: Check, items: Sequence[SigItem]) -> int:
    """How many of ``items``, from the first, ``check`` accepts, one at a time: the loop of
    ``valid_prefix`` and of the node's per-call verifier (node/sigbatch.py)."""
    for i, (sig, msg, pk) in enumerate(items):
        if not check(pk, msg, sig):
            return i
    return len(items)


@dataclass(frozen=True, slots=True)
class PrivateKey:
    """An ed25519 signing key held as its 32-byte seed (the expanded key is derived once)."""

    seed: bytes
    _pk: bytes = field(init=False, repr=False, compare=False)
    _sk: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.seed) != 32:
            raise ValueError("an ed25519 seed is 32 bytes")
        pk, sk = sodium.crypto_sign_seed_keypair(self.seed)
        object.__setattr__(self, "_pk", bytes(pk))
        object.__setattr__(self, "_sk", bytes(sk))

    @classmethod
    def generate(cls) -> PrivateKey:
        import os  # key generation is the one place randomness is wanted; never in apply paths

        return cls(os.urandom(32))

    @classmethod
    def from_hex(cls, text: str) -> PrivateKey:
        return cls(bytes.fromhex(text))

    @property
    def pubkey(self) -> bytes:
        return self._pk

    @property
    def address(self) -> bytes:
        return address_of(self.pubkey)

    def sign(self, message: bytes) -> bytes:
        return bytes(sodium.crypto_sign(message, self._sk)[:SIG_LEN])

    def hex(self) -> str:
        return self.seed.hex()
