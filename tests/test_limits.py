"""Per-connection limits: a concurrency cap and a rate, held across workers; items beyond
them wait. Every check is an upper bound the queue guarantees, never a timing."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest

from stockyard.engine import ItemFilter, Limits, Outcome, Queue, Request
from stockyard.engine.handlers import Context, HandlerRegistry
from stockyard.engine.worker import Worker, WorkerSettings
from stockyard.errors import InvalidInput, NotFound
from stockyard.tenancy import Tenancy
from tests.support.queues import UrlMaker, make_queue


def _connection(queue: Queue, client: int, name: str) -> int:
    return Tenancy(queue.db).add_connection(client, "channel", "demo", name).id


@pytest.mark.parametrize(
    "limits",
    [
        {"max_running": 0},
        {"max_running": -1},
        {"max_running": 2.5},
        {"max_running": True},
        {"max_running": 10**9},
        {"per_second": 0},
        {"per_second": float("nan")},
        {"per_second": float("inf")},
        {"per_second": "20"},
        {"burst": 0, "per_second": 10.0},
        {"burst": 3},
    ],
)
def test_nonsense_limits_are_refused_with_the_field_named(limits: dict[str, object]) -> None:
    with pytest.raises(InvalidInput) as refused:
        Limits(**limits)  # type: ignore[arg-type]
    assert next(iter(limits)) in str(refused.value)


def test_limits_are_per_client(queue: Queue, client_id: int) -> None:
    other = Tenancy(queue.db).ensure_client("other")
    theirs = _connection(queue, other, "Theirs")
    with pytest.raises(NotFound):
        queue.set_limits(client_id, theirs, Limits(max_running=1))
    ours = _connection(queue, client_id, "Ours")
    queue.set_limits(client_id, ours, Limits(max_running=3, per_second=2.5, burst=4))
    (view,) = [v for v in queue.lanes(client_id) if v.lane_id == ours]
    assert view.limits == Limits(max_running=3, per_second=2.5, burst=4)
    assert [v.limits for v in queue.lanes(other)] == [Limits()]


def test_claims_of_several_workers_never_exceed_the_cap(new_url: UrlMaker) -> None:
    """Three workers (each its own database connection) claim in turn and never settle:
    together they hold exactly the cap of the limited connection, and everything of the
    unlimited one."""
    url = new_url()
    queues = [make_queue(url, migrate=(n == 0)) for n in range(3)]
    client = Tenancy(queues[0].db).client_id("default")
    capped, free = _connection(queues[0], client, "Capped"), _connection(queues[0], client, "Free")
    queues[0].set_limits(client, capped, Limits(max_running=4))
    queues[0].enqueue(client, [Request("sync_order", {}, capped) for _ in range(30)])
    queues[0].enqueue(client, [Request("sync_order", {}, free) for _ in range(30)])
    held: Counter[int | None] = Counter()
    for round_ in range(3):
        for n, q in enumerate(queues):
            worker = f"w{n}"
            if round_ == 0:
                q.register_worker(worker, "test", 0)
            held.update(j.connection_id for j in q.claim(worker, 7))
    assert held[capped] == 4
    assert held[free] == 30
    for q in queues:
        q.db.close()


def test_a_settled_item_frees_its_place_for_the_next(queue: Queue, client_id: int) -> None:
    capped = _connection(queue, client_id, "Capped")
    queue.set_limits(client_id, capped, Limits(max_running=2))
    queue.enqueue(client_id, [Request("sync_order", {}, capped) for _ in range(5)])
    queue.register_worker("w", "test", 0)
    first = queue.claim("w", 10)
    assert len(first) == 2
    assert queue.claim("w", 10) == []
    more, _ = queue.settle("w", [Outcome(first[0], "done", time.time())], claim_limit=10)
    assert len(more) == 1


def test_a_lane_head_counts_towards_its_connections_cap(queue: Queue, client_id: int) -> None:
    """A source's lane and its non-blocking items share the connection's cap."""
    source = _connection(queue, client_id, "ERP")
    queue.set_limits(client_id, source, Limits(max_running=2))
    queue.enqueue(client_id, [Request("update_variant", {}, source) for _ in range(3)])
    queue.enqueue(client_id, [Request("sync_order", {}, source) for _ in range(3)])
    queue.register_worker("w", "test", 0)
    jobs = queue.claim("w", 10)
    assert len(jobs) == 2
    assert sum(1 for j in jobs if j.lane_id == source) == 1  # the head, once


def test_starts_keep_to_the_rate(queue: Queue, client_id: int) -> None:
    """Claiming as fast as possible for a while: however the claims fall, the starts of
    the limited connection never outrun its bucket (burst, then per_second)."""
    rate, burst = 40.0, 3
    limited = _connection(queue, client_id, "Rated")
    queue.set_limits(client_id, limited, Limits(per_second=rate, burst=burst))
    queue.enqueue(client_id, [Request("sync_order", {}, limited) for _ in range(200)])
    queue.register_worker("w", "test", 0)
    starts: list[float] = []
    deadline = time.monotonic() + 0.4
    while time.monotonic() < deadline:
        jobs = queue.claim("w", 50)
        starts += [j.started_at for j in jobs]
        queue.settle("w", [Outcome(j, "done", time.time()) for j in jobs])
    assert starts, "the bucket starts full"
    starts.sort()
    for i, first in enumerate(starts):
        for j in range(i + 1, len(starts)):
            # starts i..j (j - i + 1 of them) need burst tokens plus the refill in between
            assert j - i + 1 <= burst + (starts[j] - first) * rate + 1e-6


def test_workers_never_run_more_than_the_cap_at_once(new_url: UrlMaker) -> None:
    """Two real workers on one database: the handlers of the capped connection never
    overlap more than its cap, and every item still runs."""
    url = new_url()
    queues = [make_queue(url, migrate=(n == 0)) for n in range(2)]
    client = Tenancy(queues[0].db).client_id("default")
    capped, free = _connection(queues[0], client, "Capped"), _connection(queues[0], client, "Free")
    queues[0].set_limits(client, capped, Limits(max_running=3))
    queues[0].enqueue(client, [Request("sync_order", {}, capped) for _ in range(24)])
    queues[0].enqueue(client, [Request("sync_order", {}, free) for _ in range(24)])
    running: Counter[int | None] = Counter()
    most: Counter[int | None] = Counter()

    async def handler(ctx: Context) -> None:
        conn = ctx.job.connection_id
        running[conn] += 1
        most[conn] = max(most[conn], running[conn])
        try:
            # Hold the place until every unlimited item has started (so they overlap),
            # or briefly for the capped ones; no assertion depends on how long.
            await asyncio.sleep(0.05 if conn == capped else 0.2)
        finally:
            running[conn] -= 1

    async def both() -> None:
        workers = []
        for q in queues:
            registry = HandlerRegistry()
            registry.register("sync_order", handler)
            settings = WorkerSettings(concurrency=50, poll_interval=0.01)
            workers.append(Worker(q, registry, settings, connection=Tenancy(q.db).connection))
        await asyncio.gather(*(w.run(stop_when_idle=True) for w in workers))

    asyncio.run(both())
    assert 1 <= most[capped] <= 3
    assert queues[0].count(ItemFilter(client, statuses=("done",))) == 48
    for q in queues:
        q.db.close()


def test_a_connection_without_a_lane_is_capped_too(queue: Queue, client_id: int) -> None:
    warehouse = (
        Tenancy(queue.db)
        .add_connection(client_id, "fulfillment", "demo", "Warehouse", limits=Limits(max_running=2))
        .id
    )
    assert queue.limits(client_id, [warehouse]) == {warehouse: Limits(max_running=2)}
    queue.enqueue(client_id, [Request("sync_fulfillment", {}, warehouse) for _ in range(5)])
    queue.register_worker("w", "test", 0)
    assert len(queue.claim("w", 10)) == 2
    queue.set_limits(client_id, warehouse, Limits())  # no limits: the rest may start
    assert queue.limits(client_id, [warehouse]) == {}
    assert len(queue.claim("w", 10)) == 3
