"""The worker: claims items in batches, runs their handlers concurrently, settles results.

One asyncio loop runs async handlers directly and plain functions in a thread pool.
Database work happens on dedicated threads, so a slow commit never stalls handlers: a
claimer claims whenever there is room (at most `batch` a transaction, so a new item never
waits long behind a claim), and a settler records results that finish together in one
transaction. On PostgreSQL the two have a connection each and run at once; on SQLite,
whose writers take turns anyway, they share one, and a settle claims in its own
transaction (back-to-back transactions would leave other processes no gap to write).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import queue as queues
import secrets
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from stockyard.db import DATABASE_ERRORS
from stockyard.engine.handlers import Context, HandlerRegistry, Registered, classify
from stockyard.engine.handlers import error_text as _text
from stockyard.engine.instructions import RetryPolicy
from stockyard.engine.models import Job, Outcome
from stockyard.engine.queue import Queue
from stockyard.errors import NotFound, PermanentError, StockyardError, TransientError

log = logging.getLogger("stockyard.worker")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    concurrency: int = 200
    threads: int = 16
    poll_interval: float = 0.05  # other processes' enqueues are seen within this on SQLite
    # A heartbeat is one indexed UPDATE, so they can be frequent and the lease short: a
    # worker killed outright holds its items and lanes for at most lease_timeout plus a
    # heartbeat interval of whoever reaps it (7.5 s).
    heartbeat_interval: float = 1.5
    lease_timeout: float = 6.0  # a worker silent this long is dead: its items run again
    drain_timeout: float = 30.0
    # Items claimed per transaction at most: a claim is what a newly queued item waits for
    # on a busy worker. 256 keeps a no-op drain on PostgreSQL at the rate of one combined
    # transaction of 1,000 (bench/peers.py); 64 halves a newcomer's p99 wait beside a
    # flood (bench/fairness.py) for 0.6x of that drain. Results are recorded up to
    # `settle_batch` a transaction (on PostgreSQL no claim waits for them).
    batch: int = 256
    settle_batch: int = 1000

    def __post_init__(self) -> None:
        if min(self.concurrency, self.threads, self.batch, self.settle_batch) < 1:
            raise StockyardError("concurrency, threads and batches must be at least 1")
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


_heap_frozen = False


def _freeze_startup_heap() -> None:
    """Once per process, before the first worker runs: what the process built until now
    (modules, flows, connectors, the application) lives as long as the process, yet every
    full collection walked it again while the worker churns through short-lived tasks and
    rows. Frozen, it is skipped: a no-op drain measured ~15% faster in a process holding
    the flows and connectors (docs/benchmarks.md)."""
    global _heap_frozen
    if not _heap_frozen:
        _heap_frozen = True
        gc.freeze()
        # The claimer, the settler and the event loop share one interpreter lock; at the
        # default 5 ms a claim waited behind a settle's Python work for whole intervals.
        sys.setswitchinterval(min(sys.getswitchinterval(), 0.001))


def _log_failure(outcome: Outcome, retried: bool) -> None:
    """One line per failed attempt, for whoever watches the worker: the item, its
    instruction, connection and attempt, and the error's first line. Never the payload or
    the connection's settings, which may hold secrets."""
    job = outcome.job
    error = (outcome.error or "").strip().splitlines()
    log.warning(
        "item %d (%s, connection %s) attempt %d failed%s: %s",
        job.id,
        job.instruction,
        "-" if job.connection_id is None else job.connection_id,
        job.attempt,
        ", will retry" if retried else "",
        error[0][:300] if error else "(no message)",
    )


