"""Persistent libp2p identity of a node.

Why persistent: peers find each other by ``/ip4/.../tcp/PORT/p2p/<peer id>`` addresses
written into configs and genesis files, and the Noise handshake checks that the remote
really owns that peer id. A node that generated a fresh key on every start would be a
stranger to its own validator set after a restart.

The key is an ed25519 private key stored in the libp2p protobuf encoding (the same
``crypto.pb`` ``PrivateKey`` message go-libp2p and rust-libp2p use), written atomically
(temp file, fsync, rename) with mode 0600 so that a crash mid-write never leaves a
truncated key behind and other local users cannot read it.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.crypto.keys import KeyPair, KeyType
from libp2p.crypto.serialization import deserialize_private_key
from libp2p.peer.id import ID

# Fixed by node/API.md (home layout): DIR/keys/p2p.key
KEY_RELPATH = Path("keys") / "p2p.key"


class IdentityError(Exception):
    """The key file exists but is not a usable ed25519 libp2p key."""


def key_path(home_dir: str | os.PathLike[str]) -> Path:
    """Where a node home directory keeps its libp2p key (``DIR/keys/p2p.key``)."""
    return Path(home_dir) / KEY_RELPATH


def resolve_key_path(home_or_key: str | os.PathLike[str]) -> Path:
    """Accept either a node home directory or the key file itself.

    A path is taken as the key file if it is an existing file or ends in ``.key``.
    """
    path = Path(home_or_key)
    if path.is_file() or path.suffix == ".key":
        return path
    return key_path(path)


def peer_id_of(key_pair: KeyPair) -> str:
    """Base58 peer id (``12D3KooW...``) derived from the public key."""
    return ID.from_pubkey(key_pair.public_key).to_base58()


def load(path: str | os.PathLike[str]) -> KeyPair:
    """Read an existing key file; raise ``IdentityError`` if it is not ed25519."""
    data = Path(path).read_bytes()
    try:
        private_key = deserialize_private_key(data)
    except Exception as exc:  # protobuf and key parsers raise assorted types
        raise IdentityError(f"{path}: not a libp2p private key ({exc})") from None
    if private_key.get_type() != KeyType.Ed25519:
        raise IdentityError(f"{path}: expected an ed25519 key, got {private_key.get_type()}")
    return KeyPair(private_key, private_key.get_public_key())


def save(path: str | os.PathLike[str], key_pair: KeyPair, *, overwrite: bool = True) -> None:
    """Write ``key_pair`` atomically with owner-only permissions.

    With ``overwrite=False`` the final step is ``link`` instead of ``rename``, so two
    processes creating the same identity concurrently cannot both win: the loser gets
    ``FileExistsError`` and should load the winner's key.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(key_pair.private_key.serialize())
            fh.flush()
            os.fsync(fh.fileno())
        if overwrite:
            os.replace(tmp, target)
        else:
            os.link(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    dir_fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def load_or_create(path: str | os.PathLike[str]) -> tuple[KeyPair, str]:
    """Load the key at ``path`` or create one there; return ``(key_pair, peer_id)``.

    ``path`` is the key file itself; use ``key_path(home_dir)`` for the standard place
    inside a node home directory.
    """
    target = Path(path)
    if target.exists():
        key_pair = load(target)
    else:
        key_pair = create_new_key_pair()
        try:
            save(target, key_pair, overwrite=False)
        except FileExistsError:
            key_pair = load(target)
    return key_pair, peer_id_of(key_pair)
