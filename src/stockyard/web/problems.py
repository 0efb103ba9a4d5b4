"""Every error as application/problem+json (RFC 9457) with a message a person can act on.
Validation errors list each field and what is wrong with it.

The status of each error is decided here for the API and the console alike; the console
shows the same statuses as pages."""

from __future__ import annotations

import logging
import math
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException

# Exception to the shells' rule (tests/test_architecture.py): the database's own error
# types, which no layer below turns into ours, answer 503 here and in the console.
from stockyard.db import DATABASE_ERRORS
from stockyard.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    Misconfigured,
    NotFound,
    RateLimited,
    StockyardError,
    StorageFull,
    Unauthenticated,
)

__all__ = ["DATABASE_ERRORS", "MEDIA_TYPE", "STORAGE_FULL", "install", "problem", "status_of"]

log = logging.getLogger("stockyard.api")  # the name operators' log filters know
MEDIA_TYPE = "application/problem+json"
STATUS_OF: dict[type[StockyardError], int] = {
    InvalidInput: 422,
    NotFound: 404,
    Conflict: 409,
    Unauthenticated: 401,
    Forbidden: 403,
    Misconfigured: 503,
    StorageFull: 507,
    RateLimited: 429,
}
# The database's own words name its file or server: they go to the log, not to callers.
STORAGE_FULL = (
    "the database's storage is full (or cannot be written): nothing was changed;"
    " try again once the operator has freed space"
)


def problem(
    status: int, detail: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    body = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status}
    body["detail"] = detail
    body.update(extra)
    return JSONResponse(body, status_code=status, headers=headers, media_type=MEDIA_TYPE)


def _field(loc: tuple[Any, ...]) -> str:
    # ("body", "items", 0, "instruction") -> "items.0.instruction"; the query's name as is.
    parts = (
        [str(p) for p in loc[1:]]
        if loc and loc[0] in ("body", "query", "path")
        else list(map(str, loc))
    )
    return ".".join(parts) or str(loc[0] if loc else "body")


def status_of(exc: StockyardError) -> int:
    return next((s for t, s in STATUS_OF.items() if isinstance(exc, t)), 422)


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": _field(tuple(e.get("loc", ()))), "message": str(e.get("msg", "invalid"))}
            for e in exc.errors()[:20]
        ]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        return problem(422, detail or "invalid request", errors=errors)

    @app.exception_handler(ValidationError)
    async def invalid_model(request: Request, exc: ValidationError) -> JSONResponse:
        # A model built inside a route from already-checked parts: still the caller's input.
        return await invalid(request, RequestValidationError(exc.errors()))

    @app.exception_handler(StorageFull)
    async def full(request: Request, exc: StorageFull) -> JSONResponse:
        log.error("storage full on %s %s: %s", request.method, request.url.path, exc)
        return problem(507, STORAGE_FULL, {"Retry-After": "30"})

    @app.exception_handler(StockyardError)
    async def known(request: Request, exc: StockyardError) -> JSONResponse:
        status = status_of(exc)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return problem(status, str(exc), headers)

    @app.exception_handler(RateLimited)
    async def limited(request: Request, exc: RateLimited) -> JSONResponse:
        return problem(429, str(exc), {"Retry-After": str(math.ceil(exc.retry_after))})

    @app.exception_handler(HTTPException)
    async def http(request: Request, exc: HTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no such endpoint: {request.method} {request.url.path} (see /openapi.json)"
        return problem(exc.status_code, detail, dict(exc.headers or {}))

    for error in DATABASE_ERRORS:
        app.add_exception_handler(error, _database)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return problem(500, "an unexpected error; it is logged on the server")


async def _database(request: Request, exc: Exception) -> JSONResponse:
    text = str(exc)
    if "NUL" in text or "0x00" in text:
        return problem(422, "text may not contain the NUL character")
    log.warning("database error on %s %s: %s", request.method, request.url.path, exc)
    return problem(503, "the database is busy or unreachable; try again", {"Retry-After": "1"})
