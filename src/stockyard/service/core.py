"""`Stockyard`: the one service object the shells (API, console, CLI) call."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from stockyard.accounts import RANK, Accounts, ApiKey, Member, Principal, User, check_role
from stockyard.catalog.models import parse
from stockyard.catalog.store import (
    CatalogStore,
    ProductRow,
    StoredFulfillment,
    StoredOrder,
    StoredProduct,
    VariantRow,
)
from stockyard.connectors.base import RESERVED_SECRETS, RESERVED_SETTINGS
from stockyard.connectors.registry import ConnectorRegistry
from stockyard.engine import ACTIONS as ENGINE_ACTIONS
from stockyard.engine import (
    AuditEntry,
    Connection,
    Item,
    ItemDetail,
    ItemFilter,
    LaneView,
    Queue,
    Request,
)
from stockyard.engine.models import CONNECTION_KINDS, STATUSES
from stockyard.errors import (
    Conflict,
    Forbidden,
    HandlerError,
    InvalidInput,
    NotFound,
    Unauthenticated,
)
from stockyard.flows.rules import ChannelRules
from stockyard.notify import EVENTS
from stockyard.notify.subscriptions import Subscription, Subscriptions
from stockyard.sealing import Sealer, merge_secrets
from stockyard.service import inbound
from stockyard.signing import SignatureError, verify

READ, OPERATE, ADMIN = "read-only", "operator", "administrator"
DISABLED = "disabled"
# What each bulk action can apply to. A filter that names no status means failed items
# only, for every shell: skipping "every item of SKU X" must not cancel X's queued updates.
# Which statuses each action applies to: the engine's list, the only one.
ACTIONS: dict[str, tuple[str, ...]] = {n: a.statuses for n, a in ENGINE_ACTIONS.items()}
BULK_DEFAULT_STATUSES = ("failed",)
MAX_CLIENT_NAME = 200


@dataclass(frozen=True, slots=True)
class Client:
    id: int
    name: str
    role: str


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


@dataclass(frozen=True, slots=True)
class BulkGroup:
    """How many items a bulk action would touch of one instruction on one connection
    (`lane_id` is the connection's lane for blocking items, None for the others)."""

    instruction: str
    connection_id: int | None
    lane_id: int | None
    items: int


class Stockyard:
    def __init__(
        self,
        queue: Queue,
        store: CatalogStore,
        accounts: Accounts,
        connectors: ConnectorRegistry,
        sealer: Callable[[], Sealer],
        subscriptions: Subscriptions | None = None,
    ) -> None:
        self.queue = queue
        self.store = store
        self.accounts = accounts
        self.connectors = connectors
        self._sealer = sealer
        self.subscriptions = subscriptions or Subscriptions(queue.db, sealer)

    # ---------------------------------------------------------------------------- access

    def authenticate(self, token: str | None) -> Principal:
        if not token:
            raise Unauthenticated("send an API key or a session token: Authorization: Bearer …")
        return self.accounts.principal(token)

    def login(self, email: str, password: str, address: str | None = None) -> str:
        """A session token; failed attempts are throttled per account and per `address`
        (RateLimited once too many)."""
        return self.accounts.login(email, password, address)

    def change_password(self, who: Principal, current: str, new: str) -> None:
        """The signed-in user's own password; ends their other sessions (not this one)."""
        if who.user_id is None:
            raise Forbidden("only a signed-in user has a password to change (not an API key)")
        self.accounts.change_password(who.user_id, current, new, who.session)

    def set_password(self, who: Principal, email: str, new: str) -> None:
        """A platform administrator sets anyone's password (the first one of an account a
        client added, or a forgotten one); every session of that user ends."""
        self._platform(who)
        user = self.accounts.user_by_email(email)
        if user is None:
            raise NotFound(f"no user {email.strip().lower()}")
        self.accounts.set_password(user.id, new)

    def _allow(self, who: Principal, client_id: int, need: str) -> None:
        role = who.role(client_id)
        # A membership or key was read with its client (clients are never deleted); only a
        # platform administrator's "every client" needs the id checked.
        if role is None or (who.platform_admin and not self._client_exists(client_id)):
            raise NotFound(f"no client {client_id}")
        if RANK[role] < RANK[need]:
            raise Forbidden(f"this needs the {need} role; yours is {role}")

    def _client_exists(self, client_id: int) -> bool:
        row = (
            self.queue.db.connection()
            .execute("SELECT 1 FROM clients WHERE id = ?", (client_id,))
            .fetchone()
        )
        return row is not None

    def _platform(self, who: Principal) -> None:
        if not who.platform_admin:
            raise Forbidden("this needs a platform administrator")

    # --------------------------------------------------------------------------- clients

    def clients(self, who: Principal) -> list[Client]:
        rows = self.queue.db.connection().execute("SELECT id, name FROM clients ORDER BY id")
        return [Client(int(i), n, role) for i, n in rows if (role := who.role(int(i))) is not None]

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
        client_id = self.queue.ensure_client(name)
        return Client(client_id, name, ADMIN)

    def _client_named(self, name: str) -> bool:
        try:
            self.queue.client_id(name)
        except NotFound:
            return False
        return True

    # ----------------------------------------------------------------------------- items

    def items(self, who: Principal, flt: ItemFilter, limit: int, before: int | None) -> list[Item]:
        self._allow(who, flt.client_id, READ)
        return self.queue.list_items(flt, limit, before)

    def item(self, who: Principal, client_id: int, item_id: int) -> ItemDetail:
        self._allow(who, client_id, READ)
        return self.queue.detail(client_id, item_id)

    def queue_history(
        self, who: Principal, client_id: int, since: float
    ) -> list[tuple[float, int, int, int]]:
        self._allow(who, client_id, READ)
        return self.queue.samples(client_id, since)

    def failures_by(
        self, who: Principal, client_id: int
    ) -> tuple[list[tuple[str, int]], list[tuple[int | None, int]]]:
        self._allow(who, client_id, READ)
        return self.queue.failures_by(client_id)

    def count(self, who: Principal, flt: ItemFilter) -> int:
        self._allow(who, flt.client_id, READ)
        return self.queue.count(flt)

    def enqueue(self, who: Principal, client_id: int, requests: Sequence[Request]) -> list[int]:
        self._allow(who, client_id, ADMIN)
        parents = {r.parent_id for r in requests if r.parent_id is not None}
        if parents:
            # The engine trusts parent ids; another client's item must not become one.
            found = self.queue.list_items(ItemFilter(client_id, ids=tuple(parents)), 1000)
            missing = sorted(parents - {i.id for i in found})
            if missing:
                raise NotFound(f"no queue item {missing[0]} (given as a parent)")
        return self.queue.enqueue(client_id, requests)

    def act(self, who: Principal, client_id: int, action: str, ids: Sequence[int]) -> list[int]:
        """Retry or skip the given items; every one must exist and allow it."""
        self._allow(who, client_id, OPERATE)
        _action_statuses(action)
        if not ids:
            raise InvalidInput("ids: name at least one item")
        if action == "retry":
            return self.queue.retry(client_id, ids, who.actor)
        return self.queue.skip(client_id, ids, who.actor)

    def act_where(self, who: Principal, flt: ItemFilter, action: str) -> list[int]:
        """Retry or skip every item the filter matches that allows it: failed items,
        unless the filter names other statuses (see `bulk_filter`)."""
        self._allow(who, flt.client_id, OPERATE)
        flt = bulk_filter(flt, action)
        if action == "retry":
            return self.queue.retry_where(flt, who.actor)
        return self.queue.skip_where(flt, who.actor)

    def bulk_counts(self, who: Principal, flt: ItemFilter, action: str) -> list[BulkGroup]:
        """What `act_where(who, flt, action)` would touch now, by instruction and
        connection, largest group first: what a confirmation shows. One query, on the
        same indexes as the action's own."""
        self._allow(who, flt.client_id, OPERATE)
        # The engine's filter SQL, so the count and the action can never disagree.
        flt = bulk_filter(flt, action)
        groups = self.queue.count_by(flt, ("instruction", "connection_id", "lane_id"))
        return [BulkGroup(str(i), c, lane, n) for (i, c, lane), n in groups]

    # ----------------------------------------------------------------------------- lanes

    def lanes(self, who: Principal, client_id: int) -> list[LaneView]:
        self._allow(who, client_id, READ)
        return self.queue.lanes(client_id)

    def pause(self, who: Principal, client_id: int, lane_id: int, reason: str) -> None:
        self._allow(who, client_id, OPERATE)
        self.queue.pause(client_id, lane_id, who.actor, reason)

    def resume(self, who: Principal, client_id: int, lane_id: int) -> None:
        self._allow(who, client_id, OPERATE)
        self.queue.resume(client_id, lane_id, who.actor)

    # ----------------------------------------------------------------------- connections

    def connections(self, who: Principal, client_id: int) -> list[ConnectionView]:
        self._allow(who, client_id, READ)
        return [self._view(c) for c in self.queue.connections(client_id)]

    def connection(self, who: Principal, client_id: int, connection_id: int) -> ConnectionView:
        self._allow(who, client_id, READ)
        return self._view(self.queue.connection(connection_id, client_id))

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
        self._allow(who, client_id, ADMIN)
        merged = merge_secrets({}, secrets)
        self._check_settings(kind, connector, settings, merged)
        conn = self.queue.add_connection(client_id, kind, connector, description, settings)
        if merged:
            self.queue.set_connection_secrets(client_id, conn.id, self._sealer().seal(merged))
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
        self._allow(who, client_id, ADMIN)
        conn = self.queue.connection(connection_id, client_id)
        merged = merge_secrets(self._secrets_of(conn), secrets or {})
        new_settings = conn.settings if settings is None else settings
        self._check_settings(conn.kind, conn.connector, new_settings, merged)
        if description is not None:
            self.queue.set_connection_description(client_id, connection_id, description)
        if settings is not None:
            self.queue.set_connection_settings(client_id, connection_id, settings)
        if secrets:
            self.queue.set_connection_secrets(client_id, connection_id, self._sealer().seal(merged))
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
        conn = self.queue.connection(connection_id, client_id)
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
        self.queue.set_connection_status(
            client_id, connection_id, "active" if enabled else DISABLED
        )
        action = "connection.enable" if enabled else "connection.disable"
        self._audit(who, client_id, action, connection=connection_id)
        return self.connection(who, client_id, connection_id)

    def _secrets_of(self, conn: Connection) -> dict[str, Any]:
        # Opened only when there are some: a deployment without secrets needs no key.
        return self._sealer().open(conn.sealed_secrets) if conn.sealed_secrets else {}

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

    # --------------------------------------------------------------------------- catalog

    def products(self, who: Principal, client_id: int, after: str, limit: int) -> list[ProductRow]:
        self._allow(who, client_id, READ)
        return self.store.list_products(client_id, after, limit)

    def product(self, who: Principal, client_id: int, product_id: int) -> StoredProduct:
        self._allow(who, client_id, READ)
        return self.store.product(client_id, product_id)

    def variants(self, who: Principal, client_id: int, after: str, limit: int) -> list[VariantRow]:
        self._allow(who, client_id, READ)
        return self.store.list_variants(client_id, after, limit)

    def orders(
        self, who: Principal, client_id: int, before: int | None, limit: int
    ) -> list[StoredOrder]:
        self._allow(who, client_id, READ)
        return self.store.list_orders(client_id, before, limit)

    def order(
        self, who: Principal, client_id: int, order_id: int
    ) -> tuple[StoredOrder, list[StoredFulfillment]]:
        self._allow(who, client_id, READ)
        order = self.store.order(client_id, order_id)
        return order, self.store.fulfillments(order.id)

    def fulfillments(
        self, who: Principal, client_id: int, before: int | None, limit: int
    ) -> list[StoredFulfillment]:
        self._allow(who, client_id, READ)
        return self.store.list_fulfillments(client_id, before, limit)

    # --------------------------------------------------------------------------- inbound

    def push(
        self,
        connection_id: int,
        topic_name: str,
        records: Sequence[inbound.Record],
        body: bytes,
        headers: Mapping[str, str],
        bearer: str | None,
    ) -> list[int]:
        """Data a source, channel or fulfillment service pushes in, as queue items.

        A connection with a `webhook_secret` accepts only pushes signed with it (Standard
        Webhooks); one without accepts an administrator's key or session.
        """
        topic = inbound.TOPICS[topic_name]
        conn, message_id = self._push_sender(connection_id, body, headers, bearer)
        if conn.kind != topic.kind:
            raise InvalidInput(
                f"connection {connection_id} is a {conn.kind};"
                f" {topic.name} come from a {topic.kind}"
            )
        if conn.status == DISABLED:
            raise Conflict(f"connection {connection_id} is disabled")
        requests = inbound.requests_for(topic, connection_id, records, message_id)
        return self.queue.enqueue(conn.client_id, requests)

    def _push_sender(
        self, connection_id: int, body: bytes, headers: Mapping[str, str], bearer: str | None
    ) -> tuple[Connection, str | None]:
        """The connection and the message id of a push whose sender proves it may push:
        with a signature made with the connection's webhook_secret or, for a connection
        without one, an administrator's key of its client. Any other push gets the one
        `inbound.REFUSED` answer after the same work, so that a caller without credentials
        learns neither which connections exist, nor whose they are, nor how they are
        secured."""
        try:
            conn: Connection | None = self.queue.connection(connection_id)
        except NotFound:
            conn = None
        secret = None if conn is None else self._secrets_of(conn).get("webhook_secret")
        if conn is None or secret:
            # An unknown connection costs the same signature check, against a dummy secret.
            signed = inbound.signed_by(str(secret or inbound.DUMMY_SECRET), headers, body)
            if conn is None or not signed:
                if conn is None:
                    self._principal(bearer)  # and the key lookup a keyed push would cost
                raise Unauthenticated(inbound.REFUSED)
            try:
                return conn, verify(str(secret), headers, body)
            except SignatureError as exc:  # the sender holds the secret: say why (a replay)
                raise Unauthenticated(str(exc)) from None
        who = self._principal(bearer)
        if who is None or who.role(conn.client_id) is None:
            raise Unauthenticated(inbound.REFUSED)
        self._allow(who, conn.client_id, ADMIN)  # a member of the client may learn its role
        return conn, None

    def _principal(self, token: str | None) -> Principal | None:
        try:
            return self.authenticate(token)
        except Unauthenticated:
            return None

    # ------------------------------------------------------------------ keys and members

    def keys(self, who: Principal, client_id: int) -> list[ApiKey]:
        self._allow(who, client_id, ADMIN)
        return self.accounts.keys(client_id)

    def create_key(
        self, who: Principal, client_id: int, name: str, role: str
    ) -> tuple[ApiKey, str]:
        self._allow(who, client_id, ADMIN)
        key, token = self.accounts.create_key(client_id, name, role, who.actor)
        self._audit(who, client_id, "key.create", key=key.id, name=key.name, role=key.role)
        return key, token

    def revoke_key(self, who: Principal, client_id: int, key_id: int) -> ApiKey:
        self._allow(who, client_id, ADMIN)
        key = self.accounts.revoke_key(client_id, key_id)
        self._audit(who, client_id, "key.revoke", key=key.id, name=key.name)
        return key

    def members(self, who: Principal, client_id: int) -> list[Member]:
        self._allow(who, client_id, ADMIN)
        return self.accounts.members(client_id)

    def set_member(
        self,
        who: Principal,
        client_id: int,
        email: str,
        role: str,
        password: str | None = None,
    ) -> Member:
        """Give a user a role on the client; an email without an account gets one.

        Accounts are shared between clients, so a client's administrator neither sets nor
        learns a password, and the answer is the same whether the account existed (nor do
        random user ids tell). A new account has no password until a platform
        administrator sets one; only a platform administrator may give `password`, and only
        for a new account (an existing one keeps its own: that is an error, not ignored).
        """
        self._allow(who, client_id, ADMIN)
        check_role(role)
        if password is not None and not who.platform_admin:
            raise InvalidInput(
                "password: a client administrator does not set passwords; the new member's"
                " first password is set by a platform administrator"
            )
        user = self.accounts.user_by_email(email)
        if user is None:
            user = self.accounts.create_user(email, password)
        elif password is not None:
            raise InvalidInput(
                f"password: {user.email} has an account and keeps its password"
                " (set it with `stockyard users passwd`)"
            )
        self.accounts.set_role(user.id, client_id, role)
        self._audit(who, client_id, "member.set", user=user.id, email=user.email, role=role)
        return Member(user.id, user.email, role)

    def remove_member(self, who: Principal, client_id: int, user_id: int) -> None:
        self._allow(who, client_id, ADMIN)
        if user_id == who.user_id and not who.platform_admin:
            raise Conflict("you cannot remove yourself; another administrator can")
        self.accounts.remove_member(client_id, user_id)
        self._audit(who, client_id, "member.remove", user=user_id)

    def create_user(self, who: Principal, email: str, password: str, platform_admin: bool) -> User:
        self._platform(who)
        return self.accounts.create_user(email, password, platform_admin)

    # -------------------------------------------------------------------- subscriptions

    def list_subscriptions(self, who: Principal, client_id: int) -> list[Subscription]:
        self._allow(who, client_id, ADMIN)
        return self.subscriptions.of_client(client_id)

    def subscribe(
        self,
        who: Principal,
        client_id: int,
        kind: str,
        target: str,
        events: Sequence[str],
        connections: Sequence[int],
    ) -> tuple[Subscription, str | None]:
        """Email or webhook notices; a webhook's signing secret is returned this once."""
        self._allow(who, client_id, ADMIN)
        unknown = sorted(set(events) - set(EVENTS))
        if unknown:
            raise InvalidInput(f"events: unknown {unknown[0]!r}; known: {', '.join(EVENTS)}")
        for connection_id in connections:
            self.queue.connection(connection_id, client_id)  # NotFound for another client's
        sub, secret = self.subscriptions.add(client_id, kind, target, events, connections)
        self._audit(who, client_id, "subscription.add", subscription=sub.id, target=sub.target)
        return sub, secret

    def unsubscribe(self, who: Principal, client_id: int, sub_id: int) -> None:
        self._allow(who, client_id, ADMIN)
        self.subscriptions.remove(client_id, sub_id)
        self._audit(who, client_id, "subscription.remove", subscription=sub_id)

    # --------------------------------------------------------------------------- audit

    def audit(
        self, who: Principal, client_id: int, before: int | None, limit: int
    ) -> list[AuditEntry]:
        self._allow(who, client_id, ADMIN)
        return self.queue.audit_log(client_id, before, limit)

    def _audit(self, who: Principal, client_id: int, action: str, **detail: Any) -> None:
        self.queue.record(client_id, who.actor, action, detail)

    # -------------------------------------------------------------------------- health

    def ready(self) -> bool:
        try:
            return self.queue.db.schema_ready()
        except Exception:
            return False


def _action_statuses(action: str) -> tuple[str, ...]:
    try:
        return ACTIONS[action]
    except KeyError:
        raise InvalidInput(f"action must be one of {', '.join(ACTIONS)}") from None


def bulk_filter(flt: ItemFilter, action: str) -> ItemFilter:
    """The filter a bulk action really applies: failed items when the caller named no
    status; of the statuses named, those the action applies to (an error if none)."""
    allowed = _action_statuses(action)
    if not flt.statuses:
        return replace(flt, statuses=BULK_DEFAULT_STATUSES)
    unknown = [s for s in flt.statuses if s not in STATUSES]
    if unknown:
        raise InvalidInput(f"unknown status {unknown[0]!r}; one of {', '.join(STATUSES)}")
    statuses = tuple(s for s in flt.statuses if s in allowed)
    if not statuses:
        raise InvalidInput(f"{action} applies only to {' or '.join(allowed)} items")
    return replace(flt, statuses=statuses)
