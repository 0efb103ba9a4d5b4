"""The `shopify` connector (issue 18): a Shopify shop over its Admin GraphQL API, as a
channel: products, variants (price, compare-at, barcode, weight), images, stock per
location and fulfillments go out; orders come in (docs/shopify-notes.md).

Every document it sends lives in `documents` and is validated against Shopify's own schema
(`schema`, tests only). Products are made with productCreate + productVariantsBulkCreate,
never productSet with variants (which deletes the variants it is not given: only safe when
Stockyard owns the whole product). Stock is set per location with a compare-and-set
(`changeFromQuantity` = the quantity just read) under an idempotency key.
"""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from stockyard.connectors.amounts import non_negative
from stockyard.connectors.base import (
    ChannelImage,
    ChannelProduct,
    ChannelVariant,
    Connector,
    Page,
    ProductResult,
    RemoteProduct,
    Result,
    parse_settings,
)
from stockyard.connectors.downloads import count
from stockyard.connectors.shopify import documents as d
from stockyard.connectors.shopify import fulfillments, media, stock
from stockyard.connectors.shopify.answers import checked as _checked
from stockyard.connectors.shopify.answers import describe as _describe
from stockyard.connectors.shopify.answers import user_errors as _user_errors
from stockyard.connectors.shopify.checks import AccessToken, BaseUrl
from stockyard.connectors.shopify.client import ShopifyClient
from stockyard.connectors.stock_levels import stock_levels
from stockyard.connectors.webhooks import Delivery
from stockyard.engine import Limits
from stockyard.errors import HandlerError, PermanentError, TransientError

HANDLE_RETRY = 5.0  # seconds; a concurrent try of the same product is done by then
SKUS_PER_SEARCH = 25  # SKUs per productVariants search (the query string stays short)
LocationId = Annotated[str, Field(pattern=r"^gid://shopify/Location/\d+$")]


class ShopifySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    shop: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*\.myshopify\.com$")  # the shop's domain
    access_token: AccessToken = Field(repr=False)  # the custom app's Admin API token
    api_version: str = Field(default=d.API_VERSION, pattern=r"^\d{4}-\d{2}$")
    # Where the shop is reached instead of https://<shop> (a proxy, or a test double); the
    # outbound guard applies to it like to any tenant-written address.
    base_url: BaseUrl | None = None
    # The Shopify location whose "available" quantity Stockyard sets (a gid) to the
    # variant's quantity (the flow's sum of the channel's warehouses); None: stock is not
    # sent unless `locations` maps warehouses.
    location_id: LocationId | None = None
    # Stockyard warehouse code -> Shopify location gid: a variant's per-warehouse stock
    # goes to the mapped locations (warehouses of one location summed). Variants that
    # carry no per-warehouse stock use `location_id`.
    locations: dict[Annotated[str, Field(min_length=1)], LocationId] = {}
    # The unit of the catalog's weights (the catalog has none of its own): Shopify's.
    weight_unit: Literal["GRAMS", "KILOGRAMS", "OUNCES", "POUNDS"] = "KILOGRAMS"
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


def _index(error: dict[str, Any]) -> int | None:
    """The variant a user error is about (field ["variants", "2", ...]), if it says."""
    field = error.get("field") or []
    index = str(field[1]) if len(field) >= 2 and field[0] == "variants" else ""
    return count(index)


