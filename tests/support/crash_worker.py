"""A worker process for the crash and multi-process tests: logs every execution it starts
(item, lane, wall-clock ns) to its own append-only file before reporting success."""

from __future__ import annotations

import asyncio
import os
import random
import sys
import time

from stockyard.db import connect
from stockyard.engine import Queue
from stockyard.engine.handlers import Context, HandlerRegistry
from stockyard.engine.worker import Worker, WorkerSettings
from stockyard.errors import PermanentError
from stockyard.flows.catalog import default_instructions
from stockyard.tenancy import Tenancy


def main(db_url: str, log_path: str) -> None:
    max_sleep = float(os.environ.get("CRASH_WORKER_SLEEP", "0.003"))
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    async def handle(ctx: Context) -> None:
        os.write(fd, f"{ctx.job.id} {ctx.job.lane_id} {time.time_ns()}\n".encode())
        if random.random() < 0.5:
            await asyncio.sleep(random.uniform(0, max_sleep))
        if ctx.payload.get("fail_first") and ctx.job.attempt == 1:
            raise PermanentError("refused on the first attempt")

    registry = HandlerRegistry()
    registry.register_all(default_instructions().names(), handle)
    queue = Queue(connect(db_url), default_instructions())
    settings = WorkerSettings(
        concurrency=100, poll_interval=0.02, heartbeat_interval=0.2, lease_timeout=1.0
    )
    asyncio.run(
        Worker(queue, registry, settings, connection=Tenancy(queue.db).connection).run(
            install_signals=True
        )
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
