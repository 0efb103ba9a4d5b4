"""The catalog, read-only: products, variants, orders, fulfillments."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from stockyard.web.api import convert
from stockyard.web.api import schemas as s
from stockyard.web.api.routes import CLIENT, ERRORS, ClientId, Id
from stockyard.web.deps import Caller, Service

router = APIRouter(prefix=CLIENT, tags=["catalog"], responses=ERRORS)
Limit = Annotated[int, Query(ge=1, le=500)]
After = Annotated[str, Query(max_length=1000, description="the cursor of the previous page")]
Before = Annotated[str | None, Query(pattern=r"^[0-9]{1,16}$")]


@router.get("/products", response_model=s.ProductPage)
def list_products(
    client_id: ClientId, who: Caller, service: Service, cursor: After = "", limit: Limit = 100
) -> s.ProductPage:
    """By product code."""
    rows = service.products(who, client_id, cursor, limit)
    return s.ProductPage(
        products=[s.ProductRowOut.model_validate(r) for r in rows],
        next_cursor=rows[-1].code if len(rows) == limit else None,
    )


@router.get("/products/{product_id}", response_model=s.ProductOut)
def get_product(client_id: ClientId, product_id: Id, who: Caller, service: Service) -> s.ProductOut:
    return convert.product(service.product(who, client_id, product_id))


@router.get("/variants", response_model=s.VariantPage)
def list_variants(
    client_id: ClientId, who: Caller, service: Service, cursor: After = "", limit: Limit = 100
) -> s.VariantPage:
    """By SKU."""
    rows = service.variants(who, client_id, cursor, limit)
    return s.VariantPage(
        variants=[
            s.VariantOut(
                id=r.id,
                sku=r.sku,
                product_id=r.product_id,
                product_code=r.product_code,
                deleted=r.deleted,
                data=r.variant.model_dump(mode="json"),
            )
            for r in rows
        ],
        next_cursor=rows[-1].sku if len(rows) == limit else None,
    )


@router.get("/orders", response_model=s.OrderPage)
def list_orders(
    client_id: ClientId, who: Caller, service: Service, cursor: Before = None, limit: Limit = 100
) -> s.OrderPage:
    """Newest first."""
    rows = service.orders(who, client_id, int(cursor) if cursor else None, limit)
    return s.OrderPage(
        orders=[convert.order(o) for o in rows],
        next_cursor=str(rows[-1].id) if len(rows) == limit else None,
    )


@router.get("/orders/{order_id}", response_model=s.OrderDetailOut)
def get_order(client_id: ClientId, order_id: Id, who: Caller, service: Service) -> s.OrderDetailOut:
    order, fulfillments = service.order(who, client_id, order_id)
    return s.OrderDetailOut(
        **convert.order(order).model_dump(),
        fulfillments=[s.FulfillmentOut.model_validate(f) for f in fulfillments],
    )


@router.get("/fulfillments", response_model=s.FulfillmentPage)
def list_fulfillments(
    client_id: ClientId, who: Caller, service: Service, cursor: Before = None, limit: Limit = 100
) -> s.FulfillmentPage:
    """Newest first."""
    rows = service.fulfillments(who, client_id, int(cursor) if cursor else None, limit)
    return s.FulfillmentPage(
        fulfillments=[s.FulfillmentOut.model_validate(f) for f in rows],
        next_cursor=str(rows[-1].id) if len(rows) == limit else None,
    )
