"""Prometheus metrics.

Two sources: the database (unfinished items by status and instruction, lanes, workers: true
for the whole deployment, read at most every few seconds), and this process's workers
(throughput and latencies: each process reports its own, as Prometheus expects).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from stockyard.engine import Outcome, Queue, QueueStats

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
STATS_TTL = 5.0
disable_created_metrics()  # type: ignore[no-untyped-call]  # the *_created series only double what scrapers send
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600)


class _QueueCollector(Collector):
    def __init__(self, queue: Queue) -> None:
        self.queue = queue
        self._cached: tuple[float, QueueStats] | None = None
        self._lock = threading.Lock()

    def _stats(self) -> QueueStats:
        with self._lock:
            now = time.monotonic()
            if self._cached is None or now - self._cached[0] > STATS_TTL:
                self._cached = (now, self.queue.stats())
            return self._cached[1]

    def collect(self) -> Iterator[Metric]:
        stats = self._stats()
        items = GaugeMetricFamily(
            "stockyard_items",
            "Unfinished queue items by status and instruction",
            labels=["status", "instruction"],
        )
        for (status, instruction), count in sorted(stats.items.items()):
            items.add_metric([status, instruction], count)
        yield items
        for name, help_text, value in (
            ("stockyard_lanes", "Lanes (one per source or channel)", stats.lanes),
            ("stockyard_lanes_blocked", "Lanes whose head item failed", stats.blocked_lanes),
            ("stockyard_lanes_paused", "Lanes paused by an operator", stats.paused_lanes),
            ("stockyard_workers", "Workers with a heartbeat in the last minute", stats.workers),
        ):
            yield GaugeMetricFamily(name, help_text, value=value)


class Metrics:
    def __init__(self, queue: Queue) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_QueueCollector(queue))
        self.processed = Counter(
            "stockyard_items_processed",
            "Attempts finished by this process's workers, by instruction and outcome",
            ["instruction", "outcome"],
            registry=self.registry,
        )
        self.run_seconds = Histogram(
            "stockyard_item_run_seconds",
            "How long handlers ran, per attempt",
            ["instruction"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.wait_seconds = Histogram(
            "stockyard_item_wait_seconds",
            "From an item being due to a worker claiming it",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )

    def observe(self, outcomes: Sequence[Outcome]) -> None:
        """The worker's hook: one call per settled batch."""
        for o in outcomes:
            job = o.job
            self.processed.labels(job.instruction, o.kind).inc()
            self.run_seconds.labels(job.instruction).observe(max(o.ended_at - job.started_at, 0.0))
            self.wait_seconds.observe(max(job.started_at - job.run_after, 0.0))

    def render(self) -> bytes:
        return generate_latest(self.registry)
