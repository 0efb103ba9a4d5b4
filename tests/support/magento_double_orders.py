"""The Magento double's sales side (issue 19): orders with their items, addresses and
payment, `GET /V1/orders` and `GET /V1/shipments` by searchCriteria (filters of one group
ORed, groups ANDed; conditionType eq, neq, gt, gteq, lt, lteq, in; several sort orders;
pageSize and currentPage; total_count of all matches), `GET /V1/orders/{id}`, and
`POST /V1/order/{id}/ship` the way Magento's ShipOrder validates it (items of the order,
no more than each has left, an order whose state allows a shipment; no items: everything
left), updating qty_shipped (a configurable's child item too), the order's state and
updated_at. Every answer goes through the contract check of magento_double.py.

Order set-up (`add_order`) computes Magento's amounts from lines given as unit prices
before tax: row_total, discount_amount (positive on items, negative on the order), tax,
discount_tax_compensation_amount, grand_total.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Obj = dict[str, Any]
SHIP_REFUSED = "Shipment Document Validation Error(s):\n%1"
_FILTER = re.compile(r"searchCriteria\[filterGroups\]\[(\d+)\]\[filters\]\[(\d+)\]\[(\w+)\]")
_SORT = re.compile(r"searchCriteria\[sortOrders\]\[(\d+)\]\[(\w+)\]")
_SHIPPABLE_STATES = ("new", "processing")


def _address(kind: str, street: list[str], **extra: Any) -> Obj:
    return {
        "address_type": kind,
        "firstname": "Ada",
        "lastname": "Lovelace",
        "company": "",
        "street": street,
        "city": "Lyon",
        "region": "Rhône",
        "region_code": "69",
        "postcode": "69002",
        "country_id": "FR",
        "telephone": "+33 4 00 00 00 00",
        "email": "ada@example.com",
    } | extra


class OrdersMixin:
    orders: dict[int, Obj]
    shipments: list[Obj]
    clock: int
    next_id: int

    def tick(self) -> str:
        """The double's clock: one second per change, as Magento's updated_at (UTC)."""
        self.clock += 1
        minutes, seconds = divmod(self.clock, 60)
        hours, minutes = divmod(minutes, 60)
        return f"2026-11-29 {12 + hours:02d}:{minutes:02d}:{seconds:02d}"

    def add_order(
        self,
        lines: list[Obj],
        *,
        state: str = "processing",
        method: str = "checkmo",
        paid: bool = True,
        shipping: float = 5.0,
        shipping_tax: float = 0.0,
        customer_id: int | None = 7,
        currency: str = "EUR",
        updated_at: str | None = None,
    ) -> Obj:
        """An order of `lines`: {sku, qty, price (unit, before tax), tax (row), discount
        (row), compensation (row), configurable (the parent's SKU: two items), virtual,
        canceled, refunded, shipped}."""
        entity = 1000 + len(self.orders) + 1
        items: list[Obj] = []
        subtotal = tax = discount = compensation = 0.0
        for line in lines:
            qty = float(line["qty"])
            row = round(line["price"] * qty, 4)
            item_tax = float(line.get("tax", 0))
            item_discount = float(line.get("discount", 0))
            item_comp = float(line.get("compensation", 0))
            subtotal += row
            tax += item_tax
            discount += item_discount
            compensation += item_comp
            item_id = self.next_id
            self.next_id += 1
            item: Obj = {
                "item_id": item_id,
                "order_id": entity,
                "sku": line["sku"],
                "name": line.get("name", line["sku"]),
                "product_type": "configurable" if line.get("configurable") else "simple",
                "is_virtual": 1 if line.get("virtual") else 0,
                "qty_ordered": qty,
                "qty_canceled": float(line.get("canceled", 0)),
                "qty_refunded": float(line.get("refunded", 0)),
                "qty_shipped": float(line.get("shipped", 0)),
                "qty_invoiced": qty if paid else 0.0,
                "price": line["price"],
                "base_price": line["price"],
                "original_price": line["price"],
                "row_total": row,
                "base_row_total": row,
                "tax_amount": item_tax,
                "discount_amount": item_discount,
                "discount_tax_compensation_amount": item_comp,
                "row_total_incl_tax": round(row + item_tax + item_comp, 4),
                "created_at": "2026-11-29 11:00:00",
                "updated_at": "2026-11-29 11:00:00",
            }
            items.append(item)
            if line.get("configurable"):
                # The child: the simple product, price 0, under its parent; the parent
                # item carries the child's SKU (as Magento sets it) and the amounts.
                child = {
                    "item_id": self.next_id,
                    "order_id": entity,
                    "parent_item_id": item_id,
                    "sku": line["sku"],
                    "name": line.get("name", line["sku"]),
                    "product_type": "simple",
                    "is_virtual": 0,
                    "qty_ordered": qty,
                    "qty_canceled": item["qty_canceled"],
                    "qty_refunded": item["qty_refunded"],
                    "qty_shipped": item["qty_shipped"],
                    "price": 0,
                    "row_total": 0,
                    "tax_amount": 0,
                    "discount_amount": 0,
                }
                self.next_id += 1
                items.append(child)
        grand = round(subtotal + shipping + tax + shipping_tax - discount + compensation, 4)
        order: Obj = {
            "entity_id": entity,
            "increment_id": f"{entity:09d}",
            "state": state,
            "status": {"new": "pending", "processing": "processing"}.get(state, state),
            "created_at": "2026-11-29 11:00:00",
            "updated_at": updated_at or self.tick(),
            "customer_id": customer_id,
            "customer_is_guest": 0 if customer_id else 1,
            "customer_email": "ada@example.com",
            "customer_firstname": "Ada",
            "customer_lastname": "Lovelace",
            "order_currency_code": currency,
            "base_currency_code": currency,
            "subtotal": subtotal,
            "shipping_amount": shipping,
            "shipping_tax_amount": shipping_tax,
            "shipping_discount_amount": 0,
            "tax_amount": round(tax + shipping_tax, 4),
            "discount_amount": -discount,
            "discount_tax_compensation_amount": compensation,
            "grand_total": grand,
            "base_grand_total": grand,
            "total_paid": grand if paid else 0,
            "total_due": 0 if paid else grand,
            "items": items,
            "billing_address": _address("billing", ["1 rue de la Paix"], entity_id=entity * 10),
            "payment": {
                "method": method,
                "account_status": "",
                "additional_information": [],
                "cc_last4": "",
                "amount_ordered": grand,
                "amount_paid": grand if paid else 0,
            },
            "extension_attributes": {
                "shipping_assignments": [
                    {
                        "shipping": {
                            "address": _address(
                                "shipping", ["2 quai Saint-Antoine", "Bât. B"], entity_id=entity
                            ),
                            "method": "flatrate_flatrate",
                        },
                        "items": [i for i in items if "parent_item_id" not in i],
                    }
                ]
            },
        }
        if customer_id is None:
            del order["customer_id"]  # Magento's REST output leaves null fields out
        self.orders[entity] = order
        return order

    # --------------------------------------------------------------------- handlers

    def _orders_execute(
        self,
        method: str,
        template: str,
        params: dict[str, str],
        query: list[tuple[str, str]],
        body: Any,
    ) -> tuple[int, Any] | None:
        match (method, template):
            case ("GET", "/V1/orders"):
                return _search(list(self.orders.values()), query)
            case ("GET", "/V1/orders/{id}"):
                order = self.orders.get(int(params["id"])) if params["id"].isdigit() else None
                if order is None:
                    return 404, {
                        "message": "The entity that was requested doesn't exist."
                        " Verify the entity and try again."
                    }
                return 200, order
            case ("GET", "/V1/shipments"):
                return _search(self.shipments, query)
            case ("POST", "/V1/order/{orderId}/ship"):
                return self._ship(int(params["orderId"]), body or {})
        return None

    def _ship(self, order_id: int, body: Obj) -> tuple[int, Any]:
        order = self.orders.get(order_id)
        if order is None:
            return 404, {
                "message": "The entity that was requested doesn't exist."
                " Verify the entity and try again."
            }
        items = {i["item_id"]: i for i in order["items"]}

        def left(item: Obj) -> float:
            return float(
                item["qty_ordered"]
                - item["qty_canceled"]
                - item["qty_refunded"]
                - item["qty_shipped"]
            )

        def refused(why: str) -> tuple[int, Any]:
            return 400, {"message": SHIP_REFUSED, "parameters": [why]}

        if order["state"] not in _SHIPPABLE_STATES:
            return refused("The order does not allow a shipment to be created.")
        asked = body.get("items") or [
            {"order_item_id": i["item_id"], "qty": left(i)}
            for i in order["items"]
            if "parent_item_id" not in i and not i["is_virtual"] and left(i) > 0
        ]
        for a in asked:
            item = items.get(a["order_item_id"])
            if item is None or "parent_item_id" in item:
                return refused(f"Order item {a['order_item_id']} is not an item of the order.")
            if a["qty"] > left(item):
                return refused("The shipment quantity is more than the quantity left to ship.")
        if not asked or not any(a["qty"] > 0 for a in asked):
            return refused("You can't create a shipment without products.")
        now = self.tick()
        shipment_id = 500 + len(self.shipments) + 1
        shipment_items = []
        for a in asked:
            item = items[a["order_item_id"]]
            item["qty_shipped"] += a["qty"]
            for child in order["items"]:
                if child.get("parent_item_id") == item["item_id"]:
                    child["qty_shipped"] += a["qty"]
            shipment_items.append(
                {
                    "order_item_id": item["item_id"],
                    "qty": a["qty"],
                    "sku": item["sku"],
                    "name": item["name"],
                    "price": item["price"],
                    "parent_id": shipment_id,
                }
            )
        comment = body.get("comment")
        self.shipments.append(
            {
                "entity_id": shipment_id,
                "order_id": order_id,
                "increment_id": f"{shipment_id:09d}",
                "created_at": now,
                "updated_at": now,
                "total_qty": sum(a["qty"] for a in asked),
                "email_sent": 1 if body.get("notify") else 0,
                "items": shipment_items,
                "tracks": [
                    t
                    | {
                        "order_id": order_id,
                        "parent_id": shipment_id,
                        "weight": 0,
                        "qty": 0,
                        "description": "",
                    }
                    for t in body.get("tracks") or []
                ],
                "comments": [
                    comment
                    | {
                        "parent_id": shipment_id,
                        "is_customer_notified": 1 if body.get("notify") else 0,
                    }
                ]
                if comment
                else [],
            }
        )
        parents = [i for i in order["items"] if "parent_item_id" not in i and not i["is_virtual"]]
        if all(left(i) <= 0 for i in parents):
            order["state"] = order["status"] = (
                "complete" if order["total_paid"] >= order["grand_total"] else "processing"
            )
        order["updated_at"] = now
        return 200, shipment_id


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b,
    "neq": lambda a, b: a != b,
    "gt": lambda a, b: a > b,
    "gteq": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "lteq": lambda a, b: a <= b,
}


def _value(record: Obj, name: str, given: str) -> tuple[Any, Any]:
    """The record's field and the filter's value, compared as MySQL would: numbers as
    numbers, anything else (dates as `YYYY-MM-DD HH:MM:SS`) as text."""
    value = record.get(name)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value), float(given)
    return str(value), given


def _matches(record: Obj, f: dict[str, str]) -> bool:
    if record.get(f["field"]) is None:
        return False
    condition = f.get("conditionType", "eq")
    if condition == "in":
        return any(
            _value(record, f["field"], v)[0] == _value(record, f["field"], v)[1]
            for v in f["value"].split(",")
        )
    compare = _COMPARE.get(condition)
    if compare is None:
        raise ValueError(condition)
    return compare(*_value(record, f["field"], f["value"]))


def _sort_key(name: str) -> Callable[[Obj], Any]:
    return lambda record: _value(record, name, "0")[0]


Matcher = Callable[[Obj, dict[str, str]], bool]


def _search(
    records: list[Obj], query: list[tuple[str, str]], matches: Matcher | None = None
) -> tuple[int, Any]:
    """Magento's searchCriteria over `records`: filter groups (AND of ORs, by `matches`,
    typed comparisons by default), sort orders, a page; the answer echoes the criteria.
    Shared by every list the double serves (orders, shipments, source items, products)."""
    matches = matches or _matches
    groups: dict[str, dict[str, dict[str, str]]] = {}
    sorts: dict[str, dict[str, str]] = {}
    page_size = current = None
    for name, value in query:
        if m := _FILTER.fullmatch(name):
            groups.setdefault(m[1], {}).setdefault(m[2], {})[m[3]] = value
        elif m := _SORT.fullmatch(name):
            sorts.setdefault(m[1], {})[m[2]] = value
        elif name == "searchCriteria[pageSize]":
            page_size = int(value)
        elif name == "searchCriteria[currentPage]":
            current = int(value)
    items = list(records)
    filter_groups = []
    try:
        for group in groups.values():
            filters = list(group.values())
            items = [r for r in items if any(matches(r, f) for f in filters)]
            filter_groups.append(
                {
                    "filters": [
                        {
                            "field": f["field"],
                            "value": f["value"],
                            "condition_type": f.get("conditionType", "eq"),
                        }
                        for f in filters
                    ]
                }
            )
    except (ValueError, KeyError) as e:
        return 400, {"message": f'Invalid condition type "{e}" in the search criteria.'}
    sort_orders = []
    for _, s in sorted(sorts.items(), key=lambda kv: int(kv[0]), reverse=True):
        field, descending = s["field"], s.get("direction", "ASC").upper() == "DESC"
        items.sort(key=_sort_key(field), reverse=descending)
    for _, s in sorted(sorts.items(), key=lambda kv: int(kv[0])):
        sort_orders.append({"field": s["field"], "direction": s.get("direction", "ASC")})
    total = len(items)
    if page_size:
        start = ((current or 1) - 1) * page_size
        items = items[start : start + page_size]
    criteria: Obj = {"filter_groups": filter_groups}
    if sort_orders:
        criteria["sort_orders"] = sort_orders
    if page_size:
        criteria["page_size"] = page_size
    if current:
        criteria["current_page"] = current
    return 200, {"items": items, "search_criteria": criteria, "total_count": total}
