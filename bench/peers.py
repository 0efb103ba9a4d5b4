"""The peer table of docs/benchmarks.md, measured in one run on this machine: Stockyard on
SQLite and on PostgreSQL, a raw DB-API loop on each (the floor: the same rows, no queue
logic), Huey, Procrastinate and Dramatiq (Redis). No-op jobs, one worker process (this
one), medians of the rounds. Durable everywhere: SQLite in WAL mode at synchronous=FULL
(Huey's default), PostgreSQL with fsync and synchronous commit on, Redis with
appendfsync always.

Run: python -m bench.peers [-n N] [--rounds R]. Against an older tree (from the engine's
remodel on: stockyard.tenancy, stockyard.engine.worker), keep these bench files and put
that tree's sources first: git worktree add /tmp/old REV, then
PYTHONPATH=/tmp/old/src python -m bench.peers (the header names the tree used).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import logging
import shutil
import sqlite3
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
from systems.net import free_port

import stockyard
from bench.engine import single_enqueue
from bench.postgres import fresh_queue as pg_queue
from bench.postgres import procrastinate_rates, server
from bench.run import drain_rate, enqueue_rate, fresh_queue, huey_rates, lanes_rate_on
from stockyard.engine import Queue

BATCH = 1000
ROWS = [
    ("enqueue", "enqueue in batches of 1,000"),
    ("single", "enqueue one call per item"),
    ("drain", "drain no-op"),
    ("lanes", "500 lanes x 40, order held"),
]
COLUMNS = [
    "Stockyard SQLite",
    "Stockyard PG",
    "raw SQLite loop",
    "raw PG loop",
    "Huey",
    "Procrastinate",
    "Dramatiq (Redis)",
]


# ------------------------------------------------------------------------------ Stockyard


def stockyard_rates(make: Callable[[str], Queue], n: int, single: int) -> dict[str, float]:
    """The four rows on fresh queues from `make(name)`."""
    rates = {"enqueue": enqueue_rate(make("a"), n, BATCH)}
    rates["single"] = single_enqueue(make("s"), single)
    queue = make("d")
    enqueue_rate(queue, n, BATCH)
    rates["drain"] = drain_rate(queue, n, ["sync_order"])
    rates["lanes"] = lanes_rate_on(make("l"), 500, 40)
    return rates


def sqlite_queue(folder: Path, name: str) -> Queue:
    return fresh_queue(folder, f"{name}.db", "FULL")


# ------------------------------------------------------------------------------ raw loops

RAW_TABLE = (
    "CREATE TABLE jobs (id {pk}, instruction TEXT NOT NULL, payload TEXT NOT NULL,"
    " status TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL,"
    " finished_at DOUBLE PRECISION)"
)
RAW_INDEX = "CREATE INDEX jobs_queued ON jobs (id) WHERE status = 'queued'"


def raw_rates(conn: Any, mark: str, n: int, single: int) -> dict[str, float]:
    """A plain loop over a DB-API connection in manual-commit mode: insert rows (batches
    of 1,000 with executemany, then one row per commit), then select 1,000 queued rows,
    call a no-op on each and update them to done, one commit per batch."""
    insert = (
        "INSERT INTO jobs (instruction, payload, status, created_at)"
        f" VALUES ({mark}, {mark}, 'queued', {mark})"
    )
    rates: dict[str, float] = {}
    started = time.perf_counter()
    for start in range(0, n, BATCH):
        now = time.time()
        conn.cursor().executemany(
            insert, [("sync_order", f'{{"n":{i}}}', now) for i in range(start, start + BATCH)]
        )
        conn.commit()
    rates["enqueue"] = n / (time.perf_counter() - started)
    started = time.perf_counter()
    for i in range(single):
        conn.cursor().execute(insert, ("sync_order", f'{{"n":{i}}}', time.time()))
        conn.commit()
    rates["single"] = single / (time.perf_counter() - started)
    select = f"SELECT id, payload FROM jobs WHERE status = 'queued' ORDER BY id LIMIT {BATCH}"
    update = f"UPDATE jobs SET status = 'done', finished_at = {mark} WHERE id = {mark}"
    done = 0
    started = time.perf_counter()
    while rows := conn.cursor().execute(select).fetchall():
        for row in rows:
            raw_noop(row)
        now = time.time()
        conn.cursor().executemany(update, [(now, row[0]) for row in rows])
        conn.commit()
        done += len(rows)
    rates["drain"] = done / (time.perf_counter() - started)
    assert done == n + single, f"raw drain did {done} of {n + single}"
    return rates


def raw_noop(row: Any) -> None:
    return None


def raw_sqlite(folder: Path, n: int, single: int) -> dict[str, float]:
    conn = sqlite3.connect(folder / "raw.db")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute(RAW_TABLE.format(pk="INTEGER PRIMARY KEY"))
    conn.execute(RAW_INDEX)
    conn.commit()
    try:
        return raw_rates(conn, "?", n, single)
    finally:
        conn.close()


def raw_postgres(url: str, n: int, single: int) -> dict[str, float]:
    with psycopg.connect(url) as conn:
        conn.execute(RAW_TABLE.format(pk="BIGSERIAL PRIMARY KEY"))
        conn.execute(RAW_INDEX)
        conn.commit()
        return raw_rates(conn, "%s", n, single)


# ------------------------------------------------------------------------------- Dramatiq


@contextlib.contextmanager
def redis_server(folder: Path) -> Iterator[str | None]:
    """redis-server on 127.0.0.1 and a free port, appendfsync always (every write on disk
    before the reply, like a commit), stopped afterwards. None when not installed."""
    binary = shutil.which("redis-server")
    if binary is None:
        yield None
        return
    port = free_port()
    data = folder / "redis"
    data.mkdir()
    proc = subprocess.Popen(
        [
            *(binary, "--bind", "127.0.0.1", "--port", str(port), "--dir", str(data)),
            *("--save", "", "--appendonly", "yes", "--appendfsync", "always"),
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        url = f"redis://127.0.0.1:{port}/0"
        import redis

        client = redis.Redis.from_url(url)
        for _ in range(200):
            with contextlib.suppress(redis.ConnectionError):
                if client.ping():
                    break
            time.sleep(0.05)
        client.close()
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def dramatiq_rates(url: str, n: int) -> dict[str, float]:
    """Dramatiq's own worker in process (default 8 threads). It has no batch enqueue:
    `send` is one call (one Redis round trip) per message."""
    import dramatiq
    from dramatiq.brokers.redis import RedisBroker

    broker = RedisBroker(url=url)  # type: ignore[no-untyped-call]
    broker.client.flushdb()
    dramatiq.set_broker(broker)

    @dramatiq.actor(broker=broker, queue_name="bench", max_retries=0)
    def work(i: int) -> None:
        return None

    rates: dict[str, float] = {}
    started = time.perf_counter()
    for i in range(n):
        work.send(i)
    rates["single"] = n / (time.perf_counter() - started)
    worker = dramatiq.Worker(broker, worker_threads=8)
    started = time.perf_counter()
    worker.start()
    broker.join("bench", interval=5)
    rates["drain"] = n / (time.perf_counter() - started)
    worker.stop()
    broker.close()
    return rates


# ---------------------------------------------------------------------------------- table


def cell(rates: list[float]) -> str:
    return f"{statistics.median(rates):,.0f}" if rates else "—"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=20_000, help="items, batched enqueue + drain")
    parser.add_argument("--single", type=int, default=2_000, help="items enqueued one a call")
    parser.add_argument("--peer-n", type=int, default=2_000, help="jobs for Huey, Procr., Dramatiq")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--url", help="admin URL of a PostgreSQL server (else a throwaway one)")
    args = parser.parse_args()
    logging.getLogger("stockyard.worker").setLevel(logging.ERROR)
    logging.getLogger("procrastinate").setLevel(logging.WARNING)
    logging.getLogger("dramatiq").setLevel(logging.WARNING)
    results: dict[str, dict[str, list[float]]] = {c: {} for c in COLUMNS}
    notes: list[str] = []

    def add(column: str, rates: dict[str, float]) -> None:
        for key, value in rates.items():
            results[column].setdefault(key, []).append(value)

    print(f"stockyard from {Path(stockyard.__file__).parent}")
    with tempfile.TemporaryDirectory() as tmp, server(args.url) as dbs:
        redis_url: str | None = None
        with contextlib.ExitStack() as stack:
            try:
                import dramatiq  # noqa: F401

                redis_url = stack.enter_context(redis_server(Path(tmp)))
                if redis_url is None:
                    notes.append("Dramatiq left out: redis-server is not installed")
            except ImportError:
                notes.append("Dramatiq left out: dramatiq[redis] is not installed")
            for r in range(args.rounds):
                folder = Path(tmp) / f"round{r}"
                folder.mkdir()
                make = functools.partial(sqlite_queue, folder)
                add("Stockyard SQLite", stockyard_rates(make, args.n, args.single))
                add("Stockyard PG", stockyard_rates(lambda _: pg_queue(dbs), args.n, args.single))
                add("raw SQLite loop", raw_sqlite(folder, args.n, args.single))
                url = dbs.create(migrated=False)
                add("raw PG loop", raw_postgres(url, args.n, args.single))
                dbs.drop(url)
                enqueue, drained = huey_rates(folder, args.peer_n)
                add("Huey", {"single": enqueue, "drain": drained})
                add("Procrastinate", procrastinate_rates(dbs, args.peer_n, 50, 20, args.peer_n))
                if redis_url:
                    add("Dramatiq (Redis)", dramatiq_rates(redis_url, args.peer_n))
                print(f"round {r + 1} of {args.rounds} done", flush=True)
    shown = [c for c in COLUMNS if results[c]]
    print("| workload | " + " | ".join(shown) + " |")
    print("|---" * (len(shown) + 1) + "|")
    for key, title in ROWS:
        print(f"| {title} | " + " | ".join(cell(results[c].get(key, [])) for c in shown) + " |")
    print(
        f"items/s, medians of {args.rounds} rounds; n = {args.n:,} (batched enqueue, drain,"
        f" raw loops), {args.single:,} one a call, {args.peer_n:,} for Huey, Procrastinate"
        " and Dramatiq; Procrastinate's lanes are 50 x 20 with `lock=`"
    )
    for note in notes:
        print(note)


if __name__ == "__main__":
    main()
