"""Hyperliquid-signed transactions: the second kind of transaction a block carries.

A client of Hyperliquid's API (its Python SDK, ccxt) signs an action with an Ethereum key
(state/eip712.py). bookchain does not translate that signature into one of its own: the
action bytes, nonce and signature travel on chain as they were signed, and every node
recovers the signer itself, so both kinds of transaction share blocks, nonce sets, accounts
and replay. Wire form, a msgpack array of six::

    ["hl", action: bin (msgpack of the action map, as signed), nonce: uint,
     vault: bin20 | nil, expires_after: uint | nil, signature: bin65 (r || s || v)]

The leading ``"hl"`` string tells it from a native transaction (whose first element is a
32-byte key). ``action`` is the exact byte string an L1 signature hashes; it must be the
canonical msgpack of the map it holds (the SDK packs with msgpack's defaults, whose output
is canonical), so a transaction has one encoding. Its values are maps with text keys, text,
integers, booleans, nil and arrays: no floats (prices and sizes are decimal strings).

Two signing schemes, chosen by the action's ``type`` as Hyperliquid chooses them:

- L1 actions (orders, cancels, leverage, sub-accounts, ...): the phantom agent over
  ``keccak(action || nonce || vault || expires_after)`` with source ``"b"``, the source the
  SDK uses for any endpoint that is not Hyperliquid's mainnet. A signature made for another
  source recovers another address, which holds nothing here.
- user-signed actions (``usdSend``, ``spotSend``, ``withdraw3``, ``approveAgent``,
  ``usdClassTransfer``): ``HyperliquidTransaction:*`` typed data with the action's fields;
  ``hyperliquidChain`` must be ``"Testnet"`` (``WRONG_CHAIN`` otherwise), the envelope's
  nonce must equal the action's ``time``/``nonce`` field (the one the signature covers), and
  there is no vault or expiry (Hyperliquid signs neither for these).

Decoding recovers the signer (about 50 µs with libsecp256k1 on the benchmark machine): the
result is a ``SignedTx`` whose ``signer`` is that Ethereum address and whose action is an
``HlAction``, mapped onto native actions when the block applies it (state/hlexec.py), where
the markets are known.

A caveat every Hyperliquid-compatible chain shares: the signed bytes name no chain beyond
the source / ``hyperliquidChain`` field, so an action signed for Hyperliquid's testnet by a
key also used here could be replayed here (within its nonce window). Use keys made for the
chain (``bookchain keys add --eth``, the devnet's printed test keys).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Final

import msgpack

from state import eip712
from state.codec import decode, encode, must_bytes, must_list, must_uint
from state.errors import Code, TxError
from state.keys import bytes_from_hex
from state.units import MAX_TIME_MS

MARKER: Final = "hl"
PREFIX: Final = b"\x96\xa2hl"  # fixarray(6), fixstr(2) "hl": how decode_tx tells the kinds apart
MAX_ACTION_BYTES: Final = 12 * 1024
MAX_DEPTH: Final = 6
CHAIN_NAME: Final = "Testnet"  # hyperliquidChain of user-signed actions
SOURCE: Final = eip712.TESTNET_SOURCE  # the phantom agent's source of L1 actions

_CHAIN: Final = ("hyperliquidChain", "string")
#: user-signed action type -> (EIP-712 primary type, fields in order, the field holding the nonce)
USER_SIGNED: Final[dict[str, tuple[str, tuple[eip712.FieldSpec, ...], str]]] = {
    "usdSend": ("HyperliquidTransaction:UsdSend",
                (_CHAIN, ("destination", "string"), ("amount", "string"), ("time", "uint64")), "time"),
    "spotSend": ("HyperliquidTransaction:SpotSend",
                 (_CHAIN, ("destination", "string"), ("token", "string"), ("amount", "string"),
                  ("time", "uint64")), "time"),
    "withdraw3": ("HyperliquidTransaction:Withdraw",
                  (_CHAIN, ("destination", "string"), ("amount", "string"), ("time", "uint64")), "time"),
    "approveAgent": ("HyperliquidTransaction:ApproveAgent",
                     (_CHAIN, ("agentAddress", "address"), ("agentName", "string"), ("nonce", "uint64")), "nonce"),
    "usdClassTransfer": ("HyperliquidTransaction:UsdClassTransfer",
                         (_CHAIN, ("amount", "string"), ("toPerp", "bool"), ("nonce", "uint64")), "nonce"),
}

#: L1 action types the chain executes (state/hlexec.py maps each onto native actions)
L1_TYPES: Final = frozenset({
    "order", "cancel", "cancelByCloid", "modify", "batchModify", "scheduleCancel", "updateLeverage",
    "updateIsolatedMargin", "createSubAccount", "subAccountTransfer", "subAccountSpotTransfer", "noop",
    "borrowLend",
})


@dataclass(frozen=True, slots=True)
class HlAction:
    """A Hyperliquid action as signed: its ``type``, its whole map (``body``, ``type``
    included), and the sub-account (``vault``) an L1 action acts for."""

    type: str
    body: dict[str, Any]
    vault: bytes | None
    user_signed: bool


def is_hl(raw: bytes) -> bool:
    return raw[:4] == PREFIX


def _plain(value: Any, depth: int = 0) -> None:
    """Refuse values a Hyperliquid action never holds (floats, binary, deep nesting)."""
    kind = type(value)
    if kind in (str, int, bool) or value is None:
        return
    if depth >= MAX_DEPTH:
        raise TxError(Code.MALFORMED, "the action nests too deeply")
    if kind is list:
        for item in value:
            _plain(item, depth + 1)
    elif kind is dict:
        for item in value.values():
            _plain(item, depth + 1)
    else:
        raise TxError(Code.MALFORMED, f"an action holds no {kind.__name__} values (numbers are decimal strings)")


def parse_action_bytes(action_bytes: bytes) -> dict[str, Any]:
    """The action map of ``action_bytes``: canonical msgpack of a map with a known ``type``."""
    obj = decode(action_bytes, max_bytes=MAX_ACTION_BYTES, allow_maps=True)
    if type(obj) is not dict:
        raise TxError(Code.MALFORMED, "a Hyperliquid action is a map")
    _plain(obj)
    if msgpack.packb(obj, use_bin_type=True) != action_bytes:
        raise TxError(Code.MALFORMED, "non-canonical action encoding")
    kind = obj.get("type")
    if type(kind) is not str:
        raise TxError(Code.MALFORMED, "an action has a text 'type'")
    if kind not in L1_TYPES and kind not in USER_SIGNED:
        raise TxError(Code.UNKNOWN_TX_TYPE, f"unsupported action type {kind!r}")
    return obj


def _user_signed_digest(body: dict[str, Any], nonce: int) -> bytes:
    primary, fields, nonce_field = USER_SIGNED[body["type"]]
    if body.get("hyperliquidChain") != CHAIN_NAME:
        raise TxError(Code.WRONG_CHAIN, f"hyperliquidChain must be {CHAIN_NAME!r} on this chain")
    if body.get(nonce_field) != nonce:
        raise TxError(Code.MALFORMED, f"the nonce must equal the action's {nonce_field!r}")
    # One encoding per signed action: the signature covers the fields, the chain id's value
    # and the type, not their spelling or what else the map holds, so a third party could
    # otherwise re-spell a pending tx (another hash, the same signer and nonce) and race it
    unsigned = set(body) - {"type", "signatureChainId"} - {name for name, _ in fields}
    if unsigned:
        raise TxError(Code.MALFORMED, f"{body['type']}: fields no signature covers: {sorted(map(str, unsigned))}")
    chain_text = body.get("signatureChainId")
    try:
        if type(chain_text) is not str or not chain_text.startswith("0x") or len(chain_text) > 66:
            raise ValueError("signatureChainId is 0x and hex digits")
        chain_id = int(chain_text[2:], 16)
        if chain_text != hex(chain_id):
            raise ValueError("signatureChainId is 0x and lowercase hex digits without leading zeros")
        for name, kind in fields:
            # an EIP-712 address is signed as its 20 bytes, whatever the case of its hex, so
            # each spelling would be another tx (another hash) under the same signature: one
            # spelling is valid, EIP-55's, which the Hyperliquid SDK posts (Account.address)
            if kind == "address" and name in body:
                text = body[name]
                if (type(text) is not str or len(text) != 42 or text[:2] != "0x"
                        or text != eip712.checksum_address(bytes_from_hex(text[2:]))):
                    raise ValueError(f"{name} must be an address spelled as its EIP-55 checksum "
                                     "(0x and mixed-case hex, as the Hyperliquid SDK sends it)")
        if body["type"] == "approveAgent" and "agentName" not in body:
            # the SDK's approve_agent() without a name signs agentName "" and then deletes the
            # field from the action it posts; Hyperliquid reads the missing name as ""
            body = {**body, "agentName": ""}
        return eip712.user_signed_digest(primary, fields, body, chain_id)
    except (KeyError, ValueError) as err:
        raise TxError(Code.MALFORMED, f"{body['type']}: {err}") from None


def recover_signer(action_bytes: bytes, body: dict[str, Any], nonce: int, vault: bytes | None,
                   expires_after: int | None, signature: bytes) -> bytes:
    """The address that signed; ``BAD_SIGNATURE`` when nothing can be recovered."""
    if body["type"] in USER_SIGNED:
        if vault is not None or expires_after is not None:
            raise TxError(Code.MALFORMED, "a user-signed action has no vault and no expiry")
        digest = _user_signed_digest(body, nonce)
    else:
        digest = eip712.l1_digest(eip712.l1_connection_id(action_bytes, nonce, vault, expires_after), SOURCE)
    signer = eip712.recover(digest, signature)
    if signer is None:
        raise TxError(Code.BAD_SIGNATURE, "the signature recovers no key")
    return signer


@dataclass(frozen=True, slots=True)
class HlEnvelope:
    """The decoded wire form, before the signer is recovered."""

    action_bytes: bytes
    body: dict[str, Any]
    nonce: int
    vault: bytes | None
    expires_after: int | None
    signature: bytes

    @property
    def action(self) -> HlAction:
        return HlAction(self.body["type"], self.body, self.vault, self.body["type"] in USER_SIGNED)

    def signer(self) -> bytes:
        return recover_signer(self.action_bytes, self.body, self.nonce, self.vault, self.expires_after,
                              self.signature)


def decode_envelope(raw: bytes, max_bytes: int) -> HlEnvelope:
    items = must_list(decode(raw, max_bytes=max_bytes), "tx", length=6)
    if items[0] != MARKER:
        raise TxError(Code.MALFORMED, "not a Hyperliquid transaction")
    action_bytes = must_bytes(items[1], "action", max_len=MAX_ACTION_BYTES)
    nonce = must_uint(items[2], "nonce")
    vault = None if items[3] is None else must_bytes(items[3], "vault", 20)
    expires_after = None if items[4] is None else must_uint(items[4], "expires_after", hi=MAX_TIME_MS)
    signature = must_bytes(items[5], "signature", eip712.SIGNATURE_LEN)
    return HlEnvelope(action_bytes, parse_action_bytes(action_bytes), nonce, vault, expires_after, signature)


def encode_tx(action_bytes: bytes, nonce: int, vault: bytes | None, expires_after: int | None,
              signature: bytes) -> bytes:
    return encode([MARKER, action_bytes, nonce, vault, expires_after, signature])


def tx_hash(raw: bytes) -> bytes:
    return hashlib.sha256(raw).digest()


# ---------------------------------------------------------------------------- from clients
def _hex_bytes(value: Any, what: str, length: int | None = None) -> bytes:
    if type(value) is not str or not value.startswith(("0x", "0X")):
        raise TxError(Code.MALFORMED, f"{what} must be 0x-prefixed hex")
    try:
        raw = bytes_from_hex(value[2:] if len(value) % 2 == 0 else "0" + value[2:])
    except ValueError:
        raise TxError(Code.MALFORMED, f"{what} must be 0x-prefixed hex") from None
    if length is not None:
        if len(raw) > length:
            raise TxError(Code.MALFORMED, f"{what} is longer than {length} bytes")
        raw = raw.rjust(length, b"\x00")
    return raw


def signature_from_json(sig: Any) -> bytes:
    """``{"r": "0x..", "s": "0x..", "v": 27}`` (the SDK's shape) -> r || s || v."""
    if type(sig) is not dict:
        raise TxError(Code.MALFORMED, "signature must be {r, s, v}")
    v = sig.get("v")
    if type(v) is not int or v not in (0, 1, 27, 28):
        raise TxError(Code.MALFORMED, "signature v must be 27 or 28")
    v = v + 27 if v < 27 else v  # one encoding on chain: 27 or 28
    return _hex_bytes(sig.get("r"), "signature r", 32) + _hex_bytes(sig.get("s"), "signature s", 32) + bytes([v])


def tx_from_request(body: Any) -> bytes:
    """The on-chain bytes of a ``POST /exchange`` body ``{action, nonce, signature,
    vaultAddress?, expiresAfter?}``. Raises TxError on a body no client could have signed."""
    if type(body) is not dict:
        raise TxError(Code.MALFORMED, "the request is a JSON object")
    action = body.get("action")
    if type(action) is not dict:
        raise TxError(Code.MALFORMED, "action must be an object")
    nonce = must_uint(body.get("nonce"), "nonce")
    kind = action.get("type")
    user_signed = type(kind) is str and kind in USER_SIGNED  # a list or map there is unhashable
    vault_text = body.get("vaultAddress")
    vault = None if vault_text is None or user_signed else _hex_bytes(vault_text, "vaultAddress", 20)
    expires = body.get("expiresAfter")
    expires_after = None if expires is None or user_signed else must_uint(expires, "expiresAfter", hi=MAX_TIME_MS)
    _plain(action)
    try:
        action_bytes = msgpack.packb(action, use_bin_type=True)
    except (TypeError, ValueError, OverflowError):
        raise TxError(Code.MALFORMED, "the action cannot be encoded") from None
    raw = encode_tx(action_bytes, nonce, vault, expires_after, signature_from_json(body.get("signature")))
    decode_envelope(raw, max_bytes=len(raw))  # the same checks a block applies
    return raw


def sign_l1(key: eip712.EthKey, action: dict[str, Any], nonce: int, vault: bytes | None = None,
            expires_after: int | None = None) -> bytes:
    """Sign an L1 action as the SDK does and return the on-chain bytes."""
    action_bytes = msgpack.packb(action, use_bin_type=True)
    cid = eip712.l1_connection_id(action_bytes, nonce, vault, expires_after)
    return encode_tx(action_bytes, nonce, vault, expires_after, key.sign_digest(eip712.l1_digest(cid, SOURCE)))


def sign_user(key: eip712.EthKey, action: dict[str, Any], signature_chain_id: int = 0x66EEE) -> bytes:
    """Sign a user-signed action (its nonce field set by the caller) as the SDK does."""
    body = {**action, "signatureChainId": hex(signature_chain_id), "hyperliquidChain": CHAIN_NAME}
    primary, fields, nonce_field = USER_SIGNED[body["type"]]
    digest = eip712.user_signed_digest(primary, fields, body, signature_chain_id)
    return encode_tx(msgpack.packb(body, use_bin_type=True), body[nonce_field], None, None, key.sign_digest(digest))
