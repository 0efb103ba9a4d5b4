"""The queue engine: items, lanes, claiming, retries, the worker and its handlers. It knows
nothing of HTTP, products, connectors or tenants' accounts; it imports only
`stockyard.db` and `stockyard.errors` (tests/test_architecture.py checks it)."""

from stockyard.engine.actions import ACTIONS, RETRY, SKIP, Action
from stockyard.engine.models import (
    STATUSES,
    Attempt,
    AuditEntry,
    Item,
    ItemDetail,
    ItemFilter,
    Job,
    LaneView,
    Limits,
    Outcome,
    QueueStats,
    Request,
)
from stockyard.engine.queue import Queue
from stockyard.engine.reads import StoppedLane

__all__ = [
    "ACTIONS",
    "RETRY",
    "SKIP",
    "STATUSES",
    "Action",
    "Attempt",
    "AuditEntry",
    "Item",
    "ItemDetail",
    "ItemFilter",
    "Job",
    "LaneView",
    "Limits",
    "Outcome",
    "Queue",
    "QueueStats",
    "Request",
    "StoppedLane",
]
