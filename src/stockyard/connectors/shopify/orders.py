"""Shopify orders in (issue 18): the poll that is the webhooks' safety net, the read of one
order by id, the mapping to Stockyard's order record, and the check of a webhook Shopify
posts (HMAC of the raw body with the app's client secret).

Which orders Stockyard takes (the merchant fulfils them): not a test order, not cancelled,
payment authorized or (partly) paid, not already fulfilled in Shopify, and at least one
line still to ship. Any other order is left alone by the poll and by the webhooks; one
read by id that is not to be fulfilled is a PermanentError saying why.
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from stockyard.connectors.base import OrderDeclined, Page
from stockyard.connectors.order_values import instant, unit_price
from stockyard.connectors.shopify import documents as d
from stockyard.connectors.shopify.client import ShopifyClient
from stockyard.connectors.webhooks import Delivery, Unsigned, hmac_sha256_base64
from stockyard.errors import InvalidInput, PermanentError, Unauthenticated

# Re-read this much before the cursor: Shopify's order search is indexed a little after
# the write, and an order saved while a pull ran must not fall between two pulls. Orders
# read twice map to the same record, which the order flow queues once.
OVERLAP = dt.timedelta(seconds=120)
# A connection's first pull looks this far back, not at the shop's whole history: old
# orders are the merchant's to import deliberately.
FIRST_LOOKBACK = dt.timedelta(days=1)
PAGES_PER_PULL = 5  # x 10 orders; a longer backlog goes on from a keyset cursor

FULFILLABLE_PAYMENT = frozenset({"AUTHORIZED", "PAID", "PARTIALLY_PAID", "PARTIALLY_REFUNDED"})
# The REST order's fulfillment_status values of an order with nothing left to ship.
DONE_FULFILLMENT = ("fulfilled", "restocked")
# Webhook topics taken, and the inbound topic each feeds. orders/cancelled is accepted so
# that a merchant subscribing to it is not retried at; cancelled orders enqueue nothing.
WEBHOOK_TOPICS = frozenset({"orders/create", "orders/updated", "orders/paid", "orders/cancelled"})


# ------------------------------------------------------------------------- the poll


@dataclass(frozen=True, slots=True)
class _Position:
    """Where a pull stands: `newest`, the latest update seen, is what the cursor keeps
    between pulls; `since`, where the query reads from, is `newest` less the overlap, set
    when a query starts and kept only while `after` (a keyset cursor) pages inside it. So
    the overlap is applied when reading, never stored: a pull that finds nothing new
    leaves the cursor where it was."""

    since: dt.datetime
    newest: dt.datetime
    after: str | None = None

    def dump(self) -> str:
        if self.after is None:
            return _iso(self.newest)
        since, newest = _iso(self.since), _iso(self.newest)
        return json.dumps({"since": since, "after": self.after, "newest": newest})

    @classmethod
    def load(cls, cursor: str | None, now: dt.datetime) -> _Position:
        if not cursor:
            # Kept as if an update had been seen one overlap after the look-back's start,
            # so that no later pull reads further back than the first one did.
            start = now - FIRST_LOOKBACK
            return cls(start, start + OVERLAP)
        if not cursor.startswith("{"):
            newest = instant(cursor, "shopify")
            return cls(newest - OVERLAP, newest)
        try:
            value = json.loads(cursor)
            return cls(
                instant(value["since"], "shopify"),
                instant(value["newest"], "shopify"),
                str(value["after"]),
            )
        except (ValueError, KeyError, TypeError):
            raise PermanentError(f"shopify: unreadable orders cursor {cursor[:80]!r}") from None


def fetch_orders(api: ShopifyClient, cursor: str | None, now: dt.datetime | None = None) -> Page:
    """Orders updated since `cursor` that the merchant should fulfil, oldest change first,
    each once (its latest state). The cursor is the latest update seen, or, when the
    backlog is longer than one pull, where the query stopped."""
    at = _Position.load(cursor, now or dt.datetime.now(dt.UTC))
    query = f"updated_at:>='{_iso(at.since)}'"
    after, newest = at.after, at.newest
    found: dict[str, dict[str, Any]] = {}
    for _ in range(PAGES_PER_PULL):
        page = api.query(d.ORDERS_IN_SINCE, {"query": query, "after": after})["orders"]
        for node in page["nodes"]:
            newest = max(newest, instant(node["updatedAt"], "shopify"))
            found.pop(node["id"], None)  # read again on a later page: it changed meanwhile
            found[node["id"]] = node
        after = page["pageInfo"]["endCursor"] if page["pageInfo"]["hasNextPage"] else None
        if after is None:
            break
    records = [to_record(api, n) for n in found.values() if refusal(n) is None]
    return Page(records, _Position(at.since, newest, after).dump())


def get_order(api: ShopifyClient, remote_id: str) -> dict[str, Any]:
    if not remote_id.startswith("gid://shopify/Order/"):
        raise PermanentError(
            f"shopify: {remote_id[:80]!r} is not an order id (gid://shopify/Order/…)"
        )
    order = api.query(d.ORDER_IN, {"id": remote_id})["order"]
    if order is None:
        raise PermanentError(f"shopify has no order {remote_id}")
    why = refusal(order)
    if why is not None and not _shipped_by_stockyard(order):
        raise OrderDeclined(f"shopify order {order['name']} is not to be fulfilled: {why}")
    return to_record(api, order)


def refusal(order: Mapping[str, Any]) -> str | None:
    """Why Stockyard leaves this order alone, or None to take it."""
    if order.get("test"):
        return "a test order"
    if order.get("cancelledAt"):
        return "cancelled"
    payment = order.get("displayFinancialStatus")
    if payment not in FULFILLABLE_PAYMENT:
        return f"payment {str(payment).lower()}"
    if order.get("displayFulfillmentStatus") == "FULFILLED":
        return "already fulfilled in Shopify"
    return None


def _shipped_by_stockyard(order: Mapping[str, Any]) -> bool:
    """Fulfilled, with Stockyard's fulfillment ledger: Stockyard shipped it, so it took it
    before; its sync_order (an update announced before the shipment, read after it) then
    only refreshes the order Stockyard holds, which the order flow does for an order it
    has seen, instead of failing on an order already fulfilled."""
    return order.get("displayFulfillmentStatus") == "FULFILLED" and bool(order.get("ledger"))


# ---------------------------------------------------------------------- the mapping


def to_record(api: ShopifyClient, order: Mapping[str, Any]) -> dict[str, Any]:
    """The order as the order flow takes it (stockyard.catalog.models.Order): prices net
    of every discount and of tax, so that lines + shipping + tax = Shopify's current total
    (see _net_lines for the rounding). Lines without a SKU are kept with an empty one, so
    that the order's own item fails naming them instead of the order arriving short."""
    inclusive = bool(order.get("taxesIncluded"))
    customer = order.get("customer") or {}
    return {
        "remote_id": order["id"],
        "number": order["name"],
        "currency": order["currencyCode"],
        "customer": {
            "code": customer["id"],
            "email": order.get("email"),
            "name": customer.get("displayName") or "",
            "phone": order.get("phone") or "",
        }
        if customer
        else None,
        "lines": _net_lines(_lines(api, order), inclusive),
        "shipping_address": _address(order.get("shippingAddress")),
        "billing_address": _address(order.get("billingAddress")),
        "shipping": str(_net_shipping(order, inclusive)),
        "tax": _amount(order["currentTotalTaxSet"]),
        "total": _amount(order["currentTotalPriceSet"]),
    }


