"""Channel rules: which products a channel takes, which price tier (and which customer
groups' prices) and warehouse quantities it gets, how catalog fields are named there, and
which of its customer groups a customer is in. Set in a channel connection's settings under
"rules"; see docs/flows.md."""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from stockyard.catalog.models import Customer, parse
from stockyard.catalog.store import StoredImage, StoredProduct, StoredVariant
from stockyard.connectors.base import ChannelImage, ChannelProduct, ChannelVariant
from stockyard.errors import InvalidInput, PermanentError
from stockyard.tenancy import Connection


class ProductFilter(BaseModel):
    """A product passes when it matches every condition given (an empty filter takes all)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tags: list[str] = []  # has at least one of these tags
    exclude_tags: list[str] = []  # has none of these
    vendors: list[str] = []
    types: list[str] = []
    attributes: dict[str, Any] = {}  # attribute equals value

    def accepts(self, fields: dict[str, Any]) -> bool:
        tags = set(fields.get("tags", ()))
        attributes = fields.get("attributes", {})
        return (
            (not self.tags or bool(tags & set(self.tags)))
            and not tags & set(self.exclude_tags)
            and (not self.vendors or fields.get("vendor") in self.vendors)
            and (not self.types or fields.get("type") in self.types)
            and all(attributes.get(k) == v for k, v in self.attributes.items())
        )


class ChannelRules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    filter: ProductFilter = ProductFilter()
    price_tier: str | None = None  # the variant's price in this tier, else its base price
    warehouses: list[str] | None = None  # quantity = the sum of these; None: the total
    field_map: dict[str, str] = {}  # catalog field -> the channel's name for it
    # Also send `stock` (warehouse -> quantity, of `warehouses`). Only on demand: a new
    # field changes every variant's fingerprint, and each channel would get them all again.
    stock_by_warehouse: bool = False
    # Price tier -> a customer group of the channel (Magento's group code, the Oscar
    # group and price-list partner): each variant also sends `group_prices`, group -> its
    # price in that tier (None without one), and a customer is sent in the group of their
    # tier. Only on demand, as `stock_by_warehouse`: channels without it keep their
    # fingerprints.
    group_prices: dict[str, Annotated[str, Field(min_length=1)]] = {}
    # Whether the channel is sent the source's customers (as accounts), when its connector
    # takes them. Unset: only a channel with `group_prices`, a trade store, is: a consumer
    # shop whose connector could hold accounts must not get every trade customer's name,
    # address and credit terms because nobody said no.
    customers: bool | None = None

    @field_validator("group_prices")
    @classmethod
    def _one_tier_per_group(cls, value: dict[str, str]) -> dict[str, str]:
        groups = [g.lower() for g in value.values()]  # Magento matches groups without case
        if len(set(groups)) < len(groups):
            raise ValueError("two price tiers name the same customer group")
        return value

    @property
    def takes_customers(self) -> bool:
        """Whether the channel is sent customers (see `customers`)."""
        return bool(self.group_prices) if self.customers is None else self.customers

    def accepts(self, product: StoredProduct) -> bool:
        return not product.deleted and self.filter.accepts(product.fields)

    def view(
        self,
        product: StoredProduct,
        variant_ids: dict[int, str] | None = None,
        image_ids: dict[int, str] | None = None,
    ) -> ChannelProduct:
        """The product as this channel should hold it."""
        variant_ids = variant_ids or {}
        image_ids = image_ids or {}
        fields = {k: v for k, v in product.fields.items() if k != "active"}
        return ChannelProduct(
            code=product.code,
            fields=self._mapped(fields),
            variants=[self.variant(v, variant_ids.get(v.id)) for v in product.variants],
            images=[self.image(i, n, image_ids.get(i.id)) for n, i in enumerate(product.images)],
        )

    def variant(self, stored: StoredVariant, remote_id: str | None = None) -> ChannelVariant:
        v = stored.variant
        price = v.prices.get(self.price_tier, v.price) if self.price_tier else v.price
        fields: dict[str, Any] = {
            "barcode": v.barcode,
            "price": str(price),
            "quantity": v.total_quantity(self.warehouses),
            "weight": None if v.weight is None else str(v.weight),
            "options": v.options,
        }
        if self.group_prices:
            fields["group_prices"] = {
                group: str(v.prices[tier]) if tier in v.prices else None
                for tier, group in self.group_prices.items()
            }
        if self.stock_by_warehouse:
            fields["stock"] = {
                w: q for w, q in v.stock.items() if self.warehouses is None or w in self.warehouses
            }
        return ChannelVariant(v.sku, self._mapped(fields), remote_id)

    def customer(self, customer: Customer) -> Customer:
        """The customer as this channel should hold them: in the group of their price tier
        (None when the tier has no group here, or they have no tier)."""
        tier = customer.price_tier
        group = self.group_prices.get(tier) if tier else None
        return customer if customer.group == group else customer.model_copy(update={"group": group})

    def tier_of(self, group: str) -> str | None:
        """The price tier of one of the channel's customer groups (group_prices read
        backwards); groups compare without case, as the validator does. None: unmapped."""
        wanted = group.lower()
        return next((t for t, g in self.group_prices.items() if g.lower() == wanted), None)

    def image(
        self, stored: StoredImage, position: int, remote_id: str | None = None
    ) -> ChannelImage:
        i = stored.image
        return ChannelImage(i.key, {"url": i.url, "alt": i.alt, "position": position}, remote_id)

    def _mapped(self, fields: dict[str, Any]) -> dict[str, Any]:
        return {self.field_map.get(k, k): v for k, v in fields.items()}


# The setting in which a connector maps Stockyard's warehouses to its own stock places
# (Shopify's locations, Magento's MSI sources, Oscar's partners).
WAREHOUSE_MAPS = {"shopify": "locations", "magento": "sources", "oscar": "partners"}


def rules_of(channel: Connection) -> ChannelRules:
    try:
        rules = parse(ChannelRules, channel.settings.get("rules", {}), "channel rules")
    except InvalidInput as exc:
        raise PermanentError(f"connection {channel.id} ({channel.description}): {exc}") from None
    # A channel that maps warehouses to stock places of its own needs the stock per
    # warehouse to place it.
    mapping = WAREHOUSE_MAPS.get(channel.connector)
    if mapping and channel.settings.get(mapping) and not rules.stock_by_warehouse:
        rules = rules.model_copy(update={"stock_by_warehouse": True})
    return rules


def content_hash(data: Any) -> str:
    """Stable over key order and JSON formatting: equal data, equal hash."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def product_hash(view: ChannelProduct) -> str:
    return content_hash({"code": view.code, "fields": view.fields})


def variant_hash(view: ChannelVariant) -> str:
    return content_hash({"sku": view.sku, "fields": view.fields})


def image_hash(view: ChannelImage) -> str:
    # Not the position: adding an image in front must not re-send the ones behind it.
    fields = {k: v for k, v in view.fields.items() if k != "position"}
    return content_hash({"code": view.code, "fields": fields})
