"""Prometheus metrics of one node (``/metrics``), on a registry of its own.

A registry per node rather than prometheus_client's global one: tests and devnet tools run
several nodes in one process, and each must count only its own blocks and requests.

Counters (``_total``): committed transactions, rejections by receipt code, RPC requests by
route. Histograms: block interval, apply time, and submit-to-commit latency of the
transactions this node's RPC admitted. Gauges: the point-in-time figures the node had
before (height, mempool, peers, ...), read when /metrics is scraped.
"""

from __future__ import annotations

import collections
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from node.jsonfmt import code_name

# submit times kept for the latency histogram; a tx that never commits ages out
MAX_TRACKED = 100_000
_MS_BUCKETS = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000)


class NodeMetrics:
    def __init__(self) -> None:
        disable_created_metrics()  # type: ignore[no-untyped-call]  # the *_created gauges only double the output (process-wide setting)
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.txs_committed = Counter("bookchain_txs_committed", "Transactions committed in blocks (any code)",
                                     registry=r)
        self.tx_rejections = Counter("bookchain_tx_rejections", "Committed transactions whose receipt is not OK",
                                     ["code"], registry=r)
        self.rpc_requests = Counter("bookchain_rpc_requests", "RPC requests answered, by route", ["route"],
                                    registry=r)
        self.block_interval = Histogram("bookchain_block_interval_ms", "Wall time between consecutive commits (ms)",
                                        buckets=(50, 100, 250, 500, 1000, 2000, 5000, 10_000, 30_000), registry=r)
        self.apply_time = Histogram("bookchain_apply_ms", "Execution + storage time of a block (ms)",
                                    buckets=(1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 5000), registry=r)
        self.commit_latency = Histogram("bookchain_submit_to_commit_ms",
                                        "From admission through this node's RPC to the commit of the block (ms)",
                                        buckets=_MS_BUCKETS, registry=r)
        self.admission_time = Histogram("bookchain_admission_ms",
                                        "Time to answer a client's submission (one batch): checks, "
                                        "signature verification, admission (ms)",
                                        buckets=(0.5, 1, 2.5, 5, 10, 25, 50, 75, 100, 150, 200, 300, 400, 500,
                                                 750, 1000, 2500), registry=r)
        self.loop_lag = Histogram("bookchain_event_loop_lag_ms",
                                  "How late the event loop ran a 20 ms timer (ms): what any request, frame "
                                  "or consensus step waited for on top of its own work",
                                  buckets=(1, 2.5, 5, 10, 25, 50, 75, 100, 150, 250, 500, 1000, 2500), registry=r)
        self._submitted: OrderedDict[bytes, float] = OrderedDict()
        self._readings = _Readings()
        r.register(self._readings)

    def gauge(self, name: str, help_text: str, read: Callable[[], float]) -> None:
        """A gauge read at scrape time (``read`` must be cheap)."""
        self._readings.items.append((False, name, help_text, read))

    def counter_from(self, name: str, help_text: str, read: Callable[[], float]) -> None:
        """A counter whose running total lives elsewhere (e.g. the consensus driver's),
        read at scrape time; ``name`` without ``_total``."""
        self._readings.items.append((True, name, help_text, read))

    # ------------------------------------------------------------------ hooks
    def on_admitted(self, tx_hashes: Iterable[bytes], answer_ms: float | None = None) -> None:
        if answer_ms is not None:
            self.admission_time.observe(answer_ms)
        now = time.monotonic()
        for h in tx_hashes:
            self._submitted[h] = now
        while len(self._submitted) > MAX_TRACKED:
            self._submitted.popitem(last=False)

    def on_block(self, hashes: Iterable[bytes], codes: Iterable[int], apply_ms: float,
                 interval_ms: float | None) -> None:
        now = time.monotonic()
        n = 0
        rejected: collections.Counter[int] = collections.Counter()  # one labelled increment per code
        submitted, observe = self._submitted, self.commit_latency.observe
        for h, code in zip(hashes, codes, strict=False):
            n += 1
            if code != 0:
                rejected[code] += 1
            t = submitted.pop(h, None)
            if t is not None:
                observe((now - t) * 1000)
        for code, count in rejected.items():
            self.tx_rejections.labels(code=code_name(code)).inc(count)
        self.txs_committed.inc(n)
        self.apply_time.observe(apply_ms)
        if interval_ms is not None:
            self.block_interval.observe(interval_ms)

    def on_request(self, route: str) -> None:
        self.rpc_requests.labels(route=route).inc()

    # ------------------------------------------------------------------ exposition
    def text(self) -> str:
        return generate_latest(self.registry).decode()


class _Readings(Collector):
    """Figures the node already holds, exposed at scrape time with their proper type."""

    def __init__(self) -> None:
        self.items: list[tuple[bool, str, str, Callable[[], float]]] = []

    def collect(self) -> Iterable[Metric]:
        for is_counter, name, help_text, read in self.items:
            try:
                value = float(read())
            except Exception:  # a scrape must never fail on one figure
                continue
            yield (CounterMetricFamily if is_counter else GaugeMetricFamily)(name, help_text, value=value)

    def describe(self) -> Iterable[Metric]:
        return []
