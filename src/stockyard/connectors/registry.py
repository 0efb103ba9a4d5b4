"""Finds connector classes by name (the `stockyard.connectors` entry point) and keeps one
instance per connection, rebuilt when the connection's settings or secrets change.

A connector receives its settings and its opened secrets as one mapping. Given the
database, the registry also offers each connector its connection's shared budget while
building it (stockyard.connectors.budget): a client of a metered API (Shopify's) takes it;
others ignore it."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from stockyard.connectors.base import RESERVED_SECRETS, RESERVED_SETTINGS, Connector
from stockyard.connectors.budget import SharedBudget, offering
from stockyard.db import Database
from stockyard.errors import PermanentError
from stockyard.sealing import Sealer
from stockyard.tenancy import Connection

ENTRY_POINT = "stockyard.connectors"
log = logging.getLogger(__name__)


class ConnectorRegistry:
    def __init__(
        self,
        classes: dict[str, type[Connector]] | None = None,
        sealer: Callable[[], Sealer] | None = None,
        db: Database | None = None,
    ) -> None:
        self._classes = dict(classes or {})
        self._sealer = sealer
        self._db = db
        self._instances: dict[int, tuple[str, Connector]] = {}
        self._lock = threading.Lock()

    @classmethod
    def installed(
        cls, sealer: Callable[[], Sealer] | None = None, db: Database | None = None
    ) -> ConnectorRegistry:
        """Every connector installed as a package (our own `http` among them). One that
        cannot be loaded (a broken or half-removed package) is left out and logged: its
        connections fail naming it as not installed, every other connector still works."""
        classes: dict[str, type[Connector]] = {}
        for ep in entry_points(group=ENTRY_POINT):
            try:
                loaded = ep.load()
            except Exception as exc:  # any plugin error: it must not stop the others
                log.warning("connector %r (%s) cannot be loaded: %r", ep.name, ep.value, exc)
                continue
            if isinstance(loaded, type) and issubclass(loaded, Connector):
                classes[ep.name] = loaded
            else:
                log.warning("connector %r (%s) is not a Connector class", ep.name, ep.value)
        return cls(classes, sealer, db)

    def add(self, name: str, connector: type[Connector]) -> None:
        self._classes[name] = connector

    def names(self) -> list[str]:
        return sorted(self._classes)

    def get(self, name: str) -> type[Connector] | None:
        return self._classes.get(name)

    def for_connection(self, connection: Connection, role: str) -> Connector:
        """The connector of `connection`, which must be able to act as `role`."""
        cls = self._classes.get(connection.connector)
        if cls is None:
            raise PermanentError(
                f"connection {connection.id} ({connection.description}) uses connector"
                f" {connection.connector!r}, which is not installed;"
                f" installed: {', '.join(self.names()) or 'none'}"
            )
        if role not in cls.roles:
            raise PermanentError(
                f"connector {connection.connector!r} cannot act as a {role}"
                f" (it is: {', '.join(sorted(cls.roles))})"
            )
        fingerprint = json.dumps([connection.settings, connection.sealed_secrets], sort_keys=True)
        with self._lock:
            cached = self._instances.get(connection.id)
            if cached is not None and cached[0] == fingerprint:
                return cached[1]
            own = {k: v for k, v in connection.settings.items() if k not in RESERVED_SETTINGS}
            own.update(self._secrets(connection))
            with offering(self._budget(connection)):
                instance = cls(own)
            if cached is not None:
                cached[1].close()
            self._instances[connection.id] = (fingerprint, instance)
            return instance

    def _budget(self, connection: Connection) -> SharedBudget | None:
        if self._db is None:
            return None
        return SharedBudget(self._db, connection.client_id, connection.id)

    def _secrets(self, connection: Connection) -> dict[str, Any]:
        if not connection.sealed_secrets:
            return {}
        if self._sealer is None:
            raise PermanentError(f"connection {connection.id} has secrets but no key to open them")
        # The sealer is made on first need: a deployment without secrets needs no key.
        opened = self._sealer().open(connection.sealed_secrets)
        return {k: v for k, v in opened.items() if k not in RESERVED_SECRETS}

    def close(self) -> None:
        with self._lock:
            for _, instance in self._instances.values():
                instance.close()
            self._instances.clear()
