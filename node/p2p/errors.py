"""Exceptions of the p2p layer, as seen by asyncio callers and handlers."""

from __future__ import annotations


class P2PError(Exception):
    """Base class for everything the p2p layer raises on purpose."""


class NotRunning(P2PError):
    """The node was used before ``start()`` or after ``stop()``."""


class PeerUnavailable(P2PError):
    """The peer is unknown (not configured and never connected) or is banned."""


class PeerDisconnected(P2PError):
    """The stream carrying a request died before its response arrived."""


class RequestTimeout(P2PError, TimeoutError):
    """No response within the caller's deadline (the request may still be served)."""


class QueueFull(P2PError):
    """The per-peer outbound queue overflowed and this request was the oldest entry."""


class RemoteError(P2PError):
    """The remote request handler failed; the message is the remote's short reason."""


class BadFrame(P2PError):
    """Raise from a handler when a frame does not decode.

    The p2p layer counts it against the sending peer, closes the stream it came on and
    bans the peer for a while once it does so repeatedly. Any *other* exception from a
    handler is treated as a local bug: logged and counted, and the stream stays open.
    """
