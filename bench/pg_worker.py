"""A Stockyard worker process for the PostgreSQL benchmarks: no-op handlers for every
instruction, until SIGTERM."""

from __future__ import annotations

import asyncio
import sys

from stockyard.catalog import default_catalog
from stockyard.db import connect
from stockyard.engine import Queue
from stockyard.handlers import Context, HandlerRegistry
from stockyard.worker import Worker, WorkerSettings


async def noop(ctx: Context) -> None:
    return None


def main(url: str) -> None:
    registry = HandlerRegistry()
    registry.register_all(default_catalog().names(), noop)
    queue = Queue(connect(url), default_catalog())
    settings = WorkerSettings(concurrency=1000, poll_interval=0.05)
    asyncio.run(Worker(queue, registry, settings).run(install_signals=True))


if __name__ == "__main__":
    main(sys.argv[1])
