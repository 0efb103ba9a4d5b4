"""Shopify orders in (issue 18): the poll (cursor paging, overlap, an order updated while
a pull pages, each order once), the mapping to Stockyard's order record, which orders are
taken, and Shopify's webhooks end to end over HTTP from the double into a real Stockyard
app (HMAC, replay, tenancy, the shop's domain). Every request the connector sent is valid
against Shopify's own schema.

Skipped when the schema is not installed (bash scripts/install-shopify-schema.sh).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from stockyard.catalog.models import Order, parse
from stockyard.connectors.shopify import ShopifyConnector, documents
from stockyard.connectors.shopify import orders as shopify_orders
from stockyard.engine import ItemFilter
from stockyard.engine.handlers import Context
from stockyard.errors import InvalidInput, PermanentError
from stockyard.flows.orders import order_request, sync_order
from stockyard.service import inbound
from stockyard.tenancy import Connection
from stockyard.web.settings import ApiSettings
from tests.support import shopify_schema as schema
from tests.support.app_servers import serve_app

pytestmark = schema.needs_schema

from tests.support.api_env import ApiEnv  # noqa: E402
from tests.support.shopify_double import TOKEN, Served, ShopifyDouble, serve  # noqa: E402
from tests.support.shopify_double_orders import (  # noqa: E402
    SHOP_DOMAIN,
    Webhooks,
    price,
    webhooks,
)

APP_SECRET = "shpss_app-client-secret-of-merchant-a"
OTHER_SECRET = "shpss_app-client-secret-of-merchant-b"
START = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)


def stamp(seconds: float) -> str:
    return (START + dt.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def served() -> Iterator[Served]:
    double = ShopifyDouble(capacity=1e6, restore_rate=1e4)
    webhooks(double)  # the orders area, whether or not extensions() lists it yet
    with serve(double) as s:
        yield s


@pytest.fixture
def location(served: Served) -> dict[str, Any]:
    return served.double.shop.add_location("Main")


def assert_all_valid(served: Served) -> None:
    assert served.double.received
    for r in served.double.received:
        assert r.token == TOKEN
        assert schema.validate(r.query or "", r.variables) == [], r.query
        assert r.status == 200 and "errors" not in r.response, r.response


@pytest.fixture
def shop(served: Served) -> Iterator[ShopifyConnector]:
    base = served.url.split("/admin/api/")[0]
    c = ShopifyConnector({"shop": SHOP_DOMAIN, "access_token": TOKEN, "base_url": base})
    yield c
    c.close()
    assert_all_valid(served)


def place(served: Served, location: dict[str, Any], at: float, n: int = 1, **kw: Any) -> Any:
    lines = [(f"SKU-{i}", i + 1, "9.50") for i in range(n)]
    return served.double.shop.add_order(lines, location, updated_at=stamp(at), **kw)


def orders_sent(served: Served) -> list[dict[str, Any]]:
    return [r.variables or {} for r in served.double.received if "orders(" in (r.query or "")]


# ---------------------------------------------------------------------------- mapping


def test_an_order_maps_to_the_order_record(
    served: Served, shop: ShopifyConnector, location: dict[str, Any]
) -> None:
    placed = place(served, location, 0, n=2, name="#1001")
    record = shop.get_order(placed["id"])
    order = parse(Order, record, "order")
    assert order.remote_id == placed["id"]
    assert order.number == "#1001"
    assert order.currency == "EUR"
    assert [(ln.sku, ln.quantity, str(ln.price)) for ln in order.lines] == [
        ("SKU-0", 1, "9.50"),
        ("SKU-1", 2, "9.50"),
    ]
    assert str(order.total) == "28.50"
    assert order.customer is not None and order.customer.code.startswith("gid://shopify/Customer/")
    assert order.customer.email == "buyer@example.com"
    assert order.shipping_address is not None
    assert order.shipping_address.line1 == "1 Main St"
    assert order.shipping_address.postcode == "10115"
    assert order.shipping_address.country == "DE"


def booked(order: Order) -> Decimal:
    """What the ERP books: each line at quantity x unit price to the cent, then shipping
    and tax (the order record carries no discount: it is inside the prices)."""
    lines = sum((q(ln.quantity * ln.price) for ln in order.lines), Decimal(0))
    return lines + order.shipping + order.tax


def q(amount: Decimal) -> Decimal:
    return amount.quantize(Decimal("0.01"), ROUND_HALF_UP)


def test_a_code_discount_is_inside_the_net_unit_prices(
    served: Served, shop: ShopifyConnector, location: dict[str, Any]
) -> None:
    lines = [("SKU-0", 2, "19.99"), ("SKU-1", 1, "5.00"), ("SKU-2", 3, "3.33")]
    placed = served.double.shop.add_order(lines, location)
    price(served.double, placed, discount="0.10", tax="0.08", shipping="4.90")
    order = parse(Order, shop.get_order(placed["id"]), "order")
    # 10 % off each line, allocated and rounded per line: 39.98 - 4.00, 5.00 - 0.50,
    # 9.99 - 1.00 (three units: 8.99 / 3 = 2.9967).
    assert [str(ln.price) for ln in order.lines] == ["17.99", "4.50", "2.9967"]
    # 49.47 of goods + 4.90 shipping + 8 % tax per line and on shipping (2.88 + 0.36 +
    # 0.72 + 0.39).
    assert (order.shipping, order.tax, order.total) == (
        Decimal("4.90"),
        Decimal("4.35"),
        Decimal("58.72"),
    )
    assert booked(order) == order.total


def test_prices_that_include_tax_reach_the_record_net(
    served: Served, shop: ShopifyConnector, location: dict[str, Any]
) -> None:
    lines = [("SKU-0", 1, "11.90"), ("SKU-1", 3, "10.00")]
    placed = served.double.shop.add_order(lines, location)
    price(served.double, placed, tax="0.19", taxes_included=True, shipping="5.95")
    order = parse(Order, shop.get_order(placed["id"]), "order")
    # 11.90 holds 1.90 of VAT; 30.00 holds 4.79 (25.21 net, 8.4033 a unit); the 5.95
    # shipping holds 0.95.
    assert [str(ln.price) for ln in order.lines] == ["10.00", "8.4033"]
    assert (order.shipping, order.tax, order.total) == (
        Decimal("5.00"),
        Decimal("7.64"),
        Decimal("47.85"),
    )
    assert booked(order) == order.total


def test_a_discount_in_a_tax_inclusive_shop_and_a_refunded_unit_stay_balanced(
    served: Served, shop: ShopifyConnector, location: dict[str, Any]
) -> None:
    placed = served.double.shop.add_order([("SKU-0", 4, "23.80")], location)
    price(served.double, placed, discount="0.10", tax="0.19", taxes_included=True)
    order = parse(Order, shop.get_order(placed["id"]), "order")
    # 95.20 - 9.52 = 85.68 with 13.68 VAT: 72.00 net, 18.00 a unit.
    assert [str(ln.price) for ln in order.lines] == ["18.00"]
    assert booked(order) == order.total == Decimal("85.68")


def test_an_order_with_more_lines_than_a_page_reads_them_all(
    served: Served, shop: ShopifyConnector, location: dict[str, Any]
) -> None:
    placed = place(served, location, 0, n=45)
    order = parse(Order, shop.get_order(placed["id"]), "order")
    assert [ln.sku for ln in order.lines] == [f"SKU-{i}" for i in range(45)]
    pages = [r for r in served.double.received if "StockyardOrderLines" in (r.query or "")]
    assert len(pages) == 1  # 5 with the order, 40 in one page of 50


def test_removed_lines_drop_out_and_a_line_without_sku_fails_its_order_alone(
    served: Served, shop: ShopifyConnector, location: dict[str, Any]
) -> None:
    placed = place(served, location, 0, n=3)
    placed["_lines"][0]["currentQuantity"] = 0  # removed by an order edit
    placed["_lines"][1]["sku"] = None  # a custom item
    record = shop.get_order(placed["id"])
    assert [ln["sku"] for ln in record["lines"]] == ["", "SKU-2"]
    with pytest.raises(InvalidInput, match=r"lines\.0\.sku"):
        parse(Order, record, "order")


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"test": True}, "a test order"),
        ({"cancelledAt": "2026-11-02T10:00:00Z"}, "cancelled"),
        ({"displayFinancialStatus": "PENDING"}, "payment pending"),
        ({"displayFinancialStatus": "VOIDED"}, "payment voided"),
        ({"displayFulfillmentStatus": "FULFILLED"}, "already fulfilled"),
    ],
)
def test_orders_not_to_fulfil_are_left_alone(
    served: Served,
    shop: ShopifyConnector,
    location: dict[str, Any],
    change: dict[str, Any],
    why: str,
) -> None:
    kept = place(served, location, 0)
    left = place(served, location, 1)
    left.update(change)
    page = shop.fetch_orders(stamp(-300))
    assert [r["remote_id"] for r in page.records] == [kept["id"]]
    with pytest.raises(PermanentError, match=why):
        shop.get_order(left["id"])


def test_an_unknown_order_or_a_foreign_id_is_a_permanent_error(shop: ShopifyConnector) -> None:
    with pytest.raises(PermanentError, match="no order"):
        shop.get_order("gid://shopify/Order/999999")
    with pytest.raises(PermanentError, match="not an order id"):
        shop.get_order("gid://shopify/Product/1")


# ---------------------------------------------------------------------------- the poll


def test_the_poll_pages_with_a_cursor_and_reads_from_an_overlap_window(
    served: Served, shop: ShopifyConnector, location: dict[str, Any]
) -> None:
    placed = [place(served, location, 10 * n) for n in range(25)]
    first = shop.fetch_orders(stamp(-1))
    assert [r["remote_id"] for r in first.records] == [o["id"] for o in placed]
    assert first.cursor == stamp(240)
    assert [v["after"] is None for v in orders_sent(served)] == [True, False, False]
    assert orders_sent(served)[0]["query"] == f"updated_at:>='{stamp(-121)}'"

    # The next pull reads again from 120 s before the newest update seen (240 s): the
    # orders of 120..240 s come again, unchanged, so the order flow queues them once.
    later = place(served, location, 300)
    second = shop.fetch_orders(first.cursor)
    assert [r["remote_id"] for r in second.records] == [o["id"] for o in placed[12:]] + [
        later["id"]
    ]
    channel = Connection(7, 1, "channel", "shopify", "Shop", {}, "active")
    keys = {order_request(channel, r).idempotency_key for r in first.records + second.records}
    assert len(keys) == 26
    assert second.cursor == stamp(300)


def test_a_long_backlog_goes_on_where_the_last_pull_stopped(
    served: Served,
    shop: ShopifyConnector,
    location: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(shopify_orders, "PAGES_PER_PULL", 2)
    placed = [place(served, location, n) for n in range(35)]
    first = shop.fetch_orders(stamp(-1))
    assert len(first.records) == 20
    assert first.cursor is not None and first.cursor.startswith("{")
    second = shop.fetch_orders(first.cursor)
    assert len(second.records) == 15
    seen = [r["remote_id"] for r in first.records + second.records]
    assert seen == [o["id"] for o in placed]
    assert second.cursor == stamp(34)


def test_an_order_updated_while_a_pull_pages_is_read_once_in_its_latest_state(
    served: Served, shop: ShopifyConnector, location: dict[str, Any]
) -> None:
    placed = [place(served, location, n) for n in range(15)]
    early = placed[2]
    ask = shop.api.query

    def query(document: str, variables: dict[str, Any] | None = None) -> Any:
        answer = ask(document, variables)
        if document == documents.ORDERS_IN_SINCE and not (variables or {}).get("after"):
            # Between page 1 and page 2, the buyer's address is corrected in Shopify.
            served.double.shop.objects[early["id"]]["shippingAddress"]["city"] = "Hamburg"
            served.double.shop.objects[early["id"]]["updatedAt"] = stamp(100)
        return answer

    shop.api.query = query  # type: ignore[method-assign]
    page = shop.fetch_orders(stamp(-1))
    ids = [r["remote_id"] for r in page.records]
    assert sorted(ids) == sorted(o["id"] for o in placed)  # none lost, none twice
    latest = next(r for r in page.records if r["remote_id"] == early["id"])
    assert latest["shipping_address"]["city"] == "Hamburg"
    assert page.cursor == stamp(100)


def test_empty_pulls_leave_the_cursor_where_it_was(
    served: Served, shop: ShopifyConnector, location: dict[str, Any]
) -> None:
    cursor = stamp(0)
    for _ in range(100):
        page = shop.fetch_orders(cursor)
        assert page.records == []
        assert page.cursor == stamp(0)
        cursor = page.cursor
    assert {v["query"] for v in orders_sent(served)} == {f"updated_at:>='{stamp(-120)}'"}
    # An order saved just before the cursor, indexed late, is still read: the overlap.
    late = place(served, location, -60)
    assert [r["remote_id"] for r in shop.fetch_orders(cursor).records] == [late["id"]]


def test_an_order_older_than_the_first_look_back_is_never_imported(
    served: Served, shop: ShopifyConnector, location: dict[str, Any]
) -> None:
    now = START + shopify_orders.FIRST_LOOKBACK
    old = place(served, location, -30)  # 30 s before the look-back starts
    first = shopify_orders.fetch_orders(shop.api, None, now=now)
    assert first.records == []
    cursor, seen = first.cursor, []
    for n in range(5):
        page = shopify_orders.fetch_orders(shop.api, cursor, now=now + dt.timedelta(minutes=n))
        seen += [r["remote_id"] for r in page.records]
        cursor = page.cursor
    assert old["id"] not in seen
    fresh = place(served, location, 300)
    page = shopify_orders.fetch_orders(shop.api, cursor, now=now + dt.timedelta(minutes=9))
    assert [r["remote_id"] for r in page.records] == [fresh["id"]]
    assert page.cursor == stamp(300)


def test_a_first_pull_looks_back_a_day_and_a_bad_cursor_is_permanent(
    served: Served, shop: ShopifyConnector
) -> None:
    shop.fetch_orders(None)
    since = orders_sent(served)[0]["query"].split("'")[1]
    ago = dt.datetime.now(dt.UTC) - dt.datetime.fromisoformat(since.replace("Z", "+00:00"))
    assert dt.timedelta(hours=23, minutes=59) < ago < dt.timedelta(hours=24, minutes=1)
    with pytest.raises(PermanentError, match="unreadable"):
        shop.fetch_orders("{not json")


def test_every_orders_document_is_valid_with_variables() -> None:
    gid = "gid://shopify/Order/61"
    assert schema.validate(documents.ORDERS_IN_SINCE, {"query": "updated_at:>='x'"}) == []
    assert schema.validate(documents.ORDER_IN, {"id": gid}) == []
    assert schema.validate(documents.ORDER_IN_LINES, {"id": gid, "after": "abc"}) == []
    # What nets the prices is read (discountedUnitPriceSet leaves code discounts out).
    for field in ("taxesIncluded", "discountAllocations", "taxLines", "currentShippingPrice"):
        assert field in documents.ORDER_IN
    assert "discountedUnitPriceSet" not in documents.ORDER_IN


# ---------------------------------------------------------------------- webhooks, e2e


@pytest.fixture
def env(tmp_path: Path) -> Iterator[ApiEnv]:
    e = ApiEnv(f"sqlite:///{tmp_path}/webhooks.db")
    yield e
    e.close()


@pytest.fixture
def stockyard(env: ApiEnv) -> Iterator[str]:
    with serve_app(env.app) as url:
        yield url


class Shops:
    """Merchant A's and B's Shopify connections, and A's shop subscribed to Stockyard."""

    def __init__(self, env: ApiEnv, served: Served, url: str) -> None:
        base = served.url.split("/admin/api/")[0]
        settings = {"shop": SHOP_DOMAIN, "base_url": base}
        root = env.root

        def make(client: int, secret: str) -> int:
            return env.service.create_connection(
                root,
                client,
                "channel",
                "shopify",
                "Shopify",
                settings,
                {"access_token": TOKEN, "webhook_secret": secret},
            ).id

        self.a = make(env.a.id, APP_SECRET)
        self.b = make(env.b.id, OTHER_SECRET)
        self.hooks: Webhooks = webhooks(served.double)
        for topic in ("orders/create", "orders/updated"):
            self.hooks.subscribe(topic, self.address(url, self.a, topic), APP_SECRET)

    @staticmethod
    def address(url: str, connection: int, topic: str) -> str:
        return f"{url}/v1/inbound/{connection}/webhooks/{topic}"


