"""The agent's side of the queue: a program beside an ERP behind a firewall (`stockyard
agent`) claims its connection's non-blocking items, runs their remote calls and settles
them, over the signed HTTP protocol of docs/remote-workers.md.

Authentication: every request is signed with the agent connection's webhook_secret
(Standard Webhooks); the connection in the address is the only one it can touch. Any
refusal (no such connection, not an agent connection, a bad signature) is the same
`REFUSED`, after the same work.

Remote calls, replayed: a claimed item's flow runs here, as a worker would run it, with
no answers: the agent connector's call raises `RemoteCall`, and that call is what the
agent is handed. A flow that finishes without one (the order already has its ERP code)
or fails is settled at once and never reaches the agent. When the agent answers, the flow
runs again with the answer (`stockyard.connectors.agent.answers`): the call returns it,
the flow stores it and queues its follow-ups, and the item is settled under the fence.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from stockyard.errors import Conflict, InvalidInput, NotFound, Unauthenticated
from stockyard.service.base import ServiceBase

if TYPE_CHECKING:
    from stockyard.connectors.agent import RemoteCall
    from stockyard.engine import Job, Outcome
    from stockyard.engine.handlers import HandlerRegistry
    from stockyard.tenancy import Connection

# What every refused agent request is told, whatever the reason (see module docstring).
REFUSED = (
    "agent request refused: sign it with the agent connection's webhook_secret (Standard Webhooks)"
)
SESSION = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
MAX_ITEMS = 50  # per claim and per settle
MAX_WAIT = 25.0  # seconds a claim may wait for work
MAX_RESULT = 255  # characters of a call's result (an ERP order code) the flow keeps
MAX_MESSAGE_ID = 200  # characters of a request's webhook-id
# How often a waiting claim looks for work another process queued (work queued in this
# process wakes it at once).
CLAIM_POLL = 1.0


@dataclass(frozen=True, slots=True)
class Work:
    """An item handed to the agent: the call its flow needs the agent to make."""

    id: int
    attempt: int
    instruction: str
    call: str
    args: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Claimed:
    items: list[Work]
    lease_seconds: float


@dataclass(frozen=True, slots=True)
class AgentOutcome:
    """What the agent reports of an item it was handed: `done` with the call's `result`,
    or `transient` / `permanent` with an `error` (and a retry hint)."""

    id: int
    attempt: int
    outcome: Literal["done", "transient", "permanent"]
    result: str | None = None
    error: str | None = None
    retry_after: float | None = None


@dataclass(frozen=True, slots=True)
class Settled:
    settled: list[int] = field(default_factory=list)
    refused: list[int] = field(default_factory=list)


def lease_seconds() -> float:
    """How long a session holds its items without a claim or heartbeat before a worker's
    reaper releases them: the workers' lease timeout."""
    from stockyard.engine.worker import WorkerSettings

    return WorkerSettings().lease_timeout


