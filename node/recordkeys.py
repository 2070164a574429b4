"""Which state record a query names: ``kind`` plus its arguments, to a state store key.

Why one module: the RPC's ``/proof?kind=...`` and the light client (node/lightclient.py)
must turn the same words into the same key. The light client builds the key itself from
the genesis it trusts (a market or asset symbol resolved there), so a node cannot answer
for another record than the one asked about.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from typing import Final

from state import records
from state.errors import Code
from state.genesis import Genesis
from state.keys import PUBKEY_LEN, address_from_text, bytes_from_hex

MAX_OID: Final = (1 << 64) - 1  # order ids are 8-byte keys
MAX_HEIGHT: Final = (1 << 64) - 1  # an offence's height is an 8-byte key


class KeyRefError(ValueError):
    """A reference that names no record: ``code`` is the registry code to answer with."""

    def __init__(self, code: Code, message: str) -> None:
        super().__init__(message)
        self.code = code


def _arg(args: Mapping[str, str], name: str, kind: str) -> str:
    value = args.get(name)
    if value is None or value == "":
        raise KeyRefError(Code.MALFORMED, f"kind={kind} needs {name}")
    return value


def _address(args: Mapping[str, str], kind: str) -> bytes:
    try:
        return address_from_text(_arg(args, "address", kind))
    except ValueError as err:
        raise KeyRefError(Code.MALFORMED, f"address: {err}") from None


def _uint(args: Mapping[str, str], name: str, kind: str, hi: int) -> int:
    raw = _arg(args, name, kind)
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 20) or int(raw) > hi:
        raise KeyRefError(Code.MALFORMED, f"{name} must be an integer in [0, {hi}]")
    return int(raw)


def _named(ref: str, named: dict[str, int], code: Code, noun: str) -> int:
    """The id ``ref`` names: its digits or its symbol (any case), among ``named``."""
    text = ref.strip()
    for symbol, ident in named.items():
        if text == str(ident) or text.lower() == symbol.lower():
            return ident
    raise KeyRefError(code, f"unknown {noun} {ref!r}; {noun}s: {', '.join(named)}")


def asset_id(genesis: Genesis, ref: str) -> int:
    """An asset id (digits) or symbol (any case) of ``genesis``."""
    return _named(ref, {a.symbol: a.asset_id for a in genesis.assets}, Code.UNKNOWN_ASSET, "asset")


def market_id(genesis: Genesis, ref: str) -> int:
    """A market id (digits) or symbol (any case) of ``genesis``."""
    return _named(ref, {m.symbol: m.market_id for m in genesis.markets}, Code.UNKNOWN_MARKET, "market")


def validator_key(genesis: Genesis, ref: str) -> bytes:
    """A validator's public key: ``ref`` is its 64 hex digits (``0x`` optional; any key, as
    an ``address`` may name any account), or a genesis validator's index (digits, as the
    oracle kind's ``validator``) or name (any case)."""
    body = ref[2:] if ref.startswith(("0x", "0X")) else ref
    if len(body) == 2 * PUBKEY_LEN:
        with contextlib.suppress(ValueError):  # not hex: perhaps a name that long
            return bytes_from_hex(body)
    index = _named(ref, {v.name: i for i, v in enumerate(genesis.validators)}, Code.NOT_A_VALIDATOR, "validator")
    return genesis.validators[index].pubkey


def _offence(genesis: Genesis, args: Mapping[str, str], kind: str) -> bytes:
    """An offence (state/offences.py) is keyed by its height and the validator: the height
    is ``offence_height``, since ``height`` is the height the proof is asked for."""
    return records.offence_key(_uint(args, "offence_height", kind, MAX_HEIGHT),
                               validator_key(genesis, _arg(args, "validator", kind)))


def _by_address(make: Callable[[bytes], bytes]) -> Callable[[Genesis, Mapping[str, str], str], bytes]:
    return lambda _g, args, kind: make(_address(args, kind))


KINDS: Final[dict[str, Callable[[Genesis, Mapping[str, str], str], bytes]]] = {
    "account": _by_address(records.account_key),
    "nonce": _by_address(records.nonce_key),
    "agent": _by_address(records.agent_key),
    "sub_account": _by_address(records.sub_account_key),
    "watch": _by_address(records.watch_key),
    "order": lambda _g, args, kind: records.order_key(_uint(args, "oid", kind, MAX_OID)),
    "trigger": lambda _g, args, kind: records.trigger_key(_uint(args, "oid", kind, MAX_OID)),
    "pool": lambda g, args, kind: records.pool_key(asset_id(g, _arg(args, "asset", kind))),
    "market": lambda g, args, kind: records.market_key(market_id(g, _arg(args, "market", kind))),
    "oracle": lambda g, args, kind: records.oracle_key(asset_id(g, _arg(args, "asset", kind)),
                                                       _uint(args, "validator", kind, 0xFFFF)),
    "offence": _offence,
    "counters": lambda _g, _args, _kind: records.COUNTERS_KEY,
}


def key_for(genesis: Genesis, kind: str, args: Mapping[str, str]) -> bytes:
    """The state key ``kind`` names with ``args`` (``address``, ``oid``, ``asset``, ``market``,
    ``validator``, ``offence_height`` as the kind needs); raises ``KeyRefError``."""
    make = KINDS.get(kind)
    if make is None:
        raise KeyRefError(Code.MALFORMED, f"unknown kind {kind!r}; kinds: {', '.join(KINDS)}")
    return make(genesis, args, kind)
