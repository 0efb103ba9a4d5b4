"""One queue item: its payload, attempts, children and audit."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from stockyard.web.console.pages.common import Page
from stockyard.web.query import Id

router = APIRouter()


@router.get("/clients/{client_id}/items/{item_id}")
def item(request: Request, client_id: Id, item_id: Id) -> Response:
    page = Page(request, client_id)
    return page.render("item.html", d=page.service.item(page.who, client_id, item_id))
