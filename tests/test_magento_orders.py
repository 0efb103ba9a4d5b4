"""The `magento` connector's orders in and shipments back against the Magento double over
real HTTP (issue 19): the poll of GET /V1/orders on updated_at (overlap window applied when
reading, keyset pages, total_count), which orders are taken, the mapping to Stockyard's
order record (a configurable's two items as one line, prices net of tax and discount),
get_order, and POST /V1/order/{id}/ship with items and tracks, repeats harmless. Every
request the connector sent was allowed by Adobe's OpenAPI document and every answer the
double gave was one the document allows.

Skipped when the document is not installed (bash scripts/install-magento-openapi.sh).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from stockyard.catalog.models import Order, parse
from stockyard.connectors.base import OrderDeclined
from stockyard.errors import PermanentError, TransientError
from tests.support import magento_contract as contract

pytestmark = pytest.mark.skipif(not contract.installed(), reason=contract.skip_reason())

from stockyard.connectors.magento import MagentoConnector  # noqa: E402
from stockyard.connectors.magento import orders as mo  # noqa: E402
from tests.support.magento_double import TOKEN, MagentoDouble, Served, kept_contract, serve  # noqa: E402

KEY = "item-19-mg-orders"
SINCE = "2026-11-29 11:30:00"  # before every order the double makes
NOW = dt.datetime(2026, 11, 29, 12, 30, tzinfo=dt.UTC)  # after the double's orders


@pytest.fixture
def served() -> Iterator[Served]:
    with serve(MagentoDouble()) as s:
        yield s


@pytest.fixture
def shop(served: Served) -> Iterator[MagentoConnector]:
    c = MagentoConnector({"url": served.url, "access_token": TOKEN})
    yield c
    c.close()
    double = served.double
    assert double.received
    kept_contract(double)
    assert {r.authorization for r in double.received} == {f"Bearer {TOKEN}"}


def tee_line(size: str = "M", qty: int = 2, **more: Any) -> dict[str, Any]:
    return {"sku": f"TEE-{size}", "qty": qty, "price": 20.0, "configurable": "TEE"} | more


def mug_line(qty: float = 1, **more: Any) -> dict[str, Any]:
    return {"sku": "MUG-1", "qty": qty, "price": 8.5} | more


def order_calls(s: Served) -> list[Any]:
    return s.double.requests("GET", "/V1/orders")


def ship_calls(s: Served) -> list[Any]:
    return s.double.requests("POST", "/V1/order/{orderId}/ship")


# ---------------------------------------------------------------------- the poll


def test_the_poll_takes_orders_to_ship_and_leaves_the_others(
    served: Served, shop: MagentoConnector
) -> None:
    d = served.double
    taken = [
        d.add_order([mug_line()]),  # processing: invoiced
        d.add_order([mug_line()], state="new", method="cashondelivery", paid=False),
        d.add_order([mug_line()], state="new", method="checkmo", paid=True),  # paid, not invoiced
    ]
    for state, method, paid in [
        ("new", "checkmo", False),  # awaiting a bank transfer / cheque
        ("new", "banktransfer", False),
        ("pending_payment", "paypal_express", False),
        ("payment_review", "braintree", True),
        ("holded", "checkmo", True),
        ("canceled", "checkmo", False),
        ("complete", "checkmo", True),
    ]:
        d.add_order([mug_line()], state=state, method=method, paid=paid)
    d.add_order([mug_line()])["status"] = "fraud"  # "Suspected Fraud" in state processing
    d.add_order([mug_line(shipped=1)])  # processing, shipped by the merchant
    d.add_order([mug_line(canceled=1)])  # nothing left ordered
    d.add_order([mug_line(virtual=True)])  # nothing to ship

    now = NOW
    page = mo.fetch_orders(shop.api, SINCE, shop.config.unpaid_methods, now=now)

    assert [r["remote_id"] for r in page.records] == [str(o["entity_id"]) for o in taken]
    newest = max(o["updated_at"] for o in d.orders.values())
    assert page.cursor == newest
    (call,) = order_calls(served)
    assert dict(call.query) == {
        "searchCriteria[filterGroups][0][filters][0][field]": "updated_at",
        "searchCriteria[filterGroups][0][filters][0][value]": "2026-11-29 11:28:00",
        "searchCriteria[filterGroups][0][filters][0][conditionType]": "gteq",
        # Bounded by the pull's start: an order dated ahead waits for its time.
        "searchCriteria[filterGroups][1][filters][0][field]": "updated_at",
        "searchCriteria[filterGroups][1][filters][0][value]": mo._text(now),
        "searchCriteria[filterGroups][1][filters][0][conditionType]": "lteq",
        "searchCriteria[sortOrders][0][field]": "updated_at",
        "searchCriteria[sortOrders][0][direction]": "ASC",
        "searchCriteria[sortOrders][1][field]": "entity_id",
        "searchCriteria[sortOrders][1][direction]": "ASC",
        "searchCriteria[pageSize]": str(mo.PAGE_SIZE),
        "searchCriteria[currentPage]": "1",
    }


def test_the_overlap_is_applied_when_reading_never_stored(
    served: Served, shop: MagentoConnector
) -> None:
    d = served.double
    first = d.add_order([mug_line()])
    cursor = shop.fetch_orders(SINCE).cursor
    assert cursor == first["updated_at"]

    # Nothing new: the same order read again (inside the overlap), the cursor unchanged.
    again = shop.fetch_orders(cursor)
    assert [r["remote_id"] for r in again.records] == [str(first["entity_id"])]
    assert again.cursor == cursor
    since = dt.datetime.fromisoformat(str(cursor)) - mo.OVERLAP
    assert dict(order_calls(served)[-1].query)[
        "searchCriteria[filterGroups][0][filters][0][value]"
    ] == since.strftime("%Y-%m-%d %H:%M:%S")

    # An order changed later comes in with its latest state; the cursor moves to it.
    second = d.add_order([mug_line(qty=3)])
    later = shop.fetch_orders(cursor)
    assert [r["remote_id"] for r in later.records][-1] == str(second["entity_id"])
    assert later.cursor == second["updated_at"]


def test_a_first_pull_looks_one_day_back() -> None:
    at = mo._Position.load(None, dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.UTC))
    assert mo._text(at.since) == "2026-11-28 12:00:00"
    assert at.newest - at.since == mo.OVERLAP


def test_a_backlog_is_paged_by_keyset_and_total_count_and_goes_on_next_pull(
    served: Served, shop: MagentoConnector
) -> None:
    d = served.double
    made = [d.add_order([mug_line()]) for _ in range(mo.PAGE_SIZE * mo.PAGES_PER_PULL + 20)]
    # Two orders share one second: the keyset (updated_at, entity_id) keeps both.
    made[mo.PAGE_SIZE]["updated_at"] = made[mo.PAGE_SIZE - 1]["updated_at"]

    first = shop.fetch_orders(SINCE)
    assert len(first.records) == mo.PAGE_SIZE * mo.PAGES_PER_PULL
    assert len(order_calls(served)) == mo.PAGES_PER_PULL
    assert first.cursor is not None
    position = json.loads(first.cursor)
    assert position["after"][1] == made[mo.PAGE_SIZE * mo.PAGES_PER_PULL - 1]["entity_id"]
    # Each page after the first reads strictly after the last order of the one before.
    second_page = dict(order_calls(served)[1].query)
    assert second_page["searchCriteria[filterGroups][1][filters][1][field]"] == "entity_id"
    assert second_page["searchCriteria[filterGroups][1][filters][1][conditionType]"] == "gt"

    rest = shop.fetch_orders(first.cursor)
    assert len(rest.records) == 20
    assert len(order_calls(served)) == mo.PAGES_PER_PULL + 1
    seen = [r["remote_id"] for r in first.records + rest.records]
    assert sorted(seen, key=int) == [str(o["entity_id"]) for o in made]
    assert rest.cursor == made[-1]["updated_at"]  # the backlog read: a plain time again


def test_an_unreadable_cursor_is_permanent(shop: MagentoConnector) -> None:
    with pytest.raises(PermanentError, match="unreadable orders cursor"):
        shop.fetch_orders('{"since": "yesterday"}')
    shop.fetch_orders(SINCE)  # the fixture wants one request


def test_an_order_dated_ahead_waits_for_its_time_and_skips_no_later_order(
    served: Served, shop: MagentoConnector
) -> None:
    d = served.double
    first = d.add_order([mug_line()])
    # A clock set ahead on the store's side (local time written as UTC): 8 h ahead.
    ahead = d.add_order([mug_line()], updated_at="2026-11-29 20:00:00")
    page = mo.fetch_orders(shop.api, SINCE, now=NOW)
    assert [r["remote_id"] for r in page.records] == [str(first["entity_id"])]
    assert page.cursor == first["updated_at"]

    later = d.add_order([mug_line()])  # placed a minute later, at the store's real time
    soon = NOW + dt.timedelta(minutes=1)
    second = mo.fetch_orders(shop.api, page.cursor, now=soon)
    assert str(later["entity_id"]) in [r["remote_id"] for r in second.records]
    assert dt.datetime.fromisoformat(f"{second.cursor}+00:00") <= soon

    # Its time come, the order dated ahead is read like any other.
    then = dt.datetime(2026, 11, 29, 20, 1, tzinfo=dt.UTC)
    last = mo.fetch_orders(shop.api, second.cursor, now=then)
    assert str(ahead["entity_id"]) in [r["remote_id"] for r in last.records]
    assert last.cursor == ahead["updated_at"]


def test_an_order_the_mapping_cannot_read_fails_alone_and_the_poll_goes_on(
    served: Served, shop: MagentoConnector
) -> None:
    d = served.double
    half = d.add_order([mug_line(qty=1.5)])  # a weighed good sold by the kilo
    odd_time = d.add_order([mug_line()])
    odd_time["updated_at"] = "2026-11-29 12:00:99"
    good = d.add_order([mug_line()])

    page = mo.fetch_orders(shop.api, SINCE, now=NOW)

    # One the mapping cannot read comes as its id alone: its own sync_order reads it again
    # (get_order) and fails with the reason. The others are taken (an unreadable time
    # only leaves the cursor alone) and the cursor moves on.
    by_id = {r["remote_id"]: r for r in page.records}
    assert by_id[str(half["entity_id"])] == {"remote_id": str(half["entity_id"])}
    assert by_id[str(odd_time["entity_id"])]["lines"][0]["sku"] == "MUG-1"
    assert by_id[str(good["entity_id"])]["lines"][0]["sku"] == "MUG-1"
    assert page.cursor == good["updated_at"]
    with pytest.raises(PermanentError) as refused:
        shop.get_order(str(half["entity_id"]))
    text = str(refused.value)
    assert f"magento order {half['increment_id']}" in text
    assert "MUG-1: qty_ordered 1.5 is not a whole number" in text
    assert "whole units" in text


def test_an_order_of_the_wrong_shape_is_a_clear_permanent_error(
    served: Served, shop: MagentoConnector
) -> None:
    order = served.double.add_order([mug_line()])
    served.double.faults.append((200, {**order, "items": ["not an item"]}))
    with pytest.raises(PermanentError, match=f"magento order {order['increment_id']}"):
        shop.get_order(str(order["entity_id"]))
    served.double.faults.append((200, "an order"))
    with pytest.raises(PermanentError, match="not an object"):
        shop.get_order(str(order["entity_id"]))
    served.double.faults.append((200, {"items": "none", "total_count": 1}))
    with pytest.raises(PermanentError, match="GET /V1/orders"):
        shop.fetch_orders(SINCE)


# ---------------------------------------------------------------------- the mapping


def test_the_mapping_nets_tax_and_discounts_and_takes_a_configurable_once(
    served: Served, shop: MagentoConnector
) -> None:
    # Prices include 20% tax in this store; 10% off on the tee's price with tax:
    # 2 x 24.00 = 48.00 with tax, 4.80 off of which 0.80 is tax given back.
    order = served.double.add_order(
        [
            tee_line(qty=2, tax=7.20, discount=4.80, compensation=0.80),
            mug_line(qty=3, tax=5.10),
        ],
        shipping=5.0,
        shipping_tax=1.0,
    )
    record = shop.get_order(str(order["entity_id"]))

    assert [(line["sku"], line["quantity"], line["price"]) for line in record["lines"]] == [
        ("TEE-M", 2, "18.00"),  # (40.00 - 4.80 + 0.80) / 2
        ("MUG-1", 3, "8.50"),
    ]
    assert record["shipping"] == "5.0"
    assert Decimal(record["tax"]) == Decimal("13.30")
    lines_total = sum(Decimal(line["price"]) * line["quantity"] for line in record["lines"])
    assert lines_total + Decimal(record["shipping"]) + Decimal(record["tax"]) == Decimal(
        record["total"]
    )
    assert record["number"] == order["increment_id"]
    assert record["currency"] == "EUR"
    assert record["customer"] == {
        "code": "7",
        "email": "ada@example.com",
        "name": "Ada Lovelace",
        "phone": "+33 4 00 00 00 00",
    }
    assert record["shipping_address"]["line1"] == "2 quai Saint-Antoine"
    assert record["shipping_address"]["line2"] == "Bât. B"
    assert record["billing_address"]["line1"] == "1 rue de la Paix"
    assert record["shipping_address"]["country"] == "FR"
    assert record["shipping_address"]["region"] == "69"
    parse(Order, record, "order")  # the order flow takes it


def test_a_guest_is_known_by_email_and_cancelled_units_are_not_ordered(
    served: Served, shop: MagentoConnector
) -> None:
    order = served.double.add_order([mug_line(qty=4, canceled=1)], customer_id=None)
    record = shop.get_order(str(order["entity_id"]))
    assert record["customer"]["code"] == "guest:ada@example.com"
    assert [(line["sku"], line["quantity"]) for line in record["lines"]] == [("MUG-1", 3)]


def test_get_order_declines_orders_not_to_fulfil(served: Served, shop: MagentoConnector) -> None:
    unpaid = served.double.add_order([mug_line()], state="new", paid=False)
    held = served.double.add_order([mug_line()], state="holded")
    with pytest.raises(OrderDeclined, match="awaiting payment"):
        shop.get_order(str(unpaid["entity_id"]))
    with pytest.raises(OrderDeclined, match="state holded"):
        shop.get_order(str(held["entity_id"]))


def test_get_order_of_no_order(served: Served, shop: MagentoConnector) -> None:
    with pytest.raises(PermanentError, match="magento has no order 999"):
        shop.get_order("999")
    before = len(served.double.received)
    with pytest.raises(PermanentError, match="is not an order id"):
        shop.get_order("../products")
    assert len(served.double.received) == before


# ---------------------------------------------------------------------- shipments


def complete(**more: Any) -> dict[str, Any]:
    return {"id": "ful-1", "state": "complete"} | more


def test_a_whole_order_ships_with_its_track_and_a_repeat_sends_nothing(
    served: Served, shop: MagentoConnector
) -> None:
    d = served.double
    order = d.add_order([tee_line(qty=2), mug_line(qty=1)])
    oid = str(order["entity_id"])
    tracking = {"carrier": "UPS", "number": "1Z999", "url": "https://ups.example/1Z999"}

    shop.push_fulfillment(oid, complete(tracking=tracking), KEY)

    (call,) = ship_calls(served)
    parent = next(i for i in order["items"] if i["product_type"] == "configurable")
    mug = next(i for i in order["items"] if i["sku"] == "MUG-1")
    assert call.body == {
        "items": [
            {"order_item_id": parent["item_id"], "qty": 2},
            {"order_item_id": mug["item_id"], "qty": 1},
        ],
        "notify": True,
        "tracks": [{"track_number": "1Z999", "title": "UPS", "carrier_code": "ups"}],
        "comment": {"comment": "stockyard fulfillment ful-1", "is_visible_on_front": 0},
        "appendComment": True,
    }
    assert order["state"] == "complete"
    assert all(i["qty_shipped"] == i["qty_ordered"] for i in order["items"])

    shop.push_fulfillment(oid, complete(tracking=tracking), KEY)
    assert len(ship_calls(served)) == 1
    assert len(d.shipments) == 1


def test_a_partial_shipment_repeated_after_a_lost_answer_ships_once(
    served: Served, shop: MagentoConnector
) -> None:
    d = served.double
    order = d.add_order([tee_line(qty=3), mug_line(qty=2)])
    oid = str(order["entity_id"])
    first = complete(lines=[{"sku": "TEE-M", "quantity": 1}], tracking={"number": "X1"})

    d.lost.append(("POST", "/V1/order/{orderId}/ship", 503, {"message": "Service Unavailable"}))
    with pytest.raises(TransientError):
        shop.push_fulfillment(oid, first, KEY)
    assert len(d.shipments) == 1  # Magento made it; the answer was lost

    shop.push_fulfillment(oid, first, KEY)  # the retry finds its shipment by the comment
    assert len(d.shipments) == 1
    assert d.shipments[0]["tracks"][0]["carrier_code"] == "custom"
    assert d.shipments[0]["tracks"][0]["title"] == "Tracking"

    # Another fulfillment ships the rest of what it names, once.
    second = complete(id="ful-2", lines=[{"sku": "TEE-M", "quantity": 2}])
    shop.push_fulfillment(oid, second, KEY)
    shop.push_fulfillment(oid, second, KEY)
    assert len(d.shipments) == 2
    assert d.shipments[1]["items"][0]["qty"] == 2
    assert order["state"] == "processing"  # the mugs are still to ship
    assert [c["comment"] for s in d.shipments for c in s["comments"]] == [
        "stockyard fulfillment ful-1",
        "stockyard fulfillment ful-2",
    ]


def test_shipping_more_than_is_left_ships_what_is_left(
    served: Served, shop: MagentoConnector
) -> None:
    order = served.double.add_order([mug_line(qty=2, shipped=1), tee_line(qty=1)])
    shop.push_fulfillment(
        str(order["entity_id"]), complete(lines=[{"sku": "MUG-1", "quantity": 2}]), KEY
    )
    (call,) = ship_calls(served)
    assert [i["qty"] for i in call.body["items"]] == [1]


def test_fulfillments_not_complete_change_nothing(served: Served, shop: MagentoConnector) -> None:
    order = served.double.add_order([mug_line()])
    for state in ("pending", "open", "cancelled"):
        shop.push_fulfillment(str(order["entity_id"]), {"id": "f", "state": state}, KEY)
    assert served.double.received == []
    shop.get_order(str(order["entity_id"]))  # the fixture wants one request


def test_a_shipment_stopped_before_anything_is_sent(served: Served, shop: MagentoConnector) -> None:
    d = served.double
    order = d.add_order([mug_line()])
    held = d.add_order([mug_line()], state="holded")
    with pytest.raises(PermanentError, match="no line with SKU NOPE"):
        shop.push_fulfillment(
            str(order["entity_id"]), complete(lines=[{"sku": "NOPE", "quantity": 1}]), KEY
        )
    with pytest.raises(PermanentError, match="fulfillment lines must be"):
        shop.push_fulfillment(str(order["entity_id"]), complete(lines=[{"sku": "MUG-1"}]), KEY)
    with pytest.raises(PermanentError, match="is holded"):
        shop.push_fulfillment(str(held["entity_id"]), complete(), KEY)
    assert ship_calls(served) == []


def test_magento_refusing_a_shipment_is_permanent_with_its_message(
    served: Served, shop: MagentoConnector
) -> None:
    order = served.double.add_order([mug_line()])
    served.double.faults.extend(
        [
            (200, order),  # the read of the order
            (200, {"items": [], "search_criteria": {"filter_groups": []}, "total_count": 0}),
            (
                400,
                {
                    "message": "Shipment Document Validation Error(s):\n%1",
                    "parameters": ["The order does not allow a shipment to be created."],
                },
            ),
        ]
    )
    with pytest.raises(PermanentError, match="does not allow a shipment"):
        shop.push_fulfillment(str(order["entity_id"]), complete(), KEY)
