"""Rows to engine types, by column name.

Each reader looks at the statement's column names (`cursor.description`) once per
column list, so a statement may select its columns in any order and a converter never
counts positions. The rows themselves are plain tuples (`store.Sql`): the names are
mapped to positions once per column list (`_getter`, cached), not once per row.
JSON columns are parsed here.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any

from stockyard.engine.models import Attempt, AuditEntry, Item, Job, LaneView, Limits

# NaN and Infinity are not JSON: PostgreSQL refuses them, so they never reach a statement.
dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode

# An item's columns, for the item lists composed in reads.py (named queries spell them out).
ITEM_COLUMNS = (
    "id, client_id, instruction, blocking, connection_id, lane_id, status, payload, refs,"
    " description, parent_id, idempotency_key, created_at, updated_at, run_after, attempts,"
    " failures, worker_id, finished_at, error, error_kind, started_at, coalesce_key,"
    " superseded_by"
)


def _names(cur: Any) -> tuple[str, ...]:
    return tuple(d[0] for d in cur.description)


@functools.lru_cache(maxsize=256)
def _getter(names: tuple[str, ...], wanted: tuple[str, ...]) -> Callable[[Any], Any]:
    """A function picking `wanted` out of a row of `names`, as a tuple in that order."""
    try:
        positions = [names.index(n) for n in wanted]
    except ValueError as exc:
        raise LookupError(f"a statement's columns {names} lack one of {wanted}") from exc
    if positions == list(range(len(names))):
        return same  # the statement selected exactly these, in this order
    pick = itemgetter(*positions)
    return pick if len(positions) > 1 else lambda r: (pick(r),)


def same(row: Any) -> Any:
    """The picker of a row whose columns are already the ones wanted, in order."""
    return row


def picker(cur: Any, *wanted: str) -> Callable[[Any], Any]:
    """For the rows of `cur`'s statement: a function giving the named columns as a tuple."""
    return _getter(_names(cur), wanted)


_ITEM_FIELDS = (
    "id",
    "client_id",
    "instruction",
    "blocking",
    "connection_id",
    "lane_id",
    "status",
    "payload",
    "refs",
    "description",
    "parent_id",
    "idempotency_key",
    "created_at",
    "updated_at",
    "run_after",
    "attempts",
    "failures",
    "worker_id",
    "finished_at",
    "error",
    "error_kind",
    "started_at",
    "coalesce_key",
    "superseded_by",
)


def _item(values: Sequence[Any]) -> Item:
    v = dict(zip(_ITEM_FIELDS, values, strict=True))
    return Item(
        id=v["id"],
        client_id=v["client_id"],
        instruction=v["instruction"],
        mode="blocking" if v["blocking"] else "non-blocking",
        connection_id=v["connection_id"],
        lane_id=v["lane_id"],
        status=v["status"],
        payload=json.loads(v["payload"]),
        refs=json.loads(v["refs"]),
        description=v["description"],
        parent_id=v["parent_id"],
        idempotency_key=v["idempotency_key"],
        created_at=v["created_at"],
        updated_at=v["updated_at"],
        run_after=v["run_after"],
        attempts=v["attempts"],
        failures=v["failures"],
        worker_id=v["worker_id"],
        finished_at=v["finished_at"],
        error=v["error"],
        error_kind=v["error_kind"],
        started_at=v["started_at"],
        coalesce_key=v["coalesce_key"],
        superseded_by=v["superseded_by"],
    )


def items(cur: Any) -> list[Item]:
    """The items a statement selected (`_ITEM_FIELDS`, in any order)."""
    rows = cur.fetchall()
    if not rows:
        return []
    pick = picker(cur, *_ITEM_FIELDS)
    return [_item(pick(r)) for r in rows]


def item(cur: Any) -> Item | None:
    row = cur.fetchone()
    return None if row is None else _item(picker(cur, *_ITEM_FIELDS)(row))


_JOB_FIELDS = (
    "id",
    "client_id",
    "instruction",
    "connection_id",
    "lane_id",
    "payload",
    "attempts",
    "failures",
    "parent_id",
    "started_at",
    "run_after",
)


def jobs(cur: Any) -> list[Job]:
    """The jobs a claim returned (`_JOB_FIELDS`): the payload stays text until read."""
    rows = cur.fetchall()
    if not rows:
        return []
    pick = picker(cur, *_JOB_FIELDS)
    if pick is same:  # the claim's own statement: no reordering on the hot path
        return [Job(*r) for r in rows]
    return [Job(*pick(r)) for r in rows]


def audit(cur: Any) -> list[AuditEntry]:
    rows = cur.fetchall()
    pick = picker(cur, "at", "actor", "action", "item_id", "lane_id", "detail", "id")
    return [
        AuditEntry(at, actor, action, item_id, lane_id, json.loads(detail or "{}"), id_)
        for at, actor, action, item_id, lane_id, detail, id_ in map(pick, rows)
    ]


def attempts(cur: Any) -> list[Attempt]:
    rows = cur.fetchall()
    pick = picker(cur, "number", "worker_id", "started_at", "ended_at", "outcome", "error")
    return [Attempt(*pick(r)) for r in rows]


_LANE_FIELDS = (
    "lane_id",
    "kind",
    "description",
    "paused",
    "pending",
    "head_id",
    "ready_at",
    "head_instruction",
    "head_status",
    "head_error",
    "oldest_created_at",
    "head_run_after",
    "head_updated_at",
    "max_running",
    "per_second",
    "burst",
)


def lane_state(
    paused: Any, head_id: int | None, head_status: str | None, ready_at: Any, now: float
) -> str:
    """A lane's state, derived here only: blocked (its head failed), paused, idle (no
    head), running, waiting (its head's back-off or delay not over) or ready."""
    if head_status == "failed":
        return "blocked"
    if paused:
        return "paused"
    if head_id is None:
        return "idle"
    if head_status == "running":
        return "running"
    if ready_at is not None and ready_at > now:
        return "waiting"
    return "ready"


def lanes(cur: Any, now: float) -> list[LaneView]:
    """Lane views of a statement selecting `_LANE_FIELDS` (queries.sql: client_lanes)."""
    return lanes_of(cur, cur.fetchall(), now)


def lanes_of(cur: Any, rows: Sequence[Any], now: float) -> list[LaneView]:
    """Lane views of rows already fetched from `cur`'s statement."""
    pick = picker(cur, *_LANE_FIELDS)
    views = []
    for row in rows:
        v = dict(zip(_LANE_FIELDS, pick(row), strict=True))
        views.append(
            LaneView(
                lane_id=v["lane_id"],
                kind=v["kind"],
                description=v["description"],
                state=lane_state(  # type: ignore[arg-type]
                    v["paused"], v["head_id"], v["head_status"], v["ready_at"], now
                ),
                paused=bool(v["paused"]),
                pending=v["pending"],
                head_id=v["head_id"],
                head_instruction=v["head_instruction"],
                head_status=v["head_status"],
                head_error=v["head_error"],
                oldest_created_at=v["oldest_created_at"],
                next_run_at=v["head_run_after"] if v["head_status"] == "queued" else None,
                # A failed item is last updated when it fails: the lane stopped then.
                stopped_at=v["head_updated_at"] if v["head_status"] == "failed" else None,
                limits=Limits(v["max_running"], v["per_second"], v["burst"]),
            )
        )
    return views
