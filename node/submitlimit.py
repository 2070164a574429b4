"""A byte-rate limit per client on request bodies (submissions, ``/info``, ``/exchange``).

The node reads, decodes and hashes every body it accepts on the event loop that also runs
consensus, before the mempool judges a single tx: a client posting 585 KB batches of junk to
``/broadcast_txs`` back to back spent that loop time as fast as it could send. Each client
(its remote address) has a token bucket of body bytes: ``bytes_per_s`` sustained, ``burst``
at most; a request counts at least ``REQUEST_FLOOR`` bytes, a request without a body (a
light ``GET``, a websocket handshake) included, so a flood of tiny requests is bounded too
(by request rate: one address's 1,900 ``/health`` a second had raised another client's
p50 from 2.4 to 23 ms). A request over its client's bucket is refused before its body
is read (HTTP 429 ``RATE_LIMITED``, retryable). At most ``max_clients`` clients are tracked,
the least recently seen forgotten first; ``exempt`` addresses (loopback by default) are not
limited.

The per-client buckets alone let many addresses together (a botnet, or one host rotating
through its IPv6 /64s and past the tracked clients) make the node read as much as they
like: every other client's bucket was its own. So all non-exempt clients' bytes also
share a node-wide bucket (``node_bytes_per_s``, ``node_burst``, several clients' worth):
past it a request is refused unread as well, 503 ``NOT_READY`` (the node, not the client,
is at its limit), and the loop keeps its time for consensus and the clients it already
admitted."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from node.readbudget import LOOPBACK, MAX_CLIENTS, Bucket, ClientBuckets
from state.errors import Code

# A 585 KB batch of junk txs held a node's loop ~190 ms (decode, admission, the answer):
# 256 KiB/s lets one client spend ~8% of the loop that way, and still carries ~1,300 txs a
# second in JSON (~2,600 in msgpack), more than a third of what a devnet commits.
DEFAULT_BYTES_PER_S = 256 * 1024
DEFAULT_BURST = 1024 * 1024
DEFAULT_NODE_BYTES_PER_S = 16 * DEFAULT_BYTES_PER_S  # 4 MiB/s: ~20,000 txs a second in JSON, past any devnet's capacity
DEFAULT_NODE_BURST = 16 * DEFAULT_BURST
REQUEST_FLOOR = 256  # bytes a request counts at least: 1,024 requests a second sustained
REFUSED = "this client is over its rate of request bytes to this node; retry later"
NODE_REFUSED = "this node takes no more request bytes from clients just now; retry later"


class SubmitLimit:
    """The per-client byte buckets (see the module docstring)."""

    __slots__ = ("_clients", "_node", "burst", "bytes_per_s", "clock", "exempt", "max_clients", "node_burst",
                 "node_bytes_per_s", "refused", "refused_node")

    def __init__(self, bytes_per_s: int = DEFAULT_BYTES_PER_S, burst: int = DEFAULT_BURST, *,
                 node_bytes_per_s: int = DEFAULT_NODE_BYTES_PER_S, node_burst: int = DEFAULT_NODE_BURST,
                 exempt: Iterable[str] = LOOPBACK, max_clients: int = MAX_CLIENTS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.bytes_per_s = bytes_per_s
        self.burst = burst
        self.node_bytes_per_s = node_bytes_per_s
        self.node_burst = node_burst
        self.exempt = frozenset(exempt)
        self.max_clients = max_clients
        self.clock = clock
        self._clients = ClientBuckets(float(bytes_per_s), float(burst), self.exempt, max_clients)
        self._node = Bucket(float(node_burst), clock())
        self.refused = 0  # refusals of a client over its own rate
        self.refused_node = 0  # refusals because all clients together were over the node's

    @property
    def tracked_clients(self) -> int:
        return len(self._clients)

    def admit(self, client: str | None, size: int) -> bool:
        """``refusal(client, size) is None``: charged, or False and nothing charged."""
        return self.refusal(client, size) is None

    def refusal(self, client: str | None, size: int) -> Code | None:
        """Charge ``client`` for a body of ``size`` bytes (None), or refuse it with nothing
        charged: ``RATE_LIMITED`` (the client is over its rate) or ``NOT_READY`` (all
        clients together are over the node's). A client with any bytes left may send one
        more body of any size (up to the body cap): its bucket, and the node's, then go
        negative and wait the debt off."""
        if client is None or client in self.exempt:
            return None
        now = self.clock()
        bucket = self._clients.get(client, now)
        assert bucket is not None  # (neither exempt nor unknown: checked above)
        if bucket.tokens <= 0:
            self.refused += 1
            return Code.RATE_LIMITED
        node = self._node
        node.refill(now, float(self.node_bytes_per_s), float(self.node_burst))
        if node.tokens <= 0:
            self.refused_node += 1
            return Code.NOT_READY
        cost = max(size, REQUEST_FLOOR)
        bucket.tokens -= cost
        node.tokens -= cost
        return None
