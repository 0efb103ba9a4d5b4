"""Tryton to Shopify through a real worker process (issue 18): Tryton (trytond, SQLite) on
127.0.0.1 is the source, the Shopify double (tests/support/shopify_double.py, Shopify's
own Admin schema) runs in this process and the `stockyard worker` process reaches it over
HTTP. Products arrive with prices, stock at the location the Tryton warehouse is mapped to
(`locations`, not the `location_id` fallback) and images; a price change is one variant
update and nothing else written; a drained bucket (THROTTLED) retries no sooner than the
bucket allows and never spins, a few 502s retry by themselves; an order placed in the
double arrives by webhook (Stockyard's API served in this process) and becomes a Tryton
sale, and Tryton's shipment shows in the double as the order fulfilled with its tracking
number; a product the shop refuses blocks the Shopify lane and only that lane (the Tryton
lane and a second channel's go on). Every request the worker sent is valid against the
schema.

Skipped when the schema is not installed (bash scripts/install-shopify-schema.sh).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from graphql import FieldNode, get_operation_ast, parse
from systems.launch import (
    Running,
    TrytonItem,
    receive_stock,
    seed_tryton_items,
    set_tryton_price,
    ship_tryton_sale,
)

from stockyard.engine import Request
from stockyard.tenancy import Tenancy
from tests.support import shopify_schema as schema
from tests.support.e2e import (
    ADMIN,
    Deployed,
    Stack,
    api_server,
    sale_lines,
    wait_for,
    wait_for_sale,
)

pytestmark = schema.needs_schema

from tests.support.shopify_double import TOKEN, Served, ShopifyDouble, serve  # noqa: E402
from tests.support.shopify_double_faults import Faults  # noqa: E402
from tests.support.shopify_double_orders import Webhooks, webhooks  # noqa: E402

SHOP = "stockyard-e2e.myshopify.com"
WEBHOOK_SECRET = "e2e-app-client-secret"

# Codes of their own: the session's Tryton is shared with test_erp_shop.
HOODIE = TrytonItem(
    "SY-HOOD", "Shopify hoodie", Decimal("49.00"), (("SY-HOOD-S", 4), ("SY-HOOD-M", 6))
)
CAP = TrytonItem("SY-CAP", "Shopify cap", Decimal("15.00"), (("SY-CAP", 9),))
REFUSED = TrytonItem("SY-BAD", "Refused gadget", Decimal("5.00"), (("SY-BAD", 1),))
SKUS = ("SY-HOOD-S", "SY-HOOD-M", "SY-CAP")
# What a price change may read: the product's variants (to update the ones that exist) and
# their inventory levels (the stock is compared, and left alone when it did not change).
PRICE_CHANGE_READS = {"product", "nodes"}
PRICE_CHANGE_REQUESTS = 3  # per variant: one of each read and the update


@dataclass
class Deployment(Deployed):
    warehouse_id: int
    other_id: int  # a second channel (demo) the flows feed too
    double: ShopifyDouble
    location: str  # where the Tryton warehouse's stock goes (`locations`)
    fallback: str  # `location_id`: stock must not land here

    @property
    def faults(self) -> Faults:
        faults: Faults = self.double.faults  # type: ignore[attr-defined]
        return faults

    @property
    def hooks(self) -> Webhooks:
        return webhooks(self.double)

    def variants(self) -> dict[str, dict[str, Any]]:
        """The double's variants of this test by SKU: price, product title, stock at the
        mapped location and at any other."""
        with self.double.lock:
            levels = self.double.shop.levels
            return {
                v["sku"]: {
                    "price": Decimal(v["price"]),
                    "title": v["_product"]["title"],
                    "product": v["_product"]["id"],
                    "available": self.double.shop.available(v["_item"]["id"], self.location),
                    "elsewhere": {
                        at: level["available"]
                        for (item, at), level in levels.items()
                        if item == v["_item"]["id"] and at != self.location
                    },
                }
                for v in self.double.shop.of("ProductVariant")
                if v["sku"] in SKUS
            }

    def sent(self, field: str, since: int = 0) -> list[Any]:
        """The requests since `since` whose operation uses this root field."""
        with self.double.lock:
            return [r for r in self.double.received[since:] if field in (r.query or "")]

    def mark(self) -> int:
        with self.double.lock:
            return len(self.double.received)

    def roots(self, since: int) -> tuple[list[str], set[str]]:
        """The mutations (in order) and the fields read since `since`, by root field."""
        with self.double.lock:
            received = list(self.double.received[since:])
        mutations: list[str] = []
        reads: set[str] = set()
        for r in received:
            kind, fields = _roots(r.query or "", r.operation_name)
            if kind == "mutation":
                mutations += fields
            else:
                reads.update(fields)
        return mutations, reads


@pytest.fixture
def served() -> Iterator[Served]:
    # A Standard plan's bucket (capacity 1,000, 100 points/s), on the real clock.
    double = ShopifyDouble()
    double.shop.currency = "USD"  # the Tryton company's (systems/launch.py)
    with serve(double) as s:
        yield s
        # Whatever happened, every request the worker sent was valid against the schema.
        assert s.double.received
        for r in s.double.received:
            assert r.token == TOKEN
            assert schema.validate(r.query or "", r.variables) == [], r.query


def _deployment(tmp_path: Path, tryton: Running, served: Served) -> Deployment:
    stack = Stack.init(tmp_path, tryton)
    # Two locations: the warehouse's stock must land at the one `locations` maps it to,
    # never at the `location_id` fallback.
    fallback = str(served.double.shop.add_location("Fallback")["id"])
    location = str(served.double.shop.add_location("Warehouse")["id"])
    erp_client = stack.erp()
    (tryton_warehouse,) = erp_client.model(
        "stock.location", "search_read", [("type", "=", "warehouse")], 0, None, None, ["code"]
    )
    source = stack.tryton_source()
    warehouse = stack.tryton_shipping()
    shop = stack.connect(
        "channel",
        "shopify",
        "Shopify",
        {
            "shop": SHOP,
            "base_url": served.url.split("/admin/api/")[0],
            "location_id": fallback,
            # Keyed as the Tryton connector names its warehouses' stock.
            "locations": {tryton_warehouse["code"] or str(tryton_warehouse["id"]): location},
        },
        {"access_token": TOKEN, "webhook_secret": WEBHOOK_SECRET},
    )
    other = stack.connect("channel", "demo", "Demo shop", {}, {})
    stack.init_channel(shop)
    webhooks(served.double).shop_domain = SHOP
    return Deployment(
        *stack.deployed(source, shop, erp_client),
        warehouse_id=warehouse,
        other_id=other,
        double=served.double,
        location=location,
        fallback=fallback,
    )


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Callable[[], str]]:
    yield from api_server(tmp_path)


def _settled(env: Deployment) -> bool:
    """Nothing of the Shopify lane left to do, and nothing failed there."""
    open_ = env.items(connection_id=env.shop_id, statuses=("queued", "running", "failed"))
    return not open_


def test_tryton_to_shopify_through_a_worker(
    tmp_path: Path,
    tryton: Running,
    served: Served,
    worker: Callable[[], Any],
    api: Callable[[], str],
) -> None:
    env = _deployment(tmp_path, tryton, served)
    stockyard = api()
    for topic in ("orders/create", "orders/updated"):
        url = f"{stockyard}/v1/inbound/{env.shop_id}/webhooks/{topic}"
        env.hooks.subscribe(topic, url, WEBHOOK_SECRET)
    seed_tryton_items(env.erp, (HOODIE, CAP))
    worker()

    # Products with their variants, prices and stock at the shop's location.
    def arrived() -> dict[str, dict[str, Any]] | None:
        found = env.variants()
        return found if len(found) == 3 else None

    shop = wait_for(arrived, "the three variants in the Shopify double")
    assert {s: (v["price"], v["available"]) for s, v in shop.items()} == {
        "SY-HOOD-S": (Decimal("49.00"), 4),
        "SY-HOOD-M": (Decimal("49.00"), 6),
        "SY-CAP": (Decimal("15.00"), 9),
    }
    assert {s: v["elsewhere"] for s, v in shop.items()} == {s: {} for s in SKUS}
    assert shop["SY-HOOD-S"]["product"] == shop["SY-HOOD-M"]["product"]
    assert shop["SY-HOOD-S"]["title"] == "Shopify hoodie"
    (channel,) = [
        c for c in Tenancy(env.queue.db).connections(env.client_id) if c.id == env.shop_id
    ]
    assert channel.status == "active"
    wait_for(lambda: _settled(env), "the Shopify lane to settle")

    # An image of a Tryton product (Tryton's modules here hold none: pushed to the source
    # connection, as a media server would) becomes the product's media in the shop.
    image = {"url": "https://images.example.com/sy-hood.jpg", "alt": "Shopify hoodie, front"}
    env.service.enqueue(
        ADMIN,
        env.client_id,
        [Request("sync_image", {"product": "SY-HOOD", "image": image}, env.source_id)],
    )

    def media() -> list[dict[str, Any]] | None:
        with env.double.lock:
            product = env.double.shop.get(shop["SY-HOOD-S"]["product"], "Product")
            return list(product["_media"]) if product and product["_media"] else None

    (hood_media,) = wait_for(media, "the hoodie's image in the Shopify double")
    assert (hood_media["alt"], hood_media["_source"]) == (image["alt"], image["url"])
    with env.double.lock:
        env.double.process_media()  # Shopify fetches and processes it in its own time
    assert hood_media["status"] == "READY"
    wait_for(lambda: _settled(env), "the Shopify lane to settle after the image")

    # A price change in Tryton is one variant update, nothing else written.
    since = env.mark()
    set_tryton_price(env.erp, "SY-CAP", Decimal("17.50"))
    wait_for(lambda: env.variants()["SY-CAP"]["price"] == Decimal("17.50"), "the new cap price")
    wait_for(lambda: _settled(env), "the Shopify lane to settle after the price")
    mutations, reads = env.roots(since)
    assert mutations == ["productVariantsBulkUpdate"]  # the stock did not change either
    assert reads <= PRICE_CHANGE_READS, reads - PRICE_CHANGE_READS

    # Another app drains the shop's bucket: the worker is THROTTLED and retries by itself,
    # never sooner than the bucket allows. (The cap again: every document of the change has
    # been sent before, so the client knows its cost and only the drained answers throttle.)
    since = env.mark()
    env.faults.drain_next(2)
    set_tryton_price(env.erp, "SY-CAP", Decimal("18.00"))
    wait_for(
        lambda: env.variants()["SY-CAP"]["price"] == Decimal("18.00"),
        "the new cap price through a drained bucket",
    )
    wait_for(lambda: _settled(env), "the Shopify lane to settle after THROTTLED")
    _assert_no_spin(env, since, variants=1)
    mutations, reads = env.roots(since)
    assert mutations == ["productVariantsBulkUpdate"]
    assert reads <= PRICE_CHANGE_READS, reads - PRICE_CHANGE_READS

    # Shopify's edge answers 502 twice: retried by itself, stock arrives.
    since = env.mark()
    env.faults.fail_next(2, 502)
    receive_stock(env.erp, "SY-CAP", 5)
    wait_for(lambda: env.variants()["SY-CAP"]["available"] == 14, "the cap's new stock")
    wait_for(lambda: _settled(env), "the Shopify lane to settle after the 502s")
    assert [r.status for r in env.double.received[since:]].count(502) == 2
    assert env.variants()["SY-CAP"]["elsewhere"] == {}

    # An order placed in the shop arrives by webhook and becomes a confirmed Tryton sale.
    with env.double.lock:
        location = env.double.shop.get(env.location, "Location")
    assert location is not None
    order = env.double.shop.add_order([("SY-CAP", 2, "18.00")], location, name="#E2E-1")
    (delivery,) = [
        d for d in env.hooks.delivered if d.headers["X-Shopify-Topic"] == "orders/create"
    ]
    assert delivery.status == 200

    erp_sale = wait_for_sale(env.erp, "#E2E-1")
    (line,) = sale_lines(env.erp, erp_sale)
    assert (line["quantity"], line["unit_price"]) == (2.0, Decimal("18.00"))

    # Tryton ships it: the shop's order is fulfilled, with the tracking number.
    ship_tryton_sale(env.erp, erp_sale["number"], reference="TRACK-E2E-1")

    def fulfilled() -> list[dict[str, Any]] | None:
        with env.double.lock:
            done = order["displayFulfillmentStatus"] == "FULFILLED"
            return list(order["_fulfillments"]) if done else None

    (fulfillment,) = wait_for(fulfilled, "order #E2E-1 fulfilled in the Shopify double")
    assert [t["number"] for t in fulfillment["trackingInfo"]] == ["TRACK-E2E-1"]
    wait_for(lambda: _settled(env), "the Shopify lane to settle after the order")

    # A product the shop refuses: a permanent error blocks the Shopify lane, only that one.
    env.faults.refuse_titles.add(REFUSED.name)
    refused_at = time.time()
    seed_tryton_items(env.erp, (REFUSED,))

    stuck = wait_for(env.failed_on_shop, "the refused product to fail")
    assert stuck.instruction == "add_product"
    assert stuck.error_kind == "permanent"
    assert "Refused gadget" in (stuck.error or "")
    assert TOKEN not in (stuck.error or "")
    lanes = env.lanes()
    assert lanes[env.shop_id].state == "blocked"
    assert lanes[env.source_id].state != "blocked"
    # The other channel took the refused product: the shop's refusal is not its business.
    wait_for(
        lambda: env.items_since(refused_at, env.other_id, "done", REFUSED.code),
        "the demo channel to take the product Shopify refused",
    )
    # The Tryton lane goes on: a later change is pulled and waits behind the blocked head,
    # while the demo channel's lane runs the same change.
    started = time.time()
    receive_stock(env.erp, "SY-HOOD-S", 3)

    def queued() -> list[Any]:
        found = env.items_since(started, env.shop_id, "queued", "SY-HOOD-S")
        return [i for i in found if i.instruction == "update_variant"]

    wait_for(queued, "the change queued behind the blocked head")
    # (The demo channel keeps no links: the change is a whole add_product there.)
    wait_for(
        lambda: env.items_since(started, env.other_id, "done", "SY-HOOD-S"),
        "the demo channel to run the same change",
    )
    time.sleep(2)  # the worker had time to run it, if the lane let it
    assert queued()
    assert env.variants()["SY-HOOD-S"]["available"] == 4
    lanes = env.lanes()
    assert lanes[env.other_id].state != "blocked"


def _assert_no_spin(env: Deployment, since: int, variants: int) -> None:
    """The drained bucket answered THROTTLED exactly as often as it was drained: a client
    coming back before the bucket refilled would have met the double's own (empty) bucket
    again; and each THROTTLED was followed by the next request no sooner than the wait its
    throttle status implied."""
    with env.double.lock:
        received = list(env.double.received)
        times = [env.faults.at(i) for i in range(len(received))]
    throttled = [
        i for i in range(since, len(received)) if _code(received[i].response) == "THROTTLED"
    ]
    trace = "\n".join(_trace(received, times, since))
    assert len(throttled) == 2, trace
    # The two drained answers and what the change itself sends (per variant: the product's
    # variants, their stock, the update): a retry loop would send many more.
    assert len(received) - since <= 2 + variants * PRICE_CHANGE_REQUESTS, trace
    for i in throttled:
        cost = received[i].response["extensions"]["cost"]
        bucket = cost["throttleStatus"]
        wait = (cost["requestedQueryCost"] - bucket["currentlyAvailable"]) / bucket["restoreRate"]
        assert i + 1 < len(received), "no retry after THROTTLED"
        gap = times[i + 1] - times[i]
        assert gap >= wait - 0.005, (
            f"request {i + 1} came {gap:.3f} s after THROTTLED, the bucket needed {wait:.3f} s:\n"
            + trace
        )


def _trace(received: list[Any], times: list[float], since: int) -> list[str]:
    """One line per request since `since`: when, which operation, its answer and bucket."""
    lines = []
    for i in range(since, len(received)):
        r = received[i]
        cost = (r.response or {}).get("extensions", {}).get("cost", {}) if r.response else {}
        left = (cost.get("throttleStatus") or {}).get("currentlyAvailable")
        _, fields = _roots(r.query or "", r.operation_name)
        lines.append(
            f"{i} +{times[i] - times[since]:.3f}s {','.join(fields)} {r.status}"
            f" {_code(r.response)} asked={cost.get('requestedQueryCost')} left={left}"
        )
    return lines


def _roots(query: str, operation_name: str | None) -> tuple[str, list[str]]:
    """The operation's kind (query, mutation) and its root fields."""
    operation = get_operation_ast(parse(query), operation_name)
    assert operation is not None, query
    fields = [f.name.value for f in operation.selection_set.selections if isinstance(f, FieldNode)]
    return operation.operation.value, fields


def _code(answer: Any) -> str | None:
    errors = answer.get("errors") if isinstance(answer, dict) else None
    if not isinstance(errors, list) or not errors:
        return None
    return (errors[0].get("extensions") or {}).get("code")
