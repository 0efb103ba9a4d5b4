"""Lanes: one FIFO per source or channel; pausing and resuming them."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from stockyard.errors import InvalidInput
from stockyard.web.console.auth import check_csrf
from stockyard.web.console.pages.common import Page
from stockyard.web.query import Id

router = APIRouter()


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
