"""Every rule of the queue (docs/queue.md) and the engine's API, through a real worker on a
real file."""

from __future__ import annotations

import asyncio
import time

import pytest

from stockyard.db import connect
from stockyard.engine import ItemFilter, Queue, Request
from stockyard.engine.handlers import Context, HandlerRegistry
from stockyard.engine.worker import Worker, WorkerSettings
from stockyard.errors import Conflict, InvalidInput, NotFound
from stockyard.tenancy import Tenancy
from tests.support.lanes import Recorder, channel, status
from tests.support.queues import drain


def test_lane_runs_fifo_one_at_a_time(queue: Queue, client_id: int) -> None:
    lanes = [channel(queue, client_id, f"Shop {n}") for n in range(4)]
    ids = queue.enqueue(
        client_id,
        [Request("update_variant", {"sleep": 0.001}, lanes[n % 4]) for n in range(200)],
    )
    rec = Recorder()
    drain(queue, rec.registry())
    for lane in lanes:
        assert rec.order(lane) == [i for n, i in enumerate(ids) if lanes[n % 4] == lane]
    assert rec.max_parallel_per_lane == 1
    assert all(status(queue, client_id, i) == "done" for i in ids)


def test_failure_stops_only_its_own_lane(queue: Queue, client_id: int) -> None:
    shop, trade = channel(queue, client_id, "Shop"), channel(queue, client_id, "Trade")
    bad = queue.enqueue(client_id, [Request("add_product", {"fail": "permanent"}, trade)])[0]
    behind = queue.enqueue(client_id, [Request("update_product", {}, trade) for _ in range(3)])
    other = queue.enqueue(client_id, [Request("update_product", {}, shop) for _ in range(3)])
    free = queue.enqueue(client_id, [Request("sync_order", {}) for _ in range(3)])
    rec = Recorder()
    drain(queue, rec.registry())
    assert status(queue, client_id, bad) == "failed"
    assert [status(queue, client_id, i) for i in behind] == ["queued"] * 3
    assert all(status(queue, client_id, i) == "done" for i in other + free)
    lane = next(v for v in queue.lanes(client_id) if v.lane_id == trade)
    assert (lane.state, lane.head_id, lane.waiting, lane.head_error) == (
        "blocked",
        bad,
        3,
        "bad data",
    )
    # Retry keeps the id and the place: the lane resumes from the same item.
    queue.retry(client_id, [bad], "tester")
    lane = next(v for v in queue.lanes(client_id) if v.lane_id == trade)
    assert (lane.state, lane.head_id) == ("ready", bad)
    item = queue.get(client_id, bad)
    assert item.status == "queued" and item.id == bad


def test_skip_unblocks_lane_in_order(queue: Queue, client_id: int) -> None:
    trade = channel(queue, client_id)
    bad = queue.enqueue(client_id, [Request("add_product", {"fail": "permanent"}, trade)])[0]
    behind = queue.enqueue(client_id, [Request("update_product", {}, trade) for _ in range(5)])
    rec = Recorder()
    drain(queue, rec.registry())
    assert rec.order(trade) == [bad]
    queue.skip(client_id, [bad], "tester")
    drain(queue, rec.registry())
    assert rec.order(trade) == [bad, *behind]
    assert status(queue, client_id, bad) == "skipped"
    audit = queue.detail(client_id, bad).audit
    assert [(a.actor, a.action) for a in audit] == [("tester", "skip")]


def test_non_blocking_failure_holds_nothing_back(queue: Queue, client_id: int) -> None:
    ids = queue.enqueue(
        client_id,
        [
            Request("sync_order", {"fail": "permanent"} if n == 0 else {"sleep": 0.25})
            for n in range(40)
        ],
    )
    rec = Recorder()
    started = time.monotonic()
    drain(queue, rec.registry(), concurrency=40)
    # 40 items of 250 ms each run concurrently: 0.25 s, where one after another takes 10 s.
    # The bound is half that, so a loaded machine does not fail it.
    assert time.monotonic() - started < 5
    assert status(queue, client_id, ids[0]) == "failed"
    assert all(status(queue, client_id, i) == "done" for i in ids[1:])


