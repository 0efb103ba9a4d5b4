"""The composition root: one `Application` per process, built from settings, owns the
database, the queue, the stores, the registries (instructions, connectors, handlers), the
sealer and the subscriptions. Shells and workers take what they need from it.

Every part is built on first use and imported there too: `stockyard lanes` needs the
queue and the service, not the connectors, the flows or the notification senders, and a
command line that loads them all would take seconds to start.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING

from stockyard.errors import StockyardError

if TYPE_CHECKING:
    from stockyard.accounts import Accounts
    from stockyard.catalog.store import CatalogStore
    from stockyard.connectors.registry import ConnectorRegistry
    from stockyard.db import Database
    from stockyard.engine.handlers import HandlerRegistry
    from stockyard.engine.instructions import Instructions
    from stockyard.engine.queue import Queue
    from stockyard.engine.worker import Worker, WorkerSettings
    from stockyard.flows.base import Services
    from stockyard.metrics import Metrics
    from stockyard.notify import NotifySettings
    from stockyard.notify.subscriptions import Subscriptions
    from stockyard.sealing import Sealer
    from stockyard.service import Stockyard
    from stockyard.tenancy import Tenancy

DEFAULT_CLIENT = "default"
POLL_CHECK_INTERVAL = 5.0  # how often a worker looks for due pulls
NOTIFY_CHECK_INTERVAL = 5.0  # and for events to notify
SAMPLE_CHECK_INTERVAL = 20.0  # the dashboard's samples are per minute

PeriodicJob = tuple[float, Callable[[], object]]


def database_url(url: str | None = None) -> str:
    from stockyard.db import DEFAULT_URL

    return url or os.environ.get("STOCKYARD_DATABASE_URL") or DEFAULT_URL


def open_database(url: str | None = None) -> Database:
    """The database of `url`, of STOCKYARD_DATABASE_URL, or the default SQLite file."""
    from stockyard.db import connect

    return connect(database_url(url))


class Application:
    """Everything a Stockyard process runs on, wired once. The keyword arguments replace a
    part (tests: a cheap password hasher, a known sealing key, their own queue); the
    others are built from the database and the environment when first asked for."""

    def __init__(
        self,
        db: Database,
        *,
        instructions: Instructions | None = None,
        queue: Queue | None = None,
        accounts: Accounts | None = None,
        connectors: ConnectorRegistry | None = None,
        sealer: Callable[[], Sealer] | None = None,
        notify: NotifySettings | None = None,
    ) -> None:
        self.db = db
        self._given_sealer = sealer
        # A given part is stored where its cached_property would put it.
        for name, part in (
            ("instructions", instructions),
            ("queue", queue),
            ("accounts", accounts),
            ("connectors", connectors),
            ("notify", notify),
        ):
            if part is not None:
                self.__dict__[name] = part

    @classmethod
    def open(cls, url: str | None = None) -> Application:
        """On an initialised database; a clear error if `stockyard init` never ran."""
        db = open_database(url)
        if not db.schema_ready():
            db.close()
            raise StockyardError(f"{db.describe()} is not initialised: run `stockyard init`")
        return cls(db)

    @classmethod
    def init(cls, url: str | None = None) -> Application:
        """Creating or upgrading the schema first, and the default client."""
        db = open_database(url)
        db.migrate()
        app = cls(db)
        app.tenancy.ensure_client(DEFAULT_CLIENT)
        return app

    def close(self) -> None:
        self.db.close()

    def describe(self) -> str:
        return self.db.describe()

    # ------------------------------------------------------------------------ the engine

    @cached_property
    def instructions(self) -> Instructions:
        from stockyard.flows.catalog import default_instructions

        return default_instructions()

    @cached_property
    def queue(self) -> Queue:
        from stockyard.engine.queue import Queue

        return Queue(self.db, self.instructions)

    @cached_property
    def tenancy(self) -> Tenancy:
        """The clients, their connections and the audit trail."""
        from stockyard.tenancy import Tenancy

        return Tenancy(self.db)

    # ------------------------------------------------------------------------- the stores

    @cached_property
    def catalog(self) -> CatalogStore:
        from stockyard.catalog.store import CatalogStore

        return CatalogStore(self.db)

    @cached_property
    def accounts(self) -> Accounts:
        from stockyard.accounts import Accounts

        return Accounts(self.db)

    @cached_property
    def subscriptions(self) -> Subscriptions:
        from stockyard.notify.subscriptions import Subscriptions

        return Subscriptions(self.db, self.sealer)

    def sealer(self) -> Sealer:
        """Asked for only when a secret is sealed or opened: a deployment without secrets
        needs no key."""
        if self._given_sealer is not None:
            return self._given_sealer()
        return _sealer_for(self.db.url)

    # --------------------------------------------------------------------- the registries

    @cached_property
    def connectors(self) -> ConnectorRegistry:
        from stockyard.connectors.registry import ConnectorRegistry

        return ConnectorRegistry.installed(self.sealer, db=self.db)

    @cached_property
    def notify(self) -> NotifySettings:
        from stockyard.notify import NotifySettings

        return NotifySettings.from_env()

    @cached_property
    def flow_services(self) -> Services:
        from stockyard.flows.base import Services

        return Services(self.queue, self.catalog, self.connectors)

    @cached_property
    def handlers(self) -> HandlerRegistry:
        """The data flows for every instruction and the notification senders; connections
        of the `demo` connector run the demo handlers instead (stockyard.connectors.demo)."""
        from stockyard.connectors import demo
        from stockyard.engine.handlers import HandlerRegistry
        from stockyard.flows.handlers import FLOWS, install
        from stockyard.notify import runner

        registry = HandlerRegistry()
        install(registry, self.flow_services)
        runner.install(registry, self.subscriptions, self.notify)
        registry.register_all(self.instructions.names(), demo.handle, connector="demo")
        for name in demo.CATALOG_INSTRUCTIONS:
            flow = functools.partial(FLOWS[name], self.flow_services)
            registry.register(name, demo.catalog_handler(flow), connector="demo")
        return registry

    def periodic_jobs(self) -> list[PeriodicJob]:
        """What workers run besides items: queuing the pulls and the notifications that
        are due, and the dashboard's samples."""
        from stockyard.flows.polling import schedule_polls
        from stockyard.notify import runner
        from stockyard.samples import Samples

        queue = self.queue
        samples = Samples(queue)
        return [
            (POLL_CHECK_INTERVAL, functools.partial(schedule_polls, self.flow_services)),
            (
                NOTIFY_CHECK_INTERVAL,
                functools.partial(runner.notify_due, queue, self.subscriptions, self.notify),
            ),
            (SAMPLE_CHECK_INTERVAL, lambda: samples.record(time.time())),
        ]

    # ---------------------------------------------------------------- what shells run on

    @cached_property
    def service(self) -> Stockyard:
        """The service layer the API, console and CLI share."""
        from stockyard.service import Stockyard

        return Stockyard(self)

    @cached_property
    def metrics(self) -> Metrics:
        from stockyard.metrics import Metrics

        return Metrics(self.queue)

    def worker(self, settings: WorkerSettings | None = None, *, periodic: bool = True) -> Worker:
        """A worker running every handler, its outcomes counted in `metrics`, and the
        periodic jobs unless told otherwise (the terminal demo drains its items only)."""
        from stockyard.engine.worker import Worker, WorkerSettings

        return Worker(
            self.queue,
            self.handlers,
            settings or WorkerSettings(),
            self.periodic_jobs() if periodic else (),
            observe=self.metrics.observe,
            connection=self.tenancy.connection,
        )


@functools.cache
def _sealer_for(url: str) -> Sealer:
    from stockyard.sealing import Sealer

    return Sealer.for_database(url)
