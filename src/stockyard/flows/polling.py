"""Polling: sources and channels that cannot push are pulled at an interval set
per connection (`poll_products_every` and `poll_customers_every` on a source,
`poll_orders_every` on a channel, `poll_fulfillments_every` on a fulfillment service, in
seconds). A pull is a queue item; a new one is queued only when the last one of the same
kind finished."""

from __future__ import annotations

import time

from stockyard.engine import Request
from stockyard.errors import NotFound
from stockyard.flows.base import Services
from stockyard.tenancy import Connection

# connection kind -> its pulls: (setting, instruction), each scheduled on its own
POLLS: dict[str, tuple[tuple[str, str], ...]] = {
    "source": (
        ("poll_products_every", "pull_products"),
        ("poll_customers_every", "pull_customers"),
    ),
    "channel": (("poll_orders_every", "pull_orders"),),
    "fulfillment": (("poll_fulfillments_every", "pull_fulfillments"),),
}
MIN_INTERVAL = 5.0


def interval_of(connection: Connection, setting: str) -> float | None:
    value = connection.settings.get(setting)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return None
    return max(float(value), MIN_INTERVAL)


def schedule_polls(services: Services, now: float | None = None) -> list[int]:
    """Queue the pulls that are due; returns their ids. Several workers may call this at
    once: a pull's idempotency key names its time slot, so they queue it once."""
    now = time.time() if now is None else now
    queued: list[int] = []
    for connection in services.tenancy.connections():
        if connection.status == "disabled":
            continue
        for setting, instruction in POLLS.get(connection.kind, ()):
            interval = interval_of(connection, setting)
            if interval is not None:
                queued.extend(_poll(services, connection, instruction, interval, now))
    return queued


def _poll(
    services: Services, connection: Connection, instruction: str, interval: float, now: float
) -> list[int]:
    """The pull `instruction` of `connection` queued if it is due; its id."""
    key = f"poll:{instruction}"
    state = services.store.state(connection.id, key)
    if state is not None and state.next_at is not None and state.next_at > now:
        return []
    if (
        state is not None
        and state.item_id is not None
        and _waiting(services, connection, state.item_id)
    ):
        return []
    slot = int(now // interval)
    request = Request(
        instruction,
        {},
        connection.id,
        idempotency_key=f"poll:{connection.id}:{instruction}:{slot}",
    )
    (item_id,) = services.queue.enqueue(connection.client_id, [request])
    services.store.set_state(connection.id, key, None, now + interval, item_id)
    return [item_id]


def _waiting(services: Services, connection: Connection, item_id: int) -> bool:
    """The last pull has not finished: queued, running, or failed awaiting an operator."""
    try:
        item = services.queue.get(connection.client_id, item_id)
    except NotFound:
        return False
    return item.status in ("queued", "running", "failed")
