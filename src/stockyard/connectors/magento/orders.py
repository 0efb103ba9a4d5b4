"""Magento orders in (issue 19): the poll of `GET /V1/orders` on `updated_at`, the read of
one order by id, and the mapping to Stockyard's order record (stockyard.catalog.models.Order).

Which orders Stockyard takes (the merchant fulfils them): state `processing` (Magento's
state once an order is invoiced, i.e. paid, or its card payment authorized), or state `new`
when it is paid or authorized after all, or paid on delivery (settings.unpaid_methods,
`cashondelivery` by default: shipped before it is paid); and at least one line still to
ship. `new` otherwise is an order awaiting an offline payment (bank transfer, check /
money order); `pending_payment` a redirect payment not finished; `payment_review` a payment
held for fraud review (as is status `fraud`, "Suspected Fraud", in any state); `holded`,
`complete`, `closed` and `canceled` are the merchant's or done. Any other order is left
alone by the poll; one read by id is an OrderDeclined.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from stockyard.connectors.base import OrderDeclined, Page
from stockyard.connectors.magento.client import (
    MagentoClient,
    MagentoNotFound,
    is_number,
    obj,
    rows,
)
from stockyard.connectors.order_values import instant, unit_price
from stockyard.errors import PermanentError

# Re-read this much before the cursor: an order saved while a pull ran (its updated_at set
# before the pull's read, committed after) must not fall between two pulls. Orders read
# twice map to the same record, which the order flow queues once.
OVERLAP = dt.timedelta(seconds=120)
# A connection's first pull looks this far back, not at the store's whole history.
FIRST_LOOKBACK = dt.timedelta(days=1)
PAGE_SIZE = 50  # orders per GET /V1/orders (each carries its items and addresses)
PAGES_PER_PULL = 5  # a longer backlog goes on from a keyset cursor

TAKEN_STATES = frozenset({"processing", "new"})
# What reading an order Magento should not have sent raises: a PermanentError of the
# mapping's own, or the shape not being Magento's (a line that is no object, ...).
UNREADABLE = (PermanentError, LookupError, TypeError, ValueError, AttributeError)
_FMT = "%Y-%m-%d %H:%M:%S"  # Magento's updated_at: UTC, to the second

Obj = dict[str, Any]


# ------------------------------------------------------------------------- the poll


@dataclass(frozen=True, slots=True)
class _Position:
    """Where a pull stands. `newest` (the latest updated_at seen) is what the cursor keeps
    between pulls; the overlap is taken from it when a pull starts, never stored. `after`
    (updated_at, entity_id) is the keyset position while a backlog longer than one pull is
    read: the next pull goes on after it, inside the same `since`."""

    since: dt.datetime
    newest: dt.datetime
    after: tuple[str, int] | None = None

    def dump(self) -> str:
        if self.after is None:
            return _text(self.newest)
        return json.dumps(
            {"since": _text(self.since), "after": list(self.after), "newest": _text(self.newest)}
        )

    @classmethod
    def load(cls, cursor: str | None, now: dt.datetime) -> _Position:
        if not cursor:
            start = now - FIRST_LOOKBACK
            return cls(start, start + OVERLAP)
        try:
            if not cursor.startswith("{"):
                newest = instant(cursor, "magento")
                return cls(newest - OVERLAP, newest)
            value = json.loads(cursor)
            at, entity = value["after"]
            instant(at, "magento")
            return cls(
                instant(value["since"], "magento"),
                instant(value["newest"], "magento"),
                (str(at), int(entity)),
            )
        except (ValueError, KeyError, TypeError, PermanentError):
            raise PermanentError(f"magento: unreadable orders cursor {cursor[:80]!r}") from None


def _criteria(at: _Position, after: tuple[str, int] | None, until: str) -> dict[str, Any]:
    """searchCriteria of one page: since <= updated_at <= until (the pull's start: an
    order dated ahead by a wrong clock would move the cursor past orders still to come),
    sorted by (updated_at, entity_id); after a keyset position (a, id): updated_at >= a AND
    (updated_at > a OR entity_id > id), i.e. strictly after it, which Magento's groups
    (ANDed) of filters (ORed) can say."""
    groups: list[list[tuple[str, str, str]]]
    if after is None:
        groups = [[("updated_at", _text(at.since), "gteq")]]
    else:
        a, entity = after
        groups = [
            [("updated_at", a, "gteq")],
            [("updated_at", a, "gt"), ("entity_id", str(entity), "gt")],
        ]
    groups.append([("updated_at", until, "lteq")])
    params: dict[str, Any] = {}
    for g, filters in enumerate(groups):
        for f, (field, value, condition) in enumerate(filters):
            prefix = f"searchCriteria[filterGroups][{g}][filters][{f}]"
            params |= {
                f"{prefix}[field]": field,
                f"{prefix}[value]": value,
                f"{prefix}[conditionType]": condition,
            }
    for n, field in enumerate(("updated_at", "entity_id")):
        params |= {
            f"searchCriteria[sortOrders][{n}][field]": field,
            f"searchCriteria[sortOrders][{n}][direction]": "ASC",
        }
    # Keyset paging: always the first page after the position, so orders updated while
    # the pull pages (they move to the end) shift no page boundary over an unread order.
    params |= {"searchCriteria[pageSize]": PAGE_SIZE, "searchCriteria[currentPage]": 1}
    return params


def fetch_orders(
    api: MagentoClient,
    cursor: str | None,
    unpaid_methods: Iterable[str] = (),
    now: dt.datetime | None = None,
) -> Page:
    """Orders updated since `cursor` that the merchant should fulfil, oldest change first,
    each once (its latest state read). `total_count` (the orders matching, this page
    included) says whether more follow."""
    now = now or dt.datetime.now(dt.UTC)
    at = _Position.load(cursor, now)
    after, newest = at.after, at.newest
    found: dict[int, Obj] = {}
    for _ in range(PAGES_PER_PULL):
        answer = obj(api.get("V1/orders", _criteria(at, after, _text(now))), "GET /V1/orders")
        page = rows(answer.get("items"), "GET /V1/orders")
        keys = [_key(order) for order in page]
        for order, key in zip(page, keys, strict=True):
            entity = _entity(order)
            if entity is None:
                continue  # no id to name it by: nothing can be done with it
            if key is not None:
                newest = max(newest, min(instant(key[0], "magento"), now))
            found.pop(entity, None)
            found[entity] = order
        readable = [k for k in keys if k is not None]
        more = _count(answer) > len(page) and bool(readable)
        after = readable[-1] if more else None
        if after is None:
            break
    unpaid = frozenset(unpaid_methods)
    records = [r for r in (_taken(e, o, unpaid) for e, o in found.items()) if r is not None]
    return Page(records, _Position(at.since, newest, after).dump())


def _taken(entity: int, order: Obj, unpaid: frozenset[str]) -> Obj | None:
    """The order's record, None when it is not to be taken, or its id alone when it cannot
    be read: its sync_order reads it again by id (get_order) and fails with the reason,
    and the poll goes on."""
    try:
        return None if refusal(order, unpaid) is not None else to_record(order)
    except UNREADABLE:
        return {"remote_id": str(entity)}


def _entity(order: Obj) -> int | None:
    value = order.get("entity_id")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _key(order: Obj) -> tuple[str, int] | None:
    """(updated_at, entity_id) as the keyset reads them; None when either is unreadable."""
    entity = _entity(order)
    try:
        instant(order.get("updated_at"), "magento")
    except PermanentError:
        return None
    return None if entity is None else (str(order["updated_at"]), entity)


def _count(answer: Obj) -> int:
    value = answer.get("total_count")
    return value if isinstance(value, int) else 0


def get_order(api: MagentoClient, remote_id: str, unpaid_methods: Iterable[str] = ()) -> Obj:
    order = read_order(api, remote_id)
    name = order.get("increment_id") or remote_id
    try:
        why = refusal(order, frozenset(unpaid_methods))
        record = None if why is not None else to_record(order)
    except OrderDeclined:
        raise
    except UNREADABLE as exc:
        detail = str(exc).removeprefix("magento: ") if isinstance(exc, PermanentError) else ""
        raise PermanentError(
            f"magento order {name} cannot be taken: {detail or 'an answer of the wrong shape'}"
        ) from None
    if record is None:
        raise OrderDeclined(f"magento order {name} is not to be fulfilled: {why}")
    return record


def read_order(api: MagentoClient, remote_id: str) -> Obj:
    if not is_number(remote_id) or len(remote_id) > 10 or not 0 < int(remote_id) < 2**32:
        raise PermanentError(f"magento: {remote_id[:80]!r} is not an order id (entity_id)")
    try:
        answer = api.get(f"V1/orders/{int(remote_id)}")
    except MagentoNotFound:
        raise PermanentError(f"magento has no order {remote_id}") from None
    return obj(answer, "GET /V1/orders/{id}")


def refusal(order: Mapping[str, Any], unpaid_methods: frozenset[str]) -> str | None:
    """Why Stockyard leaves this order alone, or None to take it."""
    state = str(order.get("state") or "")
    if state not in TAKEN_STATES:
        return f"state {state or 'unknown'}"
    if order.get("status") == "fraud":  # "Suspected Fraud" can sit in state processing
        return "suspected fraud"
    if state == "new" and not _paid(order, unpaid_methods):
        return "state new, awaiting payment"
    if not any(left > 0 for _, _, left in shippable(order)):
        return "nothing left to ship"
    return None


def _paid(order: Mapping[str, Any], unpaid_methods: frozenset[str]) -> bool:
    payment = order.get("payment") or {}
    if payment.get("method") in unpaid_methods:
        return True
    due = _dec(order.get("grand_total"))
    covered = max(
        _dec(order.get("total_paid")),
        _dec(payment.get("amount_paid")),
        _dec(payment.get("amount_authorized")),
    )
    return due > 0 and covered >= due


# ---------------------------------------------------------------------- the lines


def lines(order: Mapping[str, Any]) -> list[Obj]:
    """The order's lines as sold, one per product: a configurable product's two items
    (the parent, of type configurable, carrying price, discount and tax; its child, with
    `parent_item_id`, the simple product) are one line with the child's SKU, taken from
    the parent item (whose own `sku` Magento sets to the child's) and the child's SKU where
    they differ. Other items with a parent (a bundle's parts) are left to their parent."""
    items: list[Obj] = list(order.get("items") or [])
    children: dict[Any, Obj] = {}
    for item in items:
        if item.get("parent_item_id"):
            children.setdefault(item["parent_item_id"], item)
    kept = []
    for item in items:
        if item.get("parent_item_id"):
            continue
        sku = item.get("sku") or ""
        child = children.get(item.get("item_id"))
        if item.get("product_type") == "configurable" and child and child.get("sku"):
            sku = child["sku"]
        kept.append(item | {"sku": sku})
    return kept


def _qty(value: Any, what: str) -> Decimal:
    number = _dec(value)
    if number != number.to_integral_value():
        raise PermanentError(
            f"magento: {what} {number} is not a whole number (Stockyard's order lines are"
            " whole units: enter this order in the ERP by hand)"
        )
    return number


def shippable(order: Mapping[str, Any]) -> list[tuple[Obj, int, int]]:
    """(line, quantity still ordered, quantity left to ship) per line, virtual items
    (nothing to ship) left out. Still ordered: less what was cancelled or refunded."""
    out = []
    for line in lines(order):
        if line.get("is_virtual"):
            continue
        sku = line.get("sku") or "(no SKU)"
        ordered = _qty(line.get("qty_ordered"), f"{sku}: qty_ordered")
        gone = _qty(line.get("qty_canceled"), f"{sku}: qty_canceled") + _qty(
            line.get("qty_refunded"), f"{sku}: qty_refunded"
        )
        kept = max(int(ordered - gone), 0)
        shipped = int(_qty(line.get("qty_shipped"), f"{sku}: qty_shipped"))
        out.append((line, kept, max(kept - shipped, 0)))
    return out


# ---------------------------------------------------------------------- the mapping


def to_record(order: Mapping[str, Any]) -> Obj:
    """The order as the order flow takes it: each line at its unit price net of tax and
    discount (row_total - discount_amount + discount_tax_compensation_amount, the
    discount's tax share given back when discounts apply to prices with tax), prorated to
    the quantity still ordered; shipping net of its discount; Magento's tax and grand
    total. Lines without a SKU keep an empty one, so the order's item fails naming them."""
    kept = []
    for line, quantity, _ in shippable(order):
        if quantity <= 0:
            continue
        ordered = _dec(line.get("qty_ordered")) or Decimal(quantity)
        net = (
            _dec(line.get("row_total"))
            - _dec(line.get("discount_amount"))
            + _dec(line.get("discount_tax_compensation_amount"))
        )
        kept.append(
            {
                "sku": line.get("sku") or "",
                "quantity": quantity,
                "price": unit_price(max(net, Decimal(0)) / ordered),
                "title": line.get("name") or "",
            }
        )
    shipping = (
        _dec(order.get("shipping_amount"))
        - _dec(order.get("shipping_discount_amount"))
        + _dec(order.get("shipping_discount_tax_compensation_amount"))
    )
    return {
        "remote_id": str(order["entity_id"]),
        "number": str(order.get("increment_id") or ""),
        "currency": order.get("order_currency_code") or order.get("base_currency_code"),
        "customer": _customer(order),
        "lines": kept,
        "shipping_address": _address(_shipping_address(order)),
        "billing_address": _address(order.get("billing_address")),
        "shipping": str(max(shipping, Decimal(0))),
        "tax": str(_dec(order.get("tax_amount"))),
        "total": str(_dec(order.get("grand_total"))),
    }


def _customer(order: Mapping[str, Any]) -> Obj | None:
    email = order.get("customer_email")
    number = order.get("customer_id")
    if number:
        code = str(number)
    elif email:
        code = f"guest:{str(email).lower()}"  # a guest: no account, known by the e-mail
    else:
        return None
    name = " ".join(
        str(p) for p in (order.get("customer_firstname"), order.get("customer_lastname")) if p
    )
    billing = order.get("billing_address") or {}
    return {
        "code": code,
        "email": email,
        "name": name,
        "phone": billing.get("telephone") or "",
    }


def _shipping_address(order: Mapping[str, Any]) -> Obj | None:
    """The shipping address lives in the first shipping assignment, not on the order."""
    extension = order.get("extension_attributes") or {}
    for assignment in extension.get("shipping_assignments") or []:
        address = (assignment.get("shipping") or {}).get("address")
        if address:
            return dict(address)
    return None


def _address(address: Mapping[str, Any] | None) -> dict[str, str] | None:
    if not address:
        return None
    street = [str(s) for s in address.get("street") or [] if s]
    name = " ".join(str(address[k]) for k in ("firstname", "lastname") if address.get(k))
    return {
        "name": name,
        "company": str(address.get("company") or ""),
        "line1": street[0] if street else "",
        "line2": ", ".join(street[1:]),
        "city": str(address.get("city") or ""),
        "region": str(address.get("region_code") or address.get("region") or ""),
        "postcode": str(address.get("postcode") or ""),
        "country": str(address.get("country_id") or ""),
        "phone": str(address.get("telephone") or ""),
    }


def _dec(value: Any) -> Decimal:
    if value is None or value == "":
        return Decimal(0)
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise PermanentError(f"magento: unreadable amount {str(value)[:40]!r}") from None
    if not number.is_finite():
        raise PermanentError(f"magento: unreadable amount {str(value)[:40]!r}")
    return number


def _text(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime(_FMT)


__all__ = ["fetch_orders", "get_order", "lines", "read_order", "refusal", "shippable", "to_record"]
