"""A process that takes from a connection's shared budget (tests/test_shopify_bucket.py):
spawned several times at once, as workers on several hosts would be."""

from __future__ import annotations

from stockyard.connectors.budget import Grant, SharedBudget
from stockyard.db import connect


def take_many(url: str, client_id: int, connection_id: int, cost: float, times: int) -> list[float]:
    """The marks of the takes that were granted."""
    db = connect(url)
    try:
        budget = SharedBudget(db, client_id, connection_id, clock=lambda: 1_000_000.0)
        taken = (budget.take(cost, max_wait=0) for _ in range(times))
        return [t.mark for t in taken if isinstance(t, Grant)]
    finally:
        db.close()
