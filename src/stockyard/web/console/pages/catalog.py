"""The catalog as operators look for it: a product (variants, images, channels, queue
history), an order (lines, fulfillments, history), and the search every page's header
box sends (an item id, a SKU or product code, an order number, a customer)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from stockyard.errors import InvalidInput
from stockyard.service.catalog import MAX_QUERY
from stockyard.web.console.pages.common import Page
from stockyard.web.query import Id

router = APIRouter()


@router.get("/clients/{client_id}/products/{product_id}")
def product(request: Request, client_id: Id, product_id: Id) -> Response:
    page = Page(request, client_id)
    return page.render("product.html", v=page.service.product_view(page.who, client_id, product_id))


@router.get("/clients/{client_id}/orders/{order_id}")
def order(request: Request, client_id: Id, order_id: Id) -> Response:
    page = Page(request, client_id)
    return page.render("order.html", v=page.service.order_view(page.who, client_id, order_id))


@router.get("/clients/{client_id}/search")
def search(request: Request, client_id: Id, q: str = "") -> Response:
    page = Page(request, client_id)
    try:
        found = page.service.search(page.who, client_id, q)
    except InvalidInput as exc:
        # On the search page itself, the box still there to type a shorter text.
        return page.render("search.html", status=422, r=None, problem=str(exc), q=q[:MAX_QUERY])
    only_item = found.item is not None and not (
        found.products or found.variants or found.orders or found.customers
    )
    if only_item and found.item is not None:
        # An item's id and nothing else by that name: straight to it.
        return RedirectResponse(page.url(f"/items/{found.item.id}"), 303)
    return page.render("search.html", r=found)
