"""Fixtures: every engine test runs on both backends, SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import Iterator

import pytest
from systems.launch import Running, start_tryton, start_vendure

from stockyard.db import connect
from stockyard.engine import Queue
from stockyard.engine.handlers import HandlerRegistry
from stockyard.engine.instructions import Instructions, RetryPolicy
from stockyard.engine.worker import Stats, Worker, WorkerSettings
from stockyard.flows.catalog import default_instructions
from stockyard.outbound import ALLOW_ENV
from tests.net import free_port
from tests.pg import Databases, LocalServer

FAST_RETRY = RetryPolicy(max_attempts=3, base_delay=0.02, max_delay=0.05, timeout=5.0)
BACKENDS = ("sqlite", "postgresql")


def pytest_configure(config: pytest.Config) -> None:
    # The suite's remote systems listen on 127.0.0.1, which a deployment refuses by default
    # (stockyard.outbound); worker subprocesses inherit it. tests/test_outbound_guard.py
    # removes it to check the default.
    os.environ.setdefault(ALLOW_ENV, "127.0.0.1,::1,localhost")


def fast_instructions(policy: RetryPolicy = FAST_RETRY) -> Instructions:
    return Instructions(dataclasses.replace(i, retry=policy) for i in default_instructions())


def make_queue(url: str, instructions: Instructions | None = None, migrate: bool = True) -> Queue:
    db = connect(url)
    if migrate:
        db.migrate()
    queue = Queue(db, instructions or fast_instructions())
    queue.ensure_client("default")
    return queue


@pytest.fixture(scope="session")
def pg_databases() -> Iterator[Databases]:
    given = os.environ.get("STOCKYARD_TEST_POSTGRES_URL")
    if given:
        yield Databases(given)
        return
    server = LocalServer()
    try:
        server.start()
        yield Databases(server.url())
    finally:
        server.destroy()


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


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def new_url(
    backend: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[UrlMaker]:
    maker = UrlMaker(backend, str(tmp_path_factory.mktemp(backend)), request)
    yield maker
    maker.cleanup()


def fresh_queue(new_url: UrlMaker, instructions: Instructions | None = None) -> Queue:
    return make_queue(new_url(), instructions, migrate=True)


@pytest.fixture
def queue(new_url: UrlMaker) -> Iterator[Queue]:
    q = fresh_queue(new_url)
    yield q
    q.db.close()


@pytest.fixture
def client_id(queue: Queue) -> int:
    return queue.client_id("default")


def drain(queue: Queue, handlers: HandlerRegistry, concurrency: int = 50) -> Stats:
    worker = Worker(queue, handlers, WorkerSettings(concurrency=concurrency, poll_interval=0.01))
    return asyncio.run(worker.run(stop_when_idle=True))


# ---------------------------------------------------------------- real Tryton and Vendure


@pytest.fixture(scope="session")
def tryton(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """Tryton on 127.0.0.1, from the seeded template (systems/launch.py)."""
    running = start_tryton(free_port(), tmp_path_factory.mktemp("tryton"))
    yield running
    running.stop()


@pytest.fixture(scope="session")
def vendure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """Vendure on 127.0.0.1, from the set-up template; a test may restart it in place."""
    running = start_vendure(free_port(), tmp_path_factory.mktemp("vendure"))
    yield running
    running.stop()
