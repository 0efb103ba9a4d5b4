"""Connections: a client's sources, channels and fulfillment services, their settings
and their secrets (sealed at rest, shown by name only)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from stockyard.errors import Conflict, HandlerError, InvalidInput
from stockyard.service.base import ADMIN, DISABLED, READ, ServiceBase

if TYPE_CHECKING:
    from stockyard.accounts import Principal
    from stockyard.tenancy import Connection


@dataclass(frozen=True, slots=True)
class ConnectionView:
    """A connection as callers see it: secrets by name only, never their values."""

    id: int
    client_id: int
    kind: str
    connector: str
    description: str
    settings: dict[str, Any]
    status: str
    secrets: list[str]


class ConnectionsService(ServiceBase):
    def connections(self, who: Principal, client_id: int) -> list[ConnectionView]:
        self._allow(who, client_id, READ)
        return [self._view(c) for c in self.tenancy.connections(client_id)]

    def connection(self, who: Principal, client_id: int, connection_id: int) -> ConnectionView:
        self._allow(who, client_id, READ)
        return self._view(self.tenancy.connection(connection_id, client_id))

    def create_connection(
        self,
        who: Principal,
        client_id: int,
        kind: str,
        connector: str,
        description: str,
        settings: dict[str, Any],
        secrets: dict[str, Any],
    ) -> ConnectionView:
        from stockyard.sealing import merge_secrets

        self._allow(who, client_id, ADMIN)
        merged = merge_secrets({}, secrets)
        self._check_settings(kind, connector, settings, merged)
        conn = self.tenancy.add_connection(client_id, kind, connector, description, settings)
        if merged:
            self.tenancy.set_connection_secrets(client_id, conn.id, self._sealer().seal(merged))
        self._audit(who, client_id, "connection.create", connection=conn.id, secrets=sorted(merged))
        return self.connection(who, client_id, conn.id)

    def update_connection(
        self,
        who: Principal,
        client_id: int,
        connection_id: int,
        description: str | None = None,
        settings: dict[str, Any] | None = None,
        secrets: dict[str, Any] | None = None,
    ) -> ConnectionView:
        """Change what is given; secrets merge (null removes one), settings replace."""
        from stockyard.sealing import merge_secrets

        self._allow(who, client_id, ADMIN)
        conn = self.tenancy.connection(connection_id, client_id)
        merged = merge_secrets(self._secrets_of(conn), secrets or {})
        new_settings = conn.settings if settings is None else settings
        self._check_settings(conn.kind, conn.connector, new_settings, merged)
        if description is not None:
            self.tenancy.set_connection_description(client_id, connection_id, description)
        if settings is not None:
            self.tenancy.set_connection_settings(client_id, connection_id, settings)
        if secrets:
            self.tenancy.set_connection_secrets(
                client_id, connection_id, self._sealer().seal(merged)
            )
        changed = [
            name
            for name, value in (("description", description), ("settings", settings))
            if value is not None
        ]
        # Secrets by name only: the audit trail must not become a copy of them.
        self._audit(
            who,
            client_id,
            "connection.update",
            connection=connection_id,
            changed=changed,
            secrets=sorted(secrets or {}),
        )
        return self.connection(who, client_id, connection_id)

    def set_connection_enabled(
        self, who: Principal, client_id: int, connection_id: int, enabled: bool
    ) -> ConnectionView:
        """Disabling pauses the connection's lane and refuses what it pushes in; enabling
        undoes both."""
        self._allow(who, client_id, ADMIN)
        conn = self.tenancy.connection(connection_id, client_id)
        if (conn.status != DISABLED) == enabled:
            raise Conflict(
                f"connection {connection_id} is already {'enabled' if enabled else DISABLED}"
            )
        lane = next((v for v in self.queue.lanes(client_id) if v.lane_id == connection_id), None)
        if lane is not None and lane.paused != (not enabled):
            if enabled:
                self.queue.resume(client_id, connection_id, who.actor)
            else:
                self.queue.pause(client_id, connection_id, who.actor, "connection disabled")
        self.tenancy.set_connection_status(
            client_id, connection_id, "active" if enabled else DISABLED
        )
        action = "connection.enable" if enabled else "connection.disable"
        self._audit(who, client_id, action, connection=connection_id)
        return self.connection(who, client_id, connection_id)

    def _view(self, conn: Connection) -> ConnectionView:
        names = sorted(self._secrets_of(conn))
        return ConnectionView(
            conn.id,
            conn.client_id,
            conn.kind,
            conn.connector,
            conn.description,
            conn.settings,
            conn.status,
            names,
        )

    def _check_settings(
        self, kind: str, connector: str, settings: Mapping[str, Any], secrets: Mapping[str, Any]
    ) -> None:
        """Refuse what a worker would only fail on later: an unknown connector, a role it
        cannot play, bad rules, settings it rejects, credentials among the settings."""
        from stockyard.catalog.models import parse
        from stockyard.connectors.base import (
            RESERVED_SECRETS,
            RESERVED_SETTINGS,
            redact,
            secret_values,
        )
        from stockyard.flows.rules import ChannelRules
        from stockyard.tenancy import CONNECTION_KINDS

        if kind not in CONNECTION_KINDS:
            raise InvalidInput(f"kind must be one of {', '.join(CONNECTION_KINDS)}")
        cls = self.connectors.get(connector)
        if cls is None:
            raise InvalidInput(
                f"connector: {connector!r} is not installed; installed:"
                f" {', '.join(self.connectors.names())}"
            )
        if kind not in cls.roles:
            raise InvalidInput(f"kind: connector {connector!r} cannot act as a {kind}")
        leaked = cls.credential_problem(settings)  # declared secrets, credential-like names
        if leaked:
            raise InvalidInput(leaked)
        if "rules" in settings:
            parse(ChannelRules, settings["rules"], "settings.rules")
        own = {k: v for k, v in settings.items() if k not in RESERVED_SETTINGS}
        own.update({k: v for k, v in secrets.items() if k not in RESERVED_SECRETS})
        try:
            cls(own).close()
        except HandlerError as exc:
            raise InvalidInput(str(exc)) from None
        except (ValueError, UnicodeError) as exc:
            # A connector (or its HTTP client) rejecting a value in its own way, e.g. httpx
            # refusing a non-ASCII header: the input is bad, not the server. Redacted, as
            # the message may quote a secret it was built from.
            hidden = secret_values(own, cls.secret_settings)
            raise InvalidInput(
                f"{connector} connector settings: {redact(str(exc), hidden)}"
            ) from None
