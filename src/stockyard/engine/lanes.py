"""The lanes: the single keeper of a lane's head.

Lane invariant (what makes claiming cheap): `lanes.head_id` is the lane's oldest unfinished
item, and `lanes.ready_at` is set exactly while that head is queued (when it became due:
its run_after, or the moment the lane got it if that was later). Claiming blocking work
reads the partial index `lanes_client_ready` (`lanes_limited_ready` for limited
connections); claiming non-blocking work reads `items_fair_ready`. Neither touches failed
lanes or the backlog behind a head.

Every statement that writes `head_id`, `ready_at` or `pending` is in this module:
`update` re-derives heads after any change of a lane's items, `take_client` and
`take_limited` hand out ready heads to a claim, `set_paused` pauses and resumes, `open`
creates a lane. A lane's id is the id of its connection (a source or a channel); a lane
of a limited connection is marked `limited` (stockyard.engine.limits).
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

    def take_client(
        self, cur: Cursor, client_id: int, limit: int, now: float, place: Place
    ) -> list[int]:
        """Up to `limit` due heads of the client's unpaused lanes without limits, earliest
        first: first those of this worker's share of lanes, then any other lane due for
        longer than LANE_HANDOFF (its worker is busy or gone). Their lanes stop being ready
        (the claim that called this starts them)."""
        rows = self.sql.all(
            cur,
            "take_client_lanes",
            client_id=client_id,
            now=now,
            limit=limit,
            workers=place.count,
            slot=place.index,
            stale=now - LANE_HANDOFF,
        )
        return [int(r[0]) for r in rows]

    def take_limited(
        self, cur: Cursor, lane_ids: Sequence[int], now: float
    ) -> list[tuple[int, int]]:
        """(lane, head) of these lanes of limited connections (locked by the claim, which
        checked their limits) that are due; their lanes stop being ready."""
        if not lane_ids:
            return []
        rows = self.sql.all(cur, "take_limited_heads", ids=list(lane_ids), now=now)
        return [(int(r[0]), int(r[1])) for r in rows]

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
