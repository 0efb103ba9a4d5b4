"""Queues on fresh databases, and a worker that drains them."""

from __future__ import annotations

import asyncio
import atexit
import dataclasses
import shutil
import sqlite3
import tempfile
from pathlib import Path

import pytest
from systems.postgres import Databases

from stockyard.db import connect
from stockyard.engine import Queue
from stockyard.engine.handlers import HandlerRegistry
from stockyard.engine.instructions import Instructions, RetryPolicy
from stockyard.engine.worker import Stats, Worker, WorkerSettings
from stockyard.flows.catalog import default_instructions
from stockyard.tenancy import Tenancy

BACKENDS = ("sqlite", "postgresql")
FAST_RETRY = RetryPolicy(max_attempts=3, base_delay=0.02, max_delay=0.05, timeout=5.0)


def fast_instructions(policy: RetryPolicy = FAST_RETRY) -> Instructions:
    return Instructions(dataclasses.replace(i, retry=policy) for i in default_instructions())


_template: Path | None = None


def _migrated_sqlite_template() -> Path:
    """One SQLite file migrated once per test process: a fresh database is a copy of it (a
    copy takes ~1 ms, the migrations ~150 ms), as tests get PostgreSQL databases cloned
    from a migrated template (systems/postgres.py)."""
    global _template
    if _template is None:
        folder = Path(tempfile.mkdtemp(prefix="stockyard-template-"))
        atexit.register(shutil.rmtree, folder, True)
        migrated = folder / "migrated.db"
        db = connect(f"sqlite:///{migrated}")
        db.migrate()
        db.close()
        # The backup API writes one self-contained file, whatever the journal mode left.
        with sqlite3.connect(migrated) as source, sqlite3.connect(folder / "template.db") as copy:
            source.backup(copy)
        _template = folder / "template.db"
    return _template


def _new_sqlite_file(url: str) -> Path | None:
    """The file of a plain `sqlite:///path` URL that does not exist yet, else None."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or "?" in url:
        return None
    path = Path(url[len(prefix) :])
    return None if path.exists() else path


def make_queue(url: str, instructions: Instructions | None = None, migrate: bool = True) -> Queue:
    fresh = _new_sqlite_file(url) if migrate else None
    if fresh is not None:
        shutil.copyfile(_migrated_sqlite_template(), fresh)
    db = connect(url)
    if migrate and fresh is None:
        db.migrate()
    queue = Queue(db, instructions or fast_instructions())
    Tenancy(queue.db).ensure_client("default")
    return queue


class UrlMaker:
    """Fresh database URLs of one backend, removed when the test ends."""

    def __init__(self, backend: str, tmp: str, request: pytest.FixtureRequest) -> None:
        self.backend = backend
        self.tmp = tmp
        self.request = request
        self.made = 0
        self.pg: Databases | None = None
        self.created: list[str] = []

    def __call__(self) -> str:
        self.made += 1
        if self.backend == "sqlite":
            return f"sqlite:///{self.tmp}/stockyard-{self.made}.db"
        if self.pg is None:
            self.pg = self.request.getfixturevalue("pg_databases")
        url = self.pg.create()
        self.created.append(url)
        return url

    def cleanup(self) -> None:
        if self.pg is not None:
            for url in self.created:
                self.pg.drop(url)


def fresh_queue(new_url: UrlMaker, instructions: Instructions | None = None) -> Queue:
    return make_queue(new_url(), instructions, migrate=True)


def drain(queue: Queue, handlers: HandlerRegistry, concurrency: int = 50) -> Stats:
    worker = Worker(
        queue,
        handlers,
        WorkerSettings(concurrency=concurrency, poll_interval=0.01),
        connection=Tenancy(queue.db).connection,
    )
    return asyncio.run(worker.run(stop_when_idle=True))
