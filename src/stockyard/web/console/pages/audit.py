"""The client's audit log: who did what and when, newest first, 50 a page, by actor and
action if asked. Administrators only (the service refuses others: a 403 in the layout),
as the API's audit trail."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from stockyard.errors import InvalidInput
from stockyard.web.console.pages.common import Page, _is_id
from stockyard.web.query import Id

router = APIRouter()

PAGE_SIZE = 50
MAX_FILTER = 200  # an actor or action longer than any Stockyard writes matches nothing


def _text(request: Request, name: str) -> str | None:
    value = (request.query_params.get(name) or "").strip()
    if len(value) > MAX_FILTER:
        raise InvalidInput(f"{name}: at most {MAX_FILTER} characters")
    return value or None


@router.get("/clients/{client_id}/audit")
def audit(request: Request, client_id: Id) -> Response:
    page = Page(request, client_id)
    raw_before = request.query_params.get("before") or ""
    if raw_before and not _is_id(raw_before):
        raise InvalidInput(f"before: {raw_before[:30]!r} is not an entry id")
    before = int(raw_before) if raw_before else None
    actor, action = _text(request, "actor"), _text(request, "action")
    entries, next_before = page.service.audit_page(
        page.who, client_id, before, PAGE_SIZE, actor, action
    )
    return page.render(
        "audit.html",
        entries=entries,
        actor=actor or "",
        action=action or "",
        before=before,
        older=page.url("/audit", actor=actor, action=action, before=next_before)
        if next_before
        else None,
        newest=page.url("/audit", actor=actor, action=action) if before else None,
    )
