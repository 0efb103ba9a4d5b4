"""The sapb1 connector's review (issue 20): a template item sharing its code with its group,
long lists read over several pulls, the first fulfilment pull bounded, prices kept to the
catalog's four decimals, a second change in the same second, B1's clock going back an hour,
orders cancelled or closed in B1, a double as strict as the Service Layer, and refusals
inside $batch."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pytest

from stockyard.catalog.models import Customer, FulfillmentUpdate, Product
from stockyard.connectors.sapb1 import SapB1Connector
from stockyard.errors import PermanentError
from tests.support import sapb1
from tests.support.sapb1 import connect, mug_shop, order
from tests.support.sapb1_double import SapB1Double, Served

served = sapb1.served  # the shared fixture


def later(c: SapB1Connector, hours: float = 2) -> None:
    """The connector's clock moved on past full_pull_every (one hour by default)."""
    c.clock = lambda: time.time() + hours * 3600


def codes(records: list[dict[str, Any]]) -> list[str]:
    return [r["code"] for r in records]


# ------------------------------------------------------------- 1. template items


def test_a_template_item_joins_its_group_and_no_page_holds_a_code_twice(served: Served) -> None:
    d = served.double
    d.add_item("TEE", "Tee (template)", {1: 0.0}, SalesItem="tNO")
    for size in ("S", "M"):
        d.add_item(f"TEE-{size}", f"Tee - {size}", {1: 19.9}, U_ParentCode="TEE", U_Size=size)
    d.add_item("MUG", "Mug", {1: 12.5})
    c = connect(served, parent_field="U_ParentCode", option_fields={"Size": "U_Size"})
    first = c.fetch_products(None)
    assert sorted(codes(first.records)) == ["MUG", "TEE"]
    tee = next(r for r in first.records if r["code"] == "TEE")
    assert tee["active"] is True
    assert sorted(v["sku"] for v in tee["variants"]) == ["TEE-M", "TEE-S"]  # not the template
    # Only the template changes: its whole group comes, never the template alone.
    d.tick(120)
    d.set_price("TEE", 1, 1.0)
    (again,) = c.fetch_products(first.cursor).records
    assert again["code"] == "TEE" and again["active"] is True
    assert sorted(v["sku"] for v in again["variants"]) == ["TEE-M", "TEE-S"]
    # A template that is a sales item is one of its group's variants, also when only a
    # child changed.
    d.tick(120)
    d.items["TEE"]["SalesItem"] = "tYES"
    d.set_price("TEE-S", 1, 18.0)
    third = c.fetch_products(first.cursor)
    (tee,) = third.records
    assert sorted(v["sku"] for v in tee["variants"]) == ["TEE", "TEE-M", "TEE-S"]
    for page in (first, third):
        assert len(codes(page.records)) == len(set(codes(page.records)))
        for record in page.records:
            Product.model_validate(record)


# ------------------------------------------------------- 2. long lists, fulfilments


def test_a_long_list_is_read_over_several_pulls_not_refused(served: Served) -> None:
    d = served.double
    d.honour_prefer = False  # 20 rows a page
    for n in range(45):
        d.add_item(f"I{n:03}", f"Item {n}", {1: 1.0})
    c = connect(served, pages_per_pull=2)
    first = c.fetch_products(None)
    assert codes(first.records) == [f"I{n:03}" for n in range(40)]
    d.tick(30)
    d.set_price("I001", 1, 2.0)  # changed behind the scan: the next pull brings it
    second = c.fetch_products(first.cursor)
    assert codes(second.records) == [f"I{n:03}" for n in range(40, 45)]
    third = c.fetch_products(second.cursor)
    assert codes(third.records) == ["I001"]
    assert third.records[0]["variants"][0]["price"] == "2.00"
    assert c.fetch_products(third.cursor).records == []


def test_the_first_fulfillment_pull_reads_only_recent_delivery_notes(served: Served) -> None:
    d = served.double
    c = mug_shop(served, fulfillment_days=30)
    d.clock = dt.datetime.now().replace(microsecond=0) - dt.timedelta(days=90)
    c.create_order(order("OLD"), "k0")
    d.deliver(max(d.orders), tracking="OLD-TRACK")
    d.clock = dt.datetime.now().replace(microsecond=0)
    c.create_order(order("NEW", id=8, remote_id="VNEW"), "k1")
    recent = max(d.orders)
    d.deliver(recent, tracking="NEW-TRACK")
    page = c.fetch_fulfillments(None)
    assert [(r["remote_id"], r["state"]) for r in page.records] == [(str(recent), "complete")]
    reads = [r.path for r in d.received if r.path.startswith("DeliveryNotes")]
    assert reads and all("UpdateDate" in p for p in reads)


