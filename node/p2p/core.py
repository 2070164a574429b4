"""State shared by the node's sessions, inbound streams and dialers.

``P2PNode`` is the public face; ``Core`` is what its moving parts need from each other
(host, bridge, nursery, limits, counters, peers and the bad-frame policy), kept in one
place so ``session.py`` and ``inbound.py`` do not import the public class.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

import trio
from libp2p.abc import INetConn
from libp2p.host.basic_host import BasicHost
from libp2p.network.swarm import Swarm
from libp2p.peer.id import ID

from node.p2p.bridge import TrioBridge, guarded
from node.p2p.metrics import P2PMetrics
from node.p2p.peers import BanPolicy, PeerState

log = logging.getLogger(__name__)

#: A one-way frame's handler: a coroutine function, or a plain function when it never
#: waits (consensus frames: the p2p worker's transport then runs it at once, without a
#: task per frame).
OneWayHandler = Callable[[str, bytes], Awaitable[None] | None]
RequestHandler = Callable[[str, bytes], Awaitable[bytes]]
Kind = Literal["oneway", "request"]

MiB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """Queue bounds, batch sizes and timeouts; defaults suit a handful of validators."""

    queue_max_frames: int = 10_000
    queue_max_bytes: int = 64 * MiB
    inbox_max_frames: int = 4096
    inbox_max_bytes: int = 64 * MiB
    # One-way frames of one peer and protocol whose handlers may still be running (their
    # awaitables pending) while the next frames are handed over. Handlers are always *called* in
    # order; more than one in flight keeps a stream moving while a handler waits (the p2p
    # worker's handler waits a round trip to the node, a tx frame its signatures' check).
    frames_in_flight: int = 16
    max_concurrent_requests: int = 16
    write_batch_bytes: int = 1 * MiB
    read_chunk_bytes: int = 1 * MiB
    open_timeout_s: float = 5.0
    # libp2p's own bounds on a dial and on the Noise/yamux upgrade of either side.
    dial_timeout_s: float = 5.0
    # Our bound on one dial attempt. Short, so that a peer behind a cut that healed is
    # tried again with a fresh SYN soon: the kernel retransmits an unanswered SYN only
    # after 1 s, then 3 s, so a long attempt waits out the very back-off we avoid.
    dial_attempt_s: float = 2.0
    # Redial back-off (x2 per failure, +-20 % jitter). The cap bounds how long a peer
    # that is reachable again waits for our next attempt: with 2-s attempts (SYNs at 0 s
    # and 1 s) and a 0.5-s cap, a SYN leaves at least every 1.5 s while a peer is cut off.
    backoff_initial_s: float = 0.1
    backoff_max_s: float = 0.5
    # Keepalive (keepalive.py): a ping every ``ping_interval_s``; a peer we heard
    # nothing from (no pong, no frame) for ``peer_timeout_s`` has its connections
    # closed hard and goes back to the dial loop. 0 disables the keepalive.
    ping_interval_s: float = 1.0
    peer_timeout_s: float = 3.0
    # A frame that was being written when its stream died is retried this many times.
    max_write_attempts: int = 3
    # How long a writer waits for a receiver that grants no flow-control window
    # (its handler is busy) before resetting the stream, losing what is in flight.
    stall_timeout_s: float = 60.0


@dataclass
class ProtocolSpec:
    """One protocol id: one-way or request/response, its frame limit, its handler."""

    protocol_id: str
    kind: Kind
    max_frame_bytes: int
    handler: OneWayHandler | RequestHandler | None = None


class Core:
    """Everything a running node's tasks share; created by ``P2PNode.start``."""

    def __init__(
        self,
        bridge: TrioBridge,
        metrics: P2PMetrics,
        limits: Limits,
        ban_policy: BanPolicy,
        peers: dict[str, PeerState],
    ) -> None:
        self.bridge = bridge
        self.loop = bridge.loop
        self.metrics = metrics
        self.limits = limits
        self.ban_policy = ban_policy
        self.peers = peers
        self.host: BasicHost | None = None
        self.nursery: trio.Nursery | None = None
        self.stopping = False
        self.aio_tasks: set[asyncio.Task[Any]] = set()
        self.inbound_scopes: set[trio.CancelScope] = set()
        # Consumer task of the newest inbound one-way stream per (peer id, protocol id).
        self.last_inbox: dict[tuple[str, str], asyncio.Task[None]] = {}
        # One-way handlers still running per (peer id, protocol id), whichever stream their
        # frames came on (bounded by ``Limits.frames_in_flight``; inbound.py).
        self.handling: dict[tuple[str, str], set[asyncio.Future[None]]] = {}
        # Asyncio callback told the id of every peer that (re)connects.
        self.on_peer_connected: Callable[[str], None] | None = None

    # ------------------------------------------------------------ tasks

    def spawn(self, async_fn: Callable[..., Awaitable[object]], *args: Any, name: str) -> None:
        """Start a trio task in the node's nursery (from either side); errors are logged."""
        if self.stopping:
            return
        self.bridge.run_sync_soon(self._start_soon, async_fn, args, name)

    def _start_soon(
        self, async_fn: Callable[..., Awaitable[object]], args: tuple[Any, ...], name: str
    ) -> None:
        if self.nursery is None or self.stopping:
            return
        self.nursery.start_soon(guarded, async_fn, args, name, name=name)

    def track(self, task: asyncio.Task[Any]) -> None:
        """Remember an asyncio task so ``stop()`` can cancel and await it."""
        self.aio_tasks.add(task)
        task.add_done_callback(self.aio_tasks.discard)

    # ------------------------------------------------------------ peers

    def peer_for(self, peer_id: str, pid: ID | None = None) -> PeerState:
        """The state of ``peer_id``, created (as not configured) on first contact."""
        peer = self.peers.get(peer_id)
        if peer is None:
            peer = self.peers[peer_id] = PeerState(peer_id, pid or ID.from_base58(peer_id))
        return peer

    def connections_of(self, peer: PeerState) -> list[INetConn]:
        """The swarm's open connections to ``peer``."""
        host = self.host
        if host is None:
            return []
        swarm = host.get_network()
        if not isinstance(swarm, Swarm):
            return []
        return [c for c in swarm.get_connections(peer.pid) if not c.is_closed]

    def announce_connected(self, peer: PeerState) -> None:
        """Tell the asyncio side that ``peer`` is (again) connected, on its own turn of
        the loop so a slow callback never runs inside a libp2p event."""
        callback = self.on_peer_connected
        if callback is not None and not self.stopping:
            self.loop.call_soon(callback, peer.peer_id)

    def bad_frame(self, peer: PeerState, protocol_id: str, reason: str) -> None:
        """Count a bad frame from ``peer``; ban and disconnect it if it keeps doing so."""
        self.metrics.proto(protocol_id).bad_frames += 1
        self.metrics.bad_frames_by_peer[peer.peer_id] += 1
        log.info("bad frame from %s on %s: %s", peer.peer_id, protocol_id, reason)
        if peer.record_bad_frame(self.ban_policy):
            self.metrics.bans += 1
            log.warning(
                "banning peer %s for %.0f s after repeated bad frames",
                peer.peer_id,
                peer.banned_until - time.monotonic(),
            )
            self.spawn(self._disconnect, peer, name=f"disconnect {peer.peer_id}")

    async def _disconnect(self, peer: PeerState) -> None:
        peer.pulse()
        if self.host is not None:
            with trio.move_on_after(5):
                await self.host.disconnect(peer.pid)
