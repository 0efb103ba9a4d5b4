"""Tryton to Magento through a real worker process (issue 19): Tryton (trytond, SQLite) on
127.0.0.1 is the source, the Magento double (tests/support/magento_double.py, checked
against Adobe's OpenAPI document) runs in this process and the `stockyard worker` process
reaches it over HTTP. Products arrive, a configurable one with its children (told apart by
the store's `variant` attribute: Tryton's variants have no options), with prices and MSI
stock; a price change is one `POST /V1/products/base-prices` and nothing else written;
503s, a 429 and a timeout retry by themselves; an order placed in the double comes in by
the channel's scheduled poll (`GET /V1/orders` on updated_at) and becomes a Tryton sale,
and Tryton's shipment comes back as `POST /V1/order/{id}/ship` with its track; a product
the store refuses blocks the Magento lane and only that lane. Every request the worker sent
was allowed by the document and every answer of the double was one it allows.

Skipped when the document is not installed (bash scripts/install-magento-openapi.sh).
"""

from __future__ import annotations

import datetime as dt
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

from tests.support import magento_contract as contract
from tests.support.e2e import Deployed, Stack, sale_lines, wait_for, wait_for_sale

pytestmark = pytest.mark.skipif(not contract.installed(), reason=contract.skip_reason())

from tests.support.magento_double import TOKEN, MagentoDouble, Served, serve  # noqa: E402

# Codes of their own: the session's Tryton is shared with test_erp_shop and Shopify's test.
TEE = TrytonItem("MG-TEE", "Magento tee", Decimal("25.00"), (("MG-TEE-S", 4), ("MG-TEE-M", 6)))
CAP = TrytonItem("MG-CAP", "Magento cap", Decimal("12.00"), (("MG-CAP", 9),))
REFUSED = TrytonItem("MG-BAD", "Refused gizmo", Decimal("5.00"), (("MG-BAD", 1),))
SKUS = ("MG-TEE", "MG-TEE-S", "MG-TEE-M", "MG-CAP")
POLL = "GET /V1/orders"  # the channel's order poll, every 5 s, in between everything


@dataclass
class Deployment(Deployed):
    double: MagentoDouble

    def products(self) -> dict[str, dict[str, Any]]:
        """The double's products of this test by SKU: type, price, MSI stock, links."""
        with self.double.lock:
            return {
                sku: {
                    "type": p["type_id"],
                    "price": p["price"],
                    "stock": (self.double.source_items.get((sku, "default")) or {}).get("quantity"),
                    "links": p["extension_attributes"].get("configurable_product_links", []),
                    "id": p["id"],
                }
                for sku, p in self.double.products.items()
                if sku in SKUS
            }

    def mark(self) -> int:
        with self.double.lock:
            return len(self.double.received)

    def sent(self, since: int) -> list[str]:
        """The requests since `since` (method and path), the order poll's left out."""
        with self.double.lock:
            received = list(self.double.received[since:])
        calls = [f"{r.method} {r.path.removeprefix('/rest/all')}" for r in received]
        return [c for c in calls if c != POLL]


@pytest.fixture
def served() -> Iterator[Served]:
    double = MagentoDouble()
    # The store's global select attribute for variants without options (Tryton's).
    double.add_attribute("variant", 150, [])
    with serve(double) as s:
        yield s
        # Whatever happened: nothing the worker sent was refused by the document, and
        # nothing the double answered was outside it.
        assert s.double.received
        assert [r.violation for r in s.double.received if r.violation] == []
        assert s.double.answer_faults == []
        assert {r.authorization for r in s.double.received} == {f"Bearer {TOKEN}"}


def _deployment(tmp_path: Path, tryton: Running, served: Served) -> Deployment:
    stack = Stack.init(tmp_path, tryton)
    source = stack.tryton_source()
    stack.tryton_shipping()
    shop = stack.connect(
        "channel",
        "magento",
        "Magento",
        # The order poll runs on schedule; a short timeout so a stalled store shows.
        {"url": served.url, "poll_orders_every": 5, "timeout": 3},
        {"access_token": TOKEN},
    )
    stack.init_channel(shop)
    return Deployment(
        *stack.deployed(source, shop),
        double=served.double,
    )


def _settled(env: Deployment) -> bool:
    """Nothing of the Magento lane left to do but the next order poll, nothing failed."""
    open_ = env.items(connection_id=env.shop_id, statuses=("queued", "running", "failed"))
    return all(i.instruction == "pull_orders" and i.status != "failed" for i in open_)


