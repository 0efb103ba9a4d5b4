"""From the queue's state to events, each noticed once.

Crash safety: an event is found by reading, its deliveries are queued (with idempotency
keys derived from the event's key), and only then is it marked noticed (`Event.mark`). A
crash in between finds it again and queues nothing twice; so do workers scanning at once.

Every statement here reads a small set: the lanes (one per source or channel), the failed
items (through their partial index), and the unsent failure notices. Lane state (which
lanes are stopped, by which head) is read through the engine's API, never derived here.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from stockyard.db import Database
from stockyard.engine import Queue
from stockyard.notify import NOTIFY_INSTRUCTIONS

_NOT_NOTICES = ", ".join(f"'{i}'" for i in NOTIFY_INSTRUCTIONS)


@dataclass(frozen=True, slots=True)
class Event:
    type: str  # one of stockyard.notify.EVENTS
    key: str  # unique per event: the deliveries' idempotency keys derive from it
    client_id: int
    connection_id: int | None
    data: dict[str, Any] = field(default_factory=dict)
    # The statement that marks the event noticed, run once its deliveries are queued.
    mark: tuple[str, tuple[Any, ...]] = ("", ())


_NOTICE = (
    "INSERT INTO notices (key, client_id, lane_id, item_id, open, created_at)"
    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING"
)


def mark(db: Database, event: Event) -> None:
    sql, params = event.mark
    if sql:
        with db.write() as cur:
            cur.execute(sql, params)


def lanes_stopped(queue: Queue, now: float) -> list[Event]:
    """A lane whose head failed: one event per stop, however many items wait behind it
    and however often the head is retried and fails again. Which lanes are stopped is
    the engine's reading (`Queue.stopped_lanes`); which stops were noticed is ours."""
    stopped = {f"lane-stopped:{s.lane.lane_id}:{s.head.id}": s for s in queue.stopped_lanes()}
    if not stopped:
        return []
    db = queue.db
    noticed = {
        r[0]
        for r in db.connection()
        .execute(
            f"SELECT key FROM notices WHERE {db.in_list('key')}", (db.list_param(stopped),)
        )
        .fetchall()
    }
    events = []
    for key, s in stopped.items():
        if key in noticed:
            continue
        lane, head = s.lane, s.head
        data = {
            "item_id": head.id,
            "instruction": head.instruction,
            "description": head.description,
            "error": head.error,
            "refs": head.refs,
            "connection": lane.description,
            "waiting": lane.waiting,
        }
        notice = (_NOTICE, (key, s.client_id, lane.lane_id, head.id, 1, now))
        events.append(Event("lane.stopped", key, s.client_id, lane.lane_id, data, notice))
    return events


def lanes_resumed(queue: Queue, now: float) -> list[Event]:
    """A stopped lane whose failed head was skipped, or retried and done: it moves on.
    The open stops are ours; the heads' statuses and the lanes are the engine's."""
    rows = (
        queue.db.connection()
        .execute("SELECT key, client_id, lane_id, item_id FROM notices WHERE open = 1")
        .fetchall()
    )
    if not rows:
        return []
    statuses = queue.statuses(int(r[3]) for r in rows)
    lanes = queue.lanes_by_id(int(r[2]) for r in rows)
    events = []
    for key, client, lane, item in rows:
        status = statuses.get(int(item))
        if status in ("failed", "queued", "running") or int(lane) not in lanes:
            continue  # still stopped, or being retried
        conn = lanes[int(lane)].description
        data = {"item_id": item, "outcome": status or "pruned", "connection": conn}
        close = ("UPDATE notices SET open = 0 WHERE key = ?", (key,))
        events.append(
            Event("lane.resumed", f"lane-resumed:{lane}:{item}", client, lane, data, close)
        )
    return events


def failures(db: Database, now: float, window: float) -> list[Event]:
    """Non-blocking failures, grouped per client, instruction and connection: a kind's
    failures are sent once the oldest unsent one is `window` seconds old, as one event
    (a digest when there are several)."""
    with db.write() as cur:
        cur.execute(
            "INSERT INTO failure_notices (item_id, attempts, client_id, kind, failed_at)"
            " SELECT i.id, i.attempts, i.client_id, i.client_id || ':' || i.instruction || ':'"
            " || COALESCE(CAST(i.connection_id AS TEXT), ''), i.updated_at"
            f" FROM items i WHERE i.status = 'failed' AND i.blocking = 0"
            f" AND i.instruction NOT IN ({_NOT_NOTICES})"
            " AND NOT EXISTS (SELECT 1 FROM failure_notices f WHERE f.item_id = i.id"
            " AND f.attempts = i.attempts) ON CONFLICT (item_id, attempts) DO NOTHING"
        )
        due = [
            r[0]
            for r in cur.execute(
                "SELECT kind FROM failure_notices WHERE sent = 0 GROUP BY kind"
                " HAVING min(failed_at) <= ?",
                (now - window,),
            ).fetchall()
        ]
    return [e for kind in due if (e := _digest(db, kind)) is not None]


