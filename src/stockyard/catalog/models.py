"""The catalog's data as sources and channels send it: validated, with errors that name
the field. Money is `Decimal` (exact) and travels as a string."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from stockyard.errors import InvalidInput

Text = Annotated[str, Field(min_length=1, max_length=1000)]
Money = Annotated[Decimal, Field(ge=0, max_digits=18, decimal_places=4)]
Quantity = Annotated[int, Field(ge=-(10**9), le=10**9)]


class _Model(BaseModel):
    # Unknown fields are an error, so a misspelt "pirce" is reported, not silently dropped.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)


class Variant(_Model):
    sku: Text
    barcode: str | None = None
    price: Money
    prices: dict[str, Money] = {}  # price tiers: {"trade": "8.50"}
    quantity: Quantity | None = None  # total; the sum of `stock` when only that is given
    stock: dict[str, Quantity] = {}  # quantity per warehouse
    weight: Money | None = None
    options: dict[str, str] = {}  # option values: {"Size": "M"}

    def total_quantity(self, warehouses: list[str] | None = None) -> int:
        if warehouses is not None:
            return sum(self.stock.get(w, 0) for w in warehouses)
        if self.quantity is not None:
            return self.quantity
        return sum(self.stock.values())


class Image(_Model):
    url: Text
    code: str = ""  # the source's id of the image; the URL when it has none
    alt: str = ""

    @property
    def key(self) -> str:
        return self.code or self.url


class Product(_Model):
    code: str = ""  # the source's code; the first variant's SKU when empty
    title: Text
    description: str = ""
    vendor: str = ""
    type: str = ""
    tags: list[str] = []
    options: list[str] = []  # option names, e.g. ["Size", "Colour"]
    attributes: dict[str, Any] = {}
    active: bool = True  # false: withdrawn, channels delete it
    variants: Annotated[list[Variant], Field(min_length=1, max_length=2000)]
    images: list[Image] = []

    @model_validator(mode="after")
    def _unique_skus(self) -> Product:
        skus = [v.sku for v in self.variants]
        duplicates = sorted({s for s in skus if skus.count(s) > 1})
        if duplicates:
            raise ValueError(f"duplicate SKU in variants: {', '.join(duplicates)}")
        return self

    @property
    def key(self) -> str:
        return self.code or self.variants[0].sku


class Address(_Model):
    name: str = ""
    company: str = ""
    line1: str = ""
    line2: str = ""
    city: str = ""
    region: str = ""
    postcode: str = ""
    country: str = ""
    phone: str = ""


class Contact(_Model):
    """A person at a trade customer (buyer, accounts payable, ...)."""

    name: str = ""
    email: str | None = None
    phone: str = ""
    role: str = ""


class Customer(_Model):
    code: Text  # the ERP's id of the customer: a trade customer's account number
    email: str | None = None
    name: str = ""
    company: str = ""
    phone: str = ""
    addresses: list[Address] = []
    attributes: dict[str, Any] = {}
    # Trade terms: the price tier whose prices the customer sees (a key of
    # `Variant.prices`, e.g. "trade"; None: the public price), the credit they may run up
    # on account, and the payment terms as the ERP names them ("30 days net").
    price_tier: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    credit_limit: Money | None = None
    payment_terms: Annotated[str, Field(max_length=200)] = ""
    contacts: Annotated[list[Contact], Field(max_length=200)] = []
    # The customer group of a channel, in a channel's terms: what a channel is sent (the
    # group its rules map `price_tier` to, flows.rules.ChannelRules.customer) and what a
    # channel's order says the buyer is in (sync_order maps it back to `price_tier`). A
    # source speaks in tiers and leaves it None.
    group: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    # False: the source closed the account (blocked, archived); a channel holding it is
    # told so (the trade store deactivates the login). A closed account a channel never
    # held is not opened there.
    active: bool = True


class OrderLine(_Model):
    sku: Text
    quantity: Annotated[int, Field(gt=0, le=10**6)]
    price: Money  # unit price
    title: str = ""


class Order(_Model):
    remote_id: Text  # the channel's id of the order
    number: str = ""
    currency: Annotated[str, Field(min_length=3, max_length=3)] = "EUR"
    customer: Customer | None = None
    lines: Annotated[list[OrderLine], Field(min_length=1)]
    shipping_address: Address | None = None
    billing_address: Address | None = None
    shipping: Money = Decimal(0)
    tax: Money = Decimal(0)
    total: Money
    # What the store recorded as paid (an order on account once settled); None: not yet.
    # The flows check it against `total` (update_order_instruction).
    paid: Money | None = None


FulfillmentState = Literal["pending", "open", "cancelled", "complete"]


class Tracking(_Model):
    carrier: str = ""
    number: str = ""
    url: str = ""


class FulfillmentUpdate(_Model):
    """What a fulfillment service reports (sync_fulfillment)."""

    remote_id: Text
    state: FulfillmentState
    tracking: Tracking | None = None


M = TypeVar("M", bound=BaseModel)


def parse(model: type[M], data: Any, what: str) -> M:
    """Validate `data`, or raise InvalidInput naming each bad field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(_problem(e) for e in exc.errors()[:10])
        raise InvalidInput(f"invalid {what}: {problems}") from None


def _problem(error: Any) -> str:
    where = ".".join(str(p) for p in error["loc"]) or "payload"
    return f"{where}: {error['msg']}"
