"""Builds the FastAPI application around one `Stockyard` service."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import FastAPI
from stockyard.web.api import docs, problems
from stockyard.web.api.deps import ApiSettings, AppState
from stockyard.web.api.limits import BodyLimit, RateLimiter
from stockyard.web.api.routes import (
    accounts,
    catalog,
    connections,
    inbound,
    items,
    lanes,
    notifications,
    ops,
)
from stockyard.web.api.strict import StrictJson
from stockyard.web.console import create_console

from stockyard import __version__
from stockyard.metrics import Metrics
from stockyard.service import Stockyard

DESCRIPTION = """Everything the console and the CLI do, for merchants' scripts and for the
systems that push data in. Authenticate with `Authorization: Bearer <API key or session
token>`. Errors are `application/problem+json` (RFC 9457)."""


def create_app(
    service: Stockyard,
    settings: ApiSettings | None = None,
    metrics: Metrics | None = None,
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]] | None = None,
) -> FastAPI:
    """`lifespan` runs around serving: `stockyard serve` starts its workers in it."""
    settings = settings or ApiSettings()
    app = FastAPI(
        lifespan=lifespan,
        title="Stockyard",
        version=__version__,
        description=DESCRIPTION,
        docs_url=None,  # api.docs serves Swagger UI from this server, not a CDN
        redoc_url=None,
    )
    app.state.stockyard = AppState(
        service=service,
        limiter=RateLimiter(settings.rate_per_second, settings.rate_burst),
        metrics=metrics or Metrics(service.queue),
    )
    problems.install(app)
    docs.install(app)
    for module in (items, lanes, connections, catalog, inbound, accounts, notifications, ops):
        app.include_router(module.router)
    app.mount("/console", create_console(app.state.stockyard))
    app.add_middleware(StrictJson)  # inside BodyLimit: it reads only bodies of allowed size
    app.add_middleware(BodyLimit, limit=settings.max_body)
    return app


def openapi_document(app: FastAPI) -> str:
    """The document kept in the repository (docs/openapi.json)."""
    document: dict[str, Any] = app.openapi()
    return json.dumps(document, indent=2, sort_keys=True) + "\n"
