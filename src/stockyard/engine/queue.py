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

from collections.abc import Iterable, Sequence
from typing import Any

from stockyard.db import Database
from stockyard.engine import limits as limits_store
from stockyard.engine import retention
from stockyard.engine.actions import RETRY, SKIP, Action, Actions
from stockyard.engine.claims import Claims
from stockyard.engine.enqueue import Enqueuer
from stockyard.engine.instructions import Instructions
from stockyard.engine.lanes import Lanes
from stockyard.engine.leases import Leases
from stockyard.engine.models import (
    AuditEntry,
    Item,
    ItemDetail,
    ItemFilter,
    Job,
    LaneView,
    Limits,
    Outcome,
    QueueStats,
    Request,
    UnfinishedCounts,
)
from stockyard.engine.reads import Reads, StoppedLane
from stockyard.engine.remote import Remote
from stockyard.engine.store import Sql
from stockyard.engine.wakeup import Wakeup


class Queue:
    """The queue engine's API; the service layer, the worker and the flows call it."""

    def __init__(
        self, db: Database, instructions: Instructions, wakeup: Wakeup | None = None
    ) -> None:
        self.db = db
        self.instructions = instructions
        self.wakeup = wakeup or Wakeup()
        self._lanes = Lanes(db)
        self._sql = Sql(db)
        self._reads = Reads(db)
        self._enqueuer = Enqueuer(db, instructions, self._lanes, self.wakeup)
        self._claims = Claims(db, instructions, self._lanes, self._enqueuer, self.wakeup)
        self._leases = Leases(db, self._lanes, self.wakeup)
        self._actions = Actions(db, self._lanes, self._reads, self.wakeup)
        self._remote = Remote(db)

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
        return self._claims.next_due()

    # ------------------------------------------------------------------ remote runners

    def claim_remote(
        self,
        worker_id: str,
        connection_id: int,
        limit: int,
        host: str = "remote",
        holding: Iterable[int] = (),
    ) -> list[Job]:
        """Up to `limit` items of a connection with a remote runner for the remote worker
        `worker_id` (registered on its first claim, its lease extended by each): first
        those it already runs but is not `holding` (the answer to a claim or a settle was
        lost), then due non-blocking items started under it;
        engine.remote.SessionEnded once that worker was reaped."""
        return self._remote.claim(worker_id, connection_id, limit, host, holding)

    def heartbeat_remote(self, worker_id: str) -> None:
        """Extend a remote worker's lease; SessionEnded if it ended (or never claimed)."""
        self._remote.heartbeat(worker_id)

    def note_message(self, connection_id: int, message_id: str, window: float) -> bool:
        """Whether a remote runner's request with this message id is the connection's
        first in `window` seconds (else a replay); forgets older ones."""
        return self._remote.note_message(connection_id, message_id, window)

    def held(self, worker_id: str, item_ids: Sequence[int]) -> list[Job]:
        """Those of these items running under the remote worker now, as jobs (none under
        an in-process worker)."""
        return self._remote.held(worker_id, item_ids)

    def settle_items(self, worker_id: str, outcomes: Sequence[Outcome]) -> list[int]:
        """A remote worker's `settle`, without claiming: the ids of the items whose outcome
        was recorded (the others' leases were lost). Nothing is recorded under a worker
        that is not a live remote one: an in-process worker's id (`{hostname}:{pid}:{hex}`
        on a host named "agent") can look like a session's."""
        return self._claims.settle_items(worker_id, outcomes, remote=True)[1]

    # ------------------------------------------------------------------ workers, leases

    def register_worker(self, worker_id: str, hostname: str, pid: int) -> None:
        live = self._leases.register_worker(worker_id, hostname, pid)
        self._claims.place(worker_id, live)

    def heartbeat(self, worker_id: str) -> bool:
        """Extend the worker's lease; False if it had already been declared dead. Also
        learns the worker's place among the live ones (which lanes it takes first)."""
        alive, live = self._leases.heartbeat(worker_id)
        self._claims.place(worker_id, live)
        return alive

    def stop_worker(self, worker_id: str, reason: str = "stopped") -> int:
        """Mark a worker gone; any item it still held is released to run again."""
        self._claims.forget(worker_id)
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

    def set_limits(self, client_id: int, connection_id: int, limits: Limits) -> None:
        """Limit how hard the workers drive a connection of the client (models.Limits);
        NotFound for another client's. Items beyond the limits wait their turn."""
        with self.db.write() as cur:
            limits_store.put(self._sql, cur, client_id, connection_id, limits)
        self.wakeup.notify()

    def limits(self, client_id: int, connection_ids: Iterable[int]) -> dict[int, Limits]:
        """The limits of these connections of the client; unlimited ones are absent."""
        return limits_store.of(self._sql, self._sql.conn, client_id, connection_ids)

    def pause(self, client_id: int, lane_id: int, actor: str, reason: str = "") -> None:
        self._actions.pause(client_id, lane_id, actor, reason)

    def resume(self, client_id: int, lane_id: int, actor: str) -> None:
        self._actions.resume(client_id, lane_id, actor)

    # --------------------------------------------------------------------------- reads

    def count(self, flt: ItemFilter, cap: int | None = None) -> int:
        """Matching items; with `cap`, at most cap + 1 are counted."""
        return self._reads.count(flt, cap)

    def fingerprint(self, flt: ItemFilter) -> str:
        """Which items match, as a short string: equal for the same set of items."""
        return self._reads.fingerprint(flt)

    def failure_groups(
        self, client_id: int, limit: int, newest: int = 20_000
    ) -> list[tuple[str | None, str, int | None, int, int, int]]:
        """The newest `newest` failed items by (error, instruction, connection), with
        counts and id bounds."""
        return self._reads.failure_groups(client_id, limit, newest)

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

    def backlog_by_client(
        self, finished_from: float, finished_to: float
    ) -> dict[int, tuple[int, int, int]]:
        """Per client: queued items, failed items, items finished in the period."""
        return self._reads.backlog_by_client(finished_from, finished_to)

    def queued_sharing_refs(
        self, client_id: int, refs: Sequence[str], instructions: Sequence[str], limit: int
    ) -> list[tuple[int, int | None, str, str]]:
        """(id, lane, instruction, ref) of queued items holding one of these references."""
        return self._reads.queued_sharing_refs(client_id, refs, instructions, limit)

    def next_to_run(
        self, client_id: int, lane_ids: Sequence[int], per_lane: int, free: int
    ) -> tuple[dict[int, list[Item]], list[Item]]:
        """Queued items in run order: the first of each lane, the first non-blocking."""
        return self._reads.next_to_run(client_id, lane_ids, per_lane, free)

    def summary(self, client_id: int) -> UnfinishedCounts:
        """The client's unfinished items per status and its stopped lanes, exact."""
        return self._reads.summary(client_id)

    def stats(self) -> QueueStats:
        """Unfinished items by status and instruction, lanes by state, live workers."""
        return self._reads.stats()

    # ------------------------------------------------------------------------- retention

    def prune(self, older_than: float, batch: int = 1000) -> int:
        """Delete finished items finished more than `older_than` seconds ago."""
        return retention.prune(self.db, older_than, batch)
