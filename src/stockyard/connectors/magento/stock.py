"""Stock out to Magento: MSI source items (`/V1/inventory/source-items`), or the legacy
CatalogInventory stock item (`PUT /V1/products/{sku}/stockItems/{itemId}`) on a store
without MSI (docs/magento-notes.md, "Stock without MSI, and the price change").

Levels already in the store can be read first and left alone, as Shopify's stock does:
the flow says only that a variant changed, not what, so a price change would otherwise
write every level again (and on a legacy store, overwrite what its orders took off).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from stockyard.connectors.magento.client import MagentoClient, MagentoNotFound, sku_path
from stockyard.connectors.magento.client import items as items_of
from stockyard.errors import PermanentError

SKUS_PER_READ = 20  # as the product search: one filter per SKU keeps the URL short

Mode = Literal["auto", "msi", "legacy"]
Levels = dict[str, dict[str, float]]  # sku -> MSI source code -> quantity
Search = Callable[[list[str]], dict[str, dict[str, Any]]]  # skus -> products by SKU


class Stock:
    def __init__(self, api: MagentoClient, mode: Mode, search: Search) -> None:
        self.api = api
        self.search = search
        # Learnt once per connector: a store answering 404 on the MSI routes has none.
        self.msi: bool | None = {"auto": None, "msi": True, "legacy": False}[mode]
        self.mode = mode

    def set(self, levels: Levels, compare: bool) -> None:
        """Each SKU's quantities; with `compare`, only those the store holds otherwise."""
        refused = self.set_each(levels, compare)
        if refused:
            raise next(iter(refused.values()))

    def set_each(
        self, levels: Levels, compare: bool, check: Callable[[], None] = lambda: None
    ) -> dict[str, PermanentError]:
        """As `set`, but a legacy stock item the store refuses fails only its SKU: the
        refusals by SKU (MSI takes all SKUs in one request, so it fails all or none).
        `check` raises once the caller's deadline has passed (before each legacy item)."""
        levels = {sku: per for sku, per in levels.items() if per}
        if not levels:
            return {}
        if self.msi is not False:
            try:
                self._set_sources(levels, compare)
                self.msi = True
                return {}
            except MagentoNotFound:
                if self.mode == "msi":
                    raise PermanentError(
                        "magento: the store has no MSI (/V1/inventory/source-items answers"
                        " 404): set inventory to legacy or auto"
                    ) from None
                self.msi = False
        return self._set_legacy(levels, compare, check)

    # --------------------------------------------------------------------------- MSI

    def _set_sources(self, levels: Levels, compare: bool) -> None:
        items: list[dict[str, Any]] = [
            {"sku": sku, "source_code": source, "quantity": q, "status": int(q > 0)}
            for sku, per in levels.items()
            for source, q in per.items()
        ]
        if compare:
            held = self._read_sources(levels)
            items = [i for i in items if held.get((i["sku"], i["source_code"])) != _level(i)]
        if items:
            path = "V1/inventory/source-items"  # a void method: it may answer nothing
            self.api.call("POST", path, {"sourceItems": items}, empty=True)

    def _read_sources(self, levels: Levels) -> dict[tuple[str, str], tuple[float, int]]:
        skus = list(levels)
        sources = sorted({s for per in levels.values() for s in per})
        held: dict[tuple[str, str], tuple[float, int]] = {}
        for start in range(0, len(skus), SKUS_PER_READ):
            chunk = skus[start : start + SKUS_PER_READ]
            params = _any_of(0, "sku", chunk) | _any_of(1, "source_code", sources)
            params["searchCriteria[pageSize]"] = len(chunk) * len(sources)
            answer = self.api.get("V1/inventory/source-items", params)
            for item in items_of(answer, "GET /V1/inventory/source-items"):
                held[(str(item.get("sku")), str(item.get("source_code")))] = _level(item)
        return held

    # ------------------------------------------------------------------------ legacy

    def _set_legacy(
        self, levels: Levels, compare: bool, check: Callable[[], None]
    ) -> dict[str, PermanentError]:
        """One stock item per product (Magento's default stock): the sources summed."""
        check()
        products = self.search(list(levels))
        refused: dict[str, PermanentError] = {}
        for sku, per in levels.items():
            check()
            try:
                self._set_item(sku, products.get(sku) or {}, per, compare)
            except PermanentError as exc:
                refused[sku] = exc
        return refused

    def _set_item(
        self, sku: str, product: dict[str, Any], per: dict[str, float], compare: bool
    ) -> None:
        item = (product.get("extension_attributes") or {}).get("stock_item")
        if not isinstance(item, dict) or not isinstance(item.get("item_id"), int):
            raise PermanentError(f"magento: product {sku} has no stock item to set")
        quantity = sum(per.values())
        wanted = {"qty": quantity, "is_in_stock": quantity > 0}
        if compare and (item.get("qty"), item.get("is_in_stock")) == tuple(wanted.values()):
            return
        path = f"V1/products/{sku_path(sku)}/stockItems/{item['item_id']}"
        self.api.call("PUT", path, {"stockItem": wanted})


def _level(item: dict[str, Any]) -> tuple[float, int]:
    return float(item.get("quantity") or 0), int(item.get("status") or 0)


def _any_of(group: int, field: str, values: list[str]) -> dict[str, Any]:
    """One filter group whose filters (ORed) each match one value exactly."""
    params: dict[str, Any] = {}
    for n, value in enumerate(values):
        prefix = f"searchCriteria[filterGroups][{group}][filters][{n}]"
        params |= {f"{prefix}[field]": field, f"{prefix}[value]": value}
        params[f"{prefix}[conditionType]"] = "eq"
    return params
