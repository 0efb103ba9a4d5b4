"""What every area of the service stands on: the parts it is built from, and the checks of
the caller's role on the client an operation touches (tenancy).

A caller without any role on a client gets NotFound for it and for everything in it,
exactly as if it did not exist; a caller whose role is too low on its own client gets
Forbidden.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol

from stockyard.errors import Forbidden, NotFound, Unauthenticated

if TYPE_CHECKING:
    from stockyard.accounts import Accounts, Principal
    from stockyard.catalog.store import CatalogStore
    from stockyard.connectors.registry import ConnectorRegistry
    from stockyard.engine import Queue
    from stockyard.engine.handlers import HandlerRegistry
    from stockyard.notify.subscriptions import Subscriptions
    from stockyard.sealing import Sealer
    from stockyard.tenancy import Connection, Tenancy

READ, OPERATE, ADMIN = "read-only", "operator", "administrator"
DISABLED = "disabled"


class Parts(Protocol):
    """What the service is built from: `stockyard.application.Application` provides it,
    each part made on first use."""

    @property
    def queue(self) -> Queue: ...
    @property
    def catalog(self) -> CatalogStore: ...
    @property
    def accounts(self) -> Accounts: ...
    @property
    def connectors(self) -> ConnectorRegistry: ...
    @property
    def subscriptions(self) -> Subscriptions: ...
    @property
    def handlers(self) -> HandlerRegistry: ...
    def sealer(self) -> Sealer: ...


class ServiceBase:
    def __init__(self, parts: Parts) -> None:
        self._parts = parts
        self.queue = parts.queue
        self._sealer: Callable[[], Sealer] = parts.sealer

    # The other parts are fetched when an operation first needs them (a command that lists
    # lanes loads no connector); each can be replaced on the instance.

    @cached_property
    def tenancy(self) -> Tenancy:
        """Clients, connections and the audit trail (stockyard.tenancy)."""
        from stockyard.tenancy import Tenancy

        return Tenancy(self.queue.db)

    @cached_property
    def store(self) -> CatalogStore:
        return self._parts.catalog

    @cached_property
    def accounts(self) -> Accounts:
        return self._parts.accounts

    @cached_property
    def connectors(self) -> ConnectorRegistry:
        return self._parts.connectors

    @cached_property
    def subscriptions(self) -> Subscriptions:
        return self._parts.subscriptions

    # ---------------------------------------------------------------------------- access

    def authenticate(self, token: str | None) -> Principal:
        if not token:
            raise Unauthenticated("send an API key or a session token: Authorization: Bearer …")
        return self.accounts.principal(token)

    def _allow(self, who: Principal, client_id: int, need: str) -> None:
        from stockyard.accounts import RANK

        role = who.role(client_id)
        # A membership or key was read with its client (clients are never deleted); only a
        # platform administrator's "every client" needs the id checked.
        if role is None or (who.platform_admin and not self._client_exists(client_id)):
            raise NotFound(f"no client {client_id}")
        if RANK[role] < RANK[need]:
            raise Forbidden(f"this needs the {need} role; yours is {role}")

    def _client_exists(self, client_id: int) -> bool:
        return self.tenancy.client_exists(client_id)

    def _platform(self, who: Principal) -> None:
        if not who.platform_admin:
            raise Forbidden("this needs a platform administrator")

    def _audit(self, who: Principal, client_id: int, action: str, **detail: Any) -> None:
        self.tenancy.record(client_id, who.actor, action, detail)

    def _secrets_of(self, conn: Connection) -> dict[str, Any]:
        # Opened only when there are some: a deployment without secrets needs no key.
        return self._sealer().open(conn.sealed_secrets) if conn.sealed_secrets else {}

    # -------------------------------------------------------------------------- health

    def ready(self) -> bool:
        try:
            return self.queue.db.schema_ready()
        except Exception:
            return False
