"""Retention: finished items are deleted after an age; failed and waiting items never."""

from __future__ import annotations

import time

from stockyard.db import Database
from stockyard.engine.store import Sql
from stockyard.errors import InvalidInput


def prune(db: Database, older_than: float, batch: int = 1000) -> int:
    """Delete finished items (done, skipped, superseded) finished before now -
    older_than, in batches, with their attempts and references; returns how many."""
    if older_than < 0:
        raise InvalidInput("the retention age cannot be negative")
    cutoff = time.time() - older_than
    sql = Sql(db)
    total = 0
    while True:
        with db.write() as cur:
            ids = [r[0] for r in sql.all(cur, "prune_items", cutoff=cutoff, limit=batch)]
            if ids:
                sql.execute(cur, "prune_attempts", ids=ids)
                sql.execute(cur, "prune_refs", ids=ids)
        total += len(ids)
        if len(ids) < batch:
            return total
