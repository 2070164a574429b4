"""Counters of the p2p layer.

Plain integers bumped on the asyncio/trio thread (both run on one thread, so no locks).
``snapshot()`` returns a JSON-ready dict for the node's /metrics endpoint and tests.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class ProtocolStats:
    """Traffic and failures of one protocol id, summed over all peers."""

    frames_in: int = 0
    bytes_in: int = 0
    frames_out: int = 0
    bytes_out: int = 0
    # Outbound frames discarded: queue overflow (oldest first), unknown/banned peer,
    # or a frame that broke its stream three times in a row.
    dropped_out: int = 0
    # Oversized or undecodable inbound frames (each closes its stream).
    bad_frames: int = 0
    # Exceptions other than BadFrame raised by our own handlers.
    handler_errors: int = 0
    requests_out: int = 0
    requests_in: int = 0
    request_timeouts: int = 0
    request_failures: int = 0
    late_responses: int = 0


@dataclass
class P2PMetrics:
    """All counters of one ``P2PNode``."""

    protocols: dict[str, ProtocolStats] = field(default_factory=dict)
    bad_frames_by_peer: Counter[str] = field(default_factory=Counter)
    dials: int = 0
    dial_failures: int = 0
    # Connections regained to a peer we had been connected to before (dialed by
    # either side).
    reconnects: int = 0
    # Keepalive: pings written, pongs read, and peers found silent for the peer timeout
    # (their connections were closed and redialed).
    pings_out: int = 0
    pongs_in: int = 0
    peer_timeouts: int = 0
    bans: int = 0
    streams_opened: int = 0
    stream_failures: int = 0
    inbound_streams: int = 0
    rejected_streams: int = 0

    def proto(self, protocol_id: str) -> ProtocolStats:
        """Counters for ``protocol_id``, created on first use."""
        stats = self.protocols.get(protocol_id)
        if stats is None:
            stats = self.protocols[protocol_id] = ProtocolStats()
        return stats

    def snapshot(self) -> dict[str, Any]:
        """A deep copy as plain dicts and ints."""
        out: dict[str, Any] = {
            key: value
            for key, value in asdict(self).items()
            if key not in ("protocols", "bad_frames_by_peer")
        }
        out["protocols"] = {pid: asdict(stats) for pid, stats in self.protocols.items()}
        out["bad_frames_by_peer"] = dict(self.bad_frames_by_peer)
        return out
