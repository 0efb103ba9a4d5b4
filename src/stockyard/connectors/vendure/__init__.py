"""The `vendure` connector: a Vendure shop (3.x) over its Admin GraphQL API, as a channel.
Products, variants (with option groups), stock and images go out; placed orders come in;
fulfillment states go back. Vendure keeps money in minor units. docs/connectors.md lists
its settings."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field

from stockyard.connectors import downloads
from stockyard.connectors.base import (
    ChannelImage,
    ChannelProduct,
    ChannelVariant,
    Connector,
    Page,
    RemoteProduct,
    Result,
    parse_settings,
)
from stockyard.connectors.vendure import queries as q
from stockyard.connectors.vendure.client import VendureClient, VendureRefused, checked
from stockyard.engine import Limits
from stockyard.errors import HandlerError, PermanentError


class VendureSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(pattern=r"^https?://")  # the Admin API, e.g. http://shop:3000/admin-api
    username: str = "superadmin"
    password: str = Field(min_length=1, repr=False)
    channel_token: str | None = None  # a channel other than the default one
    language: str = "en"
    currency_decimals: int = Field(default=2, ge=0, le=4)
    timeout: float = Field(default=30.0, gt=0, le=600)
    orders_per_pull: int = Field(default=100, ge=1, le=500)
    # Seconds each pull of orders reads back before its cursor, for late commits.
    overlap: float = Field(default=5.0, ge=0, le=3600)


# Stockyard's fulfillment states -> the Vendure fulfillment states to walk through.
FULFILLMENT_PATH = {"complete": ("Shipped", "Delivered"), "cancelled": ("Cancelled",)}
# Vendure permits any image/* upload by default (AssetOptions.permittedFileTypes); these are
# the raster types its sharp-based preview strategy decodes. SVG is left out: it is text
# that may carry scripts, and nothing in its first bytes proves what it is.
ACCEPTED_IMAGES = (
    downloads.JPEG,
    downloads.PNG,
    downloads.GIF,
    downloads.WEBP,
    downloads.AVIF,
    downloads.TIFF,
)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "product"


def _instant(text: str) -> dt.datetime:
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise PermanentError(f"vendure: unreadable time {text[:40]!r}") from None


def _image_tag(code: str) -> str:
    """Vendure keeps no id of ours on an asset: a tag carries the image's code (hashed,
    since codes may be URLs) so a linked product's images can be recognised."""
    return "stockyard-" + hashlib.sha256(code.encode()).hexdigest()[:20]


def _variant_name(product: dict[str, Any], variant: ChannelVariant) -> str:
    """What the shop calls the variant: the product's name and the variant's option
    values ("Organic T-shirt M"), else the product's name and the SKU."""
    values = " ".join((variant.fields.get("options") or {}).values()) or variant.sku
    return f"{product.get('name') or ''} {values}".strip()


