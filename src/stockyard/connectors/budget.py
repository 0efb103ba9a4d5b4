"""A metered API's budget shared by every worker of one connection.

Some remote APIs meter a whole account rather than a request stream: Shopify's query-cost
bucket is per app and shop, so four workers of one shop's connection, in several
processes or on several hosts, empty it four times as fast as each of them thinks. A
`SharedBudget` keeps the bucket in one database row per connection (`connection_budgets`)
that every worker spends from and reports to:

- `take(cost, max_wait)`: one atomic statement takes the points if the bucket, refilled
  to now, covers them, or will within `max_wait` seconds (the points are then promised to
  this worker, which waits `Grant.wait` and sends: no second check, so no race to lose
  and nothing to spin on). Otherwise nothing is taken and `Refusal.retry_after` says
  when the points will be there. A refused take leaves a claim (its cost, for
  `CLAIM_HOLD` seconds): smaller takes leave that much in the bucket meanwhile, so a
  large query is not starved by a stream of small ones; granted, it clears the claim.
- `report(...)`: after each answer, what the API reported is the truth, less the points
  other workers took after this request was sent (they are not in the answer yet).

Clock: the database's, read in each take's and report's own transaction: one clock for
every worker of every host, so no host's skew can freeze the bucket nor refill a second
twice. (Workers' wall clocks could not be told apart: `at` ahead of a taker's clock may be
the writer's clock ahead or the taker's behind.) `at` (when the row's level was true)
never goes back. What the client computes from a take (`Grant.wait`,
`Refusal.retry_after`) are durations: the worker's own clock measures them well enough.

The projection is an estimate between answers; the API's report corrects it. A budget is
bound to (database, client, connection) by the connector registry; a connector built
without one (tests, a lone script) paces by itself as before.

The registry offers the budget while it builds a connector (`offering`); the connector's
client picks it up (`offered`). That keeps the offer generic (any metered API's client
may take it) without a parameter every connector would have to pass along.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from stockyard.db import Database, Store, load_queries

# When a budget reports that it restores nothing, a retry in a minute (as the Shopify
# client does for a THROTTLED answer without figures) rather than never.
NO_RESTORE_RETRY = 60.0
# A refused take's claim lasts this long past its latest refusal (seconds): longer than
# the engine's retries of the claimant usually take; a claim nobody comes back for only
# costs smaller takes headroom, never their rate.
CLAIM_HOLD = 600.0


@dataclass(frozen=True)
class Grant:
    """Points taken: send after `wait` seconds. `mark` is the budget's running total
    right after the take, to hand back with the answer's report."""

    wait: float
    mark: float


@dataclass(frozen=True)
class Refusal:
    """Points not taken: the bucket holds `capacity` and will cover the cost after
    `retry_after` seconds."""

    retry_after: float
    capacity: float


class _Sql(Store):
    queries = load_queries(__package__, "budget.sql")
    named_rows = False


class SharedBudget:
    def __init__(
        self,
        db: Database,
        client_id: int,
        connection_id: int,
        clock: Callable[[], float] | None = None,
    ) -> None:
        # `clock` replaces the database's for tests that drive time; production gives none.
        self._sql = _Sql(db)
        self._db = db
        self.client_id = client_id
        self.connection_id = connection_id
        self.clock = clock

    def _key(self) -> dict[str, int]:
        return {"client_id": self.client_id, "connection_id": self.connection_id}

    def _now(self, cur: Any) -> float:
        if self.clock is not None:
            return self.clock()
        return float(self._sql.value(cur, "clock"))

    def take(self, cost: float, max_wait: float) -> Grant | Refusal | None:
        """Take `cost` points (see the module); None while the API never reported."""
        with self._db.write() as cur:
            now = self._now(cur)
            times = {"now": now, "hold": CLAIM_HOLD}
            row = self._sql.one(
                cur, "take_budget", cost=cost, max_wait=max_wait, **times, **self._key()
            )
            if row is not None:
                available, rate, spent = row
                wait = -available / rate if available < 0 and rate > 0 else 0.0
                return Grant(wait, float(spent))
            known = self._sql.one(cur, "claim_budget", cost=cost, **times, **self._key())
        if known is None:
            return None
        return _refusal(cost, now, *known)

    def report(
        self, capacity: float, available: float, restore_rate: float, mark: float | None
    ) -> None:
        """What an answer reported; `mark` is the Grant's that sent the request (None if
        it took nothing)."""
        # Stamped now, when the answer is in: the API measured its bucket earlier, so the
        # projection from here on under-counts its refill a little, never over-counts it.
        with self._db.write() as cur:
            now = self._now(cur)
            self._sql.execute(
                cur,
                "report_budget",
                capacity=capacity,
                available=available,
                restore_rate=restore_rate,
                now=now,
                since=mark,
                **self._key(),
            )


def _refusal(
    cost: float,
    now: float,
    capacity: float,
    available: float,
    rate: float,
    at: float,
    claim: float,
    claim_until: float,
) -> Refusal:
    """When `cost` will fit the budget as the refusal left it."""
    level = min(capacity, available + max(0.0, now - at) * rate)
    held = 0.0
    if claim > cost and now < claim_until:
        held = min(claim, capacity - cost)
    # At least a point short: on PostgreSQL another worker's report may have refilled
    # the row between the two statements, and a zero retry-after would be a spin.
    missing = max(cost + held - level, 1.0)
    if rate <= 0:
        return Refusal(NO_RESTORE_RETRY, float(capacity))
    # A `now` behind `at` (read before waiting for the row) refills nothing until past it.
    return Refusal(max(0.0, at - now) + missing / rate, float(capacity))


_offered: contextvars.ContextVar[SharedBudget | None] = contextvars.ContextVar(
    "stockyard_shared_budget", default=None
)


@contextmanager
def offering(budget: SharedBudget | None) -> Iterator[None]:
    """While a connector is built: its client may take `budget` (`offered()`)."""
    token = _offered.set(budget)
    try:
        yield
    finally:
        _offered.reset(token)


def offered() -> SharedBudget | None:
    return _offered.get()