class _HandlerThreads(Executor):
    """The threads of plain handlers. Unlike ThreadPoolExecutor's, they never hold the
    process open: a handler stuck past the drain timeout must not keep a stopping worker
    alive (its item is released and runs again)."""

    def __init__(self, size: int, prefix: str) -> None:
        self._size, self._prefix = size, prefix
        self._work: queues.SimpleQueue[tuple[Future[Any], Callable[[], Any]] | None]
        self._work = queues.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._idle = threading.Semaphore(0)
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("the worker is stopping")
            self._work.put((future, lambda: fn(*args, **kwargs)))
            if not self._idle.acquire(blocking=False) and len(self._threads) < self._size:
                name = f"{self._prefix}_{len(self._threads)}"
                thread = threading.Thread(target=self._serve, name=name, daemon=True)
                thread.start()
                self._threads.append(thread)
        return future

    def _serve(self) -> None:
        while (work := self._work.get()) is not None:
            future, fn = work
            del work
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn())
                except BaseException as exc:  # handed to the awaiting task, as is
                    future.set_exception(exc)
            del future, fn
            self._idle.release()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._closed = True
        if cancel_futures:
            while True:
                try:
                    work = self._work.get_nowait()
                except queues.Empty:
                    break
                if work is not None:
                    work[0].cancel()
        for _ in self._threads:
            self._work.put(None)
        if wait:
            for thread in self._threads:
                thread.join()


