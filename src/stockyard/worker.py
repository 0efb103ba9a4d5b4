"""The worker: claims items in batches, runs their handlers concurrently, settles results.

One asyncio loop runs async handlers directly and plain functions in a thread pool. All
database work happens on one dedicated thread, so a slow commit never stalls handlers, and
results that finish together are settled (and more work claimed) in one transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import socket
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from stockyard.db import DATABASE_ERRORS
from stockyard.engine.models import Job, Outcome
from stockyard.engine.queue import Queue
from stockyard.errors import NotFound, PermanentError, StockyardError, TransientError
from stockyard.handlers import Context, HandlerRegistry, Registered

log = logging.getLogger("stockyard.worker")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    concurrency: int = 200
    threads: int = 16
    poll_interval: float = 0.05  # other processes' enqueues are seen within this on SQLite
    heartbeat_interval: float = 5.0
    lease_timeout: float = 30.0  # a worker silent this long is dead: its items run again
    drain_timeout: float = 30.0

    def __post_init__(self) -> None:
        if self.concurrency < 1 or self.threads < 1:
            raise StockyardError("concurrency and threads must be at least 1")
        if not 0 < self.poll_interval <= 5:
            raise StockyardError("the poll interval must be between 0 and 5 seconds")
        if self.lease_timeout <= 2 * self.heartbeat_interval:
            raise StockyardError("the lease timeout must exceed two heartbeat intervals")


@dataclass(slots=True)
class Stats:
    claimed: int = 0
    done: int = 0
    retried: int = 0
    failed: int = 0
    lost: int = 0


def _classify(exc: BaseException) -> tuple[str, str, float | None]:
    if isinstance(exc, TransientError):
        return "transient", str(exc) or "transient error", exc.retry_after
    if isinstance(exc, PermanentError):
        return "permanent", str(exc) or "permanent error", None
    if isinstance(exc, TimeoutError | ConnectionError):
        return "transient", f"{type(exc).__name__}: {exc}", None
    return "permanent", f"{type(exc).__name__}: {exc}", None


class Worker:
    def __init__(
        self,
        queue: Queue,
        handlers: HandlerRegistry,
        settings: WorkerSettings | None = None,
        periodic: Sequence[tuple[float, Callable[[], object]]] = (),
        observe: Callable[[Sequence[Outcome]], None] | None = None,
    ) -> None:
        self.queue = queue
        self.handlers = handlers
        # Told every settled batch of outcomes (metrics); runs on the event loop, so cheap.
        self.observe = observe
        # Jobs of the layers above (e.g. scheduling pulls): (interval in seconds, function),
        # run on the database thread.
        self.periodic = tuple(periodic)
        self.settings = settings or WorkerSettings()
        self.id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.stats = Stats()
        self._db = ThreadPoolExecutor(1, thread_name_prefix="stockyard-db")
        self._pool = ThreadPoolExecutor(self.settings.threads, thread_name_prefix="stockyard-h")
        self._results: list[Outcome] = []
        self._inflight = 0
        self._stopping = False
        self._changed = asyncio.Event()
        self._wake = asyncio.Event()
        self._deadlines: dict[int, tuple[float, asyncio.Task[None]]] = {}
        self._timed_out: set[int] = set()
        self._loop_ref: asyncio.AbstractEventLoop | None = None
        # After a failed settle we cannot know whether its claim committed (the connection
        # may have broken after COMMIT): the next settle first releases unknown items.
        self._unsure = False
        self._failures = 0

    def stop(self) -> None:
        """Finish what is running, claim nothing new, then exit (SIGTERM / SIGINT)."""
        self._stopping = True
        self._changed.set()

    async def _in_db(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._db, fn, *args)

    async def run(self, stop_when_idle: bool = False, install_signals: bool = False) -> Stats:
        loop = self._loop_ref = asyncio.get_running_loop()
        if install_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.stop)
        unsubscribe = self.queue.wakeup.subscribe_event(loop, self._wake)
        stop_listening = self.queue.db.listen(self.queue.wakeup.notify)
        await self._in_db(self.queue.register_worker, self.id, socket.gethostname(), os.getpid())
        beat = asyncio.create_task(self._heartbeat())
        watchdog = asyncio.create_task(self._watchdog())
        timers = [asyncio.create_task(self._every(i, fn)) for i, fn in self.periodic]
        try:
            await self._loop(stop_when_idle)
            await self._drain()
        finally:
            beat.cancel()
            watchdog.cancel()
            for timer in timers:
                timer.cancel()
            unsubscribe()
            stop_listening()
            released = await self._in_db(self.queue.stop_worker, self.id, "stopped")
            if released:
                log.warning("released %d unfinished items to run again", released)
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._db.shutdown(wait=True)
            if install_signals:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(sig)
        return self.stats

    async def _loop(self, stop_when_idle: bool) -> None:
        settings = self.settings
        next_poll = 0.0
        while not self._stopping:
            room = settings.concurrency - self._inflight
            now = time.monotonic()
            want = room > 0 and (self._wake.is_set() or now >= next_poll)
            if self._results or want:
                self._wake.clear()
                claimed = await self._settle(room if want else 0)
                if want and not claimed:
                    next_poll = now + settings.poll_interval
                    idle = stop_when_idle and self._inflight == 0 and not self._results
                    if idle and not self._unsure and await self._next_due() is None:
                        return
                continue
            timeout = max(next_poll - now, 0.0) if room > 0 else None
            await self._wait(timeout)

    async def _wait(self, timeout: float | None) -> None:
        self._changed.clear()
        waiters = [
            asyncio.ensure_future(self._changed.wait()),
            asyncio.ensure_future(self._wake.wait()),
        ]
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()

    async def _settle(self, room: int) -> int:
        outcomes, self._results = self._results, []
        try:
            if self._unsure:
                known = {*self._deadlines, *(o.job.id for o in outcomes)}
                await self._in_db(self.queue.release_unknown, self.id, known)
                self._unsure = False
            jobs, lost = await self._in_db(self.queue.settle, self.id, outcomes, room)
        except Exception as exc:
            # The database is unreachable, restarting or locked beyond the busy timeout:
            # keep the results and try again; the leases protect the items meanwhile.
            self._unsure = True
            self._failures += 1
            pause = min(self.settings.poll_interval * 2**self._failures, 2.0)
            log.warning("settling %d results failed (%s); retrying", len(outcomes), exc)
            self._results = outcomes + self._results
            await asyncio.sleep(pause)
            return 0
        self._failures = 0
        if self.observe is not None and outcomes:
            self.observe(outcomes)
        for o in outcomes:
            if o.kind == "done":
                self.stats.done += 1
            elif (
                o.kind == "transient"
                and o.job.attempt < self.queue.instructions[o.job.instruction].retry.max_attempts
            ):
                self.stats.retried += 1
            else:
                self.stats.failed += 1
        self.stats.lost += lost
        self.stats.claimed += len(jobs)
        await self._load_connections(jobs)
        for job in jobs:
            self._start(job)
        return len(jobs)

    async def _load_connections(self, jobs: list[Job]) -> None:
        """Read the jobs' connections here, on the DB thread, so handlers never wait on
        the database from the event loop."""
        wanted = {j.connection_id for j in jobs if j.connection_id is not None}
        if wanted:
            with contextlib.suppress(Exception):  # _context reports what stays missing
                await self._in_db(self._fetch_connections, wanted)

    def _fetch_connections(self, ids: set[int]) -> None:
        for connection_id in ids:
            with contextlib.suppress(NotFound):
                self.queue.connection(connection_id)

    async def _next_due(self) -> float | None:
        try:
            due: float | None = await self._in_db(self.queue.next_due)
        except Exception:
            return 0.0  # cannot tell: not idle
        return due

    def _start(self, job: Job) -> None:
        self._inflight += 1
        assert self._loop_ref is not None
        task = self._loop_ref.create_task(self._execute(job))
        timeout = self.queue.instructions[job.instruction].retry.timeout
        self._deadlines[job.id] = (time.monotonic() + timeout, task)

    async def _execute(self, job: Job) -> None:
        try:
            ctx, registered = self._context(job)
            if registered.is_async:
                await registered.handler(ctx)  # type: ignore[misc]
            else:
                loop = asyncio.get_running_loop()
                await loop.run_in_executor(self._pool, registered.handler, ctx)
            outcome = Outcome(job, "done", time.time(), follow_ups=ctx.follow_ups)
        except asyncio.CancelledError:
            if job.id not in self._timed_out:
                raise
            self._timed_out.discard(job.id)
            timeout = self.queue.instructions[job.instruction].retry.timeout
            outcome = Outcome(job, "transient", time.time(), f"timed out after {timeout:g}s")
        except Exception as exc:
            kind, message, retry_after = _classify(exc)
            outcome = Outcome(job, kind, time.time(), message, retry_after)  # type: ignore[arg-type]
        self._deadlines.pop(job.id, None)
        self._inflight -= 1
        self._results.append(outcome)
        self._changed.set()

    def _context(self, job: Job) -> tuple[Context, Registered]:
        connection = None
        if job.connection_id is not None:
            try:
                connection = self.queue.connection(job.connection_id)
            except NotFound:
                raise PermanentError(f"connection {job.connection_id} no longer exists") from None
            except DATABASE_ERRORS as exc:
                message = f"cannot read connection {job.connection_id}: {exc}"
                raise TransientError(message) from None
        registered = self.handlers.get(
            job.instruction, connection.connector if connection is not None else None
        )
        if registered is None:
            raise PermanentError(f"no handler is installed for instruction {job.instruction!r}")
        return Context(job, connection), registered

    async def _watchdog(self) -> None:
        """Cancel handlers that overrun their instruction's timeout (a transient failure).
        One sweep a second costs less than a timer per item."""
        while True:
            await asyncio.sleep(1.0)
            now = time.monotonic()
            for item_id, (deadline, task) in list(self._deadlines.items()):
                if deadline < now and not task.done():
                    self._timed_out.add(item_id)
                    task.cancel()

    async def _every(self, interval: float, fn: Callable[[], object]) -> None:
        while True:
            try:
                await self._in_db(fn)
            except Exception:
                log.exception("periodic job %s failed; trying again", getattr(fn, "__name__", fn))
            await asyncio.sleep(interval)

    async def _heartbeat(self) -> None:
        settings = self.settings
        while True:
            await asyncio.sleep(settings.heartbeat_interval)
            try:
                alive = await self._in_db(self.queue.heartbeat, self.id)
                if not alive:
                    # We were declared dead (a long stall); our items already run elsewhere
                    # and settling them will be refused. Come back under a new identity.
                    log.error("worker %s lost its lease; re-registering", self.id)
                    self.id = f"{self.id.rsplit(':', 1)[0]}:{secrets.token_hex(3)}"
                    await self._in_db(
                        self.queue.register_worker, self.id, socket.gethostname(), os.getpid()
                    )
                await self._in_db(self.queue.reap, settings.lease_timeout)
            except Exception:
                log.exception("heartbeat failed; trying again")

    async def _drain(self) -> None:
        deadline = time.monotonic() + self.settings.drain_timeout
        while self._inflight and time.monotonic() < deadline:
            await self._wait(max(deadline - time.monotonic(), 0.0))
        while self._results:
            await self._settle(0)
