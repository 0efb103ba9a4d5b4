"""Fulfillments out to the Shopify double over real HTTP (issue 18): the order's
fulfillment orders read with what is left per line, one fulfillmentCreate per location with
tracking company, number and URL; partial fulfillments by SKU; a repeated item is harmless;
a fulfillment order on hold (or cancelled with lines left) is a clear permanent error; and
every request the connector sent is valid against Shopify's own schema.

Skipped when the schema is not installed (bash scripts/install-shopify-schema.sh).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from stockyard.connectors.shopify import ShopifyConnector
from stockyard.errors import PermanentError
from tests.support import shopify_schema as schema

pytestmark = schema.needs_schema

from tests.support.shopify_double import TOKEN, Obj, Served, ShopifyDouble, serve  # noqa: E402
from tests.support.shopify_double_marks import split_quantity  # noqa: E402

KEY = "item-f00d"
TRACKING = {"carrier": "DHL", "number": "JD0146", "url": "https://dhl.example/t/JD0146"}


@pytest.fixture
def served() -> Iterator[Served]:
    with serve(ShopifyDouble(capacity=1e6, restore_rate=1e4)) as s:
        yield s


@pytest.fixture
def location(served: Served) -> Obj:
    return served.double.shop.add_location("Main")


def connector(s: Served, **settings: Any) -> ShopifyConnector:
    base = s.url.split("/admin/api/")[0]
    return ShopifyConnector(
        {"shop": "stockyard-test.myshopify.com", "access_token": TOKEN, "base_url": base} | settings
    )


@pytest.fixture
def shop(served: Served) -> Iterator[ShopifyConnector]:
    c = connector(served)
    yield c
    c.close()
    for r in served.double.received:
        assert r.token == TOKEN
        assert schema.validate(r.query or "", r.variables) == [], r.query


def order(s: Served, location: Obj, lines: list[tuple[str, int]] | None = None) -> Obj:
    wanted = lines or [("TEE-S", 2), ("TEE-M", 1)]
    return s.double.shop.add_order([(sku, qty, "19.90") for sku, qty in wanted], location)


def complete(tracking: dict[str, str] | None = TRACKING, **more: Any) -> dict[str, Any]:
    return {"id": "7", "state": "complete", "tracking": tracking} | more


def names(s: Served) -> list[str | None]:
    return [r.operation_name or _name(r.query) for r in s.double.received]


def _name(query: str | None) -> str | None:
    words = (query or "").split()
    return words[1].split("(")[0] if len(words) > 1 else None


def creates(s: Served) -> list[dict[str, Any]]:
    return [
        r.variables["fulfillment"]
        for r in s.double.received
        if r.variables and "fulfillment" in r.variables
    ]


def remaining(o: Obj) -> dict[str, int]:
    left: dict[str, int] = {}
    for fo in o["_fulfillment_orders"]:
        for line in fo["_lines"]:
            left[line["sku"]] = left.get(line["sku"], 0) + line["remainingQuantity"]
    return left


def test_the_whole_order_is_fulfilled_with_tracking(
    served: Served, shop: ShopifyConnector, location: Obj
) -> None:
    o = order(served, location)
    shop.push_fulfillment(o["id"], complete(), KEY)
    assert o["displayFulfillmentStatus"] == "FULFILLED"
    assert remaining(o) == {"TEE-S": 0, "TEE-M": 0}
    (made,) = o["_fulfillments"]
    assert made["trackingInfo"] == [
        {"company": "DHL", "number": "JD0146", "url": "https://dhl.example/t/JD0146"}
    ]
    (sent,) = creates(served)
    assert sent["notifyCustomer"] is False  # unless the connection says so
    # Whole fulfillment orders: no line listed (Shopify fulfils what remains).
    assert [g.get("fulfillmentOrderLineItems") for g in sent["lineItemsByFulfillmentOrder"]] == [
        None
    ]


def test_a_repeated_item_is_harmless(served: Served, shop: ShopifyConnector, location: Obj) -> None:
    o = order(served, location)
    shop.push_fulfillment(o["id"], complete(), KEY)
    shop.push_fulfillment(o["id"], complete(), KEY)
    assert len(o["_fulfillments"]) == 1
    assert len(creates(served)) == 1


def test_partial_fulfillments_by_sku_then_the_rest(
    served: Served, shop: ShopifyConnector, location: Obj
) -> None:
    o = order(served, location)
    first = {"carrier": "DHL", "number": "P1", "url": ""}
    shop.push_fulfillment(o["id"], complete(first, lines=[{"sku": "TEE-S", "quantity": 1}]), KEY)
    assert o["displayFulfillmentStatus"] == "PARTIALLY_FULFILLED"
    assert remaining(o) == {"TEE-S": 1, "TEE-M": 1}
    # The same partial item again: nothing more is shipped.
    shop.push_fulfillment(o["id"], complete(first, lines=[{"sku": "TEE-S", "quantity": 1}]), KEY)
    assert remaining(o) == {"TEE-S": 1, "TEE-M": 1}
    second = {"carrier": "UPS", "number": "P2", "url": "https://ups.example/P2"}
    shop.push_fulfillment(
        o["id"],
        complete(
            second,
            id="8",  # another Stockyard fulfillment: a new shipment, not a repeat
            lines=[{"sku": "TEE-S", "quantity": 1}, {"sku": "TEE-M", "quantity": 1}],
        ),
        "item-2",
    )
    assert o["displayFulfillmentStatus"] == "FULFILLED"
    assert [f["trackingInfo"][0]["number"] for f in o["_fulfillments"]] == ["P1", "P2"]
    # An empty URL is not sent (Shopify's URL scalar would refuse it).
    assert "url" not in creates(served)[0]["trackingInfo"]


def test_fulfillment_orders_at_two_locations_are_two_fulfillments(
    served: Served, shop: ShopifyConnector, location: Obj
) -> None:
    o = order(served, location)
    other = served.double.shop.add_location("Annex")
    served.double.shop.split_fulfillment_order(o, ["TEE-M"], other)
    shop.push_fulfillment(o["id"], complete(), KEY)
    assert o["displayFulfillmentStatus"] == "FULFILLED"
    assert len(creates(served)) == 2


def test_an_order_with_many_lines_and_fulfillment_orders_is_read_whole(
    served: Served, shop: ShopifyConnector, location: Obj
) -> None:
    o = order(served, location, [(f"SKU-{n}", 1) for n in range(30)])
    for n in range(6):  # 7 fulfillment orders (pages of 5), the first with 24 lines (of 20)
        served.double.shop.split_fulfillment_order(o, [f"SKU-{n}"], location)
    shop.push_fulfillment(o["id"], complete(lines=[{"sku": "SKU-29", "quantity": 1}]), KEY)
    assert remaining(o)["SKU-29"] == 0
    assert sum(remaining(o).values()) == 29
    assert "FulfillmentOrderLines" in names(served)  # the 20-line page was read on


def test_a_fulfillment_order_on_hold_is_a_permanent_error(
    served: Served, shop: ShopifyConnector, location: Obj
) -> None:
    o = order(served, location)
    o["_fulfillment_orders"][0]["status"] = "ON_HOLD"
    with pytest.raises(PermanentError, match="ON_HOLD"):
        shop.push_fulfillment(o["id"], complete(), KEY)
    assert creates(served) == []


def test_a_cancelled_fulfillment_order_with_lines_left_is_a_permanent_error(
    served: Served, shop: ShopifyConnector, location: Obj
) -> None:
    o = order(served, location)
    o["_fulfillment_orders"][0]["status"] = "CANCELLED"
    with pytest.raises(PermanentError, match="CANCELLED"):
        shop.push_fulfillment(o["id"], complete(), KEY)


def test_an_unknown_sku_or_order_is_a_permanent_error(
    served: Served, shop: ShopifyConnector, location: Obj
) -> None:
    o = order(served, location)
    with pytest.raises(PermanentError, match="NOPE"):
        shop.push_fulfillment(o["id"], complete(lines=[{"sku": "NOPE", "quantity": 1}]), KEY)
    with pytest.raises(PermanentError, match="no order"):
        shop.push_fulfillment("gid://shopify/Order/999999", complete(), KEY)
    with pytest.raises(PermanentError, match="lines"):
        shop.push_fulfillment(o["id"], complete(lines=[{"sku": "TEE-S", "quantity": 0}]), KEY)


def test_only_a_complete_fulfillment_is_sent(
    served: Served, shop: ShopifyConnector, location: Obj
) -> None:
    o = order(served, location)
    for state in ("pending", "open", "cancelled"):
        shop.push_fulfillment(o["id"], {"id": "7", "state": state, "tracking": None}, KEY)
    assert served.double.received == []
    assert o["displayFulfillmentStatus"] == "UNFULFILLED"


def test_the_customer_is_notified_when_the_connection_says_so(
    served: Served, location: Obj
) -> None:
    o = order(served, location)
    c = connector(served, notify_customer=True)
    c.push_fulfillment(o["id"], complete(tracking=None), KEY)
    c.close()
    (sent,) = creates(served)
    assert sent["notifyCustomer"] is True
    assert "trackingInfo" not in sent
    assert o["displayFulfillmentStatus"] == "FULFILLED"


def shipped(o: Obj) -> dict[str, int]:
    units: dict[str, int] = {}
    for made in o["_fulfillments"]:
        for sku, qty in made["_lines"]:
            units[sku] = units.get(sku, 0) + qty
    return units


def test_a_repeated_partial_item_without_tracking_ships_once(
    served: Served, shop: ShopifyConnector, location: Obj
) -> None:
    o = order(served, location)
    one = complete(tracking=None, lines=[{"sku": "TEE-S", "quantity": 1}])
    shop.push_fulfillment(o["id"], one, KEY)
    shop.push_fulfillment(o["id"], one, KEY)
    assert shipped(o) == {"TEE-S": 1}
    assert len(creates(served)) == 1
    # Another Stockyard fulfillment of the same SKU is a new shipment.
    shop.push_fulfillment(o["id"], one | {"id": "8"}, "item-2")
    assert shipped(o) == {"TEE-S": 2}


def test_a_repeat_after_a_lost_answer_ships_nothing_more(
    served: Served, shop: ShopifyConnector, location: Obj
) -> None:
    o = order(served, location)
    create = served.double.resolvers[("Mutation", "fulfillmentCreate")]

    def lost(*args: Any, **kwargs: Any) -> Any:
        create(*args, **kwargs)  # done in Shopify, the answer never arrives
        raise RuntimeError("connection reset")

    served.double.resolvers[("Mutation", "fulfillmentCreate")] = lost
    one = complete(tracking=None, lines=[{"sku": "TEE-S", "quantity": 1}])
    with pytest.raises(Exception):  # noqa: B017 - whatever the client makes of it
        shop.push_fulfillment(o["id"], one, KEY)
    served.double.resolvers[("Mutation", "fulfillmentCreate")] = create
    shop.push_fulfillment(o["id"], one, KEY)
    assert shipped(o) == {"TEE-S": 1}


def test_a_sku_split_between_two_locations_is_not_shipped_again_from_the_other(
    served: Served, shop: ShopifyConnector, location: Obj
) -> None:
    o = order(served, location)  # TEE-S x2
    annex = served.double.shop.add_location("Annex")
    split_quantity(served.double, o, "TEE-S", 1, annex)  # 1 at Main, 1 at Annex
    one = complete(tracking=None, lines=[{"sku": "TEE-S", "quantity": 1}])
    shop.push_fulfillment(o["id"], one, KEY)
    shop.push_fulfillment(o["id"], one, KEY)
    assert shipped(o) == {"TEE-S": 1}
    assert [f["location"]["id"] for f in o["_fulfillments"]] == [location["id"]]
    # Both units in one item: one fulfillment per location.
    shop.push_fulfillment(
        o["id"], complete(id="9", lines=[{"sku": "TEE-S", "quantity": 1}]), "item-3"
    )
    assert shipped(o) == {"TEE-S": 2}
    assert o["_fulfillments"][-1]["location"]["id"] == annex["id"]


def test_a_corrected_tracking_number_reaches_the_fulfillment_already_made(
    served: Served, shop: ShopifyConnector, location: Obj
) -> None:
    o = order(served, location)
    shop.push_fulfillment(o["id"], complete(), KEY)
    fixed = TRACKING | {"number": "JD0147", "url": "https://dhl.example/t/JD0147"}
    shop.push_fulfillment(o["id"], complete(fixed), "item-2")
    (made,) = o["_fulfillments"]
    assert made["trackingInfo"] == [
        {"company": "DHL", "number": "JD0147", "url": "https://dhl.example/t/JD0147"}
    ]
    assert len(creates(served)) == 1
    # The same tracking again changes nothing.
    before = len(served.double.received)
    shop.push_fulfillment(o["id"], complete(fixed), "item-3")
    assert "FulfillmentTrackingUpdate" not in names(served)[before:]


def test_a_partial_fulfillment_gets_its_corrected_tracking_too(
    served: Served, shop: ShopifyConnector, location: Obj
) -> None:
    o = order(served, location)
    lines = [{"sku": "TEE-M", "quantity": 1}]
    shop.push_fulfillment(o["id"], complete(lines=lines), KEY)
    shop.push_fulfillment(o["id"], complete({"carrier": "UPS", "number": "1Z9"}, lines=lines), KEY)
    (made,) = o["_fulfillments"]
    assert made["trackingInfo"][0]["number"] == "1Z9"
    assert shipped(o) == {"TEE-M": 1}


def test_a_ledger_that_is_not_stockyards_is_a_permanent_error(
    served: Served, shop: ShopifyConnector, location: Obj
) -> None:
    o = order(served, location)
    mark = served.double.shop.add("Metafield", namespace="stockyard", key="fulfillments")
    mark["value"] = "[1, 2]"
    o["_metafields"] = {("stockyard", "fulfillments"): mark}
    with pytest.raises(PermanentError, match=r"stockyard\.fulfillments"):
        shop.push_fulfillment(o["id"], complete(), KEY)
    assert creates(served) == []


def tee_s(n: int, fid: str = "7") -> dict[str, Any]:
    return complete(tracking=None, id=fid, lines=[{"sku": "TEE-S", "quantity": n}])


def held(o: Obj) -> Obj:
    fo: Obj = o["_fulfillment_orders"][0]
    fo["status"] = "ON_HOLD"
    return fo


def test_a_refused_plan_writes_no_ledger(
    served: Served, shop: ShopifyConnector, location: Obj
) -> None:
    o = order(served, location, [("TEE-S", 3)])
    held(o)
    with pytest.raises(PermanentError, match="ON_HOLD"):
        shop.push_fulfillment(o["id"], tee_s(2), KEY)
    with pytest.raises(PermanentError, match="TEE-XL"):
        bad = complete(lines=[{"sku": "TEE-S", "quantity": 1}, {"sku": "TEE-XL", "quantity": 1}])
        shop.push_fulfillment(o["id"], bad, KEY)
    assert "MetafieldsSet" not in names(served)


def test_a_held_partial_retried_after_another_shipped_ships_all_its_units(
    served: Served, shop: ShopifyConnector, location: Obj
) -> None:
    o = order(served, location, [("TEE-S", 3)])
    fo = held(o)
    with pytest.raises(PermanentError):
        shop.push_fulfillment(o["id"], tee_s(2), KEY)
    fo["status"] = "OPEN"
    shop.push_fulfillment(o["id"], tee_s(1, fid="8"), "item-2")
    shop.push_fulfillment(o["id"], tee_s(2), KEY)
    assert shipped(o) == {"TEE-S": 3}
    assert remaining(o) == {"TEE-S": 0}


def test_a_held_partial_resent_with_other_quantities_ships_the_new_ones(
    served: Served, shop: ShopifyConnector, location: Obj
) -> None:
    o = order(served, location, [("TEE-S", 3)])
    fo = held(o)
    with pytest.raises(PermanentError):
        shop.push_fulfillment(o["id"], tee_s(1), KEY)
    fo["status"] = "OPEN"
    shop.push_fulfillment(o["id"], tee_s(3), KEY)
    assert shipped(o) == {"TEE-S": 3}


def test_a_partial_resent_with_more_after_shipping_ships_the_difference(
    served: Served, shop: ShopifyConnector, location: Obj
) -> None:
    o = order(served, location, [("TEE-S", 4)])
    shop.push_fulfillment(o["id"], tee_s(1, fid="8"), "item-2")
    shop.push_fulfillment(o["id"], tee_s(1), KEY)
    shop.push_fulfillment(o["id"], tee_s(2), KEY)  # 7 corrected: 2 units, not 1
    shop.push_fulfillment(o["id"], tee_s(2), KEY)
    assert shipped(o) == {"TEE-S": 3}
    shop.push_fulfillment(o["id"], tee_s(1), KEY)  # fewer: what shipped stays shipped
    assert shipped(o) == {"TEE-S": 3}


def test_a_failed_create_then_another_partial_leaves_nothing_unshipped(
    served: Served, shop: ShopifyConnector, location: Obj
) -> None:
    o = order(served, location, [("TEE-S", 3)])
    create = served.double.resolvers[("Mutation", "fulfillmentCreate")]

    def refused(*_a: Any, **_k: Any) -> Any:
        raise RuntimeError("connection reset")  # nothing done in Shopify

    served.double.resolvers[("Mutation", "fulfillmentCreate")] = refused
    with pytest.raises(Exception):  # noqa: B017 - whatever the client makes of it
        shop.push_fulfillment(o["id"], tee_s(2), KEY)
    served.double.resolvers[("Mutation", "fulfillmentCreate")] = create
    shop.push_fulfillment(o["id"], tee_s(1, fid="8"), "item-2")
    shop.push_fulfillment(o["id"], tee_s(2), KEY)
    assert shipped(o) == {"TEE-S": 3}


def test_a_ledger_entry_of_the_wrong_shape_is_a_permanent_error(
    served: Served, shop: ShopifyConnector, location: Obj
) -> None:
    o = order(served, location, [("TEE-S", 3)])
    mark = served.double.shop.add("Metafield", namespace="stockyard", key="fulfillments")
    mark["value"] = '{"8": {"target": {"TEE-S": "2"}, "ids": []}}'
    o["_metafields"] = {("stockyard", "fulfillments"): mark}
    with pytest.raises(PermanentError, match=r"stockyard\.fulfillments"):
        shop.push_fulfillment(o["id"], tee_s(1), KEY)
    assert creates(served) == []
