"""Plain data passed in and out of the engine."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from stockyard.errors import InvalidInput

Status = Literal["queued", "running", "done", "failed", "skipped", "superseded"]
STATUSES: tuple[str, ...] = ("queued", "running", "done", "failed", "skipped", "superseded")
FINAL_STATUSES: tuple[str, ...] = ("done", "skipped", "superseded")


@dataclass(frozen=True, slots=True)
class Request:
    """What a caller asks to enqueue; the engine resolves mode, lane and description."""

    instruction: str
    payload: dict[str, Any] = field(default_factory=dict)
    connection_id: int | None = None
    refs: tuple[str, ...] = ()
    idempotency_key: str | None = None
    parent_id: int | None = None
    delay: float = 0.0
    # A newer blocking item with the same key in the same lane supersedes queued older ones.
    coalesce_key: str | None = None


class Job:
    """A claimed item, handed to a handler. The payload is parsed on first use, so a
    handler that never reads it costs nothing."""

    __slots__ = (
        "_payload",
        "attempt",
        "client_id",
        "connection_id",
        "failures",
        "id",
        "instruction",
        "lane_id",
        "parent_id",
        "raw_payload",
        "run_after",
        "started_at",
    )

    def __init__(
        self,
        id: int,
        client_id: int,
        instruction: str,
        connection_id: int | None,
        lane_id: int | None,
        raw_payload: str,
        attempt: int,
        failures: int,
        parent_id: int | None,
        started_at: float,
        run_after: float = 0.0,
    ) -> None:
        self.id = id
        self.client_id = client_id
        self.instruction = instruction
        self.connection_id = connection_id
        self.lane_id = lane_id
        self.raw_payload = raw_payload
        self.attempt = attempt
        self.failures = failures
        self.parent_id = parent_id
        self.started_at = started_at
        self.run_after = run_after  # when it became due: started_at - run_after is its wait
        self._payload: dict[str, Any] | None = None

    @property
    def payload(self) -> dict[str, Any]:
        if self._payload is None:
            self._payload = json.loads(self.raw_payload)
        return self._payload

    @property
    def idempotency_key(self) -> str:
        """Stable for every attempt of this item: connectors pass it on so a repeat is harmless."""
        return f"stockyard-item-{self.id}"

    def __repr__(self) -> str:
        return f"Job(id={self.id}, instruction={self.instruction!r}, attempt={self.attempt})"


OutcomeKind = Literal["done", "transient", "permanent"]


@dataclass(slots=True)
class Outcome:
    job: Job
    kind: OutcomeKind
    ended_at: float
    error: str | None = None
    retry_after: float | None = None
    follow_ups: list[Request] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Item:
    id: int
    client_id: int
    instruction: str
    mode: str
    connection_id: int | None
    lane_id: int | None
    status: str
    payload: dict[str, Any]
    refs: list[str]
    description: str
    parent_id: int | None
    idempotency_key: str | None
    created_at: float
    updated_at: float
    run_after: float
    attempts: int
    failures: int
    worker_id: str | None
    finished_at: float | None
    error: str | None
    error_kind: str | None
    started_at: float | None
    coalesce_key: str | None = None
    superseded_by: int | None = None


@dataclass(frozen=True, slots=True)
class Attempt:
    number: int
    worker_id: str | None
    started_at: float
    ended_at: float | None
    outcome: str
    error: str | None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    at: float
    actor: str
    action: str
    item_id: int | None
    lane_id: int | None
    detail: dict[str, Any]
    id: int | None = None


@dataclass(frozen=True, slots=True)
class ItemDetail:
    item: Item
    attempts: list[Attempt]
    children: list[Item]
    audit: list[AuditEntry]


@dataclass(frozen=True, slots=True)
class ItemFilter:
    client_id: int
    statuses: tuple[str, ...] = ()
    instructions: tuple[str, ...] = ()
    connection_id: int | None = None
    ref: str | None = None
    error_contains: str | None = None
    created_from: float | None = None
    created_to: float | None = None
    blocking: bool | None = None
    ids: tuple[int, ...] = ()
    # A reference starting with this, in any case (a search box's "sku-ba" finds SKU-BAD);
    # `ref` is one reference exactly, in any case.
    ref_prefix: str | None = None
    # Errors exactly this text: one group of the failures page, matched by the same SQL
    # that acts on it. (Not the first line: every Python traceback's first line is the
    # same, so "skip these" would skip unrelated failures.)
    error_is: str | None = None
    # Items up to this id only: a confirmed bulk action touches no item that arrived (or
    # was given a higher id) after the confirmation the operator read.
    max_id: int | None = None


# The longest error an item keeps (longer ones are cut when recorded).
MAX_ERROR = 2000


LaneState = Literal["idle", "ready", "waiting", "running", "blocked", "paused"]


# Beyond these a limit is a typo, not a wish (and the arithmetic stays exact in a float).
MAX_RUNNING_LIMIT = 100_000
MAX_PER_SECOND = 1_000_000.0


@dataclass(frozen=True, slots=True)
class Limits:
    """How hard a connection's remote system may be driven, across every worker and
    machine: at most `max_running` of its items run at once, and items start at most
    `per_second` a second on average with at most `burst` at once (a token bucket of
    `burst` tokens refilled at `per_second`; burst 1 spaces starts evenly, so no window of
    one second ever holds more than `per_second` starts). None: no such limit. Items
    beyond a limit wait, they never fail for it."""

    max_running: int | None = None
    per_second: float | None = None
    burst: int | None = None

    def __post_init__(self) -> None:
        m, r, b = self.max_running, self.per_second, self.burst
        if m is not None and not (_whole(m) and 1 <= m <= MAX_RUNNING_LIMIT):
            raise InvalidInput(f"max_running must be a whole number from 1 to {MAX_RUNNING_LIMIT}")
        if r is not None and not (_number(r) and 0 < r <= MAX_PER_SECOND):
            raise InvalidInput(f"per_second must be a number above 0, at most {MAX_PER_SECOND:g}")
        if b is not None and not (_whole(b) and 1 <= b <= MAX_RUNNING_LIMIT):
            raise InvalidInput(f"burst must be a whole number from 1 to {MAX_RUNNING_LIMIT}")
        if b is not None and r is None:
            raise InvalidInput("burst needs per_second: it is the size of the rate's bucket")

    @property
    def limited(self) -> bool:
        return self.max_running is not None or self.per_second is not None

    @property
    def bucket(self) -> int:
        """The rate bucket's size: `burst`, 1 when not given."""
        return self.burst or 1


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: object) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and value == value
        and value not in (float("inf"), float("-inf"))
    )


@dataclass(frozen=True, slots=True)
class LaneView:
    lane_id: int
    kind: str
    description: str
    state: LaneState
    paused: bool
    pending: int
    head_id: int | None
    head_instruction: str | None
    head_status: str | None
    head_error: str | None
    oldest_created_at: float | None
    next_run_at: float | None
    limits: Limits = field(default_factory=lambda: Limits())
    stopped_at: float | None = None  # when its head failed, if it did

    @property
    def waiting(self) -> int:
        """Items queued behind the head."""
        return max(self.pending - 1, 0) if self.head_id is not None else 0


@dataclass(frozen=True, slots=True)
class UnfinishedCounts:
    """A client's unfinished items per status, and its lanes stopped by a failed head
    (blocked) or by an operator (paused, not also blocked)."""

    queued: int
    running: int
    failed: int
    blocked_lanes: int
    paused_lanes: int


@dataclass(frozen=True, slots=True)
class QueueStats:
    items: dict[tuple[str, str], int]  # (status, instruction) -> unfinished items
    lanes: int
    blocked_lanes: int
    paused_lanes: int
    workers: int
