"""Orders in, for the Shopify double (issue 18): the order fields Stockyard reads beyond
what `Shop.add_order` sets, order updates, and webhook delivery.

`install(double)` wraps `double.shop.add_order` so every order carries the fields of the
connector's ORDER_IN_FIELDS (customer, billing address, current totals, lines' current
quantity and discounted price...) and is announced to the `orders/create` subscribers.
`webhooks(double)` is the typed handle tests use: `subscribe(topic, url, secret)`,
`update(order, **fields)` (orders/updated, and orders/cancelled when it cancels),
`redeliver(delivery)` (Shopify's retry: the same body and ids again). A fulfillmentCreate
announces orders/updated, as Shopify does when an order's fulfillment status changes.
`price(double, order, ...)` gives an order a code discount, taxes (on top or included) and
shipping, with Shopify's amounts as docs/shopify-notes.md `## Orders in` describes them.

Deliveries follow shopify.dev ("About webhooks", "Verify webhooks", "Ignore duplicate
webhooks"): a POST of the order as JSON in the REST shape (snake_case, numeric `id`,
`admin_graphql_api_id`), headers X-Shopify-Topic, X-Shopify-Hmac-Sha256 (base64 HMAC-SHA256
of the raw body with the app's client secret), X-Shopify-Shop-Domain, X-Shopify-API-Version,
X-Shopify-Webhook-Id (per delivery), X-Shopify-Event-Id (per event), X-Shopify-Triggered-At.
The body holds the fields Stockyard looks at and a few more; a real payload has many more.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import httpx

from tests.support.shopify_double import ShopifyDouble

Obj = dict[str, Any]
SHOP_DOMAIN = "stockyard-test.myshopify.com"


@dataclass
class Delivered:
    url: str
    body: bytes
    headers: dict[str, str]
    status: int


@dataclass
class Webhooks:
    double: ShopifyDouble
    shop_domain: str = SHOP_DOMAIN
    subscriptions: list[tuple[str, str, str]] = field(default_factory=list)
    delivered: list[Delivered] = field(default_factory=list)

    def subscribe(self, topic: str, url: str, secret: str) -> None:
        self.subscriptions.append((topic, url, secret))

    def update(self, order: Obj, updated_at: str | None = None, **fields: Any) -> Obj:
        """Change the order (its fields as the schema names them) and announce it."""
        with self.double.lock:
            order.update(fields)
            order["updatedAt"] = updated_at or _now_iso()
        self.announce("orders/updated", order)
        if fields.get("cancelledAt"):
            self.announce("orders/cancelled", order)
        return order

    def announce(self, topic: str, order: Obj) -> list[Delivered]:
        body = json.dumps(rest_order(order, self.double.shop.currency)).encode()
        event = str(uuid.uuid4())
        return [
            self._post(url, body, self._headers(topic, secret, body, event))
            for subscribed, url, secret in self.subscriptions
            if subscribed == topic
        ]

    def redeliver(self, delivery: Delivered) -> Delivered:
        """Shopify's retry of a delivery: the same body, the same webhook and event ids."""
        return self._post(delivery.url, delivery.body, dict(delivery.headers))

    def _headers(self, topic: str, secret: str, body: bytes, event: str) -> dict[str, str]:
        digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
        return {
            "Content-Type": "application/json",
            "X-Shopify-Topic": topic,
            "X-Shopify-Hmac-Sha256": base64.b64encode(digest).decode(),
            "X-Shopify-Shop-Domain": self.shop_domain,
            "X-Shopify-API-Version": self.double.version,
            "X-Shopify-Webhook-Id": str(uuid.uuid4()),
            "X-Shopify-Event-Id": event,
            "X-Shopify-Triggered-At": datetime.now(UTC).isoformat(),
        }

    def _post(self, url: str, body: bytes, headers: dict[str, str]) -> Delivered:
        status = httpx.post(url, content=body, headers=headers, timeout=10).status_code
        made = Delivered(url, body, headers, status)
        self.delivered.append(made)
        return made


def webhooks(double: ShopifyDouble) -> Webhooks:
    """The double's webhook handle (installing this area if extensions() did not)."""
    install(double)
    found: Webhooks = double._orders_webhooks  # type: ignore[attr-defined]
    return found


def install(double: ShopifyDouble) -> None:
    if isinstance(getattr(double, "_orders_webhooks", None), Webhooks):
        return  # once: add_order is wrapped a single time
    hooks = Webhooks(double)
    double._orders_webhooks = hooks  # type: ignore[attr-defined]
    seed = double.shop.add_order

    def add_order(*args: Any, **kwargs: Any) -> Obj:
        order = complete(seed(*args, **kwargs), double)
        hooks.announce("orders/create", order)
        return order

    double.shop.add_order = add_order  # type: ignore[method-assign]
    double.resolvers[("Mutation", "fulfillmentCreate")] = _announcing(
        hooks, double.resolvers[("Mutation", "fulfillmentCreate")]
    )
    double.resolvers[("Order", "shippingLines")] = lambda o, _i, **a: {
        "nodes": o["_shipping_lines"][: a.get("first")]
    }