@pytest.fixture
def shops(env: ApiEnv, served: Served, stockyard: str) -> Iterator[Shops]:
    yield Shops(env, served, stockyard)
    # Creating the connections checked the settings without a request; whatever else a
    # test made the connector send was valid against the schema.
    if served.double.received:
        assert_all_valid(served)


def items(env: ApiEnv, client: int) -> list[Any]:
    return [i for i in env.queue.list_items(ItemFilter(client_id=client), 100)]


def sync_orders(env: ApiEnv, client: int) -> list[Any]:
    return [i for i in items(env, client) if i.instruction == "sync_order"]


def test_a_placed_order_arrives_by_webhook_as_one_sync_order_read_by_id(
    env: ApiEnv, served: Served, location: dict[str, Any], shops: Shops
) -> None:
    before = len(sync_orders(env, env.a.id))
    placed = place(served, location, 0, name="#2001")
    (delivery,) = shops.hooks.delivered
    assert delivery.status == 200
    made = sync_orders(env, env.a.id)
    assert len(made) == before + 1
    item = made[0]
    assert item.payload == {"remote_id": placed["id"]}
    assert item.connection_id == shops.a
    assert item.refs == [placed["id"]]

    # When the item runs, the order is read from Shopify by id (not from the webhook body).
    conn = env.service.tenancy.connection(shops.a)
    connector = env.application.connectors.for_connection(conn, "channel")
    order = parse(Order, connector.get_order(placed["id"]), "order")
    assert order.number == "#2001"
    assert_all_valid(served)


