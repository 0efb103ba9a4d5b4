"""Inbound pushes: data a source, channel or fulfillment service sends in, as queue
items. The topics and their payloads are in `stockyard.service.inbound`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, NamedTuple

from stockyard.errors import Conflict, InvalidInput, NotFound, Unauthenticated
from stockyard.service.base import ADMIN, DISABLED, ServiceBase

if TYPE_CHECKING:
    from stockyard.accounts import Principal
    from stockyard.service.inbound import Record
    from stockyard.tenancy import Connection


class Pushed(NamedTuple):
    """A webhook's items, and whether the connection's secret proved its sender: an
    unsigned one (a platform's ping, which it cannot sign) proves nothing, so its cost is
    its sender address's, never the connection's (whose sender it may not be)."""

    items: list[int]
    signed: bool


class PushService(ServiceBase):
    def push(
        self,
        connection_id: int,
        topic_name: str,
        records: Sequence[Record],
        body: bytes,
        headers: Mapping[str, str],
        bearer: str | None,
    ) -> list[int]:
        """Data a source, channel or fulfillment service pushes in, as queue items.

        A connection with a `webhook_secret` accepts only pushes signed with it (Standard
        Webhooks); one without, or whose connector reads its platform's own webhooks with
        that secret, accepts an administrator's key or session.
        """
        from stockyard.service import inbound

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

    def push_webhook(
        self, connection_id: int, topic: str, body: bytes, headers: Mapping[str, str]
    ) -> Pushed:
        """A webhook a platform posts (connectors.webhooks), as queue items. The connection
        id in the address alone selects the client; the connection's connector class checks
        the signature with the connection's webhook_secret. An unknown connection, one whose
        connector takes no webhooks or that has no webhook_secret, and a bad signature all
        get `inbound.WEBHOOK_REFUSED` after the work of a signature check (an HMAC of the
        body with a dummy key when there is no real one)."""
        from stockyard.connectors.webhooks import Unsigned, dummy_check
        from stockyard.service import inbound

        try:
            conn: Connection | None = self.tenancy.connection(connection_id)
        except NotFound:
            conn = None
        cls = None if conn is None else self.connectors.get(conn.connector)
        read = getattr(cls, "read_webhook", None)
        secret = None if conn is None else self._secrets_of(conn).get("webhook_secret")
        if conn is None or read is None or not secret:
            dummy_check(body)  # the work a real check costs
            raise Unauthenticated(inbound.WEBHOOK_REFUSED)
        try:
            delivery = read(topic, body, headers, str(secret), dict(conn.settings))
        except Unsigned:
            raise Unauthenticated(inbound.WEBHOOK_REFUSED) from None
        if delivery.unsigned:  # anyone could have sent it: it queues nothing
            return Pushed([], signed=False)
        topic_of = inbound.TOPICS[delivery.topic]
        if conn.kind != topic_of.kind:
            raise InvalidInput(
                f"connection {connection_id} is a {conn.kind}; {topic_of.name} come from a"
                f" {topic_of.kind}"
            )
        if conn.status == DISABLED:
            raise Conflict(f"connection {connection_id} is disabled")
        if not delivery.records:
            return Pushed([], signed=True)
        message_id = f"webhook:{delivery.message_id}"
        requests = inbound.requests_for(topic_of, connection_id, list(delivery.records), message_id)
        return Pushed(self.queue.enqueue(conn.client_id, requests), signed=True)

    def _push_sender(
        self, connection_id: int, body: bytes, headers: Mapping[str, str], bearer: str | None
    ) -> tuple[Connection, str | None]:
        """The connection and the message id of a push whose sender proves it may push:
        with a signature made with the connection's webhook_secret or, for a connection
        without one (or whose secret is its platform's, see _standard_webhooks_secret), an
        administrator's key of its client. Any other push gets the one
        `inbound.REFUSED` answer after the same work, so that a caller without credentials
        learns neither which connections exist, nor whose they are, nor how they are
        secured."""
        from stockyard.service import inbound
        from stockyard.signing import SignatureError, verify

        try:
            conn: Connection | None = self.tenancy.connection(connection_id)
        except NotFound:
            conn = None
        secret = None if conn is None else self._standard_webhooks_secret(conn)
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

    def _standard_webhooks_secret(self, conn: Connection) -> object:
        """The secret that signs the connection's Standard Webhooks pushes; none when its
        connector reads its platform's own webhooks (read_webhook): that secret is then
        the platform's (e.g. a Shopify app's client secret), which signs webhooks that only
        name orders to read back from the platform, and must not also sign whole orders
        taken as given on the generic routes."""
        if getattr(self.connectors.get(conn.connector), "read_webhook", None) is not None:
            return None
        return self._secrets_of(conn).get("webhook_secret")

    def _principal(self, token: str | None) -> Principal | None:
        try:
            return self.authenticate(token)
        except Unauthenticated:
            return None
