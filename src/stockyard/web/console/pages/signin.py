"""Sign-in, sign-out, the console's static files and its front door."""

from __future__ import annotations

import functools

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from stockyard.errors import RateLimited, Unauthenticated
from stockyard.web.console import guard
from stockyard.web.console.auth import COOKIE, check_csrf, set_session, sign_in
from stockyard.web.console.pages.common import HERE, Page, templates
from stockyard.web.deps import address, limit

router = APIRouter()


@router.get("/static/htmx.min.js")
def htmx() -> FileResponse:
    return FileResponse(HERE / "static" / "htmx.min.js", headers={"Cache-Control": "max-age=86400"})


@functools.cache
def _stylesheet() -> bytes:
    # One file per area of the console (static/css/), served as one sheet: one request;
    # joined once per process (the files ship with the package).
    parts = sorted((HERE / "static" / "css").glob("*.css"))
    return b"\n".join(p.read_bytes() for p in parts)


@router.get("/static/console.css")
def stylesheet() -> Response:
    return Response(_stylesheet(), media_type="text/css", headers={"Cache-Control": "max-age=3600"})


@router.get("/static/console.js")
def script() -> FileResponse:
    return FileResponse(
        HERE / "static" / "console.js",
        media_type="text/javascript",
        headers={"Cache-Control": "max-age=3600"},
    )


@router.get("/login")
def login_form(request: Request) -> HTMLResponse:
    response = templates.TemplateResponse(
        request, "login.html", {"error": None, "next": request.query_params.get("next", "")}
    )
    guard.keep_login_token(request, response)  # the form's token, in a cookie to match
    return response


@router.post("/login")
async def login(request: Request) -> Response:
    form = await request.form()
    guard.check_login_token(request, form.get("csrf"))  # before any password is hashed
    email, password = str(form.get("email", "")), str(form.get("password", ""))
    try:
        limit(request, f"login:{address(request)}")  # the request rate, as /v1/sessions
        token = await sign_in(request, email, password)  # throttled, off the event loop
    except (Unauthenticated, RateLimited) as exc:
        return templates.TemplateResponse(
            request,
            "login.html",
            {"error": str(exc), "next": form.get("next", "")},
            status_code=429 if isinstance(exc, RateLimited) else 401,
        )
    target = str(form.get("next") or "/console")
    response = RedirectResponse(target if target.startswith("/console") else "/console", 303)
    set_session(response, request, token)
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    page = Page(request)
    await check_csrf(request, page.session)
    page.service.logout(page.session)
    response = RedirectResponse("/console/login", 303)
    response.delete_cookie(COOKIE, path="/console")
    return response


@router.get("/")
def home(request: Request) -> Response:
    page = Page(request)
    if not page.clients:
        return page.render(
            "error.html", 404, title="No client", detail="Your account has no client yet."
        )
    return RedirectResponse(f"/console/clients/{page.clients[0].id}/items", 303)
