"""The one place devnet code touches node.p2p.identity (helper-2's module).

Why an adapter: the devnet must write each node's libp2p key exactly where the node will
read it, and put the matching peer id into every other node's peer list. If the identity
module moves or renames something, only this file changes.
"""

from __future__ import annotations

import os
from pathlib import Path

CONTRACT_RELPATH = Path("keys") / "p2p.key"  # node/API.md: DIR/keys/p2p.key


def key_file(node_home: str | os.PathLike[str]) -> Path:
    from node.p2p import identity

    key_path = getattr(identity, "key_path", None)
    return Path(key_path(node_home)) if key_path else Path(node_home) / CONTRACT_RELPATH


def ensure_peer_id(node_home: str | os.PathLike[str]) -> str:
    """Create the node's libp2p identity if missing (reuse it otherwise); return its peer id."""
    from node.p2p import identity

    _key_pair, peer_id = identity.load_or_create(key_file(node_home))
    return str(peer_id)
