"""The libp2p identity is created once and survives restarts."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from node.p2p import P2PNode, identity


def test_load_or_create_is_stable_and_private(tmp_path: Path) -> None:
    path = identity.key_path(tmp_path)
    key_pair, peer_id = identity.load_or_create(path)
    assert path == tmp_path / "keys" / "p2p.key"
    assert peer_id.startswith("12D3KooW")  # ed25519 keys give identity-multihash ids
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again, same_id = identity.load_or_create(path)
    assert same_id == peer_id
    assert again.private_key.to_bytes() == key_pair.private_key.to_bytes()


def test_node_uses_the_key_in_its_home_dir(tmp_path: Path) -> None:
    first = P2PNode(tmp_path).peer_id
    assert P2PNode(tmp_path).peer_id == first
    assert P2PNode(identity.key_path(tmp_path)).peer_id == first


def test_corrupt_key_file_is_an_error_not_a_new_identity(tmp_path: Path) -> None:
    path = identity.key_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a key")
    with pytest.raises(identity.IdentityError):
        identity.load_or_create(path)
