"""One Shopify cost bucket shared by every worker of a shop's connection (issue 18): the
statements of `stockyard.connectors.budget` on SQLite and PostgreSQL, concurrent takers
never overdrawing, the clock rule, the registry's offer, and workers pacing together
against the double over HTTP."""

from __future__ import annotations

import threading

import pytest

from stockyard.connectors.budget import Grant, Refusal, SharedBudget
from stockyard.engine import Queue
from stockyard.tenancy import Tenancy


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _connection(queue: Queue, client_id: int, name: str = "Shop") -> int:
    return Tenancy(queue.db).add_connection(client_id, "channel", "shopify", name).id


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def budget(queue: Queue, client_id: int, clock: Clock) -> SharedBudget:
    return SharedBudget(queue.db, client_id, _connection(queue, client_id), clock)


def _row(queue: Queue, connection_id: int) -> tuple[float, float, float, float, float]:
    with queue.db.read() as cur:
        cur.execute(
            "SELECT capacity, available, restore_rate, at, spent FROM connection_budgets"
            f" WHERE connection_id = {int(connection_id)}"
        )
        return tuple(float(v) for v in cur.fetchone())  # type: ignore[return-value]


# ------------------------------------------------------------------------ the statements


def test_nothing_is_known_before_the_first_report(budget: SharedBudget) -> None:
    assert budget.take(50, max_wait=2) is None


def test_a_take_that_fits_is_taken_at_once(budget: SharedBudget, queue: Queue) -> None:
    budget.report(1000, 1000, 100, None)
    grant = budget.take(300, max_wait=0)
    assert grant == Grant(wait=0.0, mark=300.0)
    assert _row(queue, budget.connection_id)[1:3] == (700.0, 100.0)


def test_a_short_take_waits_for_promised_points(budget: SharedBudget, clock: Clock) -> None:
    budget.report(1000, 100, 100, None)
    grant = budget.take(250, max_wait=2)
    # 100 there, 150 missing at 100/s: promised, 1.5 s away; the next taker is behind it.
    assert isinstance(grant, Grant) and grant.wait == pytest.approx(1.5)
    second = budget.take(40, max_wait=2)
    assert isinstance(second, Grant) and second.wait == pytest.approx(1.9)


def test_a_take_beyond_max_wait_takes_nothing_and_says_when(
    budget: SharedBudget, queue: Queue, clock: Clock
) -> None:
    budget.report(1000, 100, 50, None)
    refused = budget.take(400, max_wait=2)
    assert isinstance(refused, Refusal) and refused.capacity == 1000.0
    assert refused.retry_after == pytest.approx(6.0)
    assert _row(queue, budget.connection_id)[1] == 100.0  # nothing taken
    clock.now += 6
    assert budget.take(400, max_wait=0) == Grant(0.0, 400.0)


def test_more_than_the_whole_bucket_is_refused(budget: SharedBudget) -> None:
    budget.report(1000, 1000, 100, None)
    refused = budget.take(1001, max_wait=30)
    assert isinstance(refused, Refusal) and refused.capacity == 1000.0


def test_the_bucket_refills_up_to_its_capacity_only(
    budget: SharedBudget, queue: Queue, clock: Clock
) -> None:
    budget.report(1000, 0, 100, None)
    clock.now += 60
    assert budget.take(1000, max_wait=0) == Grant(0.0, 1000.0)
    assert _row(queue, budget.connection_id)[1] == 0.0


def test_the_report_is_the_truth_less_what_others_took_since(
    budget: SharedBudget, queue: Queue
) -> None:
    budget.report(1000, 1000, 100, None)
    mine = budget.take(100, max_wait=0)
    assert isinstance(mine, Grant)
    budget.take(30, max_wait=0)  # another worker's request, sent after mine
    budget.take(20, max_wait=0)
    # Shopify charged mine (and refunded part of it): 950 left by its count.
    budget.report(1000, 950, 100, mine.mark)
    assert _row(queue, budget.connection_id)[1] == 900.0
    # A new plan: the shop reports a bigger bucket and rate.
    budget.report(2000, 2000, 200, None)
    assert _row(queue, budget.connection_id)[:3] == (2000.0, 2000.0, 200.0)


def test_the_bucket_clock_never_goes_back(
    budget: SharedBudget, queue: Queue, client_id: int, clock: Clock
) -> None:
    budget.report(1000, 0, 100, None)
    clock.now += 5  # this worker's clock: 500 points restored
    assert budget.take(500, max_wait=0) == Grant(0.0, 500.0)
    behind = SharedBudget(queue.db, client_id, budget.connection_id, Clock(clock.now - 3))
    # A worker 3 s behind refills nothing (those seconds were counted) nor moves `at` back.
    assert isinstance(behind.take(1, max_wait=0), Refusal)
    behind.report(1000, 0, 100, None)
    assert _row(queue, budget.connection_id)[3] == clock.now
    clock.now += 1
    assert budget.take(100, max_wait=0) == Grant(0.0, 600.0)


def test_another_clients_budget_is_neither_read_nor_spent(
    budget: SharedBudget, queue: Queue, client_id: int, clock: Clock
) -> None:
    budget.report(1000, 1000, 100, None)
    other = Tenancy(queue.db).ensure_client("other")
    thief = SharedBudget(queue.db, other, budget.connection_id, clock)
    assert thief.take(10, max_wait=0) is None
    thief.report(1000, 0, 100, None)  # neither made nor changed
    assert _row(queue, budget.connection_id)[1] == 1000.0
    # Nor made for a connection the client does not own.
    elsewhere = SharedBudget(queue.db, client_id, _connection(queue, other, "Theirs"), clock)
    elsewhere.report(1000, 1000, 100, None)
    assert elsewhere.take(10, max_wait=0) is None


def test_concurrent_takers_never_overdraw(budget: SharedBudget, queue: Queue) -> None:
    budget.report(1000, 1000, 0.0001, None)  # restores next to nothing meanwhile
    granted: list[Grant | Refusal | None] = []
    lock = threading.Lock()

    def worker() -> None:
        mine = SharedBudget(queue.db, budget.client_id, budget.connection_id, budget.clock)
        for _ in range(15):
            result = mine.take(13, max_wait=0)
            with lock:
                granted.append(result)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    taken = [g for g in granted if isinstance(g, Grant)]
    assert len(taken) == 1000 // 13  # 76: every point handed out once, none twice
    assert len({g.mark for g in taken}) == len(taken)
    assert _row(queue, budget.connection_id)[1] == pytest.approx(1000 - 13 * len(taken))
