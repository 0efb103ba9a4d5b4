"""Wiring: the database, the instruction catalog, the queue and the handlers, from settings."""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable

from stockyard.accounts import Accounts
from stockyard.catalog.store import CatalogStore
from stockyard.connectors import demo
from stockyard.connectors.registry import ConnectorRegistry
from stockyard.db import DEFAULT_URL, connect
from stockyard.engine.handlers import HandlerRegistry
from stockyard.engine.instructions import Instructions
from stockyard.engine.queue import Queue
from stockyard.errors import StockyardError
from stockyard.flows import Services, install
from stockyard.flows.catalog import default_instructions
from stockyard.flows.polling import schedule_polls
from stockyard.notify import NotifySettings
from stockyard.notify import runner as notify_runner
from stockyard.notify.subscriptions import Subscriptions
from stockyard.sealing import Sealer
from stockyard.service import Stockyard

DEFAULT_CLIENT = "default"
POLL_CHECK_INTERVAL = 5.0  # how often a worker looks for due pulls
NOTIFY_CHECK_INTERVAL = 5.0  # and for events to notify
SAMPLE_CHECK_INTERVAL = 20.0  # the dashboard's samples are per minute


def database_url(url: str | None = None) -> str:
    return url or os.environ.get("STOCKYARD_DATABASE_URL") or DEFAULT_URL


def open_queue(url: str | None = None, instructions: Instructions | None = None) -> Queue:
    """A queue on an initialised database; a clear error if `stockyard init` never ran."""
    db = connect(database_url(url))
    if not db.schema_ready():
        raise StockyardError(f"{db.describe()} is not initialised: run `stockyard init`")
    return Queue(db, instructions or default_instructions())


def init_queue(url: str | None = None) -> Queue:
    db = connect(database_url(url))
    db.migrate()
    queue = Queue(db, default_instructions())
    queue.ensure_client(DEFAULT_CLIENT)
    return queue


def sealer(queue: Queue) -> Sealer:
    return _sealer(queue.db.url)


@functools.cache
def _sealer(url: str) -> Sealer:
    return Sealer.for_database(url)


def services(queue: Queue, connectors: ConnectorRegistry | None = None) -> Services:
    registry = connectors or ConnectorRegistry.installed(functools.partial(sealer, queue))
    return Services(queue, CatalogStore(queue.db), registry)


def subscriptions(queue: Queue) -> Subscriptions:
    return Subscriptions(queue.db, functools.partial(sealer, queue))


def default_handlers(
    queue: Queue,
    connectors: ConnectorRegistry | None = None,
    notify: NotifySettings | None = None,
) -> HandlerRegistry:
    """The data flows for every instruction and the notification senders; connections of
    the `demo` connector run the demo handler instead (items succeed or fail as their
    payload says)."""
    registry = HandlerRegistry()
    install(registry, services(queue, connectors))
    notify_runner.install(registry, subscriptions(queue), notify or NotifySettings.from_env())
    registry.register_all(queue.instructions.names(), demo.handle, connector="demo")
    return registry


def periodic_jobs(
    queue: Queue,
    connectors: ConnectorRegistry | None = None,
    notify: NotifySettings | None = None,
) -> list[tuple[float, Callable[[], object]]]:
    """What workers run besides items: queuing the pulls and the notifications that are due."""
    settings = notify or NotifySettings.from_env()
    return [
        (POLL_CHECK_INTERVAL, functools.partial(schedule_polls, services(queue, connectors))),
        (
            NOTIFY_CHECK_INTERVAL,
            functools.partial(notify_runner.notify_due, queue, subscriptions(queue), settings),
        ),
        (SAMPLE_CHECK_INTERVAL, lambda: queue.sample(time.time())),
    ]


def build_service(queue: Queue, connectors: ConnectorRegistry | None = None) -> Stockyard:
    """The service layer the API, console and CLI share."""
    seal = functools.partial(sealer, queue)
    return Stockyard(
        queue,
        CatalogStore(queue.db),
        Accounts(queue.db),
        connectors or ConnectorRegistry.installed(seal),
        seal,
        Subscriptions(queue.db, seal),
    )
