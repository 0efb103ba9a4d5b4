"""Fair claims (issue 22): how long a small merchant's items wait while another merchant's
backlog drains, against the same items on an empty queue, in one run.

Client A holds --backlog queued non-blocking items (on its connection "flood") and
--lanes busy lanes (--per-lane blocking items each); one worker process (the normal
Worker, no-op async handlers, bench/_procs.py) drains them. Meanwhile, one item per
call about --gap seconds apart:
  (1) client B enqueues --probes non-blocking items;
  (2) another connection of A ("other") enqueues --probes non-blocking items.
Each item's wait is its handler's start (logged by the worker) minus its created_at
(items table). The same probes run first against the same worker on the empty queue.
Goal: p99 wait beside the backlog <= 2x the empty queue's.

Run: python -m bench.fairness [--backend sqlite|postgres] [--backlog N]
"""

from __future__ import annotations

import argparse
import bisect
import logging
import math
import random
import tempfile
import time
from pathlib import Path

from bench._procs import (
    Workers,
    databases,
    load,
    open_queue,
    reset_statements,
    rows,
    scalar,
    top_statements,
)
from stockyard.engine import Queue, Request
from stockyard.tenancy import Tenancy

BATCH = 10_000


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(math.ceil(p / 100 * len(ordered)) - 1, 0)]


def build_backlog(
    queue: Queue, client: int, flood: int, lanes: list[int], backlog: int, per_lane: int
) -> float:
    """The engine's own enqueue in batches of BATCH: the flood connection's non-blocking
    items, then every lane's blocking ones round-robin; items per second."""
    started = time.perf_counter()
    for start in range(0, backlog, BATCH):
        n = min(BATCH, backlog - start)
        queue.enqueue(client, [Request("sync_order", {}, flood) for _ in range(n)])
    total = len(lanes) * per_lane
    for start in range(0, total, BATCH):
        n = min(BATCH, total - start)
        requests = [
            Request("update_variant", {}, lanes[(start + k) % len(lanes)]) for k in range(n)
        ]
        queue.enqueue(client, requests)
    return (backlog + total) / (time.perf_counter() - started)


def probe(
    queue: Queue, client: int, connection: int, count: int, gap: float, rng: random.Random
) -> list[int]:
    """Enqueue `count` non-blocking items one call each, gaps of 0.5-1.5 x `gap`."""
    ids = []
    for _ in range(count):
        ids += queue.enqueue(client, [Request("sync_order", {}, connection)])
        time.sleep(gap * rng.uniform(0.5, 1.5))
    return ids


