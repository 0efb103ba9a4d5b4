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

from stockyard.application import Application
from stockyard.engine.worker import WorkerSettings
from stockyard.web.app import create_app
from stockyard.web.settings import ApiSettings

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
    app = Application.init(options.url)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if not options.workers:
            yield
            return
        worker = app.worker(options.worker)
        task = asyncio.create_task(worker.run())
        log.info("worker %s started on %s", worker.id, app.describe())
        try:
            yield
        finally:
            worker.stop()
            await task

    return create_app(app.service, options.api, app.metrics, lifespan)


def serve(options: ServeOptions) -> None:
    uvicorn.run(build(options), host=options.host, port=options.port, log_level="info")
