"""Fixtures: every engine test runs on both backends, SQLite and PostgreSQL; and the tiers.

The tiers (docs/architecture.md, "Tests"), marked here by what a test needs so that no test
file has to remember it:
- `backends`: PostgreSQL (the `postgresql` half of every two-backend test, `pg_databases`);
- `chaos`: worker processes, crashes, signals, storage faults (CHAOS_FILES, and single tests
  marked `@pytest.mark.chaos` in their files);
- `real`: real Tryton, Vendure (their fixtures) or Chromium (REAL_FILES);
- the rest is the fast tier, SQLite and in-process: `make check`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from systems.net import free_port
from systems.postgres import Databases, LocalServer

from stockyard.engine import Queue
from stockyard.outbound import ALLOW_ENV
from stockyard.tenancy import Tenancy
from tests.support.oscar import oscar, own_oscar  # noqa: F401  (the real trade store's fixtures)
from tests.support.queues import BACKENDS, UrlMaker, fresh_queue

if TYPE_CHECKING:
    from systems.launch import Running

CHAOS_FILES = {"test_processes.py", "test_storage_full.py"}
REAL_FILES = {
    "test_console_browser.py",
    "test_erp_shop.py",
    "test_oscar_system.py",
    "test_magento_end_to_end.py",
    "test_real_connectors.py",
    "test_shopify_end_to_end.py",
    "test_trade_store_end_to_end.py",
    "test_vendure_crash.py",
    "test_woocommerce_end_to_end.py",
}
REAL_FIXTURES = {"tryton", "vendure", "oscar", "own_oscar"}


def pytest_configure(config: pytest.Config) -> None:
    # The suite's remote systems listen on 127.0.0.1, which a deployment refuses by default
    # (stockyard.outbound); worker subprocesses inherit it. tests/test_outbound_guard.py
    # removes it to check the default.
    os.environ.setdefault(ALLOW_ENV, "127.0.0.1,::1,localhost")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        callspec = getattr(item, "callspec", None)
        # A backend is a parameter (`backend`, or a module's own, as test_queries' `migrated`).
        params = list(callspec.params.values()) if callspec else []
        if item.path.name in REAL_FILES or fixtures & REAL_FIXTURES:
            item.add_marker(pytest.mark.real)
        if item.path.name in CHAOS_FILES:
            item.add_marker(pytest.mark.chaos)
        if "postgresql" in params or "pg_databases" in fixtures:
            item.add_marker(pytest.mark.backends)


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
def empty_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A database with no schema yet, for upgrade tests (the suite's PostgreSQL databases
    come migrated)."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path}/old.db"
        return
    databases = request.getfixturevalue("pg_databases")
    url = databases.create(migrated=False)
    yield url
    databases.drop(url)


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
# systems.launch is imported when a test asks for them, so the fast tier never loads it.


@pytest.fixture(scope="session")
def tryton(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """Tryton on 127.0.0.1, from the seeded template (systems/launch.py)."""
    from systems.launch import start_tryton

    running = start_tryton(free_port(), tmp_path_factory.mktemp("tryton"))
    yield running
    running.stop()


@pytest.fixture(scope="session")
def vendure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """Vendure on 127.0.0.1, from the set-up template; a test may restart it in place."""
    from systems.launch import start_vendure

    running = start_vendure(free_port(), tmp_path_factory.mktemp("vendure"))
    yield running
    running.stop()


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    """`stockyard worker` processes on the test's database (tmp_path/stockyard.db), each
    logging to tmp_path/worker.log, stopped at the end."""
    started: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        log = (tmp_path / "worker.log").open("ab")
        argv = [sys.executable, "-m", "stockyard", "worker", "--poll", "0.2"]
        process = subprocess.Popen(
            [*argv, "--db", f"sqlite:///{tmp_path / 'stockyard.db'}"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "STOCKYARD_LOG": "INFO"},
        )
        started.append(process)
        return process

    yield start
    for process in started:
        process.terminate()
        process.wait(30)
