"""Several worker processes on one database, with SIGKILLs, operator actions and (on
PostgreSQL) a server restart mid-drain. Each worker logs every execution it starts."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import pytest
from systems.postgres import Databases, LocalServer, pg_bin

from stockyard.db import DATABASE_ERRORS
from stockyard.engine import ItemFilter, Queue, Request
from stockyard.tenancy import Tenancy
from tests.support.queues import UrlMaker, make_queue

ROOT = Path(__file__).resolve().parent.parent
FINISHED = ("done", "skipped")


def _spawn(url: str, log: Path, sleep: float = 0.003) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.support.crash_worker", url, str(log)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src"), "CRASH_WORKER_SLEEP": str(sleep)},
    )


def _fill(
    queue: Queue, lanes: int, per_lane: int, free: int, failing: int = 0
) -> tuple[int, list[int]]:
    """`failing` blocking items fail on their first attempt, until an operator acts."""
    client = Tenancy(queue.db).client_id("default")
    lane_ids = [
        Tenancy(queue.db).add_connection(client, "channel", "demo", f"Shop {n}").id
        for n in range(lanes)
    ]
    rng = random.Random(1)
    requests = [Request("update_variant", {}, lane_ids[n % lanes]) for n in range(lanes * per_lane)]
    for n in rng.sample(range(len(requests)), failing):
        requests[n] = Request("update_variant", {"fail_first": True}, requests[n].connection_id)
    requests += [Request("sync_order", {}) for _ in range(free)]
    rng.shuffle(requests)
    queue.enqueue(client, requests)
    return client, lane_ids


def _finished(queue: Queue, client: int) -> int:
    try:
        return queue.count(ItemFilter(client, statuses=FINISHED))
    except DATABASE_ERRORS:  # the server is restarting: ask again
        queue.db.close()
        return -1


def _wait_until_finished(
    queue: Queue, client: int, total: int, timeout: float, chaos: Callable[[], None] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _finished(queue, client) == total:
            return
        if chaos is not None:
            chaos()
        time.sleep(0.05)
    pytest.fail(f"not drained in {timeout}s: {_state(queue)}")


def _state(queue: Queue) -> str:
    """What is left, for the failure message."""
    conn = queue.db.connection()
    statuses = conn.execute("SELECT status, count(*) FROM items GROUP BY status").fetchall()
    running = conn.execute(
        "SELECT worker_id, count(*) FROM items WHERE status = 'running' GROUP BY worker_id"
    ).fetchall()
    workers = conn.execute("SELECT id, stopped_at IS NULL, stop_reason FROM workers").fetchall()
    lanes = conn.execute(
        "SELECT count(*), count(head_id), count(ready_at) FROM lanes WHERE pending > 0"
    ).fetchall()
    return f"items {statuses}; running {running}; workers {workers}; lanes {lanes}"


def _check(queue: Queue, client: int, logs: list[Path], total: int) -> int:
    """Every item finished; every lane ran in queue-id order; a repeated run is explained
    by a recorded attempt (a lost lease, or a failure an operator retried)."""
    runs: list[tuple[int, int, int]] = []
    for log in logs:
        if not log.exists():  # a worker killed before it ran anything
            continue
        for line in log.read_text().splitlines():
            item_text, lane_text, at_text = line.split()
            lane_no = -1 if lane_text == "None" else int(lane_text)
            runs.append((int(at_text), int(item_text), lane_no))
    runs.sort()
    assert queue.count(ItemFilter(client, statuses=FINISHED)) == total
    by_lane: dict[int, list[int]] = defaultdict(list)
    counts: dict[int, int] = defaultdict(int)
    for _, item, lane in runs:
        counts[item] += 1
        if lane != -1:
            seq = by_lane[lane]
            if not seq or seq[-1] != item:  # a re-run follows its earlier attempt directly
                seq.append(item)
    assert len(counts) == total, "some item never ran"
    for lane, seq in by_lane.items():
        assert seq == sorted(seq), f"lane {lane} ran out of order"
        assert len(seq) == len(set(seq)), f"lane {lane} went back to an earlier item"
    repeated = [i for i, n in counts.items() if n > 1]
    lost = 0
    for item in repeated:
        history = [a.outcome for a in queue.detail(client, item).attempts]
        assert len(history) >= counts[item], f"item {item} ran twice without a record"
        lost += "lost" in history
    return lost


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=60)  # a loaded machine drains slowly; a kill would fail the test
        except subprocess.TimeoutExpired:
            p.kill()


def test_three_worker_processes_share_one_queue(new_url: UrlMaker, tmp_path: Path) -> None:
    url = new_url()
    queue = make_queue(url)
    client, _ = _fill(queue, lanes=60, per_lane=40, free=1200)
    total = 60 * 40 + 1200
    logs = [tmp_path / f"w{n}.log" for n in range(3)]
    procs = [_spawn(url, log) for log in logs]
    try:
        _wait_until_finished(queue, client, total, timeout=180)
    finally:
        _stop(procs)
    assert all(p.returncode == 0 for p in procs), "a worker did not drain cleanly on SIGTERM"
    assert _check(queue, client, logs, total) == 0


def test_workers_killed_at_random_lose_nothing(new_url: UrlMaker, tmp_path: Path) -> None:
    url = new_url()
    queue = make_queue(url)
    client, _ = _fill(queue, lanes=50, per_lane=50, free=1000)
    total = 50 * 50 + 1000
    rng = random.Random(42)
    logs: list[Path] = []
    procs: list[subprocess.Popen[bytes]] = []

    def start() -> None:
        logs.append(tmp_path / f"w{len(logs)}.log")
        procs.append(_spawn(url, logs[-1], sleep=0.05))

    start()
    start()
    kills = 0
    next_kill = time.monotonic() + rng.uniform(0.1, 0.4)

    def chaos() -> None:
        nonlocal kills, next_kill
        if kills < 8 and time.monotonic() > next_kill:
            victim = rng.choice([p for p in procs if p.poll() is None])
            victim.kill()  # SIGKILL: no chance to clean up
            victim.wait()
            kills += 1
            start()
            next_kill = time.monotonic() + rng.uniform(0.1, 0.4)

    try:
        _wait_until_finished(queue, client, total, timeout=240, chaos=chaos)
    finally:
        _stop(procs)
    assert kills >= 3, "the drain finished before the chaos could start"
    lost = _check(queue, client, logs, total)
    print(f"{kills} kills, {lost} items ran twice after a lost lease")


def _lane_runs(log: Path) -> int:
    if not log.exists():
        return 0
    return sum(1 for line in log.read_text().splitlines() if line.split()[1] != "None")


def test_two_workers_share_the_lanes_and_a_survivor_takes_a_dead_ones(
    new_url: UrlMaker, tmp_path: Path
) -> None:
    """Both workers run lanes (each takes its share first); when one is killed and none
    replaces it, the survivor picks up its share once its lease expires."""
    url = new_url()
    queue = make_queue(url)
    client, _ = _fill(queue, lanes=20, per_lane=30, free=0)
    total = 20 * 30
    logs = [tmp_path / f"w{n}.log" for n in range(2)]
    procs = [_spawn(url, log, sleep=0.05) for log in logs]
    try:
        deadline = time.monotonic() + 120
        while min(_lane_runs(log) for log in logs) < 5:
            assert time.monotonic() < deadline, "a worker never got lanes of its own"
            time.sleep(0.05)
        procs[0].kill()
        procs[0].wait()
        _wait_until_finished(queue, client, total, timeout=240)
    finally:
        _stop(procs)
    _check(queue, client, logs, total)


@pytest.mark.parametrize("backend", ["postgresql"])
def test_four_workers_with_operators_retrying_and_skipping(
    new_url: UrlMaker, tmp_path: Path
) -> None:
    url = new_url()
    queue = make_queue(url)
    client, _ = _fill(queue, lanes=200, per_lane=50, free=5000, failing=60)
    total = 200 * 50 + 5000
    logs = [tmp_path / f"w{n}.log" for n in range(4)]
    procs = [_spawn(url, log) for log in logs]
    acted = {"retry": 0, "skip": 0}

    def operator() -> None:
        failed = queue.list_items(ItemFilter(client, statuses=("failed",)), limit=100)
        for item in failed:
            action = "retry" if item.id % 2 else "skip"
            getattr(queue, action)(client, [item.id], "operator")
            acted[action] += 1

    try:
        _wait_until_finished(queue, client, total, timeout=240, chaos=operator)
    finally:
        _stop(procs)
    assert acted["retry"] > 10 and acted["skip"] > 10
    assert queue.count(ItemFilter(client, statuses=("skipped",))) == acted["skip"]
    _check(queue, client, logs, total)


@pytest.mark.skipif(pg_bin() is None, reason="needs PostgreSQL's binaries to restart a server")
def test_postgres_restart_mid_drain(tmp_path: Path) -> None:
    server = LocalServer()
    try:
        server.start()
        databases = Databases(server.url())
        url = databases.create()
        queue = make_queue(url)
        client, _ = _fill(queue, lanes=100, per_lane=40, free=3000)
        total = 100 * 40 + 3000
        logs = [tmp_path / f"w{n}.log" for n in range(2)]
        procs = [_spawn(url, log, sleep=0.01) for log in logs]
        try:
            while _finished(queue, client) < total // 4:
                time.sleep(0.05)
            server.stop("fast")  # every connection is cut, transactions roll back
            time.sleep(1.0)
            server.start()
            assert _finished(queue, client) < total, "the drain ended before the restart"
            _wait_until_finished(queue, client, total, timeout=180)
        finally:
            _stop(procs)
        assert all(p.returncode == 0 for p in procs), "a worker did not survive the restart"
        _check(queue, client, logs, total)
        queue.db.close()
    finally:
        server.destroy()
