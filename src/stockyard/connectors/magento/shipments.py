"""Shipments back (issue 19): a complete fulfillment Stockyard holds for a Magento order
becomes one shipment, `POST /V1/order/{id}/ship` with items (order_item_id, qty) and
tracks (track_number, title, carrier_code).

Magento keeps no reference of ours on a shipment and has no idempotency key, so the
shipment carries one in a comment that is not shown on the storefront (`stockyard
fulfillment <id>`). Before shipping, the order is read (what each line has left: ordered,
less cancelled, refunded and shipped) and so are its shipments: a shipment with our
comment means an earlier try got through (its answer was lost) and nothing is sent; an
order with nothing left to ship is done too. So a repeat is harmless.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stockyard.connectors import fulfillment_lines
from stockyard.connectors.magento.client import MagentoClient, items, rows
from stockyard.connectors.magento.orders import read_order, shippable
from stockyard.errors import PermanentError

# Carrier codes Magento's own carriers use; anything else is shipped as `custom` with the
# carrier's name as the track's title.
CARRIERS = {"ups": "ups", "usps": "usps", "fedex": "fedex", "dhl": "dhl"}
MARK = "stockyard fulfillment "
NOT_SHIPPABLE = frozenset({"canceled", "closed", "holded", "payment_review", "pending_payment"})

Obj = dict[str, Any]


def marker(fulfillment_id: str) -> str:
    return f"{MARK}{fulfillment_id}"


def push(api: MagentoClient, order_id: str, fulfillment: Mapping[str, Any], notify: bool) -> None:
    """Ship what `fulfillment` says of the order: its `lines` ([{sku, quantity}]) when
    given, else everything left. Only a complete fulfillment is sent (a Magento shipment
    means shipped); pending, open and cancelled ones change nothing there."""
    if fulfillment.get("state") != "complete":
        return
    key = str(fulfillment.get("id") or "")
    wanted = fulfillment_lines.wanted(fulfillment.get("lines"), "magento")
    order = read_order(api, order_id)
    name = order.get("increment_id") or order_id
    left = shippable(order)
    if not any(n > 0 for _, _, n in left):
        return  # all shipped (by us before, or by the merchant)
    if key and _already_shipped(api, int(order_id), marker(key)):
        return
    state = str(order.get("state") or "")
    if state in NOT_SHIPPABLE:
        raise PermanentError(
            f"magento order {name} is {state}: it cannot be shipped until the merchant acts"
        )
    items = _plan(str(name), left, wanted)
    if not items:
        return
    body: Obj = {"items": items, "notify": notify}
    tracks = _tracks(fulfillment.get("tracking"))
    if tracks:
        body["tracks"] = tracks
    if key:
        body["comment"] = {"comment": marker(key), "is_visible_on_front": 0}
        body["appendComment"] = True
    api.call("POST", f"V1/order/{int(order_id)}/ship", body)


def _already_shipped(api: MagentoClient, order_id: int, mark: str) -> bool:
    prefix = "searchCriteria[filterGroups][0][filters][0]"
    answer = api.get(
        "V1/shipments",
        {
            f"{prefix}[field]": "order_id",
            f"{prefix}[value]": str(order_id),
            f"{prefix}[conditionType]": "eq",
        },
    )
    for shipment in items(answer, "GET /V1/shipments"):
        for comment in rows(shipment.get("comments"), "GET /V1/shipments"):
            if comment.get("comment") == mark:
                return True
    return False


def _plan(name: str, left: list[tuple[Obj, int, int]], wanted: dict[str, int] | None) -> list[Obj]:
    """Shipment items: per line, its parent item's id (a configurable's parent carries the
    shipment) and the quantity, never more than the line has left."""
    if wanted is None:
        return [{"order_item_id": int(line["item_id"]), "qty": n} for line, _, n in left if n > 0]
    skus = {line.get("sku") for line, _, _ in left}
    unknown = sorted(s for s in wanted if s not in skus)
    if unknown:
        raise PermanentError(f"magento order {name} has no line with SKU {', '.join(unknown)}")
    items = []
    rest = dict(wanted)
    for line, _, n in left:
        take = min(n, rest.get(line.get("sku") or "", 0))
        if take > 0:
            items.append({"order_item_id": int(line["item_id"]), "qty": take})
            rest[line["sku"]] -= take
    return items


def _tracks(tracking: Any) -> list[Obj]:
    """Stockyard's tracking {carrier, number, url} as one Magento track; none without a
    number. Magento's track has no URL: its carrier code makes the link, for its own
    carriers only."""
    if not isinstance(tracking, dict) or not tracking.get("number"):
        return []
    carrier = str(tracking.get("carrier") or "").strip()
    code = CARRIERS.get(carrier.lower().replace(" ", ""), "custom")
    return [
        {
            "track_number": str(tracking["number"]),
            "title": carrier or "Tracking",
            "carrier_code": code,
        }
    ]
