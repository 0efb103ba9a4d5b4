"""Draining beside a large blocked backlog (docs/benchmarks.md): the rate of N no-op
non-blocking items drained by one in-process worker on a queue that also holds a backlog
of blocked lane items that never run, against the same drain on an empty queue, in the
same run, alternating. Meant to run alone: it prints the load average before and after.

The backlog is built with the engine's own calls: one `add_product` head per lane, then
the backlog's `update_variant` items in batches of 10,000 behind them (Queue.enqueue),
then every head claimed and settled as a permanent failure (Queue.claim/settle), which
blocks its lane. The build's writes are checkpointed before the clock starts.

Run: python -m bench.backlog [--backend sqlite|postgres] [--backlog 1000000] [-n N]
PostgreSQL runs on a throwaway durable server (bench.postgres.local_server); --profile
adds pg_stat_statements and auto_explain there and prints what the drains cost.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from systems.postgres import Databases, LocalServer

from bench.postgres import fresh_queue as pg_queue
from bench.postgres import local_server
from bench.run import drain_rate, enqueue_rate, fresh_queue
from stockyard.engine import ItemFilter, Outcome, Queue, Request
from stockyard.tenancy import Tenancy

WORKER = "bench-backlog"


def build_backlog(queue: Queue, backlog: int, lanes: int) -> float:
    """`lanes` blocked lanes with `backlog` items behind their failed heads; seconds taken."""
    started = time.perf_counter()
    tenancy = Tenancy(queue.db)
    client = tenancy.client_id("default")
    ids = [tenancy.add_connection(client, "channel", "demo", f"S{k}").id for k in range(lanes)]
    queue.enqueue(client, [Request("add_product", {"fail": 1}, lane) for lane in ids])
    for start in range(0, backlog, 10_000):
        end = min(start + 10_000, backlog)
        queue.enqueue(
            client, [Request("update_variant", {}, ids[i % lanes]) for i in range(start, end)]
        )
        if start % 1_000_000 == 0 and start:
            print(f"  {start:,} enqueued, {time.perf_counter() - started:.0f} s", flush=True)
    queue.register_worker(WORKER, "bench", os.getpid())
    heads = 0
    while jobs := queue.claim(WORKER, 1000):
        assert all(job.instruction == "add_product" for job in jobs), "a backlog item ran"
        now = time.time()
        queue.settle(
            WORKER, [Outcome(job, "permanent", now, "bench: a failed head") for job in jobs]
        )
        heads += len(jobs)
    queue.stop_worker(WORKER)
    assert heads == lanes, f"{heads} heads failed of {lanes}"
    assert all(lane.state == "blocked" for lane in queue.lanes(client))
    return time.perf_counter() - started


def queued(queue: Queue) -> int:
    return queue.count(ItemFilter(Tenancy(queue.db).client_id("default"), statuses=("queued",)))


def checkpoint(queue: Queue) -> None:
    conn = queue.db.connection()
    if queue.db.backend == "sqlite":
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    else:
        conn.execute("CHECKPOINT")
        conn.commit()


def drained(queue: Queue, n: int) -> float:
    """Enqueue n no-op items, then drain them: items/s from the worker's start to its last
    handler call. The backlog's instructions have handlers too: were a blocked item ever
    claimed, the count would be off and the run fail."""
    enqueue_rate(queue, n)
    return drain_rate(queue, n, ["sync_order", "update_variant", "add_product"])


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


@contextlib.contextmanager
def queues(
    backend: str, profile: bool
) -> Iterator[tuple[Callable[[], Queue], Callable[[Queue], str]]]:
    """Yields a maker of fresh queues and a description of a queue's size on disk."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            names = iter(range(1000))

            def sqlite_size(queue: Queue) -> str:
                path = Path(queue.db.url.removeprefix("sqlite:///"))
                size = sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
                return f"file {size / 2**20:,.0f} MiB"

            yield (lambda: fresh_queue(Path(tmp), f"q{next(names)}.db")), sqlite_size
        return
    with local_server() as local:
        if profile:
            enable_profiling(local)
        dbs = Databases(local.url())

        def pg_size(queue: Queue) -> str:
            size = (
                queue.db.connection()
                .execute("SELECT pg_database_size(current_database())")
                .fetchone()[0]
            )
            du = subprocess.run(["du", "-sh", str(local.data)], capture_output=True, text=True)
            return (
                f"pg_database_size {size / 2**20:,.0f} MiB,"
                f" du of the data directory {du.stdout.split()[0]}"
            )

        yield (lambda: pg_queue(dbs)), pg_size
        if profile:
            print((local.root / "log").read_text()[-200_000:])


