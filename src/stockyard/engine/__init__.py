"""The queue engine: items, lanes, claiming, retries. It knows nothing of HTTP,
products or connectors; those layers sit on top of `Queue`."""

from stockyard.engine.models import (
    Attempt,
    AuditEntry,
    Connection,
    Item,
    ItemDetail,
    ItemFilter,
    Job,
    LaneView,
    Outcome,
    QueueStats,
    Request,
)
from stockyard.engine.queue import Queue

__all__ = [
    "Attempt",
    "AuditEntry",
    "Connection",
    "Item",
    "ItemDetail",
    "ItemFilter",
    "Job",
    "LaneView",
    "Outcome",
    "Queue",
    "QueueStats",
    "Request",
]
