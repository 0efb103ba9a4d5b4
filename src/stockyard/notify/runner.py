"""What the workers run every few seconds: scan for events, queue their deliveries, mark
them noticed (in that order, so a crash repeats nothing and loses nothing)."""

from __future__ import annotations

import functools
import time

from stockyard.engine import Queue
from stockyard.engine.handlers import HandlerRegistry
from stockyard.notify import events, send
from stockyard.notify.messages import deliveries
from stockyard.notify.settings import NotifySettings
from stockyard.notify.subscriptions import Subscriptions


def notify_due(
    queue: Queue,
    subscriptions: Subscriptions,
    settings: NotifySettings,
    now: float | None = None,
) -> list[int]:
    """Queue the notifications that are due; returns the delivery items' ids."""
    now = time.time() if now is None else now
    queued: list[int] = []
    for event in events.scan(queue, now, settings.digest_window, settings.summary_hour):
        requests = deliveries(event, subscriptions.of_client(event.client_id), settings, now)
        if requests:
            # The one trusted path for notification items: no tenant can reach it.
            queued += queue.enqueue_internal(event.client_id, requests)
        events.mark(queue.db, event)
    return queued


def install(
    registry: HandlerRegistry, subscriptions: Subscriptions, settings: NotifySettings
) -> None:
    registry.register("send_email", functools.partial(send.send_email, settings, subscriptions))
    registry.register("send_webhook", functools.partial(send.send_webhook, settings, subscriptions))
