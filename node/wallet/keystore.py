"""Named signing keys in the CLI home: ``HOME/keys/NAME.json`` = {"seed","pubkey","address"}.

Two schemes: ed25519 (the chain's native transactions; the file has no ``scheme`` field, so
every file written before secp256k1 keys existed loads unchanged) and secp256k1, an
Ethereum key that signs Hyperliquid-style actions (state/hltx.py), whose file says
``"scheme": "secp256k1"`` and whose address is the Ethereum one (keccak of the public key).

Why plain JSON files with mode 0600 and no passphrase: this is a devnet tool, the same
trade-off CometBFT's ``priv_validator_key.json`` makes. Files are created with
``O_EXCL`` and mode 0600 from the first byte (never chmod-after-write, which leaves a
window where the seed is world-readable) inside a 0700 directory. Loading re-derives the
public key from the seed and refuses a file whose stored pubkey/address disagree, so a
hand-edited file cannot make the CLI sign as someone it does not show.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from state.eip712 import EthKey
from state.keys import PrivateKey, address_to_text

SCHEME_ED25519 = "ed25519"
SCHEME_SECP256K1 = "secp256k1"
SCHEMES = (SCHEME_ED25519, SCHEME_SECP256K1)

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
DEFAULT_HOME = "~/.bookchain"
HOME_ENV = "BOOKCHAIN_HOME"


class KeyStoreError(Exception):
    """A key is missing, already exists, has a bad name, or its file is corrupt."""


def default_home() -> Path:
    return Path(os.environ.get(HOME_ENV) or DEFAULT_HOME).expanduser()


class _KeyViews:
    """What a stored key shows, the same for both schemes: its ``key`` has ``hex()``,
    ``pubkey`` and ``address``."""

    __slots__ = ()
    name: str
    key: PrivateKey | EthKey
    scheme: str

    @property
    def secret_hex(self) -> str:
        return self.key.hex()

    @property
    def pubkey_hex(self) -> str:
        return self.key.pubkey.hex()

    @property
    def address(self) -> bytes:
        return self.key.address

    @property
    def address_text(self) -> str:
        return address_to_text(self.key.address)

    def public_json(self) -> dict[str, str]:
        """What ``keys show`` prints: never the seed."""
        return {"name": self.name, "scheme": self.scheme, "pubkey": self.pubkey_hex, "address": self.address_text}

    def file_json(self) -> dict[str, str]:
        """The key file; an ed25519 file has no ``scheme`` field (files from before secp256k1
        keys load unchanged)."""
        doc = {} if self.scheme == SCHEME_ED25519 else {"scheme": self.scheme}
        return {**doc, "seed": self.key.hex(), "pubkey": self.pubkey_hex, "address": self.address_text}


@dataclass(frozen=True, slots=True)
class KeyRecord(_KeyViews):
    """An ed25519 key: signs native transactions."""

    name: str
    key: PrivateKey
    scheme = SCHEME_ED25519


@dataclass(frozen=True, slots=True)
class EthKeyRecord(_KeyViews):
    """A secp256k1 (Ethereum) key: signs Hyperliquid-style actions, the ones its SDK and
    ccxt send; its pubkey is shown compressed (33 bytes), its address is Ethereum's."""

    name: str
    key: EthKey
    scheme = SCHEME_SECP256K1


#: A stored key of either scheme.
AnyKeyRecord = KeyRecord | EthKeyRecord


def check_name(name: str) -> str:
    if not NAME_RE.match(name):
        raise KeyStoreError(f"bad key name {name!r}: use letters, digits, '_', '-', '.' (max 64)")
    return name


def parse_seed(text: str) -> PrivateKey:
    body = text.strip().lower().removeprefix("0x")
    try:
        raw = bytes.fromhex(body)
    except ValueError:
        raise KeyStoreError("a seed is 64 hex digits") from None
    if len(raw) != 32:
        raise KeyStoreError(f"a seed is 32 bytes (64 hex digits), got {len(raw)} bytes")
    return PrivateKey(raw)


def parse_eth_key(text: str) -> EthKey:
    """A secp256k1 private key: 64 hex digits, ``0x`` optional (as wallets export it)."""
    body = text.strip().lower().removeprefix("0x")
    try:
        raw = bytes.fromhex(body)
    except ValueError:
        raise KeyStoreError("a secp256k1 private key is 64 hex digits (0x optional)") from None
    if len(raw) != 32:
        raise KeyStoreError(f"a secp256k1 private key is 32 bytes (64 hex digits), got {len(raw)} bytes")
    try:
        return EthKey(raw)
    except ValueError as err:
        raise KeyStoreError(str(err)) from None


