"""Where a variant's stock goes on a channel that keeps it per place (Magento's MSI
sources, Shopify's locations): one reading of the flow's `stock` (warehouse -> quantity)
and `quantity` (the total) for every such connector, so that a warehouse mapped to a
place means the same on each."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

N = TypeVar("N", int, float)


def stock_levels(
    fields: Mapping[str, Any],
    places: Mapping[str, str],
    default: str | None,
    number: Callable[[Any], N],
) -> dict[str, N]:
    """Place -> the variant's quantity there (`number`: the channel's type for it).

    With `places` (warehouse -> place) and a `stock` per warehouse, each mapped place gets
    the sum of its warehouses (a warehouse not in the variant's stock: 0). An empty `stock`
    is a variant with a total only (the flow gives every variant of a channel with places
    one): its `quantity` goes to `default`, not 0 to every place. No quantity, or no
    default place: nothing."""
    per_warehouse = fields.get("stock")
    if places and isinstance(per_warehouse, Mapping) and per_warehouse:
        levels: dict[str, N] = {}
        for warehouse, place in places.items():
            levels[place] = levels.get(place, 0) + number(per_warehouse.get(warehouse) or 0)
        return levels
    quantity = fields.get("quantity")
    if quantity is None or not default:
        return {}
    return {default: number(quantity)}
