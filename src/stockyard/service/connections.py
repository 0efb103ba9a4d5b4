"""Connections: a client's sources, channels and fulfillment services, their settings,
their secrets (sealed at rest, shown by name only) and their limits (kept by the engine,
stockyard.engine.limits; read from there, never copied)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from stockyard.errors import Conflict, HandlerError, InvalidInput
from stockyard.service.base import ADMIN, DISABLED, READ, ServiceBase

if TYPE_CHECKING:
    from stockyard.accounts import Principal
    from stockyard.connectors.base import Connector
    from stockyard.engine import Limits
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
    # The engine's (stockyard.engine.limits); Limits() when there are none.
    limits: Limits = field(default_factory=lambda: _unlimited())


def describe_limits(limits: Limits) -> str:
    """Limits as operators read them, e.g. "max 5 running · 20/s" (the CLI and console)."""
    parts = []
    if limits.max_running is not None:
        parts.append(f"max {limits.max_running} running")
    if limits.per_second is not None:
        burst = f" (burst {limits.burst})" if (limits.burst or 1) > 1 else ""
        parts.append(f"{limits.per_second:g}/s{burst}")
    return " · ".join(parts) or "unlimited"


class ConnectionsService(ServiceBase):
    def connections(self, who: Principal, client_id: int) -> list[ConnectionView]:
        self._allow(who, client_id, READ)
        found = self.tenancy.connections(client_id)
        limits = self.queue.limits(client_id, (c.id for c in found))  # one read for all
        return [self._view(c, limits.get(c.id)) for c in found]

    def connection(self, who: Principal, client_id: int, connection_id: int) -> ConnectionView:
        self._allow(who, client_id, READ)
        conn = self.tenancy.connection(connection_id, client_id)
        return self._view(conn, self.queue.limits(client_id, [conn.id]).get(conn.id))

    def create_connection(
        self,
        who: Principal,
        client_id: int,
        kind: str,
        connector: str,
        description: str,
        settings: dict[str, Any],
        secrets: dict[str, Any],
        limits: Limits | None = None,
    ) -> ConnectionView:
        """`limits` None: the connector's `default_limits`. The connection and its limits
        are created in one transaction."""
        from stockyard.sealing import merge_secrets

        self._allow(who, client_id, ADMIN)
        merged = merge_secrets({}, secrets)
        cls = self._check_settings(kind, connector, settings, merged, secrets)
        if limits is None:
            limits = cls.default_limits
        # A remote runner's connection (the agent) is one from the start, in the same
        # transaction: no worker may ever claim its orders meanwhile.
        conn = self.tenancy.add_connection(
            client_id, kind, connector, description, settings, limits=limits, remote=cls.remote
        )
        if merged:
            self.tenancy.set_connection_secrets(client_id, conn.id, self._sealer().seal(merged))
        self._audit(
            who,
            client_id,
            "connection.create",
            connection=conn.id,
            secrets=sorted(merged),
            limits=_limits_detail(limits),
        )
        return self.connection(who, client_id, conn.id)

    def set_connection_limits(
        self, who: Principal, client_id: int, connection_id: int, limits: Limits
    ) -> ConnectionView:
        """Replace how hard the workers may drive the connection's remote system (every
        worker and machine together); items beyond the limits wait, they never fail."""
        self._allow(who, client_id, ADMIN)
        self.tenancy.connection(connection_id, client_id)
        self.queue.set_limits(client_id, connection_id, limits)
        self._audit(
            who,
            client_id,
            "connection.limits",
            connection=connection_id,
            limits=_limits_detail(limits),
        )
        return self.connection(who, client_id, connection_id)

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
        self._check_settings(conn.kind, conn.connector, new_settings, merged, secrets or {})
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

    def _view(self, conn: Connection, limits: Limits | None) -> ConnectionView:
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
            limits or _unlimited(),
        )

    def _check_settings(
        self,
        kind: str,
        connector: str,
        settings: Mapping[str, Any],
        secrets: Mapping[str, Any],
        given: Mapping[str, Any],
    ) -> type[Connector]:
        """Refuse what a worker would only fail on later: an unknown connector, a role it
        cannot play, bad rules, settings it rejects, credentials among the settings, a
        secret it refuses among those `given` now (`secrets`: all it will hold). Answers
        the connector's class."""
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
        leaked = cls.credential_problem(settings)
        if leaked:
            raise InvalidInput(leaked)
        for name in sorted(cls.required_secrets):
            if not secrets.get(name):
                why = cls.secret_problem(name, None)
                raise InvalidInput(why or f"connector {connector!r} needs secrets.{name}")
        for name, value in given.items():
            refused = None if value is None else cls.secret_problem(name, value)
            if refused:
                raise InvalidInput(refused)
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
        return cls


def _unlimited() -> Limits:
    from stockyard.engine import Limits

    return Limits()


def _limits_detail(limits: Limits | None) -> dict[str, Any] | None:
    if limits is None:
        return None
    return {
        "max_running": limits.max_running,
        "per_second": limits.per_second,
        "burst": limits.burst,
    }
