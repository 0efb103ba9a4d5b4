"""`stockyard serve`: the API, the console and the workers in one process, on one event
loop: the embedded deployment."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import uvicorn
from fastapi import FastAPI

from stockyard import app as wiring
from stockyard.api import create_app
from stockyard.api.deps import ApiSettings
from stockyard.engine.worker import Worker, WorkerSettings
from stockyard.metrics import Metrics

log = logging.getLogger("stockyard.serve")


@dataclass(frozen=True, slots=True)
class ServeOptions:
    url: str = field(repr=False)  # a PostgreSQL URL may hold its password
    host: str = "127.0.0.1"
    port: int = 8000
    workers: bool = True
    worker: WorkerSettings = field(default_factory=WorkerSettings)
    api: ApiSettings = field(default_factory=ApiSettings)


def build(options: ServeOptions) -> FastAPI:
    queue = wiring.init_queue(options.url)
    service = wiring.build_service(queue)
    metrics = Metrics(queue)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not options.workers:
            yield
            return
        worker = Worker(
            queue,
            wiring.default_handlers(queue),
            options.worker,
            wiring.periodic_jobs(queue),
            observe=metrics.observe,
        )
        task = asyncio.create_task(worker.run())
        log.info("worker %s started on %s", worker.id, queue.db.describe())
        try:
            yield
        finally:
            worker.stop()
            await task

    return create_app(service, options.api, metrics, lifespan)


def serve(options: ServeOptions) -> None:
    app = build(options)
    uvicorn.run(app, host=options.host, port=options.port, log_level="info")
