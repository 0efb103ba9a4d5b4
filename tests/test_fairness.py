"""Claims take turns: between clients, between a client's connections, and lanes spread
across workers (docs/queue.md, "Claiming order"). Nothing here depends on timing."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stockyard.engine import Limits, Outcome, Queue, Request
from stockyard.engine.turns import fill, rotation
from stockyard.tenancy import Tenancy
from tests.support.queues import UrlMaker, make_queue


def _client(queue: Queue, name: str) -> int:
    return Tenancy(queue.db).ensure_client(name)


def _connection(queue: Queue, client: int, name: str) -> int:
    return Tenancy(queue.db).add_connection(client, "channel", "demo", name).id


def _free(queue: Queue, client: int, n: int, connection: int | None = None) -> list[int]:
    return queue.enqueue(client, [Request("sync_order", {"n": i}, connection) for i in range(n)])


# ------------------------------------------------------------- progressive filling


def _max_min_fair(got: Mapping[Any, int], wanted: Mapping[Any, int], room: int) -> None:
    assert sum(got.values()) == min(room, sum(wanted.values()))
    for a in got:
        assert got[a] <= wanted[a]
        if got[a] < wanted[a]:  # a still had work: nobody got more than one above it
            assert all(got[b] <= got[a] + 1 for b in got), (got, wanted)


@given(st.lists(st.integers(0, 60), min_size=1, max_size=8), st.integers(0, 200))
def test_filling_is_max_min_fair(wanted_list: list[int], room: int) -> None:
    wanted = dict(enumerate(wanted_list))
    got = dict.fromkeys(wanted, 0)

    def take(taker: int, share: int) -> int:
        took = min(share, wanted[taker] - got[taker])
        got[taker] += took
        return took

    assert fill(list(wanted), room, take) == sum(got.values())
    _max_min_fair(got, wanted, room)


@given(st.sets(st.integers(0, 50)), st.integers(-1, 50), st.integers(1, 60))
def test_rotation_lists_keys_from_after_the_last_served_wrapping_once(
    keys: set[int], after: int, most: int
) -> None:
    def probe(key: int) -> int | None:
        return min((k for k in keys if k > key), default=None)

    expected = sorted(k for k in keys if k > after) + sorted(k for k in keys if k <= after)
    assert rotation(probe, after, most) == expected[:most]


# ----------------------------------------------------------------- one claim, real SQL


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.lists(st.integers(0, 12), min_size=1, max_size=3), min_size=1, max_size=4),
    st.integers(1, 60),
)
def test_a_claim_shares_fairly_between_clients_and_connections(
    tmp_path_factory: pytest.TempPathFactory, backlog: list[list[int]], room: int
) -> None:
    """Clients get max-min fair shares of a claim, and within a client so do its
    connections (group 0: items without a connection)."""
    queue = make_queue(f"sqlite:///{tmp_path_factory.mktemp('fair')}/q.db")
    wanted: dict[int, dict[int | None, int]] = {}
    owner: dict[int, tuple[int, int | None]] = {}
    for n, groups in enumerate(backlog):
        client = _client(queue, f"client-{n}")
        wanted[client] = {}
        for g, count in enumerate(groups):
            conn = None if g == 0 else _connection(queue, client, f"c{n}-{g}")
            wanted[client][conn] = count
            for item in _free(queue, client, count, conn):
                owner[item] = (client, conn)
    queue.register_worker("w", "test", 0)
    jobs = queue.claim("w", room)
    got: dict[int, dict[int | None, int]] = {c: dict.fromkeys(g, 0) for c, g in wanted.items()}
    for job in jobs:
        client, conn = owner[job.id]
        got[client][conn] += 1
    per_client = {c: sum(g.values()) for c, g in got.items()}
    _max_min_fair(per_client, {c: sum(g.values()) for c, g in wanted.items()}, room)
    for client, by_group in got.items():
        _max_min_fair(by_group, wanted[client], per_client[client])
    queue.db.close()


def test_a_quiet_client_is_not_stuck_behind_a_flood(queue: Queue) -> None:
    """Client A has thousands of queued items and many ready lanes; B's items, queued
    last, all start in the very next claim whose fair share holds them."""
    a, b = _client(queue, "flood"), _client(queue, "quiet")
    a_lanes = [_connection(queue, a, f"A lane {n}") for n in range(40)]
    queue.enqueue(a, [Request("update_variant", {"n": n}, ln) for n in range(3) for ln in a_lanes])
    for _ in range(5):
        _free(queue, a, 1000)
    b_lane = _connection(queue, b, "B lane")
    b_items = _free(queue, b, 30) + queue.enqueue(b, [Request("update_variant", {}, b_lane)])
    queue.register_worker("w", "test", 0)
    claimed = {j.id for j in queue.claim("w", 200)}  # B's fair share: half of it
    assert set(b_items) <= claimed


def test_a_flooding_connection_does_not_hold_back_another_of_the_same_client(
    queue: Queue,
) -> None:
    client = _client(queue, "shop")
    flood, quiet = _connection(queue, client, "Flood"), _connection(queue, client, "Quiet")
    for _ in range(3):
        _free(queue, client, 1000, flood)
    quiet_items = _free(queue, client, 20, quiet)
    queue.register_worker("w", "test", 0)
    claimed = {j.id for j in queue.claim("w", 50)}
    assert set(quiet_items) <= claimed


def test_turns_rotate_when_a_claim_cannot_serve_every_client(queue: Queue) -> None:
    """With room for fewer items than clients waiting, successive claims serve the next
    clients: after as many claims as it takes, every client has had a turn."""
    clients = [_client(queue, f"c{n}") for n in range(7)]
    for client in clients:
        _free(queue, client, 5)
    queue.register_worker("w", "test", 0)
    served: list[int] = []
    for _ in range(4):  # 4 claims of 2: 8 turns for 7 clients
        jobs = queue.claim("w", 2)
        served += [j.client_id for j in jobs]
        queue.settle("w", [Outcome(j, "done", time.time()) for j in jobs])
    assert set(served) == set(clients)


# ------------------------------------------------------------------ lanes and workers


def test_two_workers_split_the_lanes(queue: Queue) -> None:
    """Each worker first takes the lanes of its share (lane id modulo the live workers),
    so a second worker is not left idle while the first re-claims every lane."""
    client = _client(queue, "shop")
    lanes = [_connection(queue, client, f"Lane {n}") for n in range(20)]
    for _ in range(3):
        queue.enqueue(client, [Request("update_variant", {}, lane) for lane in lanes])
    queue.register_worker("w1", "test", 0)
    queue.register_worker("w2", "test", 0)
    for w in ("w1", "w2"):
        assert queue.heartbeat(w)  # learns its place among the two
    places = {w: sorted(["w1", "w2"]).index(w) for w in ("w1", "w2")}
    own = {w: {lane for lane in lanes if lane % 2 == places[w]} for w in places}
    first = queue.claim("w1", 100)
    assert own["w1"] <= {j.lane_id for j in first}
    second = queue.claim("w2", 100)
    # Whatever w1 left (it takes others' lanes only once they waited): w2's own lanes.
    assert own["w2"] - {j.lane_id for j in first} <= {j.lane_id for j in second}
    # Settling re-claims only the worker's own lanes' next heads (nothing waited long).
    again, _ = queue.settle("w1", [Outcome(j, "done", time.time()) for j in first], 100)
    assert {j.lane_id for j in again} <= own["w1"] | {j.lane_id for j in first}


def test_a_dead_workers_share_of_lanes_passes_to_the_living(queue: Queue) -> None:
    client = _client(queue, "shop")
    lanes = [_connection(queue, client, f"Lane {n}") for n in range(6)]
    queue.enqueue(client, [Request("update_variant", {}, lane) for lane in lanes])
    queue.register_worker("w1", "test", 0)
    queue.register_worker("w2", "test", 0)
    queue.heartbeat("w1")
    queue.stop_worker("w2", "crashed")
    queue.heartbeat("w1")  # now alone: every lane is its share
    assert {j.lane_id for j in queue.claim("w1", 100)} == set(lanes)


def test_claims_on_postgresql_skip_what_another_claim_holds(new_url: UrlMaker) -> None:
    """Two claims at once (two connections) never hand out the same item."""
    if new_url.backend != "postgresql":
        pytest.skip("SQLite has one writer")
    url = new_url()
    first, second = make_queue(url), make_queue(url, migrate=False)
    client = _client(first, "shop")
    conn = _connection(first, client, "Shop")
    _free(first, client, 200, conn)
    _free(first, client, 200)
    for q, w in ((first, "w1"), (second, "w2")):
        q.register_worker(w, "test", 0)
    with first.db.write() as cur:
        # Hold a claim open on the first connection while the second claims.
        held = first._claims._claim(cur, "w1", 150, time.time())
        other = second.claim("w2", 150)
    assert not {j.id for j in held} & {j.id for j in other}
    assert len(held) == 150 and len(other) == 150
    first.db.close()
    second.db.close()


def test_a_lane_is_ready_from_when_its_head_became_due(queue: Queue) -> None:
    """A head queued long ago becomes ready when the item ahead of it finishes, not when it
    was queued: the hand-off to other workers and the order between a client's lanes count
    from then."""
    client = _client(queue, "shop")
    lane = _connection(queue, client, "Lane")
    first, second = queue.enqueue(client, [Request("update_variant", {}, lane)] * 2)
    with queue.db.write() as cur:  # as if both were queued an hour ago
        cur.execute("UPDATE items SET run_after = run_after - 3600")
    queue.register_worker("w", "test", 0)
    (job,) = queue.claim("w", 10)
    assert job.id == first
    before = time.time()
    queue.settle("w", [Outcome(job, "done", time.time())])
    with queue.db.read() as cur:
        (ready_at,) = cur.execute(f"SELECT ready_at FROM lanes WHERE id = {int(lane)}").fetchone()
    assert ready_at >= before
    assert [j.id for j in queue.claim("w", 10)] == [second]


def test_a_busy_lane_keeps_its_place_while_items_queue_behind_its_head(queue: Queue) -> None:
    """A lane whose head waits does not go to the back each time more is queued behind
    it: with one lane taken per claim, the lane that was ready first goes first."""
    client = _client(queue, "shop")
    busy, *others = [_connection(queue, client, f"Lane {n}") for n in range(4)]
    queue.enqueue(client, [Request("update_variant", {}, busy)])
    queue.enqueue(client, [Request("update_variant", {}, lane) for lane in others])
    queue.enqueue(client, [Request("update_variant", {}, busy)])  # behind the busy head
    queue.register_worker("w", "test", 0)
    # One lane a claim: the one ready first.
    (first,) = queue.claim("w", 1)
    assert first.lane_id == busy


def test_a_client_with_limits_gets_no_more_than_its_turn(queue: Queue) -> None:
    """Limits that limit nothing give a client no head start over others' lanes."""
    a, b = _client(queue, "a"), _client(queue, "b")
    a_lanes = [_connection(queue, a, f"A {n}") for n in range(12)]
    for lane in a_lanes:
        queue.set_limits(a, lane, Limits(max_running=100_000))
    queue.enqueue(a, [Request("update_variant", {}, lane) for lane in a_lanes])
    b_lane = _connection(queue, b, "B")
    (b_head,) = queue.enqueue(b, [Request("update_variant", {}, b_lane)])
    queue.register_worker("w", "test", 0)
    assert b_head in {j.id for j in queue.claim("w", 4)}


