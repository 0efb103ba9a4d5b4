"""Who is told of what: email addresses and webhook endpoints per client, each for every
event or some, and for every connection or some."""

from __future__ import annotations

import base64
import json
import re
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from stockyard.db import Database, Row, Store, load_queries
from stockyard.errors import InvalidInput, NotFound
from stockyard.outbound import url_refusal
from stockyard.sealing import Sealer

_EMAIL = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$")
KINDS = ("email", "webhook")


@dataclass(frozen=True, slots=True)
class Subscription:
    id: int
    client_id: int
    kind: str
    target: str
    events: list[str]  # empty: every event
    connections: list[int]  # empty: every connection
    created_at: float

    def wants(self, event: str, connection_id: int | None) -> bool:
        if self.events and event not in self.events:
            return False
        # Events of no connection (the daily summary) reach every subscription of the event.
        return not self.connections or connection_id is None or connection_id in self.connections


def check_target(kind: str, target: str) -> str:
    target = target.strip()
    if kind == "email":
        if not _EMAIL.match(target):
            raise InvalidInput("target: not an email address")
        return target.lower()
    if kind == "webhook":
        if not re.match(r"^https?://[^\s]+$", target):
            raise InvalidInput("target: a webhook is an http:// or https:// URL")
        # A literal internal address is refused now; names are checked on delivery.
        refused = url_refusal(target)
        if refused is not None:
            raise InvalidInput(f"target: {refused}")
        return target
    raise InvalidInput(f"kind must be one of {', '.join(KINDS)}")


class Subscriptions(Store):
    queries = load_queries(__package__, "subscriptions.sql")

    def __init__(self, db: Database, sealer: Callable[[], Sealer]) -> None:
        super().__init__(db)
        self._sealer = sealer

    def add(
        self,
        client_id: int,
        kind: str,
        target: str,
        events: Sequence[str],
        connections: Sequence[int],
    ) -> tuple[Subscription, str | None]:
        """The subscription, and for a webhook its signing secret (shown this once)."""
        target = check_target(kind, target)
        # The standard's form: whsec_ and standard base64 of random bytes (its libraries
        # decode it so; url-safe base64 would not verify there).
        secret = (
            "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
            if kind == "webhook"
            else None
        )
        sealed = self._sealer().seal({"secret": secret}) if secret else None
        with self.db.write() as cur:
            sub_id = self.value(
                cur,
                "insert_subscription",
                client_id=client_id,
                kind=kind,
                target=target,
                events=json.dumps(sorted(set(events))),
                connections=json.dumps(sorted(set(connections))),
                secret=sealed,
                now=time.time(),
            )
        return self.get(client_id, int(sub_id)), secret

    def get(self, client_id: int, sub_id: int) -> Subscription:
        row = self.must(
            self.conn,
            "subscription",
            missing=NotFound(f"no subscription {sub_id}"),
            id=sub_id,
            client_id=client_id,
        )
        return _subscription(row)

    def of_client(self, client_id: int) -> list[Subscription]:
        rows = self.all(self.conn, "client_subscriptions", client_id=client_id)
        return [_subscription(r) for r in rows]

    def remove(self, client_id: int, sub_id: int) -> None:
        with self.db.write() as cur:
            if not self.execute(cur, "remove_subscription", id=sub_id, client_id=client_id):
                raise NotFound(f"no subscription {sub_id}")

    def secret(self, sub_id: int) -> str | None:
        row = self.one(self.conn, "subscription_secret", id=sub_id)
        if row is None or not row["secret"]:
            return None
        value = self._sealer().open(row["secret"]).get("secret")
        return value if isinstance(value, str) else None


def _subscription(row: Row) -> Subscription:
    return Subscription(
        id=int(row["id"]),
        client_id=int(row["client_id"]),
        kind=row["kind"],
        target=row["target"],
        events=json.loads(row["events"]),
        connections=json.loads(row["connections"]),
        created_at=float(row["created_at"]),
    )
