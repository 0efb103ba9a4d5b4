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
    UnfinishedCounts,
)
from stockyard.engine.store import Sql
from stockyard.errors import InvalidInput, NotFound

# Lanes in the order an operator wants them: blocked first, then paused, then by work.
_RANK = {"blocked": 0, "paused": 1, "waiting": 2, "running": 3, "ready": 4, "idle": 5}
# The columns `count_by` may group by.
GROUPABLE = ("status", "instruction", "connection_id", "lane_id", "blocking")
# How many of a client's connections `next_to_run` reads non-blocking work of.
_MAX_FREE_GROUPS = 50
# A prefix shorter than this is searched as a whole reference: "s" would be a range over
# nearly every reference of a client (docs/queue.md).
MIN_PREFIX = 2
# Beyond this many references in a prefix's range its items are found newest first. At
# least the largest count cap of the shells (the console's 10,000): a capped count of a
# range no broader than the cap reads the range, never the client's history newest first
# (2,500 matches among 200,000 items: 94 ms that way, every refresh).
_BROAD_PREFIX = 10_000


def _after_prefix(prefix: str) -> str:
    """The least string above every string that starts with `prefix`, in code point
    order: the prefix with its last character raised by one."""
    for cut in range(len(prefix) - 1, -1, -1):
        nxt = ord(prefix[cut]) + 1
        if 0xD800 <= nxt <= 0xDFFF:  # surrogates are no characters: skip over them
            nxt = 0xE000
        if nxt <= 0x10FFFF:
            return prefix[:cut] + chr(nxt)
    return prefix + "\U0010ffff"  # every character is the last one: close enough


@dataclass(frozen=True, slots=True)
class StoppedLane:
    """A lane whose head failed: what a notice of the stop tells."""

    lane: LaneView
    client_id: int
    head: Item


