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

from stockyard.web.console.pages.common import (
    DATE_FIELDS,
    FIELD_LABELS,
    Page,
    is_console_path,
    plain_problem,
    templates,
)

TITLES = {
    403: "Not allowed",
    404: "Not found",
    409: "Not now",
    422: "Cannot do that",
    503: "Try again in a moment",
    507: "Storage full",
}
CLIENT_PATH = re.compile(r"^/console/clients/(\d{1,16})(?:/|$)")
NO_SUCH_PAGE = "Nothing is at this address: the link may be old or mistyped."
# One validation problem as the frameworks word it: "query.created_from: Input should…",
# "created_from: …", "status.0: …".
PROBLEM = re.compile(r"(?:(?:query|body|form)\.)?(?P<field>[a-z_]+)(?:\.\d+)?: (?P<message>.+)")
FILTERS_PREFIXES = ("These filters do not read: ", "filters: ")
A_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]")


def plain_detail(detail: str) -> str:
    """A refusal in the words of the page's form (common.plain_problem): the fields the
    form names, never pydantic's locations and phrasing; any other text as it is."""
    head, rest = "", detail
    for prefix in FILTERS_PREFIXES:
        if detail.startswith(prefix):
            head, rest = FILTERS_PREFIXES[0], detail.removeprefix(prefix)
    said = []
    for part in rest.split("; "):
        found = PROBLEM.fullmatch(part)
        if found is not None and found["field"] in FIELD_LABELS:
            part = plain_problem(found["field"], found["message"])
        said.append(part)
    return head + "; ".join(said)


def _names_nothing(status: int, detail: str) -> bool:
    """A path that cannot name anything ("/items/abc": pydantic refuses the path's id)
    or that no route serves (Starlette's bare "Not Found")."""
    parts = detail.split("; ")
    if status == 422:
        return all(part.startswith("path.") for part in parts)
    return status == 404 and detail.strip().lower() == "not found"


def error_page(request: Request, status: int, detail: str) -> Response:
    if status == 401:
        return RedirectResponse(f"/console/login?{urlencode({'next': request.url.path})}", 303)
    if _names_nothing(status, detail):
        status, title, detail = 404, "No such page", NO_SUCH_PAGE
    else:
        title, detail = TITLES.get(status, "Something went wrong"), plain_detail(detail)
    page = _signed_in_page(request) if status != 503 else None
    values = {
        "title": title,
        "detail": detail,
        "back": _back_link(request, page),
        # A GET's filters, to fix and try again (a bad date must not lose the others).
        "retry_params": _retry_fields(request) if request.method == "GET" else [],
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


def _retry_fields(request: Request) -> list[tuple[str, str, str, str]]:
    """The URL's filters as the form to correct them: name, label, value, input type (a
    date picker for the dates, unless the value holds a time a date input would drop)."""
    fields = []
    for name, value in request.query_params.multi_items():
        label = FIELD_LABELS.get(name, name)
        dated = name in DATE_FIELDS and not A_DATETIME.match(value)
        fields.append((name, label, value, "date" if dated else "text"))
    return fields