# ------------------------------------------------------------------- 3. money


def test_amounts_are_kept_to_the_catalogs_four_decimals(served: Served) -> None:
    d = served.double
    d.add_item("SCREW", "Screw", {1: 0.012345, 2: 0.00005})
    d.add_partner("C1", "Acme", CreditLimit=1234.567891)
    c = connect(served, price_lists={"wholesale": 2})
    (record,) = c.fetch_products(None).records
    variant = Product.model_validate(record).variants[0]
    assert str(variant.price) == "0.0123"
    assert str(variant.prices["wholesale"]) == "0.0001"  # half up
    (customer,) = c.fetch_customers(None).records
    assert str(Customer.model_validate(customer).credit_limit) == "1234.5679"


# ------------------------------------------------- 4, 5. same second, DST, full pulls


def test_a_second_change_in_the_same_second_arrives(served: Served) -> None:
    d = served.double
    d.add_partner("C1", "Acme", EmailAddress="old@acme.test")
    d.add_item("MUG", "Mug", {1: 12.5})
    c = connect(served)
    first_customers = c.fetch_customers(None)
    first_products = c.fetch_products(None)
    with d._lock:  # changed again within the second B1 already stamped
        d.partners["C1"]["EmailAddress"] = "new@acme.test"
        d.items["MUG"]["ItemPrices"][0]["Price"] = 13.0
    (customer,) = c.fetch_customers(first_customers.cursor).records
    assert customer["email"] == "new@acme.test"
    (product,) = c.fetch_products(first_products.cursor).records
    assert product["variants"][0]["price"] == "13.00"


def test_customers_and_fulfillments_have_periodic_full_pulls(served: Served) -> None:
    d = served.double
    d.add_partner("C1", "Acme", EmailAddress="old@acme.test")
    c = mug_shop(served, overlap=0)
    c.create_order(order(), "k")
    entry = max(d.orders)
    d.deliver(entry, tracking="T1", close=False)
    customers = c.fetch_customers(None)
    fulfillments = c.fetch_fulfillments(None)
    assert fulfillments.records[0]["tracking"] == {"number": "T1"}
    d.tick(600)  # later changes move both cursors past the first rows' stamps
    d.add_partner("C2", "Beta")
    c.create_order(order("1002", id=8, remote_id="V1002"), "k2")
    d.deliver(max(d.orders), tracking="T9")
    customers = c.fetch_customers(customers.cursor)
    fulfillments = c.fetch_fulfillments(fulfillments.cursor)
    assert len(customers.records) == len(fulfillments.records) == 1
    with d._lock:  # changes B1 did not stamp
        d.partners["C1"]["EmailAddress"] = "new@acme.test"
        next(iter(d.deliveries.values()))["TrackingNumber"] = "T2"
    assert c.fetch_customers(customers.cursor).records == []
    assert c.fetch_fulfillments(fulfillments.cursor).records == []
    later(c)
    # A full pull delivers every row it reads; the flows leave what did not change.
    full = {r["code"]: r for r in c.fetch_customers(customers.cursor).records}
    assert full["C1"]["email"] == "new@acme.test"
    updates = {r["remote_id"]: r for r in c.fetch_fulfillments(fulfillments.cursor).records}
    assert updates[str(entry)]["tracking"] == {"number": "T2"}


def test_a_change_stamped_in_the_hour_b1s_clock_repeats_arrives(served: Served) -> None:
    d = served.double
    d.clock = dt.datetime(2026, 10, 25, 2, 50, 0)  # CEST
    d.add_partner("C1", "Acme", EmailAddress="old@acme.test")
    c = connect(served)
    first = c.fetch_customers(None)
    d.clock = dt.datetime(2026, 10, 25, 2, 10, 0)  # 03:00 CEST -> 02:00 CET, 20 min later
    with d._lock:
        d.partners["C1"]["EmailAddress"] = "new@acme.test"
        d._stamp(d.partners["C1"])
    (customer,) = c.fetch_customers(first.cursor).records
    assert customer["email"] == "new@acme.test"


# --------------------------------------------------- 6. cancelled or closed orders


