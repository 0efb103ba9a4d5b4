"""The `shopify` connector (issue 18): a Shopify shop over its Admin GraphQL API, as a
channel. So far products, variants and stock go out; orders in, fulfillments out, images
and bulk operations are next (docs/shopify-notes.md).

Every document it sends lives in `documents` and is validated against Shopify's own schema
(`schema`, tests only). Products are made with productCreate + productVariantsBulkCreate,
never productSet with variants (which deletes the variants it is not given: only safe when
Stockyard owns the whole product). Stock is set per location with a compare-and-set
(`changeFromQuantity` = the quantity just read) under an idempotency key.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from stockyard.connectors.base import (
    ChannelProduct,
    ChannelVariant,
    Connector,
    ProductResult,
    RemoteProduct,
    Result,
    parse_settings,
)
from stockyard.connectors.shopify import documents as d
from stockyard.connectors.shopify import fulfillments
from stockyard.connectors.shopify.client import ShopifyClient
from stockyard.engine import Limits
from stockyard.errors import HandlerError, PermanentError, TransientError

SKUS_PER_SEARCH = 25  # SKUs per productVariants search (the query string stays short)
INVENTORY_ITEMS_PER_READ = 25  # x 10 levels: well under 1,000 points
INPUT_LIST_CAP = 250  # Shopify's cap on input lists (docs/shopify-notes.md)
STOCK_REASON = "correction"  # one of the reasons of Shopify's inventory-states guide


class ShopifySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    shop: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*\.myshopify\.com$")  # the shop's domain
    access_token: str = Field(min_length=1, repr=False)  # the custom app's Admin API token
    api_version: str = Field(default=d.API_VERSION, pattern=r"^\d{4}-\d{2}$")
    # Where the shop is reached instead of https://<shop> (a proxy, or a test double); the
    # outbound guard applies to it like to any tenant-written address.
    base_url: str | None = Field(default=None, pattern=r"^https?://")
    # The Shopify location whose "available" quantity Stockyard sets (a gid); None: stock
    # is not sent. (One location for now; warehouses -> locations is next.)
    location_id: str | None = Field(default=None, pattern=r"^gid://shopify/Location/\d+$")
    # Whether Shopify e-mails the customer when Stockyard marks items fulfilled.
    notify_customer: bool = False
    timeout: float = Field(default=30.0, gt=0, le=600)
    # The longest the client waits for the shop's cost bucket before handing the item back
    # to the queue with a retry-after instead.
    max_wait: float = Field(default=2.0, ge=0, le=30)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "product"


def _search_term(sku: str) -> str:
    return 'sku:"' + sku.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _user_errors(payload: Any, what: str) -> list[dict[str, Any]]:
    if not isinstance(payload, dict):
        raise PermanentError(f"shopify: {what} answered nothing")
    return [e for e in payload.get("userErrors") or [] if isinstance(e, dict)]


def _describe(errors: list[dict[str, Any]]) -> str:
    return "; ".join(
        f"{'.'.join(e.get('field') or []) or '-'}: {e.get('message')}"
        + (f" ({e['code']})" if e.get("code") else "")
        for e in errors[:5]
    )


def _checked(payload: Any, what: str) -> dict[str, Any]:
    errors = _user_errors(payload, what)
    if errors:
        raise PermanentError(f"shopify: {what}: {_describe(errors)}")
    return dict(payload)


def _index(error: dict[str, Any]) -> int | None:
    """The variant a user error is about (field ["variants", "2", ...]), if it says."""
    field = error.get("field") or []
    if len(field) >= 2 and field[0] == "variants" and str(field[1]).isdigit():
        return int(field[1])
    return None


class ShopifyConnector(Connector):
    roles = frozenset({"channel"})
    secret_settings = frozenset({"access_token"})
    # The shop's cost bucket is shared by every worker of the connection (it is per app and
    # shop); a few items at a time keep the workers from draining it against each other.
    default_limits = Limits(max_running=4)

    def __init__(self, settings: Mapping[str, Any]) -> None:
        super().__init__(settings)
        self.config = parse_settings(ShopifySettings, settings, "shopify")
        root = (self.config.base_url or f"https://{self.config.shop}").rstrip("/")
        self.api = ShopifyClient(
            f"{root}/admin/api/{self.config.api_version}/graphql.json",
            self.config.access_token,
            timeout=self.config.timeout,
            max_wait=self.config.max_wait,
        )

    def close(self) -> None:
        self.api.close()

    # --------------------------------------------------------------------- products

    def find_product(self, skus: list[str]) -> RemoteProduct | None:
        wanted = [s for s in dict.fromkeys(skus) if s]
        for start in range(0, len(wanted), SKUS_PER_SEARCH):
            chunk = wanted[start : start + SKUS_PER_SEARCH]
            query = " OR ".join(_search_term(s) for s in chunk)
            nodes = self.api.query(d.VARIANTS_BY_SKU, {"query": query})["productVariants"]["nodes"]
            # Shopify's search is not an exact match: compare the SKUs here.
            hit = next((n for n in nodes if n.get("sku") in chunk), None)
            if hit is not None:
                product_id = str(hit["product"]["id"])
                variants = self._variants(product_id)
                return RemoteProduct(product_id, {v["sku"]: v["id"] for v in variants if v["sku"]})
        return None

    def _variants(self, product_id: str) -> list[dict[str, Any]]:
        """Every variant of the product (paged), or a PermanentError if it is gone."""
        found: list[dict[str, Any]] = []
        after: str | None = None
        while True:
            product = self.api.query(d.PRODUCT_VARIANTS, {"id": product_id, "after": after})[
                "product"
            ]
            if product is None:
                raise PermanentError(f"shopify has no product {product_id}")
            page = product["variants"]
            found += page["nodes"]
            if not page["pageInfo"]["hasNextPage"]:
                return found
            after = page["pageInfo"]["endCursor"]

    def create_product(self, product: ChannelProduct, key: str) -> RemoteProduct:
        variants = self._with_options(product.variants)
        options: dict[str, list[str]] = {}
        for v in variants:
            for name, value in v.fields["options"].items():
                values = options.setdefault(name, [])
                if value not in values:
                    values.append(value)
        body = self._product_fields(product) | {
            "handle": _slug(product.code),
            "status": "ACTIVE",
            "productOptions": [
                {"name": name, "values": [{"name": v} for v in values]}
                for name, values in options.items()
            ],
        }
        created = _checked(
            self.api.query(d.PRODUCT_CREATE, {"product": body})["productCreate"],
            f"create product {product.code}",
        )
        product_id = str(created["product"]["id"])
        try:
            results = self.upsert_variants(product_id, variants, key)
            failed = [r for r in results if not r.ok]
            if failed:
                raise failed[0].error or PermanentError("a variant failed")
        except HandlerError:
            # Without its variants the product cannot be found by SKU again: remove it, so
            # the retry creates it whole instead of leaving a duplicate behind.
            self.delete_product(product_id, key)
            raise
        return RemoteProduct(product_id, {r.key: r.remote_id or "" for r in results})

    @staticmethod
    def _with_options(variants: list[ChannelVariant]) -> list[ChannelVariant]:
        """Shopify tells a product's variants apart by option values. Variants without
        options get Shopify's own default ("Title": "Default Title") when alone, else a
        "Variant" option whose values are the SKUs."""
        out = []
        for v in variants:
            values = dict(v.fields.get("options") or {})
            if not values:
                values = {"Variant": v.sku} if len(variants) > 1 else {"Title": "Default Title"}
            out.append(ChannelVariant(v.sku, {**v.fields, "options": values}, v.remote_id))
        return out

    @staticmethod
    def _product_fields(product: ChannelProduct) -> dict[str, Any]:
        fields = product.fields
        body: dict[str, Any] = {"title": fields.get("title") or product.code}
        if fields.get("description") is not None:
            body["descriptionHtml"] = html.escape(str(fields["description"]))
        if fields.get("vendor") is not None:
            body["vendor"] = str(fields["vendor"])
        if fields.get("type") is not None:
            body["productType"] = str(fields["type"])
        if fields.get("tags") is not None:
            body["tags"] = [str(t) for t in fields["tags"]]
        return body

    def update_product(self, remote_id: str, product: ChannelProduct, key: str) -> None:
        # productSet without variants, options or files: only what is given changes (tags,
        # a list, is replaced as a whole, which is what the catalog means).
        _checked(
            self.api.query(
                d.PRODUCT_SET_FIELDS,
                {"identifier": {"id": remote_id}, "input": self._product_fields(product)},
            )["productSet"],
            f"update product {product.code}",
        )

    def delete_product(self, remote_id: str, key: str) -> None:
        payload = self.api.query(d.PRODUCT_DELETE, {"input": {"id": remote_id}})["productDelete"]
        errors = _user_errors(payload, "delete product")
        if errors and self.api.query(d.PRODUCT_EXISTS, {"id": remote_id})["product"] is not None:
            raise PermanentError(f"shopify: delete product {remote_id}: {_describe(errors)}")

    # --------------------------------------------------------------------- variants

    def upsert_variants(
        self, product_remote_id: str, variants: list[ChannelVariant], key: str
    ) -> list[Result]:
        """Update the variants the product holds (by remote id, else by SKU), create the
        others, then set the stock of the updated ones (created ones get theirs at once)."""
        current = self._variants(product_remote_id)
        by_id = {v["id"]: v for v in current}
        by_sku = {v["sku"]: v for v in current if v["sku"]}
        existing: list[tuple[ChannelVariant, dict[str, Any]]] = []
        missing: list[ChannelVariant] = []
        for v in variants:
            row = by_id.get(v.remote_id or "") or by_sku.get(v.sku)
            if row is None:
                missing.append(v)
            else:
                existing.append((v, row))
        results: dict[str, Result] = {}
        items: dict[str, str] = {}  # sku -> inventory item id, for stock
        if existing:
            inputs = [self._variant_input(v) | {"id": row["id"]} for v, row in existing]
            payload = self.api.query(
                d.VARIANTS_BULK_UPDATE, {"productId": product_remote_id, "variants": inputs}
            )["productVariantsBulkUpdate"]
            batch = [v for v, _ in existing]
            results |= self._batch_results(payload, batch, [row for _, row in existing], "update")
            items |= {v.sku: row["inventoryItem"]["id"] for v, row in existing}
        if missing:
            # Only Shopify's standalone variant (no SKU) there: replace it.
            alone = all(not v["sku"] for v in current)
            document = d.VARIANTS_BULK_CREATE if alone else d.VARIANTS_BULK_ADD
            inputs = [self._variant_input(v, create=True) for v in self._with_options(missing)]
            payload = self.api.query(
                document, {"productId": product_remote_id, "variants": inputs}
            )["productVariantsBulkCreate"]
            made = (payload or {}).get("productVariants") or []
            results |= self._batch_results(payload, missing, made, "create")
        stock = {
            items[v.sku]: int(v.fields["quantity"])
            for v, _ in existing
            if results[v.sku].ok and v.fields.get("quantity") is not None
        }
        failed = self._set_stock(stock, key)
        for v, _ in existing:
            error = failed.get(items[v.sku])
            if error is not None:
                results[v.sku] = Result(v.sku, remote_id=results[v.sku].remote_id, error=error)
        return [results[v.sku] for v in variants]

    @staticmethod
    def _batch_results(
        payload: Any, batch: list[ChannelVariant], rows: list[dict[str, Any]], what: str
    ) -> dict[str, Result]:
        errors = _user_errors(payload, f"{what} variants")
        if errors:
            # The bulk mutations are all-or-nothing: every variant fails, the ones an
            # error names with that error.
            named: dict[int, list[dict[str, Any]]] = {}
            for e in errors:
                index = _index(e)
                named.setdefault(-1 if index is None else index, []).append(e)
            return {
                v.sku: Result(
                    v.sku,
                    error=PermanentError(
                        f"shopify: {what} variant {v.sku}: {_describe(named.get(n) or errors)}"
                    ),
                )
                for n, v in enumerate(batch)
            }
        if len(rows) != len(batch):
            raise PermanentError(f"shopify: {what} variants answered {len(rows)} of {len(batch)}")
        return {
            v.sku: Result(v.sku, remote_id=str(row["id"]))
            for v, row in zip(batch, rows, strict=True)
        }

    def _variant_input(self, v: ChannelVariant, create: bool = False) -> dict[str, Any]:
        fields = v.fields
        quantity = fields.get("quantity")
        body: dict[str, Any] = {
            "price": str(fields.get("price") or "0"),
            "barcode": fields.get("barcode"),
            "inventoryItem": {"sku": v.sku, "tracked": quantity is not None},
        }
        if "compare_at_price" in fields:
            compare = fields["compare_at_price"]
            body["compareAtPrice"] = None if compare is None else str(compare)
        if create:
            body["optionValues"] = [
                {"optionName": name, "name": value} for name, value in fields["options"].items()
            ]
            if quantity is not None and self.config.location_id:
                body["inventoryQuantities"] = [
                    {"locationId": self.config.location_id, "availableQuantity": int(quantity)}
                ]
        return body

    # ----------------------------------------------------------------- fulfillments

    def push_fulfillment(self, order_remote_id: str, fulfillment: dict[str, Any], key: str) -> None:
        fulfillments.push(self.api, order_remote_id, fulfillment, self.config.notify_customer)

    # ------------------------------------------------------------------------ stock

    def _set_stock(self, targets: dict[str, int], key: str) -> dict[str, HandlerError]:
        """Set the location's "available" quantity of these inventory items, compared with
        what was just read; a stale answer (someone sold or counted in between) is read
        again and set once more. An error per item that could not be set."""
        location = self.config.location_id
        if not location or not targets:
            return {}
        errors: dict[str, HandlerError] = {}
        items = list(targets)
        for start in range(0, len(items), INPUT_LIST_CAP):
            chunk = {i: targets[i] for i in items[start : start + INPUT_LIST_CAP]}
            errors |= self._set_stock_chunk(chunk, location, key)
        return errors

    def _set_stock_chunk(
        self, targets: dict[str, int], location: str, key: str
    ) -> dict[str, HandlerError]:
        errors: dict[str, HandlerError] = {}
        for attempt in (1, 2):
            read = self._available(list(targets), location)
            for item in [i for i in targets if read.get(i) is None]:
                errors[item] = PermanentError(
                    f"shopify: inventory item {item} is not stocked at location {location}"
                )
                del targets[item]
            pending = {i: q for i, q in targets.items() if read[i] != q}
            if not pending:
                return errors
            quantities = [
                {
                    "inventoryItemId": i,
                    "locationId": location,
                    "quantity": q,
                    "changeFromQuantity": read[i],
                }
                for i, q in pending.items()
            ]
            # The item's key with the quantities read: a repeat of this very call replays,
            # a retry after a stale answer (other quantities read) is a new request.
            seen = json.dumps([key, sorted((i, read[i], q) for i, q in pending.items())])
            idempotency = "stockyard-" + hashlib.sha256(seen.encode()).hexdigest()[:40]
            variables = {
                "key": idempotency,
                "input": {"name": "available", "reason": STOCK_REASON, "quantities": quantities},
            }
            payload = self.api.query(d.INVENTORY_SET, variables)["inventorySetQuantities"]
            problems = _user_errors(payload, "set stock")
            if not problems:
                return errors
            codes = {e.get("code") for e in problems}
            if "CHANGE_FROM_QUANTITY_STALE" in codes and attempt == 1:
                continue  # read again and set once more
            error: HandlerError
            if codes & {"CHANGE_FROM_QUANTITY_STALE", "IDEMPOTENCY_CONCURRENT_REQUEST"}:
                error = TransientError(f"shopify: set stock: {_describe(problems)}", retry_after=5)
            else:
                error = PermanentError(f"shopify: set stock: {_describe(problems)}")
            # inventorySetQuantities is all-or-nothing: every item of the call failed.
            return errors | dict.fromkeys(pending, error)
        return errors  # pragma: no cover - the loop returns

    def _available(self, items: list[str], location: str) -> dict[str, int | None]:
        """The "available" quantity of each item at the location; None: not stocked there."""
        found: dict[str, int | None] = dict.fromkeys(items)
        for start in range(0, len(items), INVENTORY_ITEMS_PER_READ):
            chunk = items[start : start + INVENTORY_ITEMS_PER_READ]
            for node in self.api.query(d.INVENTORY_LEVELS, {"ids": chunk})["nodes"]:
                if not node:
                    continue
                for level in node["inventoryLevels"]["nodes"]:
                    if level["location"]["id"] == location:
                        quantities = {q["name"]: q["quantity"] for q in level["quantities"]}
                        found[node["id"]] = int(quantities.get("available") or 0)
        return found

    # ------------------------------------------------------------------ bulk (role C)

    def bulk_products(
        self, products: list[ChannelProduct], remote_ids: Mapping[str, str], key: str
    ) -> list[ProductResult]:
        from stockyard.connectors.shopify.bulk import bulk_products

        return bulk_products(self, products, remote_ids, key)
