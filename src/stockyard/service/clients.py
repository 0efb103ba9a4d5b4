"""Clients (tenants) and their audit trail."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from stockyard.errors import Conflict, InvalidInput, NotFound
from stockyard.service.base import ADMIN, ServiceBase

if TYPE_CHECKING:
    from stockyard.accounts import Principal
    from stockyard.engine import AuditEntry

MAX_CLIENT_NAME = 200


@dataclass(frozen=True, slots=True)
class Client:
    id: int
    name: str
    role: str


class ClientsService(ServiceBase):
    def clients(self, who: Principal) -> list[Client]:
        rows = self.tenancy.all_clients()
        return [Client(int(i), n, role) for i, n in rows if (role := who.role(int(i))) is not None]

    def client_named(self, who: Principal, name: str) -> Client:
        """The client of that name, which the caller has a role on (NotFound otherwise)."""
        client_id = self.tenancy.client_id(name)
        role = who.role(client_id)
        if role is None:
            raise NotFound(f"no client named {name!r}")
        return Client(client_id, name, role)

    def create_client(self, who: Principal, name: str) -> Client:
        self._platform(who)
        name = name.strip()
        # A name is shown in tables, menus and one-line messages: one printable line.
        if not name or len(name) > MAX_CLIENT_NAME or not name.isprintable():
            raise InvalidInput(
                f"name: a client's name is 1 to {MAX_CLIENT_NAME} printable characters"
            )
        if self._client_named(name):
            raise Conflict(f"a client named {name!r} exists")
        client_id = self.tenancy.ensure_client(name)
        return Client(client_id, name, ADMIN)

    def _client_named(self, name: str) -> bool:
        try:
            self.tenancy.client_id(name)
        except NotFound:
            return False
        return True

    def audit(
        self, who: Principal, client_id: int, before: int | None, limit: int
    ) -> list[AuditEntry]:
        self._allow(who, client_id, ADMIN)
        return self.tenancy.audit_log(client_id, before, limit)