def test_an_order_cancelled_or_closed_in_b1_is_reported(served: Served) -> None:
    d = served.double
    c = mug_shop(served)
    c.create_order(order(), "k")
    cancelled = int(c.create_fulfillment(order(), "f"))
    c.create_order(order("1002", id=8, remote_id="V1002"), "k2")
    closed = int(c.create_fulfillment(order("1002", id=8, remote_id="V1002"), "f2"))
    d.deliver(closed, tracking="PART-1", close=False)  # partly delivered
    first = c.fetch_fulfillments(None)
    assert [(r["remote_id"], r["state"]) for r in first.records] == [(str(closed), "open")]
    d.tick(60)
    d.close_order(cancelled, cancel=True)
    d.close_order(closed)  # the rest will not be delivered: closed by hand
    page = c.fetch_fulfillments(first.cursor)
    updates = {r["remote_id"]: FulfillmentUpdate.model_validate(r) for r in page.records}
    assert updates[str(cancelled)].state == "cancelled"
    assert updates[str(cancelled)].tracking is None
    assert updates[str(closed)].state == "complete"
    tracking = updates[str(closed)].tracking
    assert tracking is not None and tracking.number == "PART-1"  # kept, not wiped
    assert c.fetch_fulfillments(page.cursor).records == []
    # An order B1 made itself (not Stockyard's) is not reported.
    with d._lock:
        entry = d._entry()
        d.orders[entry] = {"DocEntry": entry, "DocNum": entry, "CardCode": "WEB",
                           "Cancelled": "tYES", "DocumentStatus": "bost_Close",
                           "DocumentLines": []}  # fmt: skip
        d._stamp(d.orders[entry])
    assert c.fetch_fulfillments(page.cursor).records == []


# -------------------------------------------------------------- 7. a strict double


def test_the_double_refuses_python_names_and_wrong_types(served: Served) -> None:
    d = served.double
    d.add_item("MUG", "Mug", {1: 12.5})
    d.add_partner("WEB", "Web")
    c = connect(served)
    line = {"ItemCode": "MUG", "Quantity": 1}
    bodies = [
        {
            "CardCode": "WEB",
            "DocDueDate": "2026-03-02",
            "num_at_card": "1",
            "DocumentLines": [line],
        },
        {
            "CardCode": "WEB",
            "DocDueDate": "2026-03-02",
            "DocumentLines": [line | {"unit_price": 9}],
        },
        {
            "CardCode": "WEB",
            "DocDueDate": "2026-03-02",
            "DocumentLines": [line | {"Quantity": "1"}],
        },
    ]
    for body in bodies:
        with pytest.raises(PermanentError, match="HTTP 400"):
            c.api.call("POST", "Orders", "t", body=body)
    assert len(d.refused) == 3 and d.orders == {}
    d.refused.clear()


# ------------------------------------------------------------------ 8. $batch


def test_a_refusal_inside_batch_is_recorded(served: Served) -> None:
    d = served.double
    answers = connect(served).api.batch_get(["Orders(1)?$select=NoSuchField"], "t")
    assert answers[0][0] == 400
    assert len(d.refused) == 1 and "NoSuchField" in d.refused[0]
    d.refused.clear()


def test_an_order_missing_inside_batch_is_an_error(served: Served) -> None:
    d = served.double
    c = mug_shop(served)
    c.create_order(order(), "k")
    entry = max(d.orders)
    first = c.fetch_fulfillments(None)
    d.tick(60)
    d.deliver(entry, tracking="T1")
    with d._lock:
        del d.orders[entry]  # what B1 never does to an order with a delivery
    with pytest.raises(PermanentError, match=f"read order {entry}: HTTP 404"):
        c.fetch_fulfillments(first.cursor)


# ------------------------------------- 9. changes while a long pull is under way


def _many_items(d: SapB1Double, count: int) -> None:
    d.honour_prefer = False  # 20 rows a page
    for n in range(count):
        d.add_item(f"I{n:03}", f"Item {n}", {1: 1.0})


def _caught_up(served: Served, what: str, **extra: Any) -> tuple[SapB1Connector, str]:
    """A connector reading one page a pull, and the cursor of a connection that read
    everything already (pulls of all pages: nothing under way)."""
    cursor = getattr(connect(served, **extra), what)(None).cursor
    assert cursor.count('"scan": null') == cursor.count('"scan"')
    return connect(served, pages_per_pull=1, **extra), cursor


