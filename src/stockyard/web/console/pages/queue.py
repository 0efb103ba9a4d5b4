"""The queue: the lists of items, and retrying or skipping them one by one or in bulk."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from stockyard.engine import ItemFilter
from stockyard.errors import InvalidInput
from stockyard.service import ACTIONS, BulkGroup
from stockyard.web.console.auth import check_csrf
from stockyard.web.console.pages.common import Page, _back, _ids, _is_id, _query
from stockyard.web.query import Id, ItemQuery, item_filter

router = APIRouter()


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