class VendureConnector(Connector):
    roles = frozenset({"channel"})
    secret_settings = frozenset({"password"})
    plain_settings = frozenset({"channel_token"})  # public: Vendure's storefront sends it
    # One Node.js process and its database serve the shop's customers too: a sync must not
    # take all of its attention.
    default_limits = Limits(max_running=8)

    def __init__(self, settings: Mapping[str, Any]) -> None:
        super().__init__(settings)
        self.config = parse_settings(VendureSettings, settings, "vendure")
        self.api = VendureClient(
            self.config.url,
            self.config.username,
            self.config.password,
            self.config.channel_token,
            self.config.timeout,
        )
        self._scale = Decimal(10) ** self.config.currency_decimals

    def close(self) -> None:
        self.api.close()

    # ------------------------------------------------------------------------ money

    def _minor(self, amount: Any) -> int:
        return int((Decimal(str(amount)) * self._scale).to_integral_value())

    def _major(self, minor: int | None) -> str:
        return str(Decimal(minor or 0) / self._scale)

    # --------------------------------------------------------------------- products

    def find_product(self, skus: list[str]) -> RemoteProduct | None:
        data = self.api.query(q.FIND_VARIANTS, {"skus": skus})
        items = data["productVariants"]["items"]
        if not items:
            return None
        return self._remote(items[0]["product"])

    @staticmethod
    def _remote(product: dict[str, Any]) -> RemoteProduct:
        # Images stay unlinked: add_image finds an image it sent before by its tag.
        return RemoteProduct(product["id"], {v["sku"]: v["id"] for v in product["variants"]})

    def create_product(self, product: ChannelProduct, key: str) -> RemoteProduct:
        product_id = (
            self._orphan(product.code)
            or checked(
                self.api.query(q.CREATE_PRODUCT, {"input": self._product_input(product)})[
                    "createProduct"
                ],
                "create product",
            )["id"]
        )
        try:
            results = self.upsert_variants(product_id, product.variants, key)
            failed = [r for r in results if not r.ok]
            if failed:
                raise failed[0].error or PermanentError("a variant failed")
        except HandlerError:
            # Without its variants the product cannot be found by SKU again: remove it, so
            # the retry creates it whole instead of leaving a duplicate behind.
            self.delete_product(product_id, key)
            raise
        images = {i.code: self.add_image(product_id, i, key) for i in product.images}
        return RemoteProduct(product_id, {r.key: r.remote_id or "" for r in results}, images)

    def _orphan(self, code: str) -> str | None:
        """A product an earlier attempt created under this code's slug but could neither
        give variants nor delete (the shop went away in between): it is taken over, so the
        retry does not leave a duplicate behind."""
        found = self.api.query(q.PRODUCT_BY_SLUG, {"slug": _slug(code)})["product"]
        return str(found["id"]) if found and not found["variants"] else None

    def _product_input(
        self, product: ChannelProduct, remote_id: str | None = None
    ) -> dict[str, Any]:
        fields = product.fields
        translation = {
            "languageCode": self.config.language,
            "name": fields.get("title") or product.code,
            "slug": _slug(product.code),
            "description": fields.get("description") or "",
        }
        body: dict[str, Any] = {"translations": [translation]}
        if remote_id is None:
            body["enabled"] = True
        else:
            body["id"] = remote_id
        return body

    def update_product(self, remote_id: str, product: ChannelProduct, key: str) -> None:
        result = self.api.query(
            q.UPDATE_PRODUCT, {"input": self._product_input(product, remote_id)}
        )["updateProduct"]
        checked(result, "update product")

    def delete_product(self, remote_id: str, key: str) -> None:
        self._delete(q.DELETE_PRODUCT, {"id": remote_id}, f"product {remote_id}")

    def _delete(self, document: str, variables: dict[str, Any], what: str) -> None:
        """Delete; something already gone counts as deleted."""
        try:
            data = self.api.query(document, variables)
        except VendureRefused as exc:
            if exc.code == "ENTITY_NOT_FOUND":
                return
            raise
        (outcome,) = data.values()
        if outcome["result"] != "DELETED":
            raise PermanentError(f"vendure: delete {what}: {outcome.get('message')}")

    def upsert_variants(
        self, product_remote_id: str, variants: list[ChannelVariant], key: str
    ) -> list[Result]:
        """Update the linked variants Vendure still has; find the others by SKU, else
        create them (a variant deleted in Vendure's admin comes back)."""
        allocated = self._allocated([v.remote_id for v in variants if v.remote_id])
        existing = {v.sku: v.remote_id for v in variants if v.remote_id in allocated}
        missing = [v for v in variants if v.sku not in existing]
        results: list[Result] = []
        if missing:
            product = self._product(product_remote_id)
            for row in product["variants"]:
                if any(v.sku == row["sku"] for v in missing):
                    existing[row["sku"]] = row["id"]
                    allocated[row["id"]] = row["stockAllocated"]
            to_create = [v for v in missing if v.sku not in existing]
            if to_create:
                results += self._create_variants(product, to_create, len(variants))
        if existing:
            by_sku = {v.sku: v for v in variants}
            inputs = [
                {**self._variant_input(by_sku[sku], allocated.get(i, 0)), "id": i}
                for sku, i in existing.items()
            ]
            updated = self.api.query(q.UPDATE_VARIANTS, {"input": inputs})
            for (sku, remote_id), row in zip(
                existing.items(), updated["updateProductVariants"], strict=True
            ):
                results.append(
                    Result(sku, remote_id=remote_id)
                    if row
                    else Result(sku, error=PermanentError(f"vendure has no variant {remote_id}"))
                )
        return results

    def _allocated(self, ids: list[str]) -> dict[str, int]:
        """Stock Vendure holds for its orders not yet shipped, per variant id (only the
        ids Vendure still has)."""
        if not ids:
            return {}
        data = self.api.query(q.VARIANT_STOCK, {"ids": ids, "take": len(ids)})
        return {v["id"]: v["stockAllocated"] for v in data["productVariants"]["items"]}

    def _create_variants(
        self, product: dict[str, Any], variants: list[ChannelVariant], count: int
    ) -> list[Result]:
        options = self._option_ids(product, variants, count)
        language = self.config.language
        inputs = [
            {
                **self._variant_input(v, 0),
                "productId": product["id"],
                "optionIds": options[v.sku],
                "translations": [{"languageCode": language, "name": _variant_name(product, v)}],
            }
            for v in variants
        ]
        created = self.api.query(q.CREATE_VARIANTS, {"input": inputs})
        return [
            Result(v.sku, remote_id=row["id"])
            if row
            else Result(v.sku, error=PermanentError("vendure created no variant"))
            for v, row in zip(variants, created["createProductVariants"], strict=True)
        ]

    def _variant_input(self, variant: ChannelVariant, allocated: int) -> dict[str, Any]:
        """Vendure sells stock on hand less what it has allocated to open orders, and the
        catalog's quantity is what is left to sell: what Vendure holds for its orders is
        added back, so the two agree before and after Vendure ships."""
        fields = variant.fields
        body: dict[str, Any] = {"sku": variant.sku, "price": self._minor(fields.get("price", 0))}
        if fields.get("quantity") is not None:
            body["stockOnHand"] = max(int(fields["quantity"]), 0) + allocated
        return body

    def _product(self, remote_id: str) -> dict[str, Any]:
        product = self.api.query(q.PRODUCT, {"id": remote_id})["product"]
        if product is None:
            raise PermanentError(f"vendure has no product {remote_id}")
        return dict(product)

    def _option_ids(
        self, product: dict[str, Any], variants: list[ChannelVariant], count: int
    ) -> dict[str, list[str]]:
        """Vendure tells a product's variants apart by option values: each new variant gets
        the ids of its values, made where missing. A product of several variants without
        options gets a "Variant" option whose values are the SKUs."""
        wanted: dict[str, dict[str, str]] = {}
        groups = {g["name"] for g in product["optionGroups"]}
        for v in variants:
            values = dict(v.fields.get("options") or {})
            if not values and (count > 1 or groups) and groups <= {"Variant"}:
                values = {"Variant": v.sku}
            wanted[v.sku] = values
        by_name = {g["name"]: g for g in product["optionGroups"]}
        for name in sorted({n for values in wanted.values() for n in values} - set(by_name)):
            group = self.api.query(
                q.CREATE_OPTION_GROUP,
                {
                    "input": {
                        "code": _slug(name),
                        "options": [],
                        "translations": [{"languageCode": self.config.language, "name": name}],
                    }
                },
            )["createProductOptionGroup"]
            self.api.query(q.ADD_OPTION_GROUP, {"productId": product["id"], "groupId": group["id"]})
            by_name[name] = {**group, "options": list(group.get("options") or [])}
        ids: dict[str, list[str]] = {}
        for sku, values in wanted.items():
            ids[sku] = []
            for name, value in sorted(values.items()):
                group = by_name[name]
                option = next((o for o in group["options"] if o["name"] == value), None)
                if option is None:
                    option = self.api.query(
                        q.CREATE_OPTION,
                        {
                            "input": {
                                "productOptionGroupId": group["id"],
                                "code": _slug(value),
                                "translations": [
                                    {"languageCode": self.config.language, "name": value}
                                ],
                            }
                        },
                    )["createProductOption"]
                    group["options"].append(option)
                ids[sku].append(option["id"])
        return ids

    def delete_variant(self, product_remote_id: str, remote_id: str, key: str) -> None:
        self._delete(q.DELETE_VARIANT, {"id": remote_id}, f"variant {remote_id}")

    # ------------------------------------------------------------------------ images

    def add_image(self, product_remote_id: str, image: ChannelImage, key: str) -> str:
        url = str(image.fields.get("url") or "")
        tag = _image_tag(image.code)
        product = self._product(product_remote_id)
        for asset in product["assets"]:
            if any(t["value"] == tag for t in asset["tags"]):
                return str(asset["id"])  # sent before (a retry, or a product linked by SKU)
        fetched = self._download(url)
        # The asset server serves a file with its extension's type: the bytes' one.
        stem = urlparse(url).path.rsplit("/", 1)[-1].rsplit(".", 1)[0] or "image"
        name = f"{stem}.{fetched.type.extension}"
        variables = {"input": [{"file": None, "tags": [tag]}]}
        data = self.api.upload(
            q.CREATE_ASSETS,
            variables,
            "variables.input.0.file",
            (name, fetched.content, fetched.type.mime),
        )
        asset = checked(data["createAssets"][0], f"upload image {downloads.shown(url)}")
        assets = [a["id"] for a in product["assets"]] + [asset["id"]]
        featured = (product.get("featuredAsset") or {}).get("id") or asset["id"]
        checked(
            self.api.query(
                q.UPDATE_PRODUCT,
                {
                    "input": {
                        "id": product_remote_id,
                        "assetIds": assets,
                        "featuredAssetId": featured,
                    }
                },
            )["updateProduct"],
            "attach image",
        )
        return str(asset["id"])

    def _download(self, url: str) -> downloads.Image:
        return downloads.fetch_image(
            url, accept=ACCEPTED_IMAGES, taker="Vendure", timeout=self.config.timeout
        )

    def delete_image(self, product_remote_id: str, remote_id: str, key: str) -> None:
        variables = {"input": {"assetId": remote_id, "force": True}}
        self._delete(q.DELETE_ASSET, variables, f"image {remote_id}")

    # ------------------------------------------------------------------------ orders

    def fetch_orders(self, cursor: str | None) -> Page:
        """Orders placed since `cursor` (the placement time of the newest one read), read
        from `overlap` seconds earlier: an order whose transaction committed late is not
        missed, and one read twice is the same report, which Stockyard queues once."""
        since = _instant(cursor) if cursor else dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
        take = self.config.orders_per_pull
        window = dt.timedelta(seconds=self.config.overlap)
        orders = self._orders_after(since - window, take)
        if len(orders) == take and all(_instant(o["orderPlacedAt"]) <= since for o in orders):
            orders = self._orders_after(since, take)  # a crowd inside the window: move on
        newest = max([since, *(_instant(o["orderPlacedAt"]) for o in orders)])
        return Page([self._order(o) for o in orders], newest.isoformat())

    def _orders_after(self, since: dt.datetime, take: int) -> list[dict[str, Any]]:
        data = self.api.query(q.ORDERS, {"since": since.isoformat(), "take": take})
        return list(data["orders"]["items"])

    def get_order(self, remote_id: str) -> dict[str, Any]:
        order = self.api.query(q.ORDER, {"id": remote_id})["order"]
        if order is None:
            raise PermanentError(f"vendure has no order {remote_id}")
        return self._order(order)

    def _order(self, order: dict[str, Any]) -> dict[str, Any]:
        customer = order.get("customer") or {}
        name = " ".join(x for x in (customer.get("firstName"), customer.get("lastName")) if x)
        return {
            "remote_id": order["id"],
            "number": order["code"],
            "currency": order["currencyCode"],
            "customer": {
                "code": customer.get("id") or customer.get("emailAddress") or order["code"],
                "email": customer.get("emailAddress"),
                "name": name,
            }
            if customer
            else None,
            "lines": [
                {
                    "sku": line["productVariant"]["sku"],
                    "quantity": line["quantity"],
                    "price": self._major(line["unitPrice"]),
                    "title": line["productVariant"]["name"],
                }
                for line in order["lines"]
            ],
            "shipping_address": self._address(order.get("shippingAddress")),
            "billing_address": self._address(order.get("billingAddress")),
            "shipping": self._major(order["shippingWithTax"]),
            "tax": self._major(order["totalWithTax"] - order["total"]),
            "total": self._major(order["totalWithTax"]),
        }

    @staticmethod
    def _address(address: dict[str, Any] | None) -> dict[str, str] | None:
        if not address or not any(address.values()):
            return None
        return {
            "name": address.get("fullName") or "",
            "company": address.get("company") or "",
            "line1": address.get("streetLine1") or "",
            "line2": address.get("streetLine2") or "",
            "city": address.get("city") or "",
            "region": address.get("province") or "",
            "postcode": address.get("postalCode") or "",
            "country": address.get("countryCode") or "",
            "phone": address.get("phoneNumber") or "",
        }

    def push_fulfillment(self, order_remote_id: str, fulfillment: dict[str, Any], key: str) -> None:
        """Vendure's fulfillment of the order's lines: made once the warehouse has it, then
        walked to Shipped and Delivered (complete) or Cancelled."""
        state = fulfillment.get("state")
        if state == "pending":
            return
        order = self.api.query(q.ORDER_FULFILLMENTS, {"id": order_remote_id})["order"]
        if order is None:
            raise PermanentError(f"vendure has no order {order_remote_id}")
        current = next((f for f in order["fulfillments"] or [] if f["state"] != "Cancelled"), None)
        if current is None:
            if state == "cancelled":
                return
            tracking = (fulfillment.get("tracking") or {}).get("number") or ""
            lines = [
                {"orderLineId": line["id"], "quantity": line["quantity"]} for line in order["lines"]
            ]
            handler = {
                "code": "manual-fulfillment",
                "arguments": [
                    {"name": "method", "value": "Stockyard"},
                    {"name": "trackingCode", "value": tracking},
                ],
            }
            current = checked(
                self.api.query(q.ADD_FULFILLMENT, {"input": {"lines": lines, "handler": handler}})[
                    "addFulfillmentToOrder"
                ],
                f"fulfil order {order['code']}",
            )
        path = FULFILLMENT_PATH.get(str(state), ())
        done = path.index(current["state"]) + 1 if current["state"] in path else 0
        for step in path[done:]:
            current = checked(
                self.api.query(q.TRANSITION_FULFILLMENT, {"id": current["id"], "state": step})[
                    "transitionFulfillmentToState"
                ],
                f"fulfillment of order {order['code']} to {step}",
            )
