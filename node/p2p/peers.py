"""What the node knows about each peer: addresses, connection state, misbehaviour.

Why we keep addresses ourselves: libp2p's peerstore forgets an address 120 s after it
was added, and its dial path adds a 250 ms "happy eyeballs" pause plus a 60 s negative
cache after a failed dial. A validator that was down for two minutes would then never
be dialed again. So the configured multiaddrs live here, and ``P2PNode`` dials them with
``Swarm.dial_addr`` from its own reconnect loop with exponential backoff.
"""

from __future__ import annotations

import random
import time
from collections import deque
from dataclasses import dataclass, field

import trio
from libp2p.peer.id import ID
from multiaddr import Multiaddr

from node.p2p.liveness import Liveness


class PeerAddressError(ValueError):
    """A configured peer address is not ``.../p2p/<peer id>``."""


def parse_peer_multiaddr(text: str) -> tuple[str, Multiaddr]:
    """Split ``/ip4/1.2.3.4/tcp/26656/p2p/12D3Koo...`` into (peer id, transport addr)."""
    try:
        full = Multiaddr(text)
        peer_id = full.value_for_protocol("p2p")
    except Exception as exc:
        raise PeerAddressError(f"bad peer multiaddr {text!r}: {exc}") from None
    if not peer_id:
        raise PeerAddressError(f"peer multiaddr {text!r} lacks a /p2p/<peer id> part")
    try:
        ID.from_base58(peer_id)
    except Exception:
        raise PeerAddressError(f"bad peer id in {text!r}") from None
    return peer_id, full.decapsulate(Multiaddr(f"/p2p/{peer_id}"))


class Backoff:
    """Exponential backoff with +-20 % jitter, so restarted peers are not dialed in sync."""

    def __init__(
        self, initial_s: float, maximum_s: float, rng: random.Random | None = None
    ) -> None:
        self.initial_s = initial_s
        self.maximum_s = maximum_s
        self._next = initial_s
        self._rng = rng or random.Random()

    def reset(self) -> None:
        self._next = self.initial_s

    def next_delay(self) -> float:
        delay = self._next
        self._next = min(self._next * 2, self.maximum_s)
        return delay * self._rng.uniform(0.8, 1.2)


@dataclass
class BanPolicy:
    """How many bad frames in what window get a peer banned, and for how long."""

    bad_frame_limit: int = 3
    window_s: float = 60.0
    ban_s: float = 30.0
    max_ban_s: float = 600.0


@dataclass(eq=False)
class PeerState:
    """One peer: configured or learned from an inbound connection."""

    peer_id: str
    pid: ID
    addrs: list[Multiaddr] = field(default_factory=list)
    configured: bool = False
    connected: bool = False
    ever_connected: bool = False
    banned_until: float = 0.0
    ban_count: int = 0
    bad_frame_times: deque[float] = field(default_factory=deque)
    # Keepalive (keepalive.py): when we last heard from the peer, and whether its
    # watchdog task runs (one per peer, for as long as it is connected).
    liveness: Liveness = field(default_factory=lambda: Liveness(0.0, time.monotonic()))
    keepalive_running: bool = False
    _changed: trio.Event = field(default_factory=trio.Event)

    def banned(self, now: float | None = None) -> bool:
        return (time.monotonic() if now is None else now) < self.banned_until

    def heard(self) -> None:
        """Bytes arrived from this peer: its connection is alive."""
        self.liveness.heard(time.monotonic())

    def usable(self) -> bool:
        """Connected and not banned: streams may be opened."""
        return self.connected and not self.banned()

    def pulse(self) -> None:
        """Trio side: wake everything waiting for a change of this peer's state."""
        old, self._changed = self._changed, trio.Event()
        old.set()

    async def wait_change(self, timeout_s: float) -> None:
        """Trio side: wait for the next ``pulse`` (or the timeout, as a safety net)."""
        event = self._changed
        with trio.move_on_after(timeout_s):
            await event.wait()

    async def wait_usable(self) -> None:
        """Trio side: return once the peer is connected and not banned."""
        while not self.usable():
            await self.wait_change(1.0)

    def record_bad_frame(self, policy: BanPolicy) -> bool:
        """Count one bad frame; True if the peer must now be banned."""
        now = time.monotonic()
        times = self.bad_frame_times
        times.append(now)
        while times and times[0] < now - policy.window_s:
            times.popleft()
        if len(times) < policy.bad_frame_limit or self.banned(now):
            return False
        times.clear()
        self.banned_until = now + min(policy.ban_s * (2**self.ban_count), policy.max_ban_s)
        self.ban_count += 1
        return True
