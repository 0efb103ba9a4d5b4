"""Tryton to WooCommerce through a real worker process (issue 19): Tryton (trytond, SQLite)
on 127.0.0.1 is the source, the WooCommerce double (tests/support/woocommerce_double.py,
checked against the transcribed wc/v3 contract) runs in this process and the `stockyard
worker` process reaches it over HTTP. Products arrive with their variants, prices and
stock, and an image by URL; a price change is one small write; 429, 503 and a timeout are
retried by themselves; an order placed in the double arrives by webhook (signed as
WooCommerce signs it, delivered to Stockyard's API served in this process, after the ping
that saving a webhook sends) and becomes a Tryton sale, and Tryton's shipment comes back as
the order completed with a customer note holding the tracking number; a product the store
refuses blocks the WooCommerce lane and only that lane. Every request the worker sent is
valid against the contract, and carried the consumer key.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from systems.launch import (
    Running,
    TrytonItem,
    receive_stock,
    seed_tryton_items,
    set_tryton_price,
    ship_tryton_sale,
)

from stockyard.engine import Request
from tests.support.e2e import (
    ADMIN,
    Deployed,
    Stack,
    api_server,
    sale_lines,
    wait_for,
    wait_for_sale,
)
from tests.support.woocommerce_double import (
    CONSUMER_KEY,
    CONSUMER_SECRET,
    Served,
    WooCommerceDouble,
    serve,
)

WEBHOOK_SECRET = "e2eWooWebhookSecret42"  # letters and digits (docs/woocommerce-notes.md)
TIMEOUT = 2.0  # the connection's; the double stalls longer once

# Codes of their own: the session's Tryton is shared with the other end-to-end tests.
HOODIE = TrytonItem("WC-HOOD", "Woo hoodie", Decimal("49.00"), (("WC-HOOD-S", 4), ("WC-HOOD-M", 6)))
CAP = TrytonItem("WC-CAP", "Woo cap", Decimal("15.00"), (("WC-CAP", 9),))
REFUSED = TrytonItem("WC-BAD", "Woo refused gadget", Decimal("5.00"), (("WC-BAD", 1),))
SKUS = ("WC-HOOD-S", "WC-HOOD-M", "WC-CAP")
# What a variant's own fields may write (the price change's PUT holds nothing else).
VARIANT_FIELDS = {"sku", "regular_price", "sale_price", "manage_stock", "stock_quantity", "weight"}


@dataclass
class Deployment(Deployed):
    other_id: int  # a second channel (demo) the flows feed too
    double: WooCommerceDouble

    def variants(self) -> dict[str, dict[str, Any]]:
        """This test's SKUs in the double (products and variations): price, stock, parent."""
        with self.double.lock:
            rows = [*self.double.products.values(), *self.double.variations.values()]
            return {
                r["sku"]: {
                    "id": r["id"],
                    "price": Decimal(r["regular_price"] or "0"),
                    "stock": r["stock_quantity"] if r["manage_stock"] else None,
                    "parent": r.get("parent_id") or r["id"],
                }
                for r in rows
                if r["sku"] in SKUS and r.get("status") != "trash"
            }

    def mark(self) -> int:
        with self.double.lock:
            return len(self.double.received)

    def since(self, mark: int) -> list[Any]:
        with self.double.lock:
            return list(self.double.received[mark:])


@pytest.fixture
def served() -> Iterator[Served]:
    # USD: the Tryton company's (systems/launch.py). Ids of their own: an order's number, a
    # Tryton sale's reference, must not meet another test's in the shared Tryton.
    double = WooCommerceDouble(currency="USD", first_id=930_000)
    with serve(double) as s:
        yield s
        # Whatever happened, every request the worker sent was valid against the contract
        # and carried the consumer key; the double's own answers kept to it.
        assert s.double.received
        assert s.double.refused == []
        assert s.double.broken == []
        assert all(r.authorized for r in s.double.received)


