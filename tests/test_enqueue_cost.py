"""What one enqueue costs the database in statements (each a round trip on PostgreSQL),
and that the cheaper path keeps what enqueue promises: ids in order, the rows as asked,
the wake-up of workers elsewhere. Speed itself is measured in bench/enqueue.py."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from stockyard.engine import Request
from stockyard.errors import InvalidInput
from stockyard.tenancy import Tenancy
from tests.support.queues import UrlMaker, make_queue


class _Counting:
    """A connection (or its cursors) that notes the text of each statement it sends."""

    def __init__(self, inner: Any, log: list[str]) -> None:
        self._inner = inner
        self._log = log

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def cursor(self) -> _Counting:
        return _Counting(self._inner.cursor(), self._log)

    def execute(self, sql: str, params: Any = (), /) -> Any:
        self._log.append(sql)
        result = self._inner.execute(sql, params)
        return self if result is self._inner else result

    def executemany(self, sql: str, params: Any, /) -> Any:
        self._log.append(sql)
        return self._inner.executemany(sql, params)


def _sent(queue: Any, run: Any) -> list[str]:
    db = queue.db
    real = db.connection()
    log: list[str] = []
    db.connection = lambda: _Counting(real, log)
    try:
        run()
    finally:
        del db.connection
    return log


def test_one_free_item_is_begin_insert_commit(new_url: UrlMaker) -> None:
    """A raw insert in a transaction is three statements; so is enqueueing one item
    outside a lane: its id is drawn by the INSERT itself and, on PostgreSQL, the NOTIFY
    travels with the COMMIT."""
    queue = make_queue(new_url())
    client = Tenancy(queue.db).client_id("default")
    queue.enqueue(client, [Request("sync_order", {"n": 0})])  # connection opened, warm
    sent = _sent(queue, lambda: queue.enqueue(client, [Request("sync_order", {"n": 1})]))
    assert len(sent) == 3, sent
    assert sent[0].startswith("BEGIN") and sent[-1].endswith("COMMIT"), sent
    queue.db.close()


def test_single_and_batched_enqueues_draw_increasing_ids(new_url: UrlMaker) -> None:
    queue = make_queue(new_url())
    client = Tenancy(queue.db).client_id("default")
    ids = queue.enqueue(client, [Request("sync_order", {"n": 0}, refs=("A-1",))])
    ids += queue.enqueue(client, [Request("sync_order", {"n": n}) for n in (1, 2, 3)])
    ids += queue.enqueue(client, [Request("sync_order", {"n": 4}, idempotency_key="k")])
    ids += queue.enqueue(client, [Request("sync_order", {"n": 5}, idempotency_key="k")])
    assert ids[:5] == sorted(set(ids[:5])) and ids[5] == ids[4]
    items = [queue.get(client, i) for i in ids[:5]]
    assert [it.payload for it in items] == [{"n": n} for n in range(5)]
    assert [it.status for it in items] == ["queued"] * 5
    assert items[0].refs == ["A-1"] and items[4].idempotency_key == "k"
    queue.db.close()


def test_a_single_enqueue_wakes_a_listener_elsewhere(new_url: UrlMaker) -> None:
    """PostgreSQL's NOTIFY reaches workers in other processes (SQLite's poll instead)."""
    queue = make_queue(new_url())
    if queue.db.backend != "postgresql":
        queue.db.close()
        return
    client = Tenancy(queue.db).client_id("default")
    woken = threading.Event()
    listening = threading.Event()

    def heard() -> None:
        if listening.is_set():
            woken.set()
        listening.set()  # the first call says the LISTEN is in place

    stop = queue.db.listen(heard)
    try:
        assert listening.wait(10)
        queue.enqueue(client, [Request("sync_order", {"n": 1})])
        assert woken.wait(10)
    finally:
        stop()
        queue.db.close()


def test_one_item_with_a_lone_surrogate_or_nan_is_refused(new_url: UrlMaker) -> None:
    """The single-item INSERT binds its texts one by one: what the batch's JSON document
    refuses, it refuses too, before the driver sees it."""
    queue = make_queue(new_url())
    client = Tenancy(queue.db).client_id("default")
    bad = [
        Request("sync_order", {"n": "\ud800"}),
        Request("sync_order", {"n": 1}, refs=("\udfff",)),
        Request("sync_order", {"n": float("nan")}),
    ]
    for request in bad:
        with pytest.raises(InvalidInput):
            queue.enqueue(client, [request])
    assert queue.enqueue(client, [Request("sync_order", {"n": 1})])
    queue.db.close()
