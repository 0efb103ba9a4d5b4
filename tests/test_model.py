"""Stateful property test: random enqueue, claim, settle, retry, skip, heartbeat and crash
steps, checked against a small reference model of the queue's rules (docs/queue.md) after
every step: lane order, each worker's share of the lanes, and a connection's concurrency
limit."""

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

from stockyard.engine import ItemFilter, Job, Limits, Outcome, Request
from stockyard.engine.instructions import RetryPolicy
from stockyard.tenancy import Tenancy
from tests.support.queues import UrlMaker, fast_instructions, make_queue

LANES = 3
WORKERS = ("w1", "w2")
CAP = 2  # the limited connection's max_running


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
        # Non-blocking items may go to this connection, which runs at most CAP at once.
        self.limited = (
            Tenancy(self.queue.db).add_connection(self.client, "channel", "demo", "Limited shop").id
        )
        self.queue.set_limits(self.client, self.limited, Limits(max_running=CAP))
        self.status: dict[int, str] = {}
        self.lane_of: dict[int, int | None] = {}
        self.connection_of: dict[int, int | None] = {}
        self.key_of: dict[int, str | None] = {}
        self.held: dict[int, tuple[str, Job]] = {}
        self.generation = {w: 0 for w in WORKERS}
        # Each worker's place (index, count) among the live workers, as of its last
        # registration or heartbeat: it takes first the lanes whose id % count == index.
        self.place: dict[str, tuple[int, int]] = {}
        for w in WORKERS:
            self.register(w)

    def live(self) -> list[str]:
        return sorted(self.worker_id(w) for w in WORKERS if w in self.place)

    def register(self, w: str) -> None:
        self.queue.register_worker(self.worker_id(w), "model", 0)
        self.place[w] = (0, 0)
        self.place[w] = (self.live().index(self.worker_id(w)), len(self.live()))

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

    def ready_heads(self) -> set[int]:
        heads = {self.head(lane) for lane in self.lanes}
        return {h for h in heads if h is not None and self.status[h] == "queued"}

    def free(self) -> set[int]:
        return {i for i, s in self.status.items() if s == "queued" and self.lane_of[i] is None}

    def room_on_limited(self) -> int:
        running = [i for i, s in self.status.items() if s == "running"]
        return CAP - sum(1 for i in running if self.connection_of[i] == self.limited)

    def eligible(self) -> set[int]:
        """What the rules let run now: each lane's head if queued, and free items."""
        return self.ready_heads() | self.free()

    def own_share(self, w: str) -> set[int]:
        """What a claim of w with room for everything must take: the ready heads of its
        own lanes and the free items, at most the limited connection's room of its."""
        index, count = self.place[w]
        heads = {h for h in self.ready_heads() if (self.lane_of[h] or 0) % count == index}
        free = self.free()
        on_limited = {i for i in free if self.connection_of[i] == self.limited}
        return heads | (free - on_limited)

    @rule(
        lane=st.sampled_from([None, 0, 1, 2, "limited"]),
        n=st.integers(1, 3),
        key=st.sampled_from([None, "a", "b"]),
    )
    def enqueue(self, lane: int | str | None, n: int, key: str | None) -> None:
        if lane == "limited":  # non-blocking, on the limited connection
            ids = self.queue.enqueue(
                self.client, [Request("sync_order", {}, self.limited) for _ in range(n)]
            )
            for i in ids:
                self.status[i], self.lane_of[i], self.key_of[i] = "queued", None, None
                self.connection_of[i] = self.limited
            return
        conn = None if lane is None else self.lanes[lane]  # type: ignore[index]
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
            self.connection_of[i] = conn
            self.key_of[i] = key

    @rule(w=st.sampled_from(WORKERS), k=st.sampled_from([1, 2, 1000]))
    def claim(self, w: str, k: int) -> None:
        eligible = self.eligible()
        room_on_limited = self.room_on_limited()
        jobs = self.queue.claim(self.worker_id(w), k)
        claimed = {j.id for j in jobs}
        assert claimed <= eligible, f"claimed {claimed - eligible} out of turn"
        on_limited = {i for i in claimed if self.connection_of[i] == self.limited}
        assert len(on_limited) <= room_on_limited, "the limited connection ran over its cap"
        if k == 1000:
            # Its own lanes and every free item it may; others' lanes only once they
            # have waited (LANE_HANDOFF), which a slow machine may reach: not required.
            own = self.own_share(w)
            assert own <= claimed, f"left {own - claimed} waiting"
            waiting_on_limited = {i for i in eligible if self.connection_of[i] == self.limited}
            assert len(on_limited) == min(room_on_limited, len(waiting_on_limited))
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
        del self.place[w]
        self.generation[w] += 1
        self.register(w)

    @rule(w=st.sampled_from(WORKERS))
    def heartbeat(self, w: str) -> None:
        """A heartbeat teaches the worker its place among the live workers."""
        assert self.queue.heartbeat(self.worker_id(w))
        self.place[w] = (self.live().index(self.worker_id(w)), len(self.live()))

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
