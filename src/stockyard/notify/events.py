"""From the queue's state to events, each noticed once.

Crash safety: an event is found by reading, its deliveries are queued (with idempotency
keys derived from the event's key), and only then is it marked noticed (`Event.mark`). A
crash in between finds it again and queues nothing twice; so do workers scanning at once.

Every statement here reads a small set: the lanes (one per source or channel), the failed
items (through their partial index), and the unsent failure notices.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from stockyard.db import Database
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


def lanes_stopped(db: Database, now: float) -> list[Event]:
    """A lane whose head failed: one event per stop, however many items wait behind it
    and however often the head is retried and fails again."""
    rows = (
        db.connection()
        .execute(
            "SELECT l.id, l.client_id, l.pending, i.id, i.instruction, i.description, i.error,"
            " i.refs, c.description FROM lanes l JOIN items i ON i.id = l.head_id"
            " JOIN connections c ON c.id = l.id WHERE i.status = 'failed' AND NOT EXISTS"
            " (SELECT 1 FROM notices n WHERE n.key = 'lane-stopped:' || l.id || ':' || i.id)"
        )
        .fetchall()
    )
    events = []
    for lane, client, pending, item, instruction, description, error, refs, conn in rows:
        key = f"lane-stopped:{lane}:{item}"
        data = {
            "item_id": item,
            "instruction": instruction,
            "description": description,
            "error": error,
            "refs": json.loads(refs),
            "connection": conn,
            "waiting": max(int(pending) - 1, 0),
        }
        notice = (_NOTICE, (key, client, lane, item, 1, now))
        events.append(Event("lane.stopped", key, client, lane, data, notice))
    return events


def lanes_resumed(db: Database, now: float) -> list[Event]:
    """A stopped lane whose failed head was skipped, or retried and done: it moves on."""
    rows = (
        db.connection()
        .execute(
            "SELECT n.key, n.client_id, n.lane_id, n.item_id, i.status, c.description"
            " FROM notices n LEFT JOIN items i ON i.id = n.item_id"
            " JOIN connections c ON c.id = n.lane_id WHERE n.open = 1"
        )
        .fetchall()
    )
    events = []
    for key, client, lane, item, status, conn in rows:
        if status in ("failed", "queued", "running"):
            continue  # still stopped, or being retried
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


def scan(db: Database, now: float, window: float, summary_hour: int | None) -> list[Event]:
    return [
        *lanes_stopped(db, now),
        *lanes_resumed(db, now),
        *failures(db, now, window),
        *daily_summaries(db, now, summary_hour),
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