def test_a_redelivered_webhook_enqueues_nothing_new(
    env: ApiEnv, served: Served, location: dict[str, Any], shops: Shops
) -> None:
    place(served, location, 0)
    (delivery,) = shops.hooks.delivered
    count = len(items(env, env.a.id))
    again = shops.hooks.redeliver(delivery)
    assert again.status == 200
    assert len(items(env, env.a.id)) == count
    # An update is another event: a new item.
    shops.hooks.update(served.double.shop.of("Order")[-1], note="gift")
    assert shops.hooks.delivered[-1].status == 200
    assert len(items(env, env.a.id)) == count + 1


def test_a_pending_or_test_order_is_accepted_and_enqueues_nothing(
    env: ApiEnv, served: Served, location: dict[str, Any], shops: Shops
) -> None:
    count = len(items(env, env.a.id))
    order = place(served, location, 0)
    shops.hooks.update(order, displayFinancialStatus="PENDING")
    shops.hooks.update(order, test=True, displayFinancialStatus="PAID")
    assert [d.status for d in shops.hooks.delivered] == [200, 200, 200]
    assert len(items(env, env.a.id)) == count + 1  # the paid one placed first


def run_sync_order(env: ApiEnv, connection: int, item: Any) -> list[Any]:
    """The item's sync_order flow, run here as a worker would; its follow-ups."""
    conn = env.service.tenancy.connection(connection)
    job = SimpleNamespace(
        id=item.id, client_id=item.client_id, payload=item.payload, instruction="sync_order"
    )
    ctx = Context(job, conn)  # type: ignore[arg-type]
    sync_order(env.application.flow_services, ctx)
    return ctx.follow_ups


