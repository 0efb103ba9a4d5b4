"""Several worker processes on one SQLite file, with and without SIGKILLs mid-drain."""

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

from stockyard.engine import ItemFilter, Queue, Request
from tests.conftest import make_queue

ROOT = Path(__file__).resolve().parent.parent


def _spawn(db: Path, log: Path, sleep: float = 0.003) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.crash_worker", str(db), str(log)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src"), "CRASH_WORKER_SLEEP": str(sleep)},
    )


def _fill(queue: Queue, lanes: int, per_lane: int, free: int) -> tuple[int, list[int]]:
    client = queue.client_id("default")
    lane_ids = [
        queue.add_connection(client, "channel", "demo", f"Shop {n}").id for n in range(lanes)
    ]
    requests = [Request("update_variant", {}, lane_ids[n % lanes]) for n in range(lanes * per_lane)]
    requests += [Request("send_email", {}) for _ in range(free)]
    random.Random(1).shuffle(requests)
    queue.enqueue(client, requests)
    return client, lane_ids


def _wait_until_done(
    queue: Queue, client: int, total: int, timeout: float, chaos: Callable[[], None] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if queue.count(ItemFilter(client, statuses=("done",))) == total:
            return
        if chaos is not None:
            chaos()
        time.sleep(0.05)
    pytest.fail(f"not drained in {timeout}s")


def _check(queue: Queue, client: int, logs: list[Path], total: int) -> int:
    """Every item done; every lane ran in queue-id order; any repeat has a lost lease."""
    runs: list[tuple[int, int, int]] = []
    for log in logs:
        if not log.exists():  # a worker killed before it ran anything
            continue
        for line in log.read_text().splitlines():
            item_text, lane_text, at_text = line.split()
            lane_no = -1 if lane_text == "None" else int(lane_text)
            runs.append((int(at_text), int(item_text), lane_no))
    runs.sort()
    assert queue.count(ItemFilter(client, statuses=("done",))) == total
    by_lane: dict[int, list[int]] = defaultdict(list)
    counts: dict[int, int] = defaultdict(int)
    for _, item, lane in runs:
        counts[item] += 1
        if lane != -1:
            seq = by_lane[lane]
            if not seq or seq[-1] != item:  # a re-run follows its lost attempt directly
                seq.append(item)
    assert len(counts) == total, "some item never ran"
    for lane, seq in by_lane.items():
        assert seq == sorted(seq), f"lane {lane} ran out of order"
        assert len(seq) == len(set(seq)), f"lane {lane} went back to an earlier item"
    repeated = [i for i, n in counts.items() if n > 1]
    for item in repeated:
        outcomes = [a.outcome for a in queue.detail(client, item).attempts]
        assert "lost" in outcomes, f"item {item} ran twice without a lost lease"
    return len(repeated)


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()


def test_three_worker_processes_share_one_file(tmp_path: Path) -> None:
    db = tmp_path / "multi.db"
    queue = make_queue(db)
    client, _ = _fill(queue, lanes=60, per_lane=40, free=1200)
    total = 60 * 40 + 1200
    logs = [tmp_path / f"w{n}.log" for n in range(3)]
    procs = [_spawn(db, log) for log in logs]
    try:
        _wait_until_done(queue, client, total, timeout=180)
    finally:
        _stop(procs)
    assert all(p.returncode == 0 for p in procs), "a worker did not drain cleanly on SIGTERM"
    assert _check(queue, client, logs, total) == 0


def test_workers_killed_at_random_lose_nothing(tmp_path: Path) -> None:
    db = tmp_path / "crash.db"
    queue = make_queue(db)
    client, _ = _fill(queue, lanes=50, per_lane=50, free=1000)
    total = 50 * 50 + 1000
    rng = random.Random(42)
    logs: list[Path] = []
    procs: list[subprocess.Popen[bytes]] = []

    def start() -> None:
        logs.append(tmp_path / f"w{len(logs)}.log")
        procs.append(_spawn(db, logs[-1], sleep=0.02))

    start()
    start()
    kills = 0
    next_kill = time.monotonic() + rng.uniform(0.2, 0.6)

    def chaos() -> None:
        nonlocal kills, next_kill
        if kills < 8 and time.monotonic() > next_kill:
            victim = rng.choice([p for p in procs if p.poll() is None])
            victim.kill()  # SIGKILL: no chance to clean up
            victim.wait()
            kills += 1
            start()
            next_kill = time.monotonic() + rng.uniform(0.2, 0.6)

    try:
        _wait_until_done(queue, client, total, timeout=240, chaos=chaos)
    finally:
        _stop(procs)
    assert kills >= 3, "the drain finished before the chaos could start"
    repeated = _check(queue, client, logs, total)
    print(f"{kills} kills, {repeated} items ran twice after a lost lease")
