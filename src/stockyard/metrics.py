"""Prometheus metrics.

Two sources: the database (unfinished items by status and instruction, lanes, workers: true
for the whole deployment, read at most every few seconds), and this process's workers
(throughput and latencies: each process reports its own, as Prometheus expects).
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Iterator, Sequence

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from stockyard.engine import Outcome, Queue, QueueStats

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
STATS_TTL = 5.0
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


class _Latencies:
    """A labelled histogram kept as plain counts: the worker adds to it for every item on
    its hot path, where prometheus_client's locked per-label objects cost a quarter of a
    no-op item's throughput (measured: docs/benchmarks.md)."""

    def __init__(self, name: str, help_text: str, label: str | None) -> None:
        self.name, self.help_text, self.label = name, help_text, label
        self.series: dict[str, tuple[list[int], list[float]]] = {}

    def add(self, key: str, value: float) -> None:
        found = self.series.get(key)
        if found is None:
            found = self.series[key] = ([0] * (len(_LATENCY_BUCKETS) + 1), [0.0])
        found[0][bisect.bisect_left(_LATENCY_BUCKETS, value)] += 1
        found[1][0] += value

    def family(self) -> HistogramMetricFamily:
        family = HistogramMetricFamily(
            self.name, self.help_text, labels=[self.label] if self.label else None
        )
        for key, (counts, total) in sorted(self.series.items()):
            running, buckets = 0, []
            for bound, count in zip((*map(str, _LATENCY_BUCKETS), "+Inf"), counts, strict=True):
                running += count
                buckets.append((bound, running))
            family.add_metric([key] if self.label else [], buckets, total[0])
        return family


class _WorkerCollector(Collector):
    """What this process's workers did: throughput by instruction and outcome, and the run
    and wait latencies."""

    def __init__(self) -> None:
        self.processed: dict[tuple[str, str], int] = {}
        self.run = _Latencies(
            "stockyard_item_run_seconds", "How long handlers ran, per attempt", "instruction"
        )
        self.wait = _Latencies(
            "stockyard_item_wait_seconds", "From an item being due to a worker claiming it", None
        )

    def collect(self) -> Iterator[Metric]:
        processed = CounterMetricFamily(
            "stockyard_items_processed",
            "Attempts finished by this process's workers, by instruction and outcome",
            labels=["instruction", "outcome"],
        )
        for (instruction, outcome), count in sorted(self.processed.items()):
            processed.add_metric([instruction, outcome], count)
        yield processed
        yield self.run.family()
        yield self.wait.family()


class Metrics:
    def __init__(self, queue: Queue) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_QueueCollector(queue))
        self._workers = _WorkerCollector()
        self.registry.register(self._workers)

    def observe(self, outcomes: Sequence[Outcome]) -> None:
        """The worker's hook: one call per settled batch, on its event loop."""
        workers = self._workers
        processed = workers.processed
        for o in outcomes:
            job = o.job
            key = (job.instruction, o.kind)
            processed[key] = processed.get(key, 0) + 1
            workers.run.add(job.instruction, max(o.ended_at - job.started_at, 0.0))
            workers.wait.add("", max(job.started_at - job.run_after, 0.0))

    def render(self) -> bytes:
        return generate_latest(self.registry)
