"""Issue 15.14a: a worker whose SQLite file cannot be written for a while (disk full, a
file-size limit) backs off, keeps its results, and goes on when writing works again.

Made real with RLIMIT_FSIZE in the worker's own process (SIGXFSZ ignored, so a write past
the limit fails with EFBIG, which SQLite reports as a disk I/O error): no privileges, no
mount, nothing to clean up. The worker process lowers and restores its own limit when the
test drops a flag file; writes stay blocked while the flag is there.

Run as `python -m tests.test_storage_full URL FOLDER` it is that worker process."""

from __future__ import annotations

import asyncio
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from stockyard.db import connect
from stockyard.engine import ItemFilter, Queue, Request
from stockyard.engine.handlers import Context, HandlerRegistry
from stockyard.engine.worker import Worker, WorkerSettings
from stockyard.errors import StorageFull
from stockyard.tenancy import Tenancy
from tests.support.queues import fast_instructions, make_queue

ROOT = Path(__file__).resolve().parent.parent
GUARD = 120.0  # seconds: only a hang gets near this


def test_the_db_layer_says_storage_full(tmp_path: Path) -> None:
    """In this process, for a moment: a write past the file-size limit is StorageFull."""
    queue = make_queue(f"sqlite:///{tmp_path}/full.db")
    client = Tenancy(queue.db).client_id("default")
    big = {"blob": "x" * 1_000_000}
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    limits = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, limits[1]))
    try:
        with pytest.raises(StorageFull, match="cannot be written"):
            queue.enqueue(client, [Request("sync_order", big)])
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limits)
        signal.signal(signal.SIGXFSZ, old_handler)
    # Space again: the same connection writes.
    assert len(queue.enqueue(client, [Request("sync_order", big)])) == 1
    queue.db.close()


def test_postgresql_disk_full_is_storage_full_too() -> None:
    """PostgreSQL's disk_full (53100) and io_error (58030) are waited out like SQLite's; a
    statement's bad data (e.g. 22P02) is not."""
    import psycopg

    db = connect("postgresql://nobody@127.0.0.1:9/none")
    assert db.storage_full(psycopg.errors.DiskFull()) and db.unavailable(StorageFull("x"))
    assert db.storage_full(psycopg.errors.IoError())
    bad = psycopg.errors.InvalidTextRepresentation()
    assert not db.storage_full(bad) and not db.unavailable(bad)


def _worker_process(url: str, folder: str) -> None:
    """Items wait for `go`; while `full` exists no file of this process may grow."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    flags = Path(folder)
    hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]

    def follow_flag(limited: bool) -> bool:
        full = (flags / "full").exists()
        if full != limited:
            resource.setrlimit(resource.RLIMIT_FSIZE, (0 if full else hard, hard))
            (flags / ("limited" if full else "unlimited")).touch()  # no bytes written
        return full

    def limit_while_flagged(limited: bool) -> None:
        while True:
            limited = follow_flag(limited)
            time.sleep(0.02)

    threading.Thread(target=limit_while_flagged, args=(follow_flag(False),), daemon=True).start()

    async def handle(ctx: Context) -> None:
        while not (flags / "go").exists():
            await asyncio.sleep(0.02)

    registry = HandlerRegistry()
    registry.register("sync_order", handle)
    queue = Queue(connect(url), fast_instructions())
    settings = WorkerSettings(
        poll_interval=0.02, heartbeat_interval=0.5, lease_timeout=60.0, drain_timeout=5.0
    )
    asyncio.run(
        Worker(queue, registry, settings, connection=Tenancy(queue.db).connection).run(
            install_signals=True
        )
    )


def _wait_for(what: str, check: Callable[[], bool], proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + GUARD
    while not check():
        assert proc.poll() is None, f"the worker exited (code {proc.returncode}) while {what}"
        assert time.monotonic() < deadline, f"timed out while {what}"
        time.sleep(0.05)


def test_a_worker_rides_out_a_full_disk(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/worker.db"
    queue = make_queue(url)
    client = Tenancy(queue.db).client_id("default")
    ids = queue.enqueue(client, [Request("sync_order", {"n": n}) for n in range(20)])
    flags = tmp_path / "flags"
    flags.mkdir()
    (flags / "full").touch()  # the disk is full when the worker starts
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.test_storage_full", url, str(flags)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        stderr=subprocess.PIPE,
    )
    lines: list[str] = []
    reader = threading.Thread(
        target=lambda: lines.extend(line.decode(errors="replace") for line in proc.stderr or ()),
        daemon=True,
    )
    reader.start()
    running = ItemFilter(client, statuses=("running",))

    def written() -> int:
        return sum("cannot be written" in line for line in lines)

    try:
        _wait_for("starting on a full disk", lambda: written() >= 2, proc)
        (flags / "full").unlink()
        _wait_for("claiming", lambda: queue.count(running) == len(ids), proc)
        seen = written()
        (flags / "limited").unlink()
        (flags / "full").touch()
        _wait_for("limiting", (flags / "limited").exists, proc)
        (flags / "go").touch()  # the handlers finish: their results cannot be written
        _wait_for(
            "settling against a full disk",
            lambda: written() >= seen + 3,
            proc,
        )
        assert queue.count(running) == len(ids)  # nothing recorded, nothing lost yet
        (flags / "full").unlink()
        done = ItemFilter(client, statuses=("done",))
        _wait_for("settling after space came back", lambda: queue.count(done) == len(ids), proc)
        # Full again, then SIGTERM: the worker cannot record that it stopped, and exits.
        (flags / "limited").unlink()
        (flags / "full").touch()
        _wait_for("limiting again", (flags / "limited").exists, proc)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=GUARD) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join(timeout=5)
    # Each item ran once: its result was kept across the outage, not run again.
    for item in ids:
        assert [a.outcome for a in queue.detail(client, item).attempts] == ["done"], item
    queue.db.close()


if __name__ == "__main__":
    _worker_process(sys.argv[1], sys.argv[2])
