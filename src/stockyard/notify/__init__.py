"""Notifications: when the queue needs a person, the client's subscribers get an
email or a signed webhook.

A scan, run by the workers every few seconds, turns the queue's state into events: a lane
stopped by a failed item, a stopped lane that moved on, non-blocking failures (grouped
into one digest per kind within a window) and a daily summary. Each event is noticed
once, however many workers scan, and becomes non-blocking `send_email` / `send_webhook`
items, one per recipient, which retry with back-off like any item. Failed notification
items are never themselves notified about.
"""

from stockyard.notify.settings import NotifySettings

EVENTS: tuple[str, ...] = ("lane.stopped", "lane.resumed", "item.failed", "daily.summary")
NOTIFY_INSTRUCTIONS: tuple[str, ...] = ("send_email", "send_webhook")

__all__ = ["EVENTS", "NOTIFY_INSTRUCTIONS", "NotifySettings"]
