"""Retention: finished items are deleted after an age; failed and waiting items never."""

from __future__ import annotations

import time

from stockyard.db import Database
from stockyard.errors import InvalidInput


def prune(db: Database, older_than: float, batch: int = 1000) -> int:
    """Delete finished items (done, skipped, superseded) finished before now -
    older_than, in batches, with their attempts and references; returns how many."""
    if older_than < 0:
        raise InvalidInput("the retention age cannot be negative")
    cutoff = time.time() - older_than
    total = 0
    while True:
        with db.write() as cur:
            ids = [
                r[0]
                for r in cur.execute(
                    "DELETE FROM items WHERE id IN (SELECT id FROM items"
                    " WHERE status IN ('done', 'skipped', 'superseded') AND finished_at < ?"
                    # The newest item stays: its id is where the id sequence resumes.
                    " AND id < (SELECT max(id) FROM items) LIMIT ?) RETURNING id",
                    (cutoff, batch),
                )
            ]
            if ids:
                ids_param = db.list_param(ids)
                for table in ("attempts", "item_refs"):
                    cur.execute(f"DELETE FROM {table} WHERE {db.in_list('item_id')}", (ids_param,))
        total += len(ids)
        if len(ids) < batch:
            return total