def write_private_json(path: Path, doc: dict[str, str], *, overwrite: bool = False) -> None:
    """Write ``doc`` to ``path`` readable by the owner only, failing if it exists."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise KeyStoreError(f"{path} already exists") from None
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(doc, fh, indent=2)
        fh.write("\n")
    os.chmod(path, 0o600)  # O_TRUNC on an existing file keeps its old mode


class KeyStore:
    """The keys directory of one CLI home."""

    def __init__(self, home: str | os.PathLike[str]) -> None:
        self.home = Path(home).expanduser()
        self.dir = self.home / "keys"

    def path(self, name: str) -> Path:
        return self.dir / f"{check_name(name)}.json"

    def exists(self, name: str) -> bool:
        return self.path(name).exists()

    def names(self) -> list[str]:
        if not self.dir.is_dir():
            return []
        return sorted(p.stem for p in self.dir.glob("*.json") if NAME_RE.match(p.stem))

    def add(self, name: str, key: PrivateKey, *, overwrite: bool = False) -> KeyRecord:
        record = KeyRecord(check_name(name), key)
        write_private_json(self.path(name), record.file_json(), overwrite=overwrite)
        return record

    def create(self, name: str) -> KeyRecord:
        return self.add(name, PrivateKey.generate())

    def add_eth(self, name: str, key: EthKey, *, overwrite: bool = False) -> EthKeyRecord:
        record = EthKeyRecord(check_name(name), key)
        write_private_json(self.path(name), record.file_json(), overwrite=overwrite)
        return record

    def create_eth(self, name: str) -> EthKeyRecord:
        return self.add_eth(name, EthKey.generate())

    def load(self, name: str) -> KeyRecord:
        """An ed25519 key (what signs native transactions); a secp256k1 key is refused."""
        record = self.load_any(name)
        if not isinstance(record, KeyRecord):
            raise KeyStoreError(f"key {name!r} is a secp256k1 (Ethereum) key; this needs an ed25519 key")
        return record

    def load_any(self, name: str) -> AnyKeyRecord:
        """The key ``name`` of either scheme, checked against its stored pubkey and address."""
        path = self.path(name)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise KeyStoreError(self.unknown(name)) from None
        except ValueError as err:
            raise KeyStoreError(f"{path}: not JSON ({err})") from None
        except OSError as err:  # unreadable: permissions, a directory named NAME.json, an I/O error
            raise KeyStoreError(f"{path}: cannot be read ({err.strerror or err})") from None
        scheme = doc.get("scheme", SCHEME_ED25519) if isinstance(doc, dict) else SCHEME_ED25519
        if scheme not in SCHEMES:
            raise KeyStoreError(f"{path}: unknown scheme {scheme!r} (known: {', '.join(SCHEMES)})")
        record: AnyKeyRecord
        try:
            seed = doc["seed"]
            if scheme == SCHEME_SECP256K1:
                record = EthKeyRecord(name, parse_eth_key(seed))
            else:
                record = KeyRecord(name, parse_seed(seed))
        except (KeyError, TypeError, AttributeError):
            raise KeyStoreError(f"{path}: no seed") from None
        if doc.get("pubkey", record.pubkey_hex).lower() != record.pubkey_hex:
            raise KeyStoreError(f"{path}: pubkey does not match the seed")
        if doc.get("address", record.address_text).lower() != record.address_text:
            raise KeyStoreError(f"{path}: address does not match the seed")
        return record

    def unknown(self, name: str) -> str:
        """"No such key": a home with a few keys lists them; a bigger one shows at most four
        close names (difflib) and how to list them all."""
        names = self.names()
        text = f"unknown key {name!r} in {self.dir}"
        if not names:
            return text + " (it has no keys; create one with `bookchain keys new NAME`)"
        if len(names) <= 4:
            return text + f" (keys: {', '.join(names)})"
        close = difflib.get_close_matches(name, names, n=4, cutoff=0.6)
        if close:
            text += f"; did you mean {', '.join(close)}?"
        return text + f" ({len(names)} keys: list them with `bookchain keys list`)"

    def all(self) -> list[AnyKeyRecord]:
        return [self.load_any(n) for n in self.names()]

    def scan(self) -> tuple[list[AnyKeyRecord], list[KeyStoreError]]:
        """Every key that loads, and the refusal of each file that does not: one corrupt or
        unreadable file must not hide the others (``keys list`` shows both)."""
        records: list[AnyKeyRecord] = []
        bad: list[KeyStoreError] = []
        for name in self.names():
            try:
                records.append(self.load_any(name))
            except KeyStoreError as err:
                bad.append(err)
        return records, bad
