"""``P2PNode``: the node's libp2p host, used from asyncio.

Threading model: everything runs on the asyncio (uvloop) thread. py-libp2p runs in a
trio *guest run* hosted by that loop (see ``bridge.py``); this class's public methods
are called from asyncio, handlers are asyncio coroutines, and the trio tasks behind
them (one writer and one reader per stream, one dialer per configured peer) share
state with asyncio through plain objects because both sides run on the same thread.

Usage from the node::

    p2p = P2PNode(home_dir, "/ip4/0.0.0.0/tcp/26656", peers=config.peers)
    p2p.register(protocols.CONSENSUS, on_consensus)      # (peer_id, frame) -> None, or async
    p2p.register_request(protocols.SYNC, serve_blocks)   # async (peer_id, req) -> bytes
    await p2p.start()
    p2p.broadcast(protocols.CONSENSUS, vote_bytes)       # never blocks
    blocks = await p2p.request(peer_id, protocols.SYNC, req_bytes, timeout_s=5)
    ...
    await p2p.stop()

All methods must be called from the event loop's thread (the class is not thread-safe,
by design: there are no locks because nothing else runs concurrently). A handler that
blocks the loop blocks the network too; push CPU-heavy work to threads.

Delivery is best effort, like any gossip without application acks: frames to one peer
on one protocol arrive in the order they were sent, including across stream resets
and reconnects. ``send`` enqueues to a bounded per-(peer, protocol) queue that drops
the *oldest* frame when full (``dropped_out``). When a stream dies, the batch being
written is re-sent on the next stream (a receiver may see a duplicate), and frames the
receiver had buffered but not yet read are lost (a restarting peer loses its buffers
anyway). Consensus and tx handlers must therefore be idempotent and tolerate gaps,
which they are (votes and txs are deduplicated; a node that misses a block syncs it).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import itertools
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import trio
from libp2p.abc import INetStream
from libp2p.crypto.keys import KeyPair
from libp2p.custom_types import TProtocol
from multiaddr import Multiaddr

from node.p2p import identity
from node.p2p.bridge import TrioBridge
from node.p2p.connections import Notifee, check_port_free, dial_loop
from node.p2p.core import Core, Kind, Limits, OneWayHandler, ProtocolSpec, RequestHandler
from node.p2p.errors import NotRunning, PeerUnavailable, RequestTimeout
from node.p2p.framing import ENVELOPE_BYTES, KIND_REQUEST, MAX_REQUEST_ID, pack_envelope
from node.p2p.inbound import handle_inbound
from node.p2p.keepalive import serve_ping
from node.p2p.libp2p_host import build_host
from node.p2p.metrics import P2PMetrics
from node.p2p.peers import BanPolicy, PeerState, parse_peer_multiaddr
from node.p2p.protocols import (
    ABSOLUTE_MAX_FRAME_BYTES,
    DEFAULT_MAX_FRAME_BYTES,
    FALLBACK_MAX_FRAME_BYTES,
    PING,
)
from node.p2p.queues import Entry
from node.p2p.session import OutboundSession

log = logging.getLogger(__name__)

_NEW, _STARTING, _RUNNING = "new", "starting", "running"
_STOPPING, _STOPPED = "stopping", "stopped"


class P2PNode:
    """A libp2p host speaking length-prefixed frame protocols, driven from asyncio."""

    def __init__(
        self,
        identity_source: str | os.PathLike[str] | KeyPair,
        listen_multiaddr: str = "/ip4/127.0.0.1/tcp/0",
        peers: Iterable[str] = (),
        *,
        max_frame_bytes: int | Mapping[str, int] | None = None,
        limits: Limits | None = None,
        ban_policy: BanPolicy | None = None,
    ) -> None:
        """Configure a node; nothing touches the network before ``start()``.

        ``identity_source``: a node home directory (the key lives in
        ``<home>/keys/p2p.key`` and is created on first use), the key file itself
        (``*.key``), or a libp2p ``KeyPair``. ``peers``: multiaddrs with
        a ``/p2p/<peer id>`` suffix to keep connected to. ``max_frame_bytes``: the
        limit for protocols without a built-in one (int), or per-protocol overrides.
        """
        if isinstance(identity_source, KeyPair):
            self._key_pair = identity_source
            self.peer_id = identity.peer_id_of(identity_source)
        else:
            self._key_pair, self.peer_id = identity.load_or_create(
                identity.resolve_key_path(identity_source)
            )
        self._listen = Multiaddr(listen_multiaddr)
        self._frame_limits: dict[str, int] = dict(DEFAULT_MAX_FRAME_BYTES)
        self._fallback_limit = FALLBACK_MAX_FRAME_BYTES
        if isinstance(max_frame_bytes, int):
            self._fallback_limit = max_frame_bytes
        elif max_frame_bytes is not None:
            self._frame_limits.update(max_frame_bytes)
        self.limits = limits or Limits()
        self.ban_policy = ban_policy or BanPolicy()
        self.metrics = P2PMetrics()
        self._specs: dict[str, ProtocolSpec] = {}
        self._peers: dict[str, PeerState] = {}
        self._sessions: dict[tuple[str, str], OutboundSession] = {}
        self._request_ids = itertools.count(1)
        self._on_peer_connected: Callable[[str], None] | None = None
        self._state = _NEW
        self._core: Core | None = None
        self._stop_requested = trio.Event()
        self._started: asyncio.Future[None] | None = None
        self._main_done: asyncio.Future[None] | None = None
        self._stopped: asyncio.Future[None] | None = None
        self.listen_addrs: list[str] = []
        for text in peers:
            self.add_peer(text)

    # ================================================================ configuration

    def register(
        self, protocol_id: str, handler: OneWayHandler, *, max_frame_bytes: int | None = None
    ) -> None:
        """Handle one-way frames: ``handler(peer_id, frame)``, called in order per stream;
        an awaitable it returns runs while the stream's next frames are handed over, up to
        ``Limits.frames_in_flight`` unfinished (inbound.py says why)."""
        self._add_spec(protocol_id, "oneway", handler, max_frame_bytes)

    def register_request(
        self, protocol_id: str, handler: RequestHandler, *, max_frame_bytes: int | None = None
    ) -> None:
        """Serve requests: ``await handler(peer_id, request) -> response bytes``."""
        self._add_spec(protocol_id, "request", handler, max_frame_bytes)

    def on_peer_connected(self, callback: Callable[[str], None] | None) -> None:
        """Call ``callback(peer_id)`` (on the asyncio side) whenever a peer connects or
        reconnects, e.g. to re-send it what it missed while it was away."""
        self._on_peer_connected = callback
        if self._core is not None:
            self._core.on_peer_connected = callback

    def add_peer(self, peer_multiaddr: str) -> str:
        """Keep a connection to ``/…/p2p/<id>`` (dialed with backoff); returns its id."""
        peer_id, addr = parse_peer_multiaddr(peer_multiaddr)
        if peer_id == self.peer_id:
            return peer_id
        peer = self._peer(peer_id)
        if all(str(a) != str(addr) for a in peer.addrs):
            peer.addrs.append(addr)
        if not peer.configured:
            peer.configured = True
            if self._core is not None:
                self._core.spawn(dial_loop, self._core, peer, name=f"dial {peer_id}")
        return peer_id

    def _peer(self, peer_id: str) -> PeerState:
        if self._core is not None:
            return self._core.peer_for(peer_id)
        peer = self._peers.get(peer_id)
        if peer is None:
            from libp2p.peer.id import ID

            peer = self._peers[peer_id] = PeerState(peer_id, ID.from_base58(peer_id))
        return peer

    def _add_spec(
        self,
        protocol_id: str,
        kind: Kind,
        handler: OneWayHandler | RequestHandler | None,
        max_frame_bytes: int | None,
    ) -> ProtocolSpec:
        existing = self._specs.get(protocol_id)
        if existing is not None and existing.kind != kind:
            raise ValueError(f"{protocol_id} is already a {existing.kind} protocol")
        limit = max_frame_bytes or self._frame_limits.get(protocol_id, self._fallback_limit)
        if not 0 < limit <= ABSOLUTE_MAX_FRAME_BYTES:
            raise ValueError(f"max_frame_bytes {limit} out of range")
        if existing is not None:
            if handler is not None:
                existing.handler = handler
            if max_frame_bytes is not None:
                existing.max_frame_bytes = limit
            spec = existing
        else:
            spec = self._specs[protocol_id] = ProtocolSpec(protocol_id, kind, limit, handler)
        if handler is not None and self._core is not None and self._core.host is not None:
            self._install_handler(spec)
        return spec

    def _install_handler(self, spec: ProtocolSpec) -> None:
        core = self._core
        assert core is not None and core.host is not None

        async def handler(stream: INetStream) -> None:
            await handle_inbound(core, spec, stream)

        core.host.set_stream_handler(TProtocol(spec.protocol_id), handler)

    # ================================================================ lifecycle

    async def start(self) -> None:
        """Listen, start dialing configured peers; raises ``OSError`` if the port is taken."""
        if self._state in (_STARTING, _RUNNING):
            return
        if self._state != _NEW:
            raise NotRunning("a stopped P2PNode cannot be restarted; create a new one")
        check_port_free(self._listen)
        self._state = _STARTING
        loop = asyncio.get_running_loop()
        self._started = loop.create_future()
        self._main_done = loop.create_future()
        self._stopped = loop.create_future()
        try:
            bridge = await TrioBridge.acquire()
        except BaseException:
            self._state = _STOPPED
            _set_done(self._started)
            _set_done(self._stopped)
            raise
        core = Core(bridge, self.metrics, self.limits, self.ban_policy, self._peers)
        core.on_peer_connected = self._on_peer_connected
        self._core = core
        try:
            self.listen_addrs = await bridge.run(self._launch)
        except BaseException:
            self._core = None
            self._state = _STOPPED
            await bridge.release()
            _set_done(self._stopped)
            raise
        finally:
            _set_done(self._started)
        self._state = _RUNNING

    async def _launch(self) -> list[str]:
        core = self._core
        assert core is not None and core.bridge.nursery is not None
        result: list[str] = await core.bridge.nursery.start(self._trio_main)
        return result

    async def _trio_main(self, task_status: trio.TaskStatus[list[str]]) -> None:  # type: ignore[name-defined, unused-ignore]
        core = self._core
        assert core is not None and self._main_done is not None
        started = False
        try:
            host = build_host(
                self._key_pair,
                dial_timeout_s=self.limits.dial_timeout_s,
                negotiate_timeout_s=self.limits.open_timeout_s,
            )
            core.host = host
            host.get_network().register_notifee(Notifee(core))

            async def ping_handler(stream: INetStream) -> None:
                await serve_ping(core, stream)

            host.set_stream_handler(TProtocol(PING), ping_handler)
            for spec in self._specs.values():
                if spec.handler is not None:
                    self._install_handler(spec)
            async with host.run([self._listen]):
                try:
                    addrs = host.get_addrs()
                    if not addrs:
                        raise OSError(errno.EADDRNOTAVAIL, f"cannot listen on {self._listen}")
                    async with trio.open_nursery() as nursery:
                        core.nursery = nursery
                        for peer in list(core.peers.values()):
                            if peer.configured:
                                core.spawn(dial_loop, core, peer, name=f"dial {peer.peer_id}")
                        started = True
                        task_status.started([str(a) for a in addrs])
                        await self._stop_requested.wait()
                        nursery.cancel_scope.cancel()
                finally:
                    core.stopping = True
                    core.nursery = None
                    for scope in list(core.inbound_scopes):
                        scope.cancel()
                    # Close while the swarm service still runs: leaving host.run()
                    # first stops the service but not the listener, which then
                    # accepts connections it cannot register (and the port stays
                    # bound). Shielded so a crash-cancel still releases the port.
                    with trio.CancelScope(shield=True), trio.move_on_after(5):
                        await host.close()
        except Exception:
            if not started:
                raise
            log.exception("p2p node %s crashed", self.peer_id)
        finally:
            core.host = None
            _set_done(self._main_done)

    async def stop(self) -> None:
        """Close all streams and connections, release the port, end every task. Idempotent."""
        if self._state == _STARTING and self._started is not None:
            await asyncio.shield(self._started)  # then stop what was started
        if self._state in (_NEW, _STOPPED):
            self._state = _STOPPED
            return
        assert self._stopped is not None
        if self._state == _STOPPING:
            await asyncio.shield(self._stopped)
            return
        self._state = _STOPPING
        core = self._core
        assert core is not None and self._main_done is not None
        try:
            core.stopping = True
            for session in self._sessions.values():
                session.close()
            with contextlib.suppress(Exception):
                core.bridge.run_sync_soon(self._stop_requested.set)
            await self._main_done
            tasks = list(core.aio_tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            self._state = _STOPPED
            await core.bridge.release()
            _set_done(self._stopped)

    async def __aenter__(self) -> P2PNode:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ================================================================ sending

    def send(self, peer_id: str, protocol_id: str, frame: bytes) -> bool:
        """Queue ``frame`` for ``peer_id`` without blocking.

        Returns False (and counts a drop) if the peer is unknown or banned. A frame
        above the protocol's limit raises ``ValueError``: the peer would reject it.
        """
        core = self._require_running()
        spec = self._spec_for(protocol_id, "oneway")
        if len(frame) > spec.max_frame_bytes:
            raise ValueError(f"frame of {len(frame)} bytes exceeds {spec.max_frame_bytes}")
        peer = core.peers.get(peer_id)
        if peer is None or peer.banned() or not (peer.configured or peer.connected):
            self.metrics.proto(protocol_id).dropped_out += 1
            return False
        self._session(core, peer, spec).put(Entry(bytes(frame)))
        return True

    def broadcast(self, protocol_id: str, frame: bytes) -> int:
        """``send`` to every connected peer; returns how many peers it was queued for."""
        return sum(self.send(peer_id, protocol_id, frame) for peer_id in self.connected_peers())

    async def request(
        self, peer_id: str, protocol_id: str, payload: bytes, timeout_s: float = 10.0
    ) -> bytes:
        """Send a request and await the response body.

        Raises ``RequestTimeout``, ``RemoteError`` (the remote handler failed),
        ``PeerDisconnected`` (the stream died after the request was written),
        ``PeerUnavailable`` (unknown or banned peer) or ``QueueFull``.
        """
        core = self._require_running()
        spec = self._spec_for(protocol_id, "request")
        if len(payload) + ENVELOPE_BYTES > spec.max_frame_bytes:
            raise ValueError(f"request of {len(payload)} bytes exceeds {spec.max_frame_bytes}")
        peer = core.peers.get(peer_id)
        if peer is None or peer.banned() or not (peer.configured or peer.connected):
            raise PeerUnavailable(f"peer {peer_id} is unknown, unreachable or banned")
        session = self._session(core, peer, spec)
        request_id = next(self._request_ids) % MAX_REQUEST_ID
        fut: asyncio.Future[bytes] = core.loop.create_future()
        session.pending[request_id] = fut
        stats = self.metrics.proto(protocol_id)
        stats.requests_out += 1
        session.put(Entry(pack_envelope(KIND_REQUEST, request_id, bytes(payload)), request_id))
        try:
            async with asyncio.timeout(timeout_s):
                return await fut
        except TimeoutError:
            stats.request_timeouts += 1
            raise RequestTimeout(
                f"no response from {peer_id} on {protocol_id} within {timeout_s} s"
            ) from None
        finally:
            session.pending.pop(request_id, None)

    def _spec_for(self, protocol_id: str, kind: Kind) -> ProtocolSpec:
        spec = self._specs.get(protocol_id)
        if spec is None:
            return self._add_spec(protocol_id, kind, None, None)
        if spec.kind != kind:
            raise ValueError(f"{protocol_id} is a {spec.kind} protocol")
        return spec

    def _session(self, core: Core, peer: PeerState, spec: ProtocolSpec) -> OutboundSession:
        key = (peer.peer_id, spec.protocol_id)
        session = self._sessions.get(key)
        if session is None:
            session = self._sessions[key] = OutboundSession(core, peer, spec)
            core.spawn(session.run, name=f"session {session.label}")
        return session

    def _require_running(self) -> Core:
        if self._state != _RUNNING or self._core is None:
            raise NotRunning(f"p2p node is {self._state}")
        return self._core

    # ================================================================ state

    def connected_peers(self) -> list[str]:
        """Peers with a live connection that are not banned, sorted."""
        return sorted(p.peer_id for p in self._peers.values() if p.usable())

    def is_banned(self, peer_id: str) -> bool:
        peer = self._peers.get(peer_id)
        return peer is not None and peer.banned()

    def queued(self, peer_id: str | None = None, protocol_id: str | None = None) -> tuple[int, int]:
        """(frames, bytes) waiting in outbound queues, optionally for one peer/protocol.

        Lets a producer pace itself (e.g. block sync or a load generator) instead of
        overrunning the queue and having its oldest frames dropped.
        """
        frames = size = 0
        for (pid, proto), session in self._sessions.items():
            if (peer_id is None or pid == peer_id) and (
                protocol_id is None or proto == protocol_id
            ):
                frames += len(session.queue)
                size += session.queue.nbytes
        return frames, size

    def metrics_snapshot(self) -> dict[str, Any]:
        """Counters as plain dicts (frames/bytes per protocol, drops, reconnects, ...)."""
        snap = self.metrics.snapshot()
        snap["connected_peers"] = len(self.connected_peers())
        snap["queued_frames"], snap["queued_bytes"] = self.queued()
        return snap

    async def wait_for_peers(self, peer_ids: Iterable[str], timeout_s: float = 10.0) -> None:
        """Wait until all ``peer_ids`` are connected (start-up helper; raises TimeoutError)."""
        wanted = set(peer_ids)
        async with asyncio.timeout(timeout_s):
            while not wanted.issubset(self.connected_peers()):
                await asyncio.sleep(0.01)

    @property
    def bridge(self) -> TrioBridge | None:
        """The trio bridge while running (diagnostics and tests)."""
        return self._core.bridge if self._core is not None else None

    @property
    def libp2p_host(self) -> Any:
        """The underlying py-libp2p host while running (diagnostics and tests only)."""
        return self._core.host if self._core is not None else None


# ==================================================================== helpers


def _set_done(fut: asyncio.Future[None] | None) -> None:
    if fut is not None and not fut.done():
        fut.set_result(None)
