"""EXPLAIN ANALYZE of every hot statement on PostgreSQL with 1,000,000 items, for
docs/postgres.md. Run: python -m bench.explain [--items N] [--url ADMIN_URL].

The queue holds 1,000 lanes, each blocked by a failed head with its backlog behind it,
and a history of finished non-blocking items. Then one round of the hot paths runs with
every statement explained inside a savepoint that is rolled back, so the plans shown are
those of the real statements on the real data. Statements are shown by their name in the
`.sql` files (an item filter's composed statement by its text).
"""

from __future__ import annotations

import argparse
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from bench.postgres import fresh_queue, server
from stockyard.db import Query, Store
from stockyard.engine import ItemFilter, Outcome, Queue, Request
from stockyard.tenancy import Tenancy

EXPLAIN = "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)"
PLANS: dict[str, tuple[str, str]] = {}
_section = ""


@contextmanager
def section(title: str) -> Iterator[None]:
    global _section
    _section = title
    try:
        yield
    finally:
        _section = ""


def _explaining_run(original: Any) -> Any:
    """Wraps `Store._run`, through which every named (or composed) query runs."""

    def run(self: Store, cur: Any, name: str | Query, params: dict[str, Any]) -> Any:
        query = name if isinstance(name, Query) else self.query(name)
        verb = query.sql.lstrip().split(None, 1)[0].upper()
        if _section and verb in {"SELECT", "UPDATE", "INSERT", "DELETE", "WITH"}:
            flat = re.sub(r"\s+", " ", query.sql)
            key = f"{_section}: {query.name if query.name != '<composed>' else flat[:60]}"
            if key not in PLANS:
                bound = self._bind(query, dict(params)) if query.lists else params
                conn = cur if isinstance(cur, psycopg.Connection) else cur.connection
                in_txn = conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE
                if in_txn:
                    cur.execute("SAVEPOINT explain")
                plan = "\n".join(r[0] for r in cur.execute(f"{EXPLAIN} {query.sql}", bound))
                if in_txn:
                    cur.execute("ROLLBACK TO SAVEPOINT explain")
                PLANS[key] = (query.sql, plan)
        return original(self, cur, name, params)

    return run


def fill(queue: Queue, items: int, lanes: int) -> int:
    client = Tenancy(queue.db).client_id("default")
    ids = [
        Tenancy(queue.db).add_connection(client, "channel", "demo", f"Shop {k}").id
        for k in range(lanes)
    ]
    queue.register_worker("filler", "bench", 0)
    # Heads that fail, then the backlog behind them, then a finished history.
    heads = queue.enqueue(client, [Request("add_product", {}, lane) for lane in ids])
    jobs = queue.claim("filler", len(heads))
    queue.settle("filler", [Outcome(j, "permanent", time.time(), "bad product") for j in jobs])
    backlog = int(items * 0.9)
    for start in range(0, backlog, 20_000):
        queue.enqueue(
            client,
            [
                Request("update_variant", {"n": i}, ids[i % lanes], refs=(f"SKU-{i}",))
                for i in range(start, min(start + 20_000, backlog))
            ],
        )
    history = items - backlog - lanes
    for start in range(0, history, 20_000):
        batch = min(20_000, history - start)
        queue.enqueue(client, [Request("sync_order", {}) for _ in range(batch)])
        while jobs := queue.claim("filler", 5000):
            queue.settle("filler", [Outcome(j, "done", time.time()) for j in jobs])
    queue.stop_worker("filler")
    queue.db.connection().execute("VACUUM ANALYZE")
    return client


def hot_paths(queue: Queue, client: int) -> None:
    lane = queue.lanes(client)[0].lane_id
    queue.register_worker("w", "bench", 0)
    with section("enqueue"):
        queue.enqueue(
            client,
            [Request("update_variant", {}, lane) for _ in range(100)]
            + [Request("sync_order", {}, idempotency_key=f"k{i}") for i in range(100)],
        )
    with section("claim"):
        jobs = queue.claim("w", 100)
    with section("complete"):
        queue.settle("w", [Outcome(j, "done", time.time()) for j in jobs], claim_limit=100)
    failed = queue.list_items(ItemFilter(client, statuses=("failed",)), limit=2)
    with section("retry"):
        queue.retry(client, [failed[0].id], "bench")
    with section("skip"):
        queue.skip(client, [failed[1].id], "bench")
    with section("lane overview"):
        queue.lanes(client)
    with section("next due"):
        queue.next_due()
    with section("failed items page"):
        queue.list_items(ItemFilter(client, statuses=("failed",)), limit=50)
    with section("items by SKU"):
        queue.list_items(ItemFilter(client, ref="SKU-12345"), limit=50)
    with section("reap"):
        queue.reap(30.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--lanes", type=int, default=1_000)
    parser.add_argument("--url", help="admin URL of a server to use (may create databases)")
    args = parser.parse_args()
    with server(args.url) as dbs:
        queue = fresh_queue(dbs)
        started = time.perf_counter()
        client = fill(queue, args.items, args.lanes)
        (count,) = queue.db.connection().execute("SELECT count(*) FROM items").fetchone()
        print(f"<!-- {count:,} items filled in {time.perf_counter() - started:.0f}s -->\n")
        Store._run = _explaining_run(Store._run)  # type: ignore[method-assign]
        hot_paths(queue, client)
        queue.db.close()
    for key, (sql, plan) in PLANS.items():
        print(f"#### {key}\n\n```sql\n{sql}\n```\n\n```\n{plan}\n```\n")


if __name__ == "__main__":
    main()
