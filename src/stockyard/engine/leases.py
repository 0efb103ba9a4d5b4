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
from stockyard.engine.wakeup import Wakeup


class Leases:
    def __init__(self, db: Database, lanes: Lanes, wakeup: Wakeup) -> None:
        self.db = db
        self.lanes = lanes
        self.wakeup = wakeup

    def register_worker(self, worker_id: str, hostname: str, pid: int) -> None:
        now = time.time()
        with self.db.write() as cur:
            cur.execute(
                "INSERT INTO workers (id, hostname, pid, started_at, heartbeat_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (worker_id, hostname, pid, now, now),
            )

    def heartbeat(self, worker_id: str) -> bool:
        """Extend the worker's lease; False if it had already been declared dead."""
        with self.db.write() as cur:
            cur.execute(
                "UPDATE workers SET heartbeat_at = ? WHERE id = ? AND stopped_at IS NULL",
                (time.time(), worker_id),
            )
            return cur.rowcount == 1

    def stop_worker(self, worker_id: str, reason: str = "stopped") -> int:
        """Mark a worker gone; any item it still held is released to run again."""
        with self.db.write() as cur:
            cur.execute(
                "UPDATE workers SET stopped_at = ?, stop_reason = ? WHERE id = ?",
                (time.time(), reason, worker_id),
            )
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
                for r in cur.execute(
                    "UPDATE workers SET stopped_at = ?, stop_reason = 'lease expired'"
                    " WHERE stopped_at IS NULL AND heartbeat_at < ? RETURNING id",
                    (now, now - lease_timeout),
                ).fetchall()
            ]
            # Items whose worker is already gone: none, unless something crashed between.
            dead += [
                r[0]
                for r in cur.execute(
                    "SELECT DISTINCT i.worker_id FROM items i"
                    " LEFT JOIN workers w ON w.id = i.worker_id"
                    " WHERE i.status = 'running' AND (w.id IS NULL OR w.stopped_at IS NOT NULL)"
                ).fetchall()
                if r[0] not in dead
            ]
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
        running = f"status = 'running' AND {self.db.in_list('worker_id')}"
        held = self.db.list_param(workers)
        lanes = {
            r[0]
            for r in cur.execute(
                f"SELECT DISTINCT lane_id FROM items WHERE {running} AND lane_id IS NOT NULL",
                (held,),
            ).fetchall()
        }
        self.lanes.lock(cur, lanes)
        cur.execute(
            "SELECT id, attempts, worker_id, started_at, lane_id FROM items"
            f" WHERE {running} ORDER BY id{self.db.for_update}",
            (held,),
        )
        pick = picker(cur, "id", "attempts", "worker_id", "started_at", "lane_id")
        rows = [
            (item_id, attempt, worker, started_at, lane_id)
            for item_id, attempt, worker, started_at, lane_id in map(pick, cur.fetchall())
            # An item claimed since the first read belongs to a lane not locked: next time.
            if (lane_id is None or lane_id in lanes) and (keep is None or item_id not in keep)
        ]
        if not rows:
            return 0
        cur.execute(
            "UPDATE items SET status = 'queued', run_after = ?, worker_id = NULL, updated_at = ?"
            f" WHERE {self.db.in_list('id')}",
            (now, now, self.db.list_param(r[0] for r in rows)),
        )
        cur.executemany(
            "INSERT INTO attempts (item_id, number, worker_id, started_at, ended_at, outcome,"
            " error) VALUES (?, ?, ?, ?, ?, 'lost', ?)",
            [
                (i, attempt, worker, started or now, now, why)
                for i, attempt, worker, started, _ in rows
            ],
        )
        lanes_touched = Counter({lane: 0 for *_, lane in rows if lane is not None})
        if lanes_touched:
            self.lanes.finish(cur, lanes_touched)
        return len(rows)