def test_transient_failure_retries_with_backoff_while_lane_waits(
    queue: Queue, client_id: int
) -> None:
    lane = channel(queue, client_id)
    flaky = queue.enqueue(
        client_id, [Request("update_variant", {"fail": "transient", "times": 2}, lane)]
    )[0]
    after = queue.enqueue(client_id, [Request("update_variant", {}, lane)])[0]
    rec = Recorder()
    drain(queue, rec.registry())
    assert rec.order(lane) == [flaky, flaky, flaky, after]
    detail = queue.detail(client_id, flaky)
    assert [a.outcome for a in detail.attempts] == ["transient", "transient", "done"]
    assert detail.item.status == "done" and detail.item.attempts == 3
    gaps = [
        b.started_at - a.ended_at
        for a, b in zip(detail.attempts, detail.attempts[1:], strict=False)
        if a.ended_at is not None
    ]
    assert all(gap >= 0.01 for gap in gaps)  # base delay 0.02 s, half of it fixed


def test_transient_failures_give_up_after_the_limit(queue: Queue, client_id: int) -> None:
    lane = channel(queue, client_id)
    item = queue.enqueue(client_id, [Request("update_variant", {"fail": "transient"}, lane)])[0]
    drain(queue, Recorder().registry())
    detail = queue.detail(client_id, item)
    assert detail.item.status == "failed"
    assert detail.item.error == "gave up after 3 attempts: HTTP 503"
    assert [a.outcome for a in detail.attempts] == ["transient", "transient", "failed"]


def test_permanent_failure_fails_at_once(queue: Queue, client_id: int) -> None:
    item = queue.enqueue(client_id, [Request("sync_order", {"fail": "permanent"})])[0]
    drain(queue, Recorder().registry())
    detail = queue.detail(client_id, item)
    assert detail.item.status == "failed" and detail.item.attempts == 1
    assert detail.item.error_kind == "permanent"


def test_handler_bug_is_a_permanent_failure_with_its_message(queue: Queue, client_id: int) -> None:
    def broken(ctx: Context) -> None:
        raise KeyError("sku")

    reg = HandlerRegistry()
    reg.register("sync_order", broken)
    item = queue.enqueue(client_id, [Request("sync_order", {})])[0]
    drain(queue, reg)
    got = queue.get(client_id, item)
    assert (got.status, got.error) == ("failed", "KeyError: 'sku'")


def test_item_without_handler_fails_clearly(queue: Queue, client_id: int) -> None:
    item = queue.enqueue(client_id, [Request("pull_orders", {})])[0]
    drain(queue, HandlerRegistry())
    assert "no handler" in (queue.get(client_id, item).error or "")


def test_pause_and_resume(queue: Queue, client_id: int) -> None:
    lane = channel(queue, client_id)
    ids = queue.enqueue(client_id, [Request("update_variant", {}, lane) for _ in range(3)])
    queue.pause(client_id, lane, "ops", "maintenance")
    drain(queue, Recorder().registry())
    assert [status(queue, client_id, i) for i in ids] == ["queued"] * 3
    assert queue.lanes(client_id)[0].state == "paused"
    with pytest.raises(Conflict):
        queue.pause(client_id, lane, "ops")
    queue.resume(client_id, lane, "ops")
    drain(queue, Recorder().registry())
    assert [status(queue, client_id, i) for i in ids] == ["done"] * 3
    assert [a.action for a in queue.lane_audit(client_id, lane)] == ["pause", "resume"]


def test_idempotent_enqueue(queue: Queue, client_id: int) -> None:
    first = queue.enqueue(client_id, [Request("sync_order", {}, idempotency_key="order-1")])
    again = queue.enqueue(
        client_id,
        [
            Request("sync_order", {}, idempotency_key="order-1"),
            Request("sync_order", {}, idempotency_key="order-2"),
            Request("sync_order", {}, idempotency_key="order-2"),
        ],
    )
    assert again[0] == first[0] and again[1] == again[2] != first[0]
    assert queue.count(ItemFilter(client_id)) == 2


def test_batch_enqueue_is_atomic(queue: Queue, client_id: int) -> None:
    lane = channel(queue, client_id)
    with pytest.raises(InvalidInput):
        queue.enqueue(client_id, [Request("update_variant", {}, lane), Request("nope", {})])
    assert queue.count(ItemFilter(client_id)) == 0