def _deployment(tmp_path: Path, tryton: Running, served: Served) -> Deployment:
    stack = Stack.init(tmp_path, tryton)
    source = stack.tryton_source()
    stack.tryton_shipping()
    shop = stack.connect(
        "channel",
        "woocommerce",
        "WooCommerce",
        {"url": served.url, "timeout": TIMEOUT},
        {
            "consumer_key": CONSUMER_KEY,
            "consumer_secret": CONSUMER_SECRET,
            "webhook_secret": WEBHOOK_SECRET,
        },
    )
    other = stack.connect("channel", "demo", "Demo shop", {}, {})
    stack.init_channel(shop)
    return Deployment(
        *stack.deployed(source, shop),
        other_id=other,
        double=served.double,
    )


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Callable[[], str]]:
    yield from api_server(tmp_path)


def _settled(env: Deployment) -> bool:
    """Nothing of the WooCommerce lane left to do, and nothing failed there."""
    return not env.items(connection_id=env.shop_id, statuses=("queued", "running", "failed"))


def test_tryton_to_woocommerce_through_a_worker(
    tmp_path: Path,
    tryton: Running,
    served: Served,
    worker: Callable[[], Any],
    api: Callable[[], str],
) -> None:
    env = _deployment(tmp_path, tryton, served)
    hooks = f"{api()}/v1/inbound/{env.shop_id}/webhooks"
    for topic in ("order.created", "order.updated"):
        # Saving a webhook in WooCommerce pings it first, and wants exactly 200.
        assert env.double.ping(f"{hooks}/{topic.replace('.', '/')}").status == 200
        env.double.subscribe(topic, f"{hooks}/{topic.replace('.', '/')}", WEBHOOK_SECRET)
    seed_tryton_items(env.erp, (HOODIE, CAP))
    worker()

    # Products with their variants, prices and stock.
    def arrived() -> dict[str, dict[str, Any]] | None:
        found = env.variants()
        return found if len(found) == 3 else None

    store = wait_for(arrived, "the three variants in the WooCommerce double")
    assert {s: (v["price"], v["stock"]) for s, v in store.items()} == {
        "WC-HOOD-S": (Decimal("49.00"), 4),
        "WC-HOOD-M": (Decimal("49.00"), 6),
        "WC-CAP": (Decimal("15.00"), 9),
    }
    hood, cap = store["WC-HOOD-S"]["parent"], store["WC-CAP"]["id"]
    with env.double.lock:
        assert env.double.products[hood]["type"] == "variable"
        assert env.double.products[hood]["name"] == "Woo hoodie"
        assert store["WC-HOOD-M"]["parent"] == hood
        assert env.double.products[cap]["type"] == "simple"
    wait_for(lambda: _settled(env), "the WooCommerce lane to settle")

    # An image of a Tryton product (pushed to the source, as a media server would) is
    # added by URL: WooCommerce downloads it, Stockyard never does.
    image = {"url": "https://images.example.com/wc-hood.jpg", "alt": "Woo hoodie, front"}
    env.service.enqueue(
        ADMIN,
        env.client_id,
        [Request("sync_image", {"product": HOODIE.code, "image": image}, env.source_id)],
    )

    def images() -> list[dict[str, Any]] | None:
        with env.double.lock:
            return env.double.images_of(hood) or None

    (shown,) = wait_for(images, "the hoodie's image in the WooCommerce double")
    assert (shown["source"], shown["alt"]) == (image["url"], image["alt"])
    wait_for(lambda: _settled(env), "the WooCommerce lane to settle after the image")

    # A price change in Tryton is one small write: the cap's own fields, nothing else.
    mark = env.mark()
    set_tryton_price(env.erp, CAP.code, Decimal("17.50"))
    wait_for(lambda: env.variants()["WC-CAP"]["price"] == Decimal("17.50"), "the new cap price")
    wait_for(lambda: _settled(env), "the WooCommerce lane to settle after the price")
    writes = [r for r in env.since(mark) if r.method != "GET"]
    assert [f"{r.method} {r.path}" for r in writes] == [f"PUT /products/{cap}"]
    assert set(writes[0].body) <= VARIANT_FIELDS, writes[0].body
    assert len(env.since(mark)) <= 3  # the reads before it: a handful, not the catalogue

    # The store throttles (429), then its host fails (503): retried by themselves.
    mark = env.mark()
    env.double.fail_next(429, 503)
    receive_stock(env.erp, "WC-CAP", 5)
    wait_for(lambda: env.variants()["WC-CAP"]["stock"] == 14, "the cap's stock after 429, 503")
    wait_for(lambda: _settled(env), "the WooCommerce lane to settle after 429, 503")
    assert [r.status for r in env.since(mark)][:2] == [429, 503]

    # A request outlives the connection's timeout: the item is retried by itself.
    started = time.time()
    env.double.stall_next(TIMEOUT + 2)
    receive_stock(env.erp, "WC-CAP", 1)
    wait_for(lambda: env.variants()["WC-CAP"]["stock"] == 15, "the cap's stock after a timeout")
    wait_for(lambda: _settled(env), "the WooCommerce lane to settle after the timeout")
    (change,) = env.items_since(started, env.shop_id, "done", "WC-CAP")
    assert change.attempts == 2, change

    # An order placed in the store arrives by webhook and becomes a confirmed Tryton sale.
    order = env.double.add_order([("WC-CAP", 2, "18.00")])
    (delivery,) = [d for d in env.double.delivered if d.headers.get("X-WC-Webhook-Topic")]
    assert delivery.status == 200, delivery.answer

    erp_sale = wait_for_sale(env.erp, order["number"])
    (line,) = sale_lines(env.erp, erp_sale)
    assert (line["quantity"], line["unit_price"]) == (2.0, Decimal("18.00"))

    # Tryton ships it: the order is completed, with the tracking number in a customer note.
    ship_tryton_sale(env.erp, erp_sale["number"], reference="TRACK-WC-1")

    def completed() -> list[str] | None:
        with env.double.lock:
            done = env.double.orders[order["id"]]["status"] == "completed"
            return env.double.customer_notes(order["id"]) if done else None

    (note,) = wait_for(completed, f"order {order['number']} completed in the double")
    assert "TRACK-WC-1" in note
    wait_for(lambda: _settled(env), "the WooCommerce lane to settle after the order")

    # A product the store refuses (its SKU is held by a product in WooCommerce's trash):
    # a permanent error blocks the WooCommerce lane, and only that one.
    env.double.trash(env.double.add_product(REFUSED.code))
    refused_at = time.time()
    seed_tryton_items(env.erp, (REFUSED,))

    stuck = wait_for(env.failed_on_shop, "the refused product to fail")
    assert stuck.instruction == "add_product"
    assert stuck.error_kind == "permanent"
    assert f"SKU {REFUSED.code}" in (stuck.error or "")
    assert CONSUMER_SECRET not in (stuck.error or "") and CONSUMER_KEY not in (stuck.error or "")
    lanes = env.lanes()
    assert lanes[env.shop_id].state == "blocked"
    assert lanes[env.source_id].state != "blocked"
    wait_for(
        lambda: env.items_since(refused_at, env.other_id, "done", REFUSED.code),
        "the demo channel to take the product WooCommerce refused",
    )
    # The Tryton lane goes on; the WooCommerce lane holds the next change behind its head.
    started = time.time()
    receive_stock(env.erp, "WC-HOOD-S", 3)

    def queued() -> list[Any]:
        found = env.items_since(started, env.shop_id, "queued", "WC-HOOD-S")
        return [i for i in found if i.instruction == "update_variant"]

    wait_for(queued, "the change queued behind the blocked head")
    wait_for(
        lambda: env.items_since(started, env.other_id, "done", "WC-HOOD-S"),
        "the demo channel to run the same change",
    )
    time.sleep(2)  # the worker had time to run it, if the lane let it
    assert queued()
    assert env.variants()["WC-HOOD-S"]["stock"] == 4
    lanes = env.lanes()
    assert lanes[env.other_id].state != "blocked"
