"""An event and its subscribers -> one delivery item per recipient: an email (plain text
and HTML from templates) or a webhook (JSON, signed when sent). A person on the general
list and on a specific one gets one message."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from stockyard.engine import Request
from stockyard.notify.events import Event
from stockyard.notify.settings import NotifySettings
from stockyard.notify.subscriptions import Subscription

_templates = Environment(
    loader=PackageLoader("stockyard.notify", "templates"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def headline(event: Event) -> str:
    d = event.data
    where = d.get("connection") or "Stockyard"
    refs = ", ".join(d.get("refs", [])[:3])
    if event.type == "lane.stopped":
        return f"{where} stopped: {d['instruction']} failed" + (f" ({refs})" if refs else "")
    if event.type == "lane.resumed":
        return f"{where} is moving again"
    if event.type == "item.failed":
        count = d.get("count", 1)
        what = f"{count} x {d['instruction']}" if count > 1 else d["instruction"]
        return f"{what} failed on {where}" + (f" ({refs})" if refs and count == 1 else "")
    return f"Daily summary: {d['total']} items still failed"


def link(event: Event, settings: NotifySettings) -> str:
    item = event.data.get("item_id")
    if item is not None:
        return settings.item_url(event.client_id, int(item))
    return (
        f"{settings.public_url.rstrip('/')}/console/clients/{event.client_id}/items?status=failed"
    )


def email(event: Event, settings: NotifySettings) -> dict[str, str]:
    values = {
        "event": event,
        "data": event.data,
        "headline": headline(event),
        "link": link(event, settings),
    }
    return {
        "subject": f"[Stockyard] {headline(event)}",
        "text": _templates.get_template("notice.txt").render(values),
        "html": _templates.get_template("notice.html").render(values),
    }


def webhook_body(event: Event, settings: NotifySettings, now: float) -> dict[str, Any]:
    """The Standard Webhooks payload shape: type, timestamp, data."""
    return {
        "type": event.type,
        "timestamp": dt.datetime.fromtimestamp(now, dt.UTC).isoformat(),
        "data": {
            "client_id": event.client_id,
            "connection_id": event.connection_id,
            **event.data,
            "url": link(event, settings),
        },
    }


def message_id(event: Event) -> str:
    """Stable for the event: a receiver can drop a repeated delivery by it."""
    return "msg_" + hashlib.sha256(event.key.encode()).hexdigest()[:24]


def deliveries(
    event: Event, subscribers: Sequence[Subscription], settings: NotifySettings, now: float
) -> list[Request]:
    wanted = [s for s in subscribers if s.wants(event.type, event.connection_id)]
    refs = tuple(str(r) for r in event.data.get("refs", [])[:10])
    requests: list[Request] = []
    content: dict[str, str] | None = None
    seen: set[str] = set()
    for sub in wanted:
        if sub.target in seen:
            continue
        seen.add(sub.target)
        # Neither the key nor the payload names the target: items are shown to read-only
        # users, subscriptions only to administrators, and webhook URLs often carry a
        # token. The handlers send to the subscription's own target (notify/send.py).
        key = f"notify:{event.key}:{sub.kind}:{sub.id}"
        if sub.kind == "email":
            content = content or email(event, settings)
            payload: dict[str, Any] = {
                "subscription_id": sub.id,
                "event": event.type,
                **content,
            }
            requests.append(Request("send_email", payload, None, refs, idempotency_key=key))
        else:
            payload = {
                "subscription_id": sub.id,
                "message_id": message_id(event),
                "body": webhook_body(event, settings, now),
            }
            requests.append(Request("send_webhook", payload, None, refs, idempotency_key=key))
    return requests
