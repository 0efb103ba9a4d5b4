"""The one HTTP application around one `Stockyard` service: the API (/v1, with its OpenAPI
document and /docs) and the console (/console) side by side, with what both share around
them: error answers, body limits, strict JSON, rate limits and health routes.

The console is its own application, mounted: its errors are pages, where the API's are
problem documents. The API's routes join this application directly rather than a mounted
one, so that its document lists them under their full paths and is served at /openapi.json.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from fastapi import FastAPI

from stockyard import __version__
from stockyard.metrics import Metrics
from stockyard.service import Stockyard
from stockyard.web import api, console, ops, problems
from stockyard.web.deps import AppState
from stockyard.web.limits import BodyLimit, RateLimiter
from stockyard.web.settings import ApiSettings
from stockyard.web.strict import StrictJson


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
        title=api.TITLE,
        version=__version__,
        description=api.DESCRIPTION,
        docs_url=None,  # stockyard.web.api.docs serves Swagger UI from this server, not a CDN
        redoc_url=None,
    )
    state = AppState(
        service=service,
        limiter=RateLimiter(settings.rate_per_second, settings.rate_burst),
        metrics=metrics or Metrics(service.queue),
    )
    app.state.stockyard = state
    problems.install(app)
    api.install(app)
    app.include_router(ops.router)
    app.mount("/console", console.create_console(state))
    app.add_middleware(StrictJson)  # inside BodyLimit: it reads only bodies of allowed size
    app.add_middleware(BodyLimit, limit=settings.max_body)
    return app
