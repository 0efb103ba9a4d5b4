"""From the queue's state to events, each noticed once.

Crash safety: an event is found by reading, its deliveries are queued (with idempotency
keys derived from the event's key), and only then is it marked noticed (`Event.mark`). A
crash in between finds it again and queues nothing twice; so do workers scanning at once.

Every statement here reads a small set: the lanes (one per source or channel), the failed
items (through their partial index), and the unsent failure notices. Lane state (which
lanes are stopped, by which head) is read through the engine's API, never derived here;
the statements of this module are the named queries of `events.sql`.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from stockyard.db import Database, Store, load_queries
from stockyard.engine import Queue
from stockyard.notify import NOTIFY_INSTRUCTIONS

# Notification items are not themselves notified.
_INTERNAL = list(NOTIFY_INSTRUCTIONS)


class Notices(Store):
    queries = load_queries(__package__, "events.sql")


@dataclass(frozen=True, slots=True)
class Event:
    type: str  # one of stockyard.notify.EVENTS
    key: str  # unique per event: the deliveries' idempotency keys derive from it
    client_id: int
    connection_id: int | None
    data: dict[str, Any] = field(default_factory=dict)
    # The named query (of events.sql) that marks the event noticed, and its parameters:
    # run once its deliveries are queued.
    mark: tuple[str, dict[str, Any]] = ("", {})


def _notice(
    key: str, client: int, lane: int | None, item: int | None, open_: int, now: float
) -> tuple[str, dict[str, Any]]:
    return (
        "notice",
        {
            "key": key,
            "client_id": client,
            "lane_id": lane,
            "item_id": item,
            "open": open_,
            "now": now,
        },
    )


def mark(db: Database, event: Event) -> None:
    name, params = event.mark
    if name:
        notices = Notices(db)
        with db.write() as cur:
            notices.execute(cur, name, **params)


def lanes_stopped(queue: Queue, now: float) -> list[Event]:
    """A lane whose head failed: one event per stop, however many items wait behind it
    and however often the head is retried and fails again. Which lanes are stopped is
    the engine's reading (`Queue.stopped_lanes`); which stops were noticed is ours."""
    stopped = {f"lane-stopped:{s.lane.lane_id}:{s.head.id}": s for s in queue.stopped_lanes()}
    if not stopped:
        return []
    notices = Notices(queue.db)
    noticed = {r["key"] for r in notices.all(notices.conn, "noticed", keys=list(stopped))}
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
        notice = _notice(key, s.client_id, lane.lane_id, head.id, 1, now)
        events.append(Event("lane.stopped", key, s.client_id, lane.lane_id, data, notice))
    return events


def lanes_resumed(queue: Queue, now: float) -> list[Event]:
    """A stopped lane whose failed head was skipped, or retried and done: it moves on.
    The open stops are ours; the heads' statuses and the lanes are the engine's."""
    notices = Notices(queue.db)
    rows = [
        (r["key"], r["client_id"], r["lane_id"], r["item_id"])
        for r in notices.all(notices.conn, "open_stops")
    ]
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
        close = ("close_stop", {"key": key})
        events.append(
            Event("lane.resumed", f"lane-resumed:{lane}:{item}", client, lane, data, close)
        )
    return events


def failures(db: Database, now: float, window: float) -> list[Event]:
    """Non-blocking failures, grouped per client, instruction and connection: a kind's
    failures are sent once the oldest unsent one is `window` seconds old, as one event
    (a digest when there are several)."""
    notices = Notices(db)
    with db.write() as cur:
        notices.execute(cur, "note_failures", internal=_INTERNAL)
        due = [r["kind"] for r in notices.all(cur, "due_failure_kinds", before=now - window)]
    return [e for kind in due if (e := _digest(notices, kind)) is not None]


def _digest(notices: Notices, kind: str) -> Event | None:
    with notices.db.read() as cur:
        ids = sorted(int(r["item_id"]) for r in notices.all(cur, "unsent_failures", kind=kind))
        if not ids:
            return None  # another worker sent it
        rows = notices.all(cur, "failed_items", ids=ids)
    sent = ("mark_failures_sent", {"kind": kind, "ids": ids})
    if not rows:  # pruned meanwhile
        mark(notices.db, Event("item.failed", "", 0, None, {}, sent))
        return None
    first = rows[0]
    errors = Counter(str(r["error"]) for r in rows)
    return Event(
        "item.failed",
        f"failed:{kind}:{ids[0]}",
        int(first["client_id"]),
        first["connection_id"],
        {
            "count": len(rows),
            "item_id": first["id"],
            "item_ids": [r["id"] for r in rows[:20]],
            "instruction": first["instruction"],
            "description": first["description"],
            "error": first["error"],
            "errors": errors.most_common(5),
            "refs": sorted({ref for r in rows for ref in json.loads(r["refs"])})[:20],
            "connection": first["connection"],
        },
        sent,
    )


def daily_summaries(db: Database, now: float, hour: int | None) -> list[Event]:
    """Once a day, from `hour` UTC on: what is still failed, per client that has any."""
    today = dt.datetime.fromtimestamp(now, dt.UTC)
    if hour is None or today.hour < hour:
        return []
    date = today.date().isoformat()
    notices = Notices(db)
    per_client: dict[int, dict[str, int]] = {}
    for r in notices.all(notices.conn, "failed_by_client", internal=_INTERNAL):
        per_client.setdefault(int(r["client_id"]), {})[r["instruction"]] = int(r["n"])
    events = []
    for client, counts in sorted(per_client.items()):
        key = f"summary:{client}:{date}"
        if notices.one(notices.conn, "is_noticed", key=key) is not None:
            continue
        data = {"date": date, "failed": counts, "total": sum(counts.values())}
        events.append(
            Event(
                "daily.summary", key, client, None, data, _notice(key, client, None, None, 0, now)
            )
        )
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
    notices = Notices(db)
    with db.write() as cur:
        # At least two days: today's summary notice must outlive today.
        removed = notices.execute(cur, "forget_notices", before=min(cutoff, now - 2 * 86400))
        return removed + notices.execute(cur, "forget_failures", before=cutoff)
