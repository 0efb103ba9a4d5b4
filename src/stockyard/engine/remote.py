"""Remote runners: connections whose non-blocking items a program outside Stockyard runs
(the `agent` beside an ERP behind a firewall), over HTTP (docs/remote-workers.md).

A connection with a remote runner has a row in `remote_runners`. In-process claims never
start its non-blocking items (turns.Limiter learns which connections have one in the
statement that finds limited ones; `next_free_due` ignores them), but run its lane as any
other's. The remote program's session is a worker row (`remote = 1`): `claim` starts due
non-blocking items of that one connection under it, and heartbeats it; its outcomes are
settled by `Claims.settle_items` under the same fence as any worker's (the item still
running under this worker, at this attempt). A session that stops calling is reaped like
any worker (its items go back to the queue, a `lost` attempt each), and stays ended: the
program must start a new one.

The engine knows nothing of HTTP or connectors: the caller names the worker (namespaced
so that a session can never be an in-process worker's id) and checks who may use it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

from stockyard.db import Cursor, Database
from stockyard.engine.models import Job
from stockyard.engine.rows import jobs
from stockyard.engine.store import Sql
from stockyard.engine.turns import Limiter
from stockyard.errors import Conflict, NotFound

# What a session that was reaped (or stopped) is told: its items were released and run
# again under a new session.
SESSION_ENDED = "session ended: start a new one"
# Items one remote claim may start at most.
MAX_REMOTE_CLAIM = 50


class SessionEnded(Conflict):
    """The remote worker's lease was lost (reaped) or it was stopped: it must start a new
    session under another id."""

    def __init__(self) -> None:
        super().__init__(SESSION_ENDED)


class RunnerDisabled(Conflict):
    """The connection was disabled (the operator's stop): its remote runner is handed
    nothing until it is enabled again."""

    def __init__(self, connection_id: int) -> None:
        super().__init__(f"connection {connection_id} is disabled")


class Remote:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.sql = Sql(db)

    def open(self, cur: Cursor, connection_id: int, client_id: int) -> None:
        """The connection's non-blocking items are claimed only by a remote runner (in the
        transaction that creates the connection)."""
        self.sql.execute(
            cur,
            "put_remote_runner",
            connection_id=connection_id,
            client_id=client_id,
            now=time.time(),
        )

    def claim(
        self,
        worker_id: str,
        connection_id: int,
        limit: int,
        host: str,
        holding: Iterable[int] = (),
    ) -> list[Job]:
        """Up to `limit` items for the remote worker `worker_id` (registered on its first
        claim, heartbeat on each): first those already running under it but for the ones
        it says it is `holding` (same attempt: the answer to its claim or its settle was
        lost, and it would never learn of them again), then due non-blocking items of the
        connection started under it, within the connection's limits; their jobs.
        SessionEnded if that worker was reaped or stopped, NotFound if the connection has
        no remote runner, RunnerDisabled if the connection is disabled."""
        limit = min(limit, MAX_REMOTE_CLAIM)
        with self.db.write() as cur:
            self.db.lease_only()
            now = time.time()
            self._live(cur, worker_id, now, host)
            row = self.sql.one(cur, "remote_runner", connection_id=connection_id)
            if row is None:
                raise NotFound(f"connection {connection_id} has no remote runner")
            if row[1]:  # raised inside the transaction: the lease is not extended either
                raise RunnerDisabled(connection_id)
            if limit <= 0:
                return []
            handed = self._held_back(cur, worker_id, limit, holding)
            if len(handed) >= limit:
                return handed
            limiter = Limiter(self.sql, cur, now)
            limiter.admit([connection_id])
            allowed = limiter.cap(connection_id, limit - len(handed))
            if allowed <= 0:
                return handed
            self.sql.execute(
                cur,
                "start_group_items",
                worker_id=worker_id,
                client_id=int(row[0]),
                key=connection_id,
                now=now,
                limit=allowed,
            )
            started = jobs(cur)
            limiter.spend(connection_id, len(started))
            limiter.flush()
            return handed + started

    def _held_back(
        self, cur: Cursor, worker_id: str, limit: int, holding: Iterable[int]
    ) -> list[Job]:
        """Up to `limit` of the items running under the worker but those it is holding,
        oldest first. At most len(holding) of the rows read are left out, so reading that
        many more than `limit` finds every one there is to hand back."""
        keep = {int(i) for i in holding}
        self.sql.execute(cur, "running_under", worker_id=worker_id, limit=limit + len(keep))
        held = sorted((j for j in jobs(cur) if j.id not in keep), key=lambda j: j.id)
        return held[:limit]

    def note_message(self, connection_id: int, message_id: str, window: float) -> bool:
        """Whether this is the first request of the connection's remote runner with this
        message id in the last `window` seconds (the time its signature can be replayed
        in); noted either way. Older ids are forgotten in the same transaction."""
        with self.db.write() as cur:
            now = time.time()
            self.sql.execute(cur, "forget_remote_messages", cutoff=now - window)
            row = self.sql.one(
                cur,
                "note_remote_message",
                connection_id=connection_id,
                message_id=message_id,
                now=now,
            )
            return row is not None

    def heartbeat(self, worker_id: str) -> None:
        """Extend the remote worker's lease; SessionEnded if it was reaped or stopped, or
        never claimed (a session starts with a claim)."""
        with self.db.write() as cur:
            row = self.sql.one(cur, "remote_worker", worker_id=worker_id)
            if row is None or row[0] is not None or not row[1]:
                raise SessionEnded()
            self.sql.execute(cur, "heartbeat", now=time.time(), id=worker_id)

    def held(self, worker_id: str, item_ids: Sequence[int]) -> list[Job]:
        """Those of these items that run under the remote worker now, as jobs (none under an
        in-process worker, whose id can look like a session's)."""
        ids = sorted({int(i) for i in item_ids})
        if not ids:
            return []
        with self.db.read() as cur:
            self.sql.execute(cur, "held_jobs", ids=ids, worker_id=worker_id)
            return jobs(cur)

    def _live(self, cur: Cursor, worker_id: str, now: float, host: str) -> None:
        """Register the remote worker, or extend its lease; SessionEnded if it ended.
        Its row is locked first, as a claim does, so a reap cannot slip in between."""
        row = self.sql.one(cur, "remote_worker", worker_id=worker_id)
        if row is None:
            self.sql.execute(cur, "register_remote_worker", id=worker_id, hostname=host, now=now)
        elif row[0] is not None or not row[1]:
            raise SessionEnded()
        else:
            self.sql.execute(cur, "heartbeat", now=now, id=worker_id)
