"""The catalog a client's sources filled: products, variants, orders, fulfillments."""

from __future__ import annotations

from typing import TYPE_CHECKING

from stockyard.service.base import READ, ServiceBase

if TYPE_CHECKING:
    from stockyard.accounts import Principal
    from stockyard.catalog.store import (
        ProductRow,
        StoredFulfillment,
        StoredOrder,
        StoredProduct,
        VariantRow,
    )


class CatalogService(ServiceBase):
    def products(self, who: Principal, client_id: int, after: str, limit: int) -> list[ProductRow]:
        self._allow(who, client_id, READ)
        return self.store.list_products(client_id, after, limit)

    def product(self, who: Principal, client_id: int, product_id: int) -> StoredProduct:
        self._allow(who, client_id, READ)
        return self.store.product(client_id, product_id)

    def variants(self, who: Principal, client_id: int, after: str, limit: int) -> list[VariantRow]:
        self._allow(who, client_id, READ)
        return self.store.list_variants(client_id, after, limit)

    def orders(
        self, who: Principal, client_id: int, before: int | None, limit: int
    ) -> list[StoredOrder]:
        self._allow(who, client_id, READ)
        return self.store.list_orders(client_id, before, limit)

    def order(
        self, who: Principal, client_id: int, order_id: int
    ) -> tuple[StoredOrder, list[StoredFulfillment]]:
        self._allow(who, client_id, READ)
        order = self.store.order(client_id, order_id)
        return order, self.store.fulfillments(order.id)

    def fulfillments(
        self, who: Principal, client_id: int, before: int | None, limit: int
    ) -> list[StoredFulfillment]:
        self._allow(who, client_id, READ)
        return self.store.list_fulfillments(client_id, before, limit)
