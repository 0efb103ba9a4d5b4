"""Connections: a client's sources, channels and fulfillment services, each a connector
type with settings, sealed secrets, a description and a status.

A source or channel has a lane in the queue, of the same id, opened with it. Connections
are cached per database for a few seconds: the worker reads one per item it runs. Every
`Connections` of one database shares the cache, so a change made in this process is seen
at once by all of them; one made by another process within `CONNECTION_TTL`.
"""

from __future__ import annotations

import json
import time
import weakref
from dataclasses import dataclass
from typing import Any

from stockyard.db import Database, Store, load_queries
from stockyard.engine import limits as engine_limits
from stockyard.engine.lanes import Lanes
from stockyard.engine.models import Limits
from stockyard.engine.remote import Remote
from stockyard.engine.store import Sql
from stockyard.errors import InvalidInput, NotFound

CONNECTION_KINDS: tuple[str, ...] = ("source", "channel", "fulfillment")
# The kinds whose items run in a lane of their own.
LANE_KINDS: tuple[str, ...] = ("source", "channel")
CONNECTION_TTL = 10.0

_caches: weakref.WeakKeyDictionary[Database, dict[int, tuple[Connection, float]]]
_caches = weakref.WeakKeyDictionary()


@dataclass(frozen=True, slots=True)
class Connection:
    id: int
    client_id: int
    kind: str
    connector: str
    description: str
    settings: dict[str, Any]
    status: str
    # Encrypted by the service layer (stockyard.sealing); opaque here.
    sealed_secrets: str | None = None


def _connection(r: Any) -> Connection:
    return Connection(
        id=r["id"],
        client_id=r["client_id"],
        kind=r["kind"],
        connector=r["connector"],
        description=r["description"],
        settings=json.loads(r["settings"]),
        status=r["status"],
        sealed_secrets=r["secrets"],
    )


class Connections(Store):
    queries = load_queries(__package__)

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self._cache = _caches.setdefault(db, {})

    def add(
        self,
        client_id: int,
        kind: str,
        connector: str,
        description: str,
        settings: dict[str, Any] | None = None,
        status: str | None = None,
        limits: Limits | None = None,
        remote: bool = False,
    ) -> Connection:
        """A new connection; a source or channel gets its lane, and `limits` (if any) are
        set in the same transaction; `remote`: its non-blocking items are claimed only by
        a remote runner (stockyard.engine.remote), recorded in the same transaction too."""
        if kind not in CONNECTION_KINDS:
            raise InvalidInput(f"connection kind must be one of {', '.join(CONNECTION_KINDS)}")
        if not connector.strip() or not description.strip():
            raise InvalidInput("a connection needs a connector type and a description")
        # A channel is active only once its first full sync has run (set_channel_status).
        status = status or ("inactive" if kind == "channel" else "active")
        with self.db.write() as cur:
            self.must(cur, "client", missing=NotFound(f"no client {client_id}"), id=client_id)
            row = self.must(
                cur,
                "insert_connection",
                missing=NotFound(f"no client {client_id}"),
                client_id=client_id,
                kind=kind,
                connector=connector,
                description=description,
                settings=json.dumps(settings or {}),
                status=status,
                now=time.time(),
            )
            conn_id = int(row["id"])
            if kind in LANE_KINDS:
                Lanes(self.db).open(cur, conn_id, client_id)
            if limits is not None and limits.limited:
                engine_limits.put(Sql(self.db), cur, client_id, conn_id, limits)
            if remote:
                Remote(self.db).open(cur, conn_id, client_id)
        return self.get(conn_id, client_id)

    def of_client(self, client_id: int | None = None) -> list[Connection]:
        """A client's connections; every client's when `client_id` is None (schedulers)."""
        if client_id is None:
            rows = self.all(self.conn, "all_connections")
        else:
            rows = self.all(self.conn, "client_connections", client_id=client_id)
        found = [_connection(r) for r in rows]
        now = time.monotonic()
        self._cache.update((c.id, (c, now)) for c in found)
        return found

    def get(self, connection_id: int, client_id: int | None = None) -> Connection:
        """The connection; NotFound if it does not exist or is not the client's."""
        cached = self._cache.get(connection_id)
        conn = cached[0] if cached and time.monotonic() - cached[1] < CONNECTION_TTL else None
        if conn is None:
            missing = NotFound(f"no connection {connection_id}")
            row = self.must(self.conn, "connection", missing=missing, id=connection_id)
            conn = _connection(row)
            self._cache[connection_id] = (conn, time.monotonic())
        if client_id is not None and conn.client_id != client_id:
            raise NotFound(f"no connection {connection_id}")
        return conn

    def set_status(self, client_id: int, connection_id: int, status: str) -> None:
        self._update(client_id, connection_id, "set_connection_status", status)

    def set_settings(self, client_id: int, connection_id: int, settings: dict[str, Any]) -> None:
        if not isinstance(settings, dict):
            raise InvalidInput("settings must be a JSON object")
        self._update(client_id, connection_id, "set_connection_settings", json.dumps(settings))

    def set_description(self, client_id: int, connection_id: int, description: str) -> None:
        if not description.strip():
            raise InvalidInput("a connection needs a description")
        self._update(client_id, connection_id, "set_connection_description", description.strip())

    def set_secrets(self, client_id: int, connection_id: int, sealed: str) -> None:
        """Store secrets already sealed by the caller: never seen here in clear."""
        self._update(client_id, connection_id, "set_connection_secrets", sealed)

    def _update(self, client_id: int, connection_id: int, query: str, value: str) -> None:
        self.get(connection_id, client_id)
        with self.db.write() as cur:
            self.execute(cur, query, value=value, id=connection_id)
        self._cache.pop(connection_id, None)
