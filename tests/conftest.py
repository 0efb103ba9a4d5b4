from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from stockyard.catalog import Catalog, Instruction, RetryPolicy, default_catalog
from stockyard.db import Database
from stockyard.engine import Queue
from stockyard.handlers import HandlerRegistry
from stockyard.worker import Stats, Worker, WorkerSettings

FAST_RETRY = RetryPolicy(max_attempts=3, base_delay=0.02, max_delay=0.05, timeout=5.0)


def fast_catalog(policy: RetryPolicy = FAST_RETRY) -> Catalog:
    return Catalog(
        Instruction(i.name, i.blocking, i.lane, i.template, policy) for i in default_catalog()
    )


def make_queue(path: Path, catalog: Catalog | None = None) -> Queue:
    db = Database(f"sqlite:///{path}")
    db.migrate()
    queue = Queue(db, catalog or fast_catalog())
    queue.ensure_client("default")
    return queue


@pytest.fixture
def queue(tmp_path: Path) -> Iterator[Queue]:
    q = make_queue(tmp_path / "stockyard.db")
    yield q
    q.db.close()


@pytest.fixture
def client_id(queue: Queue) -> int:
    return queue.client_id("default")


def drain(queue: Queue, handlers: HandlerRegistry, concurrency: int = 50) -> Stats:
    worker = Worker(queue, handlers, WorkerSettings(concurrency=concurrency, poll_interval=0.01))
    return asyncio.run(worker.run(stop_when_idle=True))
