"""The console's pages. Each handler checks the session, calls the service layer as the
signed-in user, and renders a template; changes are POSTs with a CSRF token."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError

from stockyard.accounts import RANK
from stockyard.engine import ItemFilter, Limits
from stockyard.errors import InvalidInput, RateLimited, Unauthenticated
from stockyard.notify import EVENTS
from stockyard.service import ACTIONS, BulkGroup, Stockyard
from stockyard.service.connections import describe_limits
from stockyard.web.console import guard
from stockyard.web.console.auth import (
    COOKIE,
    SignInNeeded,
    check_csrf,
    csrf_token,
    principal,
    set_session,
    sign_in,
)
from stockyard.web.deps import address, limit
from stockyard.web.deps import service as get_service
from stockyard.web.query import MAX_ID, Id, ItemQuery, item_filter

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))


def _when(ts: float | None) -> str:
    return "" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


templates.env.filters["when"] = _when
templates.env.globals["login_csrf"] = guard.login_token
templates.env.filters["pretty"] = lambda data: json.dumps(data, indent=2, ensure_ascii=False)
templates.env.filters["limits"] = describe_limits
# Mounted at /console (stockyard.web.console.create_console); links in pages say /console/….
router = APIRouter()
FILTERS = (
    "status",
    "instruction",
    "mode",
    "connection_id",
    "ref",
    "error",
    "created_from",
    "created_to",
)


class Page:
    """What every page of one client needs: the user, the client, the CSRF token."""

    def __init__(self, request: Request, client_id: int | None = None) -> None:
        self.request = request
        self.service: Stockyard = get_service(request)
        self.who, self.session = principal(request, self.service)
        clients = self.service.clients(self.who)
        self.clients = clients
        self.client = next((c for c in clients if c.id == client_id), None)
        if client_id is not None and self.client is None:
            self.service.lanes(self.who, client_id)  # raises NotFound, as the API would

    @property
    def client_id(self) -> int:
        assert self.client is not None
        return self.client.id

    @property
    def can_operate(self) -> bool:
        return self.client is not None and RANK[self.client.role] >= RANK["operator"]

    def render(self, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        response = templates.TemplateResponse(
            self.request,
            template,
            {
                "page": self,
                "csrf": csrf_token(self.session),
                # Only what a redirect of ours left (console.guard): a ?msg= is not shown.
                "message": guard.take_message(self.request, self.session),
                **values,
            },
            status_code=status,
        )
        guard.forget_message(self.request, response)
        return response

    def url(self, path: str, **params: Any) -> str:
        query = urlencode({k: v for k, v in params.items() if v not in (None, "")}, doseq=True)
        return f"/console/clients/{self.client_id}{path}" + (f"?{query}" if query else "")


def _query(request: Request) -> tuple[ItemQuery, dict[str, Any]]:
    """The filters of the URL, validated like the API's."""
    params = request.query_params
    raw: dict[str, Any] = {
        "status": [x for x in params.getlist("status") if x],
        "instruction": [i for i in params.getlist("instruction") if i],
    }
    for name in FILTERS[2:]:
        value = params.get(name)
        if value:
            raw[name] = value
    try:
        return ItemQuery.model_validate(raw), raw
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise InvalidInput(f"filters: {problems}") from None


def _is_id(text: str) -> bool:
    # isdigit() alone takes "²" and 5,000-digit strings, which int() then refuses.
    return text.isascii() and text.isdigit() and len(text) <= 16 and 1 <= int(text) <= MAX_ID


def _ids(values: list[Any], field: str) -> list[int]:
    """Ids chosen in a form: whole numbers the database can hold, else a clear 422."""
    out = []
    for value in values:
        text = str(value)
        if not _is_id(text):
            raise InvalidInput(f"{field}: {text[:30]!r} is not an id")
        out.append(int(text))
    return out


# ------------------------------------------------------------------------ sign-in


@router.get("/static/htmx.min.js")
def htmx() -> FileResponse:
    return FileResponse(HERE / "static" / "htmx.min.js", headers={"Cache-Control": "max-age=86400"})


@router.get("/static/console.css")
def stylesheet() -> FileResponse:
    return FileResponse(HERE / "static" / "console.css", headers={"Cache-Control": "max-age=3600"})


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


