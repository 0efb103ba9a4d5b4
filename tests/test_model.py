"""Stateful property test: random enqueue, claim, settle, retry, skip and crash steps,
checked against a small reference model of the queue's rules (docs/queue.md) after every
step."""

from __future__ import annotations

import time
from collections.abc import Callable

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from stockyard.engine import ItemFilter, Job, Outcome, Request
from stockyard.engine.instructions import RetryPolicy
from stockyard.tenancy import Tenancy
from tests.support.queues import UrlMaker, fast_instructions, make_queue

LANES = 3
WORKERS = ("w1", "w2")


class QueueModel(RuleBasedStateMachine):
    new_url: Callable[[], str]  # set per backend by the test below

    def __init__(self) -> None:
        super().__init__()
        # No back-off delay: a retried item is due at once, so the model needs no clock.
        instructions = fast_instructions(RetryPolicy(max_attempts=2, base_delay=0.0, max_delay=0.0))
        self.queue = make_queue(type(self).new_url(), instructions)
        self.client = Tenancy(self.queue.db).client_id("default")
        self.lanes = [
            Tenancy(self.queue.db).add_connection(self.client, "channel", "demo", f"Shop {n}").id
            for n in range(LANES)
        ]
        self.status: dict[int, str] = {}
        self.lane_of: dict[int, int | None] = {}
        self.key_of: dict[int, str | None] = {}
        self.held: dict[int, tuple[str, Job]] = {}
        self.generation = {w: 0 for w in WORKERS}
        for w in WORKERS:
            self.queue.register_worker(self.worker_id(w), "model", 0)

    def worker_id(self, w: str) -> str:
        return f"{w}.{self.generation[w]}"

    def teardown(self) -> None:
        self.queue.db.close()

    def head(self, lane: int) -> int | None:
        unfinished = [
            i
            for i, lane_id in self.lane_of.items()
            if lane_id == lane and self.status[i] in ("queued", "running", "failed")
        ]
        return min(unfinished) if unfinished else None

    def eligible(self) -> set[int]:
        """What the spec says may run now: each lane's head if queued, and free items."""
        ready = {i for i, s in self.status.items() if s == "queued" and self.lane_of[i] is None}
        for lane in self.lanes:
            head = self.head(lane)
            if head is not None and self.status[head] == "queued":
                ready.add(head)
        return ready

    @rule(
        lane=st.sampled_from([None, 0, 1, 2]),
        n=st.integers(1, 3),
        key=st.sampled_from([None, "a", "b"]),
    )
    def enqueue(self, lane: int | None, n: int, key: str | None) -> None:
        conn = None if lane is None else self.lanes[lane]
        instruction = "sync_order" if conn is None else "update_variant"
        requests = [Request(instruction, {}, conn, coalesce_key=key) for _ in range(n)]
        for i in self.queue.enqueue(self.client, requests):
            # Coalescing: a keyed item in a lane supersedes the queued ones with its key.
            if key is not None and conn is not None:
                for older, older_key in self.key_of.items():
                    same = older_key == key and self.lane_of[older] == conn
                    if same and self.status[older] == "queued":
                        self.status[older] = "superseded"
            self.status[i] = "queued"
            self.lane_of[i] = conn
            self.key_of[i] = key

    @rule(w=st.sampled_from(WORKERS), k=st.sampled_from([1, 2, 1000]))
    def claim(self, w: str, k: int) -> None:
        eligible = self.eligible()
        jobs = self.queue.claim(self.worker_id(w), k)
        claimed = {j.id for j in jobs}
        assert claimed <= eligible, f"claimed {claimed - eligible} out of turn"
        if k == 1000:
            assert claimed == eligible, f"left {eligible - claimed} waiting"
        assert len(jobs) <= k
        for job in jobs:
            self.status[job.id] = "running"
            self.held[job.id] = (w, job)

    @precondition(lambda self: self.held)
    @rule(data=st.data(), kind=st.sampled_from(["done", "transient", "permanent"]))
    def settle(self, data: st.DataObject, kind: str) -> None:
        item = data.draw(st.sampled_from(sorted(self.held)))
        w, job = self.held.pop(item)
        _, refused = self.queue.settle(
            self.worker_id(w),
            [Outcome(job, kind, time.time(), "boom")],  # type: ignore[arg-type]
        )
        assert refused == 0
        if kind == "done":
            self.status[item] = "done"
        elif kind == "transient" and job.attempt < 2:
            self.status[item] = "queued"
        else:
            self.status[item] = "failed"

    @precondition(lambda self: any(s == "failed" for s in self.status.values()))
    @rule(data=st.data())
    def retry(self, data: st.DataObject) -> None:
        failed = sorted(i for i, s in self.status.items() if s == "failed")
        item = data.draw(st.sampled_from(failed))
        assert self.queue.retry(self.client, [item], "model") == [item]
        self.status[item] = "queued"

    @precondition(lambda self: any(s in ("failed", "queued") for s in self.status.values()))
    @rule(data=st.data())
    def skip(self, data: st.DataObject) -> None:
        choices = sorted(i for i, s in self.status.items() if s in ("failed", "queued"))
        item = data.draw(st.sampled_from(choices))
        assert self.queue.skip(self.client, [item], "model") == [item]
        self.status[item] = "skipped"

    @rule(w=st.sampled_from(WORKERS))
    def crash(self, w: str) -> None:
        """The worker dies: its items run again, and its late results are refused."""
        lost = [(i, job) for i, (owner, job) in self.held.items() if owner == w]
        old = self.worker_id(w)
        assert self.queue.stop_worker(old, "crashed") == len(lost)
        for i, _job in lost:
            del self.held[i]
            self.status[i] = "queued"
        if lost:
            _, refused = self.queue.settle(old, [Outcome(lost[0][1], "done", time.time())])
            assert refused == 1
        self.generation[w] += 1
        self.queue.register_worker(self.worker_id(w), "model", 0)

    @invariant()
    def database_matches_model(self) -> None:
        items = self.queue.list_items(ItemFilter(self.client), limit=1000)
        assert {i.id: i.status for i in items} == self.status

    @invariant()
    def lanes_match_model(self) -> None:
        for view in self.queue.lanes(self.client):
            head = self.head(view.lane_id)
            assert view.head_id == head
            pending = sum(
                1
                for i, lane in self.lane_of.items()
                if lane == view.lane_id and self.status[i] in ("queued", "running", "failed")
            )
            assert view.pending == pending
            if head is not None and self.status[head] == "failed":
                assert view.state == "blocked"


def test_queue_matches_the_model(new_url: UrlMaker) -> None:
    machine = type("BoundQueueModel", (QueueModel,), {"new_url": staticmethod(new_url)})
    run_state_machine_as_test(
        machine, settings=settings(max_examples=60, stateful_step_count=40, deadline=None)
    )
