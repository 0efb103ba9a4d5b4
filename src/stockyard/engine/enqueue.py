"""Enqueueing: planning (mode, lane, description), idempotency keys, coalescing.

A request names its connection by id; the engine reads what it needs of the connections
(does it exist, whose is it, its kind, its description) with one statement per batch,
`connections_of`, and never more: the lane of a blocking request is its connection.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

from stockyard.db import Cursor, Database
from stockyard.engine.instructions import Instructions, render, render_key
from stockyard.engine.lanes import Lanes
from stockyard.engine.models import Request
from stockyard.engine.rows import dumps
from stockyard.engine.store import Sql
from stockyard.engine.wakeup import Wakeup
from stockyard.errors import InvalidInput, NotFound

_MIN_ID, _MAX_ID = -(2**63), 2**63 - 1
# Mode, lane and rendered description of a request.
Plan = tuple[bool, int | None, str]


@dataclass(frozen=True, slots=True)
class Target:
    """What the engine knows of a connection: enough to check a request and render its
    description. (Connections themselves belong to stockyard.tenancy.)"""

    id: int
    client_id: int
    kind: str
    description: str


def connections_of(sql: Sql, cur: Cursor, ids: Iterable[int | None]) -> dict[int, Target]:
    """The connections of these ids that exist, in one statement."""
    # An id beyond the database's integers names no connection (and must not reach it).
    wanted = sorted({i for i in ids if isinstance(i, int) and _MIN_ID <= i <= _MAX_ID})
    if not wanted:
        return {}
    rows = sql.all(cur, "connections_of", ids=wanted)
    return {int(r[0]): Target(int(r[0]), int(r[1]), r[2], r[3]) for r in rows}


def _json(value: Any) -> str:
    try:
        return dumps(value)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"payload: not valid JSON ({exc})") from None


def _refuse_surrogates(*texts: str) -> None:
    """dumps keeps a lone surrogate (ensure_ascii=False); binding it would fail in the
    driver with a UnicodeEncodeError (a 500), so it is refused here instead."""
    for text in texts:
        try:
            text.encode()
        except UnicodeError:
            raise InvalidInput(
                "payload, refs or keys: a lone surrogate (\\ud800-\\udfff) is not text"
            ) from None


def _document(rows: list[list[Any]]) -> str:
    """One JSON document per batch: the database unpacks it in C, and payloads are stored
    as the JSON text they already are, without a second encoding per item."""
    document = _json(rows)
    _refuse_surrogates(document)
    return document


class Enqueuer:
    def __init__(
        self, db: Database, instructions: Instructions, lanes: Lanes, wakeup: Wakeup
    ) -> None:
        self.db = db
        self.instructions = instructions
        self.lanes = lanes
        self.wakeup = wakeup
        self.sql = Sql(db)

    def enqueue(self, client_id: int, requests: Sequence[Request], internal: bool) -> list[int]:
        """Enqueue atomically; one queue id per request, in order. A request whose
        idempotency key is already known returns the existing item's id. Internal
        instructions are refused unless `internal`."""
        if not requests:
            return []
        keyed = any(r.idempotency_key is not None for r in requests)
        for attempt in range(3):
            try:
                with self.db.write() as cur:
                    ids = self.insert(cur, client_id, requests, time.time(), internal)
                    self.db.notify(cur)
                break
            except self.db.unique_violation:
                # Another transaction committed one of our new keys after we looked: now
                # it is known, and the next attempt returns its item instead.
                if not keyed or attempt == 2:
                    raise
        self.wakeup.notify()
        return ids

    def insert(
        self,
        cur: Cursor,
        client_id: int,
        requests: Sequence[Request],
        now: float,
        internal: bool = False,
    ) -> list[int]:
        """Write the requests in the caller's transaction; their ids, in order."""
        existing = self._known_keys(cur, client_id, requests)
        targets = connections_of(self.sql, cur, (r.connection_id for r in requests))
        plan = self._plan(client_id, requests, existing, targets, internal)
        fresh = [p for p in plan if p is not None]
        if not fresh:
            return [existing[str(r.idempotency_key)] for r in requests]
        lanes: Counter[int] = Counter(lane for _, lane, _ in fresh if lane is not None)
        # Ids are drawn with the lanes locked, so within a lane they follow commit order.
        self.lanes.lock(cur, lanes)
        if len(fresh) == 1:
            # One new item: the INSERT draws its id itself, one round trip fewer.
            return self._insert_one(cur, client_id, requests, plan, existing, now, lanes)
        # In id order: a lane's items must take its ids in the order of the batch.
        drawn = self.sql.all(cur, "allocate_ids", count=len(fresh))
        ranges = sorted((int(first), int(last)) for first, last in drawn)
        new_ids = chain.from_iterable(range(first, last + 1) for first, last in ranges)
        # One row per new item, in the order the INSERT reads them (d.value->>0 ... 11).
        rows: list[list[Any]] = []
        refs: list[tuple[str, int]] = []
        ids: list[int] = []
        # (lane, coalescing key) -> the newest new item that has them: it supersedes.
        newest: dict[tuple[int, str], int] = {}
        for req, planned in zip(requests, plan, strict=True):
            key = req.idempotency_key
            if planned is None:
                ids.append(existing[str(key)])
                continue
            item_id = next(new_ids)
            if key is not None:
                existing[key] = item_id
            blocking, lane_id, description = planned
            coalesce_key = None
            if lane_id is not None:
                coalesce_key = self._coalesce_key(req)
                if coalesce_key is not None:
                    newest[(lane_id, coalesce_key)] = item_id  # in id order: the last wins
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
                    coalesce_key,
                ]
            )
            if req.refs:
                refs.extend((ref, item_id) for ref in req.refs)
            ids.append(item_id)
        self.sql.execute(cur, "insert_items", client_id=client_id, now=now, batch=_document(rows))
        self._after_insert(cur, client_id, refs, newest, lanes, now)
        return ids

    def _insert_one(
        self,
        cur: Cursor,
        client_id: int,
        requests: Sequence[Request],
        plan: Sequence[Plan | None],
        existing: dict[str, int],
        now: float,
        lanes: Counter[int],
    ) -> list[int]:
        """`insert` for a batch with one new item (any others repeat a known key, maybe
        its own): the same row, its id drawn by the INSERT itself."""
        at, (blocking, lane_id, description) = next(
            (n, p) for n, p in enumerate(plan) if p is not None
        )
        req = requests[at]
        coalesce_key = self._coalesce_key(req) if lane_id is not None else None
        key = req.idempotency_key
        payload, refs_text = _json(req.payload), _json(list(req.refs)) if req.refs else "[]"
        _refuse_surrogates(payload, refs_text, description, key or "", coalesce_key or "")
        drawn = self.sql.all(
            cur,
            "insert_item",
            client_id=client_id,
            instruction=req.instruction,
            blocking=int(blocking),
            connection_id=req.connection_id,
            lane_id=lane_id,
            payload=payload,
            refs=refs_text,
            description=description,
            parent_id=req.parent_id,
            idempotency_key=key,
            now=now,
            run_after=now + req.delay if req.delay > 0 else now,
            coalesce_key=coalesce_key,
        )
        item_id = int(drawn[0][0])
        if req.idempotency_key is not None:
            existing[req.idempotency_key] = item_id
        newest: dict[tuple[int, str], int] = {}
        if lane_id is not None and coalesce_key is not None:
            newest[(lane_id, coalesce_key)] = item_id
        refs = [(ref, item_id) for ref in req.refs]
        self._after_insert(cur, client_id, refs, newest, lanes, now)
        return [
            item_id if n == at else existing[str(r.idempotency_key)] for n, r in enumerate(requests)
        ]

    def _after_insert(
        self,
        cur: Cursor,
        client_id: int,
        refs: list[tuple[str, int]],
        newest: dict[tuple[int, str], int],
        lanes: Counter[int],
        now: float,
    ) -> None:
        """The new items' refs, the queued items they supersede, their lanes' heads."""
        if refs:
            self.sql.execute_many(
                cur,
                "insert_ref",
                [
                    {
                        "ref": ref,
                        "item_id": item_id,
                        "folded": ref.casefold(),
                        "client_id": client_id,
                    }
                    for ref, item_id in refs
                ],
            )
        if lanes:
            lanes.subtract(self._supersede(cur, newest, now))
            self.lanes.update(cur, lanes)

    def _coalesce_key(self, req: Request) -> str | None:
        template = self.instructions[req.instruction].coalesce
        return req.coalesce_key or render_key(template, req.payload)

    def _supersede(
        self, cur: Cursor, newest: dict[tuple[int, str], int], now: float
    ) -> Counter[int]:
        """Queued items that a new item of this batch replaces become `superseded`, pointing
        to their newest replacement; returns how many left each lane."""
        if not newest:
            return Counter()
        batch = dumps([[lane, key, item] for (lane, key), item in newest.items()])
        gone = self.sql.all(cur, "supersede", now=now, batch=batch)
        return Counter(int(lane) for (lane,) in gone)

    def _plan(
        self,
        client_id: int,
        requests: Sequence[Request],
        existing: dict[str, int],
        targets: dict[int, Target],
        internal: bool = False,
    ) -> list[Plan | None]:
        """Mode, lane and description of each request; None where its key is known."""
        plan: list[Plan | None] = []
        keys: set[str] = set()
        cache: dict[tuple[str, int | None], Plan] = {}
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
                resolved = cache[(req.instruction, req.connection_id)] = self.resolve(
                    client_id, req, targets, internal
                )
            plan.append(resolved)
        return plan

    def _known_keys(
        self, cur: Cursor, client_id: int, requests: Sequence[Request]
    ) -> dict[str, int]:
        keys = [r.idempotency_key for r in requests if r.idempotency_key is not None]
        if not keys:
            return {}
        rows = self.sql.all(cur, "known_keys", client_id=client_id, keys=keys)
        return {k: int(i) for k, i in rows}

    def resolve(
        self, client_id: int, req: Request, targets: dict[int, Target], internal: bool = False
    ) -> Plan:
        """Mode, lane and rendered description of a request, or a clear error. `targets`
        holds the request's connection, if it exists (`connections_of`)."""
        instruction = self.instructions[req.instruction]
        if instruction.internal and not internal:
            raise InvalidInput(
                f"{req.instruction} is an internal instruction: only Stockyard itself queues"
                " it (notifications go to a client's subscriptions; see docs/notifications.md)"
            )
        values: dict[str, str] = {}
        conn: Target | None = None
        if req.connection_id is not None:
            conn = targets.get(req.connection_id)
            # Another client's connection and a missing one both answer NotFound.
            if conn is None or conn.client_id != client_id:
                raise NotFound(f"no connection {req.connection_id}")
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
