"""Enqueue against the raw insert (docs/benchmarks.md): what `Queue.enqueue` costs over
the cheapest way to store the same row, measured on the same backend in the same run.

- per item: one `Queue.enqueue` call of one item (a transaction each), against one
  INSERT of an equivalent row into a plain table with only a primary key, a transaction
  and commit each;
- batched: `Queue.enqueue` of 1,000 items, against `executemany` of 1,000 such rows in
  one transaction.

The plain table is the items table's own definition with its primary key only; a third
side inserts into a copy with every index of items too, telling what the indexes cost
from what the engine adds on top of them.

Each round takes fresh databases and alternates raw and Stockyard in chunks (100 items,
or one batch), each side first in turn, so the shared machine's bursts hit both alike;
each line prints both rates and their ratio. SQLite uses Stockyard's own pragmas (WAL,
synchronous=NORMAL); PostgreSQL a throwaway durable server (fsync and synchronous commit
on), as bench.postgres does.

Run: python -m bench.enqueue [--postgres] [-n N] [--batch-n N] [--rounds R] [--synchronous FULL]
     [--stats] (pg_stat_statements of Stockyard's per-item run) [--profile] (cProfile)
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import functools
import pstats
import re
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from stockyard.db import connect
from stockyard.engine import Queue, Request
from stockyard.flows.catalog import default_instructions
from stockyard.tenancy import Tenancy

BATCH = 1000

# The columns a new item's row sets (the rest keep their defaults).
_RAW_COLUMNS = (
    "id, client_id, instruction, blocking, connection_id, lane_id, status, payload, refs,"
    " description, parent_id, idempotency_key, created_at, updated_at, run_after"
)


def _raw_row(i: int) -> tuple[Any, ...]:
    """The row Stockyard writes for Request("sync_order", {"n": i})."""
    now = time.time()
    payload = f'{{"n":{i}}}'
    return (
        i,
        1,
        "sync_order",
        0,
        None,
        None,
        "queued",
        payload,
        "[]",
        "Sync order",
        None,
        None,
        now,
        now,
        now,
    )


# ---------------------------------------------------------------------------------- raw


class RawSqlite:
    """`raw_items`: the items table's own definition (from a migrated file), with its
    primary key only or, `indexed`, with every index items has."""

    def __init__(
        self, path: Path, schema: list[str], indexed: bool, synchronous: str = "NORMAL"
    ) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None)
        # Stockyard's pragmas (stockyard.db.sqlite), so both sides pay the same commit.
        for pragma in (
            "journal_mode=WAL",
            f"synchronous={synchronous}",
            "cache_size=-65536",
            "temp_store=MEMORY",
        ):
            self.conn.execute(f"PRAGMA {pragma}")
        table, *indexes = schema
        for statement in [table, *indexes] if indexed else [table]:
            self.conn.execute(statement)
        marks = ", ".join("?" * 15)
        self.sql = f"INSERT INTO raw_items ({_RAW_COLUMNS}) VALUES ({marks})"

    def single(self, first: int, n: int) -> float:
        conn, sql = self.conn, self.sql
        started = time.perf_counter()
        for i in range(first, first + n):
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(sql, _raw_row(i))
            conn.execute("COMMIT")
        return time.perf_counter() - started

    def batched(self, first: int, n: int) -> float:
        conn, sql = self.conn, self.sql
        started = time.perf_counter()
        for start in range(first, first + n, BATCH):
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(sql, [_raw_row(i) for i in range(start, start + BATCH)])
            conn.execute("COMMIT")
        return time.perf_counter() - started

    def close(self) -> None:
        self.conn.close()


class RawPostgres:
    """`raw_items` in a migrated database: like items, with its primary key only or,
    `indexed`, with every index items has."""

    def __init__(self, url: str, indexed: bool) -> None:
        import psycopg

        # psycopg's defaults: a transaction opened by the first statement, commit() ends
        # it; statements prepared after five runs, like Stockyard's connections.
        self.conn = psycopg.connect(url)
        if indexed:
            self.conn.execute("CREATE TABLE raw_items (LIKE items INCLUDING ALL)")
        else:
            self.conn.execute("CREATE TABLE raw_items (LIKE items INCLUDING DEFAULTS)")
            self.conn.execute("ALTER TABLE raw_items ADD PRIMARY KEY (id)")
        self.conn.commit()
        marks = ", ".join(["%s"] * 15)
        self.sql = f"INSERT INTO raw_items ({_RAW_COLUMNS}) VALUES ({marks})"

    def single(self, first: int, n: int) -> float:
        conn, sql = self.conn, self.sql
        started = time.perf_counter()
        for i in range(first, first + n):
            conn.execute(sql, _raw_row(i))
            conn.commit()
        return time.perf_counter() - started

    def batched(self, first: int, n: int) -> float:
        conn, sql = self.conn, self.sql
        started = time.perf_counter()
        with conn.cursor() as cur:
            for start in range(first, first + n, BATCH):
                cur.executemany(sql, [_raw_row(i) for i in range(start, start + BATCH)])
                conn.commit()
        return time.perf_counter() - started

    def close(self) -> None:
        self.conn.close()


# ---------------------------------------------------------------------------- stockyard


def stockyard_single(queue: Queue, first: int, n: int) -> float:
    client = Tenancy(queue.db).client_id("default")
    started = time.perf_counter()
    for i in range(first, first + n):
        queue.enqueue(client, [Request("sync_order", {"n": i})])
    return time.perf_counter() - started


def stockyard_batched(queue: Queue, first: int, n: int) -> float:
    client = Tenancy(queue.db).client_id("default")
    started = time.perf_counter()
    for start in range(first, first + n, BATCH):
        queue.enqueue(
            client, [Request("sync_order", {"n": i}) for i in range(start, start + BATCH)]
        )
    return time.perf_counter() - started


# ------------------------------------------------------------------------------ backends


class Backend:
    """Fresh databases: a migrated one for Stockyard, one for each raw table."""

    def stockyard(self) -> Queue:
        raise NotImplementedError

    def raw(self, indexed: bool) -> RawSqlite | RawPostgres:
        raise NotImplementedError


class SqliteBackend(Backend):
    def __init__(self, folder: Path, synchronous: str = "NORMAL") -> None:
        self.folder = folder
        self.synchronous = synchronous
        self.count = 0
        self._schema: list[str] = []

    def _path(self, kind: str) -> Path:
        self.count += 1
        return self.folder / f"{kind}{self.count}.db"

    def stockyard(self) -> Queue:
        db = connect(f"sqlite:///{self._path('stockyard')}?synchronous={self.synchronous}")
        db.migrate()
        queue = Queue(db, default_instructions())
        Tenancy(db).ensure_client("default")
        return queue

    def schema(self) -> list[str]:
        """The items table's CREATE statement, then its indexes', renamed raw_items."""
        if not self._schema:
            queue = self.stockyard()
            rows = queue.db.run(
                "SELECT sql FROM sqlite_master WHERE tbl_name = 'items' AND sql IS NOT NULL"
                " ORDER BY type = 'index', name"
            ).fetchall()
            queue.db.close()
            self._schema = [re.sub(r"\bitems\b", "raw_items", r[0]) for r in rows]
        return self._schema

    def raw(self, indexed: bool) -> RawSqlite:
        return RawSqlite(self._path("raw"), self.schema(), indexed, self.synchronous)


class PostgresBackend(Backend):
    def __init__(self, dbs: Any) -> None:
        self.dbs = dbs

    def stockyard(self) -> Queue:
        queue = Queue(connect(self.dbs.create()), default_instructions())
        Tenancy(queue.db).ensure_client("default")
        return queue

    def raw(self, indexed: bool) -> RawPostgres:
        return RawPostgres(self.dbs.create(), indexed)


@contextlib.contextmanager
def postgres(url: str | None, stats: bool) -> Iterator[Any]:
    from systems.postgres import Databases, LocalServer

    if url:
        yield Databases(url)
        return
    settings = (
        ("shared_preload_libraries=pg_stat_statements", "pg_stat_statements.track_planning=on")
        if stats
        else ()
    )
    local = LocalServer(durable=True, settings=settings) if settings else LocalServer(True)
    try:
        local.start()
        yield Databases(local.url())
    finally:
        local.destroy()


# ---------------------------------------------------------------------------------- runs


SIDES = ("raw", "raw+indexes", "stockyard")


def interleaved(sides: list[Callable[[int, int], float]], n: int, chunk: int) -> list[float]:
    """Rates of each side over n items, run in turns of `chunk` items (the first side of
    a turn rotating), so a neighbour's burst on the shared machine hits all alike."""
    spent = [0.0] * len(sides)
    for turn, first in enumerate(range(1, n + 1, chunk)):
        size = min(chunk, n + 1 - first)
        for k in range(len(sides)):
            side = (turn + k) % len(sides)
            spent[side] += sides[side](first, size)
    return [n / s for s in spent]