def test_follow_ups_are_committed_with_their_parent(queue: Queue, client_id: int) -> None:
    lane = channel(queue, client_id)
    parent = queue.enqueue(
        client_id, [Request("init_channel", {"then": ["sync_channel", "set_channel_status"]}, lane)]
    )[0]
    rec = Recorder()
    drain(queue, rec.registry())
    children = queue.detail(client_id, parent).children
    assert [c.instruction for c in children] == ["sync_channel", "set_channel_status"]
    assert all(c.parent_id == parent and c.status == "done" for c in children)
    assert rec.order(lane) == [parent, *(c.id for c in children)]


def test_enqueue_validation(queue: Queue, client_id: int) -> None:
    source = Tenancy(queue.db).add_connection(client_id, "source", "demo", "ERP").id
    with pytest.raises(InvalidInput, match="unknown instruction"):
        queue.enqueue(client_id, [Request("add_prodcut", {})])
    with pytest.raises(InvalidInput, match="needs the channel connection"):
        queue.enqueue(client_id, [Request("add_product", {})])
    with pytest.raises(InvalidInput, match="runs in a channel lane"):
        queue.enqueue(client_id, [Request("add_product", {}, source)])
    with pytest.raises(NotFound):
        queue.enqueue(client_id, [Request("add_order", {}, 999)])


def test_descriptions_render_from_templates(queue: Queue, client_id: int) -> None:
    shop = Tenancy(queue.db).add_connection(client_id, "channel", "demo", "Shopify (main store)").id
    item = queue.enqueue(client_id, [Request("add_product", {}, shop, ("SKU-1",))])[0]
    got = queue.get(client_id, item)
    assert got.description == "Add product to Shopify (main store)"
    assert got.refs == ["SKU-1"] and got.mode == "blocking"


def test_tenancy(queue: Queue, client_id: int) -> None:
    other = Tenancy(queue.db).ensure_client("other")
    lane = channel(queue, client_id)
    item = queue.enqueue(client_id, [Request("update_variant", {}, lane, ("SKU",))])[0]
    with pytest.raises(NotFound):
        queue.get(other, item)
    with pytest.raises(NotFound):
        queue.skip(other, [item], "intruder")
    with pytest.raises(NotFound):
        queue.enqueue(other, [Request("update_variant", {}, lane)])
    assert queue.list_items(ItemFilter(other)) == []
    assert queue.lanes(other) == []


def test_bulk_skip_by_sku_and_filters(queue: Queue, client_id: int) -> None:
    lanes = [channel(queue, client_id, f"Shop {n}") for n in range(3)]
    failing = queue.enqueue(
        client_id,
        [Request("update_variant", {"fail": "permanent"}, lane, ("SKU-9",)) for lane in lanes],
    )
    queue.enqueue(client_id, [Request("update_variant", {}, lane, ("SKU-1",)) for lane in lanes])
    drain(queue, Recorder().registry())
    assert queue.count(ItemFilter(client_id, statuses=("failed",), ref="SKU-9")) == 3
    assert queue.count(ItemFilter(client_id, error_contains="BAD DATA")) == 3
    skipped = queue.skip_where(ItemFilter(client_id, statuses=("failed",), ref="SKU-9"), "ops")
    assert sorted(skipped) == sorted(failing)
    drain(queue, Recorder().registry())
    assert queue.count(ItemFilter(client_id, statuses=("done",), ref="SKU-1")) == 3
    with pytest.raises(InvalidInput):
        queue.retry_where(ItemFilter(client_id, statuses=("done",)), "ops")


def test_retry_and_skip_refuse_wrong_states(queue: Queue, client_id: int) -> None:
    item = queue.enqueue(client_id, [Request("sync_order", {})])[0]
    with pytest.raises(Conflict, match="only failed"):
        queue.retry(client_id, [item], "ops")
    drain(queue, Recorder().registry())
    with pytest.raises(Conflict):
        queue.skip(client_id, [item], "ops")


def test_pagination_and_filters(queue: Queue, client_id: int) -> None:
    ids = queue.enqueue(client_id, [Request("sync_order", {}) for _ in range(25)])
    page1 = queue.list_items(ItemFilter(client_id), limit=10)
    page2 = queue.list_items(ItemFilter(client_id), limit=10, before=page1[-1].id)
    page3 = queue.list_items(ItemFilter(client_id), limit=10, before=page2[-1].id)
    seen = [i.id for i in page1 + page2 + page3]
    assert seen == sorted(ids, reverse=True)
    assert queue.list_items(ItemFilter(client_id, instructions=("add_order",))) == []
    with pytest.raises(InvalidInput):
        queue.list_items(ItemFilter(client_id, statuses=("borked",)))


