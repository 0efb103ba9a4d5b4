"""The lanes: the single keeper of a lane's head.

Lane invariant (what makes claiming cheap): `lanes.head_id` is the lane's oldest unfinished
item, and `lanes.ready_at` is set exactly while that head is queued (when it became due:
its run_after, or the moment the lane got it if that was later). Claiming blocking work
reads the partial index `lanes_client_ready`; claiming non-blocking work reads
`items_fair_ready`. Neither touches failed lanes or the backlog behind a head.

Every statement that writes `head_id`, `ready_at` or `pending` is in this module:
`update` re-derives heads after any change of a lane's items, `due_for_client`, `take`
and `defer` hand out ready heads to a claim (or put off a lane whose connection is at its
limits), `set_paused` pauses and resumes, `open` creates a lane. A lane's id is the id of
its connection (a source or a channel).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from stockyard.db import Cursor, Database
from stockyard.engine.rows import dumps
from stockyard.engine.store import Sql
from stockyard.errors import Conflict, NotFound

# How long a ready lane waits for the worker whose share it is before any worker takes it.
LANE_HANDOFF = 1.0
# How long a lane whose connection is at its limits waits before a claim looks again.
LIMITED_WAIT = 0.1


@dataclass(frozen=True, slots=True)
class Place:
    """A worker's place among the live workers: it takes first the lanes whose id modulo
    `count` is `index`, so lanes spread across workers instead of following whichever
    worker settled last."""

    index: int = 0
    count: int = 1


class Lanes:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.sql = Sql(db)

    def open(self, cur: Cursor, lane_id: int, client_id: int) -> None:
        """A new, empty lane (in the transaction that creates its connection)."""
        self.sql.execute(cur, "open_lane", id=lane_id, client_id=client_id)

    def lock(self, cur: Cursor, lane_ids: Iterable[int]) -> None:
        """Take these lanes' row locks, in id order (no deadlocks). SQLite's BEGIN
        IMMEDIATE already made the transaction the only writer."""
        if self.db.row_locks:
            lanes = sorted(set(lane_ids))
            if lanes:
                self.sql.all(cur, "lock_lanes", ids=lanes)

    def update(self, cur: Cursor, pending_change: Mapping[int, int]) -> None:
        """Add `pending_change` to each lane's pending count and re-derive its head_id and
        ready_at from its items, in one statement. A change of 0 only re-derives.

        The head stays while it is running or failed; otherwise it is the lowest queued id.
        A queued head makes the lane ready from its run_after, or from now if that passed.
        """
        if not pending_change:
            return
        batch = dumps(list(pending_change.items()))
        self.sql.execute(cur, "update_lanes", batch=batch, now=time.time())

    def finish(self, cur: Cursor, finished: Mapping[int, int]) -> None:
        """`finished` counts, per lane, items that left it for good (0: only re-derive)."""
        self.update(cur, {lane: -n for lane, n in finished.items()})

    def due_for_client(
        self, cur: Cursor, client_id: int, limit: int, now: float, place: Place
    ) -> list[tuple[int, int]]:
        """(lane, head) of up to `limit` due lanes of the client, earliest first: first
        those of this worker's share of lanes, then any other lane due for longer than
        LANE_HANDOFF (its worker is busy or gone). Locked on PostgreSQL, for `take` or
        `defer` in the same transaction."""
        rows = self.sql.all(
            cur,
            "client_lanes_due",
            client_id=client_id,
            now=now,
            limit=limit,
            workers=place.count,
            slot=place.index,
            stale=now - LANE_HANDOFF,
        )
        return [(int(r[0]), int(r[1])) for r in rows]

    def take(self, cur: Cursor, lane_ids: Sequence[int]) -> None:
        """These lanes (from `due_for_client`) stop being ready: the claim starts their
        heads."""
        if lane_ids:
            self.sql.execute(cur, "take_lanes", ids=list(lane_ids))

    def defer(self, cur: Cursor, lane_ids: Sequence[int], until: float) -> None:
        """These ready lanes (from `due_for_client`), whose connection is at its limits,
        wait until `until`, behind the client's other lanes."""
        if lane_ids:
            self.sql.execute(cur, "defer_lanes", ids=list(lane_ids), later=until)

    def next_due(self) -> float | None:
        """When the earliest ready lane may run (None: none is ready)."""
        due = self.sql.value(self.sql.conn, "next_lane_due")
        return None if due is None else float(due)

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
        row = self.sql.must(
            cur,
            "lane_paused",
            missing=NotFound(f"no lane {lane_id} (lanes are numbered by their connection)"),
            lane_id=lane_id,
            client_id=client_id,
        )
        if bool(row[0]) == paused:
            raise Conflict(f"lane {lane_id} is already {'paused' if paused else 'running'}")
        self.sql.execute(
            cur,
            "set_paused",
            paused=int(paused),
            paused_at=now if paused else None,
            paused_by=actor if paused else None,
            reason=reason or None,
            lane_id=lane_id,
        )
