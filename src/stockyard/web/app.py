"""The one HTTP application around one `Stockyard` service: the API (/v1, with its OpenAPI
document and /docs) and the console (/console) side by side, with what both share around
them: error answers, body limits, strict JSON, rate limits and health routes.

The console is its own application, mounted: its errors are pages, where the API's are
problem documents. The API's routes join this application directly rather than a mounted
one, so that its document lists them under their full paths and is served at /openapi.json.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

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

    @asynccontextmanager
    async def serving(app: FastAPI) -> AsyncIterator[None]:
        if lifespan is None:
            settle_garbage_collector()
            yield
            return
        async with lifespan(app):
            settle_garbage_collector()
            yield

    app = FastAPI(
        lifespan=serving,
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


# Young objects a collection waits for. CPython's 700 is less than one request of 100
# items holds at once, so each such request ran a collection that promoted its live
# objects, and every second or so a full collection walked the whole heap (~60 ms on
# this machine, a pause every request waiting then shares): ~10% of the server's time.
YOUNG_OBJECTS = 20_000


def settle_garbage_collector() -> None:
    """Once the server runs: what was loaded to start it (modules, the application, the
    OpenAPI models) moves out of the collector's sight for good (gc.freeze, after a
    collection so no garbage is kept), and young collections wait for YOUNG_OBJECTS.
    Once per process: a second application started in it (tests) changes nothing."""
    if gc.get_threshold()[0] >= YOUNG_OBJECTS:
        return
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_OBJECTS, middle, old)