def test_prune_keeps_failed_and_waiting_and_never_reuses_ids(queue: Queue, client_id: int) -> None:
    done = queue.enqueue(client_id, [Request("sync_order", {}) for _ in range(5)])
    failed = queue.enqueue(client_id, [Request("sync_order", {"fail": "permanent"})])
    drain(queue, Recorder().registry())
    waiting = queue.enqueue(client_id, [Request("sync_order", {}, delay=3600)])
    assert queue.prune(older_than=0, batch=2) == 5
    left = {i.id for i in queue.list_items(ItemFilter(client_id))}
    assert left == {*failed, *waiting}
    assert not set(done) & left
    # Prune everything finished, including the newest item: ids still never repeat.
    queue.skip(client_id, waiting, "ops")
    queue.prune(older_than=0)
    new = queue.enqueue(client_id, [Request("sync_order", {})])[0]
    assert new > max(waiting)


def test_lost_lease_runs_again_and_is_recorded(queue: Queue, client_id: int) -> None:
    lane = channel(queue, client_id)
    ids = queue.enqueue(client_id, [Request("update_variant", {}, lane) for _ in range(2)])
    queue.register_worker("dead-worker", "host", 1)
    jobs = queue.claim("dead-worker", 10)
    assert [j.id for j in jobs] == [ids[0]]
    time.sleep(0.05)
    assert queue.reap(lease_timeout=0.01) == 1
    rec = Recorder()
    drain(queue, rec.registry())
    assert rec.order(lane) == ids
    attempts = queue.detail(client_id, ids[0]).attempts
    assert next((a.outcome, a.worker_id) for a in attempts) == ("lost", "dead-worker")
    # The dead worker's late result is refused: fencing.
    from stockyard.engine import Outcome

    _, refused = queue.settle("dead-worker", [Outcome(jobs[0], "done", time.time())])
    assert refused == 1


def test_enqueue_wakes_an_idle_worker(queue: Queue, client_id: int) -> None:
    """In-process on SQLite; through LISTEN/NOTIFY on PostgreSQL, where the enqueue runs on
    its own connection like another process's would."""
    started: list[float] = []
    if queue.db.backend == "sqlite":
        enqueuer = queue
    else:  # another Queue: nothing shared in-process with the worker
        enqueuer = Queue(connect(queue.db.url), queue.instructions)

    async def mark(ctx: Context) -> None:
        started.append(time.monotonic())

    reg = HandlerRegistry()
    reg.register("sync_order", mark)

    async def scenario() -> float:
        # The longest poll interval: only the wake-up can make the item start well before.
        worker = Worker(
            queue, reg, WorkerSettings(poll_interval=5.0), connection=Tenancy(queue.db).connection
        )
        task = asyncio.create_task(worker.run())
        await asyncio.sleep(0.3)
        loop = asyncio.get_running_loop()
        enqueued = time.monotonic()
        await loop.run_in_executor(None, enqueuer.enqueue, client_id, [Request("sync_order", {})])
        while not started:
            await asyncio.sleep(0.001)
        worker.stop()
        await task
        return started[0] - enqueued

    # Typically milliseconds. The next poll comes ~4.7 s after the enqueue: the bound leaves a
    # loaded machine room and still tells a wake-up from a poll.
    assert asyncio.run(scenario()) < 3


def test_handler_timeout_is_transient(queue: Queue, client_id: int) -> None:
    from stockyard.engine.instructions import RetryPolicy
    from tests.support.queues import fast_instructions

    queue.instructions = fast_instructions(
        RetryPolicy(max_attempts=1, base_delay=0.01, timeout=0.2)
    )
    item = queue.enqueue(client_id, [Request("sync_order", {"sleep": 120})])[0]
    started = time.monotonic()
    drain(queue, Recorder().registry())
    assert time.monotonic() - started < 60  # cut at 0.2 s, not the handler's 120 s
    got = queue.get(client_id, item)
    assert got.status == "failed" and "timed out" in (got.error or "")