# ------------------------------------------------------------------------- the queue


def _lists(page: Page, query: ItemQuery) -> list[tuple[str, list[Any], str]]:
    """(title, items, the section's own filter as JSON): "all matching the filter" in the
    Waiting list must not touch the failed items beside it."""
    sections = (
        [("Matching items", tuple(query.status))]
        if query.status
        else [("Failed", ("failed",)), ("Waiting", ("queued", "running"))]
    )
    out = []
    for title, statuses in sections:
        own = query.model_copy(update={"status": list(statuses)})
        found = page.service.items(page.who, item_filter(page.client_id, own), 100, None)
        out.append((title, found, own.model_dump_json(exclude_defaults=True)))
    return out


def _back(value: str, page: Page) -> str:
    """Where the bulk form returns to: a path of this console, never another site (an
    open redirect) nor a `javascript:` link on the confirmation page."""
    if not value:
        return page.url("/items")
    parts = urlsplit(value)
    # Browsers drop tabs and newlines from URLs and read a backslash as a slash, so
    # "/\\evil.example" and "/\t/evil.example" are other hosts to them.
    odd = any(c == "\\" or ord(c) < 0x21 or ord(c) == 0x7F for c in value)
    if odd or parts.scheme or parts.netloc or not value.startswith("/console/"):
        raise InvalidInput("back: the page to return to must be a path of the console")
    return value


def _lane_label(group: BulkGroup, names: dict[int, str]) -> str:
    if group.connection_id is None:
        return "no connection"
    what = "lane" if group.lane_id is not None else "connection"
    return f"{what} {group.connection_id} ({names.get(group.connection_id, '?')})"


@router.get("/clients/{client_id}/items")
def items(request: Request, client_id: Id) -> Response:
    page = Page(request, client_id)
    search = request.query_params.get("q", "").strip()
    if _is_id(search):
        return RedirectResponse(page.url(f"/items/{int(search)}"), 303)
    query, raw = _query(request)
    connections = page.service.connections(page.who, client_id)
    return page.render(
        "items.html",
        lists=_lists(page, query),
        filters=raw,
        query_string=request.url.query,
        connections=connections,
        instructions=page.service.instruction_names(),
    )


@router.get("/clients/{client_id}/items/table")
def items_table(request: Request, client_id: Id) -> Response:
    """The lists alone: what htmx fetches every few seconds."""
    page = Page(request, client_id)
    query, raw = _query(request)
    return page.render(
        "_lists.html", lists=_lists(page, query), filters=raw, query_string=request.url.query
    )


@router.get("/clients/{client_id}/items/{item_id}")
def item(request: Request, client_id: Id, item_id: Id) -> Response:
    page = Page(request, client_id)
    return page.render("item.html", d=page.service.item(page.who, client_id, item_id))


@router.post("/clients/{client_id}/items/{item_id}/{action}")
async def act(request: Request, client_id: Id, item_id: Id, action: str) -> Response:
    page = Page(request, client_id)
    await check_csrf(request, page.session)
    if action not in ACTIONS:
        raise InvalidInput(f"unknown action {action!r}")
    page.service.act(page.who, client_id, action, [item_id])
    verb = "retried" if action == "retry" else "skipped"
    return RedirectResponse(page.url(f"/items/{item_id}", msg=f"Item {item_id} {verb}."), 303)


