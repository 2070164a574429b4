"""When a connected peer counts as dead: the keepalive's decision, without I/O.

Why the node decides this itself: a network cut does not close a TCP connection. Both
ends keep it ESTABLISHED, writes pile up in the socket buffer and the kernel retransmits
with an exponential back-off (RTO up to 120 s). After the cut heals the connection does
carry data again, but only at the next retransmission, which came 13 s late on a devnet
after a 2-2 split. So we declare a peer dead once it has been silent for ``timeout_s``
(no pong, and no frame on any stream either: a pong stuck behind a large proposal on the
same TCP connection is not silence) and close its connections ourselves; a fresh dial
then finds the peer as soon as the network carries a SYN again.

The clock is passed in (``now`` in seconds, any monotonic origin), so the rules are
tested with a fake clock.
"""

from __future__ import annotations


class Liveness:
    """Last time we heard from one peer and whether that is too long ago."""

    __slots__ = ("last_heard", "timeout_s")

    def __init__(self, timeout_s: float, now: float) -> None:
        self.timeout_s = timeout_s
        self.last_heard = now

    @property
    def enabled(self) -> bool:
        return self.timeout_s > 0

    def heard(self, now: float) -> None:
        """Any bytes from the peer (a pong or a frame) prove the connection carries data."""
        if now > self.last_heard:
            self.last_heard = now

    def restart(self, now: float) -> None:
        """A new connection starts with a clean record: the old silence was another
        connection's, and the new one has just proven itself with a handshake."""
        self.last_heard = now

    def silent_for(self, now: float) -> float:
        return max(0.0, now - self.last_heard)

    def expired(self, now: float) -> bool:
        """True once the peer has been silent for the whole timeout."""
        return self.enabled and self.silent_for(now) >= self.timeout_s

    def until_expiry(self, now: float) -> float:
        """Seconds left before ``expired`` turns true if nothing more is heard."""
        return max(0.0, self.last_heard + self.timeout_s - now)