class Reads:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.sql = Sql(db)

    # ------------------------------------------------------------------------- filters
    # The statements of an item filter are composed here, not named in queries.sql: each
    # of nine conditions is optional, and a fixed statement (`:x IS NULL OR ...`) would
    # hide from the planner which indexes apply (the failed items' page reads
    # items_failed, a search by reference item_refs' key). The parts are written like a
    # `.sql` file's (`:name` parameters, macros) and each shape compiles once (`compose`).

    def where(self, flt: ItemFilter) -> tuple[str, dict[str, Any]]:
        """The filter as SQL conditions on `items` and their named parameters."""
        clauses = ["client_id = :client_id"]
        params: dict[str, Any] = {"client_id": flt.client_id}
        for status in flt.statuses:
            if status not in STATUSES:
                raise InvalidInput(f"unknown status {status!r}; one of {', '.join(STATUSES)}")
        if flt.statuses == ("failed",):
            # Said literally, the planner can read the failed items' partial index
            # (client_id, id) instead of every item of the client: it cannot see into a
            # list parameter. The queue page's failures and error search read it.
            clauses.append("status = 'failed'")
        elif flt.statuses:
            clauses.append("{in_list(status, :statuses)}")
            params["statuses"] = list(flt.statuses)
        if flt.instructions:
            clauses.append("{in_list(instruction, :instructions)}")
            params["instructions"] = list(flt.instructions)
        if flt.ids:
            clauses.append("{in_list(id, :ids)}")
            params["ids"] = list(flt.ids)
        if flt.connection_id is not None:
            clauses.append("connection_id = :connection_id")
            params["connection_id"] = flt.connection_id
        if flt.ref:
            clauses.append(
                "id IN (SELECT item_id FROM item_refs"
                " WHERE client_id = :client_id AND folded = :ref)"
            )
            params["ref"] = flt.ref.casefold()
        if flt.ref_prefix and len(flt.ref_prefix.casefold()) < MIN_PREFIX:
            clauses.append(
                "id IN (SELECT item_id FROM item_refs"
                " WHERE client_id = :client_id AND folded = :ref_low)"
            )
            params["ref_low"] = flt.ref_prefix.casefold()
        elif flt.ref_prefix:
            # One range of the client's part of item_refs_folded: code point order on
            # both backends (0008).
            low = flt.ref_prefix.casefold()
            params["ref_low"], params["ref_high"] = low, _after_prefix(low)
            if self._broad(flt.client_id, low, params["ref_high"]):
                # Thousands of references in range ("sku-0"): the newest items are read
                # in order and each checked, the list stops at its page (the range as a
                # list would be read whole and sorted: 130 ms for 90,000).
                clauses.append(
                    "EXISTS (SELECT 1 FROM item_refs r WHERE r.item_id = items.id"
                    " AND r.folded >= :ref_low AND r.folded < :ref_high)"
                )
            else:
                clauses.append(
                    "id IN (SELECT item_id FROM item_refs WHERE client_id = :client_id"
                    " AND folded >= :ref_low AND folded < :ref_high)"
                )
        if flt.error_contains:
            clauses.append("{contains(error, :error_contains)}")
            params["error_contains"] = flt.error_contains
        if flt.error_is is not None:
            clauses.append("error = :error_is")
            params["error_is"] = flt.error_is
        if flt.created_from is not None:
            clauses.append("created_at >= :created_from")
            params["created_from"] = flt.created_from
        if flt.created_to is not None:
            clauses.append("created_at < :created_to")
            params["created_to"] = flt.created_to
        if flt.blocking is not None:
            clauses.append("blocking = :blocking")
            params["blocking"] = int(flt.blocking)
        if flt.max_id is not None:
            clauses.append("id <= :max_id")
            params["max_id"] = flt.max_id
        return " AND ".join(clauses), params

    def _broad(self, client_id: int, low: str, high: str) -> bool:
        """Whether more than _BROAD_PREFIX references of the client are in the range
        (another client's references never make a search broad)."""
        n = self.sql.value(
            self.sql.conn,
            "refs_in_range",
            client_id=client_id,
            low=low,
            high=high,
            limit=_BROAD_PREFIX + 1,
        )
        return int(n) > _BROAD_PREFIX

    def ids(self, flt: ItemFilter, after: int, limit: int) -> list[int]:
        """Ids of matching items above `after`, ascending (for chunked bulk actions)."""
        where, params = self.where(flt)
        query = self.sql.compose(
            f"SELECT id FROM items WHERE {where} AND id > :after ORDER BY id LIMIT :limit"
        )
        found = self.sql.all(self.sql.conn, query, **params, after=after, limit=limit)
        return [int(r[0]) for r in found]

    def count(self, flt: ItemFilter, cap: int | None = None) -> int:
        """How many items match; with `cap`, counting stops at cap + 1 (a list shows
        "10,000+": a person needs no exact count of a search's hundred thousand rows)."""
        where, params = self.where(flt)
        if cap is None:
            query = self.sql.compose(f"SELECT count(*) FROM items WHERE {where}")
        else:
            query = self.sql.compose(
                # Newest first, as the list: a client's old history is reached last.
                f"SELECT count(*) FROM (SELECT 1 FROM items WHERE {where}"
                " ORDER BY id DESC LIMIT :cap) AS upto"
            )
            params["cap"] = cap + 1
        return int(self.sql.value(self.sql.conn, query, **params))

    def fingerprint(self, flt: ItemFilter) -> str:
        """Which items match, in three numbers: how many, and two sums of their ids
        reduced modulo a prime (no database overflows). Two reads give the same
        fingerprint when they match the same items (short of a collision one time in
        about 10^12): a confirmation's promise that the action touches what it showed,
        whatever the clocks of the hosts that changed the items in between."""
        where, params = self.where(flt)
        query = self.sql.compose(
            "SELECT count(*), coalesce(sum(id % 1000003), 0),"
            " coalesce(sum((id % 999983) * (id % 999979) % 1000003), 0)"
            f" FROM items WHERE {where}"
        )
        row = self.sql.all(self.sql.conn, query, **params)[0]
        return "-".join(str(int(v)) for v in tuple(row))

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
        group = ", ".join(columns)  # names of GROUPABLE only, checked above
        query = self.sql.compose(
            f"SELECT {group}, count(*) FROM items WHERE {where} GROUP BY {group}"
            f" ORDER BY count(*) DESC, {group}"
        )
        found = self.sql.all(self.sql.conn, query, **params)
        return [(tuple(r)[:-1], int(r[-1])) for r in found]

    # --------------------------------------------------------------------------- items

    def list_items(self, flt: ItemFilter, limit: int = 50, before: int | None = None) -> list[Item]:
        """Newest first; pass the last id seen as `before` for the next page."""
        if not 1 <= limit <= 1000:
            raise InvalidInput("limit must be between 1 and 1000")
        where, params = self.where(flt)
        if before is not None:
            where += " AND id < :before"
            params["before"] = before
        query = self.sql.compose(
            f"SELECT {rows.ITEM_COLUMNS} FROM items WHERE {where} ORDER BY id DESC LIMIT :limit"
        )
        return rows.items(self.sql.run(self.sql.conn, query, **params, limit=limit))

    def get(self, client_id: int, item_id: int) -> Item:
        found = rows.item(self.sql.run(self.sql.conn, "item", id=item_id, client_id=client_id))
        if found is None:
            raise NotFound(f"no queue item {item_id}")
        return found

    def detail(self, client_id: int, item_id: int) -> ItemDetail:
        with self.db.read() as cur:
            item = rows.item(self.sql.run(cur, "item", id=item_id, client_id=client_id))
            if item is None:
                raise NotFound(f"no queue item {item_id}")
            history = rows.attempts(self.sql.run(cur, "item_attempts", id=item_id))
            children = rows.items(self.sql.run(cur, "item_children", id=item_id))
            audit = rows.audit(self.sql.run(cur, "item_audit", id=item_id))
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
        found = self.sql.all(self.sql.conn, "item_statuses", ids=wanted)
        return {int(i): str(s) for i, s in found}

    # --------------------------------------------------------------------------- lanes

    def lanes(self, client_id: int) -> list[LaneView]:
        """Every lane of the client: blocked first, then paused, then by waiting work."""
        cur = self.sql.run(self.sql.conn, "client_lanes", client_id=client_id)
        views = rows.lanes(cur, time.time())
        return sorted(views, key=lambda v: (_RANK[v.state], -v.pending, v.lane_id))

    def lanes_by_id(self, lane_ids: Iterable[int]) -> dict[int, LaneView]:
        """These lanes, whoever's they are (for the layers that check the client)."""
        wanted = list(lane_ids)
        if not wanted:
            return {}
        cur = self.sql.run(self.sql.conn, "lanes_by_id", ids=wanted)
        return {v.lane_id: v for v in rows.lanes(cur, time.time())}

    def stopped_lanes(self) -> list[StoppedLane]:
        """Every blocked lane (its head failed), with that head: notifications' reading.
        Reads the lanes and the failed items' partial index only."""
        with self.db.read() as cur:
            self.sql.run(cur, "stopped_lanes")
            pick = rows.picker(cur, "lane_id", "client_id")
            found = cur.fetchall()
            owners = dict(map(pick, found))
            views = rows.lanes_of(cur, found, time.time())
            heads = (
                {
                    i.id: i
                    for i in rows.items(
                        self.sql.run(cur, "items_by_id", ids=[v.head_id for v in views])
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
        cur = self.sql.run(self.sql.conn, "lane_audit", lane_id=lane_id, client_id=client_id)
        return [
            AuditEntry(a.at, a.actor, a.action, a.item_id, a.lane_id, a.detail)
            for a in rows.audit(cur)
        ]

    def next_to_run(
        self, client_id: int, lane_ids: Sequence[int], per_lane: int, free: int
    ) -> tuple[dict[int, list[Item]], list[Item]]:
        """The client's queued items in the order they will run: the first `per_lane` of
        each of these lanes (FIFO), and the first `free` non-blocking ones (by due time,
        then id, across its connections). Each read starts an index at its beginning;
        nothing reads the backlog behind."""
        with self.db.read() as cur:
            lanes = {
                lane: rows.items(
                    self.sql.run(
                        cur, "lane_next_items", lane_id=lane, client_id=client_id, limit=per_lane
                    )
                )
                for lane in lane_ids
            }
            found: list[Item] = []
            key = -1
            for _ in range(_MAX_FREE_GROUPS):  # one probe per connection with free work
                nxt = self.sql.one(cur, "next_free_group", client_id=client_id, after=key)
                if nxt is None:
                    break
                key = int(nxt[0])
                found += rows.items(
                    self.sql.run(cur, "free_next_items", client_id=client_id, key=key, limit=free)
                )
        found.sort(key=lambda i: (i.run_after, i.id))
        return lanes, found[:free]

    def summary(self, client_id: int) -> UnfinishedCounts:
        """The client's unfinished items per status and its blocked and paused lanes,
        exact, read from indexes only (queries.sql: queue_summary says how)."""
        cur = self.sql.run(self.sql.conn, "queue_summary", client_id=client_id)
        row = cur.fetchone()
        pick = rows.picker(
            cur,
            "lane_pending",
            "busy_heads",
            "blocked_lanes",
            "paused_lanes",
            "free_queued",
            "running",
            "failed",
        )
        pending, busy, blocked, paused, free, running, failed = (int(v) for v in pick(row))
        return UnfinishedCounts(
            queued=pending - busy + free,
            running=running,
            failed=failed,
            blocked_lanes=blocked,
            paused_lanes=paused,
        )

    def queued_sharing_refs(
        self, client_id: int, refs: Sequence[str], instructions: Sequence[str], limit: int
    ) -> list[tuple[int, int | None, str, str]]:
        """(id, lane, instruction, ref) of up to `limit` queued items of the client of
        these instructions holding one of these references, by id (one row per
        reference held)."""
        if not refs or not instructions:
            return []
        found = self.sql.all(
            self.sql.conn,
            "queued_sharing_refs",
            client_id=client_id,
            refs=list(refs),
            instructions=list(instructions),
            limit=limit,
        )
        return [(int(i), lane, str(name), str(ref)) for i, lane, name, ref in found]

    def failure_groups(
        self, client_id: int, limit: int, newest: int
    ) -> list[tuple[str | None, str, int | None, int, int, int]]:
        """The client's `newest` newest failed items grouped by (error, instruction,
        connection): (error, instruction, connection, items, oldest id, newest id), up to
        `limit` groups, the largest first. One statement on the failed items' partial
        index."""
        found = self.sql.all(
            self.sql.conn, "failure_groups", client_id=client_id, limit=limit, newest=newest
        )
        return [(e, str(i), c, int(n), int(lo), int(hi)) for e, i, c, n, lo, hi in found]

    # ---------------------------------------------------------------------- monitoring

    def failures_by(
        self, client_id: int
    ) -> tuple[list[tuple[str, int]], list[tuple[int | None, int]]]:
        """Failed items by instruction and by connection (read from the failed items'
        partial index)."""
        found = self.sql.all(self.sql.conn, "failures_by", client_id=client_id)
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
        conn = self.sql.conn
        for column, found in enumerate(
            (
                self.sql.all(conn, "queued_by_client"),
                self.sql.all(conn, "failed_by_client"),
                self.sql.all(conn, "finished_by_client", start=finished_from, end=finished_to),
            )
        ):
            for client, n in found:
                counts.setdefault(int(client), [0, 0, 0])[column] = int(n)
        return {client: (q, f, d) for client, (q, f, d) in counts.items()}

    def stats(self) -> QueueStats:
        """Unfinished items by status and instruction, lanes by state, live workers: what
        monitoring scrapes. Reads the unfinished items only (through their partial
        indexes), never the finished history."""
        conn = self.sql.conn
        counts = self.sql.all(conn, "unfinished_counts")
        lanes = self.sql.all(conn, "lane_heads")
        workers = self.sql.value(conn, "live_workers", since=time.time() - 60.0)
        return QueueStats(
            items={(status, name): int(n) for status, name, n in counts},
            lanes=len(lanes),
            blocked_lanes=sum(1 for paused, status in lanes if status == "failed"),
            paused_lanes=sum(1 for paused, _ in lanes if paused),
            workers=int(workers),
        )