def _digest(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()[:8]


def _made_here(
    found: dict[str, Any], variants: list[dict[str, Any]], skus: set[str], title: str
) -> bool:
    """Whether a product under the code's handle is one a try of this item made: its
    variants all carry SKUs of ours (bulk creation is all or nothing), or it holds only
    Shopify's standalone variant (no SKU) under our title."""
    with_sku = [v["sku"] for v in variants if v["sku"]]
    if with_sku:
        return len(with_sku) == len(variants) and set(with_sku) <= skus
    return len(variants) == 1 and found.get("title") == title


def _weight(v: ChannelVariant) -> float:
    return float(non_negative(v.fields["weight"], f"shopify: variant {v.sku}: weight"))


class ShopifyConnector(Connector):
    roles = frozenset({"channel"})
    secret_settings = frozenset({"access_token"})
    # The shop's cost bucket is shared by every worker of the connection (it is per app and
    # shop); a few items at a time keep the workers from draining it against each other.
    default_limits = Limits(max_running=4)
    bulk_replaces_variants = True  # productSet: the variants given are the product's list

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
        document = d.PRODUCT_VARIANTS_FIRST
        while True:
            product = self.api.query(document, {"id": product_id, "after": after})["product"]
            document = d.PRODUCT_VARIANTS
            if product is None:
                raise PermanentError(f"shopify has no product {product_id}")
            page = product["variants"]
            found += page["nodes"]
            if not page["pageInfo"]["hasNextPage"]:
                return found
            after = page["pageInfo"]["endCursor"]

    def create_product(self, product: ChannelProduct, key: str) -> RemoteProduct:
        variants = self._with_options(product.variants)
        handle, made = self._handle(product, {v.sku for v in variants})
        current: list[dict[str, Any]] = []
        if made is None:
            # A new product holds only Shopify's standalone variant: no need to read it
            # back (a 303-point read, 3 s of a Standard plan's bucket, per product).
            product_id = self._create(product, variants, handle)
        else:
            product_id, current = made
        try:
            results = self._upsert_variants(product_id, variants, key, current)
            failed = [r for r in results if not r.ok]
            if failed:
                raise failed[0].error or PermanentError("a variant failed")
        except PermanentError as exc:
            # A retry will not pass either: the product goes, so that a retry after the
            # data is fixed starts clean (and finds it under its handle if it stayed).
            self._undo(product_id, key, exc)
            raise
        # A TransientError leaves the product: the retry finds it under its handle. (A
        # delete now would go through the same bucket and be refused just the same.)
        return RemoteProduct(product_id, {r.key: r.remote_id or "" for r in results})

    def _handle(
        self, product: ChannelProduct, skus: set[str]
    ) -> tuple[str, tuple[str, list[dict[str, Any]]] | None]:
        """The handle to create the product under, with the product a try of this item made
        there before, if any. A handle whose product is someone else's is passed over for a
        second one of the code's own (Shopify refuses a handle given twice)."""
        base = _slug(product.code)
        title = self._product_fields(product)["title"]
        taken: list[str] = []
        for handle in (base, f"{base}-{_digest(product.code)}"):
            found = self.api.query(d.PRODUCT_BY_HANDLE, {"handle": handle})["productByIdentifier"]
            if found is None:
                return handle, None
            current = self._variants(str(found["id"]))
            if _made_here(found, current, skus, title):
                return handle, (str(found["id"]), current)
            taken.append(f"{handle} ({found['id']})")
        raise PermanentError(
            f"shopify: create product {product.code}: the handles {', '.join(taken)} hold other"
            " products; rename or delete one of them in Shopify"
        )

    def _create(self, product: ChannelProduct, variants: list[ChannelVariant], handle: str) -> str:
        options: dict[str, list[str]] = {}
        for v in variants:
            for name, value in v.fields["options"].items():
                values = options.setdefault(name, [])
                if value not in values:
                    values.append(value)
        body = self._product_fields(product) | {
            "handle": handle,
            "status": "ACTIVE",
            "productOptions": [
                {"name": name, "values": [{"name": v} for v in values]}
                for name, values in options.items()
            ],
        }
        payload = self.api.query(d.PRODUCT_CREATE, {"product": body})["productCreate"]
        errors = _user_errors(payload, f"create product {product.code}")
        if any((e.get("field") or [""])[-1] == "handle" for e in errors):
            # Free a moment ago: taken since by a concurrent try; the retry looks again.
            raise TransientError(
                f"shopify: create product {product.code}: handle {handle} was taken meanwhile",
                retry_after=HANDLE_RETRY,
            )
        return str(_checked(payload, f"create product {product.code}")["product"]["id"])

    def _undo(self, product_id: str, key: str, error: PermanentError) -> None:
        try:
            self.delete_product(product_id, key)
        except HandlerError as exc:
            raise PermanentError(
                f"{error}; the new product {product_id} could not be deleted ({exc}): a retry"
                " finds it under its handle"
            ) from None

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
        return self._upsert_variants(
            product_remote_id, variants, key, self._variants(product_remote_id)
        )

    def _upsert_variants(
        self,
        product_remote_id: str,
        variants: list[ChannelVariant],
        key: str,
        current: list[dict[str, Any]],
    ) -> list[Result]:
        """upsert_variants with the product's variants already known (none with a SKU:
        only Shopify's standalone variant, which the created ones replace)."""
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
        targets = {
            (items[v.sku], location): quantity
            for v, _ in existing
            if results[v.sku].ok
            for location, quantity in self._stock(v).items()
        }
        failed = stock.set_stock(self.api, targets, key)
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
        item: dict[str, Any] = {"sku": v.sku, "tracked": fields.get("quantity") is not None}
        if fields.get("weight") is not None:
            weight = {"unit": self.config.weight_unit, "value": _weight(v)}
            item["measurement"] = {"weight": weight}
        body: dict[str, Any] = {
            "price": str(fields.get("price") or "0"),
            "barcode": fields.get("barcode"),
            "inventoryItem": item,
        }
        if "compare_at_price" in fields:
            compare = fields["compare_at_price"]
            body["compareAtPrice"] = None if compare is None else str(compare)
        if create:
            body["optionValues"] = [
                {"optionName": name, "name": value} for name, value in fields["options"].items()
            ]
            levels = self._stock(v)
            if levels:
                body["inventoryQuantities"] = [
                    {"locationId": location, "availableQuantity": quantity}
                    for location, quantity in levels.items()
                ]
        return body

    def _stock(self, v: ChannelVariant) -> dict[str, int]:
        """Location gid -> the variant's quantity there."""
        return stock_levels(v.fields, self.config.locations, self.config.location_id, int)

    def delete_variant(self, product_remote_id: str, remote_id: str, key: str) -> None:
        variables = {"productId": product_remote_id, "ids": [remote_id]}
        payload = self.api.query(d.VARIANTS_BULK_DELETE, variables)["productVariantsBulkDelete"]
        errors = _user_errors(payload, "delete variant")
        if not errors:
            return
        gone = {"AT_LEAST_ONE_VARIANT_DOES_NOT_BELONG_TO_THE_PRODUCT", "PRODUCT_DOES_NOT_EXIST"}
        # Deleted before (a repeated item), or with its product: done.
        if {e.get("code") for e in errors} <= gone and self._variant_gone(remote_id):
            return
        raise PermanentError(f"shopify: delete variant {remote_id}: {_describe(errors)}")

    def _variant_gone(self, remote_id: str) -> bool:
        return self.api.query(d.VARIANT_EXISTS, {"id": remote_id})["productVariant"] is None

    # ----------------------------------------------------------------------- images

    def add_image(self, product_remote_id: str, image: ChannelImage, key: str) -> str:
        return media.add_image(self.api, product_remote_id, image)

    def delete_image(self, product_remote_id: str, remote_id: str, key: str) -> None:
        media.delete_image(self.api, remote_id)

    # ----------------------------------------------------------------- fulfillments

    def push_fulfillment(self, order_remote_id: str, fulfillment: dict[str, Any], key: str) -> None:
        fulfillments.push(self.api, order_remote_id, fulfillment, self.config.notify_customer)

    # ------------------------------------------------------------------ bulk (role C)

    def bulk_products(
        self, products: list[ChannelProduct], remote_ids: Mapping[str, str], key: str
    ) -> list[ProductResult]:
        from stockyard.connectors.shopify.bulk import bulk_products

        return bulk_products(self, products, remote_ids, key)

    # ------------------------------------------------------------- orders in (role A)

    def fetch_orders(self, cursor: str | None) -> Page:
        from stockyard.connectors.shopify import orders

        return orders.fetch_orders(self.api, cursor)

    def get_order(self, remote_id: str) -> dict[str, Any]:
        from stockyard.connectors.shopify import orders

        return orders.get_order(self.api, remote_id)

    @classmethod
    def read_webhook(
        cls,
        topic: str,
        body: bytes,
        headers: Mapping[str, str],
        secret: str,
        settings: Mapping[str, Any],
    ) -> Delivery:
        from stockyard.connectors.shopify import orders

        return orders.read_webhook(topic, body, headers, secret, settings)