def rounds(backend: Backend, n: int, batch_n: int, count: int) -> dict[str, list[list[float]]]:
    """Each round: fresh databases for every side, per-item then batched."""
    rates: dict[str, list[list[float]]] = {"1": [], "B": []}
    for _ in range(count):
        for kind, total, chunk in (("1", n, 100), ("B", batch_n, BATCH)):
            plain, indexed, queue = backend.raw(False), backend.raw(True), backend.stockyard()
            stockyard = stockyard_single if kind == "1" else stockyard_batched
            try:
                rates[kind].append(
                    interleaved(
                        [
                            plain.single if kind == "1" else plain.batched,
                            indexed.single if kind == "1" else indexed.batched,
                            functools.partial(stockyard, queue),
                        ],
                        total,
                        chunk,
                    )
                )
            finally:
                plain.close()
                indexed.close()
                queue.db.close()
    return rates


def report(name: str, rates: dict[str, list[list[float]]]) -> None:
    for kind, label in (("1", "one item per transaction"), ("B", f"batches of {BATCH}")):
        runs = rates[kind]
        print(f"{name}, {label} (rounds: " + " / ".join(f"{k + 1}" for k in range(len(runs))) + ")")
        for s, side in enumerate(SIDES):
            print(f"  {side:12} " + " / ".join(f"{r[s]:9,.0f}" for r in runs) + " per s")
        for s, side in ((0, "raw"), (1, "raw+indexes")):
            ratios = [r[2] / r[s] for r in runs]
            print(
                f"  stockyard / {side:12} "
                + " / ".join(f"{x:5.2f}" for x in ratios)
                + f"   median {statistics.median(ratios):.2f}"
            )


