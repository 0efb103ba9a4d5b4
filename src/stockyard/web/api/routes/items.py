"""Queue items: list, detail, enqueue, retry and skip (one, many, or by filter)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from stockyard.engine import Request
from stockyard.errors import InvalidInput
from stockyard.web import query as q
from stockyard.web.api import convert
from stockyard.web.api import schemas as s
from stockyard.web.api.onehop import OneHop
from stockyard.web.api.routes import CLIENT, ERRORS, ClientId, Id
from stockyard.web.deps import Caller, Service

router = APIRouter(prefix=CLIENT + "/items", tags=["items"], responses=ERRORS)


@router.get("", response_model=s.ItemPage)
def list_items(
    client_id: ClientId,
    who: Caller,
    service: Service,
    status: Annotated[list[q.Status], Query()] = [],  # noqa: B006 (FastAPI copies defaults)
    instruction: Annotated[list[q.Name], Query(max_length=50)] = [],  # noqa: B006
    mode: q.Mode | None = None,
    connection_id: Annotated[int | None, Query(ge=1, le=q.MAX_ID)] = None,
    ref: Annotated[
        str | None, Query(min_length=1, max_length=200, description="SKU, code, order id")
    ] = None,
    error: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    created_from: q.Moment | None = None,
    created_to: q.Moment | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(pattern=r"^[0-9]{1,16}$")] = None,
) -> s.ItemPage:
    """Newest first. Every filter narrows the list; `cursor` pages to older items."""
    query = q.ItemQuery(
        status=status,
        instruction=instruction,
        mode=mode,
        connection_id=connection_id,
        ref=ref,
        error=error,
        created_from=created_from,
        created_to=created_to,
    )
    flt = q.item_filter(client_id, query)
    found = service.items(who, flt, limit, int(cursor) if cursor else None)
    next_cursor = str(found[-1].id) if len(found) == limit else None
    return s.ItemPage(items=[convert.item(i) for i in found], next_cursor=next_cursor)


def enqueue(client_id: ClientId, body: s.Enqueue, who: Caller, service: Service) -> s.Enqueued:
    """Enqueue atomically: all items or none. An idempotency key already known returns
    the existing item's id."""
    requests = [
        Request(
            n.instruction,
            n.payload,
            n.connection_id,
            tuple(n.refs),
            idempotency_key=n.idempotency_key,
            delay=n.delay,
        )
        for n in body.items
    ]
    return s.Enqueued(ids=service.enqueue(who, client_id, requests))


# The API's hot path: answered in one worker-thread call, caller lookup included (OneHop).
router.add_api_route(
    "",
    enqueue,
    methods=["POST"],
    status_code=201,
    response_model=s.Enqueued,
    route_class_override=OneHop,
)


@router.get("/{item_id}", response_model=s.ItemDetailOut)
def item_detail(client_id: ClientId, item_id: Id, who: Caller, service: Service) -> s.ItemDetailOut:
    """The item with its payload, attempts, children and audit trail."""
    return convert.detail(service.item(who, client_id, item_id))


def _act(
    action: Literal["retry", "skip"], client_id: int, body: s.Bulk, who: Caller, service: Service
) -> s.Affected:
    if body.ids is not None:
        if not body.ids:
            raise InvalidInput("ids: name at least one item")
        ids = service.act(who, client_id, action, body.ids)
    else:
        assert body.filter is not None
        ids = service.act_where(who, q.item_filter(client_id, body.filter), action)
    return s.Affected(affected=len(ids), ids=ids)


@router.post("/retry", response_model=s.Affected)
def retry_items(client_id: ClientId, body: s.Bulk, who: Caller, service: Service) -> s.Affected:
    """Retry failed items, given by id (each must be failed) or by filter."""
    return _act("retry", client_id, body, who, service)


@router.post("/skip", response_model=s.Affected)
def skip_items(client_id: ClientId, body: s.Bulk, who: Caller, service: Service) -> s.Affected:
    """Skip items given by id, or by filter: a filter acts on failed items only unless it
    names other statuses (e.g. {"filter": {"ref": "SKU-1"}} skips SKU-1's failed items;
    add "status": ["queued"] to cancel its waiting work too)."""
    return _act("skip", client_id, body, who, service)


@router.post("/{item_id}/retry", response_model=s.Affected)
def retry_item(client_id: ClientId, item_id: Id, who: Caller, service: Service) -> s.Affected:
    ids = service.act(who, client_id, "retry", [item_id])
    return s.Affected(affected=len(ids), ids=ids)


@router.post("/{item_id}/skip", response_model=s.Affected)
def skip_item(client_id: ClientId, item_id: Id, who: Caller, service: Service) -> s.Affected:
    ids = service.act(who, client_id, "skip", [item_id])
    return s.Affected(affected=len(ids), ids=ids)
