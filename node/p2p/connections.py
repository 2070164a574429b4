"""Keeping peers connected: the reconnect loop and libp2p connection events.

Each configured peer gets one ``dial_loop`` task that dials its addresses with
``Swarm.dial_addr`` (not ``host.connect``: that path adds a 250 ms happy-eyeballs pause,
depends on peerstore addresses that expire after 120 s, and blacklists a peer for 60 s
after a failed dial) and backs off exponentially (100 ms -> 0.5 s by default, each attempt
bounded by ``dial_attempt_s``) while the peer is down, so a restarted validator, or one
behind a cut that healed, is back within about a second. ``Notifee`` keeps
``PeerState.connected`` in step with the swarm and drops banned peers that connect to us.
Every peer that connects gets a keepalive watchdog (``keepalive.py``): a connection that
went silent is closed by it and then redialed here.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import time
from typing import Any

import trio
from libp2p.abc import INetConn, INetStream, INetwork, INotifee
from multiaddr import Multiaddr

from node.p2p.core import Core
from node.p2p.keepalive import ensure_keepalive
from node.p2p.peers import Backoff, PeerState

log = logging.getLogger(__name__)


async def dial_loop(core: Core, peer: PeerState) -> None:
    """Keep ``peer`` connected: dial its addresses with exponential backoff."""
    limits = core.limits
    backoff = Backoff(limits.backoff_initial_s, limits.backoff_max_s)
    while not core.stopping:
        now = time.monotonic()
        if peer.banned(now):
            await trio.sleep(max(0.05, peer.banned_until - now))
            continue
        host = core.host
        if host is None:
            return
        swarm = host.get_network()
        refresh_connected(core, peer)
        if peer.connected:
            ensure_keepalive(core, peer)  # in case a spawn during start-up was lost
            backoff.reset()
            await peer.wait_change(2.0)
            continue
        core.metrics.dials += 1
        if await _dial_once(core, swarm, peer):
            mark_connected(core, peer)
            backoff.reset()
        else:
            core.metrics.dial_failures += 1
            await trio.sleep(backoff.next_delay())


async def _dial_once(core: Core, swarm: Any, peer: PeerState) -> bool:
    for addr in list(peer.addrs):
        try:
            with trio.fail_after(core.limits.dial_attempt_s):
                await swarm.dial_addr(addr, peer.pid)
            return True
        except (Exception, trio.TooSlowError) as exc:
            log.debug("dial %s at %s failed: %r", peer.peer_id, addr, exc)
    return False


def refresh_connected(core: Core, peer: PeerState) -> None:
    """Re-derive ``peer.connected`` from the swarm (a safety net for missed events)."""
    connected = bool(core.connections_of(peer))
    if connected != peer.connected:
        if connected:
            mark_connected(core, peer)
        else:
            peer.connected = False
            peer.pulse()


def mark_connected(core: Core, peer: PeerState) -> None:
    """``peer`` has a connection: wake its waiters, start its keepalive, tell the node."""
    if peer.connected:
        return
    if peer.ever_connected:
        core.metrics.reconnects += 1
    peer.connected = True
    peer.ever_connected = True
    peer.liveness.restart(time.monotonic())
    ensure_keepalive(core, peer)
    peer.pulse()
    core.announce_connected(peer)


def check_port_free(listen: Multiaddr) -> None:
    """Fail fast if a fixed TCP port is taken.

    libp2p 0.8.1 binds its listener with SO_REUSEPORT, so a second node (or a zombie
    listener) on the same port would *share* it and the kernel would split incoming
    connections between them. A plain bind (SO_REUSEADDR only, enough to get past
    TIME_WAIT after a restart) still fails while anyone listens on the port.
    """
    try:
        port = int(listen.value_for_protocol("tcp") or 0)
    except Exception:
        return
    if port == 0:
        return
    family, host = socket.AF_INET, "0.0.0.0"
    with contextlib.suppress(Exception):
        host = listen.value_for_protocol("ip4") or host
    with contextlib.suppress(Exception):
        ip6 = listen.value_for_protocol("ip6")
        if ip6:
            family, host = socket.AF_INET6, ip6
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise OSError(exc.errno, f"cannot listen on {listen}: {exc.strerror}") from None


class Notifee(INotifee):
    """Keeps ``PeerState.connected`` in step with libp2p's connection events."""

    def __init__(self, core: Core) -> None:
        self._core = core

    async def connected(self, network: INetwork, conn: INetConn) -> None:
        pid = conn.muxed_conn.peer_id
        peer = self._core.peer_for(pid.to_base58(), pid)
        if peer.banned():
            self._core.spawn(self._core._disconnect, peer, name=f"disconnect {peer.peer_id}")
            return
        mark_connected(self._core, peer)

    async def disconnected(self, network: INetwork, conn: INetConn) -> None:
        pid = conn.muxed_conn.peer_id
        peer = self._core.peers.get(pid.to_base58())
        if peer is None:
            return
        others = [c for c in self._core.connections_of(peer) if c is not conn]
        if not others and peer.connected:
            peer.connected = False
            peer.pulse()

    async def opened_stream(self, network: INetwork, stream: INetStream) -> None:
        return None

    async def closed_stream(self, network: INetwork, stream: INetStream) -> None:
        return None

    async def listen(self, network: INetwork, multiaddr: Multiaddr) -> None:
        return None

    async def listen_close(self, network: INetwork, multiaddr: Multiaddr) -> None:
        return None
