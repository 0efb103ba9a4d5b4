"""Fulfillments out (issue 18): a fulfillment Stockyard holds for an order becomes Shopify
fulfillments of the order's fulfillment orders.

Shopify ships by fulfillment order: each holds lines with a `remainingQuantity`, at one
location, and one fulfillmentCreate covers fulfillment orders of one order and one
location only. What is left is read first, so a repeated item finds nothing left and does
nothing; a repeated *partial* one is recognised by its tracking number at that location
(Shopify keeps no reference of ours on a fulfillment). A fulfillment order that cannot be
fulfilled (on hold, scheduled, cancelled with lines left) stops the item before anything is
sent, naming it: the merchant has to act in Shopify.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeGuard

from stockyard.connectors.shopify import documents as d
from stockyard.connectors.shopify.client import ShopifyClient
from stockyard.errors import PermanentError

# Fulfillment order statuses whose supportedActions include CREATE_FULFILLMENT.
FULFILLABLE = frozenset({"OPEN", "IN_PROGRESS"})


@dataclass
class FulfillmentOrder:
    id: str
    status: str
    location: str
    lines: list[dict[str, Any]] = field(default_factory=list)  # id, sku, remainingQuantity


def push(api: ShopifyClient, order_id: str, fulfillment: Mapping[str, Any], notify: bool) -> None:
    """Fulfil what `fulfillment` says of the order: its `lines` ([{sku, quantity}]) when
    given, else everything left. Only a complete fulfillment is sent (Shopify's
    fulfillment means shipped); pending, open and cancelled ones change nothing there."""
    if fulfillment.get("state") != "complete":
        return
    wanted = _wanted(fulfillment.get("lines"))
    tracking = _tracking(fulfillment.get("tracking"))
    order, fos = _read(api, order_id)
    plan = _plan(order["name"], fos, wanted)
    number = tracking.get("number")
    for location, groups in plan.items():
        if wanted is not None and number and _sent_before(order, location, number):
            continue
        body: dict[str, Any] = {"lineItemsByFulfillmentOrder": groups, "notifyCustomer": notify}
        if tracking:
            body["trackingInfo"] = tracking
        payload = api.query(d.FULFILLMENT_CREATE, {"fulfillment": body})["fulfillmentCreate"]
        errors = (payload or {}).get("userErrors") or []
        if payload is None or errors:
            problems = "; ".join(
                f"{'.'.join(e.get('field') or []) or '-'}: {e.get('message')}" for e in errors[:5]
            )
            raise PermanentError(
                f"shopify: fulfil order {order['name']}: {problems or 'no answer'}"
            )


def _wanted(lines: Any) -> dict[str, int] | None:
    """SKU -> quantity to ship; None: the whole order."""
    if lines is None:
        return None
    wanted: dict[str, int] = {}
    ok = isinstance(lines, list) and bool(lines)
    for line in lines if isinstance(lines, list) else []:
        sku = line.get("sku") if isinstance(line, dict) else None
        qty = line.get("quantity") if isinstance(line, dict) else None
        if _is_sku(sku) and _is_quantity(qty):
            wanted[sku] = wanted.get(sku, 0) + qty
        else:
            ok = False
    if not ok:
        raise PermanentError(
            "shopify: fulfillment lines must be a list of {sku, quantity > 0}, none empty"
        )
    return wanted


def _is_sku(value: Any) -> TypeGuard[str]:
    return isinstance(value, str) and bool(value)


def _is_quantity(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _tracking(tracking: Any) -> dict[str, str]:
    """Stockyard's tracking {carrier, number, url} as Shopify's FulfillmentTrackingInput;
    a URL that is not http(s) is left out (Shopify's URL scalar would refuse the call)."""
    if not isinstance(tracking, dict):
        return {}
    out = {
        "company": str(tracking.get("carrier") or ""),
        "number": str(tracking.get("number") or ""),
        "url": str(tracking.get("url") or ""),
    }
    if not out["url"].startswith(("https://", "http://")):
        out["url"] = ""
    return {k: v for k, v in out.items() if v}


def _read(api: ShopifyClient, order_id: str) -> tuple[dict[str, Any], list[FulfillmentOrder]]:
    fos: list[FulfillmentOrder] = []
    after: str | None = None
    while True:
        order = api.query(d.ORDER_FULFILLMENT_ORDERS_PAGE, {"id": order_id, "after": after})[
            "order"
        ]
        if order is None:
            raise PermanentError(f"shopify has no order {order_id}")
        page = order["fulfillmentOrders"]
        for node in page["nodes"]:
            fo = FulfillmentOrder(
                node["id"], node["status"], node["assignedLocation"]["location"]["id"]
            )
            fo.lines = list(node["lineItems"]["nodes"])
            info = node["lineItems"]["pageInfo"]
            if info["hasNextPage"]:
                fo.lines += _more_lines(api, fo.id, info["endCursor"])
            fos.append(fo)
        if not page["pageInfo"]["hasNextPage"]:
            return order, fos
        after = page["pageInfo"]["endCursor"]


def _more_lines(api: ShopifyClient, fo_id: str, after: str | None) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = []
    while after is not None:
        fo = api.query(d.FULFILLMENT_ORDER_LINES, {"id": fo_id, "after": after})["fulfillmentOrder"]
        if fo is None:
            raise PermanentError(f"shopify has no fulfillment order {fo_id}")
        lines += fo["lineItems"]["nodes"]
        info = fo["lineItems"]["pageInfo"]
        after = info["endCursor"] if info["hasNextPage"] else None
    return lines


def _plan(
    name: str, fos: list[FulfillmentOrder], wanted: dict[str, int] | None
) -> dict[str, list[dict[str, Any]]]:
    """location -> the fulfillmentCreate groups for it. Refuses (before anything is sent)
    when a line to ship sits on a fulfillment order that cannot be fulfilled."""
    known = {line["sku"] for fo in fos for line in fo.lines}
    unknown = sorted(set(wanted or {}) - known)
    if unknown:
        raise PermanentError(f"shopify: order {name} has no line with SKU {', '.join(unknown)}")
    left = dict(wanted or {})
    plan: dict[str, list[dict[str, Any]]] = {}
    for fo in fos:
        take: list[dict[str, Any]] = []
        for line in fo.lines:
            want = line["remainingQuantity"] if wanted is None else left.get(line["sku"], 0)
            qty = min(want, line["remainingQuantity"])
            if qty <= 0:
                continue
            if fo.status not in FULFILLABLE:
                raise PermanentError(
                    f"shopify: order {name}: fulfillment order {fo.id} is {fo.status}"
                    " (release or reopen it in Shopify, then retry the item)"
                )
            take.append({"id": line["id"], "quantity": qty})
            if wanted is not None:
                left[line["sku"]] -= qty
        if not take:
            continue
        group: dict[str, Any] = {"fulfillmentOrderId": fo.id}
        if wanted is not None:
            group["fulfillmentOrderLineItems"] = take  # partial: these lines only
        plan.setdefault(fo.location, []).append(group)
    return plan


def _sent_before(order: dict[str, Any], location: str, number: str) -> bool:
    return any(
        (f.get("location") or {}).get("id") == location
        and any(t.get("number") == number for t in f.get("trackingInfo") or [])
        for f in order.get("fulfillments") or []
    )