def test_an_order_stockyard_ships_leaves_no_failed_sync_order(
    env: ApiEnv, served: Served, location: dict[str, Any], shops: Shops
) -> None:
    placed = place(served, location, 0, n=2)
    (created,) = sync_orders(env, env.a.id)
    assert [r.instruction for r in run_sync_order(env, shops.a, created)] == ["add_order"]
    order_id = env.service.store.order_id(shops.a, placed["id"])
    env.service.store.update_order(order_id, source_code="SO-1", state="confirmed")
    # The buyer edits a note; the update's item waits while Stockyard ships the order.
    shops.hooks.update(placed, updated_at=stamp(60), note="leave at the door")
    waiting = sync_orders(env, env.a.id)[0]
    assert waiting.id != created.id
    before = [(i.id, i.status) for i in items(env, env.a.id)]
    conn = env.service.tenancy.connection(shops.a)
    connector = env.application.connectors.for_connection(conn, "channel")
    tracking = {"carrier": "DHL", "number": "00340434", "url": ""}
    connector.push_fulfillment(
        placed["id"], {"id": "1", "state": "complete", "tracking": tracking}, "k"
    )

    # fulfillmentCreate made Shopify announce orders/updated, now fulfilled: accepted,
    # and nothing enqueued.
    announced = shops.hooks.delivered[-1]
    assert json.loads(announced.body)["fulfillment_status"] == "fulfilled"
    assert announced.status == 200
    assert [(i.id, i.status) for i in items(env, env.a.id)] == before
    # The item that waited runs now: the order is fulfilled, Stockyard took it and shipped
    # it, so the item only refreshes the order held and is done.
    assert run_sync_order(env, shops.a, waiting) == []
    assert_all_valid(served)


