"""From the service's objects to the API's models, where reading attributes is not enough."""

from __future__ import annotations

from stockyard.catalog.store import StoredOrder, StoredProduct
from stockyard.engine import ItemDetail
from stockyard.web.api import schemas as s


def item(i: object) -> s.ItemOut:
    return s.ItemOut.model_validate(i)


def detail(d: ItemDetail) -> s.ItemDetailOut:
    return s.ItemDetailOut(
        item=item(d.item),
        attempts=[s.AttemptOut.model_validate(a) for a in d.attempts],
        children=[item(c) for c in d.children],
        audit=[s.AuditOut.model_validate(a) for a in d.audit],
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
