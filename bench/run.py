"""Benchmarks of docs/benchmarks.md: Stockyard on SQLite against Huey on SQLite, same
process, same machine. Run: make bench (or python -m bench.run --help)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

from stockyard.db import connect
from stockyard.engine import Queue, Request
from stockyard.engine.handlers import Context, HandlerRegistry
from stockyard.engine.worker import Worker, WorkerSettings
from stockyard.flows.catalog import default_instructions
from stockyard.tenancy import Tenancy


def fresh_queue(folder: Path, name: str, synchronous: str = "") -> Queue:
    """A migrated SQLite queue with the default client; `synchronous` overrides the
    backend's NORMAL (e.g. FULL, Huey's)."""
    db = connect(
        f"sqlite:///{folder / name}" + (f"?synchronous={synchronous}" if synchronous else "")
    )
    db.migrate()
    queue = Queue(db, default_instructions())
    Tenancy(queue.db).ensure_client("default")
    return queue


def drain(queue: Queue, handler: Any, instructions: list[str], batch: int | None = None) -> float:
    """Seconds a worker takes to run everything queued; `batch`: its claim size (None:
    the worker's default)."""
    registry = HandlerRegistry()
    registry.register_all(instructions, handler)
    settings = WorkerSettings(concurrency=1000, poll_interval=0.01)
    if batch is not None:
        settings = dataclasses.replace(settings, batch=batch)
    worker = Worker(queue, registry, settings, connection=Tenancy(queue.db).connection)
    started = time.perf_counter()
    asyncio.run(worker.run(stop_when_idle=True))
    return time.perf_counter() - started


async def noop(ctx: Context) -> None:
    return None


def drain_rate(queue: Queue, n: int, instructions: list[str], batch: int | None = None) -> float:
    """Items per second of a no-op drain of `n` queued items, from the worker's start to
    its n-th handler call. `drain`'s clock also holds the worker's exit, which on
    PostgreSQL waits up to half a second for its LISTEN thread: too coarse for a drain of
    a second or two."""
    calls = 0
    last = 0.0

    async def counted(ctx: Context) -> None:
        nonlocal calls, last
        calls += 1
        last = time.perf_counter()

    started = time.perf_counter()
    drain(queue, counted, instructions, batch)
    assert calls == n, f"{calls} handler calls for {n} items"
    return n / (last - started)


def enqueue_rate(queue: Queue, n: int, batch: int = 1000) -> float:
    client = Tenancy(queue.db).client_id("default")
    started = time.perf_counter()
    for start in range(0, n, batch):
        queue.enqueue(
            client, [Request("sync_order", {"n": i}) for i in range(start, start + batch)]
        )
    return n / (time.perf_counter() - started)


def huey_rates(folder: Path, n: int) -> tuple[float, float]:
    from huey import SqliteHuey

    huey = SqliteHuey(filename=str(folder / "huey.db"))

    @huey.task()
    def work(i: int) -> None:
        return None

    started = time.perf_counter()
    for i in range(n):
        work(i)
    enqueue = n / (time.perf_counter() - started)
    started = time.perf_counter()
    done = 0
    while (task := huey.dequeue()) is not None:
        huey.execute(task)
        done += 1
    assert done == n
    return enqueue, n / (time.perf_counter() - started)


def lanes_rate(folder: Path, lanes: int, per_lane: int) -> float:
    return lanes_rate_on(fresh_queue(folder, "lanes.db"), lanes, per_lane)


def lanes_rate_on(queue: Queue, lanes: int, per_lane: int) -> float:
    """`lanes` blocking lanes of `per_lane` items each, drained by one in-process worker;
    asserts that every lane ran in order."""
    client = Tenancy(queue.db).client_id("default")
    ids = [
        Tenancy(queue.db).add_connection(client, "channel", "demo", f"Shop {n}").id
        for n in range(lanes)
    ]
    queue.enqueue(
        client, [Request("update_variant", {}, ids[n % lanes]) for n in range(lanes * per_lane)]
    )
    seen: dict[int, list[int]] = {}

    async def record(ctx: Context) -> None:
        seen.setdefault(ctx.job.lane_id or 0, []).append(ctx.job.id)

    elapsed = drain(queue, record, ["update_variant"])
    assert all(s == sorted(s) and len(s) == per_lane for s in seen.values()), "order broken"
    return lanes * per_lane / elapsed


def backlog_rate(folder: Path, backlog: int, blocked: int, n: int) -> tuple[float, float]:
    empty = fresh_queue(folder, "empty.db")
    enqueue_rate(empty, n)
    empty_rate = n / drain(empty, noop, ["sync_order"])
    queue = fresh_queue(folder, "backlog.db")
    client = Tenancy(queue.db).client_id("default")
    lanes = [
        Tenancy(queue.db).add_connection(client, "channel", "demo", f"S{n}").id
        for n in range(blocked)
    ]
    # Every lane's head fails permanently: 1,000 blocked lanes with the backlog behind them.
    queue.enqueue(client, [Request("add_product", {"fail": 1}, lane) for lane in lanes])
    for start in range(0, backlog, 10_000):
        queue.enqueue(
            client,
            [
                Request("update_variant", {}, lanes[i % blocked])
                for i in range(start, min(start + 10_000, backlog))
            ],
        )

    async def fail_heads(ctx: Context) -> None:
        if ctx.payload.get("fail"):
            raise ValueError("bad product")

    drain(queue, fail_heads, ["add_product"])
    assert all(lane.state == "blocked" for lane in queue.lanes(client))
    enqueue_rate(queue, n)
    return empty_rate, n / drain(queue, noop, ["sync_order", "update_variant"])


def main() -> None:
    # The backlog benchmark fails 1,000 lane heads on purpose: a line each is not news.
    logging.getLogger("stockyard.worker").setLevel(logging.ERROR)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=100_000, help="items for (a) and (b)")
    parser.add_argument("--backlog", type=int, default=1_000_000, help="backlog for (d)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        a = enqueue_rate(fresh_queue(folder, "a.db"), args.n)
        b_queue = fresh_queue(folder, "b.db")
        enqueue_rate(b_queue, args.n)
        b = args.n / drain(b_queue, noop, ["sync_order"])
        huey_n = min(args.n, 20_000)
        huey_enqueue, huey_drain = huey_rates(folder, huey_n)
        print(
            f"(a) enqueue in batches of 1000: {a:10,.0f} items/s   "
            f"huey {huey_enqueue:8,.0f}/s   ratio {a / huey_enqueue:5.1f}x"
        )
        print(
            f"(b) drain no-op non-blocking:   {b:10,.0f} items/s   "
            f"huey {huey_drain:8,.0f}/s   ratio {b / huey_drain:5.1f}x"
        )
        c = lanes_rate(folder, 500, 40)
        print(f"(c) 500 lanes x 40 blocking:    {c:10,.0f} items/s   order held")
        empty, loaded = backlog_rate(folder, args.backlog, 1000, 50_000)
        print(
            f"(d) drain with {args.backlog:,} blocked backlog: {loaded:,.0f}/s vs empty "
            f"{empty:,.0f}/s = {loaded / empty:.0%}"
        )


if __name__ == "__main__":
    main()