def _digest(db: Database, kind: str) -> Event | None:
    with db.read() as cur:
        ids = sorted(
            int(r[0])
            for r in cur.execute(
                "SELECT item_id FROM failure_notices WHERE kind = ? AND sent = 0", (kind,)
            ).fetchall()
        )
        if not ids:
            return None  # another worker sent it
        rows = cur.execute(
            "SELECT i.id, i.client_id, i.instruction, i.connection_id, i.description, i.error,"
            f" i.refs, c.description FROM items i LEFT JOIN connections c"
            f" ON c.id = i.connection_id WHERE {db.in_list('i.id')} ORDER BY i.id",
            (db.list_param(ids),),
        ).fetchall()
    sent = (
        f"UPDATE failure_notices SET sent = 1 WHERE kind = ? AND sent = 0"
        f" AND {db.in_list('item_id')}",
        (kind, db.list_param(ids)),
    )
    if not rows:  # pruned meanwhile
        mark(db, Event("item.failed", "", 0, None, {}, sent))
        return None
    first = rows[0]
    errors = Counter(str(r[5]) for r in rows)
    return Event(
        "item.failed",
        f"failed:{kind}:{ids[0]}",
        int(first[1]),
        first[3],
        {
            "count": len(rows),
            "item_id": first[0],
            "item_ids": [r[0] for r in rows[:20]],
            "instruction": first[2],
            "description": first[4],
            "error": first[5],
            "errors": errors.most_common(5),
            "refs": sorted({ref for r in rows for ref in json.loads(r[6])})[:20],
            "connection": first[7],
        },
        sent,
    )


def daily_summaries(db: Database, now: float, hour: int | None) -> list[Event]:
    """Once a day, from `hour` UTC on: what is still failed, per client that has any."""
    today = dt.datetime.fromtimestamp(now, dt.UTC)
    if hour is None or today.hour < hour:
        return []
    date = today.date().isoformat()
    conn = db.connection()
    rows = conn.execute(
        "SELECT client_id, instruction, count(*) FROM items WHERE status = 'failed'"
        f" AND instruction NOT IN ({_NOT_NOTICES}) GROUP BY client_id, instruction"
    ).fetchall()
    per_client: dict[int, dict[str, int]] = {}
    for client, instruction, count in rows:
        per_client.setdefault(int(client), {})[instruction] = int(count)
    events = []
    for client, counts in sorted(per_client.items()):
        key = f"summary:{client}:{date}"
        if conn.execute("SELECT 1 FROM notices WHERE key = ?", (key,)).fetchone():
            continue
        data = {"date": date, "failed": counts, "total": sum(counts.values())}
        notice = (_NOTICE, (key, client, None, None, 0, now))
        events.append(Event("daily.summary", key, client, None, data, notice))
    return events


def scan(queue: Queue, now: float, window: float, summary_hour: int | None) -> list[Event]:
    return [
        *lanes_stopped(queue, now),
        *lanes_resumed(queue, now),
        *failures(queue.db, now, window),
        *daily_summaries(queue.db, now, summary_hour),
    ]


def prune(db: Database, older_than: float, now: float) -> int:
    """Forget events noticed before `older_than` seconds ago (run by `stockyard prune`).
    Open stops stay, so their lanes' resumption is still noticed, and so do the notices of
    items still failed, so they are not notified again."""
    cutoff = now - older_than
    with db.write() as cur:
        # At least two days: today's summary notice must outlive today.
        cur.execute(
            "DELETE FROM notices WHERE open = 0 AND created_at < ?",
            (min(cutoff, now - 2 * 86400),),
        )
        removed = cur.rowcount
        cur.execute(
            "DELETE FROM failure_notices WHERE sent = 1 AND failed_at < ? AND NOT EXISTS"
            " (SELECT 1 FROM items i WHERE i.id = failure_notices.item_id"
            " AND i.status = 'failed' AND i.attempts = failure_notices.attempts)",
            (cutoff,),
        )
        return removed + cur.rowcount
