"""The worker: claims items in batches, runs their handlers concurrently, settles results.

One asyncio loop runs async handlers directly and plain functions in a thread pool. All
database work happens on one dedicated thread, so a slow commit never stalls handlers, and
results that finish together are settled (and more work claimed) in one transaction.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from stockyard.engine.models import Job, Outcome
from stockyard.engine.queue import Queue
from stockyard.errors import NotFound, PermanentError, StockyardError, TransientError
from stockyard.handlers import Context, HandlerRegistry

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
        self, queue: Queue, handlers: HandlerRegistry, settings: WorkerSettings | None = None
    ) -> None:
        self.queue = queue
        self.handlers = handlers
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

    def stop(self) -> None:
        """Finish what is running, claim nothing new, then exit (SIGTERM / SIGINT)."""
        self._stopping = True
        self._changed.set()

    async def _in_db(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._db, fn, *args)

    async def run(self, stop_when_idle: bool = False, install_signals: bool = False) -> Stats:
        loop = asyncio.get_running_loop()
        if install_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.stop)
        unsubscribe = self.queue.wakeup.subscribe_event(loop, self._wake)
        await self._in_db(self.queue.register_worker, self.id, socket.gethostname(), os.getpid())
        beat = asyncio.create_task(self._heartbeat())
        try:
            await self._loop(stop_when_idle)
            await self._drain()
        finally:
            beat.cancel()
            unsubscribe()
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
                    if stop_when_idle and self._inflight == 0 and not self._results:
                        return
                continue
            timeout = max(next_poll - now, 0.0) if room > 0 else None
            await self._wait(timeout)

    async def _wait(self, timeout: float | None) -> None:
        self._changed.clear()
        waiters = [asyncio.ensure_future(self._changed.wait()), asyncio.ensure_future(self._wake.wait())]
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()

    async def _settle(self, room: int) -> int:
        outcomes, self._results = self._results, []
        try:
            jobs, lost = await self._in_db(self.queue.settle, self.id, outcomes, room)
        except Exception:
            # The database is unreachable or locked beyond the busy timeout: keep the
            # results and try again shortly; the leases protect the items meanwhile.
            log.exception("settling %d results failed; retrying", len(outcomes))
            self._results = outcomes + self._results
            await asyncio.sleep(self.settings.poll_interval)
            return 0
        for o in outcomes:
            if o.kind == "done":
                self.stats.done += 1
            elif o.kind == "transient" and o.job.attempt < self.queue.catalog[o.job.instruction].retry.max_attempts:
                self.stats.retried += 1
            else:
                self.stats.failed += 1
        self.stats.lost += lost
        self.stats.claimed += len(jobs)
        for job in jobs:
            self._inflight += 1
            asyncio.ensure_future(self._execute(job))
        return len(jobs)

    async def _execute(self, job: Job) -> None:
        outcome = Outcome(job, "done", 0.0)
        try:
            await self._call(job, outcome)
        except BaseException as exc:  # noqa: BLE001 - every failure becomes an outcome
            if isinstance(exc, asyncio.CancelledError | KeyboardInterrupt | SystemExit):
                raise
            kind, message, retry_after = _classify(exc)
            outcome.kind = kind  # type: ignore[assignment]
            outcome.error = message
            outcome.retry_after = retry_after
            outcome.follow_ups = []
        finally:
            outcome.ended_at = time.time()
            self._inflight -= 1
            self._results.append(outcome)
            self._changed.set()

    async def _call(self, job: Job, outcome: Outcome) -> None:
        registered = self.handlers.get(job.instruction)
        if registered is None:
            raise PermanentError(f"no handler is installed for instruction {job.instruction!r}")
        try:
            connection = self.queue.connection(job.connection_id) if job.connection_id else None
        except NotFound:
            raise PermanentError(f"connection {job.connection_id} no longer exists") from None
        ctx = Context(job, connection)
        timeout = self.queue.catalog[job.instruction].retry.timeout
        if registered.is_async:
            await asyncio.wait_for(registered.handler(ctx), timeout)  # type: ignore[arg-type]
        else:
            loop = asyncio.get_running_loop()
            await asyncio.wait_for(loop.run_in_executor(self._pool, registered.handler, ctx), timeout)
        outcome.follow_ups = ctx.follow_ups

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
