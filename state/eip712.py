"""Ethereum-style signatures: keccak, the two EIP-712 messages Hyperliquid clients sign, and
secp256k1 public-key recovery.

Hyperliquid's clients sign two kinds of EIP-712 typed data (its SDK's ``utils/signing.py``):

- an L1 action (orders, cancels, leverage, ...) as the ``Agent`` "phantom agent"
  ``{source, connectionId}`` in the domain ``Exchange / 1 / chainId 1337``, where
  ``connectionId = keccak(msgpack(action) || nonce(8, big-endian) || vault flag [|| vault
  address(20)] [|| 0x00 || expiresAfter(8)])`` and ``source`` is ``"a"`` on Hyperliquid's
  mainnet, ``"b"`` elsewhere;
- a user-signed action (sending funds, withdrawing, approving an agent) as
  ``HyperliquidTransaction:<Name>`` with the action's own fields, in the domain
  ``HyperliquidSignTransaction / 1 / signatureChainId``.

Only these fixed schemas are hashed here (no general EIP-712 encoder): a struct hash is the
keccak of its type hash and its fields, each encoded as EIP-712 says (``string``: keccak of
its UTF-8 bytes; ``address``: 12 zero bytes and the 20 address bytes; ``uint64`` and
``uint256``: 32 big-endian bytes; ``bool``: 0 or 1 as uint256; ``bytes32``: itself).

The signer is the address the signature recovers: the last 20 bytes of keccak(uncompressed
public key without its 0x04 prefix). A signature is ``r || s || v`` with v in {27, 28} (clients that
send 0 or 1 are normalised before the bytes go on chain), and ``s`` must be in the lower half
of the group order (EIP-2), so each signed message has one signature encoding. Recovery is libsecp256k1's (coincurve), keccak is
eth-hash's (pycryptodome backend); both are deterministic functions of their input, so
``state/`` may call them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from coincurve import PrivateKey as _SecpPrivateKey
from coincurve import PublicKey as _SecpPublicKey
from eth_hash.auto import keccak as _keccak

SECP256K1_N: Final = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
HALF_N: Final = SECP256K1_N // 2
SIGNATURE_LEN: Final = 65  # r(32) || s(32) || v(1)
ZERO_ADDRESS: Final = bytes(20)

#: The L1 ("phantom agent") domain and the chain the SDK calls Hyperliquid's mainnet.
L1_CHAIN_ID: Final = 1337
MAINNET_SOURCE: Final = "a"
TESTNET_SOURCE: Final = "b"

#: One field of a user-signed type: (name, EIP-712 type), in the type's order.
FieldSpec = tuple[str, str]


def keccak(data: bytes) -> bytes:
    return bytes(_keccak(data))


def _type_hash(primary: str, fields: Sequence[FieldSpec]) -> bytes:
    return keccak(f"{primary}({','.join(f'{t} {n}' for n, t in fields)})".encode())


_DOMAIN_FIELDS: Final = (("name", "string"), ("version", "string"), ("chainId", "uint256"),
                         ("verifyingContract", "address"))
_DOMAIN_TYPE_HASH: Final = _type_hash("EIP712Domain", _DOMAIN_FIELDS)
_AGENT_TYPE_HASH: Final = _type_hash("Agent", (("source", "string"), ("connectionId", "bytes32")))


def _uint(value: int) -> bytes:
    return value.to_bytes(32, "big")


def encode_field(kind: str, value: str | int | bool | bytes) -> bytes:
    """One EIP-712 field, 32 bytes. Raises ValueError on a value its type cannot hold."""
    if kind == "string":
        if not isinstance(value, str):
            raise ValueError("a string field needs text")
        return keccak(value.encode())
    if kind == "address":
        raw = bytes.fromhex(value[2:] if isinstance(value, str) and value[:2] in ("0x", "0X") else str(value))
        if len(raw) != 20:
            raise ValueError("an address is 20 bytes")
        return bytes(12) + raw
    if kind == "bool":
        if not isinstance(value, bool):
            raise ValueError("a bool field needs true or false")
        return _uint(int(value))
    if kind in ("uint64", "uint256"):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0 or value >= 1 << int(kind[4:]):
            raise ValueError(f"a {kind} field needs an integer in its range")
        return _uint(value)
    if kind == "bytes32":
        if not isinstance(value, bytes) or len(value) != 32:
            raise ValueError("a bytes32 field needs 32 bytes")
        return value
    raise ValueError(f"unsupported EIP-712 type {kind}")


def domain_separator(name: str, version: str, chain_id: int, verifying_contract: bytes = ZERO_ADDRESS) -> bytes:
    return keccak(_DOMAIN_TYPE_HASH + keccak(name.encode()) + keccak(version.encode()) + _uint(chain_id)
                  + bytes(12) + verifying_contract)


_L1_DOMAIN: Final = domain_separator("Exchange", "1", L1_CHAIN_ID)


def typed_digest(domain: bytes, struct_hash: bytes) -> bytes:
    """The 32 bytes an EIP-712 signature signs: keccak(0x19 0x01 || domain || struct)."""
    return keccak(b"\x19\x01" + domain + struct_hash)


def l1_connection_id(action_bytes: bytes, nonce: int, vault: bytes | None, expires_after: int | None) -> bytes:
    """The phantom agent's ``connectionId``: the hash of the msgpack action as signed, the
    nonce, the vault (sub-account) it acts for, and the optional expiry."""
    data = action_bytes + nonce.to_bytes(8, "big")
    data += b"\x00" if vault is None else b"\x01" + vault
    if expires_after is not None:
        data += b"\x00" + expires_after.to_bytes(8, "big")
    return keccak(data)


def l1_digest(connection_id: bytes, source: str) -> bytes:
    struct = keccak(_AGENT_TYPE_HASH + keccak(source.encode()) + connection_id)
    return typed_digest(_L1_DOMAIN, struct)


def user_signed_digest(primary_type: str, fields: Sequence[FieldSpec],
                       values: dict[str, str | int | bool | bytes], signature_chain_id: int) -> bytes:
    """The digest of a ``HyperliquidTransaction:*`` message. Raises ValueError (or KeyError on
    a missing field) when ``values`` do not fit the type."""
    struct = _type_hash(primary_type, fields) + b"".join(encode_field(t, values[n]) for n, t in fields)
    domain = domain_separator("HyperliquidSignTransaction", "1", signature_chain_id)
    return typed_digest(domain, keccak(struct))


def checksum_address(address: bytes) -> str:
    """EIP-55's spelling of a 20-byte address: ``0x`` and hex digits, a letter upper case
    where the matching nibble of keccak(lowercase hex) is 8 or more. What eth_account's
    ``Account.address`` gives, so what the Hyperliquid SDK signs and posts."""
    digits = address.hex()
    nibbles = keccak(digits.encode()).hex()[:40]
    return "0x" + "".join(c.upper() if c.isalpha() and int(n, 16) >= 8 else c for c, n in zip(digits, nibbles, strict=True))


def address_of_pubkey(uncompressed: bytes) -> bytes:
    """An Ethereum address: the last 20 bytes of keccak(x || y)."""
    return keccak(uncompressed[1:])[12:]


def recover(digest: bytes, signature: bytes) -> bytes | None:
    """The address whose key signed ``digest`` with ``signature`` (r || s || v), or None when
    the signature is not a canonical, recoverable one."""
    if len(signature) != SIGNATURE_LEN or len(digest) != 32:
        return None
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    recid = signature[64] - 27  # v is 27 or 28 on chain (one encoding per signature)
    if not (0 < r < SECP256K1_N and 0 < s <= HALF_N) or recid not in (0, 1):
        return None
    try:
        key = _SecpPublicKey.from_signature_and_message(signature[:64] + bytes([recid]), digest, hasher=None)
    except (ValueError, TypeError):
        return None
    return address_of_pubkey(key.format(compressed=False))


class EthKey:
    """A secp256k1 signing key (Ethereum style): used by the CLI, the devnet and tests to
    sign Hyperliquid-style actions; the chain only ever recovers."""

    __slots__ = ("_key", "address")

    def __init__(self, secret: bytes) -> None:
        if len(secret) != 32 or not 0 < int.from_bytes(secret, "big") < SECP256K1_N:
            raise ValueError("a secp256k1 private key is 32 bytes in 1..n-1")
        self._key = _SecpPrivateKey(secret)
        self.address: bytes = address_of_pubkey(self._key.public_key.format(compressed=False))

    @classmethod
    def generate(cls) -> EthKey:
        import os  # key generation is the one place randomness is wanted; never in apply paths

        while True:
            secret = os.urandom(32)
            if 0 < int.from_bytes(secret, "big") < SECP256K1_N:
                return cls(secret)

    @classmethod
    def from_hex(cls, text: str) -> EthKey:
        return cls(bytes.fromhex(text[2:] if text[:2] in ("0x", "0X") else text))

    @property
    def pubkey(self) -> bytes:
        """The compressed public key (33 bytes)."""
        return bytes(self._key.public_key.format(compressed=True))

    @property
    def secret(self) -> bytes:
        return bytes(self._key.secret)

    def hex(self) -> str:
        return "0x" + self.secret.hex()

    def sign_digest(self, digest: bytes) -> bytes:
        """r || s || v (v = 27 + recovery id), s in the lower half as libsecp256k1 makes it."""
        sig = self._key.sign_recoverable(digest, hasher=None)
        return bytes(sig[:64]) + bytes([27 + sig[64]])  # bytes(): coincurve is untyped where it is not installed (a wheel build)
