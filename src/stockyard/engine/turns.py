"""Whose work a claim takes: turns between clients, then between a client's connections,
within each connection's limits.

Claiming in one global order let one merchant's million items make every other merchant
wait behind them. Instead a claim:

1. lists the clients with due work, starting after the client its worker served last
   (at most MAX_CLIENTS a claim; the rest come first next time), one index probe each;
2. gives each client an equal share of the room, and within a client its connections
   (its items without a connection are one more) an equal share of the client's, oldest
   items first in each; what one cannot use goes round again to those that filled theirs;
3. never gives a limited connection more than its limits allow now: the rows of limited
   connections are locked for the claim (SKIP LOCKED: one held by another claim waits for
   the next), their running items counted on every worker, their rate bucket refilled and
   spent in the same transaction, so the limits hold across workers and machines.

Lanes take the same turns between clients (a lane's head is one item; within a client,
lanes go by how long they have been ready). Each worker first takes the lanes of its
share (`lanes.Place`); a lane ready for longer than LANE_HANDOFF goes to anyone.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from stockyard.db import Cursor
from stockyard.engine.lanes import LIMITED_WAIT, Lanes, Place
from stockyard.engine.models import Job
from stockyard.engine.rows import dumps, jobs
from stockyard.engine.store import Sql

# Clients served by one claim; beyond this the next claim continues where it stopped.
MAX_CLIENTS = 32
# Connections of one client served by one claim.
MAX_GROUPS = 16
_BEFORE_ALL = -1  # before every id (ids are positive; connection key 0: no connection)


@dataclass(slots=True)
class Turns:
    """Where a worker's next claim starts: after the client it served last, and within
    each client after the connection it served last."""

    lane_client: int = _BEFORE_ALL
    free_client: int = _BEFORE_ALL
    groups: dict[int, int] = field(default_factory=dict)
    place: Place = field(default_factory=Place)


@dataclass(slots=True)
class _Bucket:
    cap: int  # items this claim may still start
    tokens: float | None  # the rate bucket after refilling; None: no rate limit
    spent: int = 0


class Limiter:
    """The limited connections a claim touches: locked, counted and spent once each."""

    def __init__(self, sql: Sql, cur: Cursor, now: float) -> None:
        self.sql, self.cur, self.now = sql, cur, now
        self._known: set[int] = set()
        self._buckets: dict[int, _Bucket] = {}
        # Connections with a remote runner: their non-blocking items are not for this
        # claim (Queue.claim_remote takes them); their lanes are.
        self.remote: set[int] = set()

    def admit(self, connection_ids: Sequence[int]) -> None:
        """Find which of these connections are limited, lock them and work out how many
        items each may start now. A limited one another claim holds may start none. The
        same statement says which have a remote runner."""
        new = sorted({c for c in connection_ids if c > 0} - self._known)
        if not new:
            return
        self._known.update(new)
        rows = self.sql.all(self.cur, "limited_connections", ids=new)
        limited = [int(r[0]) for r in rows if not r[1]]
        self.remote.update(int(r[0]) for r in rows if r[1])
        for lane in limited:
            self._buckets[lane] = _Bucket(0, None)  # until locked below
        if limited:
            self._lock(limited)

    def _lock(self, limited: list[int]) -> None:
        rows = self.sql.all(self.cur, "lock_limits", ids=limited)
        locked = [int(r[0]) for r in rows]
        counts = self.sql.all(self.cur, "running_of", ids=locked) if locked else []
        running: dict[int, int] = {int(r[0]): int(r[1]) for r in counts}
        for lane, max_running, per_second, burst, tokens, tokens_at in rows:
            cap = math.inf if max_running is None else max_running - running.get(lane, 0)
            bucket = None
            if per_second is not None:
                size = float(burst or 1)
                elapsed = max(self.now - (tokens_at or 0.0), 0.0)
                bucket = size if tokens is None else min(size, tokens + elapsed * per_second)
                cap = min(cap, math.floor(bucket))
            self._buckets[int(lane)] = _Bucket(int(max(min(cap, 2**31), 0)), bucket)

    def cap(self, connection_id: int, wanted: int) -> int:
        """How many of `wanted` items of the connection the claim may start."""
        bucket = self._buckets.get(connection_id)
        return wanted if bucket is None else min(wanted, bucket.cap)

    def spend(self, connection_id: int, started: int) -> None:
        bucket = self._buckets.get(connection_id)
        if bucket is not None and started:
            bucket.cap -= started
            bucket.spent += started

    def flush(self) -> None:
        """Write back what the claim took from each rate bucket."""
        spent = [
            [lane, b.tokens - b.spent]
            for lane, b in self._buckets.items()
            if b.spent and b.tokens is not None
        ]
        if spent:
            self.sql.execute(self.cur, "spend_tokens", now=self.now, batch=dumps(spent))


def split(room: int, ways: int) -> list[int]:
    """`room` in `ways` shares as equal as whole numbers allow, larger ones first."""
    base, extra = divmod(room, ways)
    return [base + (i < extra) for i in range(ways)]


@dataclass(slots=True)
class Tally:
    """What each taker was given so far in a claim, and which have no more."""

    given: dict[int, int] = field(default_factory=dict)
    empty: set[int] = field(default_factory=set)


def fill(
    takers: Sequence[int],
    room: int,
    take: Callable[[int, int], int],
    tally: Tally | None = None,
) -> int:
    """Progressive filling (max-min fairness): offer every taker an equal share of the
    room; one that takes less than offered has no more and leaves; what it left is shared
    again among the rest, the least served first, until the room is used or nobody is
    left. `take(taker, share)` returns how many it took. Returns how many were taken.
    `tally` carries what earlier fills of the same claim gave, so they add up fairly."""
    tally = Tally() if tally is None else tally
    given = tally.given
    pending = [t for t in takers if t not in tally.empty]
    left = room
    while left > 0 and pending:
        # Shares differ by one at most; the larger ones go to the least served so far, so
        # no two takers that still have work end more than one apart.
        pending.sort(key=lambda t: given.get(t, 0))
        still = []
        for taker, share in zip(pending, split(left, len(pending)), strict=True):
            if share == 0:
                still.append(taker)  # offered nothing this round: not known to be empty
                continue
            took = take(taker, share)
            given[taker] = given.get(taker, 0) + took
            left -= took
            if took == share:
                still.append(taker)
            else:
                tally.empty.add(taker)
        if len(still) == len(pending) and left > 0:
            break  # cannot happen (the shares add up to what was left); never loop forever
        pending = still
    return room - left


def resume_after(keys: Sequence[int], tally: Tally, most: int, current: int) -> int:
    """Where the next claim starts: after the last key that had a turn, when not all had
    one or the listing stopped at `most` (more may wait beyond); else after the first, so
    each key takes its turn at the front, where rounded-up shares fall."""
    served = [k for k in keys if k in tally.given]
    if not served:
        return current
    if len(served) == len(keys) and len(keys) < most:
        return keys[0]
    return served[-1]


def rotation(probe: Callable[[int], int | None], after: int, most: int) -> list[int]:
    """Up to `most` keys in increasing order from just after `after`, wrapping round once:
    one probe of an index per key (plus one that finds the end)."""
    found = _walk(probe, after, most, stop=None)
    if after != _BEFORE_ALL:
        found += _walk(probe, _BEFORE_ALL, most - len(found), stop=after)
    return found


def _walk(probe: Callable[[int], int | None], key: int, most: int, stop: int | None) -> list[int]:
    found: list[int] = []
    while len(found) < most:
        following = probe(key)
        if following is None or (stop is not None and following > stop):
            break
        found.append(following)
        if following == stop:
            break  # wrapped round to where it started: nothing new beyond
        key = following
    return found


class Planner:
    """Takes a claim's items in turns (module docstring); the caller starts them."""

    def __init__(self, sql: Sql, lanes: Lanes) -> None:
        self.sql = sql
        self.lanes = lanes

    # --------------------------------------------------------------------------- lanes

    def lane_heads(
        self, cur: Cursor, turns: Turns, room: int, now: float, limiter: Limiter
    ) -> list[int]:
        """Up to `room` heads of due lanes, in turns between clients; their lanes stop
        being ready (the caller starts the heads)."""
        if room <= 0:
            return []
        heads: list[int] = []
        clients = rotation(self._prober(cur, "next_lane_client"), turns.lane_client, MAX_CLIENTS)
        tally = Tally()

        def take(client: int, share: int) -> int:
            got = self._client_heads(cur, turns, client, share, now, limiter)
            heads.extend(got)
            return len(got)

        fill(clients, room, take, tally)
        turns.lane_client = resume_after(clients, tally, MAX_CLIENTS, turns.lane_client)
        return heads

    def _client_heads(
        self, cur: Cursor, turns: Turns, client: int, share: int, now: float, limiter: Limiter
    ) -> list[int]:
        """Up to `share` heads of the client's due lanes. A lane whose connection is at
        its limits is put off (LIMITED_WAIT) and does not count: its lane's turn goes on."""
        due = self.lanes.due_for_client(cur, client, share, now, turns.place)
        limiter.admit([lane for lane, _ in due])
        taken, deferred = [], []
        for lane, head in due:
            if limiter.cap(lane, 1) == 1:
                limiter.spend(lane, 1)  # a lane's connection is the lane: its head is one
                taken.append((lane, head))
            else:
                deferred.append(lane)
        self.lanes.take(cur, [lane for lane, _ in taken])
        self.lanes.defer(cur, deferred, now + LIMITED_WAIT)
        # Deferred lanes took none of the share, but the client is not out of lanes: the
        # next round offers it more (returning fewer than offered would end its turn).
        if deferred and len(taken) < share:
            return [head for _, head in taken] + self._client_heads(
                cur, turns, client, share - len(taken), now, limiter
            )
        return [head for _, head in taken]

    # ------------------------------------------------------------------ non-blocking

    def free_items(
        self, cur: Cursor, worker_id: str, turns: Turns, room: int, now: float, limiter: Limiter
    ) -> list[Job]:
        """Start up to `room` non-blocking items, in turns; their jobs."""
        if room <= 0:
            return []

        # Every client with queued items is listed (up to MAX_CLIENTS), not just as many
        # as the room: one whose items are all due later takes nothing, and the room goes
        # on to the next.
        clients = rotation(self._prober(cur, "next_free_client"), turns.free_client, MAX_CLIENTS)
        taken: list[Job] = []
        tally = Tally()
        tallies = {c: Tally() for c in clients}  # per client, its connections' so far
        groups: dict[int, list[int]] = {}

        def take(client: int, share: int) -> int:
            if client not in groups:  # listed when the client first has a turn
                groups[client] = self._groups(cur, turns, client)
                limiter.admit(groups[client])
            got = self._take_groups(
                cur, worker_id, client, groups[client], share, now, limiter, tallies[client]
            )
            taken.extend(got)
            return len(got)

        fill(clients, room, take, tally)
        turns.free_client = resume_after(clients, tally, MAX_CLIENTS, turns.free_client)
        for client, listed in groups.items():
            start = turns.groups.get(client, _BEFORE_ALL)
            turns.groups[client] = resume_after(listed, tallies[client], MAX_GROUPS, start)
        return taken

    def next_free_due(self, cur: Cursor) -> float | None:
        """When the earliest queued non-blocking item may run: one probe per client and
        connection with queued items (only an idle worker asks, to know whether to stop).
        A connection with a remote runner has none for in-process workers (group_due)."""
        due: float | None = None
        every = 2**31
        for client in rotation(self._prober(cur, "next_free_client"), _BEFORE_ALL, every):
            groups = self._prober(cur, "next_free_group", client_id=client)
            for group in rotation(groups, _BEFORE_ALL, every):
                row = self.sql.one(cur, "group_due", client_id=client, key=group)
                if row is not None and (due is None or row[0] < due):
                    due = float(row[0])
        return due

    def _prober(self, cur: Cursor, query: str, **params: int) -> Callable[[int], int | None]:
        """The key after a given one, by one probe of `query` (for `rotation`)."""

        def probe(after: int) -> int | None:
            row = self.sql.one(cur, query, after=after, **params)
            return None if row is None else int(row[0])

        return probe

    def _groups(self, cur: Cursor, turns: Turns, client: int) -> list[int]:
        """The client's connections with queued items (0: none), from after the one
        served last."""
        start = turns.groups.get(client, _BEFORE_ALL)
        return rotation(self._prober(cur, "next_free_group", client_id=client), start, MAX_GROUPS)

    def _take_groups(
        self,
        cur: Cursor,
        worker_id: str,
        client: int,
        groups: list[int],
        share: int,
        now: float,
        limiter: Limiter,
        tally: Tally,
    ) -> list[Job]:
        """Start up to `share` items of the client, shared fairly between its groups."""
        taken: list[Job] = []

        def take(group: int, part: int) -> int:
            allowed = 0 if group in limiter.remote else limiter.cap(group, part)
            if allowed <= 0:
                return 0
            self.sql.execute(
                cur,
                "start_group_items",
                worker_id=worker_id,
                client_id=client,
                key=group,
                now=now,
                limit=allowed,
            )
            started = jobs(cur)
            limiter.spend(group, len(started))
            taken.extend(started)
            return len(started)

        fill(groups, share, take, tally)
        return taken
