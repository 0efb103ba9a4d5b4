"""The `magento` connector (issue 19), first slice: a Magento 2 / Adobe Commerce / Mage-OS
store over its admin REST API (`/rest/<store>/V1`) as a channel for products.

Products are addressed by SKU, as Magento's routes do: a product's remote id is its SKU,
a variant's the SKU of its simple product. A product of one variant without options is a
simple product; any other is a configurable product whose SKU is the product's code, with
one simple child (not visible on its own) per variant, its options on the store's select
attributes, and its children linked. Prices of existing variants go in one
`POST /V1/products/base-prices`; stock in one `POST /V1/inventory/source-items` (MSI), or
the legacy stock item on a store without MSI (stock.py), only where it differs.
Magento has no idempotency keys: a repeated create looks up every SKU first and makes only
what is missing (docs/magento-notes.md, "The connector's first slice").

Orders come in by a poll of `GET /V1/orders` on updated_at (orders.py) and shipments go
back with `POST /V1/order/{id}/ship` (shipments.py); docs/magento-notes.md, "Orders in and
shipments back".
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from stockyard.connectors.amounts import non_negative
from stockyard.connectors.base import (
    BULK_CALL_SECONDS,
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
from stockyard.connectors.magento import media, orders, shipments
from stockyard.connectors.magento import prices as tier_prices
from stockyard.connectors.magento.client import (
    MagentoClient,
    MagentoNotFound,
    is_number,
    items,
    message,
    obj,
    rows,
    sku_path,
)
from stockyard.connectors.magento.stock import Mode, Stock
from stockyard.connectors.stock_levels import stock_levels
from stockyard.connectors.urls import secret_bearing_url
from stockyard.engine import Limits
from stockyard.errors import PermanentError

SKUS_PER_SEARCH = 20  # SKUs per GET /V1/products (one filter each: the URL stays short)
VISIBLE = 4  # visibility "Catalog, Search"
NOT_VISIBLE = 1  # visibility "Not Visible Individually": a configurable product's child
# The option telling apart a configurable product's children that have no options (an
# ERP without variant attributes): its values are the SKUs, as Shopify's "Variant".
VARIANT_OPTION = "Variant"
_TOKEN = re.compile(r"[\x21-\x7e]+")

Obj = dict[str, Any]


def _url(value: str) -> str:
    # The token travels in a header: over http it is readable by anyone on the way.
    why = "must be https:// (http:// only to a loopback address, for tests)"
    return secret_bearing_url(value, why).rstrip("/")


def _token(value: str) -> str:
    if not _TOKEN.fullmatch(value):
        raise ValueError("must be printable ASCII without spaces, as Magento issues it")
    return value


Code = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]


class MagentoSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # The store's base URL; requests go to <url>/rest/<store_code>/V1/...
    url: Annotated[str, AfterValidator(_url)]
    # The integration's access token (System > Integrations), sent as a Bearer token.
    access_token: Annotated[str, AfterValidator(_token)] = Field(repr=False)
    # `all`: the admin scope, so what is saved is the global value every store view shows
    # (a store view's code would save store-view values over the global ones).
    store_code: Code = "all"
    # Under `all` Magento assigns no website by itself: new products get these.
    website_ids: list[int] = Field(default=[1], min_length=1)
    attribute_set_id: int = 4  # Magento's "Default" attribute set
    # An option's name -> the code of the store's select attribute it is (default: the
    # name lower-cased, other characters as `_`: "Size" -> size).
    attributes: dict[Annotated[str, Field(min_length=1)], Code] = {}
    # The MSI source a variant's quantity is set on; `sources` maps Stockyard warehouse
    # codes to sources instead (warehouses of one source summed).
    source_code: Annotated[str, Field(min_length=1)] = "default"
    sources: dict[Annotated[str, Field(min_length=1)], Annotated[str, Field(min_length=1)]] = {}
    # Stock through MSI source items, the legacy stock item (stores without MSI), or
    # `auto`: MSI until the store answers 404 on its routes, then legacy.
    inventory: Mode = "auto"
    # The store id base prices are saved for: 0 (global) unless prices are website-scoped.
    price_store_id: int = Field(default=0, ge=0)
    timeout: float = Field(default=30.0, gt=0, le=600)
    # Seconds a worker waits for a chunk's bulks (large syncs) before the item goes back
    # to the queue: the store's consumers may run only from cron. One bulk_products call
    # must return within BULK_CALL_SECONDS, so no more than that.
    bulk_max_wait: float = Field(default=300, gt=0, le=BULK_CALL_SECONDS)
    # Orders in state `new` paid with these methods are taken unpaid (paid on delivery).
    unpaid_methods: list[Annotated[str, Field(min_length=1)]] = ["cashondelivery"]
    # Shipments back: Magento e-mails the customer the shipment (with its tracks).
    notify_customer: bool = True


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "product"


def _number(v: ChannelVariant, name: str) -> float | None:
    raw = v.fields.get(name)
    if raw is None:
        return None
    return float(non_negative(raw, f"magento: variant {v.sku}: {name}"))


def _options(v: ChannelVariant) -> dict[str, str]:
    return {str(k): str(val) for k, val in (v.fields.get("options") or {}).items()}


def _child_options(v: ChannelVariant) -> dict[str, str]:
    return _options(v) or {VARIANT_OPTION: v.sku}


def _named(failure: Any, results: Mapping[str, Result]) -> list[str]:
    """The SKUs a price failure names: only its string parameters can be SKUs (others are
    objects of named values, or the failure is no object at all)."""
    params = failure.get("parameters") if isinstance(failure, dict) else None
    if not isinstance(params, list):
        return []
    return [str(p) for p in params if isinstance(p, str) and p in results]


def _find_option(attribute: Obj, label: str) -> int | None:
    for choice in attribute.get("options") or []:
        if choice.get("label") == label and is_number(str(choice.get("value", ""))):
            return int(choice["value"])
    return None


class MagentoConnector(Connector):
    roles = frozenset({"channel"})
    secret_settings = frozenset({"access_token"})
    # Magento has no published rate limit; PHP workers are few on small stores.
    default_limits = Limits(max_running=4)

    def __init__(self, settings: Mapping[str, Any]) -> None:
        super().__init__(settings)
        self.config = parse_settings(MagentoSettings, settings, "magento")
        self.api = MagentoClient(
            f"{self.config.url}/rest/{self.config.store_code}",
            self.config.access_token,
            timeout=self.config.timeout,
        )
        self._attributes: dict[str, Obj] = {}  # code -> GET /V1/products/attributes/{code}
        self.stock = Stock(self.api, self.config.inventory, self._search)

    def close(self) -> None:
        self.api.close()

    # ---------------------------------------------------------------------- reading

    def _search(self, skus: list[str]) -> dict[str, Obj]:
        """The store's products with these SKUs (exactly), by SKU: one filter per SKU in
        one filter group (ORed), so SKUs with commas are safe (`in` splits on commas)."""
        found: dict[str, Obj] = {}
        wanted = [s for s in dict.fromkeys(skus) if s]
        for start in range(0, len(wanted), SKUS_PER_SEARCH):
            chunk = wanted[start : start + SKUS_PER_SEARCH]
            params: dict[str, Any] = {"searchCriteria[pageSize]": len(chunk)}
            for n, sku in enumerate(chunk):
                prefix = f"searchCriteria[filterGroups][0][filters][{n}]"
                params |= {
                    f"{prefix}[field]": "sku",
                    f"{prefix}[value]": sku,
                    f"{prefix}[conditionType]": "eq",
                }
            answer = self.api.get("V1/products", params)
            for item in items(answer, "GET /V1/products"):
                # MySQL compares SKUs without case: keep exact matches only.
                if item.get("sku") in chunk:
                    found[item["sku"]] = item
        return found

    def _product(self, sku: str) -> Obj | None:
        try:
            answer = self.api.get(f"V1/products/{sku_path(sku)}")
        except MagentoNotFound:
            return None
        return obj(answer, "GET /V1/products/{sku}")

    def _children(self, sku: str) -> list[Obj]:
        try:
            answer = self.api.get(f"V1/configurable-products/{sku_path(sku)}/children")
        except MagentoNotFound:
            return []
        return rows(answer, "GET /V1/configurable-products/{sku}/children")

    def _attribute(self, option: str) -> Obj:
        code = self.config.attributes.get(option) or _slug(option).replace("-", "_")
        if code not in self._attributes:
            try:
                answer = self.api.get(f"V1/products/attributes/{code}")
                self._attributes[code] = obj(answer, "GET /V1/products/attributes/{code}")
            except MagentoNotFound:
                raise PermanentError(
                    f"magento: the store has no attribute {code!r} for the option {option!r}:"
                    " create it (a global select attribute) or map the option in"
                    " settings.attributes"
                ) from None
        return self._attributes[code]

    def _value_index(self, attribute: Obj, value: str) -> int:
        """The option id of `value`, added to the attribute when it has none yet."""
        index = _find_option(attribute, value)
        if index is None:
            code = attribute["attribute_code"]
            option = {"label": value, "value": ""}  # "": Magento makes the id
            self.api.call("POST", f"V1/products/attributes/{code}/options", {"option": option})
            # Re-read rather than trust the answer: versions answer "id_<n>" or "<n>".
            answer = self.api.get(f"V1/products/attributes/{code}")
            attribute = self._attributes[code] = obj(answer, "GET /V1/products/attributes")
            index = _find_option(attribute, value)
        if index is None:
            raise PermanentError(
                f"magento: the attribute {attribute['attribute_code']!r} did not take the"
                f" option {value!r}"
            )
        return index

    # --------------------------------------------------------------------- products

    def find_product(self, skus: list[str]) -> RemoteProduct | None:
        found = self._search(skus)
        for item in found.values():
            if item.get("type_id") == "configurable":
                children = [c["sku"] for c in self._children(item["sku"])]
                return RemoteProduct(item["sku"], {s: s for s in children})
        for sku, item in found.items():
            if item.get("visibility") != NOT_VISIBLE:
                return RemoteProduct(sku, {sku: sku})
        # Only children: Magento's REST API cannot say whose. create_product finds the
        # parent by the product's code and links them (docs/magento-notes.md).
        return None

    def create_product(self, product: ChannelProduct, key: str) -> RemoteProduct:
        variants = product.variants
        if not variants:
            raise PermanentError(f"magento: product {product.code} has no variants")
        if len(variants) == 1 and not _options(variants[0]):
            return self._create_simple(product, variants[0])
        return self._create_configurable(product)

    def _product_body(self, product: ChannelProduct) -> Obj:
        fields = product.fields
        body: Obj = {"name": str(fields.get("title") or product.code)}
        if fields.get("description") is not None:
            body["custom_attributes"] = [
                {"attribute_code": "description", "value": str(fields["description"])}
            ]
        return body

    def _variant_body(self, product: ChannelProduct, v: ChannelVariant, child: bool) -> Obj:
        body = self._product_body(product)
        body |= {
            "sku": v.sku,
            "attribute_set_id": self.config.attribute_set_id,
            "status": 1,
            "visibility": NOT_VISIBLE if child else VISIBLE,
            "type_id": "simple",
            "price": _number(v, "price") or 0.0,
        }
        weight = _number(v, "weight")
        if weight is not None:
            body["weight"] = weight
        attributes = list(body.get("custom_attributes", []))
        # A URL key of its own: Magento refuses a second product whose name makes the same.
        attributes.append({"attribute_code": "url_key", "value": _slug(v.sku)})
        if child:
            values = _child_options(v)
            body["name"] = f"{body['name']} {' '.join(values.values())}".strip()
            for option, value in values.items():
                attribute = self._attribute(option)
                attributes.append(
                    {
                        "attribute_code": attribute["attribute_code"],
                        "value": str(self._value_index(attribute, value)),
                    }
                )
        body["custom_attributes"] = attributes
        body["extension_attributes"] = {"website_ids": list(self.config.website_ids)}
        return body

    def _create_simple(self, product: ChannelProduct, v: ChannelVariant) -> RemoteProduct:
        body = self._variant_body(product, v, child=False)
        if self._product(v.sku) is None:
            self.api.call("POST", "V1/products", {"product": body})
        else:  # made by an earlier try of this item: saved over
            self.api.call("PUT", f"V1/products/{sku_path(v.sku)}", {"product": body})
        self._set_stock([v])
        self._made_group_prices([v])
        return RemoteProduct(v.sku, {v.sku: v.sku})

    def _create_configurable(self, product: ChannelProduct) -> RemoteProduct:
        code = product.code
        skus = [v.sku for v in product.variants]
        if code in skus:
            raise PermanentError(
                f"magento: product {code}: a configurable product's SKU is its code, which"
                " one of its variants also has"
            )
        parent = self._product(code)
        if parent is not None and parent.get("type_id") != "configurable":
            raise PermanentError(
                f"magento: product {code}: the store's {code} is a {parent.get('type_id')}"
                " product (another product's SKU?): it cannot be this configurable product"
            )
        existing = self._search(skus)
        ids: dict[str, int] = {s: int(p["id"]) for s, p in existing.items()}
        for v in product.variants:
            if v.sku not in existing:
                made = self.api.call(
                    "POST", "V1/products", {"product": self._variant_body(product, v, True)}
                )
                ids[v.sku] = int(made["id"])
        found = [v for v in product.variants if v.sku in existing]
        if found:  # made by an earlier try: their prices as now
            self._set_prices(found)
        if parent is None:
            body = self._parent_body(product, [ids[s] for s in skus])
            self.api.call("POST", "V1/products", {"product": body})
        else:
            linked = set(
                (parent.get("extension_attributes") or {}).get("configurable_product_links") or []
            )
            for sku in skus:
                if ids[sku] not in linked:
                    self._link(code, sku)
        self._set_stock(product.variants)
        self._made_group_prices([v for v in product.variants if v.sku not in existing])
        return RemoteProduct(code, {s: s for s in skus})

    def _parent_body(self, product: ChannelProduct, links: list[int]) -> Obj:
        """A configurable product with its options and its children linked by id."""
        body = self._product_body(product) | {
            "sku": product.code,
            "attribute_set_id": self.config.attribute_set_id,
            "status": 1,
            "visibility": VISIBLE,
            "type_id": "configurable",
            "extension_attributes": {
                "website_ids": list(self.config.website_ids),
                "configurable_product_options": self._configurable_options(product),
                "configurable_product_links": links,
            },
        }
        body["custom_attributes"] = [
            *body.get("custom_attributes", []),
            {"attribute_code": "url_key", "value": _slug(product.code)},
        ]
        return body

    def _configurable_options(self, product: ChannelProduct) -> list[Obj]:
        names: list[str] = []
        for v in product.variants:
            names += [n for n in _child_options(v) if n not in names]
        options = []
        for position, name in enumerate(names):
            attribute = self._attribute(name)
            indices: list[int] = []
            for v in product.variants:
                value = _child_options(v).get(name)
                if value is None:
                    raise PermanentError(
                        f"magento: variant {v.sku} has no value for the option {name!r}, which"
                        " every variant of a configurable product needs"
                    )
                index = self._value_index(attribute, value)
                if index not in indices:
                    indices.append(index)
            options.append(
                {
                    "attribute_id": str(attribute["attribute_id"]),
                    "label": name,
                    "position": position,
                    "values": [{"value_index": i} for i in indices],
                }
            )
        return options

    def _link(self, parent: str, child: str) -> None:
        self.api.call(
            "POST", f"V1/configurable-products/{sku_path(parent)}/child", {"childSku": child}
        )

    def update_product(self, remote_id: str, product: ChannelProduct, key: str) -> None:
        body = self._update_body(product, remote_id)
        self.api.call("PUT", f"V1/products/{sku_path(remote_id)}", {"product": body})

    def _update_body(self, product: ChannelProduct, remote_id: str) -> Obj:
        """What a product that exists gets: product-level fields only (a simple product's
        price and stock are its variant's); what the merchant set (status, URL key,
        websites, links) stays as it is."""
        return self._product_body(product) | {"sku": remote_id}

    def delete_product(self, remote_id: str, key: str) -> None:
        """The product and, for a configurable one, its children (Magento leaves them
        behind, invisible); gone already counts as done."""
        children = [c["sku"] for c in self._children(remote_id)]
        for sku in [remote_id, *children]:
            self._delete(sku)

    def _delete(self, sku: str) -> None:
        with contextlib.suppress(MagentoNotFound):  # gone already: done
            self.api.call("DELETE", f"V1/products/{sku_path(sku)}")

    # --------------------------------------------------------------------- variants

    def upsert_variants(
        self, product_remote_id: str, variants: list[ChannelVariant], key: str
    ) -> list[Result]:
        """Existing children: prices in one base-prices call; missing ones made and linked
        to the configurable parent; then the stock levels that differ. Variants the flow
        linked (remote id = SKU) are not looked up: a price change writes the prices only."""
        linked = [v for v in variants if v.remote_id == v.sku]
        unknown = [v for v in variants if v.remote_id != v.sku]
        existing = self._search([v.sku for v in unknown]) if unknown else {}
        old = linked + [v for v in unknown if v.sku in existing]
        new = [v for v in unknown if v.sku not in existing]
        results = self._set_prices(old) if old else {}
        gone = self._gone([v for v in linked if not results[v.sku].ok])
        for v in gone:
            del results[v.sku]
        if new or gone:
            results |= self._add_children(product_remote_id, new + gone)
        ok = [v for v in variants if v.sku not in results or results[v.sku].ok]
        try:
            self.stock.set({v.sku: self._stock(v) for v in ok}, compare=True)
        except PermanentError as exc:
            results |= {v.sku: Result(v.sku, remote_id=v.sku, error=exc) for v in ok}
        return [results.get(v.sku) or Result(v.sku, remote_id=v.sku) for v in variants]

    def _gone(self, failed: list[ChannelVariant]) -> list[ChannelVariant]:
        """Of linked variants whose price failed, those the store no longer has (deleted
        by hand): made again rather than failing for good."""
        if not failed:
            return []
        found = self._search([v.sku for v in failed])
        return [v for v in failed if v.sku not in found]

    def _add_children(self, parent_sku: str, new: list[ChannelVariant]) -> dict[str, Result]:
        parent = self._product(parent_sku)
        if parent is None:
            raise PermanentError(f"magento has no product {parent_sku}")
        results: dict[str, Result] = {}
        if parent.get("type_id") != "configurable":
            error = PermanentError(
                f"magento: product {parent_sku} is a simple product: it cannot take more"
                " variants (delete it to have it made again as a configurable product)"
            )
            return {v.sku: Result(v.sku, error=error) for v in new}
        name = parent.get("name") or parent_sku
        shell = ChannelProduct(parent_sku, {"title": name}, [])
        for v in new:
            try:
                body = self._variant_body(shell, v, child=True)
                self.api.call("POST", "V1/products", {"product": body})
                self._link(parent_sku, v.sku)
                results[v.sku] = Result(v.sku, remote_id=v.sku)
            except PermanentError as exc:
                results[v.sku] = Result(v.sku, error=exc)
        tier_prices.send_group_prices(self.api, new, results)
        return results

    def _made_group_prices(self, made: list[ChannelVariant]) -> None:
        """Group prices of variants just made (a save carries none): a refusal fails the
        create, whose retry finds the products and sends their prices again."""
        results = {v.sku: Result(v.sku, remote_id=v.sku) for v in made}
        tier_prices.send_group_prices(self.api, made, results)
        for result in results.values():
            if result.error is not None:
                raise result.error

    def _set_prices(self, variants: list[ChannelVariant]) -> dict[str, Result]:
        results: dict[str, Result] = {}
        prices = []
        for v in variants:
            try:
                price = _number(v, "price")
            except PermanentError as exc:
                results[v.sku] = Result(v.sku, error=exc)
                continue
            results[v.sku] = Result(v.sku, remote_id=v.sku)
            if price is not None:
                prices.append(
                    {"sku": v.sku, "price": price, "store_id": self.config.price_store_id}
                )
        tier_prices.send_group_prices(self.api, variants, results)
        if not prices:
            return results
        answer = self.api.call("POST", "V1/products/base-prices", {"prices": prices})
        if not isinstance(answer, list):
            raise PermanentError(
                f"magento: POST /V1/products/base-prices: the answer is not a list: {answer!r:.80}"
            )
        for failure in answer:
            text = message(failure)
            for sku in _named(failure, results) or [str(p["sku"]) for p in prices]:
                results[sku] = Result(sku, error=PermanentError(f"magento: price of {sku}: {text}"))
        return results

    def _set_stock(self, variants: list[ChannelVariant]) -> None:
        """Stock of variants just made: written without reading first."""
        self.stock.set({v.sku: self._stock(v) for v in variants}, compare=False)

    def _stock(self, v: ChannelVariant) -> dict[str, float]:
        """MSI source code -> the variant's quantity there."""
        return stock_levels(v.fields, self.config.sources, self.config.source_code, float)

    def delete_variant(self, product_remote_id: str, remote_id: str, key: str) -> None:
        self._delete(remote_id)

    # ----------------------------------------------------------- orders and shipments

    def fetch_orders(self, cursor: str | None) -> Page:
        return orders.fetch_orders(self.api, cursor, self.config.unpaid_methods)

    def get_order(self, remote_id: str) -> dict[str, Any]:
        return orders.get_order(self.api, remote_id, self.config.unpaid_methods)

    def push_fulfillment(self, order_remote_id: str, fulfillment: dict[str, Any], key: str) -> None:
        shipments.push(self.api, order_remote_id, fulfillment, self.config.notify_customer)

    # ----------------------------------------------------------------------- images

    def add_image(self, product_remote_id: str, image: ChannelImage, key: str) -> str:
        return media.add_image(self.api, product_remote_id, image, self.config.timeout)

    def delete_image(self, product_remote_id: str, remote_id: str, key: str) -> None:
        media.delete_image(self.api, product_remote_id, remote_id)

    # ------------------------------------------------------------------ large syncs

    def bulk_products(
        self, products: list[ChannelProduct], remote_ids: Mapping[str, str], key: str
    ) -> list[ProductResult]:
        """Through the asynchronous bulk API (bulk.py): a still-open bulk is a
        TransientError, and the next call resumes it."""
        from stockyard.connectors.magento import bulk

        return bulk.bulk_products(self, products, remote_ids, key)
