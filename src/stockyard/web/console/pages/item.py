"""One queue item: its payload, attempts, children and audit; retrying or skipping it."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from stockyard.errors import InvalidInput
from stockyard.service import ACTIONS
from stockyard.web.console.auth import check_csrf
from stockyard.web.console.pages.common import Page
from stockyard.web.query import Id

router = APIRouter()


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