def test_a_fulfilled_order_stockyard_never_took_is_still_refused_by_id(
    served: Served, shop: ShopifyConnector, location: dict[str, Any]
) -> None:
    placed = place(served, location, 0)
    placed["displayFulfillmentStatus"] = "FULFILLED"  # shipped by the merchant, by hand
    with pytest.raises(PermanentError, match="already fulfilled"):
        shop.get_order(placed["id"])


def test_an_order_cancelled_before_its_item_runs_finishes_it_with_nothing_to_do(
    env: ApiEnv, served: Served, location: dict[str, Any], shops: Shops
) -> None:
    placed = place(served, location, 0)
    (announced,) = sync_orders(env, env.a.id)
    placed["cancelledAt"] = stamp(30)  # the buyer cancels before the item runs
    assert run_sync_order(env, shops.a, announced) == []
    # And one shipped by hand, never taken: the same.
    placed["cancelledAt"] = None
    placed["displayFulfillmentStatus"] = "FULFILLED"
    assert run_sync_order(env, shops.a, announced) == []
    assert_all_valid(served)


def test_an_order_cancelled_after_it_reached_the_erp_fails_its_item_saying_where_to_act(
    env: ApiEnv, served: Served, location: dict[str, Any], shops: Shops
) -> None:
    placed = place(served, location, 0)
    (created,) = sync_orders(env, env.a.id)
    run_sync_order(env, shops.a, created)
    order_id = env.service.store.order_id(shops.a, placed["id"])
    env.service.store.update_order(order_id, source_code="SO-7", state="confirmed")
    placed["cancelledAt"] = stamp(30)  # the ERP may still ship it: an operator must know
    with pytest.raises(PermanentError, match=r"cancelled.*ERP as SO-7: cancel or change it"):
        run_sync_order(env, shops.a, created)


