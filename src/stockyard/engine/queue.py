"""The engine API: enqueue, claim, settle, retry, skip, inspect, pause, prune.

Lane invariant (what makes claiming cheap): `lanes.head_id` is the lane's oldest unfinished
item, and `lanes.ready_at` is set exactly while that head is queued (its run_after). Claiming
blocking work reads the partial index `lanes_ready`; claiming non-blocking work reads
`items_free_ready`. Neither touches failed lanes or the backlog behind a head.
Every change of a lane's head goes through `_update_lanes`, so the invariant has one keeper.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from stockyard.db import Cursor, Database
from stockyard.engine import backoff
from stockyard.engine.instructions import Instructions, LaneKind, render, render_key
from stockyard.engine.models import (
    CONNECTION_KINDS,
    STATUSES,
    Attempt,
    AuditEntry,
    Connection,
    Item,
    ItemDetail,
    ItemFilter,
    Job,
    LaneView,
    Outcome,
    QueueStats,
    Request,
)
from stockyard.engine.wakeup import Wakeup
from stockyard.errors import Conflict, InvalidInput, NotFound, StockyardError

UNFINISHED = "('queued', 'running', 'failed')"
SAMPLE_EVERY = 60.0  # seconds between the dashboard's samples
SAMPLES_KEPT = 7 * 86400.0
_JOB_COLUMNS = (
    "id, client_id, instruction, connection_id, lane_id, payload, attempts, failures,"
    " parent_id, started_at, run_after"
)
_ITEM_COLUMNS = (
    "id, client_id, instruction, blocking, connection_id, lane_id, status, payload, refs,"
    " description, parent_id, idempotency_key, created_at, updated_at, run_after, attempts,"
    " failures, worker_id, finished_at, error, error_kind, started_at, coalesce_key,"
    " superseded_by"
)
_BULK_CHUNK = 500
# One item may queue this many follow-ups (a fan-out of a large batch stays far below);
# more is a runaway handler or a crafted payload, and fails that item alone.
MAX_FOLLOW_UPS = 100_000
# Error text kept on an item; longer is cut (a remote answer can be any size).
MAX_ERROR = 2000
# A Retry-After beyond this is not believed: the item waits at most a day.
MAX_RETRY_AFTER = 86400.0
# Connections are cached per process; a change made elsewhere is seen within this.
CONNECTION_TTL = 10.0
# Settling matches only items still running under this worker and this attempt. (SQLite's
# `+` keeps its planner on the primary key, driven by the batch.)
_FENCE = (
    "items.id = CAST(d.value->>0 AS BIGINT) AND items.attempts = CAST(d.value->>1 AS INTEGER)"
    " AND items.status = 'running' AND {no_index}items.worker_id = ?"
)


# NaN and Infinity are not JSON: PostgreSQL refuses them, so they never reach a statement.
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


class Queue:
    """The one service layer of the queue; CLI, API and console call only this."""

    def __init__(
        self, db: Database, instructions: Instructions, wakeup: Wakeup | None = None
    ) -> None:
        self.db = db
        self.instructions = instructions
        self.wakeup = wakeup or Wakeup()
        self._connections: dict[int, tuple[Connection, float]] = {}

    # ----------------------------------------------------------------- clients, connections

    def ensure_client(self, name: str) -> int:
        name = name.strip()
        if not name:
            raise InvalidInput("a client needs a name")
        with self.db.write() as cur:
            row = cur.execute(
                "INSERT INTO clients (name, created_at) VALUES (?, ?)"
                " ON CONFLICT (name) DO NOTHING RETURNING id",
                (name, time.time()),
            ).fetchone()
            if row is None:
                row = cur.execute("SELECT id FROM clients WHERE name = ?", (name,)).fetchone()
            return int(row[0])

    def client_id(self, name: str) -> int:
        row = (
            self.db.connection()
            .execute("SELECT id FROM clients WHERE name = ?", (name,))
            .fetchone()
        )
        if row is None:
            raise NotFound(f"no client named {name!r}")
        return int(row[0])

    def add_connection(
        self,
        client_id: int,
        kind: str,
        connector: str,
        description: str,
        settings: dict[str, Any] | None = None,
        status: str | None = None,
    ) -> Connection:
        if kind not in CONNECTION_KINDS:
            raise InvalidInput(f"connection kind must be one of {', '.join(CONNECTION_KINDS)}")
        if not connector.strip() or not description.strip():
            raise InvalidInput("a connection needs a connector type and a description")
        # A channel is active only once its first full sync has run (set_channel_status).
        status = status or ("inactive" if kind == "channel" else "active")
        with self.db.write() as cur:
            if not cur.execute("SELECT 1 FROM clients WHERE id = ?", (client_id,)).fetchone():
                raise NotFound(f"no client {client_id}")
            (conn_id,) = cur.execute(
                "INSERT INTO connections (client_id, kind, connector, description, settings,"
                " status, created_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (
                    client_id,
                    kind,
                    connector,
                    description,
                    json.dumps(settings or {}),
                    status,
                    time.time(),
                ),
            ).fetchone()
            if kind in (LaneKind.SOURCE, LaneKind.CHANNEL):
                cur.execute("INSERT INTO lanes (id, client_id) VALUES (?, ?)", (conn_id, client_id))
        return self.connection(conn_id, client_id)

    def connections(self, client_id: int | None = None) -> list[Connection]:
        """A client's connections; every client's when `client_id` is None (schedulers)."""
        where, params = ("WHERE client_id = ?", (client_id,)) if client_id is not None else ("", ())
        rows = (
            self.db.connection()
            .execute(
                "SELECT id, client_id, kind, connector, description, settings, status, secrets"
                f" FROM connections {where} ORDER BY id",
                params,
            )
            .fetchall()
        )
        found = [_connection(r) for r in rows]
        now = time.monotonic()
        self._connections.update((c.id, (c, now)) for c in found)
        return found

    def set_connection_status(self, client_id: int, connection_id: int, status: str) -> None:
        self._update_connection(client_id, connection_id, "status", status)

    def set_connection_settings(
        self, client_id: int, connection_id: int, settings: dict[str, Any]
    ) -> None:
        if not isinstance(settings, dict):
            raise InvalidInput("settings must be a JSON object")
        self._update_connection(client_id, connection_id, "settings", json.dumps(settings))

    def set_connection_description(
        self, client_id: int, connection_id: int, description: str
    ) -> None:
        if not description.strip():
            raise InvalidInput("a connection needs a description")
        self._update_connection(client_id, connection_id, "description", description.strip())

    def set_connection_secrets(self, client_id: int, connection_id: int, sealed: str) -> None:
        """Store secrets already sealed by the caller: the engine never sees them in clear."""
        self._update_connection(client_id, connection_id, "secrets", sealed)

    def _update_connection(
        self, client_id: int, connection_id: int, column: str, value: str
    ) -> None:
        self.connection(connection_id, client_id)
        with self.db.write() as cur:
            cur.execute(f"UPDATE connections SET {column} = ? WHERE id = ?", (value, connection_id))
        self._connections.pop(connection_id, None)

    def connection(self, connection_id: int, client_id: int | None = None) -> Connection:
        cached = self._connections.get(connection_id)
        conn = cached[0] if cached and time.monotonic() - cached[1] < CONNECTION_TTL else None
        if conn is None:
            row = (
                self.db.connection()
                .execute(
                    "SELECT id, client_id, kind, connector, description, settings, status, secrets"
                    " FROM connections WHERE id = ?",
                    (connection_id,),
                )
                .fetchone()
            )
            if row is None:
                raise NotFound(f"no connection {connection_id}")
            conn = _connection(row)
            self._connections[connection_id] = (conn, time.monotonic())
        if client_id is not None and conn.client_id != client_id:
            raise NotFound(f"no connection {connection_id}")
        return conn

    # ----------------------------------------------------------------------------- enqueue

    def enqueue(self, client_id: int, requests: Sequence[Request]) -> list[int]:
        """Enqueue atomically; returns one queue id per request, in order.

        A request whose idempotency key is already known returns the existing item's id.
        Internal instructions (notifications) are refused: this is the path every caller
        outside Stockyard's own machinery reaches (API, CLI, inbound pushes).
        """
        return self._enqueue(client_id, requests, internal=False)

    def enqueue_internal(self, client_id: int, requests: Sequence[Request]) -> list[int]:
        """Like `enqueue`, and may also create internal instructions. Only Stockyard's own
        notification runner calls this."""
        return self._enqueue(client_id, requests, internal=True)

    def _enqueue(self, client_id: int, requests: Sequence[Request], internal: bool) -> list[int]:
        if not requests:
            return []
        keyed = any(r.idempotency_key is not None for r in requests)
        for attempt in range(3):
            try:
                with self.db.write() as cur:
                    ids = self._insert(cur, client_id, requests, time.time(), internal)
                    self.db.notify(cur)
                break
            except self.db.unique_violation:
                # Another transaction committed one of our new keys after we looked: now
                # it is known, and the next attempt returns its item instead.
                if not keyed or attempt == 2:
                    raise
        self.wakeup.notify()
        return ids

    def _insert(
        self,
        cur: Cursor,
        client_id: int,
        requests: Sequence[Request],
        now: float,
        internal: bool = False,
    ) -> list[int]:
        existing = self._known_keys(cur, client_id, requests)
        plan = self._plan(client_id, requests, existing, internal)
        fresh = [p for p in plan if p is not None]
        if not fresh:
            return [existing[str(r.idempotency_key)] for r in requests]
        lanes: Counter[int] = Counter(lane for _, _, lane, _ in fresh if lane is not None)
        # Ids are drawn with the lanes locked, so within a lane they follow commit order.
        self.db.lock_lanes(cur, lanes)
        new_ids = iter(self.db.allocate_ids(cur, len(fresh)))
        rows: list[list[Any]] = []
        refs: list[tuple[str, int]] = []
        ids: list[int] = []
        for req, planned in zip(requests, plan, strict=True):
            key = req.idempotency_key
            if planned is None:
                ids.append(existing[str(key)])
                continue
            item_id = next(new_ids)
            if key is not None:
                existing[key] = item_id
            _, blocking, lane_id, description = planned
            rows.append(
                [
                    item_id,
                    req.instruction,
                    int(blocking),
                    req.connection_id,
                    lane_id,
                    req.payload,
                    req.refs,
                    description,
                    req.parent_id,
                    key,
                    now + req.delay if req.delay > 0 else now,
                    self._coalesce_key(req) if lane_id is not None else None,
                ]
            )
            refs.extend((ref, item_id) for ref in req.refs)
            ids.append(item_id)
        # One JSON document per batch: the database unpacks it in C, and payloads are
        # stored as the JSON text they already are, without a second encoding per item.
        try:
            document = _dumps(rows)
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"payload: not valid JSON ({exc})") from None
        cur.execute(
            "INSERT INTO items (id, client_id, instruction, blocking, connection_id, lane_id,"
            " status, payload, refs, description, parent_id, idempotency_key, created_at,"
            " updated_at, run_after, coalesce_key) SELECT CAST(d.value->>0 AS BIGINT), ?,"
            " d.value->>1,"
            " CAST(d.value->>2 AS INTEGER), CAST(d.value->>3 AS BIGINT),"
            " CAST(d.value->>4 AS BIGINT), 'queued', d.value->>5, d.value->>6, d.value->>7,"
            " CAST(d.value->>8 AS BIGINT), d.value->>9, ?, ?,"
            " CAST(d.value->>10 AS DOUBLE PRECISION), d.value->>11"
            f" FROM {self.db.json_rows}",
            (client_id, now, now, document),
        )
        if refs:
            cur.executemany(
                "INSERT INTO item_refs (ref, item_id) VALUES (?, ?) ON CONFLICT DO NOTHING", refs
            )
        if lanes:
            lanes.subtract(self._supersede(cur, rows, now))
            self._update_lanes(cur, lanes)
        return ids

    def _coalesce_key(self, req: Request) -> str | None:
        template = self.instructions[req.instruction].coalesce
        return req.coalesce_key or render_key(template, req.payload)

    def _supersede(self, cur: Cursor, rows: list[list[Any]], now: float) -> Counter[int]:
        """Queued items that a new item of this batch replaces become `superseded`, pointing
        to their newest replacement; returns how many left each lane."""
        newest: dict[tuple[int, str], int] = {}
        for row in rows:
            if row[11] is not None:
                newest[(row[4], row[11])] = row[0]  # rows are in id order: the last wins
        if not newest:
            return Counter()
        gone = cur.execute(
            "UPDATE items SET status = 'superseded', superseded_by = CAST(d.value->>2 AS BIGINT),"
            " finished_at = ?, updated_at = ?"
            f" FROM {self.db.json_rows} WHERE items.lane_id = CAST(d.value->>0 AS BIGINT)"
            " AND items.coalesce_key = d.value->>1 AND items.status = 'queued'"
            " AND items.id < CAST(d.value->>2 AS BIGINT) RETURNING items.lane_id",
            (now, now, _dumps([[lane, key, item] for (lane, key), item in newest.items()])),
        ).fetchall()
        return Counter(int(lane) for (lane,) in gone)

    def _plan(
        self,
        client_id: int,
        requests: Sequence[Request],
        existing: dict[str, int],
        internal: bool = False,
    ) -> list[tuple[Request, bool, int | None, str] | None]:
        """Mode, lane and description of each request; None where its key is known."""
        plan: list[tuple[Request, bool, int | None, str] | None] = []
        keys: set[str] = set()
        cache: dict[tuple[str, int | None], tuple[bool, int | None, str]] = {}
        for req in requests:
            key = req.idempotency_key
            if key is not None and (key in existing or key in keys):
                plan.append(None)
                continue
            if key is not None:
                keys.add(key)
            if not isinstance(req.payload, dict):
                raise InvalidInput("payload must be a JSON object")
            resolved = cache.get((req.instruction, req.connection_id))
            if resolved is None:
                resolved = cache[(req.instruction, req.connection_id)] = self._resolve(
                    client_id, req, internal
                )
            plan.append((req, *resolved))
        return plan

    def _known_keys(
        self, cur: Cursor, client_id: int, requests: Sequence[Request]
    ) -> dict[str, int]:
        keys = [r.idempotency_key for r in requests if r.idempotency_key is not None]
        if not keys:
            return {}
        rows = cur.execute(
            "SELECT idempotency_key, id FROM items WHERE client_id = ? AND"
            f" {self.db.in_list('idempotency_key')}",
            (client_id, self.db.list_param(keys)),
        ).fetchall()
        return {k: int(i) for k, i in rows}

    def _resolve(
        self, client_id: int, req: Request, internal: bool = False
    ) -> tuple[bool, int | None, str]:
        """Mode, lane and rendered description of a request, or a clear error."""
        instruction = self.instructions[req.instruction]
        if instruction.internal and not internal:
            raise InvalidInput(
                f"{req.instruction} is an internal instruction: only Stockyard itself queues"
                " it (notifications go to a client's subscriptions; see docs/notifications.md)"
            )
        values: dict[str, str] = {}
        conn: Connection | None = None
        if req.connection_id is not None:
            conn = self.connection(req.connection_id, client_id)
            values[f"{conn.kind}_description"] = conn.description
        if not instruction.blocking:
            return False, None, render(instruction.template, values)
        if conn is None:
            raise InvalidInput(
                f"{req.instruction} is blocking: it needs the {instruction.lane.value}"
                " connection whose lane it runs in"
            )
        if conn.kind != instruction.lane.value:
            raise InvalidInput(
                f"{req.instruction} runs in a {instruction.lane.value} lane, but connection"
                f" {conn.id} is a {conn.kind}"
            )
        return True, conn.id, render(instruction.template, values)

    # -------------------------------------------------------------------- lane bookkeeping

    def _update_lanes(self, cur: Cursor, pending_change: dict[int, int]) -> None:
        """Add `pending_change` to each lane's pending count and re-derive its head_id and
        ready_at from its items, in one statement.

        The head stays while it is running or failed; otherwise it is the lowest queued id.
        """
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
            (_dumps(list(pending_change.items())),),
        )

    # ---------------------------------------------------------------------- claim, settle

    def claim(self, worker_id: str, limit: int) -> list[Job]:
        with self.db.write() as cur:
            if not self._alive(cur, worker_id):
                return []
            return self._claim(cur, worker_id, limit, time.time())

    def _alive(self, cur: Cursor, worker_id: str) -> bool:
        """Whether the worker may claim. Locks its row first (before any lane), so a reap
        cannot slip between this check and the claim's commit."""
        row = cur.execute(
            f"SELECT stopped_at FROM workers WHERE id = ?{self.db.for_update}", (worker_id,)
        ).fetchone()
        return row is not None and row[0] is None

    def _claim(self, cur: Cursor, worker_id: str, limit: int, now: float) -> list[Job]:
        """Claim up to `limit` items: half the room goes to lanes first, so neither kind of
        work can starve the other, then whatever is left to either."""
        if limit <= 0:
            return []
        lane_share = (limit + 1) // 2
        jobs = self._claim_lane_heads(cur, worker_id, lane_share, now)
        jobs += self._claim_free(cur, worker_id, limit - len(jobs), now)
        if len(jobs) < limit and len(jobs) >= lane_share:
            jobs += self._claim_lane_heads(cur, worker_id, limit - len(jobs), now)
        return jobs

    def _claim_lane_heads(self, cur: Cursor, worker_id: str, limit: int, now: float) -> list[Job]:
        if limit <= 0:
            return []
        heads = cur.execute(
            "UPDATE lanes SET ready_at = NULL WHERE "
            + self.db.in_subquery(
                "id",
                "SELECT id FROM lanes WHERE ready_at <= ? AND paused = 0 ORDER BY ready_at"
                f" LIMIT ?{self.db.skip_locked}",
            )
            + " RETURNING head_id",
            (now, limit),
        ).fetchall()
        if not heads:
            return []
        return self._start(
            cur,
            self.db.in_list("id"),
            (self.db.list_param(h[0] for h in heads),),
            worker_id,
            now,
        )

    def _claim_free(self, cur: Cursor, worker_id: str, limit: int, now: float) -> list[Job]:
        if limit <= 0:
            return []
        return self._start(
            cur,
            self.db.in_subquery(
                "id",
                "SELECT id FROM items WHERE status = 'queued' AND lane_id IS NULL"
                f" AND run_after <= ? ORDER BY run_after, id LIMIT ?{self.db.skip_locked}",
            ),
            (now, limit),
            worker_id,
            now,
        )

    def _start(
        self, cur: Cursor, where: str, params: tuple[Any, ...], worker_id: str, now: float
    ) -> list[Job]:
        rows = cur.execute(
            "UPDATE items SET status = 'running', worker_id = ?, started_at = ?, updated_at = ?,"
            f" attempts = attempts + 1 WHERE {where} RETURNING {_JOB_COLUMNS}",
            (worker_id, now, now, *params),
        ).fetchall()
        return [Job(*r) for r in rows]

    def settle(
        self, worker_id: str, outcomes: Sequence[Outcome], claim_limit: int = 0
    ) -> tuple[list[Job], int]:
        """Record outcomes, enqueue follow-ups and claim more work, in one transaction.

        Returns the newly claimed jobs and how many outcomes were refused because the
        item's lease had been lost (the item was already handed to another worker).
        """
        # Checked before the transaction: one item's bad result fails that item alone,
        # instead of making the whole batch (and so the worker) fail to settle, forever.
        outcomes = [self._vetted(o) for o in outcomes]
        now = time.time()
        with self.db.write() as cur:
            if claim_limit > 0 and not self._alive(cur, worker_id):
                claim_limit = 0
            self.db.lock_lanes(cur, _lanes_touched(outcomes))
            accepted, follow_ups = self._record(cur, worker_id, outcomes, now)
            for client_id, requests in follow_ups.items():
                self._insert(cur, client_id, requests, now)
            if follow_ups:
                self.db.notify(cur)
            jobs = self._claim(cur, worker_id, claim_limit, now)
        if follow_ups:
            self.wakeup.notify()
        return jobs, len(outcomes) - accepted

    def _vetted(self, o: Outcome) -> Outcome:
        """The outcome as it can be recorded: its error text clean and bounded, its retry
        hint believable, and a success whose follow-ups cannot be queued turned into a
        permanent failure that says why (so nothing of it is half-applied)."""
        error = None if o.error is None else _clean_text(o.error, MAX_ERROR)
        retry_after = o.retry_after
        if retry_after is not None and not (
            isinstance(retry_after, int | float) and math.isfinite(retry_after)
        ):
            retry_after = None
        elif retry_after is not None:
            retry_after = min(max(float(retry_after), 0.0), MAX_RETRY_AFTER)
        problem = self._follow_up_problem(o) if o.kind == "done" and o.follow_ups else None
        if problem is not None:
            return Outcome(o.job, "permanent", o.ended_at, problem)
        if (error, retry_after) == (o.error, o.retry_after):
            return o
        return Outcome(o.job, o.kind, o.ended_at, error, retry_after, o.follow_ups)

    def _follow_up_problem(self, o: Outcome) -> str | None:
        """Why this item's follow-ups cannot be queued, or None when they all can."""
        follow_ups = o.follow_ups
        if not isinstance(follow_ups, list | tuple):
            return "invalid follow-ups: not a list of requests"
        if len(follow_ups) > MAX_FOLLOW_UPS:
            return f"{len(follow_ups)} follow-ups: an item may queue at most {MAX_FOLLOW_UPS}"
        connections: set[tuple[str, int | None]] = set()
        for n, req in enumerate(follow_ups, 1):
            try:
                self._check_follow_up(o.job, req, connections)
            except (StockyardError, TypeError, ValueError, RecursionError) as exc:
                name = getattr(req, "instruction", None)
                what = f"follow-up {n}" + (f" ({name})" if isinstance(name, str) else "")
                return _clean_text(f"invalid {what}: {exc}", MAX_ERROR)
        return None

    def _check_follow_up(
        self, job: Job, req: object, resolved: set[tuple[str, int | None]]
    ) -> None:
        """Raise if `req` cannot be queued for `job`'s client: the same checks a tenant's
        enqueue gets (instruction, connection of this client, lane), plus the shape a
        handler's Python objects might get wrong."""
        if not isinstance(req, Request):
            raise InvalidInput("not a queue request")
        if not isinstance(req.instruction, str):
            raise InvalidInput("the instruction must be a name")
        cid = req.connection_id
        if cid is not None and (isinstance(cid, bool) or not isinstance(cid, int)):
            raise InvalidInput(f"connection_id must be a number, not {cid!r}")
        if (req.instruction, cid) not in resolved:
            # Another client's connection and a missing one both answer NotFound.
            self._resolve(job.client_id, req, internal=False)
            resolved.add((req.instruction, cid))
        if not isinstance(req.payload, dict):
            raise InvalidInput("payload must be a JSON object")
        _dumps(req.payload)  # TypeError / ValueError: not JSON (a set, NaN, bytes...)
        if not isinstance(req.refs, list | tuple) or not all(_clean(r) for r in req.refs):
            raise InvalidInput("refs must be a list of texts")
        for name in ("idempotency_key", "coalesce_key"):
            value = getattr(req, name)
            if value is not None and not _clean(value):
                raise InvalidInput(f"{name} must be a text")
        delay = req.delay
        if isinstance(delay, bool) or not isinstance(delay, int | float):
            raise InvalidInput("delay must be a number of seconds")
        if not (math.isfinite(delay) and delay >= 0):
            raise InvalidInput("delay must be a finite number of seconds, at least 0")
        if req.parent_id is not None and req.parent_id != job.id:
            raise InvalidInput("a follow-up's parent is the item that queued it")

    def _record(
        self, cur: Cursor, worker_id: str, outcomes: Sequence[Outcome], now: float
    ) -> tuple[int, dict[int, list[Request]]]:
        """Settle outcomes. Fencing: each statement matches only items still running under
        this worker and this attempt, so a worker whose lease was lost changes nothing.
        (`+items.worker_id` keeps the planner on the primary key, driven by the batch.)

        A successful attempt lives on the item row (worker_id, started_at, finished_at);
        the attempts table keeps every attempt that failed or was lost.
        """
        done: list[list[Any]] = []
        retried: list[list[Any]] = []
        failed: list[list[Any]] = []
        by_id: dict[int, Outcome] = {}
        for o in outcomes:
            job = o.job
            by_id[job.id] = o
            if o.kind == "done":
                done.append([job.id, job.attempt, o.ended_at])
                continue
            policy = self.instructions.policy(job.instruction)
            failures = job.failures + 1
            if policy.retries(o.kind, job.attempt):
                due = now + max(backoff.delay(policy, failures), o.retry_after or 0.0)
                retried.append([job.id, job.attempt, due, failures, o.error])
            else:
                error = o.error
                if o.kind == "transient":
                    error = f"gave up after {job.attempt} attempts: {error}"
                failed.append([job.id, job.attempt, failures, error, o.kind])
        lanes: Counter[int] = Counter()
        follow_ups: dict[int, list[Request]] = {}
        accepted = 0
        unsuccessful: list[tuple[Any, ...]] = []
        for kind, rows_doc, sql in (
            (
                "done",
                done,
                "status = 'done', finished_at = CAST(d.value->>2 AS DOUBLE PRECISION),"
                " error = NULL, error_kind = NULL",
            ),
            (
                "transient",
                retried,
                "status = 'queued', run_after = CAST(d.value->>2 AS DOUBLE PRECISION),"
                " failures = CAST(d.value->>3 AS INTEGER), error = d.value->>4,"
                " error_kind = 'transient', worker_id = NULL",
            ),
            (
                "failed",
                failed,
                "status = 'failed', failures = CAST(d.value->>2 AS INTEGER),"
                " error = d.value->>3, error_kind = d.value->>4, worker_id = NULL",
            ),
        ):
            if not rows_doc:
                continue
            rows = cur.execute(
                f"UPDATE items SET {sql}, updated_at = ? FROM {self.db.json_rows}"
                f" WHERE {_FENCE.format(no_index=self.db.no_index)}"
                " RETURNING items.id, items.lane_id",
                (now, _dumps(rows_doc), worker_id),
            ).fetchall()
            accepted += len(rows)
            for item_id, lane_id in rows:
                o = by_id[item_id]
                if lane_id is not None:
                    lanes[lane_id] += int(kind == "done")  # a retried or failed item stays
                if kind == "done":
                    if o.follow_ups:
                        follow_ups.setdefault(o.job.client_id, []).extend(o.follow_ups)
                    continue
                outcome = kind if o.kind == "transient" else o.kind
                row = (item_id, o.job.attempt, worker_id, o.job.started_at, o.ended_at)
                unsuccessful.append((*row, outcome, o.error))
        if unsuccessful:
            cur.executemany(
                "INSERT INTO attempts (item_id, number, worker_id, started_at, ended_at,"
                " outcome, error) VALUES (?, ?, ?, ?, ?, ?, ?)",
                unsuccessful,
            )
        if lanes:
            self._finish_in_lanes(cur, lanes)
        return accepted, follow_ups

    def _finish_in_lanes(self, cur: Cursor, finished: Counter[int]) -> None:
        """`finished` counts, per lane, items that left it for good (0: only re-derive)."""
        self._update_lanes(cur, {lane: -n for lane, n in finished.items()})

    def next_due(self) -> float | None:
        """When the earliest queued item may run (None: nothing can run without an operator).
        Two index probes: the ready-lanes index and the free-items index."""
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

    # ----------------------------------------------------------------- workers and leases

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
        self.db.lock_lanes(cur, lanes)
        rows = [
            r
            for r in cur.execute(
                "SELECT id, attempts, worker_id, started_at, lane_id FROM items"
                f" WHERE {running} ORDER BY id{self.db.for_update}",
                (held,),
            ).fetchall()
            # An item claimed since the first read belongs to a lane not locked: next time.
            if (r[4] is None or r[4] in lanes) and (keep is None or r[0] not in keep)
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
            [(r[0], r[1], r[2], r[3] or now, now, why) for r in rows],
        )
        lanes_touched = Counter({r[4]: 0 for r in rows if r[4] is not None})
        if lanes_touched:
            self._finish_in_lanes(cur, lanes_touched)
        return len(rows)

    # ------------------------------------------------------------------- operator actions

    def retry(self, client_id: int, item_ids: Sequence[int], actor: str) -> list[int]:
        """Put failed items back, keeping their id and their place at the head of the lane."""
        return self._act(client_id, item_ids, actor, "retry", ("failed",))

    def skip(self, client_id: int, item_ids: Sequence[int], actor: str) -> list[int]:
        """Give up on failed or queued items for good; a blocked lane moves on."""
        return self._act(client_id, item_ids, actor, "skip", ("failed", "queued"))

    def retry_where(self, flt: ItemFilter, actor: str) -> list[int]:
        return self._act_where(flt, actor, "retry", ("failed",))

    def skip_where(self, flt: ItemFilter, actor: str) -> list[int]:
        return self._act_where(flt, actor, "skip", ("failed", "queued"))

    def _act_where(
        self, flt: ItemFilter, actor: str, action: str, allowed: tuple[str, ...]
    ) -> list[int]:
        statuses = tuple(s for s in (flt.statuses or allowed) if s in allowed)
        if not statuses:
            raise InvalidInput(f"{action} applies only to {' or '.join(allowed)} items")
        flt = _replace(flt, statuses=statuses)
        done: list[int] = []
        after = 0
        while True:
            ids = self._ids(flt, after, _BULK_CHUNK)
            if not ids:
                return done
            done += self._act(flt.client_id, ids, actor, action, allowed, strict=False)
            after = ids[-1]

    def _act(
        self,
        client_id: int,
        item_ids: Sequence[int],
        actor: str,
        action: str,
        allowed: tuple[str, ...],
        strict: bool = True,
    ) -> list[int]:
        now = time.time()
        in_ids = self.db.in_list("id")
        ids_param = self.db.list_param(item_ids)
        with self.db.write() as cur:
            self.db.lock_lanes(
                cur,
                (
                    r[0]
                    for r in cur.execute(
                        f"SELECT DISTINCT lane_id FROM items WHERE client_id = ? AND {in_ids}"
                        " AND lane_id IS NOT NULL",
                        (client_id, ids_param),
                    ).fetchall()
                ),
            )
            rows = cur.execute(
                f"SELECT id, status, lane_id FROM items WHERE client_id = ? AND {in_ids}"
                f" ORDER BY id{self.db.for_update}",
                (client_id, ids_param),
            ).fetchall()
            found = {r[0]: r for r in rows}
            if strict:
                _check_actionable(item_ids, found, action, allowed)
            targets = [r for r in rows if r[1] in allowed]
            if not targets:
                return []
            ids = [r[0] for r in targets]
            if action == "retry":
                cur.execute(
                    "UPDATE items SET status = 'queued', run_after = ?, failures = 0,"
                    f" error_kind = NULL, updated_at = ? WHERE {in_ids}",
                    (now, now, self.db.list_param(ids)),
                )
                lanes = Counter({r[2]: 0 for r in targets if r[2] is not None})
            else:
                cur.execute(
                    "UPDATE items SET status = 'skipped', finished_at = ?, updated_at = ?"
                    f" WHERE {in_ids}",
                    (now, now, self.db.list_param(ids)),
                )
                lanes = Counter(r[2] for r in targets if r[2] is not None)
            cur.executemany(
                "INSERT INTO audit (at, client_id, actor, action, item_id, lane_id, detail)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (now, client_id, actor, action, r[0], r[2], json.dumps({"from": r[1]}))
                    for r in targets
                ],
            )
            if lanes:
                self._finish_in_lanes(cur, lanes)
            if action == "retry":
                self.db.notify(cur)
        if action == "retry":
            self.wakeup.notify()
        return ids

    def pause(self, client_id: int, lane_id: int, actor: str, reason: str = "") -> None:
        self._set_paused(client_id, lane_id, actor, True, reason)

    def resume(self, client_id: int, lane_id: int, actor: str) -> None:
        self._set_paused(client_id, lane_id, actor, False, "")
        self.wakeup.notify()

    def _set_paused(
        self, client_id: int, lane_id: int, actor: str, paused: bool, reason: str
    ) -> None:
        now = time.time()
        with self.db.write() as cur:
            row = cur.execute(
                f"SELECT paused FROM lanes WHERE id = ? AND client_id = ?{self.db.for_update}",
                (lane_id, client_id),
            ).fetchone()
            if row is None:
                raise NotFound(f"no lane {lane_id} (lanes are numbered by their connection)")
            if bool(row[0]) == paused:
                raise Conflict(f"lane {lane_id} is already {'paused' if paused else 'running'}")
            cur.execute(
                "UPDATE lanes SET paused = ?, paused_at = ?, paused_by = ?, pause_reason = ?"
                " WHERE id = ?",
                (
                    int(paused),
                    now if paused else None,
                    actor if paused else None,
                    reason or None,
                    lane_id,
                ),
            )
            if not paused:
                self.db.notify(cur)
            cur.execute(
                "INSERT INTO audit (at, client_id, actor, action, lane_id, detail)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    now,
                    client_id,
                    actor,
                    "pause" if paused else "resume",
                    lane_id,
                    json.dumps({"reason": reason} if reason else {}),
                ),
            )

    # --------------------------------------------------------------------------- reading

    def _where(self, flt: ItemFilter) -> tuple[str, list[Any]]:
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

    def _ids(self, flt: ItemFilter, after: int, limit: int) -> list[int]:
        where, params = self._where(flt)
        rows = (
            self.db.connection()
            .execute(
                f"SELECT id FROM items WHERE {where} AND id > ? ORDER BY id LIMIT ?",
                (*params, after, limit),
            )
            .fetchall()
        )
        return [r[0] for r in rows]

    def count(self, flt: ItemFilter) -> int:
        where, params = self._where(flt)
        row = (
            self.db.connection()
            .execute(f"SELECT count(*) FROM items WHERE {where}", params)
            .fetchone()
        )
        return int(row[0])

    def list_items(self, flt: ItemFilter, limit: int = 50, before: int | None = None) -> list[Item]:
        """Newest first; pass the last id seen as `before` for the next page."""
        if not 1 <= limit <= 1000:
            raise InvalidInput("limit must be between 1 and 1000")
        where, params = self._where(flt)
        if before is not None:
            where += " AND id < ?"
            params.append(before)
        rows = (
            self.db.connection()
            .execute(
                f"SELECT {_ITEM_COLUMNS} FROM items WHERE {where} ORDER BY id DESC LIMIT ?",
                (*params, limit),
            )
            .fetchall()
        )
        return [_item(r) for r in rows]

    def get(self, client_id: int, item_id: int) -> Item:
        row = (
            self.db.connection()
            .execute(
                f"SELECT {_ITEM_COLUMNS} FROM items WHERE id = ? AND client_id = ?",
                (item_id, client_id),
            )
            .fetchone()
        )
        if row is None:
            raise NotFound(f"no queue item {item_id}")
        return _item(row)

    def detail(self, client_id: int, item_id: int) -> ItemDetail:
        with self.db.read() as cur:
            row = cur.execute(
                f"SELECT {_ITEM_COLUMNS} FROM items WHERE id = ? AND client_id = ?",
                (item_id, client_id),
            ).fetchone()
            if row is None:
                raise NotFound(f"no queue item {item_id}")
            attempts = cur.execute(
                "SELECT number, worker_id, started_at, ended_at, outcome, error FROM attempts"
                " WHERE item_id = ? ORDER BY number, id",
                (item_id,),
            ).fetchall()
            children = cur.execute(
                f"SELECT {_ITEM_COLUMNS} FROM items WHERE parent_id = ? ORDER BY id LIMIT 1000",
                (item_id,),
            ).fetchall()
            audit = cur.execute(
                "SELECT at, actor, action, item_id, lane_id, detail FROM audit"
                " WHERE item_id = ? ORDER BY id",
                (item_id,),
            ).fetchall()
        item = _item(row)
        history = [Attempt(*a) for a in attempts]
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
        return ItemDetail(
            item=item,
            attempts=history,
            children=[_item(c) for c in children],
            audit=[
                AuditEntry(a[0], a[1], a[2], a[3], a[4], json.loads(a[5] or "{}")) for a in audit
            ],
        )

    def lanes(self, client_id: int) -> list[LaneView]:
        """Every lane of the client: blocked first, then paused, then by waiting work."""
        rows = (
            self.db.connection()
            .execute(
                "SELECT l.id, c.kind, c.description, l.paused, l.pending, l.head_id, l.ready_at,"
                " i.instruction, i.status, i.error, i.created_at, i.run_after"
                " FROM lanes l JOIN connections c ON c.id = l.id"
                " LEFT JOIN items i ON i.id = l.head_id WHERE l.client_id = ? ORDER BY l.id",
                (client_id,),
            )
            .fetchall()
        )
        now = time.time()
        views = [_lane(r, now) for r in rows]
        rank = {"blocked": 0, "paused": 1, "waiting": 2, "running": 3, "ready": 4, "idle": 5}
        return sorted(views, key=lambda v: (rank[v.state], -v.pending, v.lane_id))

    def lane_audit(self, client_id: int, lane_id: int) -> list[AuditEntry]:
        rows = (
            self.db.connection()
            .execute(
                "SELECT at, actor, action, item_id, lane_id, detail FROM audit"
                " WHERE lane_id = ? AND client_id = ? ORDER BY id",
                (lane_id, client_id),
            )
            .fetchall()
        )
        return [AuditEntry(a[0], a[1], a[2], a[3], a[4], json.loads(a[5] or "{}")) for a in rows]

    def record(self, client_id: int, actor: str, action: str, detail: dict[str, Any]) -> None:
        """An audit entry for what the layers above change (connections, keys, members)."""
        with self.db.write() as cur:
            cur.execute(
                "INSERT INTO audit (at, client_id, actor, action, detail) VALUES (?, ?, ?, ?, ?)",
                (time.time(), client_id, actor, action, json.dumps(detail)),
            )

    def audit_log(self, client_id: int, before: int | None, limit: int) -> list[AuditEntry]:
        """The client's whole audit trail, newest first."""
        rows = (
            self.db.connection()
            .execute(
                "SELECT at, actor, action, item_id, lane_id, detail, id FROM audit"
                " WHERE client_id = ? AND id < ? ORDER BY id DESC LIMIT ?",
                (client_id, 2**62 if before is None else before, limit),
            )
            .fetchall()
        )
        return [
            AuditEntry(a[0], a[1], a[2], a[3], a[4], json.loads(a[5] or "{}"), a[6]) for a in rows
        ]

    def sample(self, now: float, every: float = SAMPLE_EVERY) -> None:
        """Record, per client, the backlog, the failed items and the items finished since
        the last sample: the dashboard's history. Workers call it every minute; the
        sample's time slot makes racing workers record it once."""
        slot = now - now % every
        with self.db.write() as cur:
            counts: dict[int, list[int]] = {}
            for column, sql, params in (
                (
                    0,
                    "SELECT client_id, count(*) FROM items WHERE status = 'queued'"
                    " GROUP BY client_id",
                    (),
                ),
                (
                    1,
                    "SELECT client_id, count(*) FROM items WHERE status = 'failed'"
                    " GROUP BY client_id",
                    (),
                ),
                (
                    2,
                    "SELECT client_id, count(*) FROM items WHERE status IN"
                    " ('done', 'skipped', 'superseded') AND finished_at >= ? AND finished_at < ?"
                    " GROUP BY client_id",
                    (slot - every, slot),
                ),
            ):
                for client, n in cur.execute(sql, params).fetchall():
                    counts.setdefault(int(client), [0, 0, 0])[column] = int(n)
            cur.executemany(
                "INSERT INTO queue_samples (client_id, at, queued, failed, finished)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (client_id, at) DO NOTHING",
                [(client, slot, *values) for client, values in counts.items()],
            )
            cur.execute("DELETE FROM queue_samples WHERE at < ?", (now - SAMPLES_KEPT,))

    def samples(self, client_id: int, since: float) -> list[tuple[float, int, int, int]]:
        """(time, queued, failed, finished) per minute since `since`, oldest first."""
        rows = (
            self.db.connection()
            .execute(
                "SELECT at, queued, failed, finished FROM queue_samples"
                " WHERE client_id = ? AND at >= ? ORDER BY at",
                (client_id, since),
            )
            .fetchall()
        )
        return [(float(a), int(q), int(f), int(d)) for a, q, f, d in rows]

    def failures_by(
        self, client_id: int
    ) -> tuple[list[tuple[str, int]], list[tuple[int | None, int]]]:
        """Failed items by instruction and by connection (read from the failed items'
        partial index)."""
        rows = (
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
        for instruction, connection, n in rows:
            by_instruction[instruction] += int(n)
            by_connection[connection] += int(n)
        return by_instruction.most_common(), by_connection.most_common()

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

    # ------------------------------------------------------------------------- retention

    def prune(self, older_than: float, batch: int = 1000) -> int:
        """Delete finished items (done, skipped, superseded) finished before now -
        older_than, in batches; failed and waiting items are never touched."""
        if older_than < 0:
            raise InvalidInput("the retention age cannot be negative")
        cutoff = time.time() - older_than
        total = 0
        while True:
            with self.db.write() as cur:
                ids = [
                    r[0]
                    for r in cur.execute(
                        "DELETE FROM items WHERE id IN (SELECT id FROM items"
                        " WHERE status IN ('done', 'skipped', 'superseded') AND finished_at < ?"
                        " AND id < (SELECT max(id) FROM items) LIMIT ?) RETURNING id",
                        (cutoff, batch),
                    )
                ]
                if ids:
                    ids_param = self.db.list_param(ids)
                    for table in ("attempts", "item_refs"):
                        cur.execute(
                            f"DELETE FROM {table} WHERE {self.db.in_list('item_id')}",
                            (ids_param,),
                        )
            total += len(ids)
            if len(ids) < batch:
                return total


def _lanes_touched(outcomes: Sequence[Outcome]) -> set[int]:
    """The lanes a settle may change: its items' lanes and its follow-ups' connections
    (a lane's id is its connection's id)."""
    lanes = {o.job.lane_id for o in outcomes if o.job.lane_id is not None}
    for o in outcomes:
        lanes.update(r.connection_id for r in o.follow_ups if r.connection_id is not None)
    return lanes


def _replace(flt: ItemFilter, **changes: Any) -> ItemFilter:
    from dataclasses import replace

    return replace(flt, **changes)


def _check_actionable(
    item_ids: Sequence[int], found: dict[int, Any], action: str, allowed: tuple[str, ...]
) -> None:
    missing = [i for i in item_ids if i not in found]
    if missing:
        raise NotFound(f"no queue item {', '.join(map(str, missing))}")
    wrong = [(i, found[i][1]) for i in item_ids if found[i][1] not in allowed]
    if wrong:
        listed = ", ".join(f"{i} is {s}" for i, s in wrong)
        raise Conflict(f"cannot {action}: {listed}; only {' or '.join(allowed)} items can be")


def _connection(r: Sequence[Any]) -> Connection:
    return Connection(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6], r[7])