def test_a_price_change_during_a_periodic_full_pull_arrives_at_the_next_poll(
    served: Served,
) -> None:
    """A full pull of a list longer than pages_per_pull pages spans several polls; each of
    them also reads what B1 stamped since the cursor, so a change on an item the full pull
    has passed does not wait for its end."""
    d = served.double
    _many_items(d, 100)
    c, cursor = _caught_up(served, "fetch_products")
    later(c)  # an hour on: the periodic full pull starts
    d.tick(30)
    first = c.fetch_products(cursor)
    assert codes(first.records) == [f"I{n:03}" for n in range(20)]
    d.tick(30)
    d.set_price("I001", 1, 2.0)  # on an item the full pull has passed
    second = c.fetch_products(first.cursor)
    assert codes(second.records) == ["I001", *(f"I{n:03}" for n in range(20, 40))]
    assert second.records[0]["variants"][0]["price"] == "2.00"
    # The full pull goes on to its end; the change is not delivered again meanwhile.
    going, rest = second.cursor or "", list[str]()
    while '"scan": null' not in going:
        page = c.fetch_products(going)
        going, rest = page.cursor or "", [*rest, *codes(page.records)]
    assert rest == [f"I{n:03}" for n in range(40, 100)]
    assert c.fetch_products(going).records == []


def test_a_change_just_before_a_full_pull_arrives_with_its_first_poll(served: Served) -> None:
    d = served.double
    _many_items(d, 100)
    c, cursor = _caught_up(served, "fetch_products")
    d.tick(30)
    d.set_price("I090", 1, 3.0)  # far beyond the first page of the full pull
    later(c)
    first = c.fetch_products(cursor)
    assert codes(first.records) == [*(f"I{n:03}" for n in range(20)), "I090"]
    assert first.records[-1]["variants"][0]["price"] == "3.00"


def test_a_change_during_a_long_pass_over_the_overlap_window_arrives_at_the_next_poll(
    served: Served,
) -> None:
    """Not only a full pull: an incremental one that reads back `overlap` seconds over more
    than pages_per_pull pages (a mass update in B1) also reads the newest stamps each poll,
    and reads at most twice pages_per_pull pages a poll."""
    d = served.double
    _many_items(d, 100)
    c, cursor = _caught_up(served, "fetch_products")
    d.tick(30)
    for n in range(60):  # a mass update: three pages stamped inside the window
        d.set_price(f"I{n:03}", 1, 4.0)
    first = c.fetch_products(cursor)
    assert codes(first.records) == [f"I{n:03}" for n in range(20)]
    d.tick(30)
    d.set_price("I005", 1, 5.0)  # behind the pass
    before = len(d.received)
    second = c.fetch_products(first.cursor)
    assert "I005" in codes(second.records)
    assert len([r for r in d.received[before:] if r.path.startswith("Items")]) <= 2


def test_a_customer_changed_during_a_full_pull_arrives_at_the_next_poll(served: Served) -> None:
    d = served.double
    d.honour_prefer = False
    for n in range(60):
        d.add_partner(f"C{n:03}", f"Customer {n}", EmailAddress=f"c{n}@old.test")
    c, cursor = _caught_up(served, "fetch_customers")
    later(c)
    first = c.fetch_customers(cursor)
    assert codes(first.records) == [f"C{n:03}" for n in range(20)]
    d.tick(30)
    with d._lock:
        d.partners["C002"]["EmailAddress"] = "c2@new.test"
        d._stamp(d.partners["C002"])
    second = c.fetch_customers(first.cursor)
    changed = [r for r in second.records if r["code"] == "C002"]
    assert len(changed) == 1 and changed[0]["email"] == "c2@new.test"


def test_a_delivery_during_a_full_fulfillment_pull_arrives_at_the_next_poll(
    served: Served,
) -> None:
    d = served.double
    d.add_item("MUG", "Mug", {1: 12.5})
    d.add_partner("WEB", "Web")
    d.honour_prefer = False
    entries = []
    for n in range(45):
        connect(served, web_customer="WEB").create_order(
            order(f"{2000 + n}", id=100 + n, remote_id=f"V{n}"), f"k{n}"
        )
        entries.append(max(d.orders))
    for entry in entries[:-1]:
        d.deliver(entry, tracking=f"T{entry}")
    c, cursor = _caught_up(served, "fetch_fulfillments", web_customer="WEB")
    later(c)
    first = c.fetch_fulfillments(cursor)
    assert str(entries[-1]) not in [r["remote_id"] for r in first.records]
    d.tick(30)
    d.deliver(entries[-1], tracking="LAST")
    second = c.fetch_fulfillments(first.cursor)
    last = [r for r in second.records if r["remote_id"] == str(entries[-1])]
    assert last == [{"remote_id": str(entries[-1]), "state": "complete",
                     "tracking": {"number": "LAST"}}]  # fmt: skip