def statements(backend: PostgresBackend, n: int) -> None:
    """pg_stat_statements of Stockyard's per-item enqueue: calls and time per item."""
    queue = backend.stockyard()
    conn = queue.db.connection()
    conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    conn.execute("SELECT pg_stat_statements_reset()")
    rate = n / stockyard_single(queue, 0, n)
    rows = conn.execute(
        "SELECT calls, total_exec_time, total_plan_time, left(regexp_replace(query, '\\s+', ' ',"
        " 'g'), 90) FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE"
        " datname = current_database()) ORDER BY total_exec_time DESC LIMIT 15"
    ).fetchall()
    print(f"pg_stat_statements over {n} per-item enqueues ({rate:,.0f}/s):")
    print("  calls/item  exec us/item  plan us/item  statement")
    for calls, exec_ms, plan_ms, query in rows:
        print(
            f"  {calls / n:10.2f}  {exec_ms * 1000 / n:12.1f}  {plan_ms * 1000 / n:12.1f}  {query}"
        )
    queue.db.close()


def profile(backend: Backend, n: int) -> None:
    queue = backend.stockyard()
    profiler = cProfile.Profile()
    profiler.enable()
    stockyard_single(queue, 0, n)
    profiler.disable()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
    queue.db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL, not SQLite")
    parser.add_argument("--url", help="an existing PostgreSQL server's admin URL")
    parser.add_argument("-n", type=int, default=2000, help="items per item-at-a-time run")
    parser.add_argument("--batch-n", type=int, default=50_000, help="items per batched run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--stats", action="store_true", help="pg_stat_statements, per item")
    parser.add_argument("--profile", action="store_true", help="cProfile the per-item run")
    parser.add_argument(
        "--synchronous",
        default="NORMAL",
        choices=["NORMAL", "FULL"],
        help="SQLite's commit durability on both sides (FULL: an fsync per commit, as Huey)",
    )
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        backend: Backend
        if args.postgres or args.url:
            backend = PostgresBackend(stack.enter_context(postgres(args.url, args.stats)))
            name = "PostgreSQL"
        else:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            backend = SqliteBackend(folder, args.synchronous)
            name = f"SQLite (synchronous={args.synchronous})"
        if args.stats and isinstance(backend, PostgresBackend):
            statements(backend, args.n)
        if args.profile:
            profile(backend, args.n)
        if args.rounds:
            report(name, rounds(backend, args.n, args.batch_n, args.rounds))


if __name__ == "__main__":
    main()
