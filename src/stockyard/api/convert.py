"""From the service's objects to the API's models."""

from __future__ import annotations

from datetime import datetime

from stockyard.accounts import ApiKey
from stockyard.api import schemas as s
from stockyard.catalog.store import StoredFulfillment, StoredOrder, StoredProduct
from stockyard.engine import Item, ItemDetail, ItemFilter, LaneView
from stockyard.service import ConnectionView


def _at(ts: float) -> datetime:
    found = s.when(ts)
    assert found is not None
    return found


def item(i: Item) -> s.ItemOut:
    return s.ItemOut(
        id=i.id,
        instruction=i.instruction,
        mode="blocking" if i.mode == "blocking" else "non-blocking",
        status=i.status,  # type: ignore[arg-type]
        connection_id=i.connection_id,
        lane_id=i.lane_id,
        description=i.description,
        payload=i.payload,
        refs=i.refs,
        parent_id=i.parent_id,
        idempotency_key=i.idempotency_key,
        coalesce_key=i.coalesce_key,
        superseded_by=i.superseded_by,
        attempts=i.attempts,
        failures=i.failures,
        error=i.error,
        error_kind=i.error_kind,
        worker_id=i.worker_id,
        created_at=_at(i.created_at),
        updated_at=_at(i.updated_at),
        run_after=_at(i.run_after),
        started_at=s.when(i.started_at),
        finished_at=s.when(i.finished_at),
    )


def detail(d: ItemDetail) -> s.ItemDetailOut:
    return s.ItemDetailOut(
        item=item(d.item),
        attempts=[
            s.AttemptOut(
                number=a.number,
                worker_id=a.worker_id,
                started_at=_at(a.started_at),
                ended_at=s.when(a.ended_at),
                outcome=a.outcome,
                error=a.error,
            )
            for a in d.attempts
        ],
        children=[item(c) for c in d.children],
        audit=[
            s.AuditOut(
                at=_at(a.at),
                actor=a.actor,
                action=a.action,
                item_id=a.item_id,
                lane_id=a.lane_id,
                detail=a.detail,
            )
            for a in d.audit
        ],
    )


def item_filter(client_id: int, q: s.ItemQuery) -> ItemFilter:
    return ItemFilter(
        client_id=client_id,
        statuses=tuple(q.status),
        instructions=tuple(q.instruction),
        connection_id=q.connection_id,
        ref=q.ref,
        error_contains=q.error,
        created_from=None if q.created_from is None else q.created_from.timestamp(),
        created_to=None if q.created_to is None else q.created_to.timestamp(),
        blocking=None if q.mode is None else q.mode == "blocking",
    )


def lane(v: LaneView) -> s.LaneOut:
    return s.LaneOut(
        lane_id=v.lane_id,
        kind=v.kind,
        description=v.description,
        state=v.state,
        paused=v.paused,
        pending=v.pending,
        waiting=v.waiting,
        head_id=v.head_id,
        head_instruction=v.head_instruction,
        head_status=v.head_status,
        head_error=v.head_error,
        oldest_created_at=s.when(v.oldest_created_at),
        next_run_at=s.when(v.next_run_at),
    )


def connection(c: ConnectionView) -> s.ConnectionOut:
    return s.ConnectionOut(
        id=c.id,
        kind=c.kind,  # type: ignore[arg-type]
        connector=c.connector,
        description=c.description,
        settings=c.settings,
        status=c.status,
        secrets=c.secrets,
    )


def product(p: StoredProduct) -> s.ProductOut:
    return s.ProductOut(
        id=p.id,
        code=p.code,
        deleted=p.deleted,
        fields=p.fields,
        variants=[{"id": v.id, **v.variant.model_dump(mode="json")} for v in p.variants],
        images=[{"id": i.id, **i.image.model_dump(mode="json")} for i in p.images],
    )


def order(o: StoredOrder) -> s.OrderOut:
    return s.OrderOut(
        id=o.id,
        channel_id=o.channel_id,
        state=o.state,
        paid=None if o.paid is None else str(o.paid),
        source_code=o.source_code,
        order=o.order.model_dump(mode="json"),
    )


def fulfillment(f: StoredFulfillment) -> s.FulfillmentOut:
    return s.FulfillmentOut(
        id=f.id,
        order_id=f.order_id,
        service_id=f.service_id,
        remote_id=f.remote_id,
        state=f.state,
        tracking=None if f.tracking is None else f.tracking.model_dump(mode="json"),
    )


def key(k: ApiKey) -> s.KeyOut:
    return s.KeyOut(
        id=k.id,
        name=k.name,
        role=k.role,  # type: ignore[arg-type]
        prefix=k.prefix,
        created_at=_at(k.created_at),
        created_by=k.created_by,
        revoked_at=s.when(k.revoked_at),
    )
