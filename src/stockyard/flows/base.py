"""What every flow handler shares: the queue, the catalog store, the connectors, and the
translation of service errors into item failures."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from stockyard.catalog.models import parse
from stockyard.catalog.store import CatalogStore
from stockyard.connectors.base import Connector
from stockyard.connectors.registry import ConnectorRegistry
from stockyard.engine import Queue
from stockyard.engine.handlers import Context
from stockyard.errors import PermanentError, StockyardError
from stockyard.tenancy import Connection, Tenancy

__all__ = ["Flow", "Services", "flow", "parse"]


@dataclass(frozen=True, slots=True)
class Services:
    queue: Queue
    store: CatalogStore
    connectors: ConnectorRegistry

    @property
    def tenancy(self) -> Tenancy:
        """The clients and connections (their cache is shared per database)."""
        return Tenancy(self.queue.db)

    def connection(self, ctx: Context, kind: str) -> Connection:
        """The item's connection, which this instruction needs to be a `kind`."""
        conn: Connection | None = ctx.connection
        if conn is None:
            raise PermanentError(f"{ctx.job.instruction} needs a {kind} connection")
        if conn.kind != kind:
            raise PermanentError(
                f"{ctx.job.instruction} needs a {kind} connection;"
                f" connection {conn.id} ({conn.description}) is a {conn.kind}"
            )
        return conn

    def connector(self, conn: Connection, role: str) -> Connector:
        return self.connectors.for_connection(conn, role)

    def connections(self, client_id: int, kind: str) -> list[Connection]:
        return [
            c
            for c in self.tenancy.connections(client_id)
            if c.kind == kind and c.status != "disabled"
        ]

    def only_connection(
        self, client_id: int, kind: str, chosen: Any, setting: str, owner: Connection
    ) -> Connection | None:
        """The connection `owner`'s settings name under `setting`, else the client's only
        connection of that kind; None if it has none."""
        if chosen is not None:
            try:
                return self.tenancy.connection(int(chosen), client_id)
            except (StockyardError, ValueError):
                raise PermanentError(
                    f"connection {owner.id} ({owner.description}): {setting} {chosen!r}"
                    " is not a connection of this client"
                ) from None
        candidates = self.connections(client_id, kind)
        if len(candidates) > 1:
            raise PermanentError(
                f"the client has {len(candidates)} {kind} connections: set {setting!r} in the"
                f" settings of connection {owner.id} ({owner.description}) to choose one"
            )
        return candidates[0] if candidates else None


Flow = Callable[[Services, Context], None]


def flow(fn: Flow) -> Flow:
    """Service errors (bad payload, unknown product) fail the item permanently, with their
    message as the error."""

    @functools.wraps(fn)
    def run(services: Services, ctx: Context) -> None:
        try:
            fn(services, ctx)
        except StockyardError as exc:
            raise PermanentError(str(exc)) from None

    return run
