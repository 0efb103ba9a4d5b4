"""Handlers: the code that carries out an instruction for one claimed item.

A handler is a plain function or a coroutine function taking a `Context`. It returns
normally on success, raises `TransientError` / `PermanentError` to say how it failed, and
queues follow-up items with `ctx.enqueue(...)`: they are written in the same transaction as
the item's completion, so a crash can never leave one without the other.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from stockyard.engine.models import Job, OutcomeKind, Request
from stockyard.errors import PermanentError, TransientError

Handler = Callable[["Context"], Awaitable[None] | None]


@dataclass(slots=True)
class Context:
    job: Job
    # The item's connection, as the worker's connection lookup gives it (the
    # stockyard.tenancy Connection): the engine itself only knows its id.
    connection: Any
    follow_ups: list[Request] = field(default_factory=list)

    @property
    def payload(self) -> dict[str, Any]:
        return self.job.payload

    def enqueue(
        self,
        instruction: str,
        payload: dict[str, Any] | None = None,
        connection_id: int | None = None,
        refs: Iterable[str] = (),
        idempotency_key: str | None = None,
    ) -> None:
        self.follow_ups.append(
            Request(
                instruction,
                payload or {},
                connection_id,
                tuple(refs),
                idempotency_key=idempotency_key,
                parent_id=self.job.id,
            )
        )


@dataclass(frozen=True, slots=True)
class Registered:
    handler: Handler
    is_async: bool


class HandlerRegistry:
    """Instruction name -> handler, optionally for the items of one connector type only
    (the `demo` connector runs its own handler for every instruction). An item with no
    handler fails permanently, clearly."""

    def __init__(self) -> None:
        self._handlers: dict[tuple[str, str | None], Registered] = {}

    def register(self, instruction: str, handler: Handler, connector: str | None = None) -> None:
        registered = Registered(handler, inspect.iscoroutinefunction(handler))
        self._handlers[(instruction, connector)] = registered

    def register_all(
        self, instructions: Iterable[str], handler: Handler, connector: str | None = None
    ) -> None:
        for name in instructions:
            self.register(name, handler, connector)

    def get(self, instruction: str, connector: str | None = None) -> Registered | None:
        found = self._handlers.get((instruction, connector)) if connector else None
        return found or self._handlers.get((instruction, None))


def error_text(exc: BaseException) -> str:
    """An exception's message, even when its __str__ itself fails."""
    try:
        return str(exc)
    except Exception:
        return "(its message could not be read)"


def classify(exc: BaseException) -> tuple[OutcomeKind, str, float | None]:
    """How a handler's exception fails its item: (kind, error text, retry_after). The
    worker and whoever else runs handlers (a remote runner's replay) share it."""
    text = error_text(exc)
    if isinstance(exc, TransientError):
        return "transient", text or "transient error", exc.retry_after
    if isinstance(exc, PermanentError):
        return "permanent", text or "permanent error", None
    if isinstance(exc, TimeoutError | ConnectionError):
        return "transient", f"{type(exc).__name__}: {text}", None
    return "permanent", f"{type(exc).__name__}: {text}", None