@router.post("/clients/{client_id}/bulk")
async def bulk(request: Request, client_id: Id) -> Response:
    """Retry or skip the selected items, every item matching the filter, or every failed
    item of one SKU: first a confirmation that says how many, then the action."""
    page = Page(request, client_id)
    await check_csrf(request, page.session)
    form = await request.form()
    action = str(form.get("action", ""))
    if action not in ACTIONS:
        raise InvalidInput("choose retry or skip")
    ids = _ids(form.getlist("ids"), "ids")
    scope = str(form.get("scope", "selected"))
    try:
        query = ItemQuery.model_validate(json.loads(str(form.get("filters", "{}")) or "{}"))
    except ValueError:  # pydantic's ValidationError and JSON's decode error alike
        raise InvalidInput("the filter of this form is not readable: reload the page") from None
    if scope == "sku":
        query = ItemQuery(ref=str(form.get("sku", "")).strip() or None, status=["failed"])
        if query.ref is None:
            raise InvalidInput("give the SKU whose failed items to act on")
    back = _back(str(form.get("back", "")), page)
    if scope == "selected":
        if not ids:
            raise InvalidInput("select at least one item")
        # Picked one by one: every status the action applies to (a queued item can be
        # skipped). A filter without statuses means failed items: the service decides.
        flt = ItemFilter(client_id, ids=tuple(ids), statuses=ACTIONS[action])
    else:
        flt = item_filter(client_id, query)
    groups = page.service.bulk_counts(page.who, flt, action)
    if form.get("confirmed") != "yes":
        names = {c.id: c.description for c in page.service.connections(page.who, client_id)}
        return page.render(
            "confirm.html",
            action=action,
            count=sum(g.items for g in groups),
            groups=[(g.instruction, _lane_label(g, names), g.items) for g in groups],
            failed_only=not flt.statuses,
            form=form,
            scope=scope,
            ids=ids,
            back=back,
        )
    done = page.service.act_where(page.who, flt, action)
    verb = "Retried" if action == "retry" else "Skipped"
    separator = "&" if "?" in back else "?"
    return RedirectResponse(
        f"{back}{separator}{urlencode({'msg': f'{verb} {len(done)} items.'})}", 303
    )


# ----------------------------------------------------------------------------- lanes


@router.get("/clients/{client_id}/lanes")
def lanes(request: Request, client_id: Id) -> Response:
    page = Page(request, client_id)
    return page.render("lanes.html", lanes=page.service.lanes(page.who, client_id))


@router.post("/clients/{client_id}/lanes/{lane_id}/{action}")
async def lane_action(request: Request, client_id: Id, lane_id: Id, action: str) -> Response:
    page = Page(request, client_id)
    await check_csrf(request, page.session)
    if action == "pause":
        page.service.pause(page.who, client_id, lane_id, "paused in the console")
    elif action == "resume":
        page.service.resume(page.who, client_id, lane_id)
    else:
        raise InvalidInput(f"unknown action {action!r}")
    return RedirectResponse(page.url("/lanes", msg=f"Lane {lane_id}: {action}d."), 303)


# ------------------------------------------------------------------------- dashboard

CHART_W, CHART_H = 600, 120


def chart(points: list[tuple[float, int]], start: float, end: float) -> dict[str, Any]:
    """An SVG polyline of `points` (time, value) between `start` and `end`."""
    top = max((v for _, v in points), default=0) or 1
    span = max(end - start, 1.0)
    coords = " ".join(
        f"{(t - start) / span * CHART_W:.1f},{CHART_H - v / top * (CHART_H - 4):.1f}"
        for t, v in points
    )
    return {
        "points": coords,
        "top": top,
        "last": points[-1][1] if points else 0,
        "width": CHART_W,
        "height": CHART_H,
    }


@router.get("/clients/{client_id}/dashboard")
def dashboard(request: Request, client_id: Id) -> Response:
    page = Page(request, client_id)
    hours = 24
    end = time.time()
    start = end - hours * 3600
    samples = page.service.queue_history(page.who, client_id, start)
    if samples and samples[0][0] < end - 60:
        start = samples[0][0]  # a short history fills the chart rather than its last inch
    by_instruction, by_connection = page.service.failures_by(page.who, client_id)
    names = {c.id: c.description for c in page.service.connections(page.who, client_id)}
    return page.render(
        "dashboard.html",
        hours=hours,
        charts=[
            ("Finished per minute", chart([(t, d) for t, _, _, d in samples], start, end)),
            ("Backlog (queued)", chart([(t, q) for t, q, _, _ in samples], start, end)),
            ("Failed", chart([(t, f) for t, _, f, _ in samples], start, end)),
        ],
        by_instruction=by_instruction,
        by_connection=[(names.get(c, "none") if c else "none", n) for c, n in by_connection],
    )


# ------------------------------------------------------ connections and notifications


@router.get("/clients/{client_id}/connections")
def connections(request: Request, client_id: Id) -> Response:
    page = Page(request, client_id)
    return page.render(
        "connections.html", connections=page.service.connections(page.who, client_id)
    )


