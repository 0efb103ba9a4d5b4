"""What the workers' metrics cost: draining no-op items with and without the metrics hook,
alternating in one process (docs/benchmarks.md). Run: python -m bench.metrics"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from bench.run import fresh_queue, noop
from stockyard.engine import Request
from stockyard.engine.handlers import HandlerRegistry
from stockyard.engine.worker import Worker, WorkerSettings
from stockyard.metrics import Metrics
from stockyard.tenancy import Tenancy


def drain_rate(n: int, observe: bool) -> float:
    queue = fresh_queue(Path(tempfile.mkdtemp(prefix="stockyard-bench-metrics-")), "m.db")
    client = Tenancy(queue.db).client_id("default")
    for start in range(0, n, 1000):
        queue.enqueue(client, [Request("sync_order", {"n": i}) for i in range(start, start + 1000)])
    registry = HandlerRegistry()
    registry.register("sync_order", noop)
    metrics = Metrics(queue)
    worker = Worker(
        queue,
        registry,
        WorkerSettings(concurrency=1000, poll_interval=0.01),
        observe=metrics.observe if observe else None,
        connection=Tenancy(queue.db).connection,
    )
    started = time.perf_counter()
    asyncio.run(worker.run(stop_when_idle=True))
    rate = n / (time.perf_counter() - started)
    queue.db.close()
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=40_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    for _ in range(args.rounds):
        without, with_metrics = drain_rate(args.items, False), drain_rate(args.items, True)
        print(
            f"without {without:,.0f}/s, with metrics {with_metrics:,.0f}/s"
            f" ({with_metrics / without:.2f}x)"
        )


if __name__ == "__main__":
    main()