def enable_profiling(local: LocalServer) -> None:
    import psycopg

    with psycopg.connect(local.url(), autocommit=True) as conn:
        for sql in [
            "LOAD 'auto_explain'",  # its settings exist once loaded
            "ALTER SYSTEM SET shared_preload_libraries = pg_stat_statements, auto_explain",
            "ALTER SYSTEM SET auto_explain.log_min_duration = '20ms'",
            "ALTER SYSTEM SET auto_explain.log_analyze = on",
            "ALTER SYSTEM SET auto_explain.log_buffers = on",
            "ALTER SYSTEM SET log_checkpoints = on",
        ]:
            conn.execute(sql.encode())
    local.stop()
    local.start()


def statements(queue: Queue) -> None:
    conn = queue.db.connection()
    rows = conn.execute(
        "SELECT calls, total_exec_time, shared_blks_hit, shared_blks_read, left(query, 160)"
        " FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database"
        " WHERE datname = current_database()) ORDER BY total_exec_time DESC LIMIT 8"
    ).fetchall()
    for calls, total, hit, read, query in rows:
        text = " ".join(query.split())
        print(f"  {calls:6} calls {total:9.1f} ms  hit {hit:9} read {read:7}  {text}")
    conn.execute("SELECT pg_stat_statements_reset()")
    conn.commit()


def main() -> None:
    logging.getLogger("stockyard.worker").setLevel(logging.ERROR)
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--backlog", type=int, default=1_000_000, help="blocked items")
    parser.add_argument("--lanes", type=int, default=1000, help="blocked lanes")
    parser.add_argument("-n", type=int, default=50_000, help="items drained per round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating pairs of drains")
    parser.add_argument("--profile", action="store_true", help="PostgreSQL: pg_stat_statements")
    args = parser.parse_args()
    print(f"load average before: {load()} ({os.cpu_count()} cores)")
    with queues(args.backend, args.profile) as (make, size):
        empty = make()
        loaded = make()
        if args.profile:
            for queue in (empty, loaded):
                queue.db.connection().execute("CREATE EXTENSION pg_stat_statements")
                queue.db.connection().commit()
        took = build_backlog(loaded, args.backlog, args.lanes)
        checkpoint(loaded)
        print(
            f"backlog of {args.backlog:,} items in {args.lanes:,} blocked lanes built in"
            f" {took:.0f} s ({args.backlog / took:,.0f} items/s); {size(loaded)}"
        )
        rates: dict[str, list[float]] = {"empty": [], "backlog": []}
        for r in range(args.rounds):
            order = [("empty", empty), ("backlog", loaded)]
            for name, queue in order if r % 2 == 0 else order[::-1]:
                rates[name].append(drained(queue, args.n))
                if args.profile:
                    print(f"round {r + 1}, {name}:")
                    statements(queue)
            print(
                f"round {r + 1}: empty {rates['empty'][-1]:,.0f}/s, beside the backlog"
                f" {rates['backlog'][-1]:,.0f}/s = {rates['backlog'][-1] / rates['empty'][-1]:.0%}",
                flush=True,
            )
        assert queued(loaded) == args.backlog, "the backlog moved"
        ratios = [b / e for b, e in zip(rates["backlog"], rates["empty"], strict=True)]
        print(
            f"{args.backend}: drain of {args.n:,} beside {args.backlog:,} blocked: median"
            f" {statistics.median(rates['backlog']):,.0f}/s vs empty"
            f" {statistics.median(rates['empty']):,.0f}/s; ratio per round "
            + ", ".join(f"{x:.0%}" for x in ratios)
            + f", median {statistics.median(ratios):.0%} (goal >= 85%)"
        )
        print(f"after: {size(loaded)}; load average after: {load()}")


if __name__ == "__main__":
    main()
