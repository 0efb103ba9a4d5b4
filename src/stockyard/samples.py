"""The dashboard's history: per client and minute, the backlog, the failed items and the
items finished. Workers record a sample every minute (a periodic job); the sample's time
slot makes racing workers record it once. The counts are the engine's reading.

Also the lanes page's recent throughput per lane, counted from the items themselves: the
finished items' index (finished_at) walks only what finished in the window, which is
cheaper than a per-lane sample table and needs no schema change."""

from __future__ import annotations

from stockyard.db import Store, load_queries
from stockyard.engine import Queue

SAMPLE_EVERY = 60.0  # seconds between the dashboard's samples
SAMPLES_KEPT = 7 * 86400.0


class Samples(Store):
    queries = load_queries("stockyard", "samples.sql")

    def __init__(self, queue: Queue) -> None:
        super().__init__(queue.db)
        self.queue = queue

    def record(self, now: float, every: float = SAMPLE_EVERY) -> None:
        """Record this time slot's sample of every client, and forget old ones."""
        slot = now - now % every
        counts = self.queue.backlog_by_client(slot - every, slot)
        with self.db.write() as cur:
            self.execute_many(
                cur,
                "insert_sample",
                [
                    {"client_id": client, "at": slot, "queued": q, "failed": f, "finished": d}
                    for client, (q, f, d) in counts.items()
                ],
            )
            self.execute(cur, "forget_samples", before=now - SAMPLES_KEPT)

    def history(self, client_id: int, since: float) -> list[tuple[float, int, int, int]]:
        """(time, queued, failed, finished) per minute since `since`, oldest first."""
        rows = self.all(self.conn, "samples", client_id=client_id, since=since)
        return [
            (float(r["at"]), int(r["queued"]), int(r["failed"]), int(r["finished"])) for r in rows
        ]

    def finished_by_lane(self, client_id: int, since: float) -> dict[int, int]:
        """The client's blocking items finished since `since`, per lane."""
        rows = self.all(self.conn, "finished_by_lane", client_id=client_id, since=since)
        return {int(r["lane_id"]): int(r["n"]) for r in rows}
