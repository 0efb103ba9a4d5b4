"""A Stockyard worker process for the PostgreSQL benchmarks: no-op handlers for every
instruction, until SIGTERM. With a log path, each run of a lane item is logged (item,
lane, start and end in ns) so the benchmark can check real execution order."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from typing import Any

from stockyard.db import connect
from stockyard.engine import Queue
from stockyard.engine.handlers import Context, HandlerRegistry
from stockyard.engine.worker import Worker, WorkerSettings
from stockyard.flows.catalog import default_instructions
from stockyard.tenancy import Tenancy


async def noop(ctx: Context) -> None:
    return None


def logging_noop(fd: int) -> Any:
    async def handle(ctx: Context) -> None:
        if ctx.job.lane_id is not None:
            start = time.time_ns()
            os.write(fd, f"{ctx.job.id} {ctx.job.lane_id} {start} {time.time_ns()}\n".encode())

    return handle


def main(url: str, log: str | None = None) -> None:
    registry = HandlerRegistry()
    handler = noop
    if log:
        handler = logging_noop(os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644))
    registry.register_all(default_instructions().names(), handler)
    queue = Queue(connect(url), default_instructions())
    concurrency = int(os.environ.get("BENCH_CONCURRENCY", "1000"))
    settings = WorkerSettings(concurrency=concurrency, poll_interval=0.05)
    asyncio.run(
        Worker(queue, registry, settings, connection=Tenancy(queue.db).connection).run(
            install_signals=True
        )
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)
