"""The queue page's area: the per-state summary (exact, from indexes), the consequences a
skip confirmation warns about, the item filter's search and the landing page itself."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stockyard.accounts import Principal
from stockyard.engine import ItemFilter, Job, Outcome, Queue, Request
from stockyard.tenancy import Tenancy
from tests.support.api_env import ApiEnv
from tests.support.queues import UrlMaker, make_queue

# ------------------------------------------------------------------------------ helpers


def _fail(queue: Queue, item_ids: set[int]) -> None:
    """Make these items failed the way a worker would: claim what can run, settle these
    as failed and the rest as done, until only failed heads are left."""
    worker = f"t-{time.monotonic_ns()}"
    queue.register_worker(worker, "test", 0)
    for _ in range(20):
        jobs = queue.claim(worker, 100)
        if not jobs:
            break
        outcomes = [
            Outcome(j, "permanent" if j.id in item_ids else "done", time.time(), "bad price")
            for j in jobs
        ]
        queue.settle(worker, outcomes)
    queue.stop_worker(worker)


def _plain_counts(queue: Queue, client: int) -> dict[str, int]:
    """The summary's figures the slow, obvious way: count(*) per status."""
    return {
        s: queue.count(ItemFilter(client, statuses=(s,))) for s in ("queued", "running", "failed")
    }


# ------------------------------------------------------------------------- the summary


def test_summary_counts_each_state_exactly(new_url: UrlMaker) -> None:
    queue = make_queue(new_url())
    tenancy = Tenancy(queue.db)
    client = tenancy.client_id("default")
    lanes = [tenancy.add_connection(client, "channel", "demo", f"Shop {k}").id for k in range(3)]
    heads = queue.enqueue(client, [Request("add_product", {}, lane) for lane in lanes])
    queue.enqueue(client, [Request("update_variant", {"n": i}, lanes[i % 3]) for i in range(9)])
    queue.enqueue(client, [Request("add_order", {"n": i}) for i in range(4)])
    worker = "w"
    queue.register_worker(worker, "test", 0)
    jobs = {j.id: j for j in queue.claim(worker, 100)}
    # Head 0 fails (its lane blocks), heads 1 and 2 keep running, the free items finish.
    outcomes = [Outcome(jobs[heads[0]], "permanent", time.time(), "bad")]
    outcomes += [Outcome(j, "done", time.time()) for i, j in jobs.items() if i not in heads]
    queue.settle(worker, outcomes)
    queue.pause(client, lanes[2], "op")

    s = queue.summary(client)
    assert (s.queued, s.running, s.failed) == (9, 2, 1)
    assert _plain_counts(queue, client) == {"queued": 9, "running": 2, "failed": 1}
    assert (s.blocked_lanes, s.paused_lanes) == (1, 1)
    queue.db.close()


def test_summary_through_the_service_checks_the_client(tmp_path: Path) -> None:
    env = ApiEnv(f"sqlite:///{tmp_path}/s.db")
    try:
        s = env.service.queue_summary(env.root, env.a.id)
        assert s.counts == {"queued": 1, "running": 0, "failed": 1}
        assert (s.blocked_lanes, s.paused_lanes) == (1, 0)
        from stockyard.errors import NotFound

        stranger = Principal("x", roles={env.b.id: "read-only"})
        with pytest.raises(NotFound):
            env.service.queue_summary(stranger, env.a.id)
    finally:
        env.close()


_ops = st.lists(
    st.tuples(
        st.sampled_from(["enqueue", "free", "claim", "fail", "finish", "skip", "retry", "pause"]),
        st.integers(0, 2),
        st.integers(1, 4),
    ),
    max_size=12,
)
_runs = itertools.count()


