"""The console's face for errors (the API answers problem documents instead).

An error keeps the operator's place: when the browser is signed in and the path names a
client of theirs, the page comes in the normal layout (navigation, per-state counts),
with a link back to the console page they came from, and a bad filter comes back in a
form to fix, the other filters kept."""

from __future__ import annotations

import re
from urllib.parse import urlencode, urlsplit

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from stockyard.web.console.pages.common import Page, is_console_path, templates

TITLES = {
    403: "Not allowed",
    404: "Not found",
    409: "Not now",
    422: "Cannot do that",
    503: "Try again in a moment",
    507: "Storage full",
}
CLIENT_PATH = re.compile(r"^/console/clients/(\d{1,16})(?:/|$)")


def error_page(request: Request, status: int, detail: str) -> Response:
    if status == 401:
        return RedirectResponse(f"/console/login?{urlencode({'next': request.url.path})}", 303)
    page = _signed_in_page(request) if status != 503 else None
    values = {
        "title": TITLES.get(status, "Something went wrong"),
        "detail": detail,
        "back": _back_link(request, page),
        # A GET's filters, to fix and try again (a bad date must not lose the others).
        "retry_params": list(request.query_params.multi_items()) if request.method == "GET" else [],
        "retry_to": request.url.path,
    }
    if page is not None:
        return page.render("error.html", status, **values)
    return templates.TemplateResponse(
        request, "error.html", {"page": None, **values}, status_code=status
    )


def _signed_in_page(request: Request) -> Page | None:
    """The layout's page when the browser is signed in to the client of the path; else
    None (a bare error page: nothing about a client that is not theirs, or when the
    database itself is what failed)."""
    found = CLIENT_PATH.match(request.url.path)
    if not found:
        return None
    try:
        return Page(request, int(found.group(1)))
    except Exception:  # signed out, not their client, the database down: the bare page
        return None


def _back_link(request: Request, page: Page | None) -> str:
    """The console page the browser came from (Referer), else the client's queue."""
    came_from = urlsplit(request.headers.get("referer", ""))
    same_site = came_from.netloc in ("", request.url.netloc)
    path = came_from.path + (f"?{came_from.query}" if came_from.query else "")
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if same_site and is_console_path(path) and path != here:
        return path
    return page.url("/items") if page is not None and page.client else "/console"
