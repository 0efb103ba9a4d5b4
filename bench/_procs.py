"""What bench/fairness.py, bench/limits.py and bench/lanes.py share: a fresh database on
either backend, and worker processes (the normal `Worker`, one per process) started,
counted and stopped.

Run as a module it is that worker process:
    python -m bench._procs URL [--handler noop|sleep|http] [--log FILE] ...
no-op (or sleeping, or HTTP-calling) async handlers for every instruction, until SIGTERM.
With --log, the start of each item of the --probe-clients / --probe-connections (all
items for the http handler) is appended to FILE as `item_id start_epoch_seconds`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from stockyard.db import connect
from stockyard.engine import Queue
from stockyard.engine.handlers import Context, HandlerRegistry
from stockyard.engine.worker import Worker, WorkerSettings
from stockyard.flows.catalog import default_instructions
from stockyard.tenancy import Tenancy

ROOT = Path(__file__).resolve().parent.parent


# ------------------------------------------------------------------------- databases


@contextmanager
def databases(backend: str, profile: bool = False) -> Iterator[Callable[[], str]]:
    """A factory of fresh, migrated database URLs on `backend` (sqlite: files in a
    temporary folder; postgres: a throwaway durable server, as bench.postgres starts;
    with `profile`, pg_stat_statements loaded: see `top_statements`)."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            count = iter(range(1_000_000))

            def new_sqlite() -> str:
                url = f"sqlite:///{Path(tmp) / f'bench{next(count)}.db'}"
                db = connect(url)
                db.migrate()
                db.close()
                return url

            yield new_sqlite
        return
    from systems.postgres import Databases, LocalServer

    settings = ("shared_preload_libraries=pg_stat_statements",) if profile else ()
    local = LocalServer(durable=True, settings=settings)
    try:
        local.start()
        dbs = Databases(local.url())
        yield dbs.create
    finally:
        local.destroy()


def reset_statements(queue: Queue) -> None:
    """Start pg_stat_statements afresh (databases(..., profile=True))."""
    conn = queue.db.connection()
    conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    conn.execute("SELECT pg_stat_statements_reset()")


def top_statements(queue: Queue, count: int = 12) -> list[str]:
    """The statements that took most of the server's time since the reset."""
    found = rows(
        queue,
        "SELECT total_exec_time, calls, rows, left(regexp_replace(query, '\\s+', ' ', 'g'), 90)"
        " FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT ?",
        count,
    )
    return [
        f"{total:9.0f} ms {calls:7} calls {total / max(calls, 1):7.2f} ms/call {n:9} rows  {q}"
        for total, calls, n, q in found
    ]


def open_queue(url: str) -> Queue:
    return Queue(connect(url), default_instructions())


def scalar(queue: Queue, sql: str, *args: Any) -> Any:
    """One value of a read (plain SQL with %s / ? placeholders written as `?`)."""
    if queue.db.url.startswith("postgresql"):
        sql = sql.replace("?", "%s")
    row = queue.db.connection().execute(sql, args).fetchone()
    return None if row is None else row[0]


def rows(queue: Queue, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    if queue.db.url.startswith("postgresql"):
        sql = sql.replace("?", "%s")
    return [tuple(r) for r in queue.db.connection().execute(sql, args).fetchall()]


def load() -> str:
    """The machine's load averages, as `uptime` prints them."""
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f}, {five:.2f}, {fifteen:.2f}"


# --------------------------------------------------------------------------- workers


class Workers:
    """Worker processes of `python -m bench._procs`, started together."""

    def __init__(self, queue: Queue, count: int, args: Sequence[str] = (), **env: str) -> None:
        self.queue = queue
        before = self.alive()
        self.procs = [
            subprocess.Popen(
                [sys.executable, "-m", "bench._procs", queue.db.url, *args],
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}", **env},
            )
            for _ in range(count)
        ]
        deadline = time.monotonic() + 60
        while self.alive() < before + count:
            if time.monotonic() > deadline or any(p.poll() is not None for p in self.procs):
                self.stop()
                raise RuntimeError("the worker processes did not start")
            time.sleep(0.05)

    def alive(self) -> int:
        return int(scalar(self.queue, "SELECT count(*) FROM workers WHERE stopped_at IS NULL"))

    def ids(self) -> dict[int, str]:
        """Each process's worker id, by pid."""
        found = rows(self.queue, "SELECT id, pid FROM workers WHERE stopped_at IS NULL")
        return {int(pid): str(wid) for wid, pid in found}

    def stop(self) -> None:
        """SIGTERM every process still running; SIGKILL what has not exited in 40 s."""
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=40)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ------------------------------------------------------------------ the worker process


def _handler(args: argparse.Namespace) -> Any:
    fd = os.open(args.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644) if args.log else -1
    clients = {int(c) for c in args.probe_clients.split(",") if c}
    connections = {int(c) for c in args.probe_connections.split(",") if c}

    if args.handler == "http":
        host, port = os.environ["BENCH_RECEIVER"].rsplit(":", 1)

        async def call(ctx: Context) -> None:
            """GET /<connection>/<item> from the receiver, as a connector calls its system."""
            job = ctx.job
            reader, writer = await asyncio.open_connection(host, int(port))
            writer.write(f"GET /{job.connection_id}/{job.id} HTTP/1.0\r\n\r\n".encode())
            await writer.drain()
            answer = await reader.read()
            writer.close()
            if not answer.startswith(b"HTTP/1.0 200"):
                raise ConnectionError(answer[:60].decode(errors="replace"))

        return call

    pause = args.sleep

    async def handle(ctx: Context) -> None:
        job = ctx.job
        if fd >= 0 and (job.client_id in clients or job.connection_id in connections):
            os.write(fd, f"{job.id} {time.time():.6f}\n".encode())
        if pause:
            await asyncio.sleep(pause)

    return handle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url")
    parser.add_argument("--handler", choices=["noop", "sleep", "http"], default="noop")
    parser.add_argument("--sleep", type=float, default=0.0, help="seconds each item sleeps")
    parser.add_argument("--log")
    parser.add_argument("--probe-clients", default="")
    parser.add_argument("--probe-connections", default="")
    defaults = WorkerSettings()
    parser.add_argument("--concurrency", type=int, default=defaults.concurrency)
    parser.add_argument("--poll", type=float, default=defaults.poll_interval)
    args = parser.parse_args()
    registry = HandlerRegistry()
    registry.register_all(default_instructions().names(), _handler(args))
    queue = open_queue(args.url)
    settings = WorkerSettings(concurrency=args.concurrency, poll_interval=args.poll)
    worker = Worker(queue, registry, settings, connection=Tenancy(queue.db).connection)
    asyncio.run(worker.run(install_signals=True))


if __name__ == "__main__":
    main()
