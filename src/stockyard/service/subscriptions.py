"""Who is notified of what: email addresses and signed webhooks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from stockyard.errors import InvalidInput
from stockyard.service.base import ADMIN, ServiceBase

if TYPE_CHECKING:
    from stockyard.accounts import Principal
    from stockyard.notify.subscriptions import Subscription


class SubscriptionsService(ServiceBase):
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
        from stockyard.notify import EVENTS

        self._allow(who, client_id, ADMIN)
        unknown = sorted(set(events) - set(EVENTS))
        if unknown:
            raise InvalidInput(f"events: unknown {unknown[0]!r}; known: {', '.join(EVENTS)}")
        for connection_id in connections:
            self.tenancy.connection(connection_id, client_id)  # NotFound for another client's
        sub, secret = self.subscriptions.add(client_id, kind, target, events, connections)
        self._audit(who, client_id, "subscription.add", subscription=sub.id, target=sub.target)
        return sub, secret

    def unsubscribe(self, who: Principal, client_id: int, sub_id: int) -> None:
        self._allow(who, client_id, ADMIN)
        self.subscriptions.remove(client_id, sub_id)
        self._audit(who, client_id, "subscription.remove", subscription=sub_id)
