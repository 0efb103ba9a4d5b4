"""Claiming and settling: hand out due work, record outcomes under a fence, vet and queue
follow-ups, and claim more, in one transaction.

Fencing: settling matches only items still running under this worker and this attempt,
so a worker whose lease was lost changes nothing.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from stockyard.db import Cursor, Database
from stockyard.engine import backoff
from stockyard.engine.enqueue import Enqueuer, Target, connections_of
from stockyard.engine.instructions import Instructions
from stockyard.engine.lanes import Lanes, Place
from stockyard.engine.models import MAX_ERROR, Job, Outcome, Request
from stockyard.engine.rows import dumps, jobs
from stockyard.engine.store import Sql
from stockyard.engine.turns import Limiter, Planner, Turns
from stockyard.engine.wakeup import Wakeup
from stockyard.errors import InvalidInput, StockyardError, encodes, storable

# One item may queue this many follow-ups (a fan-out of a large batch stays far below);
# more is a runaway handler or a crafted payload, and fails that item alone.
MAX_FOLLOW_UPS = 100_000
# Error text kept on an item; longer is cut (a remote answer can be any size).
# A Retry-After beyond this is not believed: the item waits at most a day.
MAX_RETRY_AFTER = 86400.0
# The statement that settles each kind of outcome, under the fence (queries.sql).
_SETTLE = {"done": "settle_done", "transient": "settle_transient", "failed": "settle_failed"}
_ATTEMPT = ("item_id", "number", "worker_id", "started_at", "ended_at", "outcome", "error")


class Claims:
    def __init__(
        self,
        db: Database,
        instructions: Instructions,
        lanes: Lanes,
        enqueuer: Enqueuer,
        wakeup: Wakeup,
    ) -> None:
        self.db = db
        self.instructions = instructions
        self.lanes = lanes
        self.enqueuer = enqueuer
        self.wakeup = wakeup
        self.sql = Sql(db)
        self.planner = Planner(self.sql, lanes)
        self._turns: dict[str, Turns] = {}

    # ------------------------------------------------------------------------- claim

    def claim(self, worker_id: str, limit: int) -> list[Job]:
        """Claim up to `limit` items. The claim is a lease: if the database loses it in a
        crash, the items simply run again, so its commit does not wait for the disk."""
        with self.db.write() as cur:
            self.db.lease_only()
            if not self.alive(cur, worker_id):
                return []
            return self._claim(cur, worker_id, limit, time.time())

    def alive(self, cur: Cursor, worker_id: str) -> bool:
        """Whether the worker may claim. Locks its row first (before any lane), so a reap
        cannot slip between this check and the claim's commit."""
        row = self.sql.one(cur, "worker_alive", worker_id=worker_id)
        return row is not None and row[0] is None

    def _remote_alive(self, cur: Cursor, worker_id: str) -> bool:
        """Whether the worker is a live remote worker (its row locked, as `alive`)."""
        row = self.sql.one(cur, "remote_worker", worker_id=worker_id)
        return row is not None and row[0] is None and bool(row[1])

    def _claim(self, cur: Cursor, worker_id: str, limit: int, now: float) -> list[Job]:
        """Claim up to `limit` items, in turns between clients and connections and within
        limits (stockyard.engine.turns): half the room goes to lanes first, so neither kind
        of work can starve the other, then whatever is left to either."""
        if limit <= 0:
            return []
        turns = self.turns(worker_id)
        limiter = Limiter(self.sql, cur, now)
        lane_share = (limit + 1) // 2
        heads = self.planner.lane_heads(cur, turns, lane_share, now, limiter)
        free = self.planner.free_items(cur, worker_id, turns, limit - len(heads), now, limiter)
        if len(heads) + len(free) < limit and len(heads) >= lane_share:
            room = limit - len(heads) - len(free)
            heads += self.planner.lane_heads(cur, turns, room, now, limiter)
        limiter.flush()
        if heads:
            self.sql.execute(cur, "start_heads", worker_id=worker_id, now=now, ids=heads)
            free += jobs(cur)
        return free

    def next_due(self) -> float | None:
        """When the earliest queued item may run (None: nothing can run without an
        operator): the earliest ready lane or non-blocking item."""
        lanes = self.lanes.next_due()
        free = self.planner.next_free_due(self.sql.conn)
        return min((t for t in (lanes, free) if t is not None), default=None)

    def turns(self, worker_id: str) -> Turns:
        """Where this worker's claims take their turns (kept per process; a worker that
        restarts simply starts from the first client again)."""
        turns = self._turns.get(worker_id)
        if turns is None:
            turns = self._turns[worker_id] = Turns()
        return turns

    def place(self, worker_id: str, live: Sequence[str]) -> None:
        """Record the worker's place among the live workers (read at its heartbeat)."""
        if worker_id in live:
            self.turns(worker_id).place = Place(list(live).index(worker_id), len(live))

    def forget(self, worker_id: str) -> None:
        self._turns.pop(worker_id, None)

    # ------------------------------------------------------------------------ settle

    def settle(
        self, worker_id: str, outcomes: Sequence[Outcome], claim_limit: int = 0
    ) -> tuple[list[Job], int]:
        """Record outcomes, enqueue follow-ups and claim more work, in one transaction.

        Returns the newly claimed jobs and how many outcomes were refused because the
        item's lease had been lost (the item was already handed to another worker).
        """
        claimed, accepted = self.settle_items(worker_id, outcomes, claim_limit)
        return claimed, len(outcomes) - len(accepted)

    def settle_items(
        self,
        worker_id: str,
        outcomes: Sequence[Outcome],
        claim_limit: int = 0,
        remote: bool = False,
    ) -> tuple[list[Job], list[int]]:
        """`settle`, answering the ids of the items whose outcome was recorded (the others'
        leases were lost). `remote`: a remote runner's session settles, and records
        nothing unless `worker_id` is a live remote worker's (an in-process worker's id
        can look like a session's)."""
        # Checked before the transaction: one item's bad result fails that item alone,
        # instead of making the whole batch (and so the worker) fail to settle, forever.
        self.vet(outcomes)
        now = time.time()
        with self.db.write() as cur:
            if remote and not self._remote_alive(cur, worker_id):
                return [], []
            if claim_limit > 0 and not self.alive(cur, worker_id):
                claim_limit = 0
            self.lanes.lock(cur, _lanes_touched(outcomes))
            accepted, follow_ups = self._record(cur, worker_id, outcomes, now)
            for client_id, requests in follow_ups.items():
                self.enqueuer.insert(cur, client_id, requests, now)
            if follow_ups:
                self.db.notify(cur)
            # A fresh clock: items committed while this settled are due by now, and would
            # otherwise wait a whole cycle more.
            claimed = self._claim(cur, worker_id, claim_limit, time.time())
        if follow_ups:
            self.wakeup.notify()
        return claimed, accepted

    def _record(
        self, cur: Cursor, worker_id: str, outcomes: Sequence[Outcome], now: float
    ) -> tuple[list[int], dict[int, list[Request]]]:
        """Settle outcomes under the fence; the ids of those recorded. A successful attempt
        lives on the item row (worker_id, started_at, finished_at); the attempts table keeps
        every attempt that failed or was lost."""
        batches: dict[str, list[list[Any]]] = {"done": [], "transient": [], "failed": []}
        by_id: dict[int, Outcome] = {}
        for o in outcomes:
            job = o.job
            by_id[job.id] = o
            if o.kind == "done":
                batches["done"].append([job.id, job.attempt, o.ended_at])
                continue
            policy = self.instructions.policy(job.instruction)
            failures = job.failures + 1
            if policy.retries(o.kind, job.attempt):
                due = now + max(backoff.delay(policy, failures), o.retry_after or 0.0)
                batches["transient"].append([job.id, job.attempt, due, failures, o.error])
            else:
                error = o.error
                if o.kind == "transient":
                    error = f"gave up after {job.attempt} attempts: {error}"
                batches["failed"].append([job.id, job.attempt, failures, error, o.kind])
        lanes: Counter[int] = Counter()
        follow_ups: dict[int, list[Request]] = {}
        accepted: list[int] = []
        unsuccessful: list[tuple[Any, ...]] = []
        for kind, batch in batches.items():
            if not batch:
                continue
            rows = self.sql.all(
                cur, _SETTLE[kind], now=now, batch=dumps(batch), worker_id=worker_id
            )
            for item_id, lane_id in rows:
                accepted.append(item_id)
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
            self.sql.execute_many(
                cur, "insert_attempt", [dict(zip(_ATTEMPT, r, strict=True)) for r in unsuccessful]
            )
        if lanes:
            self.lanes.finish(cur, lanes)
        return accepted, follow_ups

    # ----------------------------------------------------------------- vetting results

    def vet(self, outcomes: Sequence[Outcome]) -> None:
        """Makes the outcomes what can be recorded, in place: error texts clean and
        bounded, retry hints believable, and a success whose follow-ups cannot be queued a
        permanent failure that says why (so nothing of it is half-applied). In place, so
        the worker counts, logs and reports to metrics what the queue recorded."""
        wanted: set[int] = set()
        for o in outcomes:
            follow_ups = o.follow_ups
            if follow_ups and o.kind == "done" and isinstance(follow_ups, list | tuple):
                wanted.update(
                    r.connection_id
                    for r in follow_ups[: MAX_FOLLOW_UPS + 1]
                    if isinstance(r, Request)
                    and isinstance(r.connection_id, int)
                    and not isinstance(r.connection_id, bool)
                )
        # One statement for every follow-up's connection in the batch.
        targets = connections_of(self.sql, self.sql.conn, wanted) if wanted else {}
        for o in outcomes:
            self._vet(o, targets)

    def _vet(self, o: Outcome, targets: dict[int, Target]) -> None:
        if o.error is not None:
            o.error = clean_text(o.error, MAX_ERROR)
        if o.retry_after is not None:
            hint = o.retry_after
            finite = isinstance(hint, int | float) and math.isfinite(hint)
            o.retry_after = min(max(float(hint), 0.0), MAX_RETRY_AFTER) if finite else None
        problem = self._follow_up_problem(o, targets) if o.kind == "done" and o.follow_ups else None
        if problem is not None:
            o.kind, o.error, o.retry_after, o.follow_ups = "permanent", problem, None, []

    def _follow_up_problem(self, o: Outcome, targets: dict[int, Target]) -> str | None:
        """Why this item's follow-ups cannot be queued, or None when they all can."""
        follow_ups = o.follow_ups
        if not isinstance(follow_ups, list | tuple):
            return "invalid follow-ups: not a list of requests"
        if len(follow_ups) > MAX_FOLLOW_UPS:
            return f"{len(follow_ups)} follow-ups: an item may queue at most {MAX_FOLLOW_UPS}"
        resolved: set[tuple[str, int | None]] = set()
        for n, req in enumerate(follow_ups, 1):
            try:
                self._check_follow_up(o.job, req, resolved, targets)
            except (StockyardError, TypeError, ValueError, RecursionError) as exc:
                name = getattr(req, "instruction", None)
                what = f"follow-up {n}" + (f" ({name})" if isinstance(name, str) else "")
                return clean_text(f"invalid {what}: {exc}", MAX_ERROR)
        return None

    def _check_follow_up(
        self,
        job: Job,
        req: object,
        resolved: set[tuple[str, int | None]],
        targets: dict[int, Target],
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
            self.enqueuer.resolve(job.client_id, req, targets, internal=False)
            resolved.add((req.instruction, cid))
        if not isinstance(req.payload, dict):
            raise InvalidInput("payload must be a JSON object")
        # TypeError / ValueError: not JSON (a set, NaN, bytes...); UnicodeEncodeError (a
        # ValueError too): a lone surrogate, which the database cannot store as UTF-8.
        dumps(req.payload).encode()
        if not isinstance(req.refs, list | tuple) or not all(clean(r) for r in req.refs):
            raise InvalidInput("refs must be a list of texts")
        for name in ("idempotency_key", "coalesce_key"):
            value = getattr(req, name)
            if value is not None and not clean(value):
                raise InvalidInput(f"{name} must be a text")
        delay = req.delay
        if isinstance(delay, bool) or not isinstance(delay, int | float):
            raise InvalidInput("delay must be a number of seconds")
        if not (math.isfinite(delay) and delay >= 0):
            raise InvalidInput("delay must be a finite number of seconds, at least 0")
        if req.parent_id is not None and req.parent_id != job.id:
            raise InvalidInput("a follow-up's parent is the item that queued it")


def _lanes_touched(outcomes: Sequence[Outcome]) -> set[int]:
    """The lanes a settle may change: its items' lanes and its follow-ups' connections
    (a lane's id is its connection's id)."""
    lanes = {o.job.lane_id for o in outcomes if o.job.lane_id is not None}
    for o in outcomes:
        lanes.update(r.connection_id for r in o.follow_ups if r.connection_id is not None)
    return lanes


def clean(text: object) -> bool:
    """A text PostgreSQL can store (no NUL) and SQLite reads back the same (no NUL, no
    lone surrogate: neither database takes one, UTF-8 cannot encode it)."""
    return isinstance(text, str) and "\x00" not in text and encodes(text)


def clean_text(text: object, limit: int) -> str:
    """Error text as it is kept: a string, without NUL, at most `limit` characters. A
    longer one keeps its start and its end: a traceback's end is its exception, the one
    line that says what went wrong."""
    value = text if isinstance(text, str) else str(text)
    value = value.replace("\x00", "\\0")
    if len(value) > limit:
        cut = "\n…\n"
        head = (limit - len(cut)) // 2
        value = value[:head] + cut + value[len(value) - (limit - len(cut) - head) :]
    # A lone surrogate is kept as its escape: UTF-8 (and so the database) cannot hold it.
    return storable(value)
