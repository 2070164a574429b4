"""Keepalive: notice peers that stopped answering and close their connections hard.

Why: a network cut leaves TCP connections ESTABLISHED on both sides; nothing fails, the
kernel just retransmits with a growing back-off, so after the cut heals traffic resumes
only at the next retransmission (13 s on a devnet after a 2-2 split, up to 120 s after
long cuts), and the dial loop never redials because the peer still looks connected.

How: every connected peer gets one watchdog task (``keepalive_loop``) for the life of
the node. While the peer is connected the task keeps a stream on ``/bookchain/ping/1``
open and writes an 8-byte ping every ``ping_interval_s`` in which it heard nothing from
the peer; the remote's ``serve_ping`` echoes the bytes back. Any bytes from the peer, a
pong or a frame on any other stream, count as proof of life (``PeerState.heard``), so a
pong queued behind a large proposal is not mistaken for silence. A peer silent for
``peer_timeout_s`` (``liveness.py``) has every connection to it aborted (the socket is
closed with SO_LINGER 0, which also wakes any task blocked writing into the dead socket)
and goes back to ``dial_loop``, which redials with capped back-off. The driver is told
when the peer is back (``Core.announce_connected``) and re-sends what the peer missed.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import time
from typing import Any

import trio
from libp2p.abc import INetConn, INetStream
from libp2p.custom_types import TProtocol

from node.p2p.core import Core
from node.p2p.peers import PeerState
from node.p2p.protocols import PING
from node.p2p.streams import reset_quietly, run_pair

log = logging.getLogger(__name__)

PING_BYTES = 8
# A pong is 8 bytes; reading more at once only batches echoes of a peer that pinged
# faster than we read.
_READ_BYTES = 256
_CLOSE_GRACE_S = 2.0


def ensure_keepalive(core: Core, peer: PeerState) -> None:
    """Start ``peer``'s watchdog unless it runs (or the keepalive is disabled)."""
    if not peer.keepalive_running and core.limits.peer_timeout_s > 0:
        core.spawn(keepalive_loop, core, peer, name=f"keepalive {peer.peer_id}")


async def keepalive_loop(core: Core, peer: PeerState) -> None:
    """Watch ``peer`` whenever it is connected, for as long as the node runs."""
    if peer.keepalive_running:
        return  # spawned twice before the first one started
    peer.keepalive_running = True
    peer.liveness.timeout_s = core.limits.peer_timeout_s
    try:
        while not core.stopping:
            await peer.wait_usable()
            peer.liveness.restart(time.monotonic())
            silent = False
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_ping_loop, core, peer)
                silent = await _watch(peer)
                nursery.cancel_scope.cancel()
            if silent:
                await close_silent_peer(core, peer)
    finally:
        peer.keepalive_running = False


async def _watch(peer: PeerState) -> bool:
    """Return True when ``peer`` fell silent, False when it disconnected on its own."""
    liveness = peer.liveness
    while peer.usable():
        now = time.monotonic()
        if liveness.expired(now):
            return True
        # Wake at the deadline, or earlier when the peer's state changes.
        await peer.wait_change(liveness.until_expiry(now) + 0.001)
    return False


async def _ping_loop(core: Core, peer: PeerState) -> None:
    """Keep one ping stream to ``peer`` open; reopen it when it dies."""
    interval = core.limits.ping_interval_s
    label = f"{PING} -> {peer.peer_id}"

    async def write_pings(stream: INetStream) -> None:
        sequence = 0
        while True:
            # Only a peer silent for a whole beat is asked for a pong: one whose frames
            # keep arriving proves the connection already (the watchdog counts any bytes),
            # and it pings us itself when it stops hearing from us. Under load that is no
            # ping frames at all, each one a trip through libp2p's framing and Noise.
            if peer.liveness.silent_for(time.monotonic()) >= interval:
                sequence += 1
                await stream.write(sequence.to_bytes(PING_BYTES, "big"))
                core.metrics.pings_out += 1
            await trio.sleep(interval)

    async def read_pongs(stream: INetStream) -> None:
        pending = 0
        while True:
            data = await stream.read(_READ_BYTES)
            if not data:
                return
            peer.heard()
            pending += len(data)
            core.metrics.pongs_in += pending // PING_BYTES
            pending %= PING_BYTES

    while True:
        stream = await _open(core, peer)
        if stream is not None:
            try:
                await run_pair(stream, write_pings, read_pongs, label)
            finally:
                await reset_quietly(stream)
        await trio.sleep(interval)


