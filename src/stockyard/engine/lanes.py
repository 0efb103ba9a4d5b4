"""The lanes: the single keeper of a lane's head.

Lane invariant (what makes claiming cheap): `lanes.head_id` is the lane's oldest unfinished
item, and `lanes.ready_at` is set exactly while that head is queued (its run_after).
Claiming blocking work reads the partial index `lanes_ready`; claiming non-blocking work
reads `items_free_ready`. Neither touches failed lanes or the backlog behind a head.

Every statement that writes `head_id`, `ready_at` or `pending` is in this module:
`update` re-derives heads after any change of a lane's items, `take_ready` hands out ready
heads to a claim, `set_paused` pauses and resumes, `open` creates a lane.
A lane's id is the id of its connection (a source or a channel).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from stockyard.db import Cursor, Database
from stockyard.engine.rows import dumps
from stockyard.errors import Conflict, NotFound


class Lanes:
    def __init__(self, db: Database) -> None:
        self.db = db

    def open(self, cur: Cursor, lane_id: int, client_id: int) -> None:
        """A new, empty lane (in the transaction that creates its connection)."""
        cur.execute("INSERT INTO lanes (id, client_id) VALUES (?, ?)", (lane_id, client_id))

    def lock(self, cur: Cursor, lane_ids: Iterable[int]) -> None:
        """Take these lanes' row locks, in id order (no deadlocks)."""
        self.db.lock_lanes(cur, lane_ids)

    def update(self, cur: Cursor, pending_change: Mapping[int, int]) -> None:
        """Add `pending_change` to each lane's pending count and re-derive its head_id and
        ready_at from its items, in one statement. A change of 0 only re-derives.

        The head stays while it is running or failed; otherwise it is the lowest queued id.
        """
        if not pending_change:
            return
        # MATERIALIZED: derive each head once (inlined, PostgreSQL computes it twice).
        cur.execute(
            "WITH h AS MATERIALIZED (SELECT l.id AS lane, CAST(d.value->>1 AS INTEGER) AS delta,"
            " CASE WHEN (SELECT status FROM items WHERE id = l.head_id) IN ('running', 'failed')"
            " THEN l.head_id"
            " ELSE (SELECT min(id) FROM items WHERE lane_id = l.id AND status = 'queued') END"
            f" AS head FROM {self.db.json_rows} JOIN lanes l ON l.id = CAST(d.value->>0 AS BIGINT))"
            " UPDATE lanes SET pending = lanes.pending + h.delta, head_id = h.head,"
            " ready_at = (SELECT run_after FROM items WHERE id = h.head AND status = 'queued')"
            " FROM h WHERE lanes.id = h.lane",
            (dumps(list(pending_change.items())),),
        )

    def finish(self, cur: Cursor, finished: Mapping[int, int]) -> None:
        """`finished` counts, per lane, items that left it for good (0: only re-derive)."""
        self.update(cur, {lane: -n for lane, n in finished.items()})

    def take_ready(self, cur: Cursor, limit: int, now: float) -> list[int]:
        """Up to `limit` heads of unpaused lanes that are due, earliest first; their lanes
        stop being ready (the claim that called this starts them)."""
        rows = cur.execute(
            "UPDATE lanes SET ready_at = NULL WHERE "
            + self.db.in_subquery(
                "id",
                "SELECT id FROM lanes WHERE ready_at <= ? AND paused = 0 ORDER BY ready_at"
                f" LIMIT ?{self.db.skip_locked}",
            )
            + " RETURNING head_id",
            (now, limit),
        ).fetchall()
        return [int(r[0]) for r in rows]

    def next_due(self) -> float | None:
        """When the earliest queued item may run (None: nothing can run without an
        operator). Two index probes: the ready-lanes index and the free-items index."""
        row = (
            self.db.connection()
            .execute(
                "SELECT min(t) FROM (SELECT min(ready_at) AS t FROM lanes"
                " WHERE ready_at IS NOT NULL AND paused = 0 UNION ALL SELECT min(run_after)"
                " FROM items WHERE status = 'queued' AND lane_id IS NULL) AS due"
            )
            .fetchone()
        )
        return None if row[0] is None else float(row[0])

    def set_paused(
        self,
        cur: Cursor,
        client_id: int,
        lane_id: int,
        paused: bool,
        actor: str,
        reason: str,
        now: float,
    ) -> None:
        """Pause or resume a lane of the client; Conflict if it already is."""
        row = cur.execute(
            f"SELECT paused FROM lanes WHERE id = ? AND client_id = ?{self.db.for_update}",
            (lane_id, client_id),
        ).fetchone()
        if row is None:
            raise NotFound(f"no lane {lane_id} (lanes are numbered by their connection)")
        if bool(row[0]) == paused:
            raise Conflict(f"lane {lane_id} is already {'paused' if paused else 'running'}")
        params: tuple[Any, ...] = (
            int(paused),
            now if paused else None,
            actor if paused else None,
            reason or None,
            lane_id,
        )
        cur.execute(
            "UPDATE lanes SET paused = ?, paused_at = ?, paused_by = ?, pause_reason = ?"
            " WHERE id = ?",
            params,
        )
