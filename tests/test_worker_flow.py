"""The worker's claimer and settler: claims stay small, and the claimer never runs ahead
of results still waiting to be recorded. Upper bounds only: nothing here is timed."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

from stockyard.engine import ItemFilter, Job, Outcome, Queue, Request
from stockyard.engine.handlers import Context, HandlerRegistry
from stockyard.engine.worker import Worker, WorkerSettings
from stockyard.tenancy import Tenancy
from tests.support.queues import UrlMaker, fresh_queue, make_queue


async def noop(ctx: Context) -> None:
    return None


def test_unrecorded_results_keep_their_place_in_the_concurrency(new_url: UrlMaker) -> None:
    """While the settler cannot record anything, the claimer claims no more than the
    worker's concurrency in all; once it can, everything runs."""
    queue = fresh_queue(new_url)
    client = Tenancy(queue.db).client_id("default")
    queue.enqueue(client, [Request("sync_order", {"n": n}) for n in range(40)])
    gate, entered = threading.Event(), threading.Event()
    settle = queue.settle
    claims: list[int] = []
    claim = queue.claim

    def held_settle(
        worker: str, outcomes: Sequence[Outcome], limit: int = 0
    ) -> tuple[list[Job], int]:
        entered.set()
        gate.wait(30)
        return settle(worker, outcomes, limit)

    def counted_claim(worker: str, limit: int) -> list[Job]:
        jobs = claim(worker, limit)
        claims.append(len(jobs))
        return jobs

    queue.settle = held_settle  # type: ignore[method-assign,assignment]
    queue.claim = counted_claim  # type: ignore[method-assign,assignment]
    registry = HandlerRegistry()
    registry.register("sync_order", noop)
    settings = WorkerSettings(concurrency=6, batch=4, poll_interval=0.01)
    worker = Worker(queue, registry, settings, connection=Tenancy(queue.db).connection)

    async def run() -> None:
        task = asyncio.create_task(worker.run(stop_when_idle=True))
        await asyncio.get_running_loop().run_in_executor(None, entered.wait, 30)
        for _ in range(20):  # let the claimer try to run ahead
            await asyncio.sleep(0.01)
            assert sum(claims) <= 6
            assert queue.count(ItemFilter(client, statuses=("running",))) <= 6
        gate.set()
        await task

    asyncio.run(run())
    assert max(claims) <= 4  # never more than `batch` a claim
    assert queue.count(ItemFilter(client, statuses=("done",))) == 40
    queue.db.close()


def test_a_busy_worker_still_claims_new_work(queue: Queue, client_id: int) -> None:
    """A worker whose results keep coming still claims items queued while it runs, and
    stops when everything is done (the claimer and settler hand over correctly)."""
    queue.enqueue(client_id, [Request("sync_order", {"n": n}) for n in range(300)])
    added = threading.Event()

    async def enqueue_more(ctx: Context) -> None:
        if ctx.payload.get("n") == 150 and not added.is_set():
            added.set()
            ctx.enqueue("sync_order", {"n": "late"})

    registry = HandlerRegistry()
    registry.register("sync_order", enqueue_more)
    settings = WorkerSettings(concurrency=20, batch=8, poll_interval=0.01)
    worker = Worker(queue, registry, settings, connection=Tenancy(queue.db).connection)
    stats = asyncio.run(worker.run(stop_when_idle=True))
    assert stats.done == 301
    assert queue.count(ItemFilter(client_id, statuses=("done",))) == 301


def test_a_failed_settle_does_not_leave_the_claimer_asleep(new_url: UrlMaker) -> None:
    """A batch settle fails once (its results are then recorded one by one): the worker
    still claims work another process queues afterwards."""
    queue = fresh_queue(new_url)
    client = Tenancy(queue.db).client_id("default")
    other = make_queue(queue.db.url, migrate=False)  # another process's enqueues
    settle = queue.settle
    failed: list[bool] = []
    ran: list[int] = []

    def settle_failing_once(
        worker: str, outcomes: Sequence[Outcome], limit: int = 0
    ) -> tuple[list[Job], int]:
        if not failed and len(outcomes) > 0:
            failed.append(True)
            raise ValueError("refused once")
        return settle(worker, outcomes, limit)

    queue.settle = settle_failing_once  # type: ignore[method-assign,assignment]

    async def handler(ctx: Context) -> None:
        ran.append(ctx.job.id)
        if len(ran) == 1:
            other.enqueue(client, [Request("sync_order", {"n": 2})])

    registry = HandlerRegistry()
    registry.register("sync_order", handler)
    settings = WorkerSettings(concurrency=4, poll_interval=0.01)
    worker = Worker(queue, registry, settings, connection=Tenancy(queue.db).connection)
    queue.enqueue(client, [Request("sync_order", {"n": 1})])

    async def run() -> None:
        await asyncio.wait_for(worker.run(stop_when_idle=True), timeout=60)

    asyncio.run(run())
    assert failed and len(ran) == 2
    assert queue.count(ItemFilter(client, statuses=("done",))) == 2
    other.db.close()
    queue.db.close()