def _net_lines(lines: list[dict[str, Any]], inclusive: bool) -> list[dict[str, Any]]:
    """Each line still ordered at its net unit price: the original price less the
    discounts allocated to the line (code and order-level ones too) and, in a shop whose
    prices include tax, less the line's tax. Allocations and taxes cover the quantity
    first ordered, so they are prorated to what is left after edits and refunds. The
    unit price keeps 4 decimals (the order record's precision, Tryton's unit-price digits)
    so quantity x unit rounds back to the line's net total to the cent below 100 units."""
    kept = []
    for line in lines:
        left = line["currentQuantity"]
        if left <= 0:
            continue
        share = Decimal(left) / Decimal(max(line.get("quantity") or left, left))
        discount = sum(_dec(a["allocatedAmountSet"]) for a in line["discountAllocations"])
        tax = sum(_dec(t["priceSet"]) for t in line["taxLines"]) if inclusive else 0
        net = _dec(line["originalUnitPriceSet"]) * left - (discount + tax) * share
        kept.append(
            {
                "sku": line.get("sku") or "",
                "quantity": left,
                "price": unit_price(net / left),
                "title": line.get("title") or "",
            }
        )
    return kept


def _net_shipping(order: Mapping[str, Any], inclusive: bool) -> Decimal:
    shipping = _dec(order["currentShippingPriceSet"])
    if inclusive:
        nodes = (order.get("shippingLines") or {}).get("nodes") or []
        shipping -= sum(_dec(t["priceSet"]) for n in nodes for t in n["taxLines"])
    return max(shipping, Decimal(0))


def _lines(api: ShopifyClient, order: Mapping[str, Any]) -> list[dict[str, Any]]:
    page = order["lineItems"]
    lines = list(page["nodes"])
    while page["pageInfo"]["hasNextPage"]:
        variables = {"id": order["id"], "after": page["pageInfo"]["endCursor"]}
        found = api.query(d.ORDER_IN_LINES, variables)["order"]
        if found is None:
            raise PermanentError(f"shopify order {order['id']} went away while being read")
        page = found["lineItems"]
        lines += page["nodes"]
    return lines


def _amount(money: Mapping[str, Any] | None) -> str:
    return str(((money or {}).get("shopMoney") or {}).get("amount") or "0")


