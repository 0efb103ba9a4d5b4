"""The `lines` of a Stockyard fulfillment (a partial shipment: [{sku, quantity}, ...]), read
the same way by every connector that ships part of an order (Magento's shipments,
Shopify's fulfillments), so that a partial fulfillment one channel takes is not refused
by another, nor the other way round."""

from __future__ import annotations

from typing import Any, TypeGuard

from stockyard.errors import PermanentError


def wanted(lines: Any, connector: str) -> dict[str, int] | None:
    """SKU -> quantity to ship (a SKU named twice: summed); None: the whole order. Lines
    that are not a non-empty list of {sku, quantity > 0} are a PermanentError naming
    `connector`: sending them again cannot help."""
    if lines is None:
        return None
    skus: dict[str, int] = {}
    ok = isinstance(lines, list) and bool(lines)
    for line in lines if isinstance(lines, list) else []:
        sku = line.get("sku") if isinstance(line, dict) else None
        qty = line.get("quantity") if isinstance(line, dict) else None
        if _is_sku(sku) and _is_quantity(qty):
            skus[sku] = skus.get(sku, 0) + qty
        else:
            ok = False
    if not ok:
        raise PermanentError(
            f"{connector}: fulfillment lines must be a list of {{sku, quantity > 0}}, none empty"
        )
    return skus


def _is_sku(value: Any) -> TypeGuard[str]:
    return isinstance(value, str) and bool(value)


def _is_quantity(value: Any) -> TypeGuard[int]:
    # bool is an int to isinstance: True is no quantity.
    return isinstance(value, int) and not isinstance(value, bool) and value > 0