_N = TypeVar("_N", int, float)


# Declared before connection_action, whose {action} would take "limits" too.
@router.post("/clients/{client_id}/connections/{connection_id}/limits")
async def connection_limits(request: Request, client_id: Id, connection_id: Id) -> Response:
    """The limits form: an empty field is no such limit; the fields replace all limits."""
    page = Page(request, client_id)
    await check_csrf(request, page.session)
    form = await request.form()
    limits = Limits(
        _form_number(form.get("max_running"), "max_running", int),
        _form_number(form.get("per_second"), "per_second", float),
        _form_number(form.get("burst"), "burst", int),
    )
    view = page.service.set_connection_limits(page.who, client_id, connection_id, limits)
    message = f"Connection {connection_id}: {describe_limits(view.limits)}."
    return RedirectResponse(page.url("/connections", msg=message), 303)


def _form_number(value: Any, field: str, kind: type[_N]) -> _N | None:
    """A number typed in a form (empty: none); its range is the engine's to check."""
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        return None
    try:
        return kind(text)
    except ValueError:  # also int() of thousands of digits
        what = "a whole number" if kind is int else "a number"
        raise InvalidInput(f"{field}: {text[:20]!r} is not {what}") from None


@router.post("/clients/{client_id}/connections/{connection_id}/{action}")
async def connection_action(
    request: Request, client_id: Id, connection_id: Id, action: str
) -> Response:
    page = Page(request, client_id)
    await check_csrf(request, page.session)
    if action not in ("enable", "disable"):
        raise InvalidInput(f"unknown action {action!r}")
    page.service.set_connection_enabled(page.who, client_id, connection_id, action == "enable")
    return RedirectResponse(
        page.url("/connections", msg=f"Connection {connection_id} {action}d."), 303
    )


@router.get("/clients/{client_id}/notifications")
def notifications(request: Request, client_id: Id) -> Response:
    page = Page(request, client_id)
    is_admin = page.client is not None and page.client.role == "administrator"
    subscriptions = page.service.list_subscriptions(page.who, client_id) if is_admin else []
    return page.render(
        "notifications.html",
        subscriptions=subscriptions,
        is_admin=is_admin,
        events=EVENTS,
        connections=page.service.connections(page.who, client_id),
        secret=None,
    )


@router.post("/clients/{client_id}/notifications")
async def subscribe(request: Request, client_id: Id) -> Response:
    page = Page(request, client_id)
    await check_csrf(request, page.session)
    form = await request.form()
    events = [str(e) for e in form.getlist("events")]
    connections = _ids(form.getlist("connections"), "connections")
    sub, secret = page.service.subscribe(
        page.who,
        client_id,
        str(form.get("kind", "")),
        str(form.get("target", "")),
        events,
        connections,
    )
    if secret is None:
        return RedirectResponse(page.url("/notifications", msg=f"{sub.target} subscribed."), 303)
    # A webhook's secret is shown this once, on this page.
    return page.render(
        "notifications.html",
        subscriptions=page.service.list_subscriptions(page.who, client_id),
        is_admin=True,
        events=EVENTS,
        connections=page.service.connections(page.who, client_id),
        secret=secret,
    )


@router.post("/clients/{client_id}/notifications/{sub_id}/remove")
async def unsubscribe(request: Request, client_id: Id, sub_id: Id) -> Response:
    page = Page(request, client_id)
    await check_csrf(request, page.session)
    page.service.unsubscribe(page.who, client_id, sub_id)
    return RedirectResponse(page.url("/notifications", msg="Subscription removed."), 303)


def error_page(request: Request, status: int, detail: str) -> Response:
    """The console's face for errors (the API answers problem documents instead)."""
    if status == 401:
        return RedirectResponse(f"/console/login?{urlencode({'next': request.url.path})}", 303)
    titles = {
        403: "Not allowed",
        404: "Not found",
        409: "Not now",
        422: "Cannot do that",
        507: "Storage full",
    }
    return templates.TemplateResponse(
        request,
        "error.html",
        {"page": None, "title": titles.get(status, "Something went wrong"), "detail": detail},
        status_code=status,
    )


__all__ = ["SignInNeeded", "error_page", "router"]