def _dec(money: Mapping[str, Any] | None) -> Decimal:
    try:
        return Decimal(_amount(money))
    except InvalidOperation:
        raise PermanentError(f"shopify: unreadable amount {_amount(money)[:40]!r}") from None


def _address(address: Mapping[str, Any] | None) -> dict[str, str] | None:
    if not address:
        return None
    fields = {
        "name": "name",
        "company": "company",
        "line1": "address1",
        "line2": "address2",
        "city": "city",
        "region": "province",
        "postcode": "zip",
        "country": "countryCodeV2",
        "phone": "phone",
    }
    return {ours: str(address.get(theirs) or "") for ours, theirs in fields.items()}


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------------- webhooks


def signature(secret: str, body: bytes) -> str:
    """Shopify's X-Shopify-Hmac-Sha256: base64 of HMAC-SHA256 of the raw body."""
    return hmac_sha256_base64(secret, body)


def read_webhook(
    topic: str,
    body: bytes,
    headers: Mapping[str, str],
    secret: str,
    settings: Mapping[str, Any],
) -> Delivery:
    """A webhook Shopify posted for this connection, checked: signed with the app's
    client secret (the connection's webhook_secret), from the connection's shop, on a topic
    taken. Its body only says whether the order is one to take, and names the delivery
    (order id and updated_at); the order itself is read by id when the item runs."""
    given = headers.get("x-shopify-hmac-sha256", "")
    if not hmac.compare_digest(signature(secret, body).encode(), given.encode()):
        raise Unsigned()
    if headers.get("x-shopify-shop-domain", "").lower() != str(settings.get("shop", "")).lower():
        raise Unauthenticated("webhook refused: it comes from another shop than the connection's")
    if topic not in WEBHOOK_TOPICS:
        raise InvalidInput(
            f"shopify webhook topic {topic[:60]!r} is not taken; subscribe to"
            f" {', '.join(sorted(WEBHOOK_TOPICS))}"
        )
    if headers.get("x-shopify-topic", topic) != topic:
        raise InvalidInput("the X-Shopify-Topic header does not match the address's topic")
    order = _webhook_order(body)
    gid = _order_gid(order)
    # The delivery is named by what the signature covers, the body: the event and webhook
    # id headers are unsigned, so a captured body re-sent under fresh ids (or another
    # topic, which is unsigned too) is the same delivery and enqueues nothing new.
    message_id = f"shopify:{gid.rsplit('/', 1)[1]}:{_updated_at(order)}"
    if _skipped(order):
        return Delivery(message_id, "orders", ())
    return Delivery(message_id, "orders", (gid,))


def _webhook_order(body: bytes) -> dict[str, Any]:
    try:
        order = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than Python's stack
        raise InvalidInput(
            "the webhook's body is not JSON (or nests deeper, or holds longer numbers, than"
            " an order does)"
        ) from None
    if not isinstance(order, dict):
        raise InvalidInput("the webhook's body is not a JSON object (an order)")
    return order


def _skipped(order: Mapping[str, Any]) -> bool:
    """The webhook's (REST-shaped) order is one Stockyard leaves alone. A fulfilled one
    too: Stockyard's own shipment makes Shopify send orders/updated, and an order fulfilled
    before Stockyard took it is not Stockyard's to ship."""
    payment = order.get("financial_status")
    payment = payment.upper() if isinstance(payment, str) else ""  # never str() a hostile tree
    return (
        bool(order.get("test") or order.get("cancelled_at"))
        or payment not in FULFILLABLE_PAYMENT
        or order.get("fulfillment_status") in DONE_FULFILLMENT
    )


_ORDER_GID = re.compile(r"gid://shopify/Order/([1-9][0-9]{0,18})")
_LARGEST_ID = 2**63 - 1  # Shopify's ids are 64-bit integers


def _order_gid(order: Mapping[str, Any]) -> str:
    gid = order.get("admin_graphql_api_id")
    found = _ORDER_GID.fullmatch(gid) if isinstance(gid, str) else None
    if found and int(found[1]) <= _LARGEST_ID:
        return f"gid://shopify/Order/{found[1]}"
    number = order.get("id")
    if isinstance(number, int) and not isinstance(number, bool) and 0 < number <= _LARGEST_ID:
        return f"gid://shopify/Order/{number}"
    raise InvalidInput("the webhook's order has no id (a positive 64-bit integer)")


def _updated_at(order: Mapping[str, Any]) -> str:
    """The order's updated_at, in one spelling: with the order id, it names the state
    the delivery announces."""
    text = order.get("updated_at")
    try:
        if not isinstance(text, str) or len(text) > 40:
            raise ValueError(text)
        return instant(text, "shopify").astimezone(dt.UTC).isoformat()
    except (ValueError, OverflowError, PermanentError):
        raise InvalidInput("the webhook's order has no updated_at (an ISO 8601 time)") from None


__all__ = [
    "WEBHOOK_TOPICS",
    "fetch_orders",
    "get_order",
    "read_webhook",
    "refusal",
    "signature",
    "to_record",
]
