"""Fixtures: every engine test runs on both backends, SQLite and PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from systems.launch import Running, start_tryton, start_vendure
from systems.net import free_port
from systems.postgres import Databases, LocalServer

from stockyard.engine import Queue
from stockyard.outbound import ALLOW_ENV
from stockyard.tenancy import Tenancy
from tests.support.queues import UrlMaker, fresh_queue

BACKENDS = ("sqlite", "postgresql")


def pytest_configure(config: pytest.Config) -> None:
    # The suite's remote systems listen on 127.0.0.1, which a deployment refuses by default
    # (stockyard.outbound); worker subprocesses inherit it. tests/test_outbound_guard.py
    # removes it to check the default.
    os.environ.setdefault(ALLOW_ENV, "127.0.0.1,::1,localhost")


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


@pytest.fixture
def queue(new_url: UrlMaker) -> Iterator[Queue]:
    q = fresh_queue(new_url)
    yield q
    q.db.close()


@pytest.fixture
def client_id(queue: Queue) -> int:
    return Tenancy(queue.db).client_id("default")


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