def test_lanes_at_their_limits_do_not_hold_back_other_lanes(queue: Queue) -> None:
    """Lanes whose connections cannot start anything now are put off, so a claim with
    little room still reaches another client's lane, limited or not."""
    a, b = _client(queue, "a"), _client(queue, "b")
    a_lanes = [_connection(queue, a, f"A {n}") for n in range(6)]
    for lane in a_lanes:
        queue.set_limits(a, lane, Limits(per_second=1e-6))  # one start, then none for days
    queue.enqueue(a, [Request("update_variant", {}, lane) for lane in a_lanes for _ in range(2)])
    queue.register_worker("w", "test", 0)
    first = queue.claim("w", 100)
    assert {j.lane_id for j in first} == set(a_lanes)
    queue.settle("w", [Outcome(j, "done", time.time()) for j in first])
    b_lane = _connection(queue, b, "B")
    queue.set_limits(b, b_lane, Limits(max_running=5))
    (b_head,) = queue.enqueue(b, [Request("update_variant", {}, b_lane)])
    assert [j.id for j in queue.claim("w", 2)] == [b_head]


def test_clients_with_nothing_due_yet_do_not_use_up_a_claim(queue: Queue) -> None:
    waiting = [_client(queue, f"later {n}") for n in range(40)]
    for client in waiting:
        queue.enqueue(client, [Request("sync_order", {}, delay=3600)])
    due = _client(queue, "now")
    (item,) = queue.enqueue(due, [Request("sync_order", {})])
    queue.register_worker("w", "test", 0)
    # Within one claim's listing (32 clients) the due client is reached whatever its place;
    # beyond it, within a few claims.
    claimed = [j.id for _ in range(3) for j in queue.claim("w", 1)]
    assert claimed == [item]
