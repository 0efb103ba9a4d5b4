"""PostgreSQL benchmarks of docs/benchmarks.md: Stockyard with two worker processes
against Procrastinate, on the same server in the same run.

Run: make bench-postgres (or python -m bench.postgres --help). Without --url it starts a
throwaway server from Debian's binaries with durable settings (fsync and synchronous
commit on), like production.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from systems.postgres import Databases, LocalServer

from stockyard.db import connect
from stockyard.engine import Queue, Request
from stockyard.flows.catalog import default_instructions
from stockyard.tenancy import Tenancy

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def local_server() -> Iterator[LocalServer]:
    """A throwaway durable server (fsync and synchronous commit on), destroyed afterwards."""
    local = LocalServer(durable=True)
    try:
        local.start()
        yield local
    finally:
        local.destroy()


@contextmanager
def server(url: str | None) -> Iterator[Databases]:
    if url:
        yield Databases(url)
        return
    with local_server() as local:
        yield Databases(local.url())


def fresh_queue(dbs: Databases) -> Queue:
    queue = Queue(connect(dbs.create()), default_instructions())
    Tenancy(queue.db).ensure_client("default")
    return queue


def enqueue_rate(queue: Queue, n: int, batch: int = 1000) -> float:
    client = Tenancy(queue.db).client_id("default")
    started = time.perf_counter()
    for start in range(0, n, batch):
        requests = [Request("sync_order", {"n": i}) for i in range(start, start + batch)]
        queue.enqueue(client, requests)
    return n / (time.perf_counter() - started)


def _alive_workers(queue: Queue) -> int:
    row = (
        queue.db.connection()
        .execute("SELECT count(*) FROM workers WHERE stopped_at IS NULL")
        .fetchone()
    )
    return int(row[0])


def _drained(queue: Queue) -> bool:
    """One snapshot: nothing running, no lane with a head, no free item queued."""
    row = (
        queue.db.connection()
        .execute(
            "SELECT EXISTS (SELECT 1 FROM items WHERE status = 'running')"
            " OR EXISTS (SELECT 1 FROM lanes WHERE head_id IS NOT NULL)"
            " OR EXISTS (SELECT 1 FROM items WHERE status = 'queued' AND lane_id IS NULL)"
        )
        .fetchone()
    )
    return not row[0]


def drain_with_processes(
    queue: Queue, requests: list[Request], workers: int = 2, logs: list[Path] | None = None
) -> float:
    """Start the workers, wait until they listen, enqueue in one transaction and time
    from its commit until every item is done."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "bench.pg_worker", queue.db.url]
            + ([str(logs[n])] if logs else []),
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}"},
        )
        for n in range(workers)
    ]
    try:
        while _alive_workers(queue) < workers:
            time.sleep(0.05)
        time.sleep(0.5)  # their LISTEN connections are up
        queue.enqueue(Tenancy(queue.db).client_id("default"), requests)
        started = time.perf_counter()
        while not _drained(queue):
            time.sleep(0.005)
        elapsed = time.perf_counter() - started
        done = (
            queue.db.connection()
            .execute("SELECT count(*) FROM items WHERE status = 'done'")
            .fetchone()[0]
        )
        assert done == len(requests), f"{done} of {len(requests)} done"
        return elapsed
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(timeout=30)


def lanes_in_order(logs: list[Path], total: int) -> bool:
    """From the workers' logs: every lane item ran once, and none started before the one
    ahead of it in its lane had ended."""
    runs: dict[int, list[tuple[int, int, int]]] = {}
    count = 0
    for log in logs:
        for line in log.read_text().splitlines():
            item, lane, start, end = map(int, line.split())
            runs.setdefault(lane, []).append((item, start, end))
            count += 1
    for lane_runs in runs.values():
        lane_runs.sort()
        if any(b[1] < a[2] for a, b in itertools.pairwise(lane_runs)):
            return False
    return count == total


def stockyard_rates(dbs: Databases, n: int, lanes: int, per_lane: int) -> dict[str, float]:
    rates = {"enqueue": enqueue_rate(fresh_queue(dbs), n)}
    queue = fresh_queue(dbs)
    rates["drain"] = n / drain_with_processes(queue, [Request("sync_order", {}) for _ in range(n)])
    queue = fresh_queue(dbs)
    client = Tenancy(queue.db).client_id("default")
    ids = [
        Tenancy(queue.db).add_connection(client, "channel", "demo", f"Shop {k}").id
        for k in range(lanes)
    ]
    requests = [Request("update_variant", {}, ids[k % lanes]) for k in range(lanes * per_lane)]
    with tempfile.TemporaryDirectory() as folder:
        logs = [Path(folder) / f"w{n}.log" for n in range(2)]
        rates["lanes"] = lanes * per_lane / drain_with_processes(queue, requests, logs=logs)
        assert lanes_in_order(logs, lanes * per_lane), "a lane ran out of order"
    return rates


def procrastinate_rates(
    dbs: Databases, n: int, lanes: int, per_lane: int, single: int = 0
) -> dict[str, float]:
    """Procrastinate's own worker, in process; lanes through its `lock` (serial per key).
    With `single`, also that many jobs deferred one call each ("single"), drained too."""
    import procrastinate

    url = dbs.create()
    app = procrastinate.App(connector=procrastinate.SyncPsycopgConnector(conninfo=url))
    seen: dict[str, list[int]] = {}

    @app.task(name="noop")
    async def noop(lane: str = "", seq: int = 0) -> None:
        if lane:
            seen.setdefault(lane, []).append(seq)

    rates: dict[str, float] = {}
    with app.open():
        app.schema_manager.apply_schema()
        started = time.perf_counter()
        for start in range(0, n, 1000):
            noop.batch_defer(*({} for _ in range(start, min(start + 1000, n))))
        rates["enqueue"] = n / (time.perf_counter() - started)
        if single:
            started = time.perf_counter()
            for _ in range(single):
                noop.defer()
            rates["single"] = single / (time.perf_counter() - started)
    async_app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=url))
    async_app.tasks = app.tasks

    async def work() -> float:
        async with async_app.open_async():
            started = time.perf_counter()
            await async_app.run_worker_async(
                wait=False, concurrency=10, install_signal_handlers=False
            )
            return time.perf_counter() - started

    rates["drain"] = (n + single) / asyncio.run(work())
    with app.open():
        for k in range(per_lane):
            for lane in range(lanes):
                noop.configure(lock=f"lane-{lane}").defer(lane=f"lane-{lane}", seq=k)
    rates["lanes"] = lanes * per_lane / asyncio.run(work())
    assert all(s == sorted(s) for s in seen.values()), "procrastinate broke a lock's order"
    dbs.drop(url)
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=50_000, help="items for enqueue and drain")
    parser.add_argument("--peer-n", type=int, default=2_000, help="items for Procrastinate")
    parser.add_argument("--url", help="admin URL of a server to use (may create databases)")
    args = parser.parse_args()
    with server(args.url) as dbs:
        ours = stockyard_rates(dbs, args.n, 500, 40)
        peer = procrastinate_rates(dbs, args.peer_n, 50, 20)
    rows = [
        ("enqueue, batches of 1000", "enqueue"),
        ("drain no-op, 2 worker processes", "drain"),
        ("lanes 500 x 40, order held", "lanes"),
    ]
    for title, key in rows:
        print(
            f"{title:34} {ours[key]:10,.0f} items/s   procrastinate {peer[key]:8,.0f}/s"
            f"   ratio {ours[key] / peer[key]:6.1f}x"
        )


if __name__ == "__main__":
    main()
