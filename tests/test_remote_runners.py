"""Remote runners (stockyard.engine.remote): a connection whose non-blocking items only a
remote program claims. In-process workers run its lane but never its non-blocking items;
`claim_remote` takes only that connection's due items, fenced and reaped like any
worker's. Both backends."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stockyard.engine import ItemFilter, Limits, Outcome, Queue, Request
from stockyard.engine.remote import SessionEnded
from stockyard.errors import Conflict, NotFound
from stockyard.tenancy import Tenancy


def _source(queue: Queue, client: int, name: str, remote: bool) -> int:
    return Tenancy(queue.db).add_connection(client, "source", "demo", name, remote=remote).id


@pytest.fixture
def remote(queue: Queue, client_id: int) -> int:
    return _source(queue, client_id, "ERP behind a firewall", remote=True)


@pytest.fixture
def local(queue: Queue, client_id: int) -> int:
    return _source(queue, client_id, "ERP in the cloud", remote=False)


def _orders(queue: Queue, client: int, connection: int, n: int, delay: float = 0.0) -> list[int]:
    return queue.enqueue(
        client, [Request("add_order", {"n": i}, connection, delay=delay) for i in range(n)]
    )


def _status(queue: Queue, client: int, ids: list[int]) -> dict[int, str]:
    return {i: queue.get(client, i).status for i in ids}


def test_workers_run_a_remote_connections_lane_but_never_its_orders(
    queue: Queue, client_id: int, remote: int, local: int
) -> None:
    (product,) = queue.enqueue(client_id, [Request("sync_product", {"code": "P"}, remote)])
    theirs = _orders(queue, client_id, remote, 3)
    ours = _orders(queue, client_id, local, 2)
    queue.register_worker("w", "test", 0)
    jobs = queue.claim("w", 50)
    assert {j.id for j in jobs} == {product, *ours}
    assert set(_status(queue, client_id, theirs).values()) == {"queued"}
    # Settling (which claims too) does not take them either.
    more, refused = queue.settle(
        "w", [Outcome(j, "done", time.time()) for j in jobs], claim_limit=50
    )
    assert (more, refused) == ([], 0)
    assert set(_status(queue, client_id, [product, *ours]).values()) == {"done"}
    assert set(_status(queue, client_id, theirs).values()) == {"queued"}


def test_next_due_ignores_remote_items_so_idle_workers_stop(
    queue: Queue, client_id: int, remote: int, local: int
) -> None:
    _orders(queue, client_id, remote, 2)
    assert queue.next_due() is None
    _orders(queue, client_id, local, 1)
    assert queue.next_due() is not None


def test_claim_remote_takes_only_that_connections_due_items(
    queue: Queue, client_id: int, remote: int, local: int
) -> None:
    other = _source(queue, client_id, "Another agent", remote=True)
    (product,) = queue.enqueue(client_id, [Request("sync_product", {"code": "P"}, remote)])
    due = _orders(queue, client_id, remote, 3)
    later = _orders(queue, client_id, remote, 1, delay=3600)
    _orders(queue, client_id, local, 2)
    _orders(queue, client_id, other, 2)
    jobs = queue.claim_remote("agent:1:s", remote, 2)
    assert [j.id for j in jobs] == due[:2]
    assert {j.connection_id for j in jobs} == {remote}
    rest = queue.claim_remote("agent:1:s", remote, 50, holding=due[:2])
    assert [j.id for j in rest] == due[2:]
    assert queue.claim_remote("agent:1:s", remote, 50, holding=due) == []
    statuses = _status(queue, client_id, [product, *later])
    assert statuses == {product: "queued", later[0]: "queued"}
    with pytest.raises(NotFound):
        queue.claim_remote("agent:2:s", local, 5)


def test_a_claim_hands_back_first_what_the_session_holds(
    queue: Queue, client_id: int, remote: int
) -> None:
    """A claim whose answer was lost (or whose settle was): the session claims again and
    gets its items back, at the same attempt, before anything new; never reaped while it
    keeps claiming, they would otherwise stay running for good."""
    first, second, third = _orders(queue, client_id, remote, 3)
    (lost,) = queue.claim_remote("agent:1:s", remote, 1)
    assert lost.id == first
    again = queue.claim_remote("agent:1:s", remote, 1)
    assert [(j.id, j.attempt, j.payload) for j in again] == [(first, 1, lost.payload)]
    both = queue.claim_remote("agent:1:s", remote, 2)
    assert [(j.id, j.attempt) for j in both] == [(first, 1), (second, 1)]
    # What the session says it is still working on is not handed back.
    assert [j.id for j in queue.claim_remote("agent:1:s", remote, 5, holding=[first])] == [
        second,
        third,
    ]
    assert queue.claim_remote("agent:1:s", remote, 5, holding=[first, second, third]) == []
    # Another session gets none of them.
    assert queue.claim_remote("agent:1:other", remote, 5) == []
    assert _status(queue, client_id, [first, second, third]) == dict.fromkeys(
        [first, second, third], "running"
    )


def test_a_disabled_connection_hands_out_nothing(queue: Queue, client_id: int, remote: int) -> None:
    (item,) = _orders(queue, client_id, remote, 1)
    Tenancy(queue.db).set_connection_status(client_id, remote, "disabled")
    with pytest.raises(Conflict, match=f"connection {remote} is disabled"):
        queue.claim_remote("agent:1:s", remote, 5)
    assert queue.get(client_id, item).status == "queued"
    Tenancy(queue.db).set_connection_status(client_id, remote, "active")
    assert [j.id for j in queue.claim_remote("agent:1:s", remote, 5)] == [item]


def test_a_message_id_is_new_once_per_connection_within_the_window(
    queue: Queue, remote: int, local: int
) -> None:
    assert queue.note_message(remote, "m1", window=60) is True
    assert queue.note_message(remote, "m1", window=60) is False
    assert queue.note_message(local, "m1", window=60) is True  # another connection's own
    # Older than the window, it is forgotten (by the next message noted).
    time.sleep(0.05)
    assert queue.note_message(remote, "m2", window=0.01) is True
    assert queue.note_message(remote, "m1", window=0.01) is True


def test_claim_remote_keeps_the_connections_limits(
    queue: Queue, client_id: int, remote: int
) -> None:
    queue.set_limits(client_id, remote, Limits(max_running=2))
    _orders(queue, client_id, remote, 5)
    assert len(queue.claim_remote("agent:1:a", remote, 10)) == 2
    assert queue.claim_remote("agent:1:b", remote, 10) == []


def test_settling_is_fenced_by_session_and_attempt(
    queue: Queue, client_id: int, remote: int
) -> None:
    (item,) = _orders(queue, client_id, remote, 1)
    (job,) = queue.claim_remote("agent:1:s", remote, 1)
    # Another session does not hold it: nothing to settle, and its outcome is refused.
    queue.claim_remote("agent:1:other", remote, 1)
    assert queue.held("agent:1:other", [item]) == []
    assert queue.settle_items("agent:1:other", [Outcome(job, "done", time.time())]) == []
    (held,) = queue.held("agent:1:s", [item])
    assert (held.id, held.attempt) == (item, 1)
    assert queue.settle_items("agent:1:s", [Outcome(held, "done", time.time())]) == [item]
    assert queue.get(client_id, item).status == "done"
    # Settling again changes nothing.
    assert queue.settle_items("agent:1:s", [Outcome(held, "done", time.time())]) == []


def test_an_in_process_workers_id_is_never_a_session(
    queue: Queue, client_id: int, remote: int, local: int
) -> None:
    """An in-process worker on a host named "agent" (`{hostname}:{pid}:{hex6}`) can have
    a session's id: its items are never held or settled as that session's, and the id is
    never taken for one."""
    worker = f"agent:{remote}:abc123"
    queue.register_worker(worker, "agent", remote)
    (item,) = _orders(queue, client_id, local, 1)
    (job,) = queue.claim(worker, 5)
    assert queue.held(worker, [item]) == []
    assert queue.settle_items(worker, [Outcome(job, "done", time.time())]) == []
    assert queue.get(client_id, item).status == "running"
    with pytest.raises(SessionEnded):
        queue.claim_remote(worker, remote, 5)
    with pytest.raises(SessionEnded):
        queue.heartbeat_remote(worker)
    # The worker itself settles as ever.
    assert queue.settle(worker, [Outcome(job, "done", time.time())]) == ([], 0)


def test_a_reaped_session_releases_its_items_and_ends(
    queue: Queue, client_id: int, remote: int
) -> None:
    (item,) = _orders(queue, client_id, remote, 1)
    (job,) = queue.claim_remote("agent:1:s", remote, 1)
    time.sleep(0.05)
    assert queue.reap(0.01) == 1
    detail = queue.detail(client_id, item)
    assert detail.item.status == "queued"
    assert [a.outcome for a in detail.attempts] == ["lost"]
    with pytest.raises(SessionEnded):
        queue.claim_remote("agent:1:s", remote, 1)
    with pytest.raises(SessionEnded):
        queue.heartbeat_remote("agent:1:s")
    # Its late outcome is refused; a new session takes the item again, attempt 2.
    assert queue.settle_items("agent:1:s", [Outcome(job, "done", time.time())]) == []
    (again,) = queue.claim_remote("agent:1:s2", remote, 1)
    assert (again.id, again.attempt) == (item, 2)


def test_heartbeats_keep_a_session_and_remote_workers_take_no_lane_share(
    queue: Queue, client_id: int, remote: int
) -> None:
    with pytest.raises(SessionEnded):  # a session starts with a claim
        queue.heartbeat_remote("agent:1:s")
    queue.claim_remote("agent:1:s", remote, 1)
    queue.heartbeat_remote("agent:1:s")
    queue.register_worker("w", "test", 0)
    # The remote session is no in-process worker: "w" is alone, so every lane is its share.
    assert queue._leases.heartbeat("w")[1] == ["w"]
    # An in-process worker's id is never a session.
    with pytest.raises(SessionEnded):
        queue.claim_remote("w", remote, 1)


def test_failures_retry_as_for_any_worker(queue: Queue, client_id: int, remote: int) -> None:
    (item,) = _orders(queue, client_id, remote, 1)
    (job,) = queue.claim_remote("agent:1:s", remote, 1)
    settled = queue.settle_items(
        "agent:1:s", [Outcome(job, "transient", time.time(), "ERP busy", retry_after=0.0)]
    )
    assert settled == [item]
    found = queue.get(client_id, item)
    assert (found.status, found.error_kind, found.error) == ("queued", "transient", "ERP busy")
    failed = queue.list_items(ItemFilter(client_id, statuses=("queued",)))
    assert [i.id for i in failed] == [item]


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    steps=st.lists(
        st.tuples(st.sampled_from(["local", "remote", "reap", "enqueue"]), st.integers(1, 4)),
        min_size=1,
        max_size=12,
    )
)
def test_no_item_is_ever_run_by_both(
    queue: Queue, client_id: int, remote: int, local: int, steps: list[tuple[str, int]]
) -> None:
    """Whatever the order of in-process claims, remote claims and reaps, an item of the
    remote connection is only ever started by a remote session, and every other
    non-blocking item only by an in-process worker."""
    worker = f"w{time.monotonic_ns()}"
    queue.register_worker(worker, "test", 0)
    sessions = 0
    session = f"agent:{remote}:{worker}:{sessions}"
    for action, n in steps:
        if action == "enqueue":
            _orders(queue, client_id, remote, n)
            _orders(queue, client_id, local, n)
        elif action == "local":
            for job in queue.claim(worker, n):
                assert job.connection_id != remote
        elif action == "remote":
            try:
                jobs = queue.claim_remote(session, remote, n)
            except SessionEnded:
                sessions += 1
                session = f"agent:{remote}:{worker}:{sessions}"
                jobs = queue.claim_remote(session, remote, n)
            assert all(j.connection_id == remote for j in jobs)
        else:
            time.sleep(0.002)
            queue.reap(0.001)
            if not queue.heartbeat(worker):
                worker = f"w{time.monotonic_ns()}"
                queue.register_worker(worker, "test", 0)
    running = queue.list_items(ItemFilter(client_id, statuses=("running",)), limit=500)
    for item in running:
        assert item.worker_id is not None
        assert item.worker_id.startswith("agent:") == (item.connection_id == remote)


def test_an_agent_session_is_not_counted_as_a_worker(
    queue: Queue, client_id: int, remote: int
) -> None:
    """The workers gauge (/metrics) counts our own workers: an agent connected while none
    runs must not keep a "no workers" alert quiet."""
    _orders(queue, client_id, remote, 1)
    assert queue.claim_remote("agent:1:s", remote, 1)
    assert queue.stats().workers == 0
    queue.register_worker("w", "test", 0)
    assert queue.stats().workers == 1


def test_connections_with_ids_of_two_digits_are_remote_and_limited(
    queue: Queue, client_id: int
) -> None:
    """The claim's statement lists the connections twice (limited, remote): bound once
    each, ids 10 and up are still themselves (on SQLite, encoded twice, "[12]" matched
    connections 1 and 2)."""
    plain = [_source(queue, client_id, f"ERP {n}", remote=False) for n in range(11)]
    agent = _source(queue, client_id, "ERP behind a firewall", remote=True)
    limited = plain[-1]
    assert min(agent, limited) >= 10
    queue.set_limits(client_id, limited, Limits(max_running=1))
    theirs = _orders(queue, client_id, agent, 3)
    capped = _orders(queue, client_id, limited, 3)
    queue.register_worker("w", "test", 0)
    claimed = {j.id for j in queue.claim("w", 50)}
    assert claimed & set(theirs) == set()
    assert len(claimed & set(capped)) == 1
