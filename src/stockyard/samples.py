"""The dashboard's history: per client and minute, the backlog, the failed items and the
items finished. Workers record a sample every minute (a periodic job); the sample's time
slot makes racing workers record it once. The counts are the engine's reading."""

from __future__ import annotations

from stockyard.engine import Queue

SAMPLE_EVERY = 60.0  # seconds between the dashboard's samples
SAMPLES_KEPT = 7 * 86400.0


class Samples:
    def __init__(self, queue: Queue) -> None:
        self.queue = queue
        self.db = queue.db

    def record(self, now: float, every: float = SAMPLE_EVERY) -> None:
        """Record this time slot's sample of every client, and forget old ones."""
        slot = now - now % every
        counts = self.queue.backlog_by_client(slot - every, slot)
        with self.db.write() as cur:
            cur.executemany(
                "INSERT INTO queue_samples (client_id, at, queued, failed, finished)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (client_id, at) DO NOTHING",
                [(client, slot, *values) for client, values in counts.items()],
            )
            cur.execute("DELETE FROM queue_samples WHERE at < ?", (now - SAMPLES_KEPT,))

    def history(self, client_id: int, since: float) -> list[tuple[float, int, int, int]]:
        """(time, queued, failed, finished) per minute since `since`, oldest first."""
        rows = (
            self.db.connection()
            .execute(
                "SELECT at, queued, failed, finished FROM queue_samples"
                " WHERE client_id = ? AND at >= ? ORDER BY at",
                (client_id, since),
            )
            .fetchall()
        )
        return [(float(a), int(q), int(f), int(d)) for a, q, f, d in rows]
