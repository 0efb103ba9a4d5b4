"""WooCommerce orders in and fulfillment back (issue 19), over HTTP against the double: the
mapping to Stockyard's order record, which orders are taken, the poll (its query, paging
by X-WP-TotalPages, the overlap, a set that shrinks mid-pull), webhooks checked by the
connector and end to end through a real Stockyard app, and fulfillment as a tracking note +
status completed, repeat-safe. Every request the connector sent is valid against the
transcribed wc/v3 contract (tests/support/woocommerce_contract)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from stockyard.catalog.models import Order, parse
from stockyard.connectors.base import OrderDeclined
from stockyard.connectors.webhooks import Unsigned
from stockyard.connectors.woocommerce import WooCommerceConnector
from stockyard.connectors.woocommerce import orders as wc_orders
from stockyard.engine import ItemFilter
from stockyard.errors import InvalidInput, PermanentError
from tests.support.api_env import ApiEnv
from tests.support.app_servers import serve_app
from tests.support.woocommerce_double import (
    CONSUMER_KEY,
    CONSUMER_SECRET,
    Served,
    WooCommerceDouble,
    serve,
)
from tests.support.woocommerce_double_bulk import connected

SECRET = "whsec-of-merchant-a"


@pytest.fixture
def served() -> Iterator[Served]:
    with serve(WooCommerceDouble()) as s:
        yield s


@pytest.fixture
def store(served: Served) -> Iterator[WooCommerceConnector]:
    with connected(served) as c:
        yield c


def at(double: WooCommerceDouble, seconds: float) -> dt.datetime:
    return double.clock + dt.timedelta(seconds=seconds)


# ---------------------------------------------------------------------- mapping


def test_an_order_maps_to_a_balanced_record_with_net_prices(
    served: Served, store: WooCommerceConnector
) -> None:
    placed = served.double.add_order(
        [("TEE-S", 2, "10.00"), ("MUG", 3, "3.3333")], shipping="5.00", tax_rate="0.23"
    )
    record = store.get_order(str(placed["id"]))
    order = parse(Order, record, "order")
    assert order.remote_id == str(placed["id"]) and order.currency == "EUR"
    assert [(li.sku, li.quantity, li.price) for li in order.lines] == [
        ("TEE-S", 2, Decimal("10.00")),
        ("MUG", 3, Decimal("3.3333")),
    ]
    assert (order.shipping, order.tax, order.total) == (
        Decimal("5.00"),
        Decimal(placed["total_tax"]),
        Decimal(placed["total"]),
    )
    lines = sum(Decimal(li["total"]) for li in placed["line_items"])
    assert lines + order.shipping + order.tax == order.total
    assert order.shipping_address is not None and order.shipping_address.name == "Ana Lima"
    assert order.shipping_address.country == "PT" and order.shipping_address.line1
    assert order.customer is not None and order.customer.code == "guest:ana@example.com"


def test_prices_entered_with_tax_still_reach_the_record_net(
    served: Served, store: WooCommerceConnector
) -> None:
    # WooCommerce keeps line totals without tax either way; the flag changes nothing here.
    placed = served.double.add_order(
        [("TEE-S", 1, "8.1301")], tax_rate="0.23", prices_include_tax=True, customer_id=42
    )
    order = parse(Order, store.get_order(str(placed["id"])), "order")
    assert order.lines[0].price == Decimal("8.13")
    assert order.customer is not None and order.customer.code == "42"
    assert order.lines[0].price + order.tax == order.total


@pytest.mark.parametrize("status", ["pending", "on-hold", "completed", "cancelled", "refunded"])
def test_only_processing_orders_are_taken(
    served: Served, store: WooCommerceConnector, status: str
) -> None:
    placed = served.double.add_order([("TEE-S", 1, "10.00")], status=status)
    with pytest.raises(OrderDeclined, match=f"status {status}"):
        store.get_order(str(placed["id"]))


def test_an_unknown_order_or_a_foreign_id_is_permanent(
    served: Served, store: WooCommerceConnector
) -> None:
    with pytest.raises(PermanentError, match="no order 99999"):
        store.get_order("99999")
    with pytest.raises(PermanentError, match="not an order id"):
        store.get_order("gid://shopify/Order/1")


# ---------------------------------------------------------------------- the poll


def test_the_poll_asks_for_processing_orders_by_gmt_modification_and_pages(
    served: Served, store: WooCommerceConnector
) -> None:
    double = served.double
    made = []
    for n in range(250):
        double.tick()
        made.append(double.add_order([(f"SKU-{n}", 1, "1.00")])["id"])
    double.add_order([("HELD", 1, "1.00")], status="on-hold")
    cursor = wc_orders._iso(at(double, -200))
    page = wc_orders.fetch_orders(store.api, cursor, now=at(double, 60))
    assert [r["remote_id"] for r in page.records] == [str(i) for i in made]  # oldest first
    lists = [r for r in double.received if r.path == "/orders"]
    assert [r.query["page"] for r in lists] == ["1", "2", "3"]
    assert lists[0].query == {
        "status": "processing",
        "orderby": "modified",
        "order": "asc",
        "dates_are_gmt": "true",
        "modified_after": wc_orders._iso(at(double, -200 - 120)),  # the overlap, read only
        "modified_before": wc_orders._iso(at(double, 60)),
        "per_page": "100",
        "page": "1",
    }
    assert page.cursor == double.orders[made[-1]]["date_modified_gmt"]


def test_an_empty_pull_keeps_the_cursor_and_the_overlap_rereads(
    served: Served, store: WooCommerceConnector
) -> None:
    double = served.double
    placed = double.add_order([("TEE-S", 1, "1.00")])
    first = wc_orders.fetch_orders(store.api, None, now=at(double, 5))
    assert [r["remote_id"] for r in first.records] == [str(placed["id"])]
    assert first.cursor == placed["date_modified_gmt"]
    again = wc_orders.fetch_orders(store.api, first.cursor, now=at(double, 300))
    assert again.cursor == first.cursor  # re-read inside the overlap; cursor unmoved
    assert [r["remote_id"] for r in again.records] == [str(placed["id"])]
    later = wc_orders.fetch_orders(store.api, first.cursor, now=at(double, 300))
    assert later.cursor == first.cursor


def test_a_first_pull_looks_back_a_day(served: Served, store: WooCommerceConnector) -> None:
    double = served.double
    old = double.add_order([("OLD", 1, "1.00")])
    double.tick(3 * 86400)
    new = double.add_order([("NEW", 1, "1.00")])
    page = wc_orders.fetch_orders(store.api, None, now=at(double, 1))
    assert [r["remote_id"] for r in page.records] == [str(new["id"])]
    assert str(old["id"]) not in {r["remote_id"] for r in page.records}


def test_a_set_that_shrinks_mid_pull_stops_it_before_the_pages_that_may_have_slid(
    served: Served, store: WooCommerceConnector, monkeypatch: pytest.MonkeyPatch
) -> None:
    double = served.double
    made = []
    for n in range(150):
        double.tick()
        made.append(double.add_order([(f"SKU-{n}", 1, "1.00")])["id"])
    call = store.api.call

    def meanwhile(method: str, path: str, what: str, *a: Any, **k: Any) -> Any:
        answer = call(method, path, what, *a, **k)
        if k.get("params", {}).get("page") == "1":
            double.tick(30)
            double.touch(made[5], status="completed")  # leaves the set: the rest slide
        return answer

    monkeypatch.setattr(store.api, "call", meanwhile)
    page = wc_orders.fetch_orders(store.api, wc_orders._iso(at(double, -400)), now=at(double, 1))
    # The cursor stays at the newest order of page 1; the next pull reads on from there.
    assert page.cursor == double.orders[made[99]]["date_modified_gmt"]
    monkeypatch.setattr(store.api, "call", call)
    following = wc_orders.fetch_orders(store.api, page.cursor, now=at(double, 60))
    seen = {r["remote_id"] for r in page.records} | {r["remote_id"] for r in following.records}
    # None slid past: every order still processing was read by one pull or the other.
    assert {str(i) for i in made if i != made[5]} <= seen


def test_fetch_orders_through_the_connector(served: Served, store: WooCommerceConnector) -> None:
    served.double.clock = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    placed = served.double.add_order([("TEE-S", 1, "1.00")])
    page = store.fetch_orders(None)  # the real clock: a day back from now
    assert [r["remote_id"] for r in page.records] == [str(placed["id"])]
    assert page.cursor == placed["date_modified_gmt"]


# ---------------------------------------------------------------------- webhooks


def signed(order: dict[str, Any], secret: str = SECRET) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(order).encode()
    headers = {"x-wc-webhook-signature": wc_orders.signature(secret, body)}
    return body, headers


def test_a_signed_webhook_names_the_order_and_its_state(served: Served) -> None:
    order = served.double.add_order([("TEE-S", 1, "1.00")])
    body, headers = signed(order)
    d = wc_orders.read_webhook("order/created", body, headers, SECRET, {})
    assert d.records == (str(order["id"]),) and d.topic == "orders"
    assert d.message_id == f"woocommerce:{order['id']}:{order['date_modified_gmt']}"
    # The unsigned delivery-id header changes nothing: the same body is the same delivery.
    again = wc_orders.read_webhook(
        "order/updated", body, headers | {"x-wc-webhook-delivery-id": "fresh"}, SECRET, {}
    )
    assert again.message_id == d.message_id


def test_webhooks_refused_or_taken_with_nothing_to_do(served: Served) -> None:
    order = served.double.add_order([("TEE-S", 1, "1.00")])
    body, headers = signed(order)
    with pytest.raises(Unsigned):
        wc_orders.read_webhook("order/created", body, headers, "another-secret", {})
    with pytest.raises(Unsigned):
        wc_orders.read_webhook("order/created", body + b" ", headers, SECRET, {})
    with pytest.raises(Unsigned):
        wc_orders.read_webhook("order/created", body, {}, SECRET, {})
    with pytest.raises(InvalidInput, match="not taken"):
        wc_orders.read_webhook("order/deleted", body, headers, SECRET, {})
    with pytest.raises(InvalidInput, match="does not match"):
        mismatched = headers | {"x-wc-webhook-topic": "order.deleted"}
        wc_orders.read_webhook("order/created", body, mismatched, SECRET, {})
    held = signed(order | {"status": "on-hold"})
    assert wc_orders.read_webhook("order/updated", *held, SECRET, {}).records == ()
    no_time = signed(order | {"date_modified_gmt": None})
    with pytest.raises(InvalidInput, match="date_modified_gmt"):
        wc_orders.read_webhook("order/updated", *no_time, SECRET, {})
    ping = wc_orders.read_webhook("order/created", b"webhook_id=7", {}, SECRET, {})
    assert ping.records == () and ping.message_id == "woocommerce:ping:7"
    with pytest.raises(Unsigned):  # only the ping's exact form goes unsigned
        wc_orders.read_webhook("order/created", b"webhook_id=7&x=1", {}, SECRET, {})


@pytest.fixture
def env(tmp_path: Path) -> Iterator[ApiEnv]:
    e = ApiEnv(f"sqlite:///{tmp_path}/woo.db")
    yield e
    e.close()


@pytest.fixture
def stockyard(env: ApiEnv) -> Iterator[str]:
    with serve_app(env.app) as url:
        yield url


def sync_orders(env: ApiEnv, client: int) -> list[Any]:
    items = env.queue.list_items(ItemFilter(client_id=client), 100)
    return [i for i in items if i.instruction == "sync_order"]


def test_webhooks_end_to_end_into_a_stockyard_app(
    env: ApiEnv, served: Served, stockyard: str
) -> None:
    double = served.double
    conn = env.service.create_connection(
        env.root,
        env.a.id,
        "channel",
        "woocommerce",
        "Woo",
        {"url": served.url},
        {
            "consumer_key": CONSUMER_KEY,
            "consumer_secret": CONSUMER_SECRET,
            "webhook_secret": SECRET,
        },
    ).id
    base = f"{stockyard}/v1/inbound/{conn}/webhooks"
    for topic in ("order.created", "order.updated"):
        double.subscribe(topic, f"{base}/{topic.replace('.', '/')}", SECRET)
    ping = double.ping(f"{base}/order/created")
    assert ping.status == 200 and sync_orders(env, env.a.id) == []
    placed = double.add_order([("TEE-S", 1, "1.00")])
    assert double.delivered[-1].status == 200
    (item,) = sync_orders(env, env.a.id)
    assert item.payload == {"remote_id": str(placed["id"])}
    # A redelivery of the same body enqueues nothing new; a real update does.
    last = double.delivered[-1]
    again = double.post_webhook(last.url, "order.created", last.body, SECRET)
    assert again.status == 200 and len(sync_orders(env, env.a.id)) == 1
    double.tick()
    double.touch(placed["id"], customer_note="ring twice")
    assert len(sync_orders(env, env.a.id)) == 2
    # Signed with another secret: refused, nothing queued.
    forged = double.post_webhook(last.url, "order.created", last.body, "not-the-secret")
    assert forged.status == 401 and len(sync_orders(env, env.a.id)) == 2
    # A held order is accepted with nothing to do.
    double.add_order([("TEE-S", 1, "1.00")], status="on-hold")
    assert double.delivered[-1].status == 200 and len(sync_orders(env, env.a.id)) == 2


def test_the_ping_is_answered_200_as_woocommerce_requires(
    env: ApiEnv, served: Served, stockyard: str
) -> None:
    conn = env.service.create_connection(
        env.root,
        env.a.id,
        "channel",
        "woocommerce",
        "Woo",
        {"url": served.url},
        {"consumer_key": CONSUMER_KEY, "consumer_secret": CONSUMER_SECRET, "webhook_secret": "s"},
    ).id
    # WC_Webhook::deliver_ping takes any answer but exactly 200 as a failure.
    ping = served.double.ping(f"{stockyard}/v1/inbound/{conn}/webhooks/order/created")
    assert ping.status == 200
    assert json.loads(ping.answer) == {"items": []}


# ---------------------------------------------------------------------- fulfillment

TRACKING = {"carrier": "CTT", "number": "RR123456789PT", "url": "https://ctt.pt/t/RR123456789PT"}


def writes(double: WooCommerceDouble) -> list[str]:
    return [c for c in double.calls() if not c.startswith("GET")]


def test_a_complete_fulfillment_adds_the_tracking_note_then_completes(
    served: Served, store: WooCommerceConnector
) -> None:
    double = served.double
    placed = double.add_order([("TEE-S", 2, "10.00")])
    oid = placed["id"]
    store.push_fulfillment(str(oid), {"id": "F1", "state": "complete", "tracking": TRACKING}, "k")
    assert writes(double) == [f"POST /orders/{oid}/notes", f"PUT /orders/{oid}"]
    assert double.orders[oid]["status"] == "completed"
    (note,) = double.customer_notes(oid)
    assert "CTT" in note and "RR123456789PT" in note and TRACKING["url"] in note
    # A repeat (a retry after a lost answer) sends nothing.
    store.push_fulfillment(str(oid), {"id": "F1", "state": "complete", "tracking": TRACKING}, "k")
    assert len(writes(double)) == 2 and len(double.customer_notes(oid)) == 1


def test_a_partial_fulfillment_notes_what_shipped_and_leaves_the_order_processing(
    served: Served, store: WooCommerceConnector
) -> None:
    double = served.double
    oid = double.add_order([("TEE-S", 2, "10.00"), ("MUG", 1, "5.00")])["id"]
    partial = {
        "state": "complete",
        "tracking": TRACKING,
        "lines": [{"sku": "TEE-S", "quantity": 2}],
    }
    store.push_fulfillment(str(oid), partial, "k")
    assert double.orders[oid]["status"] == "processing"
    (note,) = double.customer_notes(oid)
    assert "2 x TEE-S" in note
    rest = {
        "state": "complete",
        "lines": [{"sku": "TEE-S", "quantity": 2}, {"sku": "MUG", "quantity": 1}],
    }
    store.push_fulfillment(str(oid), rest, "k")
    assert double.orders[oid]["status"] == "completed"


def test_what_is_not_sent_or_refused(served: Served, store: WooCommerceConnector) -> None:
    double = served.double
    oid = double.add_order([("TEE-S", 1, "10.00")])["id"]
    store.push_fulfillment(str(oid), {"state": "open", "tracking": TRACKING}, "k")
    assert double.calls() == []
    store.push_fulfillment(str(oid), {"state": "complete"}, "k")  # no tracking: no note
    assert writes(double) == [f"PUT /orders/{oid}"] and double.customer_notes(oid) == []
    gone = double.add_order([("TEE-S", 1, "10.00")], status="cancelled")["id"]
    with pytest.raises(PermanentError, match="cancelled"):
        store.push_fulfillment(str(gone), {"state": "complete", "tracking": TRACKING}, "k")
    assert double.orders[gone]["status"] == "cancelled"