def _item(r: Sequence[Any]) -> Item:
    return Item(
        id=r[0],
        client_id=r[1],
        instruction=r[2],
        mode="blocking" if r[3] else "non-blocking",
        connection_id=r[4],
        lane_id=r[5],
        status=r[6],
        payload=json.loads(r[7]),
        refs=json.loads(r[8]),
        description=r[9],
        parent_id=r[10],
        idempotency_key=r[11],
        created_at=r[12],
        updated_at=r[13],
        run_after=r[14],
        attempts=r[15],
        failures=r[16],
        worker_id=r[17],
        finished_at=r[18],
        error=r[19],
        error_kind=r[20],
        started_at=r[21],
        coalesce_key=r[22],
        superseded_by=r[23],
    )


def _lane(r: Sequence[Any], now: float) -> LaneView:
    (
        lane_id,
        kind,
        description,
        paused,
        pending,
        head_id,
        ready_at,
        instruction,
        status,
        error,
        created_at,
        run_after,
    ) = r
    state: str
    if status == "failed":
        state = "blocked"
    elif paused:
        state = "paused"
    elif head_id is None:
        state = "idle"
    elif status == "running":
        state = "running"
    elif ready_at is not None and ready_at > now:
        state = "waiting"
    else:
        state = "ready"
    return LaneView(
        lane_id=lane_id,
        kind=kind,
        description=description,
        state=state,  # type: ignore[arg-type]
        paused=bool(paused),
        pending=pending,
        head_id=head_id,
        head_instruction=instruction,
        head_status=status,
        head_error=error,
        oldest_created_at=created_at,
        next_run_at=run_after if status == "queued" else None,
    )


def _clean(text: object) -> bool:
    """A text PostgreSQL can store (no NUL) and SQLite reads back the same."""
    return isinstance(text, str) and "\x00" not in text


def _clean_text(text: object, limit: int) -> str:
    """Error text as it is kept: a string, without NUL, at most `limit` characters."""
    value = text if isinstance(text, str) else str(text)
    value = value.replace("\x00", "\\0")
    return value if len(value) <= limit else value[: limit - 1] + "…"
