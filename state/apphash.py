"""The app hash: the root of the state tree, bound to the chain's genesis.

    app_hash(h) = sha256("bookchain/app/2" || genesis_hash || state_root(h))

``state_root(h)`` is the root of the sparse Merkle tree over every state record after
block h (state/merkle.py), so the app hash commits to each balance, position, order,
trigger, pool, oracle submission, nonce set, agent and counter: any one of them can be
proven present (with its value) or absent against it, and a snapshot's records can be
checked against it on their own. The genesis hash binds the parameters genesis fixes but
no record holds (markets, assets, limits), so two chains with equal records still have
different app hashes. Block h+1's header carries app_hash(h) and its commit certificate
signs it; that is what a light client trusts (cli/verify.py).
"""

from __future__ import annotations

import hashlib
from typing import Final

DOMAIN: Final = b"bookchain/app/2"


def app_hash(genesis_hash: bytes, state_root: bytes) -> bytes:
    return hashlib.sha256(DOMAIN + genesis_hash + state_root).digest()
