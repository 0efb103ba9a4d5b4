"""WooCommerce orders in (issue 19): the poll that is the webhooks' safety net, the read of
one order by id, the mapping to Stockyard's order record, and the check of a webhook
WooCommerce posts (X-WC-Webhook-Signature: base64 HMAC-SHA256 of the raw body with the
webhook's secret). docs/woocommerce-notes.md, "Orders in and fulfillment back".

Which orders Stockyard takes: status `processing` only. WooCommerce puts an order there
once its payment is complete and it has something to ship (paid orders of only virtual
and downloadable products go straight to `completed`); `pending` and `on-hold` await
payment, `completed` is shipped (by the merchant, or by Stockyard's own fulfillment),
`cancelled`, `refunded`, `failed`, `checkout-draft` and `trash` are not to ship, and
statuses extensions register are not ours to guess. Any other status is left alone by
the poll and by the webhooks; one read by id is an `OrderDeclined` saying why.
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from stockyard.connectors.base import OrderDeclined, Page
from stockyard.connectors.order_values import instant, unit_price
from stockyard.connectors.webhooks import Delivery, Unsigned, dummy_check, hmac_sha256_base64
from stockyard.connectors.woocommerce import paging
from stockyard.connectors.woocommerce.client import WooCommerceClient, WooCommerceRefused
from stockyard.errors import InvalidInput, PermanentError

TAKEN = "processing"
# Re-read this much before the cursor: an order saved while a pull ran, or whose
# date_modified_gmt is a second behind another's, must not fall between two pulls. Orders
# read twice map to the same record, which the order flow queues once.
OVERLAP = dt.timedelta(seconds=120)
# A connection's first pull looks this far back, not at the store's whole history.
FIRST_LOOKBACK = dt.timedelta(days=1)
PER_PAGE = 100  # WooCommerce's most per page
PAGES_PER_PULL = 10  # x 100 orders; a longer backlog goes on from the newest one read
# Webhook topics taken, as the delivery URL spells them: WooCommerce's order.created and
# order.updated with the dot as a slash (the inbound route's topic allows no dot).
WEBHOOK_TOPICS = frozenset({"order/created", "order/updated"})
_PING = re.compile(rb"webhook_id=[1-9][0-9]{0,18}")
_LARGEST_ID = 2**63 - 1


# ------------------------------------------------------------------------- the poll


def fetch_orders(
    api: WooCommerceClient, cursor: str | None, now: dt.datetime | None = None
) -> Page:
    """Orders in `processing` modified since the cursor, oldest change first, each once
    (its latest state). The cursor is the newest `date_modified_gmt` read; the overlap is
    applied when reading, never stored, so a pull finding nothing leaves it as it was.

    `modified_before` is fixed at the pull's start so that the set being paged can only
    shrink (an order modified meanwhile leaves it, to be read by the next pull); when it
    shrinks (`X-WP-Total` changes) the pages after may have slid past an order, so the
    pull stops and the cursor stays at the newest order of the pages read before."""
    at = now or dt.datetime.now(dt.UTC)
    newest = instant(cursor, "woocommerce") if cursor else at - FIRST_LOOKBACK + OVERLAP
    query = {
        "status": TAKEN,
        "orderby": "modified",
        "order": "asc",
        "dates_are_gmt": "true",
        "modified_after": _iso(newest - OVERLAP),
        "modified_before": _iso(at),
        "per_page": str(PER_PAGE),
    }
    found: dict[int, dict[str, Any]] = {}
    total: str | None = None
    kept = newest  # the cursor: newest modified of the pages read while the set held
    for page in range(1, PAGES_PER_PULL + 1):
        answer, headers = api.call(
            "GET", "/orders", "list orders", params=query | {"page": str(page)}
        )
        rows = [_with_id(r) for r in paging.rows_of(answer, "list orders")]
        shrunk = total is not None and headers.get("X-WP-Total") != total
        total = headers.get("X-WP-Total")
        for row in rows:
            found.pop(row["id"], None)
            found[row["id"]] = row
        if shrunk:
            break
        kept = max([kept, *(t for r in rows if (t := _modified_at(r)) is not None)])
        if len(rows) < PER_PAGE or page >= paging.last_page(headers):
            break
    records = [_record_or_id(o) for o in found.values() if refusal(o) is None]
    return Page(records, _iso(kept))


def _with_id(row: dict[str, Any]) -> dict[str, Any]:
    number = row.get("id")
    if not isinstance(number, int) or isinstance(number, bool) or not 0 < number <= _LARGEST_ID:
        raise PermanentError("woocommerce: list orders: the answer has an order without an id")
    return row


def _modified_at(row: Mapping[str, Any]) -> dt.datetime | None:
    try:
        return instant(row["date_modified_gmt"], "woocommerce")
    except (KeyError, PermanentError):
        return None  # read again by the next pull's overlap, or by its webhook


def _record_or_id(order: Mapping[str, Any]) -> dict[str, Any]:
    """The order's record; one the mapping cannot read is named by its id alone, so that
    its own item reads it and fails saying why, and the others go on."""
    try:
        return to_record(order)
    except PermanentError:
        return {"remote_id": str(order["id"])}


def get_order(api: WooCommerceClient, remote_id: str) -> dict[str, Any]:
    if not re.fullmatch(r"[1-9][0-9]{0,18}", remote_id):
        raise PermanentError(f"woocommerce: {remote_id[:80]!r} is not an order id")
    try:
        answer, _ = api.call("GET", f"/orders/{remote_id}", f"read order {remote_id}")
    except WooCommerceRefused as exc:
        if exc.status == 404:
            raise PermanentError(f"woocommerce has no order {remote_id}") from None
        raise
    order = paging.object_of(answer, f"read order {remote_id}")
    why = refusal(order)
    if why is not None:
        raise OrderDeclined(
            f"woocommerce order {order.get('number')} is not to be fulfilled: {why}"
        )
    return to_record(order)


def refusal(order: Mapping[str, Any]) -> str | None:
    """Why Stockyard leaves this order alone, or None to take it."""
    status = order.get("status")
    if status == TAKEN:
        return None
    return f"status {str(status)[:40]} (only {TAKEN} orders are taken)"


# ---------------------------------------------------------------------- the mapping


def to_record(order: Mapping[str, Any]) -> dict[str, Any]:
    """The order as the order flow takes it, or a PermanentError naming what the mapping
    could not read (a field missing or of another type)."""
    try:
        return _to_record(order)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        name = f"{type(exc).__name__} {str(exc)[:80]}"
        raise PermanentError(
            f"woocommerce order {str(order.get('id'))[:20]}: cannot be read ({name})"
        ) from None


def _to_record(order: Mapping[str, Any]) -> dict[str, Any]:
    """The order as the order flow takes it (stockyard.catalog.models.Order). WooCommerce
    keeps a line's `total` (after discounts) and `shipping_total` without tax whether or
    not the store enters prices with tax (`prices_include_tax` says how they were entered,
    and is where the taxes went: in `total_tax`, never inside the totals), so the net unit
    price is the line's total over its quantity and lines + shipping + tax = total for an
    order without fees. Lines without a SKU are kept with an empty one, so that the order's
    own item fails naming them instead of the order arriving short."""
    billing = order.get("billing") or {}
    customer_id = order.get("customer_id") or 0
    email = str(billing.get("email") or "")
    code = str(customer_id) if customer_id else (f"guest:{email.lower()}" if email else "")
    name = " ".join(p for p in (billing.get("first_name"), billing.get("last_name")) if p)
    return {
        "remote_id": str(order["id"]),
        "number": str(order.get("number") or order["id"]),
        "currency": order["currency"],
        "customer": {
            "code": code,
            "email": email or None,
            "name": name,
            "company": str(billing.get("company") or ""),
            "phone": str(billing.get("phone") or ""),
        }
        if code
        else None,
        "lines": [_line(li) for li in order.get("line_items") or []],
        "shipping_address": _address(order.get("shipping")),
        "billing_address": _address(billing),
        "shipping": str(_dec(order.get("shipping_total") or "0")),
        "tax": str(_dec(order.get("total_tax") or "0")),
        "total": str(_dec(order["total"])),
    }


def _line(line: Mapping[str, Any]) -> dict[str, Any]:
    quantity = line.get("quantity")
    if not isinstance(quantity, int) or isinstance(quantity, bool):
        # WooCommerce stores whole units; anything else (1.5, "2") must not be rounded
        # into an order nobody placed.
        raise PermanentError(
            f"woocommerce: line {str(line.get('sku'))[:60]}: quantity {str(quantity)[:20]!r}"
            " is not a whole number"
        )
    net = _dec(line["total"]) / quantity if quantity > 0 else Decimal(0)
    return {
        "sku": str(line.get("sku") or ""),
        "quantity": quantity,
        "price": unit_price(net),
        "title": str(line.get("name") or ""),
    }


def _dec(text: Any) -> Decimal:
    try:
        return Decimal(str(text))
    except InvalidOperation:
        raise PermanentError(f"woocommerce: unreadable amount {str(text)[:40]!r}") from None


def _address(address: Mapping[str, Any] | None) -> dict[str, str] | None:
    if not address or not any(address.get(k) for k in ("address_1", "city", "postcode")):
        return None
    name = " ".join(p for p in (address.get("first_name"), address.get("last_name")) if p)
    fields = {
        "company": "company",
        "line1": "address_1",
        "line2": "address_2",
        "city": "city",
        "region": "state",
        "postcode": "postcode",
        "country": "country",
        "phone": "phone",
    }
    return {"name": name} | {
        ours: str(address.get(theirs) or "") for ours, theirs in fields.items()
    }


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")


# ---------------------------------------------------------------------- webhooks


def signature(secret: str, body: bytes) -> str:
    """X-WC-Webhook-Signature: base64 of HMAC-SHA256 of the raw body, keyed with the
    webhook's secret (WC_Webhook::generate_signature; sha256 is WooCommerce's default)."""
    return hmac_sha256_base64(secret, body)


def read_webhook(
    topic: str,
    body: bytes,
    headers: Mapping[str, str],
    secret: str,
    settings: Mapping[str, Any],
) -> Delivery:
    """A webhook WooCommerce posted for this connection, checked: signed with the secret
    the merchant gave the webhook (the connection's webhook_secret), on a topic taken. Its
    body only says whether the order is one to take and names the delivery; the order
    itself is read by id when the item runs.

    The ping WooCommerce posts when a webhook is saved (form body `webhook_id=<id>`, no
    signature) must be answered 2xx or the merchant cannot save the webhook: it is
    accepted with nothing queued, after the work of a signature check."""
    given = _header(headers, "x-wc-webhook-signature")
    if given is None and _PING.fullmatch(body):
        dummy_check(body)
        # Unsigned: queues nothing, charged to its sender's address, never the connection.
        webhook_id = body.split(b"=", 1)[1].decode()
        return Delivery(f"woocommerce:ping:{webhook_id}", "orders", (), unsigned=True)
    if not hmac.compare_digest(signature(secret, body).encode(), (given or "").encode()):
        raise Unsigned()
    if topic not in WEBHOOK_TOPICS:
        raise InvalidInput(
            f"woocommerce webhook topic {topic[:60]!r} is not taken; use"
            f" {', '.join(sorted(WEBHOOK_TOPICS))} in the delivery URL"
        )
    if _header(headers, "x-wc-webhook-topic") not in (None, topic.replace("/", ".")):
        raise InvalidInput("the X-WC-Webhook-Topic header does not match the address's topic")
    order = _webhook_order(body)
    number = order.get("id")
    if not isinstance(number, int) or isinstance(number, bool) or not 0 < number <= _LARGEST_ID:
        raise InvalidInput("the webhook's order has no id (a positive integer)")
    # Named by what the signature covers, the body: X-WC-Webhook-Delivery-ID is fresh per
    # delivery and unsigned, so a captured body re-sent is the same delivery.
    message_id = f"woocommerce:{number}:{_modified(order)}"
    status = order.get("status")
    if status != TAKEN:
        return Delivery(message_id, "orders", ())
    return Delivery(message_id, "orders", (str(number),))


def _header(headers: Mapping[str, str], name: str) -> str | None:
    found = headers.get(name)
    if found is None:
        found = next((v for k, v in headers.items() if k.lower() == name), None)
    return found


def _webhook_order(body: bytes) -> dict[str, Any]:
    try:
        order = json.loads(body)
    except (ValueError, RecursionError):
        raise InvalidInput("the webhook's body is not JSON (an order)") from None
    if not isinstance(order, dict):
        raise InvalidInput("the webhook's body is not a JSON object (an order)")
    return order


def _modified(order: Mapping[str, Any]) -> str:
    text = order.get("date_modified_gmt")
    try:
        if not isinstance(text, str) or len(text) > 40:
            raise ValueError(text)
        return _iso(instant(text, "woocommerce"))
    except (ValueError, OverflowError, PermanentError):
        raise InvalidInput(
            "the webhook's order has no date_modified_gmt (an ISO 8601 time)"
        ) from None


def ping_body(webhook_id: int) -> bytes:
    """The ping's form body (for tests and the double)."""
    return f"webhook_id={webhook_id}".encode()


__all__ = [
    "WEBHOOK_TOPICS",
    "fetch_orders",
    "get_order",
    "read_webhook",
    "refusal",
    "signature",
    "to_record",
]
