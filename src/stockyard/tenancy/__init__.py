"""Tenancy: the clients (tenants), their connections (sources, channels, fulfillment
services) and their audit trail. It sits above the queue engine: the engine knows a
client and a connection only by id (a source's or channel's id is its lane's id), and
reads the little it needs of a connection itself.

`Tenancy` is the one object the layers above use; `Clients`, `Connections` and `Audit`
are its parts.
"""

from __future__ import annotations

from typing import Any

from stockyard.db import Database
from stockyard.engine import AuditEntry, Limits
from stockyard.tenancy.audit import Audit
from stockyard.tenancy.clients import Clients
from stockyard.tenancy.connections import CONNECTION_KINDS, Connection, Connections

__all__ = ["CONNECTION_KINDS", "Audit", "Clients", "Connection", "Connections", "Tenancy"]


class Tenancy:
    """Clients, connections and the audit trail of one database."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.clients = Clients(db)
        self.connections_of = Connections(db)
        self.audit = Audit(db)

    # ------------------------------------------------------------------------- clients

    def ensure_client(self, name: str) -> int:
        """The id of the client of that name, created if there is none."""
        return self.clients.ensure(name)

    def client_id(self, name: str) -> int:
        """The id of the client of that name; NotFound if there is none."""
        return self.clients.id_of(name)

    def client_exists(self, client_id: int) -> bool:
        return self.clients.exists(client_id)

    def all_clients(self) -> list[tuple[int, str]]:
        """(id, name) of every client, by id."""
        return self.clients.every()

    # --------------------------------------------------------------------- connections

    def add_connection(
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
        return self.connections_of.add(
            client_id, kind, connector, description, settings, status, limits, remote
        )

    def connections(self, client_id: int | None = None) -> list[Connection]:
        """A client's connections; every client's when `client_id` is None (schedulers)."""
        return self.connections_of.of_client(client_id)

    def connection(self, connection_id: int, client_id: int | None = None) -> Connection:
        """The connection (cached a few seconds); NotFound if it is not the client's."""
        return self.connections_of.get(connection_id, client_id)

    def set_connection_status(self, client_id: int, connection_id: int, status: str) -> None:
        self.connections_of.set_status(client_id, connection_id, status)

    def set_connection_settings(
        self, client_id: int, connection_id: int, settings: dict[str, Any]
    ) -> None:
        self.connections_of.set_settings(client_id, connection_id, settings)

    def set_connection_description(
        self, client_id: int, connection_id: int, description: str
    ) -> None:
        self.connections_of.set_description(client_id, connection_id, description)

    def set_connection_secrets(self, client_id: int, connection_id: int, sealed: str) -> None:
        """Store secrets already sealed by the caller (stockyard.sealing)."""
        self.connections_of.set_secrets(client_id, connection_id, sealed)

    # --------------------------------------------------------------------------- audit

    def record(self, client_id: int, actor: str, action: str, detail: dict[str, Any]) -> None:
        """An audit entry for what the layers above change (connections, keys, members)."""
        self.audit.record(client_id, actor, action, detail)

    def audit_log(self, client_id: int, before: int | None, limit: int) -> list[AuditEntry]:
        """The client's whole audit trail, newest first."""
        return self.audit.log(client_id, before, limit)
