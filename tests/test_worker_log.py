"""The worker logs every failed attempt: one WARNING line with the item, its instruction,
connection and attempt, and the error's first line; never the payload."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from stockyard.engine import Request
from stockyard.engine.handlers import Context, HandlerRegistry
from stockyard.errors import PermanentError, TransientError
from stockyard.tenancy import Tenancy
from tests.support.queues import drain, make_queue

SECRET = "s3cret-payload-value"


def failing(ctx: Context) -> None:
    if ctx.payload.get("transient"):
        raise TransientError("remote busy\nsecond line of the answer")
    raise PermanentError(f"bad product\n{ctx.payload.get('note')}")


def test_each_failed_attempt_is_one_warning_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    queue = make_queue(f"sqlite:///{tmp_path / 'log.db'}")
    tenancy = Tenancy(queue.db)
    client = tenancy.client_id("default")
    shop = tenancy.add_connection(client, "channel", "demo", "Shop").id
    permanent, transient = queue.enqueue(
        client,
        [
            Request("update_product", {"product_id": 1, "note": SECRET}, shop),
            Request("sync_order", {"transient": True, "note": SECRET}),
        ],
    )
    handlers = HandlerRegistry()
    handlers.register_all(["update_product", "sync_order"], failing)
    with caplog.at_level(logging.WARNING, logger="stockyard.worker"):
        stats = drain(queue, handlers)
    assert (stats.failed, stats.retried) == (2, 2)  # the transient one: 3 attempts

    lines = [r.getMessage() for r in caplog.records if r.name == "stockyard.worker"]
    failures = [line for line in lines if line.startswith("item ")]
    assert (
        failures.count(
            f"item {permanent} (update_product, connection {shop}) attempt 1 failed: bad product"
        )
        == 1
    )
    for attempt in (1, 2):
        assert (
            f"item {transient} (sync_order, connection -) attempt {attempt} failed,"
            " will retry: remote busy"
        ) in failures
    assert any(
        line.startswith(f"item {transient} (sync_order, connection -) attempt 3 failed:")
        and "remote busy" in line
        for line in failures
    )
    assert len(failures) == 4
    assert all(r.levelno == logging.WARNING for r in caplog.records if r.getMessage() in failures)
    assert not any(SECRET in line or "second line" in line for line in lines)
    queue.db.close()


def test_a_success_whose_follow_ups_are_refused_is_counted_and_logged_as_failed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Settle records such an item as a permanent failure; the worker's counts and log
    say what was recorded, not what the handler returned."""
    queue = make_queue(f"sqlite:///{tmp_path / 'vetted.db'}")
    client = Tenancy(queue.db).client_id("default")
    [item] = queue.enqueue(client, [Request("sync_order", {})])

    def follows_nowhere(ctx: Context) -> None:
        ctx.follow_ups.append(Request("update_product", {"product_id": 1}, 987_654))

    handlers = HandlerRegistry()
    handlers.register("sync_order", follows_nowhere)
    with caplog.at_level(logging.WARNING, logger="stockyard.worker"):
        stats = drain(queue, handlers)
    assert queue.get(client, item).status == "failed"
    assert (stats.done, stats.failed) == (0, 1)
    lines = [r.getMessage() for r in caplog.records if r.name == "stockyard.worker"]
    mine = [line for line in lines if line.startswith(f"item {item} (sync_order")]
    assert len(mine) == 1 and "follow-up" in mine[0]
    queue.db.close()


def test_a_database_that_cannot_be_reached_fails_no_item_for_good(tmp_path: Path) -> None:
    """Reading an item's connection while PostgreSQL restarts raises DatabaseUnavailable:
    that is the database's trouble, a transient failure, never the item's own."""
    import asyncio

    from stockyard.db.postgres import DatabaseUnavailable
    from stockyard.engine.worker import Worker, WorkerSettings

    queue = make_queue(f"sqlite:///{tmp_path / 'away.db'}")
    tenancy = Tenancy(queue.db)
    client = tenancy.client_id("default")
    shop = tenancy.add_connection(client, "channel", "demo", "Shop").id
    [item] = queue.enqueue(client, [Request("update_product", {"product_id": 1}, shop)])

    def away(connection_id: int) -> object:
        raise DatabaseUnavailable("cannot connect to PostgreSQL: the system is shutting down")

    handlers = HandlerRegistry()
    handlers.register("update_product", lambda ctx: None)
    worker = Worker(queue, handlers, WorkerSettings(poll_interval=0.01), connection=away)
    stats = asyncio.run(worker.run(stop_when_idle=True))
    found = queue.get(client, item)
    assert found.status == "failed" and found.error_kind == "transient", found
    assert (stats.failed, stats.retried) == (1, 2)  # retried, then out of attempts
    queue.db.close()