async def _open(core: Core, peer: PeerState) -> INetStream | None:
    host = core.host
    if host is None or not peer.usable():
        return None
    try:
        with trio.fail_after(core.limits.open_timeout_s):
            return await host.new_stream(peer.pid, [TProtocol(PING)])
    except (Exception, trio.TooSlowError) as exc:
        log.debug("%s: cannot open a ping stream: %r", peer.peer_id, exc)
        return None


async def serve_ping(core: Core, stream: INetStream) -> None:
    """Inbound ``/bookchain/ping/1``: echo every byte back (libp2p stream handler)."""
    try:
        pid = stream.muxed_conn.peer_id
        peer = core.peer_for(pid.to_base58(), pid)
    except Exception as exc:
        log.debug("ping stream without a usable peer id: %r", exc)
        await reset_quietly(stream)
        return
    if core.stopping or peer.banned():
        core.metrics.rejected_streams += 1
        await reset_quietly(stream)
        return
    with trio.CancelScope() as scope:
        core.inbound_scopes.add(scope)
        try:
            while True:
                data = await stream.read(_READ_BYTES)
                if not data:
                    break
                peer.heard()
                await stream.write(data)
        except Exception as exc:  # a dead or reset stream: the pinger opens another
            log.debug("ping stream from %s ended: %r", peer.peer_id, exc)
        finally:
            core.inbound_scopes.discard(scope)
            await reset_quietly(stream)


async def close_silent_peer(core: Core, peer: PeerState) -> None:
    """Abort every connection to ``peer`` now, without waiting for TCP to give up."""
    core.metrics.peer_timeouts += 1
    log.warning(
        "peer %s silent for %.1f s: closing its connections and redialling",
        peer.peer_id,
        peer.liveness.silent_for(time.monotonic()),
    )
    conns = core.connections_of(peer)
    for conn in conns:
        abort_socket(conn)
    # Let libp2p tidy up (streams reset, "disconnected" events) before the dial loop
    # looks at the swarm again; the sockets are gone, so this cannot wait on the network.
    with trio.CancelScope(shield=True):
        for conn in conns:
            with trio.move_on_after(_CLOSE_GRACE_S):
                try:
                    await conn.close()
                except Exception as exc:
                    log.debug("closing a dead connection to %s: %r", peer.peer_id, exc)
    if peer.connected:
        peer.connected = False
        peer.pulse()


def abort_socket(conn: INetConn) -> bool:
    """Close the TCP socket under ``conn`` with a reset (SO_LINGER 0).

    Closing a trio socket wakes every task blocked reading or writing it, which a
    graceful libp2p close would not do: it first writes a yamux GO_AWAY into a socket
    whose send buffer a dead peer never drains. Returns False if no socket was found.
    """
    sock_stream = _find_socket_stream(conn)
    if sock_stream is None:
        return False
    sock = sock_stream.socket
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
    return True


def _find_socket_stream(obj: Any, depth: int = 0) -> trio.SocketStream | None:
    """The ``trio.SocketStream`` under a libp2p connection's layers.

    In py-libp2p 0.8.1: SwarmConn.muxed_conn (yamux) .secured_conn (Noise session) .conn
    (Noise reader/writer) .conn (RawConnection) .stream (TrioTCPStream) .stream. Walked
    by attribute name rather than spelled out, so a layer added or renamed in a later
    release does not break the abort.
    """
    if isinstance(obj, trio.SocketStream):
        return obj
    if depth >= 8:
        return None
    for name in ("muxed_conn", "secured_conn", "conn", "stream"):
        inner = getattr(obj, name, None)
        if inner is not None and inner is not obj:
            found = _find_socket_stream(inner, depth + 1)
            if found is not None:
                return found
    return None