def _announcing(hooks: Webhooks, create: Callable[..., Obj]) -> Callable[..., Obj]:
    """fulfillmentCreate, then orders/updated for the order it changed (Shopify sends the
    update when the fulfillment status changes; the double sends it before answering)."""

    def run(*args: Any, **kwargs: Any) -> Obj:
        answer = create(*args, **kwargs)
        made = answer.get("fulfillment")
        if made is not None:
            order = next(
                o for o in hooks.double.shop.of("Order") if made in o.get("_fulfillments", [])
            )
            hooks.announce("orders/updated", order)
        return answer

    return run


def complete(order: Obj, double: ShopifyDouble) -> Obj:
    """The fields of an order Stockyard reads that `Shop.add_order` does not set, with
    the values a fresh paid web order has."""
    money = double.shop.money
    number = order["id"].rsplit("/", 1)[1]
    address = {"company": None, "province": None, **order["shippingAddress"]}
    order["shippingAddress"] = address
    order.setdefault("billingAddress", dict(address))
    order.setdefault("test", False)
    order.setdefault("phone", None)
    order.setdefault("customer", double.shop.add("Customer", displayName=f"Buyer {number}"))
    order.setdefault("currentTotalPriceSet", order["totalPriceSet"])
    order.setdefault("currentTotalTaxSet", money("0.00"))
    order.setdefault("currentShippingPriceSet", money("0.00"))
    order.setdefault("taxesIncluded", False)
    order.setdefault("_shipping_lines", [])
    for line in order["_lines"]:
        line.setdefault("title", f"Item {line['sku']}")
        line.setdefault("currentQuantity", line["quantity"])
        line.setdefault("discountAllocations", [])
        line.setdefault("taxLines", [])
    return order


def price(
    double: ShopifyDouble,
    order: Obj,
    discount: str = "0",
    tax: str = "0",
    taxes_included: bool = False,
    shipping: str = "0.00",
) -> Obj:
    """Give a placed order a code discount of `discount` (0.10: 10 %) on every line, tax at
    `tax` on lines and shipping, and a shipping line, with Shopify's arithmetic as far as
    the documentation tells it: the discount allocated to each line and rounded there; tax
    per line on the discounted amount, added on top, or when `taxes_included` the part of
    the price that is tax (amount x rate / (1 + rate)); totals the sums of those."""
    money = double.shop.money
    rate, off = Decimal(tax), Decimal(discount)
    merchandise = taxes = Decimal(0)
    for line in order["_lines"]:
        gross = _dec(line["originalUnitPriceSet"]) * line["quantity"]
        allocated = _cent(gross * off)
        line["discountAllocations"] = [{"allocatedAmountSet": money(str(allocated))}] if off else []
        line_tax = _tax(gross - allocated, rate, taxes_included)
        line["taxLines"] = [{"priceSet": money(str(line_tax)), "rate": float(rate)}]
        merchandise += gross - allocated
        taxes += line_tax
    carriage = Decimal(shipping)
    carriage_tax = _tax(carriage, rate, taxes_included)
    order["_shipping_lines"] = [
        {"taxLines": [{"priceSet": money(str(carriage_tax)), "rate": float(rate)}]}
    ]
    taxes += carriage_tax
    total = merchandise + carriage + (0 if taxes_included else taxes)
    order.update(
        taxesIncluded=taxes_included,
        currentShippingPriceSet=money(str(carriage)),
        currentTotalTaxSet=money(str(taxes)),
        currentTotalPriceSet=money(str(total)),
        totalPriceSet=money(str(total)),
    )
    return order


def _dec(money: Obj) -> Decimal:
    return Decimal(str(money["shopMoney"]["amount"]))


def _cent(amount: Decimal) -> Decimal:
    return amount.quantize(Decimal("0.01"), ROUND_HALF_UP)


def _tax(amount: Decimal, rate: Decimal, included: bool) -> Decimal:
    return _cent(amount * rate / (1 + rate) if included else amount * rate)


# The REST order's fulfillment_status for the statuses the double sets ("Order" resource
# on shopify.dev: fulfilled, partial, restocked, or null).
REST_FULFILLMENT = {"FULFILLED": "fulfilled", "PARTIALLY_FULFILLED": "partial"}


def rest_order(order: Obj, currency: str) -> Obj:
    """The order as a webhook carries it (the REST resource's shape)."""

    def number(gid: str) -> int:
        return int(gid.rsplit("/", 1)[1])

    return {
        "id": number(order["id"]),
        "admin_graphql_api_id": order["id"],
        "name": order["name"],
        "email": order.get("email"),
        "created_at": order["createdAt"],
        "updated_at": order["updatedAt"],
        "cancelled_at": order.get("cancelledAt"),
        "test": bool(order.get("test")),
        "currency": currency,
        "total_price": order["currentTotalPriceSet"]["shopMoney"]["amount"],
        "financial_status": str(order.get("displayFinancialStatus") or "").lower(),
        "fulfillment_status": REST_FULFILLMENT.get(str(order.get("displayFulfillmentStatus"))),
        "line_items": [
            {
                "id": number(line["id"]),
                "admin_graphql_api_id": line["id"],
                "sku": line["sku"],
                "quantity": line["quantity"],
                "price": line["originalUnitPriceSet"]["shopMoney"]["amount"],
                "title": line.get("title"),
            }
            for line in order["_lines"]
        ],
    }


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
