"""The `woocommerce` connector (issue 19): products and variants out to a WooCommerce store
over its REST API `wc/v3`; orders in by webhook and poll (orders.py) and fulfillment back
as status completed + a tracking note (fulfillments.py); images by URL (media.py)
(docs/woocommerce-notes.md).

WooCommerce has no idempotency keys; SKUs, unique across products and variations, are the
only de-duplication. So everything made carries a SKU and a create looks the SKU up first:
a simple product carries its variant's SKU, a variable product the product's code (or
"<code>-parent" when the code is also one of its variants' SKUs). Variations go through
their parent's `variations/batch`, at most `batch_size` (≤ 100, create + update together)
per request; a 413 from a store whose cap is lower halves the batch and tries again. A batch
answers 200 with per-item errors, which become those variants' failed `Result`s.

Prices go as strings: `regular_price` is the compare-at price when one above the price is
given (then `sale_price` is the price), else the price (and `sale_price` is cleared). Stock:
`manage_stock` true with `stock_quantity` when the variant has a quantity, else false.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from stockyard.connectors.amounts import non_negative
from stockyard.connectors.base import (
    ChannelImage,
    ChannelProduct,
    ChannelVariant,
    Connector,
    Page,
    RemoteProduct,
    Result,
    more_secrets,
    parse_settings,
)
from stockyard.connectors.urls import secret_bearing_url
from stockyard.connectors.webhooks import Delivery
from stockyard.connectors.woocommerce import fulfillments, media, orders, paging
from stockyard.connectors.woocommerce.client import WooCommerceClient, WooCommerceRefused
from stockyard.connectors.woocommerce.skus import lookup, variations_in
from stockyard.engine import Limits
from stockyard.errors import HandlerError, PermanentError

BATCH_LIMIT = 100  # WooCommerce's default cap on create + update + delete in one batch
# Pages of 100 variations read for one product: far more than any store's product has.
MOST_PAGES = 100
DUPLICATE_SKU = "product_invalid_sku"
TOO_LARGE = 413
_KEY = re.compile(r"[\x21-\x7e]+")
_ID = re.compile(r"[1-9][0-9]{0,18}")


def _url(value: str) -> str:
    # Basic auth sends the key and secret readable by anyone on the way over http.
    return secret_bearing_url(
        value,
        "must be https:// (WooCommerce wants OAuth 1.0a over plain http, which this connector"
        " does not do; http:// only to a loopback address, for tests)",
    )


def _key(value: str) -> str:
    # Never repeats the value: it is a secret.
    if not _KEY.fullmatch(value):
        raise ValueError("must be printable ASCII without spaces, as WooCommerce issues it")
    return value


class WooCommerceSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Annotated[str, AfterValidator(_url)]  # the store's address (WordPress home)
    consumer_key: Annotated[str, AfterValidator(_key)] = Field(repr=False)
    consumer_secret: Annotated[str, AfterValidator(_key)] = Field(repr=False)
    timeout: float = Field(default=30.0, gt=0, le=600)
    # Items per batch request; lower it for a store whose owner lowered
    # woocommerce_rest_batch_items_limit (a 413 halves the batch anyway).
    batch_size: int = Field(default=BATCH_LIMIT, ge=1, le=BATCH_LIMIT)


def _money(value: Any, what: str) -> str:
    return format(non_negative(value, f"woocommerce: {what}", "must be a decimal number"), "f")


def _options(v: ChannelVariant, alone: bool) -> dict[str, str]:
    values = {str(k): str(x) for k, x in (v.fields.get("options") or {}).items()}
    return values if values or alone else {"Variant": v.sku}


class WooCommerceConnector(Connector):
    roles = frozenset({"channel"})
    secret_settings = frozenset({"consumer_key", "consumer_secret"})
    # A WordPress site is one PHP pool: a few requests at once.
    default_limits = Limits(max_running=4)
    # ~1.02 sequential calls a product (one variations batch each): 100 keep an item to
    # ~102 calls, minutes at most on a slow WordPress, within BULK_CALL_SECONDS.
    bulk_chunk = 100

    def __init__(self, settings: Mapping[str, Any]) -> None:
        super().__init__(settings)
        self.config = parse_settings(WooCommerceSettings, settings, "woocommerce")
        # A store or proxy echoing the request's Authorization shows the pair as base64.
        pair = f"{self.config.consumer_key}:{self.config.consumer_secret}".encode()
        self._secret_values = more_secrets(self._secret_values, base64.b64encode(pair).decode())
        self.api = WooCommerceClient(
            self.config.url,
            self.config.consumer_key,
            self.config.consumer_secret,
            timeout=self.config.timeout,
            secrets=self._secret_values,
        )

    def close(self) -> None:
        self.api.close()

    # --------------------------------------------------------------------- products

    def find_product(self, skus: list[str]) -> RemoteProduct | None:
        """The product holding one of `skus`: a simple product (its variant's SKU), a
        variable one whose code is among them, or the parent of a variation holding one
        (core's SKU search answers variations too). One look-up for all of them."""
        found = lookup(self.api, skus)
        for sku in dict.fromkeys(s for s in skus if s):
            row = found.get(sku)
            if row is not None:
                return self._remote(self._parent_of(row))
        return None

    def _by_sku(self, sku: str) -> dict[str, Any] | None:
        return lookup(self.api, [sku]).get(sku)

    def _parent_of(self, row: dict[str, Any]) -> dict[str, Any]:
        """The product itself, or the parent of a variation: products are linked, never
        their variations."""
        parent = row.get("parent_id")
        if not parent:
            return row
        if not _ID.fullmatch(str(parent)):
            raise PermanentError(f"woocommerce: variation {row.get('id')}: no parent_id")
        answer, _ = self.api.call("GET", f"/products/{parent}", "read product")
        return paging.object_of(answer, "read product")

    def _remote(self, row: dict[str, Any]) -> RemoteProduct:
        pid = str(row.get("id"))
        if row.get("type") == "variable":
            children = self._variations(pid)
            return RemoteProduct(pid, {v["sku"]: str(v["id"]) for v in children if v.get("sku")})
        return RemoteProduct(pid, {row["sku"]: pid} if row.get("sku") else {})

    def _variations(self, product_id: str) -> list[dict[str, Any]]:
        return paging.read_all(
            self.api, f"/products/{product_id}/variations", "list variations", {}, MOST_PAGES
        )

    @staticmethod
    def _simple(product: ChannelProduct) -> bool:
        return len(product.variants) == 1 and not product.variants[0].fields.get("options")

    @staticmethod
    def _parent_sku(product: ChannelProduct) -> str:
        taken = {v.sku for v in product.variants}
        return product.code if product.code not in taken else f"{product.code}-parent"

    def create_product(self, product: ChannelProduct, key: str) -> RemoteProduct:
        if self._simple(product):
            return self._create_simple(product)
        sku = self._parent_sku(product)
        # The parent's SKU and its variants' in one look-up.
        looked = lookup(self.api, [sku, *(v.sku for v in product.variants)])
        found = _own(looked.get(sku), sku, product.code)
        current: list[dict[str, Any]] = []
        if found is None:
            body = self._product_fields(product) | {
                "type": "variable",
                "sku": sku,
                "attributes": self._attributes(product.variants, []),
            }
            found = self._create_or_find(body, sku, product.code)
        elif found.get("type") == "variable":
            rows = variations_in(looked.values(), found)
            current = self._variations(str(found["id"])) if rows is None else rows
        product_id = str(found["id"])
        results = self._upsert(found, product.variants, current)
        failed = [r for r in results if not r.ok]
        if failed:
            # The product stays: a retry finds it by its SKU and completes it.
            raise failed[0].error or PermanentError("woocommerce: a variant failed")
        return RemoteProduct(product_id, {r.key: r.remote_id or "" for r in results})

    def _create_simple(self, product: ChannelProduct) -> RemoteProduct:
        (variant,) = product.variants
        body = self._product_fields(product) | self._variant_fields(variant)
        body |= {"type": "simple", "sku": variant.sku}
        row = _own(self._by_sku(variant.sku), variant.sku, product.code)
        if row is None:
            row = self._create_or_find(body, variant.sku, product.code)
        else:  # made by an earlier try of this item: bring it up to date
            row, _ = self.api.call(
                "PUT", f"/products/{row['id']}", f"update product {product.code}", body
            )
        return RemoteProduct(str(row["id"]), {variant.sku: str(row["id"])})

    def _create_or_find(self, body: dict[str, Any], sku: str, code: str) -> dict[str, Any]:
        try:
            row, _ = self.api.call("POST", "/products", f"create product {code}", body)
            return dict(row)
        except WooCommerceRefused as exc:
            if exc.code != DUPLICATE_SKU:
                raise
            # Made meanwhile by a concurrent try, or the SKU is someone else's.
            row = self._by_sku(sku)
            if row is None or row.get("parent_id"):
                raise PermanentError(
                    f"woocommerce: create product {code}: SKU {sku} is taken by a variation"
                    " or a trashed product; delete it for good in WooCommerce"
                ) from None
            return row

    @staticmethod
    def _product_fields(product: ChannelProduct) -> dict[str, Any]:
        fields = product.fields
        body: dict[str, Any] = {"name": str(fields.get("title") or product.code)}
        if fields.get("description") is not None:
            body["description"] = html.escape(str(fields["description"]))
        return body

    def update_product(self, remote_id: str, product: ChannelProduct, key: str) -> None:
        self.api.call(
            "PUT",
            f"/products/{remote_id}",
            f"update product {product.code}",
            self._product_fields(product),
        )

    def delete_product(self, remote_id: str, key: str) -> None:
        try:
            # force: for good (without it the product is trashed and keeps its SKU).
            self.api.call(
                "DELETE", f"/products/{remote_id}", "delete product", params={"force": "true"}
            )
        except WooCommerceRefused as exc:
            if exc.status != 404:  # deleted before (a repeated item): done
                raise

    # ----------------------------------------------------------------------- images

    def add_image(self, product_remote_id: str, image: ChannelImage, key: str) -> str:
        return media.add_image(self.api, product_remote_id, image)

    def delete_image(self, product_remote_id: str, remote_id: str, key: str) -> None:
        media.delete_image(self.api, product_remote_id, remote_id)

    # ------------------------------------------------ orders in, fulfillment back

    def fetch_orders(self, cursor: str | None) -> Page:
        return orders.fetch_orders(self.api, cursor)

    def get_order(self, remote_id: str) -> dict[str, Any]:
        return orders.get_order(self.api, remote_id)

    def push_fulfillment(self, order_remote_id: str, fulfillment: dict[str, Any], key: str) -> None:
        fulfillments.push(self.api, order_remote_id, fulfillment)

    @classmethod
    def read_webhook(
        cls,
        topic: str,
        body: bytes,
        headers: Mapping[str, str],
        secret: str,
        settings: Mapping[str, Any],
    ) -> Delivery:
        return orders.read_webhook(topic, body, headers, secret, settings)

    # --------------------------------------------------------------------- variants

    def upsert_variants(
        self, product_remote_id: str, variants: list[ChannelVariant], key: str
    ) -> list[Result]:
        answer, _ = self.api.call("GET", f"/products/{product_remote_id}", "read product")
        parent = paging.object_of(answer, "read product")
        paging.row_id(parent, "read product")
        current = self._variations(product_remote_id) if parent.get("type") == "variable" else []
        return self._upsert(parent, variants, current)

    def _upsert(
        self, parent: dict[str, Any], variants: list[ChannelVariant], current: list[dict[str, Any]]
    ) -> list[Result]:
        pid = str(parent["id"])
        if parent.get("type") != "variable":
            return self._upsert_simple(parent, variants)
        attributes = self._attributes(variants, parent.get("attributes") or [])
        if attributes != [
            {k: a[k] for k in ("name", "options", "variation", "visible") if k in a}
            for a in parent.get("attributes") or []
        ]:
            self.api.call(
                "PUT", f"/products/{pid}", "update product attributes", {"attributes": attributes}
            )
        by_id = {str(v["id"]): v for v in current}
        by_sku = {v["sku"]: v for v in current if isinstance(v.get("sku"), str) and v["sku"]}
        alone = len(variants) == 1
        items: list[tuple[ChannelVariant, str, dict[str, Any]]] = []
        for v in variants:
            row = by_id.get(v.remote_id or "") or by_sku.get(v.sku)
            body = self._variant_fields(v) | {
                "sku": v.sku,
                "attributes": [{"name": n, "option": o} for n, o in _options(v, alone).items()],
            }
            if row is None:
                items.append((v, "create", body))
            else:
                items.append((v, "update", body | {"id": int(row["id"])}))
        results: dict[str, Result] = {}
        for start in range(0, len(items), self.config.batch_size):
            results |= self._batch(pid, items[start : start + self.config.batch_size])
        return [results[v.sku] for v in variants]

    def _batch(
        self, pid: str, items: list[tuple[ChannelVariant, str, dict[str, Any]]]
    ) -> dict[str, Result]:
        """One variations batch; per-item answers mapped back by position."""
        creates = [i for i in items if i[1] == "create"]
        updates = [i for i in items if i[1] == "update"]
        body = {
            k: [b for _, _, b in group]
            for k, group in (("create", creates), ("update", updates))
            if group
        }
        try:
            answer, _ = self.api.call(
                "POST", f"/products/{pid}/variations/batch", "variations batch", body
            )
        except WooCommerceRefused as exc:
            if exc.status != TOO_LARGE or len(items) == 1:
                raise
            half = len(items) // 2  # the store's cap is lower than ours
            return self._batch(pid, items[:half]) | self._batch(pid, items[half:])
        results: dict[str, Result] = {}
        for action, group in (("create", creates), ("update", updates)):
            rows = paging.batch_rows(answer, action, len(group), "variations batch")
            for (v, _, _), row in zip(group, rows, strict=True):
                found = paging.batch_row(row, f"{action} variant {v.sku}", self.api.quote)
                if isinstance(found, HandlerError):
                    results[v.sku] = Result(v.sku, error=found)
                else:
                    results[v.sku] = Result(v.sku, remote_id=str(found["id"]))
        return results

    def _upsert_simple(
        self, parent: dict[str, Any], variants: list[ChannelVariant]
    ) -> list[Result]:
        """A simple product is its own (only) variant."""
        out = []
        for v in variants:
            if v.sku != parent.get("sku") and v.remote_id != str(parent["id"]):
                error = PermanentError(
                    f"woocommerce: variant {v.sku}: product {parent['id']} is a simple product"
                    f" (SKU {parent.get('sku')}); a second variant needs it variable"
                )
                out.append(Result(v.sku, error=error))
                continue
            try:
                body = self._variant_fields(v) | {"sku": v.sku}
                self.api.call("PUT", f"/products/{parent['id']}", f"update variant {v.sku}", body)
                out.append(Result(v.sku, remote_id=str(parent["id"])))
            except PermanentError as exc:
                out.append(Result(v.sku, error=exc))
        return out

    @staticmethod
    def _attributes(
        variants: list[ChannelVariant], existing: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """The product's variation attributes: the existing ones with any new option added."""
        options: dict[str, list[str]] = {
            str(a["name"]): list(a.get("options") or []) for a in existing
        }
        alone = len(variants) == 1
        for v in variants:
            for name, value in _options(v, alone).items():
                values = options.setdefault(name, [])
                if value not in values:
                    values.append(value)
        return [
            {"name": n, "options": values, "variation": True, "visible": True}
            for n, values in options.items()
        ]

    @staticmethod
    def _variant_fields(v: ChannelVariant) -> dict[str, Any]:
        fields = v.fields
        price = _money(fields.get("price") or "0", f"variant {v.sku}: price")
        body: dict[str, Any] = {"regular_price": price, "sale_price": ""}
        compare = fields.get("compare_at_price")
        if compare is not None:
            was = _money(compare, f"variant {v.sku}: compare_at_price")
            if Decimal(was) > Decimal(price):
                body = {"regular_price": was, "sale_price": price}
        quantity = fields.get("quantity")
        if quantity is None:
            body["manage_stock"] = False
        else:
            body |= {"manage_stock": True, "stock_quantity": int(quantity)}
        if fields.get("weight") is not None:
            body["weight"] = _money(fields["weight"], f"variant {v.sku}: weight")
        return body

    def delete_variant(self, product_remote_id: str, remote_id: str, key: str) -> None:
        try:
            self.api.call(
                "DELETE",
                f"/products/{product_remote_id}/variations/{remote_id}",
                "delete variant",
                params={"force": "true"},
            )
        except WooCommerceRefused as exc:
            if exc.status != 404:
                raise

    # ------------------------------------------------------------------------- bulk

    def bulk_products(
        self, products: list[ChannelProduct], remote_ids: Mapping[str, str], key: str
    ) -> list[Any]:  # list[ProductResult]
        # Imported here: bulk.py builds on this class's body builders.
        from stockyard.connectors.woocommerce import bulk

        return bulk.bulk_products(self, products, remote_ids, key)


def _own(row: dict[str, Any] | None, sku: str, code: str) -> dict[str, Any] | None:
    """The product found holding a product's own SKU, refused when a variation holds it."""
    if row is not None and row.get("parent_id"):
        raise PermanentError(
            f"woocommerce: product {code}: SKU {sku} is held by a variation of product"
            f" {row['parent_id']}"
        )
    return row