@pytest.fixture(scope="module")
def shared_queue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Queue]:
    queue = make_queue(f"sqlite:///{tmp_path_factory.mktemp('summary')}/q.db")
    yield queue
    queue.db.close()


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(_ops)
def test_summary_equals_plain_counts_over_random_histories(
    shared_queue: Queue, ops: list[tuple[str, int, int]]
) -> None:
    queue = shared_queue
    tenancy = Tenancy(queue.db)
    client = tenancy.ensure_client(f"c{next(_runs)}")
    lanes = [tenancy.add_connection(client, "channel", "demo", f"S{k}").id for k in range(3)]
    worker = f"w{client}"
    queue.register_worker(worker, "test", 0)
    running: list[Job] = []
    for op, lane, n in ops:
        if op == "enqueue":
            queue.enqueue(
                client, [Request("update_variant", {"n": k}, lanes[lane]) for k in range(n)]
            )
        elif op == "free":
            queue.enqueue(client, [Request("add_order", {"n": k}) for k in range(n)])
        elif op == "claim":
            running += queue.claim(worker, n)
        elif op in ("fail", "finish") and running:
            kind = "permanent" if op == "fail" else "done"
            done, running = running[:n], running[n:]
            queue.settle(worker, [Outcome(j, kind, time.time(), "x") for j in done])  # type: ignore[arg-type]
        elif op in ("skip", "retry"):
            failed = [i.id for i in queue.list_items(ItemFilter(client, statuses=("failed",)), n)]
            if failed:
                (queue.skip if op == "skip" else queue.retry)(client, failed, "op")
        elif op == "pause":
            view = next(v for v in queue.lanes(client) if v.lane_id == lanes[lane])
            (queue.resume if view.paused else queue.pause)(client, lanes[lane], "op")
    s = queue.summary(client)
    assert {"queued": s.queued, "running": s.running, "failed": s.failed} == _plain_counts(
        queue, client
    )
    views = queue.lanes(client)
    assert s.blocked_lanes == sum(v.state == "blocked" for v in views)
    assert s.paused_lanes == sum(v.state == "paused" for v in views)


# ------------------------------------------------------------------ skip consequences


@pytest.fixture
def env(tmp_path: Path) -> Iterator[ApiEnv]:
    e = ApiEnv(f"sqlite:///{tmp_path}/queue.db")
    yield e
    e.close()


def _failed_add_with_updates(env: ApiEnv) -> tuple[int, list[int], int]:
    """A failed add_product of SKU-BAD on a fresh channel, three queued updates of it
    behind it, an update of another SKU, and the same SKU's update on another channel."""
    svc, root, a = env.service, env.root, env.a
    base = {"base_url": "http://127.0.0.1:9"}
    shop = svc.create_connection(root, a.id, "channel", "http", "Shop 2", base, {}).id
    trade = svc.create_connection(root, a.id, "channel", "http", "Trade", base, {}).id
    (add,) = env.queue.enqueue(
        a.id, [Request("add_product", {"product_id": 7}, shop, ("SKU-BAD",))]
    )
    _fail(env.queue, {add})
    assert env.queue.get(a.id, add).status == "failed"
    # Queued after the add failed (before, the update would have superseded the add).
    *updates, _other = env.queue.enqueue(
        a.id,
        [
            Request("update_product", {"product_id": 7}, shop, ("SKU-BAD",)),
            Request("update_variant", {"variant_id": 1}, shop, ("SKU-BAD",)),
            Request("update_variant", {"variant_id": 2}, shop, ("SKU-BAD",)),
            Request("update_variant", {"variant_id": 3}, shop, ("SKU-OK",)),
        ],
    )
    (elsewhere,) = env.queue.enqueue(
        a.id, [Request("update_product", {"product_id": 7}, trade, ("SKU-BAD",))]
    )
    return add, updates, elsewhere


def test_skipping_a_failed_add_warns_of_the_updates_that_will_fail(env: ApiEnv) -> None:
    add, updates, elsewhere = _failed_add_with_updates(env)
    (w,) = env.service.skip_warnings(env.root, ItemFilter(env.a.id, ref="SKU-BAD"))
    assert w.instruction == "add_product"
    assert w.requeue_ids == (add,)
    # Only the same lane's items of the same SKU: another channel has its own add.
    assert w.dependant_ids == tuple(updates) and w.dependants == 3
    assert elsewhere not in w.dependant_ids
    assert "No product found to update" in w.message and "3 queued items" in w.message
    assert w.fix and "Re-queue" in w.fix


def test_no_warning_when_nothing_the_catalog_knows_is_skipped(env: ApiEnv) -> None:
    _failed_add_with_updates(env)
    flt = ItemFilter(env.a.id, instructions=("update_product",))
    assert env.service.skip_warnings(env.root, flt) == []
    # Queued items only: no failed add is skipped.
    assert env.service.skip_warnings(env.root, ItemFilter(env.a.id, statuses=("queued",))) == []


def test_skip_warnings_are_the_clients_own(env: ApiEnv) -> None:
    from stockyard.errors import NotFound

    _failed_add_with_updates(env)
    stranger = Principal("x", roles={env.b.id: "operator"})
    with pytest.raises(NotFound):
        env.service.skip_warnings(stranger, ItemFilter(env.a.id))
