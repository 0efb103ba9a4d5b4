"""Fulfillments out (issue 18): a fulfillment Stockyard holds for an order becomes Shopify
fulfillments of the order's fulfillment orders.

Shopify ships by fulfillment order: each holds lines with a `remainingQuantity`, at one
location, and one fulfillmentCreate covers fulfillment orders of one order and one
location only. Shopify keeps no reference of ours on a fulfillment, so the order keeps a
ledger in a metafield (`stockyard.fulfillments`): per Stockyard fulfillment, its lines and
the shipped totals per SKU it aims at, above what the other entries aim at (written once
the plan is known to ship and *before* a partial shipment is sent, so a retry after a lost
answer ships only what is still missing, whatever the location), and the Shopify
fulfillments it made (so a corrected tracking number reaches them). A whole fulfillment
needs no target: what is fulfilled has nothing left. A fulfillment order that cannot be
fulfilled (on hold, scheduled, cancelled with lines left) stops the item before anything
is sent, naming it: the merchant has to act in Shopify.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeGuard

from stockyard.connectors import fulfillment_lines
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
    wanted = fulfillment_lines.wanted(fulfillment.get("lines"), "shopify")
    tracking = _tracking(fulfillment.get("tracking"))
    order, fos = _read(api, order_id)
    _check_skus(order["name"], fos, wanted)
    book = Ledger.read(api, order_id)
    key = str(fulfillment.get("id") or "")
    entry = book.entries.get(key, {})
    if wanted is not None:
        shipped = _shipped(fos)
        entry = _aim(book, key, wanted, shipped)
        wanted = _missing(entry["target"], shipped)
    # Planned (holds refused) before the ledger is written: a fulfillment that cannot
    # ship claims no units there, which another one would otherwise ship in its place.
    plan = _plan(order["name"], fos, wanted) if wanted != {} else {}
    if entry != book.entries.get(key, {}):
        book.entries[key] = entry
        book.write(api)
    made = [_create(api, order["name"], groups, tracking, notify) for groups in plan.values()]
    if made:
        book.entries[key] = entry | {"ids": [*entry.get("ids", []), *made]}
        book.write(api)
    elif tracking:
        _correct_tracking(api, order["name"], book, entry, tracking, notify)


def _aim(book: Ledger, key: str, wanted: dict[str, int], shipped: dict[str, int]) -> dict[str, Any]:
    """This partial fulfillment's ledger entry: `lines` (its quantities) and `target` (the
    order's shipped totals per SKU once it has shipped). The target stays as first written
    while the lines stay the same, so a retry after a lost answer ships nothing twice. It
    is set above what the other entries aim at, not only above what has shipped now: one
    of them may have its target written and be still unshipped. New quantities revise it:
    from scratch while nothing of it has shipped, else by the difference."""
    entry = dict(book.entries.get(key, {}))
    before: dict[str, int] | None = entry.get("lines", wanted if "target" in entry else None)
    if before == wanted:
        return entry
    claimed = _claimed(book, key, shipped)
    old: dict[str, int] = entry.get("target", {})
    if before is None or not entry.get("ids"):
        target = {sku: claimed.get(sku, 0) + qty for sku, qty in wanted.items()}
    else:
        target = {
            sku: (old[sku] - before.get(sku, 0) if sku in old else claimed.get(sku, 0))
            + wanted.get(sku, 0)
            for sku in wanted.keys() | before.keys()
        }
    return entry | {"target": target, "lines": wanted}


def _claimed(book: Ledger, key: str, shipped: dict[str, int]) -> dict[str, int]:
    """SKU -> the shipped total that the order reaches without this fulfillment: what has
    shipped, or what another entry aims at when that is more."""
    claimed = dict(shipped)
    for other, entry in book.entries.items():
        if other == key:
            continue
        for sku, total in entry.get("target", {}).items():
            claimed[sku] = max(claimed.get(sku, 0), total)
    return claimed


def _missing(target: dict[str, int], shipped: dict[str, int]) -> dict[str, int]:
    """What is still to ship towards `target`, wherever it remains."""
    return {
        sku: total - shipped.get(sku, 0)
        for sku, total in target.items()
        if total > shipped.get(sku, 0)
    }


def _shipped(fos: list[FulfillmentOrder]) -> dict[str, int]:
    """SKU -> units fulfilled so far, over all fulfillment orders (every location)."""
    shipped: dict[str, int] = {}
    for fo in fos:
        if fo.status == "CANCELLED":  # nothing of it shipped, whatever is left on it
            continue
        for line in fo.lines:
            done = int(line.get("totalQuantity") or 0) - int(line["remainingQuantity"])
            shipped[line["sku"]] = shipped.get(line["sku"], 0) + max(done, 0)
    return shipped


def _create(
    api: ShopifyClient,
    name: str,
    groups: list[dict[str, Any]],
    tracking: dict[str, str],
    notify: bool,
) -> str:
    body: dict[str, Any] = {"lineItemsByFulfillmentOrder": groups, "notifyCustomer": notify}
    if tracking:
        body["trackingInfo"] = tracking
    payload = api.query(d.FULFILLMENT_CREATE, {"fulfillment": body})["fulfillmentCreate"]
    _refuse(f"fulfil order {name}", payload)
    return str(payload["fulfillment"]["id"])


def _correct_tracking(
    api: ShopifyClient,
    name: str,
    book: Ledger,
    entry: dict[str, Any],
    tracking: dict[str, str],
    notify: bool,
) -> None:
    """Nothing left to ship for this fulfillment: its Shopify fulfillments get the
    tracking it now has, where theirs differs (a corrected number, say)."""
    for fid in entry.get("ids", []):
        shown = book.tracking.get(fid)
        if shown is None or _same_tracking(shown, tracking):
            continue  # gone (cancelled in Shopify) or already right
        variables = {"id": fid, "tracking": tracking, "notify": notify}
        payload = api.query(d.FULFILLMENT_TRACKING_UPDATE, variables)
        _refuse(f"order {name}: update tracking", payload["fulfillmentTrackingInfoUpdate"])


def _same_tracking(shown: list[dict[str, Any]], tracking: dict[str, str]) -> bool:
    first = shown[0] if shown else {}
    return all((first.get(k) or "") == tracking.get(k, "") for k in ("company", "number", "url"))


def _refuse(what: str, payload: dict[str, Any] | None) -> None:
    errors = (payload or {}).get("userErrors") or []
    if payload is None or errors:
        problems = "; ".join(
            f"{'.'.join(e.get('field') or []) or '-'}: {e.get('message')}" for e in errors[:5]
        )
        raise PermanentError(f"shopify: {what}: {problems or 'no answer'}")


@dataclass
class Ledger:
    """The order's `stockyard.fulfillments` metafield: {Stockyard fulfillment id:
    {"target": {sku: shipped total}, "ids": [Shopify fulfillment ids]}}, and the
    tracking Shopify shows for the order's fulfillments."""

    order_id: str
    entries: dict[str, dict[str, Any]]
    tracking: dict[str, list[dict[str, Any]]]

    @classmethod
    def read(cls, api: ShopifyClient, order_id: str) -> Ledger:
        order = api.query(d.ORDER_FULFILLMENT_LEDGER, {"id": order_id})["order"]
        if order is None:
            raise PermanentError(f"shopify has no order {order_id}")
        entries: Any = {}
        if order["ledger"]:
            try:
                entries = json.loads(order["ledger"]["value"])
            except ValueError:
                entries = None
        if not isinstance(entries, dict) or not all(map(_is_entry, entries.values())):
            raise PermanentError(
                f"shopify: order {order_id}: its stockyard.fulfillments metafield is not"
                " Stockyard's ledger (edited in Shopify?); fix or delete it, then retry"
            )
        shown = {f["id"]: f["trackingInfo"] for f in order["fulfillments"]}
        return cls(order_id, entries, shown)

    def write(self, api: ShopifyClient) -> None:
        kept = {k: v for k, v in self.entries.items() if k and v}
        mark = {
            "ownerId": self.order_id,
            "namespace": "stockyard",
            "key": "fulfillments",
            "type": "json",
            "value": json.dumps(kept, sort_keys=True),
        }
        payload = api.query(d.METAFIELDS_SET, {"metafields": [mark]})["metafieldsSet"]
        _refuse(f"order {self.order_id}: keep the fulfillment ledger", payload)


def _is_entry(entry: Any) -> bool:
    """A ledger entry as Stockyard writes it; anything else would break the arithmetic."""
    if not isinstance(entry, dict):
        return False
    counts = [entry.get(k, {}) for k in ("target", "lines")]
    ids = entry.get("ids", [])
    return (
        all(isinstance(c, dict) and all(map(_is_count, c.values())) for c in counts)
        and isinstance(ids, list)
        and all(isinstance(i, str) for i in ids)
    )


def _is_count(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


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


def _check_skus(name: str, fos: list[FulfillmentOrder], wanted: dict[str, int] | None) -> None:
    known = {line["sku"] for fo in fos for line in fo.lines}
    unknown = sorted(set(wanted or {}) - known)
    if unknown:
        raise PermanentError(f"shopify: order {name} has no line with SKU {', '.join(unknown)}")