class Worker:
    def __init__(
        self,
        queue: Queue,
        handlers: HandlerRegistry,
        settings: WorkerSettings | None = None,
        periodic: Sequence[tuple[float, Callable[[], object]]] = (),
        observe: Callable[[Sequence[Outcome]], None] | None = None,
        connection: Callable[[int], Any] | None = None,
    ) -> None:
        self.queue = queue
        self.handlers = handlers
        # The connection of an id, for the handlers' context (stockyard.tenancy's
        # Tenancy.connection; NotFound when it is gone). Without it, handlers get none and
        # are chosen by instruction alone.
        self.connection = connection
        # Told every settled batch of outcomes (metrics); runs on the event loop, so cheap.
        self.observe = observe
        # Jobs of the layers above (e.g. scheduling pulls): (interval in seconds, function),
        # run on the database thread.
        self.periodic = tuple(periodic)
        self.settings = settings or WorkerSettings()
        self.id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.stats = Stats()
        self._db = ThreadPoolExecutor(1, thread_name_prefix="stockyard-db")
        # Claims run on a connection of their own where the database lets two transactions
        # write at once (PostgreSQL), so new work never waits behind a settle; on SQLite,
        # whose writers take turns anyway, on the same thread.
        self._settle_claims = not queue.db.row_locks
        self._claims_db = (
            self._db
            if self._settle_claims
            else ThreadPoolExecutor(1, thread_name_prefix="stockyard-claims")
        )
        self._pool = _HandlerThreads(self.settings.threads, "stockyard-h")
        self._results: list[Outcome] = []
        self._inflight = 0
        self._stopping = False
        self._changed = asyncio.Event()
        self._wake = asyncio.Event()
        self._deadlines: dict[int, tuple[float, asyncio.Task[None]]] = {}
        self._timed_out: set[int] = set()
        self._loop_ref: asyncio.AbstractEventLoop | None = None
        # Results being recorded right now (the settler's batch).
        self._settling: set[int] = set()
        self._starting: set[int] = set()  # claimed, their connections being read
        self._arrived = asyncio.Event()  # a result is waiting for the settler
        # After a failed claim we cannot know whether it committed (the connection may have
        # broken after COMMIT): the next claim first releases items this worker does not
        # know it holds.
        self._unsure = False
        self._failures = 0
        self._claim_failures = 0

    def stop(self) -> None:
        """Finish what is running, claim nothing new, then exit (SIGTERM / SIGINT)."""
        self._stopping = True
        self._changed.set()
        self._wake.set()

    async def _in_db(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._db, fn, *args)

    async def _in_claims_db(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._claims_db, fn, *args)

    async def run(self, stop_when_idle: bool = False, install_signals: bool = False) -> Stats:
        _freeze_startup_heap()
        loop = self._loop_ref = asyncio.get_running_loop()
        if install_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.stop)
        unsubscribe = self.queue.wakeup.subscribe_event(loop, self._wake)
        stop_listening = self.queue.db.listen(self.queue.wakeup.notify)
        try:
            if await self._register():
                await self._serve(stop_when_idle)
        finally:
            unsubscribe()
            stop_listening()
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._claims_db.shutdown(wait=True)
            self._db.shutdown(wait=True)
            if install_signals:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(sig)
        return self.stats

    async def _serve(self, stop_when_idle: bool) -> None:
        beat = asyncio.create_task(self._heartbeat())
        watchdog = asyncio.create_task(self._watchdog())
        timers = [asyncio.create_task(self._every(i, fn)) for i, fn in self.periodic]
        settler = asyncio.create_task(self._settler())
        try:
            await self._loop(stop_when_idle)
            await self._drain()
        finally:
            settler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await settler
            beat.cancel()
            watchdog.cancel()
            for timer in timers:
                timer.cancel()
            await self._sign_off()

    async def _register(self) -> bool:
        """Register, waiting out a database that cannot be written yet (full, restarting);
        False if told to stop first."""
        pause = self.settings.poll_interval
        while not self._stopping:
            try:
                host, pid = socket.gethostname(), os.getpid()
                await self._in_db(self.queue.register_worker, self.id, host, pid)
                return True
            except Exception as exc:
                if not self.queue.db.unavailable(exc):
                    raise
                log.warning("cannot register worker %s (%s); retrying", self.id, exc)
                pause = min(pause * 2, 2.0)
                await self._wait(pause)
        return False

    async def _sign_off(self) -> None:
        """Mark this worker stopped and release what it still holds. If the database cannot
        be written now, its lease expires instead and another worker releases them."""
        try:
            released = await self._in_db(self.queue.stop_worker, self.id, "stopped")
        except Exception as exc:
            log.error(
                "could not record that worker %s stopped (%s); its items run again"
                " once its lease expires",
                self.id,
                exc,
            )
            return
        if released:
            log.warning("released %d unfinished items to run again", released)

    async def _loop(self, stop_when_idle: bool) -> None:
        """The claimer: claim whenever there is room and work may be due (woken by an
        enqueue, a settled batch, or the poll interval). Results are recorded meanwhile by
        the settler (`_settler`), each in transactions of their own."""
        settings = self.settings
        next_poll = 0.0
        while not self._stopping:
            # Results not yet recorded still hold their place: the claimer never runs
            # ahead of the settler by more than the concurrency.
            held = self._inflight + len(self._results) + len(self._settling) + len(self._starting)
            room = min(settings.concurrency - held, settings.batch)
            if self._settle_claims and (self._results or self._settling):
                room = 0  # the settle under way claims in its own transaction
            now = time.monotonic()
            if room > 0 and (self._wake.is_set() or now >= next_poll):
                self._wake.clear()
                if await self._claim(room):
                    continue
                next_poll = now + settings.poll_interval
                if stop_when_idle and await self._idle():
                    return
                continue
            timeout = max(next_poll - now, 0.0) if room > 0 else None
            await self._wait_to_claim(timeout)

    async def _wait_to_claim(self, timeout: float | None) -> None:
        """Until woken (an enqueue, a settle that freed room or readied lanes, stop) or
        the timeout. Not on each finished handler: that frees no room (its result holds
        the place until recorded), and a wake-up per result cost the settler its CPU."""
        if timeout is None:
            # No room now: only a settle (which then wakes us) or stop can make some. A
            # wake-up left from an enqueue meanwhile is served by that settle's claim (on
            # SQLite) or by the claim the settle's wake-up leads to; kept set, it would
            # spin this loop.
            self._wake.clear()
            await self._wake.wait()
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def _idle(self) -> bool:
        """Nothing running, nothing to record, and nothing due (now or later)."""
        if self._inflight or self._results or self._settling or self._starting or self._unsure:
            return False
        return await self._next_due() is None

    async def _claim(self, room: int) -> int:
        """Claim up to `room` items and start them; how many."""
        try:
            if self._unsure:
                known = {
                    *self._deadlines,
                    *self._settling,
                    *self._starting,
                    *(o.job.id for o in self._results),
                }
                await self._in_claims_db(self.queue.release_unknown, self.id, known)
                self._unsure = False
            jobs = await self._in_claims_db(self.queue.claim, self.id, room)
        except Exception as exc:
            self._unsure = True
            self._claim_failures += 1
            if self._claim_failures == 1 or not self.queue.db.unavailable(exc):
                log.warning("claiming failed (%s); retrying", exc)
            await asyncio.sleep(min(self.settings.poll_interval * 2**self._claim_failures, 2.0))
            return 0
        self._claim_failures = 0
        return await self._begin(jobs)

    async def _begin(self, jobs: list[Job]) -> int:
        """Start claimed jobs; how many. Until they start they count as held (room) and as
        known (release_unknown), though reading their connections awaits."""
        ids = {j.id for j in jobs}
        self._starting |= ids
        try:
            self.stats.claimed += len(jobs)
            await self._load_connections(jobs)
            for job in jobs:
                self._start(job)
        finally:
            self._starting -= ids
        return len(jobs)

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

    async def _settler(self) -> None:
        """Record results as they come, a batch per transaction; then wake the claimer (a
        finished lane item makes its lane's next item ready)."""
        while True:
            if not self._results:
                self._arrived.clear()
                await self._arrived.wait()
                continue
            try:
                await self._settle()
            except Exception:  # a bug of ours must not silently stop all recording
                log.exception("recording results failed; trying again")
                await asyncio.sleep(self.settings.poll_interval)
            finally:
                # Whatever happened, the claimer may have room again (on SQLite it waits
                # for the settle to claim) and lanes may have new heads.
                self._wake.set()

    async def _settle(self) -> bool:
        """Record a batch of results; whether it was recorded."""
        batch = self.settings.settle_batch
        outcomes, self._results = self._results[:batch], self._results[batch:]
        self._settling = {o.job.id for o in outcomes}
        # On SQLite the settle also claims, in the same transaction: its writers take turns,
        # and a claim and a settle back to back would hold the write lock without a gap for
        # the other processes waiting for it (an API enqueueing, another worker).
        room = 0
        if self._settle_claims and not self._stopping:
            room = self.settings.concurrency - self._inflight - len(self._results)
        try:
            jobs, lost = await self._in_db(self.queue.settle, self.id, outcomes, room)
        except Exception as exc:
            self._failures += 1
            self._unsure = self._unsure or room > 0  # its claim may have committed
            log.warning("settling %d results failed (%s); retrying", len(outcomes), exc)
            # Unless the database is away, something in one result is what it refuses:
            # settle them one by one so that one fails alone. (Now and then even when it
            # looks away, in case a result makes it look so.)
            if not self.queue.db.unavailable(exc) or self._failures % 5 == 0:
                outcomes = await self._settle_one_by_one(outcomes)
            # The database is unreachable, restarting, locked or full: keep the results
            # and try again; the leases protect the items meanwhile.
            self._results = outcomes + self._results
            self._settling = set()
            pause = min(self.settings.poll_interval * 2**self._failures, 2.0)
            await asyncio.sleep(pause)
            return False
        self._settling = set()
        self._failures = 0
        self._count(outcomes, lost)
        await self._begin(jobs)
        return True

    def _count(self, outcomes: list[Outcome], lost: int = 0) -> None:
        if self.observe is not None and outcomes:
            self.observe(outcomes)
        for o in outcomes:
            if o.kind == "done":
                self.stats.done += 1
                continue
            retried = self._policy(o.job).retries(o.kind, o.job.attempt)
            if retried:
                self.stats.retried += 1
            else:
                self.stats.failed += 1
            _log_failure(o, retried)
        self.stats.lost += lost

    async def _settle_one_by_one(self, outcomes: list[Outcome]) -> list[Outcome]:
        """Settle each outcome alone; one the database refuses becomes a permanent failure
        of its item, recorded without what it carried. Returns what is left to retry: all
        from the first outcome whose plain failure cannot be recorded either (then it is
        the database, not the item)."""
        for n, outcome in enumerate(outcomes):
            try:
                _, lost = await self._in_db(self.queue.settle, self.id, [outcome], 0)
                self._count([outcome], lost)
                continue
            except Exception as exc:
                problem = exc
            failure = Outcome(
                outcome.job,
                "permanent",
                outcome.ended_at,
                f"its result could not be recorded: {type(problem).__name__}: {_text(problem)}",
            )
            try:
                _, lost = await self._in_db(self.queue.settle, self.id, [failure], 0)
            except Exception:
                return outcomes[n:]
            log.error(
                "item %d: its result could not be recorded (%s); failed it",
                outcome.job.id,
                _text(problem),
            )
            self._count([failure], lost)
        return []

    def _policy(self, job: Job) -> RetryPolicy:
        """The item's retry rules; defaults for an instruction no longer in the catalog."""
        return self.queue.instructions.policy(job.instruction)

    async def _load_connections(self, jobs: list[Job]) -> None:
        """Read the jobs' connections here, on the claims' database thread, so handlers never
        wait on the database from the event loop."""
        wanted = {j.connection_id for j in jobs if j.connection_id is not None}
        if wanted and self.connection is not None:
            with contextlib.suppress(Exception):  # _context reports what stays missing
                await self._in_claims_db(self._fetch_connections, wanted)

    def _fetch_connections(self, ids: set[int]) -> None:
        assert self.connection is not None
        for connection_id in ids:
            with contextlib.suppress(NotFound):
                self.connection(connection_id)

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
        self._deadlines[job.id] = (time.monotonic() + self._policy(job).timeout, task)

    async def _execute(self, job: Job) -> None:
        try:
            outcome = await self._run_handler(job)
        finally:
            self._deadlines.pop(job.id, None)
            self._inflight -= 1
        self._results.append(outcome)
        self._arrived.set()
        self._changed.set()

    async def _run_handler(self, job: Job) -> Outcome:
        try:
            ctx, registered = self._context(job)
            if registered.is_async:
                await registered.handler(ctx)  # type: ignore[misc]
            else:
                loop = asyncio.get_running_loop()
                await loop.run_in_executor(self._pool, registered.handler, ctx)
            return Outcome(job, "done", time.time(), follow_ups=ctx.follow_ups)
        except asyncio.CancelledError:
            if job.id not in self._timed_out:
                raise
            self._timed_out.discard(job.id)
            timeout = self._policy(job).timeout
            return Outcome(job, "transient", time.time(), f"timed out after {timeout:g}s")
        except BaseException as exc:
            # SystemExit, KeyboardInterrupt or a library's own BaseException raised by a
            # handler is that item's failure: it must not end the worker serving others.
            kind, message, retry_after = classify(exc)
            return Outcome(job, kind, time.time(), message, retry_after)

    def _context(self, job: Job) -> tuple[Context, Registered]:
        connection = None
        if job.connection_id is not None and self.connection is not None:
            try:
                connection = self.connection(job.connection_id)
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
                await self._beat()
                if await self._in_db(self.queue.reap, settings.lease_timeout):
                    # A worker died: beat again to count only the live ones, so its lanes
                    # become some live worker's share at once.
                    await self._beat()
            except Exception as exc:
                if not self.queue.db.unavailable(exc):
                    log.exception("heartbeat failed; trying again")
                else:
                    log.warning("heartbeat failed (%s); trying again", exc)

    async def _beat(self) -> None:
        if not await self._in_db(self.queue.heartbeat, self.id):
            # We were declared dead (a long stall); our items already run elsewhere and
            # settling them will be refused. Come back under a new identity.
            log.error("worker %s lost its lease; re-registering", self.id)
            self.id = f"{self.id.rsplit(':', 1)[0]}:{secrets.token_hex(3)}"
            await self._in_db(
                self.queue.register_worker, self.id, socket.gethostname(), os.getpid()
            )

    async def _drain(self) -> None:
        """Wait for running handlers and for the settler to record their results, all
        within the drain timeout: what cannot be recorded by then runs again (at least
        once holds)."""
        deadline = time.monotonic() + self.settings.drain_timeout
        while (self._inflight or self._results or self._settling) and (time.monotonic() < deadline):
            await self._wait(min(max(deadline - time.monotonic(), 0.0), 0.05))
        if self._results or self._settling:
            log.error(
                "could not record %d results within the drain timeout; their items run again",
                len(self._results) + len(self._settling),
            )
