"""The engine's facade: one object over the modules of the queue, each of one concept.

- `enqueue`: planning (mode, lane, description), idempotency keys, coalescing;
- `lanes`: the single keeper of a lane's head (the lane invariant is described there);
- `claims`: claiming, settling under a fence, vetting follow-ups;
- `leases`: workers, heartbeats, reaping;
- `actions`: retry, skip, pause, resume (`Action` knows which statuses each applies to);
- `reads`: lists, counts, item detail, lane views, monitoring, what notifications need;
- `retention`: pruning finished items;
- `rows`: rows to engine types, by column name.

Callers use `Queue`; its methods are the engine's API.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from typing import Any

from stockyard.db import Database
from stockyard.engine import retention
from stockyard.engine.actions import RETRY, SKIP, Action, Actions
from stockyard.engine.claims import Claims
from stockyard.engine.enqueue import Enqueuer
from stockyard.engine.instructions import Instructions, LaneKind
from stockyard.engine.lanes import Lanes
from stockyard.engine.leases import Leases
from stockyard.engine.models import (
    CONNECTION_KINDS,
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
from stockyard.engine.reads import Reads, StoppedLane
from stockyard.engine.wakeup import Wakeup
from stockyard.errors import InvalidInput, NotFound

SAMPLE_EVERY = 60.0  # seconds between the dashboard's samples
SAMPLES_KEPT = 7 * 86400.0
# Connections are cached per process; a change made elsewhere is seen within this.
CONNECTION_TTL = 10.0


class Queue:
    """The queue engine's API; the service layer, the worker and the flows call it."""

    def __init__(
        self, db: Database, instructions: Instructions, wakeup: Wakeup | None = None
    ) -> None:
        self.db = db
        self.instructions = instructions
        self.wakeup = wakeup or Wakeup()
        self._connections: dict[int, tuple[Connection, float]] = {}
        self._lanes = Lanes(db)
        self._reads = Reads(db)
        self._enqueuer = Enqueuer(db, instructions, self._lanes, self.wakeup)
        self._claims = Claims(db, instructions, self._lanes, self._enqueuer, self.wakeup)
        self._leases = Leases(db, self._lanes, self.wakeup)
        self._actions = Actions(db, self._lanes, self._reads, self.wakeup)

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
                self._lanes.open(cur, conn_id, client_id)
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
        return self._enqueuer.enqueue(client_id, requests, internal=False)

    def enqueue_internal(self, client_id: int, requests: Sequence[Request]) -> list[int]:
        """Like `enqueue`, and may also create internal instructions. Only Stockyard's own
        notification runner calls this."""
        return self._enqueuer.enqueue(client_id, requests, internal=True)

    # ------------------------------------------------------------------- claim, settle

    def claim(self, worker_id: str, limit: int) -> list[Job]:
        return self._claims.claim(worker_id, limit)

    def settle(
        self, worker_id: str, outcomes: Sequence[Outcome], claim_limit: int = 0
    ) -> tuple[list[Job], int]:
        """Record outcomes, enqueue follow-ups and claim more work, in one transaction;
        the newly claimed jobs and how many outcomes were refused (lease lost)."""
        return self._claims.settle(worker_id, outcomes, claim_limit)

    def next_due(self) -> float | None:
        """When the earliest queued item may run (None: nothing can run without an operator)."""
        return self._lanes.next_due()

    # ------------------------------------------------------------------ workers, leases

    def register_worker(self, worker_id: str, hostname: str, pid: int) -> None:
        self._leases.register_worker(worker_id, hostname, pid)

    def heartbeat(self, worker_id: str) -> bool:
        """Extend the worker's lease; False if it had already been declared dead."""
        return self._leases.heartbeat(worker_id)

    def stop_worker(self, worker_id: str, reason: str = "stopped") -> int:
        """Mark a worker gone; any item it still held is released to run again."""
        return self._leases.stop_worker(worker_id, reason)

    def release_unknown(self, worker_id: str, known: Iterable[int]) -> int:
        return self._leases.release_unknown(worker_id, known)

    def reap(self, lease_timeout: float) -> int:
        """Release the items of workers whose heartbeat is older than `lease_timeout`."""
        return self._leases.reap(lease_timeout)

    # ---------------------------------------------------------------- operator actions

    def act(self, action: Action, client_id: int, item_ids: Sequence[int], actor: str) -> list[int]:
        """Apply an action to these items; every one must exist and allow it."""
        return self._actions.act(action, client_id, item_ids, actor)

    def act_where(self, action: Action, flt: ItemFilter, actor: str) -> list[int]:
        """Apply an action to every item the filter matches that allows it."""
        return self._actions.act_where(action, flt, actor)

    def retry(self, client_id: int, item_ids: Sequence[int], actor: str) -> list[int]:
        """Put failed items back, keeping their id and their place at the head of the lane."""
        return self._actions.act(RETRY, client_id, item_ids, actor)

    def skip(self, client_id: int, item_ids: Sequence[int], actor: str) -> list[int]:
        """Give up on failed or queued items for good; a blocked lane moves on."""
        return self._actions.act(SKIP, client_id, item_ids, actor)

    def retry_where(self, flt: ItemFilter, actor: str) -> list[int]:
        return self._actions.act_where(RETRY, flt, actor)

    def skip_where(self, flt: ItemFilter, actor: str) -> list[int]:
        return self._actions.act_where(SKIP, flt, actor)

    def pause(self, client_id: int, lane_id: int, actor: str, reason: str = "") -> None:
        self._actions.pause(client_id, lane_id, actor, reason)

    def resume(self, client_id: int, lane_id: int, actor: str) -> None:
        self._actions.resume(client_id, lane_id, actor)

    # --------------------------------------------------------------------------- reads

    def count(self, flt: ItemFilter) -> int:
        return self._reads.count(flt)

    def count_by(
        self, flt: ItemFilter, columns: Sequence[str]
    ) -> list[tuple[tuple[Any, ...], int]]:
        """Matching items per value of `columns`, largest group first."""
        return self._reads.count_by(flt, columns)

    def list_items(self, flt: ItemFilter, limit: int = 50, before: int | None = None) -> list[Item]:
        """Newest first; pass the last id seen as `before` for the next page."""
        return self._reads.list_items(flt, limit, before)

    def get(self, client_id: int, item_id: int) -> Item:
        return self._reads.get(client_id, item_id)

    def detail(self, client_id: int, item_id: int) -> ItemDetail:
        return self._reads.detail(client_id, item_id)

    def statuses(self, item_ids: Iterable[int]) -> dict[int, str]:
        return self._reads.statuses(item_ids)

    def lanes(self, client_id: int) -> list[LaneView]:
        """Every lane of the client: blocked first, then paused, then by waiting work."""
        return self._reads.lanes(client_id)

    def lanes_by_id(self, lane_ids: Iterable[int]) -> dict[int, LaneView]:
        return self._reads.lanes_by_id(lane_ids)

    def stopped_lanes(self) -> list[StoppedLane]:
        """Every blocked lane with its failed head (notifications)."""
        return self._reads.stopped_lanes()

    def lane_audit(self, client_id: int, lane_id: int) -> list[AuditEntry]:
        return self._reads.lane_audit(client_id, lane_id)

    def failures_by(
        self, client_id: int
    ) -> tuple[list[tuple[str, int]], list[tuple[int | None, int]]]:
        """Failed items by instruction and by connection."""
        return self._reads.failures_by(client_id)

    def stats(self) -> QueueStats:
        """Unfinished items by status and instruction, lanes by state, live workers."""
        return self._reads.stats()

    # ------------------------------------------------------------------------- retention

    def prune(self, older_than: float, batch: int = 1000) -> int:
        """Delete finished items finished more than `older_than` seconds ago."""
        return retention.prune(self.db, older_than, batch)

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


def _connection(r: Sequence[Any]) -> Connection:
    return Connection(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6], r[7])
