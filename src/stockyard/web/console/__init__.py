"""The web console: server-rendered pages (Jinja2) made live with htmx, served by
`stockyard serve` under /console. A thin shell over the service layer, like the API and
the CLI; docs/console.md says why it is built this way.

It is its own application, mounted beside the API by `stockyard.web.app`: its errors are
pages (or a redirect to sign-in), where the API's are problem documents. It shares the web
application's pieces (`stockyard.web`: callers, limits, error statuses, item filters) and
never imports the API.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from stockyard.errors import StockyardError, StorageFull
from stockyard.web.console.auth import SignInNeeded, password_router
from stockyard.web.console.guard import Guard
from stockyard.web.console.pages import error_page, router
from stockyard.web.deps import AppState
from stockyard.web.problems import DATABASE_ERRORS, STORAGE_FULL, status_of

log = logging.getLogger("stockyard.console")


def create_console(state: AppState) -> FastAPI:
    console = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    console.state.stockyard = state
    console.add_middleware(Guard)  # security headers and one-time messages on every answer
    console.include_router(router)
    console.include_router(password_router)

    @console.exception_handler(SignInNeeded)
    async def sign_in(request: Request, exc: SignInNeeded) -> Response:
        return error_page(request, 401, "sign in")

    @console.exception_handler(StorageFull)
    async def full(request: Request, exc: StorageFull) -> Response:
        log.error("storage full on %s %s: %s", request.method, request.url.path, exc)
        return error_page(request, 507, STORAGE_FULL)

    @console.exception_handler(StockyardError)
    async def refused(request: Request, exc: StockyardError) -> Response:
        return error_page(request, status_of(exc), str(exc))

    @console.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return error_page(request, 422, problems)

    @console.exception_handler(HTTPException)
    async def http(request: Request, exc: HTTPException) -> Response:
        return error_page(request, exc.status_code, str(exc.detail))

    for error in DATABASE_ERRORS:

        async def busy(request: Request, exc: Exception) -> Response:
            return error_page(request, 503, "the database is busy or unreachable; try again")

        console.add_exception_handler(error, busy)
    return console


__all__ = ["create_console"]
