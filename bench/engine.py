"""The engine's own calls, timed alone: claim + settle in batches, enqueue one item per
call and in batches, and a no-op drain through a worker. Used to tell the engine's cost
from everything around it when an end-to-end benchmark moves (docs/benchmarks.md).

Run: python -m bench.engine [--rounds 3] [--postgres]
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.postgres import fresh_queue as pg_queue
from bench.postgres import server
from bench.run import drain_rate, enqueue_rate, fresh_queue
from stockyard.engine import Outcome, Queue, Request
from stockyard.tenancy import Tenancy


def claim_and_settle(queue: Queue, n: int) -> float:
    """Items per second through claim and settle in batches of 1,000, no worker."""
    enqueue_rate(queue, n)
    queue.register_worker("bench", "bench", 0)
    started = time.perf_counter()
    jobs = queue.claim("bench", 1000)
    while jobs:
        now = time.time()
        jobs, _ = queue.settle("bench", [Outcome(j, "done", now) for j in jobs], 1000)
    return n / (time.perf_counter() - started)


def single_enqueue(queue: Queue, n: int) -> float:
    client = Tenancy(queue.db).client_id("default")
    started = time.perf_counter()
    for i in range(n):
        queue.enqueue(client, [Request("sync_order", {"n": i})])
    return n / (time.perf_counter() - started)


def worker_drain(queue: Queue, n: int, batch: int | None = None) -> float:
    """A no-op drain through a worker, timed to its last handler call."""
    enqueue_rate(queue, n)
    return drain_rate(queue, n, ["sync_order"], batch)


MEASURES: dict[str, tuple[Callable[[Queue, int], float], int]] = {
    "claim + settle, batches of 1000": (claim_and_settle, 20_000),
    "enqueue, batches of 1000": (enqueue_rate, 20_000),
    "enqueue, one item per call": (single_enqueue, 1_000),
    "drain no-op through a worker": (worker_drain, 30_000),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3, help="fresh databases per measure")
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL, not SQLite")
    parser.add_argument(
        "--claim-sizes",
        help="only the worker drain, once per claim size, alternating (e.g. 64,256,1000)",
    )
    args = parser.parse_args()
    logging.getLogger("stockyard.worker").setLevel(logging.ERROR)
    postgres = server(None) if args.postgres else contextlib.nullcontext(None)
    with tempfile.TemporaryDirectory() as tmp, postgres as dbs:
        if args.claim_sizes:
            sizes = [int(x) for x in args.claim_sizes.split(",")]
            by_size: dict[int, list[float]] = {size: [] for size in sizes}
            for r in range(args.rounds):
                for size in sizes:
                    queue = pg_queue(dbs) if dbs else fresh_queue(Path(tmp), f"c{size}-{r}.db")
                    by_size[size].append(worker_drain(queue, 20_000, size))
                    queue.db.close()
            for size, got in by_size.items():
                title = f"drain no-op, claims of {size}"
                print(f"{title:34} " + " / ".join(f"{x:9,.0f}" for x in got) + " items/s")
            return
        for title, (measure, n) in MEASURES.items():
            rates = []
            for r in range(args.rounds):
                queue = pg_queue(dbs) if dbs else fresh_queue(Path(tmp), f"{title[:5]}{r}.db")
                rates.append(measure(queue, n))
                queue.db.close()
            print(f"{title:34} " + " / ".join(f"{x:9,.0f}" for x in rates) + " items/s")


if __name__ == "__main__":
    main()
