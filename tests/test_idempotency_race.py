"""Two callers enqueueing the same new idempotency key at the same moment (a sender's
retry racing its first delivery) both get the one item, on both backends."""

from __future__ import annotations

import threading

from stockyard.db import connect
from stockyard.engine import ItemFilter, Queue, Request
from stockyard.tenancy import Tenancy
from tests.support.queues import UrlMaker, fast_instructions, make_queue


def test_racing_enqueues_of_one_new_key_make_one_item(new_url: UrlMaker) -> None:
    url = new_url()
    first = make_queue(url)
    queues = [first, Queue(connect(url), fast_instructions())]
    client = Tenancy(first.db).client_id("default")
    rounds = 40
    barrier = threading.Barrier(2)
    results: list[list[int]] = [[], []]
    errors: list[BaseException] = []

    def racer(n: int) -> None:
        try:
            for r in range(rounds):
                barrier.wait()
                request = Request("sync_order", {"round": r}, idempotency_key=f"race-{r}")
                results[n] += queues[n].enqueue(client, [request])
        except BaseException as exc:  # reported below, with the thread's name
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=racer, args=(n,)) for n in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for q in queues:
        q.db.close()
    assert not errors, errors
    assert results[0] == results[1]  # both callers got the same item, every round
    check = make_queue(url, migrate=False)
    assert check.count(ItemFilter(client)) == rounds
    check.db.close()
