"""Reading the queue: item lists and counts by filter, one item with its history, lane
views, monitoring figures, and what notifications need to know about lanes. Nothing here
writes."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from stockyard.db import Database
from stockyard.engine import rows
from stockyard.engine.models import (
    STATUSES,
    Attempt,
    AuditEntry,
    Item,
    ItemDetail,
    ItemFilter,
    LaneView,
    QueueStats,
)
from stockyard.errors import InvalidInput, NotFound

# Lanes in the order an operator wants them: blocked first, then paused, then by work.
_RANK = {"blocked": 0, "paused": 1, "waiting": 2, "running": 3, "ready": 4, "idle": 5}
# The columns `count_by` may group by.
GROUPABLE = ("status", "instruction", "connection_id", "lane_id", "blocking")


@dataclass(frozen=True, slots=True)
class StoppedLane:
    """A lane whose head failed: what a notice of the stop tells."""

    lane: LaneView
    client_id: int
    head: Item


class Reads:
    def __init__(self, db: Database) -> None:
        self.db = db

    # ------------------------------------------------------------------------- filters

    def where(self, flt: ItemFilter) -> tuple[str, list[Any]]:
        """The filter as SQL conditions on `items` and their parameters."""
        clauses = ["client_id = ?"]
        params: list[Any] = [flt.client_id]
        for status in flt.statuses:
            if status not in STATUSES:
                raise InvalidInput(f"unknown status {status!r}; one of {', '.join(STATUSES)}")
        for column, values in (("status", flt.statuses), ("instruction", flt.instructions)):
            if values:
                clauses.append(self.db.in_list(column))
                params.append(self.db.list_param(values))
        if flt.ids:
            clauses.append(self.db.in_list("id"))
            params.append(self.db.list_param(flt.ids))
        if flt.connection_id is not None:
            clauses.append("connection_id = ?")
            params.append(flt.connection_id)
        if flt.ref:
            clauses.append("id IN (SELECT item_id FROM item_refs WHERE ref = ?)")
            params.append(flt.ref)
        if flt.error_contains:
            clauses.append(self.db.contains("error"))
            params.append(flt.error_contains)
        if flt.created_from is not None:
            clauses.append("created_at >= ?")
            params.append(flt.created_from)
        if flt.created_to is not None:
            clauses.append("created_at < ?")
            params.append(flt.created_to)
        if flt.blocking is not None:
            clauses.append("blocking = ?")
            params.append(int(flt.blocking))
        return " AND ".join(clauses), params

    def ids(self, flt: ItemFilter, after: int, limit: int) -> list[int]:
        """Ids of matching items above `after`, ascending (for chunked bulk actions)."""
        where, params = self.where(flt)
        found = (
            self.db.connection()
            .execute(
                f"SELECT id FROM items WHERE {where} AND id > ? ORDER BY id LIMIT ?",
                (*params, after, limit),
            )
            .fetchall()
        )
        return [int(r[0]) for r in found]

    def count(self, flt: ItemFilter) -> int:
        where, params = self.where(flt)
        row = (
            self.db.connection()
            .execute(f"SELECT count(*) FROM items WHERE {where}", params)
            .fetchone()
        )
        return int(row[0])

    def count_by(
        self, flt: ItemFilter, columns: Sequence[str]
    ) -> list[tuple[tuple[Any, ...], int]]:
        """Matching items counted per value of `columns` (of `GROUPABLE`), largest group
        first: ((value, ...), count) pairs. One statement, on the indexes the filter's
        own queries use."""
        unknown = [c for c in columns if c not in GROUPABLE]
        if unknown or not columns:
            raise InvalidInput(f"count_by groups by some of {', '.join(GROUPABLE)}")
        where, params = self.where(flt)
        if flt.statuses == ("failed",):
            # Said literally, the planner reads the failed items' partial index instead of
            # every item of the client (the status list is a parameter it cannot see).
            where += " AND status = 'failed'"
        group = ", ".join(columns)
        found = (
            self.db.connection()
            .execute(
                f"SELECT {group}, count(*) FROM items WHERE {where} GROUP BY {group}"
                f" ORDER BY count(*) DESC, {group}",
                params,
            )
            .fetchall()
        )
        return [(tuple(r[:-1]), int(r[-1])) for r in found]

    # --------------------------------------------------------------------------- items

    def list_items(self, flt: ItemFilter, limit: int = 50, before: int | None = None) -> list[Item]:
        """Newest first; pass the last id seen as `before` for the next page."""
        if not 1 <= limit <= 1000:
            raise InvalidInput("limit must be between 1 and 1000")
        where, params = self.where(flt)
        if before is not None:
            where += " AND id < ?"
            params.append(before)
        cur = self.db.connection().execute(
            f"SELECT {rows.ITEM_COLUMNS} FROM items WHERE {where} ORDER BY id DESC LIMIT ?",
            (*params, limit),
        )
        return rows.items(cur)

    def get(self, client_id: int, item_id: int) -> Item:
        found = rows.item(
            self.db.connection().execute(
                f"SELECT {rows.ITEM_COLUMNS} FROM items WHERE id = ? AND client_id = ?",
                (item_id, client_id),
            )
        )
        if found is None:
            raise NotFound(f"no queue item {item_id}")
        return found

    def detail(self, client_id: int, item_id: int) -> ItemDetail:
        with self.db.read() as cur:
            item = rows.item(
                cur.execute(
                    f"SELECT {rows.ITEM_COLUMNS} FROM items WHERE id = ? AND client_id = ?",
                    (item_id, client_id),
                )
            )
            if item is None:
                raise NotFound(f"no queue item {item_id}")
            history = rows.attempts(
                cur.execute(
                    f"SELECT {rows.ATTEMPT_COLUMNS} FROM attempts WHERE item_id = ?"
                    " ORDER BY number, id",
                    (item_id,),
                )
            )
            children = rows.items(
                cur.execute(
                    f"SELECT {rows.ITEM_COLUMNS} FROM items WHERE parent_id = ?"
                    " ORDER BY id LIMIT 1000",
                    (item_id,),
                )
            )
            audit = rows.audit(
                cur.execute(
                    f"SELECT {rows.AUDIT_COLUMNS} FROM audit WHERE item_id = ? ORDER BY id",
                    (item_id,),
                )
            )
        if item.status in ("running", "done") and item.started_at is not None:
            # The current (or successful) attempt is recorded on the item row itself.
            history.append(
                Attempt(
                    item.attempts,
                    item.worker_id,
                    item.started_at,
                    item.finished_at,
                    item.status,
                    None,
                )
            )
        # Item audit entries carry no id (as they always have); the client's trail does.
        audit = [AuditEntry(a.at, a.actor, a.action, a.item_id, a.lane_id, a.detail) for a in audit]
        return ItemDetail(item=item, attempts=history, children=children, audit=audit)

    def statuses(self, item_ids: Iterable[int]) -> dict[int, str]:
        """The status of each of these items that still exists (any client's)."""
        wanted = list(item_ids)
        if not wanted:
            return {}
        found = (
            self.db.connection()
            .execute(
                f"SELECT id, status FROM items WHERE {self.db.in_list('id')}",
                (self.db.list_param(wanted),),
            )
            .fetchall()
        )
        return {int(i): str(s) for i, s in found}

    # --------------------------------------------------------------------------- lanes

    def lanes(self, client_id: int) -> list[LaneView]:
        """Every lane of the client: blocked first, then paused, then by waiting work."""
        views = self._lanes("l.client_id = ?", (client_id,))
        return sorted(views, key=lambda v: (_RANK[v.state], -v.pending, v.lane_id))

    def lanes_by_id(self, lane_ids: Iterable[int]) -> dict[int, LaneView]:
        """These lanes, whoever's they are (for the layers that check the client)."""
        wanted = list(lane_ids)
        if not wanted:
            return {}
        views = self._lanes(self.db.in_list("l.id"), (self.db.list_param(wanted),))
        return {v.lane_id: v for v in views}

    def _lanes(self, where: str, params: tuple[Any, ...]) -> list[LaneView]:
        cur = self.db.connection().execute(
            f"SELECT {rows.LANE_COLUMNS} FROM lanes l JOIN connections c ON c.id = l.id"
            f" LEFT JOIN items i ON i.id = l.head_id WHERE {where} ORDER BY l.id",
            params,
        )
        return rows.lanes(cur, time.time())

    def stopped_lanes(self) -> list[StoppedLane]:
        """Every blocked lane (its head failed), with that head: notifications' reading.
        Reads the lanes and the failed items' partial index only."""
        with self.db.read() as cur:
            cur.execute(
                f"SELECT {rows.LANE_COLUMNS}, l.client_id AS client_id FROM lanes l"
                " JOIN items i ON i.id = l.head_id JOIN connections c ON c.id = l.id"
                " WHERE i.status = 'failed' ORDER BY l.id"
            )
            pick = rows.picker(cur, "lane_id", "client_id")
            found = cur.fetchall()
            owners = dict(map(pick, found))
            views = rows.lanes_of(cur, found, time.time())
            heads = (
                {
                    i.id: i
                    for i in rows.items(
                        cur.execute(
                            f"SELECT {rows.ITEM_COLUMNS} FROM items WHERE {self.db.in_list('id')}",
                            (self.db.list_param([v.head_id for v in views]),),
                        )
                    )
                }
                if views
                else {}
            )
        return [
            StoppedLane(v, int(owners[v.lane_id]), heads[v.head_id])
            for v in views
            if v.head_id in heads
        ]

    def lane_audit(self, client_id: int, lane_id: int) -> list[AuditEntry]:
        """Who paused and resumed the lane, when and why."""
        cur = self.db.connection().execute(
            f"SELECT {rows.AUDIT_COLUMNS} FROM audit WHERE lane_id = ? AND client_id = ?"
            " ORDER BY id",
            (lane_id, client_id),
        )
        return [
            AuditEntry(a.at, a.actor, a.action, a.item_id, a.lane_id, a.detail)
            for a in rows.audit(cur)
        ]

    # ---------------------------------------------------------------------- monitoring

    def failures_by(
        self, client_id: int
    ) -> tuple[list[tuple[str, int]], list[tuple[int | None, int]]]:
        """Failed items by instruction and by connection (read from the failed items'
        partial index)."""
        found = (
            self.db.connection()
            .execute(
                "SELECT instruction, connection_id, count(*) FROM items"
                " WHERE client_id = ? AND status = 'failed' GROUP BY instruction, connection_id",
                (client_id,),
            )
            .fetchall()
        )
        by_instruction: Counter[str] = Counter()
        by_connection: Counter[int | None] = Counter()
        for instruction, connection, n in found:
            by_instruction[instruction] += n
            by_connection[connection] += n
        return by_instruction.most_common(), by_connection.most_common()

    def backlog_by_client(
        self, finished_from: float, finished_to: float
    ) -> dict[int, tuple[int, int, int]]:
        """Per client that has any: its queued items, its failed items, and its items
        finished (done, skipped, superseded) in [finished_from, finished_to)."""
        counts: dict[int, list[int]] = {}
        conn = self.db.connection()
        for column, sql, params in (
            (0, "SELECT client_id, count(*) FROM items WHERE status = 'queued'", ()),
            (1, "SELECT client_id, count(*) FROM items WHERE status = 'failed'", ()),
            (
                2,
                "SELECT client_id, count(*) FROM items WHERE status IN"
                " ('done', 'skipped', 'superseded') AND finished_at >= ? AND finished_at < ?",
                (finished_from, finished_to),
            ),
        ):
            for client, n in conn.execute(f"{sql} GROUP BY client_id", params).fetchall():
                counts.setdefault(int(client), [0, 0, 0])[column] = int(n)
        return {client: (q, f, d) for client, (q, f, d) in counts.items()}

    def stats(self) -> QueueStats:
        """Unfinished items by status and instruction, lanes by state, live workers: what
        monitoring scrapes. Reads the unfinished items only (through their partial
        indexes), never the finished history."""
        conn = self.db.connection()
        counts = conn.execute(
            "SELECT status, instruction, count(*) FROM items"
            " WHERE status IN ('queued', 'running', 'failed') GROUP BY status, instruction"
        ).fetchall()
        lanes = conn.execute(
            "SELECT l.paused, i.status FROM lanes l LEFT JOIN items i ON i.id = l.head_id"
        ).fetchall()
        (workers,) = conn.execute(
            "SELECT count(*) FROM workers WHERE stopped_at IS NULL AND heartbeat_at > ?",
            (time.time() - 60.0,),
        ).fetchone()
        return QueueStats(
            items={(status, name): int(n) for status, name, n in counts},
            lanes=len(lanes),
            blocked_lanes=sum(1 for paused, status in lanes if status == "failed"),
            paused_lanes=sum(1 for paused, _ in lanes if paused),
            workers=int(workers),
        )