def test_a_partial_shipment_announced_is_taken_and_read_by_id(
    env: ApiEnv, served: Served, location: dict[str, Any], shops: Shops
) -> None:
    placed = place(served, location, 0, n=2)
    conn = env.service.tenancy.connection(shops.a)
    connector = env.application.connectors.for_connection(conn, "channel")
    first = {"id": "1", "state": "complete", "lines": [{"sku": "SKU-0", "quantity": 1}]}
    connector.push_fulfillment(placed["id"], first, "k")
    announced = shops.hooks.delivered[-1]
    assert json.loads(announced.body)["fulfillment_status"] == "partial"
    assert len(sync_orders(env, env.a.id)) == 2  # still lines to ship: the order is read
    assert parse(Order, connector.get_order(placed["id"]), "order").lines


def post(url: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(url, content=body, headers=headers, timeout=10)


def test_refusals(
    env: ApiEnv, served: Served, location: dict[str, Any], shops: Shops, stockyard: str
) -> None:
    place(served, location, 0)
    (good,) = shops.hooks.delivered
    count_a, count_b = len(items(env, env.a.id)), len(items(env, env.b.id))
    body, headers = good.body, good.headers
    topic = "orders/create"
    signed_by_b = shops.hooks._headers(topic, OTHER_SECRET, body, "ev-b")

    cases = {
        "bad signature": (shops.a, body, {**headers, "X-Shopify-Hmac-Sha256": "bm9wZQ=="}),
        "no signature": (
            shops.a,
            body,
            {k: v for k, v in headers.items() if k != "X-Shopify-Hmac-Sha256"},
        ),
        "body changed": (shops.a, body.replace(b"#", b"%"), headers),
        "signed with B's secret": (shops.a, body, signed_by_b),
        "A's webhook at B's connection": (shops.b, body, headers),
        "a connector without webhooks": (env.a.channel, body, headers),
        "no such connection": (987_654, body, headers),
    }
    answers = {}
    for case, (connection, content, sent) in cases.items():
        r = post(Shops.address(stockyard, connection, topic), content, sent)
        answers[case] = (r.status_code, r.json()["detail"] if r.status_code == 401 else r.text)
    assert {a for a in answers.values()} == {(401, inbound.WEBHOOK_REFUSED)}, answers

    # Signed with the right secret but from another shop: refused, and told why.
    other = Webhooks(served.double, shop_domain="someone-else.myshopify.com")
    r = post(
        Shops.address(stockyard, shops.a, topic),
        body,
        other._headers(topic, APP_SECRET, body, "ev-x"),
    )
    assert r.status_code == 401
    assert "another shop" in r.json()["detail"]

    # A topic the connector does not take, properly signed: 4xx naming the topics taken.
    r = post(
        Shops.address(stockyard, shops.a, "products/create"),
        body,
        shops.hooks._headers("products/create", APP_SECRET, body, "ev-p"),
    )
    assert r.status_code == 422
    assert "orders/create" in r.json()["detail"]

    assert len(items(env, env.a.id)) == count_a
    assert len(items(env, env.b.id)) == count_b
    everything = json.dumps(answers) + r.text
    assert APP_SECRET not in everything and OTHER_SECRET not in everything


def test_refused_webhooks_spend_the_address_budget(tmp_path: Path) -> None:
    """Guessing connection ids or secrets on the webhook route costs the caller's address
    budget, as on the other inbound routes: no fresh allowance per connection id."""
    env = ApiEnv(f"sqlite:///{tmp_path}/guess.db", ApiSettings(rate_per_second=0.01, rate_burst=4))
    try:
        body = b'{"id": 1, "financial_status": "paid"}'
        headers = {"X-Shopify-Hmac-Sha256": "bm9wZQ==", "X-Shopify-Shop-Domain": SHOP_DOMAIN}
        statuses = [
            env.http.post(
                f"/v1/inbound/{987_000 + n}/webhooks/orders/create", content=body, headers=headers
            ).status_code
            for n in range(6)
        ]
        assert statuses[:4] == [401] * 4
        assert set(statuses[4:]) == {429}
    finally:
        env.close()


def test_a_signed_but_malformed_webhook_is_told_what_is_wrong(
    env: ApiEnv, shops: Shops, stockyard: str
) -> None:
    url = Shops.address(stockyard, shops.a, "orders/create")
    count = len(items(env, env.a.id))
    cases = {
        b"not json": "not JSON",
        b"[1, 2]": "not a JSON object",
        b'{"financial_status": "paid"}': "no id",
    }
    for body, told in cases.items():
        r = post(url, body, shops.hooks._headers("orders/create", APP_SECRET, body, "ev-m"))
        assert r.status_code == 422 and told in r.json()["detail"], r.text
    body = b'{"id": 5, "financial_status": "paid"}'
    headers = shops.hooks._headers("orders/create", APP_SECRET, body, "ev-n")
    del headers["X-Shopify-Event-Id"], headers["X-Shopify-Webhook-Id"]
    r = post(url, body, headers)  # the delivery is named by the body's updated_at
    assert r.status_code == 422 and "updated_at" in r.json()["detail"]
    headers = shops.hooks._headers("orders/updated", APP_SECRET, body, "ev-t")
    r = post(url, body, headers)  # signed for another topic than the address says
    assert r.status_code == 422 and "X-Shopify-Topic" in r.json()["detail"]
    assert len(items(env, env.a.id)) == count


# ------------------------------------------------------- webhook security (reviewer, F1)


def signed_post(url: str, body: bytes, hooks: Webhooks, event: str = "ev") -> httpx.Response:
    return post(url, body, hooks._headers("orders/create", APP_SECRET, body, event))


def test_the_app_secret_is_no_standard_webhooks_key_on_the_generic_routes(
    env: ApiEnv, shops: Shops
) -> None:
    """Whoever holds a Shopify app's client secret can sign Shopify webhooks, which only
    name orders to read from Shopify; it must not also sign whole orders on the generic
    push route, where they are taken as given (a forged order → an ERP sale)."""
    from stockyard.signing import sign

    count = len(items(env, env.a.id))
    order = {
        "remote_id": "gid://shopify/Order/1",
        "number": "#1",
        "currency": "EUR",
        "lines": [{"sku": "SKU-0", "quantity": 500, "price": "0.01"}],
        "total": "5.00",
    }
    body = json.dumps({"orders": [order]}).encode()
    url = f"/v1/inbound/{shops.a}/orders"
    json_type = {"content-type": "application/json"}
    r = env.http.post(url, content=body, headers=json_type | sign(APP_SECRET, "m1", body))
    assert r.status_code == 401 and r.json()["detail"] == inbound.REFUSED, r.text
    assert len(items(env, env.a.id)) == count
    # An administrator of the connection's client still may push there.
    ids = {"remote_ids": ["gid://shopify/Order/1"]}
    r = env.http.post(url, json=ids, headers=env.headers(env.a.tokens["administrator"]))
    assert r.status_code == 202, r.text


def test_a_captured_delivery_resent_with_a_new_event_id_enqueues_nothing_new(
    env: ApiEnv, served: Served, location: dict[str, Any], shops: Shops, stockyard: str
) -> None:
    """Shopify's HMAC covers the body only: the event and webhook id headers are the
    sender's to choose. The same signed body is the same delivery whatever they say."""
    place(served, location, 0)
    (good,) = shops.hooks.delivered
    count = len(items(env, env.a.id))
    for n in range(3):
        headers = {**good.headers, "X-Shopify-Event-Id": f"fresh-{n}"}
        headers["X-Shopify-Webhook-Id"] = f"fresh-webhook-{n}"
        if n == 2:
            del headers["X-Shopify-Event-Id"], headers["X-Shopify-Webhook-Id"]
        for topic in ("orders/create", "orders/updated", "orders/paid"):
            headers["X-Shopify-Topic"] = topic
            r = post(Shops.address(stockyard, shops.a, topic), good.body, headers)
            assert r.status_code == 200, r.text
    assert len(items(env, env.a.id)) == count


def _hashed(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The sizes of the messages HMAC'd from now on."""
    import hmac as hmac_module

    sizes: list[int] = []
    real = hmac_module.new

    def counted(key: Any, msg: Any = None, digestmod: Any = "") -> Any:
        sizes.append(len(msg or b""))
        return real(key, msg, digestmod)

    monkeypatch.setattr(hmac_module, "new", counted)
    return sizes


def test_every_refused_webhook_costs_an_hmac_of_its_body(
    env: ApiEnv, shops: Shops, monkeypatch: pytest.MonkeyPatch
) -> None:
    keyless = env.service.create_connection(
        env.root,
        env.a.id,
        "channel",
        "shopify",
        "Shopify without webhook secret",
        {"shop": SHOP_DOMAIN, "base_url": "http://127.0.0.1:9"},
        {"access_token": TOKEN},
    ).id
    body = json.dumps({"id": 1, "note": "x" * 50_000}).encode()
    headers = {"X-Shopify-Hmac-Sha256": "bm9wZQ==", "X-Shopify-Shop-Domain": SHOP_DOMAIN}
    sizes = _hashed(monkeypatch)
    cost = {}
    for case, connection in {
        "a real connection, bad signature": shops.a,
        "no such connection": 987_654,
        "a connector without webhooks": env.a.channel,
        "no webhook_secret": keyless,
    }.items():
        sizes.clear()
        r = env.http.post(
            f"/v1/inbound/{connection}/webhooks/orders/create", content=body, headers=headers
        )
        assert r.status_code == 401, (case, r.text)
        cost[case] = [n for n in sizes if n >= len(body)]
    assert set(map(tuple, cost.values())) == {(len(body),)}, cost


def test_hostile_but_signed_bodies_are_told_what_is_wrong(
    env: ApiEnv, shops: Shops, stockyard: str
) -> None:
    url = Shops.address(stockyard, shops.a, "orders/create")
    count = len(items(env, env.a.id))
    at = '"updated_at": "2026-11-02T09:00:00Z"'
    cases = {
        b"[" * 100_000: "not JSON",
        b'{"a": ' * 100_000: "not JSON",
        b'{"id": ' + b"1" * 5000 + b"}": "not JSON",
        b'"an order"': "not a JSON object",
        b"null": "not a JSON object",
        ('{"id": 1e400, ' + at + "}").encode(): "overflows",
        ('{"id": 100000000000000000000000000000, ' + at + "}").encode(): "no id",
        ('{"id": true, ' + at + "}").encode(): "no id",
        ('{"admin_graphql_api_id": "gid://shopify/Order/../x", ' + at + "}").encode(): "no id",
        b'{"id": 5, "financial_status": "paid"}': "updated_at",
        b'{"id": 5, "updated_at": 5}': "updated_at",
        b'{"id": 5, "updated_at": "yesterday"}': "updated_at",
        b'{"id": 5, "updated_at": ["2026-11-02T09:00:00Z"]}': "updated_at",
    }
    for body, told in cases.items():
        r = signed_post(url, body, shops.hooks)
        assert r.status_code == 422 and told in r.json()["detail"], (body[:60], r.text)
    odd = ('{"id": 5, "financial_status": {"a": 1}, "test": [], ' + at + "}").encode()
    r = signed_post(url, odd, shops.hooks)
    assert r.status_code == 200 and r.json()["items"] == [], r.text
    for depth in range(900, 1000, 10):  # as deep as the JSON reader takes, then some
        tree = "[" * depth + "]" * depth
        deep = ('{"id": 6, "financial_status": ' + tree + ", " + at + "}").encode()
        r = signed_post(url, deep, shops.hooks)
        assert r.status_code in (200, 422) and r.status_code < 500, r.text
        assert r.status_code == 422 or r.json()["items"] == [], r.text
    assert len(items(env, env.a.id)) == count