class AgentService(ServiceBase):
    # ------------------------------------------------------------------ authentication

    def agent_connection(
        self, connection_id: int, body: bytes, headers: Mapping[str, str]
    ) -> Connection:
        """The agent connection this request is signed for; `REFUSED` (Unauthenticated)
        for anything else, after the same signature check.

        The signature covers the message id, its time and the body, not the route (a
        heartbeat's body is a valid claim's): each message id is taken once per
        connection, for as long as its signature could be replayed, and a repeat gets
        the same `REFUSED`. The agent sends a fresh id with every request."""
        from stockyard.service.inbound import DUMMY_SECRET, signed_by
        from stockyard.signing import TOLERANCE, SignatureError, verify

        try:
            conn: Connection | None = self.tenancy.connection(connection_id)
        except NotFound:
            conn = None
        secret = None
        if conn is not None and getattr(self.connectors.get(conn.connector), "remote", False):
            secret = self._secrets_of(conn).get("webhook_secret")
        signed = signed_by(str(secret or DUMMY_SECRET), headers, body)
        if conn is None or not secret or not signed:
            raise Unauthenticated(REFUSED)
        try:
            message_id = verify(str(secret), headers, body)
        except SignatureError as exc:  # the sender holds the secret: say why (its clock)
            raise Unauthenticated(str(exc)) from None
        # A message first seen with a time TOLERANCE ahead is acceptable until TOLERANCE
        # after that time: remembered for twice the tolerance.
        if not _message_id_ok(message_id) or not self.queue.note_message(
            conn.id, message_id, 2 * TOLERANCE
        ):
            raise Unauthenticated(REFUSED)
        return conn

    # -------------------------------------------------------------------------- the protocol

    def agent_hello(self, conn: Connection) -> dict[str, Any]:
        return {"connection": conn.id, "description": conn.description}

    async def agent_claim(
        self,
        conn: Connection,
        session: str,
        limit: int,
        wait: float,
        holding: Sequence[int] = (),
    ) -> Claimed:
        """Up to `limit` items of the connection's, waiting up to `wait` seconds for some;
        returns as soon as any is claimed. The items the session already holds come first
        (the answer to a claim or a settle was lost: it would never learn of them again),
        but for those it is `holding` (still working on them). SessionEnded (409) once the
        session was reaped."""
        import anyio

        worker_id = _worker(conn, session)
        limit = _bounded(limit, 1, MAX_ITEMS, "limit")
        wait = _bounded(wait, 0, MAX_WAIT, "wait")
        holding = _item_ids(holding)
        # Disabled: refused at once; disabled while this waits: the engine's claim refuses
        # it (engine.remote.RunnerDisabled, the same 409).
        _enabled(conn)
        deadline = time.monotonic() + wait
        lease = lease_seconds()
        woken = asyncio.Event()
        unsubscribe = self.queue.wakeup.subscribe_event(asyncio.get_running_loop(), woken)
        try:
            while True:
                woken.clear()
                claimed, work = await anyio.to_thread.run_sync(
                    self._claim_once, conn, worker_id, limit, holding
                )
                left = deadline - time.monotonic()
                if work or left <= 0:
                    return Claimed(work, lease)
                if claimed:
                    continue  # all settled here: there may be more
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(woken.wait(), min(left, CLAIM_POLL))
        finally:
            unsubscribe()

    def agent_heartbeat(self, conn: Connection, session: str) -> None:
        """Extend the session's lease; SessionEnded (409) once it was reaped, Conflict (409)
        while the connection is disabled (its items are released as the lease runs out)."""
        worker_id = _worker(conn, session)
        _enabled(conn)
        self.queue.heartbeat_remote(worker_id)

    def agent_settle(
        self, conn: Connection, session: str, outcomes: Sequence[AgentOutcome]
    ) -> Settled:
        """Record what the agent did with the items it holds. An outcome for an item this
        session does not hold (now, at that attempt) is refused, whatever the reason.

        Allowed while the connection is disabled: it records what the ERP already did (an
        order written there stays written; refusing its code would have the order written
        again once the connection is enabled)."""
        from stockyard.connectors.base import REDACTED
        from stockyard.engine import Outcome

        # Only what is wrong with the request as a whole is refused (422): an outcome
        # Stockyard cannot record fails its own item, or the others would stay running.
        if not 1 <= len(outcomes) <= MAX_ITEMS:
            raise InvalidInput(f"outcomes: give 1 to {MAX_ITEMS}")
        ids = [o.id for o in outcomes]
        if len(set(ids)) != len(ids):
            raise InvalidInput("outcomes: each item at most once")
        for o in outcomes:
            if o.outcome == "done" and o.result is None:
                raise InvalidInput(f"outcome of item {o.id}: done needs a result")
        worker_id = _worker(conn, session)
        held = {j.id: j for j in self.queue.held(worker_id, ids)}
        hidden = self._hidden(conn) if any(o.error for o in outcomes) else []
        recorded: list[Outcome] = []
        for o in outcomes:
            job = held.get(o.id)
            if job is None or not _ours(conn, job) or job.attempt != o.attempt:
                continue
            if o.outcome == "done":
                problem = _bad_result(o.result)
                if problem:  # this item's alone: the batch's others are recorded
                    recorded.append(Outcome(job, "permanent", time.time(), problem))
                else:
                    recorded.append(self._replay(conn, job, str(o.result)))
            else:
                # Kept on the item, which every member of the client reads: an ERP's
                # message echoing the agent's credential must not show it.
                # The whole text first (a cut could split a secret), then the engine cuts
                # it as every item error, keeping its start and its end.
                error = o.error or f"{o.outcome} failure reported by the agent"
                for value in hidden:
                    error = error.replace(value, REDACTED)
                recorded.append(Outcome(job, o.outcome, time.time(), error, o.retry_after))
        accepted = set(self.queue.settle_items(worker_id, recorded)) if recorded else set()
        return Settled([i for i in ids if i in accepted], [i for i in ids if i not in accepted])

    # ------------------------------------------------------------------------- running

    def _hidden(self, conn: Connection) -> list[str]:
        """The connection's secrets, in every form an error could show them."""
        from stockyard.connectors.base import secret_values

        opened = self._secrets_of(conn)
        return secret_values(opened, frozenset(opened))

    def _claim_once(
        self, conn: Connection, worker_id: str, limit: int, holding: Sequence[int] = ()
    ) -> tuple[int, list[Work]]:
        """Claim, run each item's flow up to its remote call (an item handed back too: its
        call is made again, as for a fresh claim); settle at once those that finish (or
        fail) without one. How many were claimed, and the work for the agent."""
        from stockyard.connectors.agent import RemoteCall

        jobs = self.queue.claim_remote(
            worker_id, conn.id, limit, host=f"agent {conn.id}", holding=holding
        )
        work: list[Work] = []
        finished: list[Outcome] = []
        for job in jobs:
            ran = self._run(conn, job, None)
            if isinstance(ran, RemoteCall):
                work.append(Work(job.id, job.attempt, job.instruction, ran.method, ran.call_args))
            else:
                finished.append(ran)
        if finished:
            self.queue.settle_items(worker_id, finished)
        return len(jobs), work

    def _replay(self, conn: Connection, job: Job, result: str) -> Outcome:
        """The item's flow run again with the agent's answer to the call it asks for
        (create_order, create_fulfillment...): first without answers, to learn which
        call that is (the flows make their remote call before they store anything); a
        flow that no longer asks (the order got its code meanwhile) finishes as it does."""
        from stockyard.connectors.agent import RemoteCall
        from stockyard.engine import Outcome

        asked = self._run(conn, job, None)
        if not isinstance(asked, RemoteCall):
            return asked
        ran = self._run(conn, job, {asked.method: result})
        if isinstance(ran, RemoteCall):
            message = f"the flow asked the agent for {ran.method} after it answered"
            return Outcome(job, "permanent", time.time(), message)
        return ran

    def _run(
        self, conn: Connection, job: Job, answers: Mapping[str, Any] | None
    ) -> Outcome | RemoteCall:
        """Run the item's handler as a worker does (worker.py `_context`, `_run_handler`):
        its Outcome, or the RemoteCall it stopped at."""
        from stockyard.connectors import agent
        from stockyard.engine import Outcome
        from stockyard.engine.handlers import Context, classify

        registered = self.handlers.get(job.instruction, conn.connector)
        if registered is None:
            message = f"no handler is installed for instruction {job.instruction!r}"
            return Outcome(job, "permanent", time.time(), message)
        ctx = Context(job, conn)
        token = agent.answers.set(answers)
        try:
            if registered.is_async:
                asyncio.run(registered.handler(ctx))  # type: ignore[arg-type]
            else:
                registered.handler(ctx)
        except agent.RemoteCall as call:
            return call
        except Exception as exc:
            kind, message, retry_after = classify(exc)
            return Outcome(job, kind, time.time(), message, retry_after)
        finally:
            agent.answers.reset(token)
        return Outcome(job, "done", time.time(), follow_ups=ctx.follow_ups)

    @property
    def handlers(self) -> HandlerRegistry:
        return self._parts.handlers


