"""Peer-to-peer layer of a bookchain node: py-libp2p (trio) bridged into asyncio.

Start with ``P2PNode`` (``host.py``); ``bridge.py`` explains the threading model and
``framing.py`` the wire format.
"""

from node.p2p.core import Limits
from node.p2p.errors import (
    BadFrame,
    NotRunning,
    P2PError,
    PeerDisconnected,
    PeerUnavailable,
    QueueFull,
    RemoteError,
    RequestTimeout,
)
from node.p2p.host import P2PNode
from node.p2p.peers import BanPolicy
from node.p2p.protocols import CONSENSUS, SYNC, TX

__all__ = [
    "CONSENSUS",
    "SYNC",
    "TX",
    "BadFrame",
    "BanPolicy",
    "Limits",
    "NotRunning",
    "P2PError",
    "P2PNode",
    "PeerDisconnected",
    "PeerUnavailable",
    "QueueFull",
    "RemoteError",
    "RequestTimeout",
]