def wait_done(queue: Queue, ids: list[int], timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    low, high = min(ids), max(ids)
    while True:
        done = scalar(
            queue,
            "SELECT count(*) FROM items WHERE id >= ? AND id <= ? AND status = 'done'"
            " AND client_id = (SELECT client_id FROM items WHERE id = ?)"
            " AND connection_id = (SELECT connection_id FROM items WHERE id = ?)",
            low,
            high,
            low,
            low,
        )
        if done >= len(ids):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {done} of {len(ids)} probes done")
        time.sleep(0.05)


def waits(queue: Queue, ids: list[int], log: Path) -> list[float]:
    """Handler start (the worker's log) minus created_at, in ms, of each of `ids`."""
    started = {}
    for line in log.read_text().splitlines():
        item, at = line.split()
        started[int(item)] = float(at)
    wanted = set(ids)
    created = rows(
        queue,
        "SELECT id, created_at, started_at FROM items WHERE id >= ? AND id <= ?",
        min(ids),
        max(ids),
    )
    picked = [r for r in created if int(r[0]) in wanted]
    # Where the wait goes: until the clock read of the claim that took the item
    # (items.started_at), then from there until its handler ran.
    splits[tuple(ids)] = (
        [(float(s) - float(c)) * 1000 for _, c, s in picked],
        [(started[int(i)] - float(s)) * 1000 for i, _, s in picked],
    )
    return [(started[int(i)] - float(c)) * 1000 for i, c, _ in picked]


splits: dict[tuple[int, ...], tuple[list[float], list[float]]] = {}


def passed_over(queue: Queue, ids: list[int]) -> list[int]:
    """For each of `ids`: how many claims (distinct started_at among other items) read
    their clock after the item was created yet did not take it; 0 means the first claim
    that could see it took it."""
    probes = rows(
        queue,
        "SELECT created_at, started_at FROM items WHERE id >= ? AND id <= ?",
        min(ids),
        max(ids),
    )
    low = min(float(c) for c, _ in probes)
    high = max(float(s) for _, s in probes)
    claims = sorted(
        float(r[0])
        for r in rows(
            queue,
            "SELECT DISTINCT started_at FROM items WHERE started_at >= ? AND started_at <= ?",
            low,
            high,
        )
    )
    return [
        bisect.bisect_left(claims, float(s)) - bisect.bisect_right(claims, float(c))
        for c, s in probes
    ]


def main() -> None:
    logging.getLogger("stockyard.worker").setLevel(logging.ERROR)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--backlog", type=int, default=1_000_000)
    parser.add_argument("--lanes", type=int, default=1000)
    parser.add_argument("--per-lane", type=int, default=500)
    parser.add_argument("--probes", type=int, default=100)
    parser.add_argument("--gap", type=float, default=0.05, help="seconds between probes")
    parser.add_argument("--concurrency", type=int, help="worker's (default: WorkerSettings')")
    parser.add_argument("--poll", type=float, help="worker's poll interval (default: its own)")
    parser.add_argument(
        "--profile", action="store_true", help="postgres: the top statements while probing"
    )
    args = parser.parse_args()
    rng = random.Random(22)
    profile = args.profile and args.backend == "postgres"
    with databases(args.backend, profile) as new_db, tempfile.TemporaryDirectory() as tmp:
        queue = open_queue(new_db())
        tenancy = Tenancy(queue.db)
        a, b = tenancy.ensure_client("A"), tenancy.ensure_client("B")
        flood = tenancy.add_connection(a, "channel", "demo", "A flood").id
        other = tenancy.add_connection(a, "channel", "demo", "A other").id
        b_conn = tenancy.add_connection(b, "channel", "demo", "B shop").id
        lanes = [
            tenancy.add_connection(a, "channel", "demo", f"A lane {n}").id
            for n in range(args.lanes)
        ]
        worker_args = [f"--probe-clients={b}", f"--probe-connections={other}"]
        if args.concurrency:
            worker_args.append(f"--concurrency={args.concurrency}")
        if args.poll:
            worker_args.append(f"--poll={args.poll}")
        results: dict[tuple[str, str], list[float]] = {}
        skipped: dict[str, tuple[int, int]] = {}
        parts: dict[str, tuple[float, float]] = {}

        def run_probes(phase: str, log: Path) -> None:
            for name, client, conn in (("B", b, b_conn), ("A other", a, other)):
                ids = probe(queue, client, conn, args.probes, args.gap, rng)
                wait_done(queue, ids)
                results[(phase, name)] = waits(queue, ids, log)
                if phase == "loaded":
                    over = passed_over(queue, ids)
                    skipped[name] = (sum(1 for n in over if n), max(over))
                    to_claim, to_run = splits[tuple(ids)]
                    parts[name] = (percentile(to_claim, 50), percentile(to_run, 50))

        print(f"{args.backend}, {load()}")
        log = Path(tmp) / "empty.log"
        with Workers(queue, 1, [*worker_args, f"--log={log}"]):
            time.sleep(0.5)
            run_probes("empty", log)

        rate = build_backlog(queue, a, flood, lanes, args.backlog, args.per_lane)
        print(
            f"backlog: {args.backlog:,} items on A's flood connection + {args.lanes:,} lanes"
            f" x {args.per_lane}, enqueued at {rate:,.0f} items/s ({load()})"
        )
        log = Path(tmp) / "loaded.log"
        with Workers(queue, 1, [*worker_args, f"--log={log}"]):
            time.sleep(1.0)  # the worker is in its stride
            if profile:
                reset_statements(queue)
            done_before = scalar(queue, "SELECT count(*) FROM items WHERE status = 'done'")
            began = time.perf_counter()
            run_probes("loaded", log)
            elapsed = time.perf_counter() - began
            done_after = scalar(queue, "SELECT count(*) FROM items WHERE status = 'done'")
            busy = scalar(
                queue,
                "SELECT count(*) FROM lanes WHERE head_id IS NOT NULL AND client_id = ?",
                a,
            )
            left = scalar(
                queue,
                "SELECT count(*) FROM items WHERE status = 'queued' AND connection_id = ?",
                flood,
            )
        print(
            f"while probing ({elapsed:.1f} s): the worker ran"
            f" {(done_after - done_before) / elapsed:,.0f} items/s;"
            f" at the end {busy:,} of A's lanes still busy,"
            f" {left:,} flood items"
            f" queued ({load()})"
        )
        rate = (done_after - done_before) / elapsed
        print(
            f"(in one global order, a new item would wait behind those {left:,}:"
            f" ~{left / rate:.0f} s at that rate)"
        )
        if profile:
            print("\n".join(top_statements(queue)))
        print(f"{'probe':10} {'empty p50':>10} {'p99':>8} {'loaded p50':>11} {'p99':>8}  p99 ratio")
        for name in ("B", "A other"):
            empty, loaded = results[("empty", name)], results[("loaded", name)]
            e50, e99 = percentile(empty, 50), percentile(empty, 99)
            l50, l99 = percentile(loaded, 50), percentile(loaded, 99)
            ratio = l99 / e99
            print(
                f"{name:10} {e50:8.1f}ms {e99:6.1f}ms {l50:9.1f}ms {l99:6.1f}ms  {ratio:5.2f}x"
                f"  {'met' if ratio <= 2 else 'NOT met'} (goal <= 2x)"
            )
        for name, (count, most) in skipped.items():
            print(
                f"{name}: {count} of {args.probes} probes passed over by a claim whose clock read"
                f" followed their creation (most: {most} claims); p50 creation -> that clock"
                f" read {parts[name][0]:.1f} ms, clock read -> handler {parts[name][1]:.1f} ms"
            )


if __name__ == "__main__":
    main()
