"""A client's connections (status, limits) and who is notified of what."""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from stockyard.engine import Limits
from stockyard.errors import Forbidden, InvalidInput, NotFound
from stockyard.notify import EVENTS
from stockyard.service.connections import describe_limits
from stockyard.web.console.auth import check_csrf
from stockyard.web.console.pages.common import Page, _ids, number
from stockyard.web.query import Id

router = APIRouter()


@router.get("/clients/{client_id}/connections")
def connections(request: Request, client_id: Id) -> Response:
    page = Page(request, client_id)
    lanes = page.service.lanes(page.who, client_id)
    return page.render(
        "connections.html",
        connections=page.service.connections(page.who, client_id),
        pending={lane.lane_id: lane.pending for lane in lanes},
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
    message = f"{view.description}: {describe_limits(view.limits)}."
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
    form = await request.form()
    if action == "disable" and form.get("confirmed") != "yes":
        return _confirm_disable(page, connection_id)
    view = page.service.set_connection_enabled(
        page.who, client_id, connection_id, action == "enable"
    )
    return RedirectResponse(page.url("/connections", msg=f"{view.description}: {action}d."), 303)


def _confirm_disable(page: Page, connection_id: int) -> Response:
    """Disabling stops work: say what stops, before it does."""
    _require_admin(page)
    conn = page.service.connection(page.who, page.client_id, connection_id)
    lane = next(
        (x for x in page.service.lanes(page.who, page.client_id) if x.lane_id == conn.id), None
    )
    waiting = lane.pending if lane is not None else 0
    held = (
        f"{number(waiting)} unfinished item{'' if waiting == 1 else 's'} will wait"
        if waiting
        else "nothing is waiting for it now"
    )
    effects = [
        f"Its lane pauses: nothing more is sent to {conn.description} ({held}).",
        "What it pushes in (webhooks, imports) is refused until it is enabled again.",
    ]
    return page.render(
        "confirm_action.html",
        title=f"Disable {conn.description}?",
        effects=effects,
        warnings=[],
        post_to=page.url(f"/connections/{conn.id}/disable"),
        fields={},
        button="Disable",
        danger=True,
        back=page.url("/connections"),
    )


def _require_admin(page: Page) -> None:
    # The confirmation offers only what the action will allow.
    if page.client is None or page.client.role != "administrator":
        raise Forbidden("only an administrator of the client can do this")


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
    form = await request.form()
    if form.get("confirmed") != "yes":
        return _confirm_unsubscribe(page, sub_id)
    page.service.unsubscribe(page.who, client_id, sub_id)
    return RedirectResponse(page.url("/notifications", msg="Subscription removed."), 303)


def _confirm_unsubscribe(page: Page, sub_id: int) -> Response:
    subscriptions = page.service.list_subscriptions(page.who, page.client_id)  # admins only
    sub = next((x for x in subscriptions if x.id == sub_id), None)
    if sub is None:
        raise NotFound(f"subscription {sub_id} not found")
    events = ", ".join(sub.events) or "every event"
    return page.render(
        "confirm_action.html",
        title=f"Stop notifying {sub.target}?",
        effects=[
            f"Notifications stop going to {sub.target} ({sub.kind}): {events}.",
            "Nobody else's notifications change. Add it again to undo.",
        ],
        warnings=[],
        post_to=page.url(f"/notifications/{sub.id}/remove"),
        fields={},
        button="Remove",
        danger=True,
        back=page.url("/notifications"),
    )
