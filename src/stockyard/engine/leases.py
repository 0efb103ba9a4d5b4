"""Workers and their leases: registration, heartbeats, stopping, reaping the dead.

A worker holds its running items as long as it heartbeats. One whose heartbeat is older
than the lease timeout is marked stopped, and its items are released to run again
(at-least-once delivery); every release is recorded as a `lost` attempt.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable

from stockyard.db import Cursor, Database
from stockyard.engine.lanes import Lanes
from stockyard.engine.rows import picker
from stockyard.engine.store import Sql
from stockyard.engine.wakeup import Wakeup


class Leases:
    def __init__(self, db: Database, lanes: Lanes, wakeup: Wakeup) -> None:
        self.db = db
        self.lanes = lanes
        self.wakeup = wakeup
        self.sql = Sql(db)

    def register_worker(self, worker_id: str, hostname: str, pid: int) -> list[str]:
        """Register a new worker; the live workers in id order."""
        now = time.time()
        with self.db.write() as cur:
            self.sql.execute(
                cur, "register_worker", id=worker_id, hostname=hostname, pid=pid, now=now
            )
            return self.live(cur)

    def heartbeat(self, worker_id: str) -> tuple[bool, list[str]]:
        """Extend the worker's lease; whether it was still alive (False: it had already
        been declared dead), and the live workers in id order."""
        with self.db.write() as cur:
            alive = self.sql.execute(cur, "heartbeat", now=time.time(), id=worker_id) == 1
            return alive, self.live(cur)

    def live(self, cur: Cursor) -> list[str]:
        return [str(r[0]) for r in self.sql.all(cur, "live_worker_ids")]

    def stop_worker(self, worker_id: str, reason: str = "stopped") -> int:
        """Mark a worker gone; any item it still held is released to run again."""
        with self.db.write() as cur:
            self.sql.execute(cur, "stop_worker", now=time.time(), reason=reason, id=worker_id)
            released = self._release(cur, [worker_id], f"worker {reason}", time.time())
        if released:
            self.wakeup.notify()
        return released

    def release_unknown(self, worker_id: str, known: Iterable[int]) -> int:
        """Release items running under this worker that it does not know it holds: a claim
        whose commit succeeded while the connection broke before the answer arrived."""
        with self.db.write() as cur:
            released = self._release(
                cur, [worker_id], "claim answer lost with the connection", time.time(), set(known)
            )
        if released:
            self.wakeup.notify()
        return released

    def reap(self, lease_timeout: float) -> int:
        """Release the items of workers whose heartbeat is older than `lease_timeout`."""
        now = time.time()
        with self.db.write() as cur:
            # Marking them stopped first takes their rows' locks: a claim of theirs has
            # either committed (its items are released below) or will see them stopped.
            dead = [
                r[0]
                for r in self.sql.all(cur, "expire_workers", now=now, cutoff=now - lease_timeout)
            ]
            # Items whose worker is already gone: none, unless something crashed between.
            dead += [r[0] for r in self.sql.all(cur, "orphaned_workers") if r[0] not in dead]
            if not dead:
                return 0
            released = self._release(cur, dead, "lease expired: worker stopped heartbeating", now)
            if released:
                self.db.notify(cur)
        if released:
            self.wakeup.notify()
        return released

    def _release(
        self,
        cur: Cursor,
        workers: list[str],
        why: str,
        now: float,
        keep: set[int] | None = None,
    ) -> int:
        lanes = {r[0] for r in self.sql.all(cur, "held_lanes", workers=workers)}
        self.lanes.lock(cur, lanes)
        held = self.sql.all(cur, "held_items", workers=workers)
        pick = picker(cur, "id", "attempts", "worker_id", "started_at", "lane_id")
        rows = [
            (item_id, attempt, worker, started_at, lane_id)
            for item_id, attempt, worker, started_at, lane_id in map(pick, held)
            # An item claimed since the first read belongs to a lane not locked: next time.
            if (lane_id is None or lane_id in lanes) and (keep is None or item_id not in keep)
        ]
        if not rows:
            return 0
        self.sql.execute(cur, "release_items", now=now, ids=[r[0] for r in rows])
        self.sql.execute_many(
            cur,
            "insert_attempt",
            [
                {
                    "item_id": i,
                    "number": attempt,
                    "worker_id": worker,
                    "started_at": started or now,
                    "ended_at": now,
                    "outcome": "lost",
                    "error": why,
                }
                for i, attempt, worker, started, _ in rows
            ],
        )
        lanes_touched = Counter({lane: 0 for *_, lane in rows if lane is not None})
        if lanes_touched:
            self.lanes.finish(cur, lanes_touched)
        return len(rows)
