"""The data flows end to end: items run through a real worker, the `http` connector talks
to real HTTP servers on 127.0.0.1 (tests/support/remote.py), and the tests check what those
servers received and what the catalog holds afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from stockyard.application import Application
from stockyard.catalog.store import CatalogStore
from stockyard.engine import ItemFilter, Queue, Request
from stockyard.errors import NotFound
from stockyard.flows.base import Services
from stockyard.flows.polling import schedule_polls
from stockyard.tenancy import Tenancy
from tests.support.queues import drain
from tests.support.remote import Remote


@dataclass
class Env:
    queue: Queue
    client_id: int
    erp: Remote
    shop: Remote
    trade: Remote
    warehouse: Remote
    source_id: int
    shop_id: int
    trade_id: int
    warehouse_id: int

    @property
    def store(self) -> CatalogStore:
        return CatalogStore(self.queue.db)

    def services(self) -> Services:
        return Application(self.queue.db, queue=self.queue).flow_services

    def run(self) -> None:
        drain(self.queue, Application(self.queue.db, queue=self.queue).handlers)

    def push(self, *products: dict[str, Any]) -> list[int]:
        return self.queue.enqueue(
            self.client_id, [Request("sync_product", p, self.source_id) for p in products]
        )

    def items(self, *statuses: str, instruction: str | None = None) -> list[Any]:
        flt = ItemFilter(
            self.client_id,
            statuses=statuses,
            instructions=(instruction,) if instruction else (),
        )
        return self.queue.list_items(flt, limit=1000)

    def lane(self, lane_id: int) -> Any:
        return next(v for v in self.queue.lanes(self.client_id) if v.lane_id == lane_id)


@pytest.fixture
def backend() -> str:
    # SQLite only: the flows hold no SQL of their own; the engine's tests run on both.
    return "sqlite"


@pytest.fixture
def env(queue: Queue, client_id: int) -> Iterator[Env]:
    remotes = [Remote() for _ in range(4)]
    erp, shop, trade, warehouse = remotes

    def add(kind: str, desc: str, remote: Remote, **settings: Any) -> int:
        settings["base_url"] = remote.url
        return Tenancy(queue.db).add_connection(client_id, kind, "http", desc, settings).id

    trade_rules = {"filter": {"tags": ["b2b"]}, "price_tier": "trade", "warehouses": ["main"]}
    yield Env(
        queue,
        client_id,
        erp,
        shop,
        trade,
        warehouse,
        add("source", "ERP", erp),
        add("channel", "Shop", shop),
        add("channel", "Trade store", trade, rules=trade_rules),
        add("fulfillment", "Warehouse", warehouse),
    )
    for remote in remotes:
        remote.stop()


def product(
    code: str = "TEE", price: str = "10.00", tags: tuple[str, ...] = ("b2b",), **extra: Any
) -> dict[str, Any]:
    return {
        "code": code,
        "title": f"Product {code}",
        "tags": list(tags),
        "variants": [
            {
                "sku": f"{code}-M",
                "price": price,
                "prices": {"trade": "8.00"},
                "stock": {"main": 5, "east": 3},
                "options": {"Size": "M"},
            }
        ],
        "images": [{"url": f"https://img.example.com/{code}.jpg"}],
    } | extra


def variant_writes(remote: Remote) -> list[dict[str, Any]]:
    return [v for c in remote.writes() if c.path.endswith("/variants") for v in c.body["variants"]]


def test_product_reaches_two_channels_with_their_rules(env: Env) -> None:
    env.push(product("TEE"), product("MUG", tags=()))
    env.run()

    shop_tee, trade_tee = env.shop.product_by_code("TEE"), env.trade.product_by_code("TEE")
    assert shop_tee["title"] == "Product TEE"
    (shop_variant,) = shop_tee["variants"].values()
    (trade_variant,) = trade_tee["variants"].values()
    assert (shop_variant["price"], shop_variant["quantity"]) == ("10.00", 8)
    assert (trade_variant["price"], trade_variant["quantity"]) == ("8.00", 5)
    assert len(shop_tee["images"]) == 1
    # The trade store takes only products tagged b2b.
    assert env.shop.product_by_code("MUG")
    assert all(p["code"] != "MUG" for p in env.trade.state.products.values())
    assert all(
        c.headers.get("Idempotency-Key", "").startswith("stockyard-item-")
        for c in env.shop.writes()
    )

    tee = env.store.product(env.client_id, env.store.product_id(env.client_id, "TEE"))
    assert tee.fields["title"] == "Product TEE" and tee.skus == ["TEE-M"]
    links = env.store.links(env.shop_id, "product", [tee.id])
    assert links[tee.id].remote_id in env.shop.state.products
    assert env.items("failed") == []


def test_price_change_updates_only_the_variant(env: Env) -> None:
    env.push(product("TEE"))
    env.run()
    for remote in (env.shop, env.trade):
        remote.clear_calls()

    env.push(product("TEE", price="12.50"))
    env.run()
    writes = env.shop.writes()
    assert [(c.method, c.path.rsplit("/", 1)[-1]) for c in writes] == [("POST", "variants")]
    assert [v["price"] for v in variant_writes(env.shop)] == ["12.50"]
    # The trade store sells at its tier, which did not change: it hears nothing.
    assert env.trade.writes() == []


def test_unchanged_repush_queues_nothing(env: Env) -> None:
    env.push(product("TEE"))
    env.run()
    env.shop.clear_calls()
    env.trade.clear_calls()
    (again,) = env.push(product("TEE"))
    env.run()
    assert env.queue.detail(env.client_id, again).children == []
    assert env.shop.writes() == [] and env.trade.writes() == []


def test_channel_failure_blocks_only_that_channel_and_retry_sends_latest(env: Env) -> None:
    env.push(product("TEE"))
    env.run()
    env.shop.state.reject_skus["TEE-M"] = "price below the shop's minimum"
    env.push(product("TEE", price="11.00"))
    env.run()
    (failed,) = env.items("failed")
    assert (failed.instruction, failed.lane_id) == ("update_variant", env.shop_id)
    assert "TEE-M: price below the shop's minimum" in (failed.error or "")
    assert env.lane(env.shop_id).state == "blocked"

    # Meanwhile: more updates queue behind the failure; other lanes carry on.
    env.push(product("TEE", price="13.00", title="Renamed"), product("CAP"))
    env.run()
    assert env.lane(env.shop_id).state == "blocked"
    assert env.trade.product_by_code("TEE")["title"] == "Renamed"
    assert env.trade.product_by_code("CAP")

    del env.shop.state.reject_skus["TEE-M"]
    env.shop.clear_calls()
    env.queue.retry(env.client_id, [failed.id], "tester")
    env.run()
    tee = env.shop.product_by_code("TEE")
    assert [v["price"] for v in tee["variants"].values()] == ["13.00"]
    assert tee["title"] == "Renamed"
    # The retried item sent the latest price; the queued update behind it had nothing left.
    assert [v["price"] for v in variant_writes(env.shop)] == ["13.00"]
    assert env.lane(env.shop_id).state == "idle"
    assert env.items("failed") == []


def test_transient_channel_errors_retry_by_themselves(env: Env) -> None:
    env.shop.fail(503, times=2)
    env.push(product("TEE"))
    env.run()
    shop_item = next(i for i in env.items(instruction="add_product") if i.lane_id == env.shop_id)
    detail = env.queue.detail(env.client_id, shop_item.id)
    assert detail.item.status == "done"
    assert [a.outcome for a in detail.attempts][:2] == ["transient", "transient"]
    assert all("HTTP 503" in (a.error or "") for a in detail.attempts[:2])
    assert env.shop.product_by_code("TEE")


def test_ten_queued_updates_of_one_sku_become_one_call(env: Env) -> None:
    env.push(product("TEE"))
    env.run()
    env.queue.pause(env.client_id, env.shop_id, "tester", "maintenance")
    # Queued together, the source's pushes coalesce in the source lane already.
    env.push(*(product("TEE", price=f"{20 + n}.00") for n in range(10)))
    assert len(env.items("superseded", instruction="sync_product")) == 9
    # One at a time, each runs and queues an update behind the paused channel.
    for n in range(10):
        env.push(product("TEE", price=f"{30 + n}.00"))
        env.run()
    superseded = [
        i for i in env.items("superseded", instruction="update_variant") if i.lane_id == env.shop_id
    ]
    assert len(superseded) == 9
    env.shop.clear_calls()
    env.queue.resume(env.client_id, env.shop_id, "tester")
    env.run()
    assert [v["price"] for v in variant_writes(env.shop)] == ["39.00"]


def test_order_travels_the_whole_order_flow(env: Env) -> None:
    env.shop.state.orders.append(
        {
            "remote_id": "1001",
            "number": "#1001",
            "currency": "EUR",
            "customer": {"code": "C-1", "email": "ann@example.com", "name": "Ann"},
            "lines": [{"sku": "TEE-M", "quantity": 2, "price": "10.00"}],
            "shipping": "4.50",
            "total": "24.50",
        }
    )
    env.queue.enqueue(env.client_id, [Request("pull_orders", {}, env.shop_id)])
    env.run()
    (created,) = env.erp.state.created_orders.values()
    assert created["remote_id"] == "1001" and created["lines"][0]["sku"] == "TEE-M"
    (outbound,) = env.warehouse.state.fulfillments.values()
    assert outbound["source_code"] == created["code"]
    order_id = env.store.order_id(env.shop_id, "1001")
    stored = env.store.order(env.client_id, order_id)
    assert (stored.source_code, stored.state) == (created["code"], "confirmed")

    # The same order pulled again changes nothing downstream.
    env.queue.enqueue(env.client_id, [Request("pull_orders", {}, env.shop_id)])
    env.run()
    assert len(env.erp.state.created_orders) == 1

    update = {"remote_id": outbound["id"], "state": "complete", "tracking": {"number": "TR9"}}
    env.queue.enqueue(env.client_id, [Request("sync_fulfillment", update, env.warehouse_id)])
    env.run()
    ((order_ref, pushed),) = env.shop.state.pushed_fulfillments
    assert order_ref == "1001"
    assert (pushed["state"], pushed["tracking"]["number"]) == ("complete", "TR9")
    assert env.store.order(env.client_id, order_id).state == "fulfilled"

    wrong, right = env.queue.enqueue(
        env.client_id,
        [
            Request("update_order_instruction", {"order_id": order_id, "paid": "20.00"}),
            Request("update_order_instruction", {"order_id": order_id, "paid": "24.50"}),
        ],
    )
    env.run()
    failed = env.queue.get(env.client_id, wrong)
    assert failed.status == "failed"
    assert "paid 20.00 does not match the order total 24.50 EUR" in (failed.error or "")
    assert env.queue.get(env.client_id, right).status == "done"
    assert env.store.order(env.client_id, order_id).paid == 24.5


def test_bad_payloads_fail_clearly_and_the_worker_carries_on(env: Env) -> None:
    missing_sku = product("A")
    missing_sku["variants"] = [{"price": "1.00"}]
    wrong_type = product("B")
    wrong_type["variants"][0]["price"] = "cheap"
    ids = env.queue.enqueue(
        env.client_id,
        [
            Request("sync_product", missing_sku, env.source_id),
            Request("add_product", {"product_id": 999}, env.shop_id),
            Request("add_product", {"product_id": "x"}, env.trade_id),
            Request("sync_order", {"order": {"remote_id": "1"}}, env.source_id),
            Request("sync_fulfillment", {"remote_id": "F0", "state": "lost"}, env.warehouse_id),
        ],
    )
    (later,) = env.push(wrong_type)
    env.run()
    errors = [env.queue.get(env.client_id, i) for i in ids]
    assert [(i.status, i.error_kind) for i in errors] == [("failed", "permanent")] * len(ids), [
        i.error for i in errors
    ]
    assert all(i.status == "failed" and i.error_kind == "permanent" for i in errors)
    messages = [i.error or "" for i in errors]
    assert "variants.0.sku: Field required" in messages[0]
    assert "no product 999 in the catalog" in messages[1]
    assert "'product_id' must be an integer id" in messages[2]
    assert "sync_order needs a channel connection" in messages[3]
    assert "state: Input should be 'pending', 'open', 'cancelled' or 'complete'" in messages[4]
    # The first failure blocks the source lane, so the later product waits behind it.
    assert env.queue.get(env.client_id, later).status == "queued"
    env.queue.skip(env.client_id, [ids[0]], "tester")
    env.run()
    assert "variants.0.price: Input should be a valid decimal" in (
        env.queue.get(env.client_id, later).error or ""
    )
    with pytest.raises(NotFound):
        env.queue.enqueue(env.client_id, [Request("add_product", {"product_id": 1}, 999)])


def test_add_product_links_the_channels_product_with_the_same_sku(env: Env) -> None:
    env.shop.state.products["P-OLD"] = {
        "code": "legacy",
        "title": "Old title",
        "variants": {"V-OLD": {"sku": "TEE-M", "price": "1.00"}},
        "images": {},
    }
    env.push(product("TEE", tags=()))
    env.run()
    assert list(env.shop.state.products) == ["P-OLD"]  # linked, not duplicated
    linked = env.shop.state.products["P-OLD"]
    assert linked["title"] == "Product TEE"
    assert linked["variants"]["V-OLD"]["price"] == "10.00"


def test_skipped_add_product_leaves_it_unlinked_so_the_next_update_adds_it(env: Env) -> None:
    env.shop.state.reject_skus["TEE-M"] = "SKU not allowed"
    env.push(product("TEE", tags=()))
    env.run()
    (failed,) = env.items("failed")
    assert failed.instruction == "add_product" and "SKU not allowed" in (failed.error or "")
    env.queue.skip(env.client_id, [failed.id], "tester")
    del env.shop.state.reject_skus["TEE-M"]
    env.push(product("TEE", price="11.00", tags=()))
    env.run()
    (variant,) = env.shop.product_by_code("TEE")["variants"].values()
    assert variant["price"] == "11.00"
    assert env.items("failed") == []


def test_removed_variants_and_withdrawn_products_are_deleted(env: Env) -> None:
    two = product("TEE")
    two["variants"].append(dict(two["variants"][0], sku="TEE-L", options={"Size": "L"}))
    env.push(two)
    env.run()
    assert len(env.shop.product_by_code("TEE")["variants"]) == 2
    env.push(product("TEE"))
    env.run()
    skus = [v["sku"] for v in env.shop.product_by_code("TEE")["variants"].values()]
    assert skus == ["TEE-M"]
    env.push(product("TEE", tags=()))  # no longer b2b: the trade store drops it
    env.run()
    assert all(p["code"] != "TEE" for p in env.trade.state.products.values())
    env.push(product("TEE", active=False))
    env.run()
    assert env.shop.state.products == {}
    assert env.items("failed") == []


def test_init_channel_fans_out_and_sets_the_status_last(env: Env) -> None:
    env.queue.pause(env.client_id, env.trade_id, "tester")
    env.push(product("TEE"), product("CAP"), product("MUG", tags=()))
    env.run()
    env.queue.resume(env.client_id, env.trade_id, "tester")
    (init,) = env.queue.enqueue(env.client_id, [Request("init_channel", {}, env.trade_id)])
    env.run()
    children = env.queue.detail(env.client_id, init).children
    assert [c.instruction for c in sorted(children, key=lambda c: c.id)] == [
        "add_product",
        "add_product",
        "set_channel_status",
    ]
    assert Tenancy(env.queue.db).connection(env.trade_id).status == "active"
    assert sorted(p["code"] for p in env.trade.state.products.values()) == ["CAP", "TEE"]

    env.trade.clear_calls()
    (clear,) = env.queue.enqueue(env.client_id, [Request("clear_channel", {}, env.trade_id)])
    env.run()
    assert env.trade.state.products == {}
    assert Tenancy(env.queue.db).connection(env.trade_id).status == "inactive"
    (sync,) = env.queue.enqueue(env.client_id, [Request("sync_channel", {}, env.trade_id)])
    env.run()
    assert sorted(p["code"] for p in env.trade.state.products.values()) == ["CAP", "TEE"]
    assert clear < sync


def test_a_bad_product_in_a_batch_does_not_hold_back_the_rest(env: Env) -> None:
    bad = {"code": "BAD", "variants": [{"sku": "BAD-1", "price": "1"}]}  # no title
    (batch,) = env.queue.enqueue(
        env.client_id,
        [Request("sync_products", {"products": [product("TEE"), bad]}, env.source_id)],
    )
    env.run()
    assert env.queue.get(env.client_id, batch).status == "done"
    assert env.shop.product_by_code("TEE")
    (failed,) = env.items("failed")
    assert (failed.instruction, failed.parent_id) == ("sync_product", batch)
    assert "title: Field required" in (failed.error or "")


def test_polling_queues_one_pull_at_a_time_and_keeps_its_cursor(env: Env) -> None:
    Tenancy(env.queue.db).set_connection_settings(
        env.client_id, env.source_id, {"base_url": env.erp.url, "poll_products_every": 60}
    )
    env.erp.state.source_products.append(product("TEE"))
    services = env.services()
    (pull,) = schedule_polls(services, now=1000.0)
    assert schedule_polls(services, now=1000.0) == []  # not due yet
    assert schedule_polls(services, now=2000.0) == []  # due, but the last one still waits
    env.run()
    assert env.shop.product_by_code("TEE")
    env.erp.state.source_products.append(product("CAP"))
    env.erp.clear_calls()
    (second,) = schedule_polls(services, now=2000.0)
    env.run()
    assert second != pull
    assert [c.query for c in env.erp.calls] == [{"since": ["1"]}]
    assert env.shop.product_by_code("CAP")
