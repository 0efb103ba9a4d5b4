"""Issue 15.3: no payload, handler result or follow-up stops a worker from serving others.

Poison items of many kinds (follow-ups naming another client's connection or none at all,
an internal or unknown instruction, a follow-up storm, handlers that raise SystemExit or an
exception that cannot be printed, results that are not JSON, NUL bytes...) sit among
another client's ordinary work: everything else drains, each poison item fails alone with
a clear error. And SIGTERM ends a worker whose results cannot be settled within its drain
timeout, as a real process.

Run as `python -m tests.test_poison URL MODE` it is the worker process of the last test."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from stockyard.connectors import demo
from stockyard.db import connect
from stockyard.engine import ItemFilter, Outcome, Queue, Request
from stockyard.engine.claims import MAX_FOLLOW_UPS
from stockyard.engine.handlers import Context, HandlerRegistry
from stockyard.engine.worker import Worker, WorkerSettings
from stockyard.errors import PermanentError
from stockyard.tenancy import Tenancy
from tests.support.queues import UrlMaker, fast_instructions, make_queue

ROOT = Path(__file__).resolve().parent.parent
GUARD = 150.0  # seconds: only a hang gets near this; it is not a speed requirement


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("cannot print me")


class Escape(BaseException):
    """Neither an Exception nor a cancellation: what a careless library might raise."""


def _poisonous(ctx: Context) -> Any:
    """The handler of `sync_order` (free items): does what `poison` says, else succeeds."""
    kind = ctx.payload.get("poison")
    if kind == "garbage":
        return {"a": object()}  # a return value is ignored
    if kind == "system_exit":
        raise SystemExit(3)
    if kind == "keyboard":
        raise KeyboardInterrupt
    if kind == "escape":
        raise Escape("out")
    if kind == "unprintable":
        raise Unprintable
    if kind == "nul":
        raise PermanentError("bad\x00byte")
    if kind == "huge_error":
        raise PermanentError("x" * 5_000_000)
    if kind == "set_payload":
        ctx.enqueue("sync_order", {"s": {1, 2}})
    if kind == "nan_payload":
        ctx.enqueue("sync_order", {"x": float("nan")})
    if kind == "not_a_request":
        ctx.follow_ups.append("junk")  # type: ignore[arg-type]
    if kind == "nul_ref":
        ctx.enqueue("sync_order", {}, refs=["a\x00b"])
    if kind == "surrogate_payload":  # UTF-8 cannot encode a lone surrogate
        ctx.enqueue("sync_order", {"a": "\ud800"})
    if kind == "surrogate_ref":
        ctx.enqueue("sync_order", {}, refs=["a\udc80"])
    if kind == "surrogate_error":
        raise PermanentError("bad \ud800 text")
    if kind == "hang":  # only ever run in a thread: it would block the event loop
        time.sleep(3600)
    return None


async def _async_poisonous(ctx: Context) -> Any:
    return _poisonous(ctx)


def _registry() -> HandlerRegistry:
    reg = HandlerRegistry()
    reg.register_all(fast_instructions().names(), demo.handle, connector="demo")
    reg.register("sync_order", _async_poisonous)  # on the event loop
    reg.register("pull_orders", _poisonous)  # in a thread
    return reg


def _then(*follow_ups: dict[str, Any]) -> dict[str, Any]:
    return {"then": list(follow_ups)}


def _fill(queue: Queue) -> tuple[dict[str, int], list[int]]:
    """Client mallory's poison items (name -> id) and client bob's ordinary work."""
    mallory, bob = (
        Tenancy(queue.db).ensure_client("mallory"),
        Tenancy(queue.db).ensure_client("bob"),
    )
    add = Tenancy(queue.db).add_connection
    m_shop = add(mallory, "channel", "demo", "Mallory shop").id
    m_depot = add(mallory, "fulfillment", "demo", "Mallory depot").id
    b_shops = [add(bob, "channel", "demo", f"Bob shop {n}").id for n in range(3)]
    b_depot = add(bob, "fulfillment", "demo", "Bob depot").id
    poison = {
        # Follow-ups of the demo handler (the reported attack and its relatives).
        "other_clients_connection": Request(
            "update_product",
            _then({"instruction": "update_product", "connection_id": b_shops[0]}),
            m_shop,
        ),
        "missing_connection": Request(
            "sync_fulfillment",
            _then({"instruction": "sync_order", "connection_id": 987654321}),
            m_depot,
        ),
        "internal_instruction": Request(
            "sync_fulfillment",
            _then({"instruction": "send_webhook", "payload": {"url": "http://127.0.0.1:9/"}}),
            m_depot,
        ),
        "unknown_instruction": Request("sync_fulfillment", _then({"instruction": "nope"}), m_depot),
        "blocking_without_lane": Request(
            "sync_fulfillment", _then({"instruction": "update_product"}), m_depot
        ),
        "connection_id_text": Request(
            "sync_fulfillment", _then({"instruction": "sync_order", "connection_id": "x"}), m_depot
        ),
        "payload_not_object": Request(
            "sync_fulfillment", _then({"instruction": "sync_order", "payload": [1, 2]}), m_depot
        ),
        "storm": Request(
            "sync_fulfillment",
            {"then": [{"instruction": "sync_order"}] * (MAX_FOLLOW_UPS + 1)},
            m_depot,
        ),
    }
    for kind in (
        "system_exit",
        "keyboard",
        "escape",
        "unprintable",
        "nul",
        "huge_error",
        "set_payload",
        "nan_payload",
        "not_a_request",
        "nul_ref",
        "surrogate_payload",
        "surrogate_ref",
        "surrogate_error",
    ):
        poison[kind] = Request("sync_order", {"poison": kind})
        poison[f"{kind} (thread)"] = Request("pull_orders", {"poison": kind})
    poison["garbage"] = Request("sync_order", {"poison": "garbage"})
    names = list(poison)
    ids = queue.enqueue(mallory, [poison[n] for n in names])
    ordinary = [Request("update_variant", {}, b_shops[n % 3]) for n in range(90)]
    ordinary += [Request("sync_order", {}) for _ in range(60)]
    ordinary += [Request("sync_fulfillment", _then({"instruction": "sync_order"}), b_depot)] * 10
    return dict(zip(names, ids, strict=True)), queue.enqueue(bob, ordinary)


async def _run_until(queue: Queue, done: Any) -> None:
    worker = Worker(
        queue,
        _registry(),
        WorkerSettings(concurrency=40, poll_interval=0.01, drain_timeout=5),
        connection=Tenancy(queue.db).connection,
    )
    task = asyncio.create_task(worker.run())
    deadline = time.monotonic() + GUARD
    try:
        while not await asyncio.to_thread(done):
            if task.done():
                task.result()  # the worker died: show why
                pytest.fail("the worker stopped by itself")
            if time.monotonic() > deadline:
                pytest.fail("the queue did not drain: a poison item stopped the worker")
            await asyncio.sleep(0.05)
    finally:
        worker.stop()
        await asyncio.wait_for(task, GUARD)


def test_poison_items_fail_alone_and_everything_else_drains(new_url: UrlMaker) -> None:
    queue = make_queue(new_url())
    poison, ordinary = _fill(queue)
    bob, mallory = Tenancy(queue.db).client_id("bob"), Tenancy(queue.db).client_id("mallory")

    def finished() -> bool:
        bob_done = queue.count(ItemFilter(bob, statuses=("done",)))
        mallory_open = queue.count(ItemFilter(mallory, statuses=("queued", "running")))
        # bob's demo follow-ups are done too (10 more), and mallory's poison all settled
        return bob_done == len(ordinary) + 10 and mallory_open == 0

    asyncio.run(_run_until(queue, finished))
    got = {name: queue.get(mallory, item_id) for name, item_id in poison.items()}
    assert got.pop("garbage").status == "done"
    for name, item in got.items():
        assert (item.status, item.error_kind) == ("failed", "permanent"), (name, item)
        assert item.error and len(item.error) <= 2000 and "\x00" not in item.error, name
    assert "no connection" in (got["other_clients_connection"].error or "")
    assert "no connection" in (got["missing_connection"].error or "")
    assert "internal" in (got["internal_instruction"].error or "")
    assert "unknown instruction" in (got["unknown_instruction"].error or "")
    assert "at most" in (got["storm"].error or "")
    for name in ("surrogate_payload", "surrogate_ref"):
        assert "follow-up" in (got[name].error or ""), (name, got[name].error)
    assert "bad \\ud800 text" in (got["surrogate_error"].error or "")
    assert "SystemExit" in (got["system_exit"].error or "")
    # Nothing of a poisoned result was half-applied: mallory has no follow-up items at all.
    assert queue.count(ItemFilter(mallory)) == len(poison)
    queue.db.close()


def test_an_unbelievable_retry_hint_is_bounded(queue: Queue, client_id: int) -> None:
    [item] = queue.enqueue(client_id, [Request("sync_order", {})])
    queue.register_worker("w", "host", 1)
    [job] = queue.claim("w", 1)
    before = time.time()
    for hint in (float("inf"), float("nan")):
        outcome = Outcome(job, "transient", time.time(), "slow down", retry_after=hint)
        queue.settle("w", [outcome])
        got = queue.get(client_id, item)
        assert got.status == "queued" and got.run_after < before + 86400 + 60
        queue.db.run("UPDATE items SET status = 'running', worker_id = 'w' WHERE id = :id", id=item)
        job.attempt = got.attempts


# ------------------------------------------------------------- SIGTERM, as a real process


class Unsettleable(Queue):
    """A database that takes claims but never a result (locked for good, say)."""

    def settle(
        self, worker_id: str, outcomes: Sequence[Outcome], claim_limit: int = 0
    ) -> tuple[list[Any], int]:
        if outcomes:
            raise sqlite3.OperationalError("database is locked")
        return super().settle(worker_id, outcomes, claim_limit)


DRAIN = 3.0


def _worker_process(url: str, mode: str) -> None:
    queue_type = Unsettleable if mode == "unsettleable" else Queue
    queue = queue_type(connect(url), fast_instructions())
    settings = WorkerSettings(poll_interval=0.02, drain_timeout=DRAIN)
    worker = Worker(queue, _registry(), settings, connection=Tenancy(queue.db).connection)
    asyncio.run(worker.run(install_signals=True))


@pytest.mark.chaos  # a worker process and its signals
@pytest.mark.parametrize("mode", ["poisoned", "unsettleable", "hung_thread"])
def test_sigterm_ends_a_worker_within_its_drain_timeout(tmp_path: Path, mode: str) -> None:
    url = f"sqlite:///{tmp_path}/sigterm.db"
    queue = make_queue(url)
    mallory, bob = (
        Tenancy(queue.db).ensure_client("mallory"),
        Tenancy(queue.db).ensure_client("bob"),
    )
    b_shop = Tenancy(queue.db).add_connection(bob, "channel", "demo", "Bob shop").id
    m_shop = Tenancy(queue.db).add_connection(mallory, "channel", "demo", "Mallory shop").id
    then = _then({"instruction": "update_product", "connection_id": b_shop})
    [bad] = queue.enqueue(mallory, [Request("update_product", then, m_shop)])
    good = queue.enqueue(bob, [Request("update_variant", {}, b_shop) for _ in range(5)])
    if mode == "hung_thread":  # a plain handler that never returns, past any drain timeout
        [bad] = queue.enqueue(mallory, [Request("pull_orders", {"poison": "hang"})])
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.test_poison", url, mode],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    try:
        deadline = time.monotonic() + GUARD
        # Wait until the worker holds the poisoned item (or has already failed it).
        while queue.get(mallory, bad).status == "queued" and time.monotonic() < deadline:
            assert proc.poll() is None, "the worker exited by itself"
            time.sleep(0.05)
        if mode == "poisoned":  # the worker goes on with other clients' work
            while time.monotonic() < deadline and any(
                queue.get(bob, i).status != "done" for i in good
            ):
                time.sleep(0.05)
            assert [queue.get(bob, i).status for i in good] == ["done"] * 5
            assert queue.get(mallory, bad).status == "failed"
        else:
            time.sleep(0.5)  # a few failed settles, or the handler well stuck
        proc.send_signal(signal.SIGTERM)
        # The drain timeout, plus room for a loaded machine to start and stop Python.
        code = proc.wait(timeout=DRAIN + 30)
        assert code == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    queue.db.close()


if __name__ == "__main__":
    _worker_process(sys.argv[1], sys.argv[2])