def _now() -> str:
    """Now as Magento writes updated_at (UTC), so the first poll's day back covers it."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def test_tryton_to_magento_through_a_worker(
    tmp_path: Path,
    tryton: Running,
    served: Served,
    worker: Callable[[], Any],
) -> None:
    env = _deployment(tmp_path, tryton, served)
    seed_tryton_items(env.erp, (TEE, CAP))
    worker()

    # Products with their variants, prices and stock.
    def arrived() -> dict[str, dict[str, Any]] | None:
        found = env.products()
        done = len(found) == 4 and all(found[s]["stock"] is not None for s in SKUS[1:])
        return found if done else None

    shop = wait_for(arrived, "the tee, its two children and the cap in the Magento double")
    # (A configurable product's own price is unused: Magento shows its children's.)
    assert {s: (p["type"], p["price"], p["stock"]) for s, p in shop.items() if s != "MG-TEE"} == {
        "MG-TEE-S": ("simple", 25.0, 4),
        "MG-TEE-M": ("simple", 25.0, 6),
        "MG-CAP": ("simple", 12.0, 9),
    }
    assert shop["MG-TEE"]["type"] == "configurable"
    assert shop["MG-TEE"]["links"] == [shop["MG-TEE-S"]["id"], shop["MG-TEE-M"]["id"]]
    wait_for(lambda: _settled(env), "the Magento lane to settle")

    # A price change in Tryton: one base-prices call, nothing else written (the stock is
    # read and left alone).
    since = env.mark()
    set_tryton_price(env.erp, "MG-CAP", Decimal("13.50"))
    wait_for(lambda: env.products()["MG-CAP"]["price"] == 13.5, "the new cap price")
    wait_for(lambda: _settled(env), "the Magento lane to settle after the price")
    sent = env.sent(since)
    assert [c for c in sent if not c.startswith("GET ")] == ["POST /V1/products/base-prices"]
    assert sent == ["POST /V1/products/base-prices", "GET /V1/inventory/source-items"]

    # The store answers 503 twice, then 429, then stalls past the timeout: retried by
    # the worker by itself, and the stock arrives.
    since = env.mark()
    with env.double.lock:
        env.double.faults += [(503, {"message": "Service Unavailable"})] * 2
        env.double.faults.append((429, {"message": "Too Many Requests"}))
        env.double.stalls.append(5.0)
    receive_stock(env.erp, "MG-CAP", 5)
    wait_for(lambda: env.products()["MG-CAP"]["stock"] == 14, "the cap's new stock")
    wait_for(lambda: _settled(env), "the Magento lane to settle after the faults")
    with env.double.lock:
        assert env.double.faults == [] and env.double.stalls == []
        assert len(env.double.received) - since >= 6  # 4 failed tries + the change

    # An order placed in the store comes in by the scheduled poll: a confirmed sale.
    with env.double.lock:
        order = env.double.add_order(
            [{"sku": "MG-TEE-S", "qty": 2, "price": 25.0, "configurable": "MG-TEE"}],
            currency="USD",
            updated_at=_now(),
        )

    erp_sale = wait_for_sale(env.erp, order["increment_id"])
    (line,) = sale_lines(env.erp, erp_sale)
    assert (line["quantity"], line["unit_price"]) == (2.0, Decimal("25.00"))

    # Tryton ships it: the shipment comes back with its track, the order is complete.
    ship_tryton_sale(env.erp, erp_sale["number"], reference="TRACK-MG-1")

    def shipped() -> list[dict[str, Any]] | None:
        with env.double.lock:
            found = [s for s in env.double.shipments if s["order_id"] == order["entity_id"]]
            return found if order["state"] == "complete" else None

    (shipment,) = wait_for(shipped, "the order shipped in the Magento double")
    assert [t["track_number"] for t in shipment["tracks"]] == ["TRACK-MG-1"]
    (ship_call,) = [r for r in env.double.requests("POST", "/V1/order/{orderId}/ship")]
    assert ship_call.body["items"] == [{"order_item_id": order["items"][0]["item_id"], "qty": 2}]
    wait_for(lambda: _settled(env), "the Magento lane to settle after the order")

    # A product the store refuses: a permanent error blocks the Magento lane, only it.
    with env.double.lock:
        env.double.refuse_names.add(REFUSED.name)
    seed_tryton_items(env.erp, (REFUSED,))

    stuck = wait_for(env.failed_on_shop, "the refused product to fail")
    assert stuck.instruction == "add_product"
    assert stuck.error_kind == "permanent"
    assert "Refused gizmo" in (stuck.error or "")
    assert TOKEN not in (stuck.error or "")
    lanes = env.lanes()
    assert lanes[env.shop_id].state == "blocked"
    assert lanes[env.source_id].state != "blocked"
    # The Tryton lane goes on: a later change is pulled and waits behind the blocked head.
    started = time.time()
    receive_stock(env.erp, "MG-CAP", 1)

    def queued() -> list[Any]:
        return env.items_since(started, env.shop_id, "queued", "MG-CAP")

    wait_for(queued, "the change queued behind the blocked head")
    time.sleep(2)  # the worker had time to run it, if the lane let it
    assert queued()
    assert env.products()["MG-CAP"]["stock"] == 14
