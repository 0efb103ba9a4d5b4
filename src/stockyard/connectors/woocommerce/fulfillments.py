"""Fulfillment back to WooCommerce (issue 19). WooCommerce core has no shipment object: a
shipped order is one whose status is `completed`, and the tracking reaches the customer as
a customer-visible order note (`customer_note: true`, which WooCommerce e-mails).

A complete Stockyard fulfillment of the whole order (no `lines`, or lines covering every
unit ordered) adds the note, when it has tracking, then sets the order `completed`; a
partial one adds its note only (core cannot say "part shipped"; the order stays in
processing). Repeats are harmless: the note is added only when no customer note of the
order already has its exact text, and the status is set only when it is not completed.
Orders that are not processing or completed (unpaid, cancelled, refunded) are refused.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from typing import Any

from stockyard.connectors.woocommerce import paging
from stockyard.connectors.woocommerce.client import WooCommerceClient
from stockyard.errors import PermanentError

SHIPPABLE = frozenset({"processing", "completed"})
_ID = re.compile(r"[1-9][0-9]{0,18}")


def push(api: WooCommerceClient, order_id: str, fulfillment: Mapping[str, Any]) -> None:
    if fulfillment.get("state") != "complete":
        return  # pending, open, cancelled: nothing has shipped
    if not _ID.fullmatch(order_id):
        # Goes into the request's path: anything but digits could reach another resource.
        raise PermanentError(f"woocommerce: {order_id[:80]!r} is not an order id")
    answer, _ = api.call("GET", f"/orders/{order_id}", f"read order {order_id}")
    order = paging.object_of(answer, f"read order {order_id}")
    paging.rows_of(order.get("line_items") or [], f"read order {order_id}: line_items")
    status = order.get("status")
    if status not in SHIPPABLE:
        raise PermanentError(
            f"woocommerce order {order.get('number')} is {str(status)[:40]}: not marked shipped"
            " (only processing or completed orders are)"
        )
    whole = _whole(order, fulfillment.get("lines"))
    text = note_text(fulfillment.get("tracking"), None if whole else fulfillment.get("lines"))
    if text is not None:
        answer, _ = api.call(
            "GET",
            f"/orders/{order_id}/notes",
            "list order notes",
            params={"type": "customer"},
        )
        notes = paging.rows_of(answer, "list order notes")
        if not any(n.get("note") == text for n in notes):
            body = {"note": text, "customer_note": True}
            api.call("POST", f"/orders/{order_id}/notes", "add the tracking note", body)
    if whole and status != "completed":
        api.call("PUT", f"/orders/{order_id}", "complete order", {"status": "completed"})


def _whole(order: Mapping[str, Any], lines: Any) -> bool:
    """The fulfillment ships every unit of the order."""
    if not lines:
        return True
    ordered: Counter[str] = Counter()
    for li in order.get("line_items") or []:
        ordered[str(li.get("sku") or "")] += int(li.get("quantity") or 0)
    shipped: Counter[str] = Counter()
    for line in lines:
        shipped[str(line.get("sku") or "")] += int(line.get("quantity") or 0)
    return all(shipped[sku] >= n for sku, n in ordered.items() if n > 0)


def note_text(tracking: Any, lines: Any = None) -> str | None:
    """The customer note: carrier, number and URL, one spelling per tracking (so a repeat
    finds it), and for a partial shipment what it holds. None: nothing to tell."""
    t = tracking if isinstance(tracking, Mapping) else {}
    carrier, number, url = (str(t.get(k) or "").strip() for k in ("carrier", "number", "url"))
    parts = []
    if number or url:
        parts.append(
            "Your order has shipped"
            + (f" with {carrier}" if carrier else "")
            + (f". Tracking number: {number}" if number else "")
            + (f". Track it at {url}" if url else "")
            + "."
        )
    if lines:
        held = ", ".join(f"{int(x.get('quantity') or 0)} x {x.get('sku')}" for x in lines)
        if not parts:
            parts.append("Part of your order has shipped.")
        parts.append(f"This shipment holds {held}.")
    return " ".join(parts) or None