def _worker(conn: Connection, session: str) -> str:
    """The session's worker id, namespaced by its connection: a session name can never be
    another connection's session or an in-process worker's id."""
    if not isinstance(session, str) or not SESSION.match(session):
        raise InvalidInput("session: 1 to 64 of A-Z a-z 0-9 _ . -")
    return f"agent:{conn.id}:{session}"


def _message_id_ok(message_id: str) -> bool:
    """A message id worth remembering: a short text (the agent's are 38 characters)."""
    from stockyard.engine.claims import clean

    return len(message_id) <= MAX_MESSAGE_ID and clean(message_id)


def _enabled(conn: Connection) -> None:
    """Disabling a connection is the operator's stop: its agent is handed no more work."""
    from stockyard.service.base import DISABLED

    if conn.status == DISABLED:
        raise Conflict(f"connection {conn.id} is disabled")


def _bad_result(result: object) -> str | None:
    """What is wrong with an agent's result, which the flow stores (an ERP order code):
    None when it is 1 to MAX_RESULT characters of text a database keeps."""
    from stockyard.engine.claims import clean

    if not isinstance(result, str) or not result.strip():
        return "the agent's result is empty: the call ran but answered nothing to keep"
    if len(result) > MAX_RESULT:
        return (
            f"the agent's result is {len(result)} characters long (at most {MAX_RESULT}):"
            f" {result[:80]!r}..."
        )
    if not clean(result):
        return "the agent's result holds NUL or a lone surrogate, which cannot be stored"
    return None


def _item_ids(ids: Sequence[int]) -> list[int]:
    if isinstance(ids, str | bytes) or not all(
        isinstance(i, int) and not isinstance(i, bool) and i >= 1 for i in ids
    ):
        raise InvalidInput("holding: item ids")
    return list(ids)


def _ours(conn: Connection, job: Job) -> bool:
    return job.client_id == conn.client_id and job.connection_id == conn.id and job.lane_id is None


def _bounded(value: float, low: float, high: float, name: str) -> Any:
    if isinstance(value, bool) or not low <= value <= high:
        raise InvalidInput(f"{name}: from {low:g} to {high:g}")
    return value
