"""Large init/sync through Shopify bulk operations (issue 18), in the flows with a real
SQLite queue and the Shopify double over HTTP: chunks instead of one item per product,
one bad product failing only its own item, a bulk mutation already running waited for,
crash-resume without a second operation, and every request (and every JSONL line) valid
against Shopify's own schema.

Skipped when the schema is not installed (bash scripts/install-shopify-schema.sh).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from graphql import get_operation_ast, parse
from graphql.execution.values import get_variable_values

from stockyard.application import Application
from stockyard.catalog.models import Product
from stockyard.catalog.store import CatalogStore
from stockyard.connectors.base import ChannelProduct, ChannelVariant
from stockyard.connectors.shopify import ShopifyConnector, bulk, bulk_export, documents
from stockyard.engine import ItemFilter, Queue, Request
from stockyard.engine.instructions import RetryPolicy
from stockyard.errors import PermanentError, TransientError
from stockyard.flows import bulk as flow_bulk
from stockyard.tenancy import Tenancy
from tests.support import shopify_schema as schema
from tests.support.queues import drain, fast_instructions, make_queue

pytestmark = schema.needs_schema

from tests.support.shopify_double import TOKEN, Served, ShopifyDouble, serve  # noqa: E402

FAST = bulk.Pacing(poll_interval=0.001, max_poll=5.0, busy_retry=0.01)


@pytest.fixture(autouse=True)
def fast_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bulk, "DEFAULT_PACING", FAST)


@pytest.fixture
def served() -> Iterator[Served]:
    double = ShopifyDouble(capacity=1e6, restore_rate=1e4)
    with serve(double) as s:
        yield s
    # Whatever a test did, every request the connector sent was valid against the schema,
    # and so was every line of every uploaded JSONL file against its bulk mutation.
    for r in s.double.received:
        assert r.token == TOKEN
        assert schema.validate(r.query or "", r.variables) == [], r.query
    for op in s.double.bulk.operations:  # type: ignore[attr-defined]
        assert schema.validate(op["query"]) == []
        if op["type"] == "QUERY":
            continue
        lines = s.double.bulk.uploads[op["_path"]].decode().splitlines()  # type: ignore[attr-defined]
        assert_lines_valid(op["query"], lines)


def mutations(double: ShopifyDouble) -> list[dict[str, Any]]:
    return [o for o in double.bulk.operations if o["type"] == "MUTATION"]  # type: ignore[attr-defined]


def assert_lines_valid(mutation: str, lines: list[str]) -> None:
    """Each line's variables coerced against the mutation's variable definitions, as
    schema.validate does, with the document parsed once (10,000 lines)."""
    operation = get_operation_ast(parse(mutation))
    assert operation is not None
    definitions = operation.variable_definitions or ()
    for raw in lines:
        coerced = get_variable_values(schema.load(), definitions, json.loads(raw))
        assert not isinstance(coerced, list), (raw, coerced)


def settings(s: Served, location: str) -> dict[str, Any]:
    base = s.url.split("/admin/api/")[0]
    return {
        "shop": "stockyard-test.myshopify.com",
        "access_token": TOKEN,
        "base_url": base,
        "location_id": location,
    }


@dataclass
class Env:
    queue: Queue
    client_id: int
    channel_id: int
    source_id: int
    served: Served

    @property
    def store(self) -> CatalogStore:
        return CatalogStore(self.queue.db)

    @property
    def double(self) -> ShopifyDouble:
        return self.served.double

    def run(self) -> None:
        drain(self.queue, Application(self.queue.db, queue=self.queue).handlers)

    def enqueue(self, instruction: str) -> int:
        (item,) = self.queue.enqueue(self.client_id, [Request(instruction, {}, self.channel_id)])
        return item

    def items(self, *statuses: str, instruction: str | None = None) -> list[Any]:
        flt = ItemFilter(
            self.client_id,
            statuses=statuses,
            instructions=(instruction,) if instruction else (),
        )
        return self.queue.list_items(flt, limit=1000)

    def add_products(self, count: int, bad: set[int] = frozenset()) -> None:  # type: ignore[assignment]
        for n in range(count):
            self.store.upsert_product(self.client_id, self.source_id, catalog_product(n, n in bad))


def catalog_product(n: int, bad: bool = False) -> Product:
    return Product.model_validate(
        {
            "code": f"P{n:05d}",
            "title": f"Product {n}",
            "variants": [
                {
                    "sku": f"P{n:05d}-{size}",
                    "price": "12.50",
                    "stock": {"main": 3},
                    "options": {"Size": size},
                }
                for size in ("S", "M")
            ],
        }
    )


@pytest.fixture
def env(served: Served, tmp_path: Any) -> Iterator[Env]:
    # Items here do real work (a chunk of 1,000 products): a longer timeout than the
    # suite's fast policy, its quick retries kept.
    policy = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.02, timeout=120.0)
    queue = make_queue(f"sqlite:///{tmp_path}/bulk.db", fast_instructions(policy))
    client_id = Tenancy(queue.db).ensure_client("default")
    location = str(served.double.shop.add_location("Main")["id"])
    tenancy = Tenancy(queue.db)
    source = tenancy.add_connection(
        client_id, "source", "http", "ERP", {"base_url": "http://127.0.0.1:9"}
    )
    channel = tenancy.add_connection(
        client_id, "channel", "shopify", "Shop", settings(served, location)
    )
    yield Env(queue, client_id, channel.id, source.id, served)
    queue.db.close()


def test_a_ten_thousand_product_init_goes_through_ten_bulk_operations(env: Env) -> None:
    env.add_products(10_000)
    started = time.monotonic()
    init = env.enqueue("init_channel")
    env.run()
    elapsed = time.monotonic() - started

    children = env.queue.detail(env.client_id, init).children
    assert [c.instruction for c in children].count("bulk_products") == 10
    assert children[-1].instruction == "set_channel_status"
    assert env.items("failed") == []
    assert env.items(instruction="add_product") == []
    assert len(mutations(env.double)) == 10
    products = env.double.shop.of("Product")
    assert len(products) == 10_000
    # Linked like add_product links: products and variants, with the hashes sent.
    linked = env.store.linked(env.channel_id, "product")
    assert len(linked) == 10_000
    assert set(linked.values()) == {p["id"] for p in products}
    assert len(env.store.linked(env.channel_id, "variant")) == 20_000
    one = next(p for p in products if p["handle"] == "p00042")
    assert [v["sku"] for v in one["_variants"]] == ["P00042-S", "P00042-M"]
    assert Tenancy(env.queue.db).connection(env.channel_id).status == "active"
    # Bulk lines are not charged to the bucket: only the runner's own requests are (about
    # ten a chunk: the export's start, reads and listing, the mutation's).
    print(f"\nrequests: {len(env.double.received)}")
    assert len(env.double.received) < 150
    print(f"\n10,000 products via 10 bulk operations: {elapsed:.1f} s")


def test_a_small_catalog_keeps_one_item_per_product(env: Env) -> None:
    env.add_products(3)
    env.enqueue("init_channel")
    env.run()
    assert len(env.items("done", instruction="add_product")) == 3
    assert env.items(instruction="bulk_products") == []
    assert env.double.bulk.operations == []  # type: ignore[attr-defined]


def test_one_bad_product_fails_only_its_own_item(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(flow_bulk, "BULK_THRESHOLD", 5)
    env.add_products(6)
    # The shop refuses one product's line (a userError on its productSet).
    real = env.double.resolvers[("Mutation", "productSet")]

    def refuse_p3(source: Any, info: Any, input: dict[str, Any], **args: Any) -> Any:
        if input.get("title") == "Product 3":
            return {
                "product": None,
                "productSetOperation": None,
                "userErrors": [{"field": ["input", "title"], "message": "nope", "code": None}],
            }
        return real(source, info, input=input, **args)

    create = env.double.resolvers[("Mutation", "productCreate")]

    def refuse_p3_alone(source: Any, info: Any, **args: Any) -> Any:
        if args["product"].get("title") == "Product 3":
            return {"product": None, "userErrors": [{"field": ["title"], "message": "nope"}]}
        return create(source, info, **args)

    env.double.resolvers[("Mutation", "productSet")] = refuse_p3
    env.double.resolvers[("Mutation", "productCreate")] = refuse_p3_alone
    env.enqueue("init_channel")
    env.run()
    (bulk_item,) = env.items(instruction="bulk_products")
    assert bulk_item.status == "done"
    (failed,) = env.items("failed")
    assert failed.instruction == "add_product"
    assert failed.parent_id == bulk_item.id
    assert "nope" in (failed.error or "")
    assert sorted(p["title"] for p in env.double.shop.of("Product")) == [
        f"Product {n}" for n in (0, 1, 2, 4, 5)
    ]
    assert len(env.store.linked(env.channel_id, "product")) == 5


def test_sync_channel_sets_linked_products_by_id(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(flow_bulk, "BULK_THRESHOLD", 2)
    env.add_products(3)
    env.enqueue("init_channel")
    env.run()
    ids = {p["id"] for p in env.double.shop.of("Product")}
    env.enqueue("sync_channel")
    env.run()
    assert env.items("failed") == []
    assert {p["id"] for p in env.double.shop.of("Product")} == ids  # no duplicates
    second = env.double.bulk.uploads[mutations(env.double)[-1]["_path"]]  # type: ignore[attr-defined]
    lines = [json.loads(x) for x in second.decode().splitlines()]
    assert {line["identifier"]["id"] for line in lines} == ids


def test_a_variant_the_source_dropped_goes_with_the_productset_not_its_own_item(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(flow_bulk, "BULK_THRESHOLD", 2)
    env.add_products(3)
    env.enqueue("init_channel")
    env.run()
    one_size = catalog_product(0).model_copy(update={"variants": catalog_product(0).variants[:1]})
    env.store.upsert_product(env.client_id, env.source_id, one_size)
    env.enqueue("sync_channel")
    env.run()
    assert env.items("failed") == []
    # productSet replaced the list: P00000-M is gone from the shop and its link with it.
    assert env.items(instruction="delete_product_variant") == []
    shown = next(p for p in env.double.shop.of("Product") if p["handle"] == "p00000")
    assert [v["sku"] for v in shown["_variants"]] == ["P00000-S"]
    stored = env.store.product(env.client_id, env.store.product_id(env.client_id, "P00000"))
    assert env.store.links(env.channel_id, "variant", stored.removed_variants) == {}


# --- the connector's bulk runner ------------------------------------------------------


def connector(s: Served) -> ShopifyConnector:
    return ShopifyConnector(settings(s, str(s.double.shop.add_location("Main")["id"])))


def tees(count: int) -> list[ChannelProduct]:
    return [
        ChannelProduct(
            f"TEE{n}",
            {"title": f"Tee {n}"},
            [ChannelVariant(f"TEE{n}-S", {"price": "9.00", "quantity": 2, "options": {}})],
        )
        for n in range(count)
    ]


def test_a_running_bulk_mutation_hands_the_item_back_then_is_waited_for(served: Served) -> None:
    state = served.double.bulk  # type: ignore[attr-defined]
    shop = connector(served)
    state.hold = True
    pacing = bulk.Pacing(poll_interval=0.001, max_poll=0.05, busy_retry=7.0)
    with pytest.raises(TransientError) as first:
        bulk.bulk_products(shop, tees(2), {}, "item-1", pacing)
    assert "still RUNNING" in str(first.value)
    # Someone else's job (another item's) while ours is not there: not started, handed back.
    with pytest.raises(TransientError) as busy:
        bulk.bulk_products(shop, tees(3), {}, "item-2", pacing)
    assert busy.value.retry_after == 7.0
    assert len(mutations(served.double)) == 1
    state.hold = False
    results = bulk.bulk_products(shop, tees(3), {}, "item-2", pacing)
    assert all(r.ok for r in results)


def test_a_second_attempt_resumes_its_own_operation_instead_of_starting_another(
    served: Served,
) -> None:
    state = served.double.bulk  # type: ignore[attr-defined]
    shop = connector(served)
    state.hold = True
    pacing = bulk.Pacing(poll_interval=0.001, max_poll=0.05, busy_retry=1.0)
    with pytest.raises(TransientError):
        bulk.bulk_products(shop, tees(4), {}, "item-9", pacing)  # the worker gives up polling
    state.hold = False
    results = bulk.bulk_products(shop, tees(4), {}, "item-9", pacing)  # the retry
    assert len(mutations(served.double)) == 1
    assert len(state.uploads) == 1
    assert [r.key for r in results] == ["TEE0", "TEE1", "TEE2", "TEE3"]
    assert all(r.ok and r.remote_id for r in results)
    # Resumed, the attempt does not know which variants its line created (and so sent the
    # stock of): none with stock to place is reported written; the flow sends them again.
    assert all(r.variants == {} for r in results)
    # And once finished, a third attempt (a crash after the poll) reads the same results.
    again = bulk.bulk_products(shop, tees(4), {}, "item-9", pacing)
    assert [r.remote_id for r in again] == [r.remote_id for r in results]
    assert len(mutations(served.double)) == 1


def test_the_double_refuses_a_second_bulk_mutation_like_shopify(served: Served) -> None:
    state = served.double.bulk  # type: ignore[attr-defined]
    state.hold = True
    shop = connector(served)
    with pytest.raises(TransientError):
        bulk.bulk_products(shop, tees(1), {}, "item-a", bulk.Pacing(0.001, 0.2, 1.0))
    (running,) = mutations(served.double)
    answer, _ = served.double.answer(
        documents.BULK_RUN_MUTATION,
        {"mutation": running["query"], "path": running["_path"]},
        None,
    )
    (error,) = answer["data"]["bulkOperationRunMutation"]["userErrors"]
    assert error["code"] == "OPERATION_IN_PROGRESS"


def test_staged_and_result_addresses_must_be_shopify_storage_or_the_shop(served: Served) -> None:
    shop = connector(served)
    runner = bulk.BulkRunner(shop, FAST)
    runner._check_host(
        "https://shopify-staged-uploads.storage.googleapis.com/", bulk.UPLOAD_HOSTS, "x"
    )
    runner._check_host(served.url, bulk.UPLOAD_HOSTS, "x")
    for url in (
        "https://evil.example.com/",
        "http://shopify-staged-uploads.storage.googleapis.com/",
    ):
        with pytest.raises(Exception, match="refused"):
            runner._check_host(url, bulk.UPLOAD_HOSTS, "staged upload")


def test_bulk_documents_are_valid_with_the_item_name(served: Served) -> None:
    shop = connector(served)
    line = bulk.line_variables(shop, tees(1)[0], None)
    renamed = documents.BULK_PRODUCT_SET_LINKED.replace(
        bulk.OPERATION, bulk.OPERATION + "_0123abcd", 1
    )
    assert schema.validate(renamed, line) == []
    assert line["identifier"] == {"handle": "tee0"}


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        ({"product_ids": "1", "mode": "add"}, "'product_ids' must be a non-empty list of ids"),
        ({"product_ids": [True], "mode": "add"}, "'product_ids' must be a non-empty list of ids"),
        ({"product_ids": [1], "mode": "replace"}, "'mode' must be 'add' or 'update'"),
    ],
)
def test_a_bad_bulk_payload_fails_clearly(env: Env, payload: dict[str, Any], error: str) -> None:
    (item,) = env.queue.enqueue(env.client_id, [Request("bulk_products", payload, env.channel_id)])
    env.run()
    failed = env.queue.get(env.client_id, item)
    assert (failed.status, failed.error) == ("failed", f"invalid payload: {error}")


def test_another_clients_product_is_not_sent_and_fails_alone(env: Env) -> None:
    other = Tenancy(env.queue.db).ensure_client("other")
    foreign = env.store.upsert_product(other, None, catalog_product(7))
    own = env.store.upsert_product(env.client_id, env.source_id, catalog_product(0))
    payload = {"product_ids": [foreign, own], "mode": "add"}
    (item,) = env.queue.enqueue(env.client_id, [Request("bulk_products", payload, env.channel_id)])
    env.run()
    assert env.queue.get(env.client_id, item).status == "done"
    (alone,) = env.items("failed")
    assert (alone.instruction, alone.parent_id) == ("add_product", item)
    assert [p["title"] for p in env.double.shop.of("Product")] == ["Product 0"]


def test_a_chunk_handed_back_resumes_its_operation_through_the_queue(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No polling time (one read per attempt): attempt 1 starts the export and hands the
    # item back, attempt 2 finds the export done, starts the mutation and hands the item
    # back, attempt 3 finds the mutation completed.
    monkeypatch.setattr(bulk, "DEFAULT_PACING", bulk.Pacing(0.001, 0.0, 0.01))
    monkeypatch.setattr(flow_bulk, "BULK_THRESHOLD", 2)
    env.add_products(3)
    env.enqueue("init_channel")
    env.run()
    (item,) = env.items(instruction="bulk_products")
    assert (item.status, item.attempts) == ("done", 3)
    assert len(mutations(env.double)) == 1
    # And one export: attempt 2 found attempt 1's, took no other.
    assert len(env.double.bulk.operations) == 2  # type: ignore[attr-defined]
    assert len(env.double.shop.of("Product")) == 3
    assert len(env.store.linked(env.channel_id, "product")) == 3
    # Resumed, the stock was not claimed as sent: each product's own item checked it (it
    # was there: the line had created the variants with it) and linked its variants.
    assert len(env.items("done", instruction="update_product")) == 3
    variants = env.store.linked(env.channel_id, "variant")
    assert len(variants) == 6
    assert all(
        link.hash for link in env.store.links(env.channel_id, "variant", list(variants)).values()
    )
    location = env.double.shop.of("Location")[0]["id"]
    for product in env.double.shop.of("Product"):
        assert [level(env.double, v, location) for v in product["_variants"]] == [3, 3]


# --- product identity: what the shop already holds (the export) -----------------------


def shop_product(s: Served, code: str, skus: list[str], title: str = "Merchant's") -> str:
    """A product made in the shop by someone else (the merchant), handle = slug of code."""
    made = connector(s).create_product(
        ChannelProduct(
            code,
            {"title": title},
            [ChannelVariant(sku, {"price": "1.00", "options": {}}) for sku in skus],
        ),
        "merchant",
    )
    return made.id


def named_product(code: str, skus: list[str]) -> Product:
    return Product.model_validate(
        {
            "code": code,
            "title": f"Stockyard {code}",
            "variants": [{"sku": sku, "price": "5.00", "options": {"Size": sku}} for sku in skus],
        }
    )


def test_codes_that_slug_alike_never_take_a_merchants_product(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The reviewer's probe: a shop product with handle a-b (SKU MERCHANT-1), and two
    # Stockyard products whose codes make that handle.
    monkeypatch.setattr(flow_bulk, "BULK_THRESHOLD", 2)
    merchant = shop_product(env.served, "a-b", ["MERCHANT-1"])
    for code in ("A.B", "a_b"):
        env.store.upsert_product(env.client_id, env.source_id, named_product(code, [code + "-1"]))
    env.enqueue("init_channel")
    env.run()

    assert env.items("failed") == []
    kept = env.double.shop.get(merchant, "Product")
    assert kept is not None
    assert [v["sku"] for v in kept["_variants"]] == ["MERCHANT-1"]
    assert kept["title"] == "Merchant's"
    linked = env.store.linked(env.channel_id, "product")
    assert len(linked) == 2
    assert merchant not in linked.values()
    assert len(set(linked.values())) == 2
    by_id = {p["id"]: p for p in env.double.shop.of("Product")}
    assert sorted(v["sku"] for r in linked.values() for v in by_id[r]["_variants"]) == [
        "A.B-1",
        "a_b-1",
    ]


def test_the_chunk_sends_its_collisions_to_their_own_items_not_to_the_bulk_line(
    served: Served,
) -> None:
    merchant = shop_product(served, "a-b", ["MERCHANT-1"])
    shop = connector(served)
    products = [
        ChannelProduct(code, {"title": code}, [ChannelVariant(code + "-1", {"options": {}})])
        for code in ("A.B", "x.y", "X_Y", "fresh")
    ]
    results = bulk.bulk_products(shop, products, {}, "item-c")
    assert [r.ok for r in results] == [False, False, False, True]
    assert "handle 'a-b'" in str(results[0].error)
    assert "same one" in str(results[1].error)
    (op,) = mutations(served.double)
    (line,) = served.double.bulk.uploads[op["_path"]].decode().splitlines()  # type: ignore[attr-defined]
    assert json.loads(line)["identifier"] == {"handle": "fresh"}
    assert [v["sku"] for v in served.double.shop.get(merchant, "Product")["_variants"]] == [  # type: ignore[index]
        "MERCHANT-1"
    ]


def test_an_init_over_a_shop_that_holds_the_products_links_them_by_sku(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(flow_bulk, "BULK_THRESHOLD", 2)
    env.add_products(5)
    env.enqueue("init_channel")
    env.run()
    before = {p["id"]: [v["id"] for v in p["_variants"]] for p in env.double.shop.of("Product")}
    # A second channel on the same shop (a new connection, nothing linked): its init must
    # find all five by SKU, not make five more.
    second = Tenancy(env.queue.db).add_connection(
        env.client_id,
        "channel",
        "shopify",
        "Shop again",
        settings(env.served, str(env.double.shop.of("Location")[0]["id"])),
    )
    env.queue.enqueue(env.client_id, [Request("init_channel", {}, second.id)])
    env.run()
    assert env.items("failed") == []
    products = env.double.shop.of("Product")
    assert {p["id"]: [v["id"] for v in p["_variants"]] for p in products} == before
    assert set(env.store.linked(second.id, "product").values()) == set(before)
    assert len(env.store.linked(second.id, "variant")) == 10
    assert len(mutations(env.double)) == 2


def test_a_shop_product_with_a_variant_stockyard_does_not_know_is_linked_by_its_own_item(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(flow_bulk, "BULK_THRESHOLD", 2)
    env.add_products(3)
    # The shop holds P00001's two SKUs and one of the merchant's on one product.
    held = shop_product(env.served, "p00001", ["P00001-S", "P00001-M", "MERCHANT-7"])
    env.enqueue("init_channel")
    env.run()
    assert env.items("failed") == []
    (own,) = env.items("done", instruction="add_product")
    assert own.payload["product_id"] is not None
    product = env.double.shop.get(held, "Product")
    assert product is not None
    assert "MERCHANT-7" in [v["sku"] for v in product["_variants"]]
    assert held in env.store.linked(env.channel_id, "product").values()
    assert len(env.double.shop.of("Product")) == 3


# --- the export in the double ---------------------------------------------------------


def test_the_double_exports_products_and_variants_as_shopifys_jsonl(served: Served) -> None:
    first = shop_product(served, "one", ["ONE-1", "ONE-2"])
    second = shop_product(served, "two", ["TWO-1"])
    runner = bulk.BulkRunner(connector(served), FAST)
    run = runner.api.query(documents.BULK_RUN_QUERY, {"query": documents.BULK_EXPORT_SKUS})
    done = runner._wait(run["bulkOperationRunQuery"]["bulkOperation"])
    assert (done["status"], done["rootObjectCount"], done["objectCount"]) == ("COMPLETED", "2", "5")
    rows = list(runner._rows(done["url"]))
    assert [sorted(r) for r in rows] == [
        ["handle", "id"],
        ["__parentId", "id", "sku"],
        ["__parentId", "id", "sku"],
        ["handle", "id"],
        ["__parentId", "id", "sku"],
    ]
    assert [r.get("__parentId") for r in rows] == [None, first, first, None, second]
    assert [r.get("sku") for r in rows] == [None, "ONE-1", "ONE-2", None, "TWO-1"]


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ("{ shop { name } }", "at least one connection"),
        (
            "{ products { nodes { id variants { nodes { id inventoryItem {"
            " inventoryLevels { nodes { id } } } } } } } }",
            "nested at most two levels",
        ),
        ("{ products { nodes { nope } } }", "Invalid bulk query"),
    ],
)
def test_the_double_refuses_what_a_bulk_query_may_not_be(
    served: Served, query: str, problem: str
) -> None:
    answer, _ = served.double.answer(documents.BULK_RUN_QUERY, {"query": query}, None)
    (error,) = answer["data"]["bulkOperationRunQuery"]["userErrors"]
    assert error["code"] == "INVALID"
    assert problem in error["message"]


def test_an_export_older_than_a_bulk_mutations_end_is_taken_again(served: Served) -> None:
    runner = bulk.BulkRunner(connector(served), FAST)
    assert bulk_export.shop_index(runner, "chunk-2").handles == {}
    # Another chunk's mutation makes tee0 after that export began: the export no longer
    # tells whether the handle is free.
    (made,) = bulk.bulk_products(connector(served), tees(1), {}, "chunk-1")
    again = bulk_export.shop_index(runner, "chunk-2")
    assert again.handles == {"tee0": made.remote_id}
    exports = [o for o in served.double.bulk.operations if o["type"] == "QUERY"]  # type: ignore[attr-defined]
    # chunk-1's own export, and chunk-2's taken twice under one name.
    assert len(exports) == 3
    assert exports[0]["query"] == exports[2]["query"] != exports[1]["query"]


# --- bounds ---------------------------------------------------------------------------


def test_a_bulk_file_over_the_cap_is_refused_not_read(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop_product(served, "one", ["ONE-1"])
    monkeypatch.setattr(bulk, "MAX_DOWNLOAD", 64)
    with pytest.raises(PermanentError, match="over 0 MiB: not read"):
        bulk.bulk_products(connector(served), tees(1), {}, "item-big")


def test_a_bulk_item_is_read_with_a_bounded_list_of_products(env: Env) -> None:
    # Up to MOST_IDS an item is split into chunks of the connector's (tests/test_bulk_flow.py).
    payload = {"product_ids": list(range(1, flow_bulk.MOST_IDS + 2)), "mode": "add"}
    (item,) = env.queue.enqueue(env.client_id, [Request("bulk_products", payload, env.channel_id)])
    env.run()
    failed = env.queue.get(env.client_id, item)
    assert (failed.status, failed.error) == (
        "failed",
        f"invalid payload: 'product_ids' takes at most {flow_bulk.MOST_IDS} ids,"
        f" got {flow_bulk.MOST_IDS + 1}",
    )
    assert env.double.bulk.operations == []  # type: ignore[attr-defined]


# --- what a line holds: the per-product path's variant, stock per location -------------


def located(env: Env, weight_unit: str = "GRAMS") -> tuple[int, str, str]:
    """A channel on the double's shop mapping three warehouses to two locations."""
    north = str(env.double.shop.add_location("North")["id"])
    south = str(env.double.shop.add_location("South")["id"])
    mapped = settings(env.served, north) | {
        "locations": {"north": north, "south": south, "east": south},
        "weight_unit": weight_unit,
    }
    channel = Tenancy(env.queue.db).add_connection(
        env.client_id, "channel", "shopify", "Located", mapped
    )
    return channel.id, north, south


def weighed_product(n: int) -> Product:
    return Product.model_validate(
        {
            "code": f"W{n:03d}",
            "title": f"Weighed {n}",
            "variants": [
                {
                    "sku": f"W{n:03d}-{size}",
                    "price": "20.00",
                    "barcode": f"400000{n:03d}{k}",
                    "weight": "350",
                    "stock": {"north": 4 + k, "south": 7, "east": 1, "west": 99},
                    "options": {"Size": size},
                }
                for k, size in enumerate(("S", "M"))
            ],
        }
    )


def level(double: ShopifyDouble, variant: dict[str, Any], location: str) -> int | None:
    found = double.shop.levels.get((variant["_item"]["id"], location))
    return None if found is None else found["available"]


def test_a_bulk_init_sends_weights_and_stock_per_location_and_records_it(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The reviewer's case: a multi-location shop; before, the lines carried no weight and
    # only `location_id`'s quantity, yet every variant was linked with the hash of all.
    monkeypatch.setattr(flow_bulk, "BULK_THRESHOLD", 2)
    channel, north, south = located(env)
    for n in range(3):
        env.store.upsert_product(env.client_id, env.source_id, weighed_product(n))
    env.queue.enqueue(env.client_id, [Request("init_channel", {}, channel)])
    env.run()

    assert env.items("failed") == []
    assert len(mutations(env.double)) == 1
    assert env.items(instruction="add_product") == []
    assert env.items(instruction="update_product") == []  # nothing was left out
    products = env.double.shop.of("Product")
    assert len(products) == 3
    for product in products:
        for k, variant in enumerate(product["_variants"]):
            assert level(env.double, variant, north) == 4 + k
            assert level(env.double, variant, south) == 8  # south + east, west unmapped
            assert variant["_item"]["tracked"] is True
            assert variant["_item"]["measurement"]["weight"] == {"unit": "GRAMS", "value": 350.0}
            assert variant["barcode"].startswith("400000")
    assert len(env.store.linked(channel, "variant")) == 6
    links = env.store.links(channel, "variant", list(env.store.linked(channel, "variant")))
    assert len(links) == 6 and all(link.hash for link in links.values())


def test_a_variant_the_shop_holds_gets_its_stock_by_the_per_product_path_not_the_line(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    # productSet may set an existing variant's quantities only where it is stocked already
    # (schema), and without compare-and-set: such a variant's stock is not in the line, is
    # not recorded as sent, and its product's own update_product item sends it.
    monkeypatch.setattr(flow_bulk, "BULK_THRESHOLD", 2)
    channel, north, south = located(env)
    held = shop_product(env.served, "w001", ["W001-S", "W001-M"])
    for n in range(3):
        env.store.upsert_product(env.client_id, env.source_id, weighed_product(n))
    env.queue.enqueue(env.client_id, [Request("init_channel", {}, channel)])
    env.run()

    assert env.items("failed") == []
    (op,) = mutations(env.double)
    lines = [json.loads(x) for x in env.double.bulk.uploads[op["_path"]].decode().splitlines()]  # type: ignore[attr-defined]
    (line,) = [x for x in lines if x["identifier"] == {"id": held}]
    assert all("inventoryQuantities" not in v and v["id"] for v in line["input"]["variants"])
    assert all(
        len(v["inventoryQuantities"]) == 2
        for x in lines
        if x is not line
        for v in x["input"]["variants"]
    )
    (follow,) = env.items("done", instruction="update_product")
    assert follow.payload == {
        "product_id": follow.payload["product_id"],
        "full": True,
        "force": False,
    }
    product = env.double.shop.get(held, "Product")
    assert product is not None
    for k, variant in enumerate(product["_variants"]):
        assert level(env.double, variant, north) == 4 + k
        assert level(env.double, variant, south) == 8
        assert variant["_item"]["measurement"]["weight"]["value"] == 350.0
    # Not stocked there before: the per-product path activated it at both locations.
    links = env.store.links(channel, "variant", list(env.store.linked(channel, "variant")))
    assert len(links) == 6 and all(link.hash for link in links.values())


def test_a_bad_weight_fails_only_its_own_product(served: Served) -> None:
    shop = connector(served)
    products = tees(3)
    products[1].variants[0].fields["weight"] = "heavy"
    results = bulk.bulk_products(shop, products, {}, "item-w")
    assert [r.ok for r in results] == [True, False, True]
    assert "weight must be a number" in str(results[1].error)
    (op,) = mutations(served.double)
    assert len(served.double.bulk.uploads[op["_path"]].decode().splitlines()) == 2  # type: ignore[attr-defined]


def test_a_line_variant_is_the_per_product_paths_own(served: Served) -> None:
    shop = connector(served)
    variant = ChannelVariant(
        "TEE-S",
        {
            "price": "9.00",
            "compare_at_price": "12.00",
            "barcode": "123",
            "weight": "0.2",
            "quantity": 5,
            "options": {"Size": "S"},
        },
    )
    product = ChannelProduct("TEE", {"title": "Tee"}, [variant])
    new = bulk.line_variables(shop, product, None)["input"]["variants"][0]
    assert new["compareAtPrice"] == "12.00" and new["barcode"] == "123" and new["price"] == "9.00"
    assert new["inventoryItem"] == {
        "sku": "TEE-S",
        "tracked": True,
        "measurement": {"weight": {"unit": "KILOGRAMS", "value": 0.2}},
    }
    assert new["inventoryQuantities"] == [
        {"locationId": shop.config.location_id, "name": "available", "quantity": 5}
    ]
    held = bulk.line_variables(shop, product, "gid://shopify/Product/1", {"TEE-S": "gid://x/1"})
    existing = held["input"]["variants"][0]
    assert existing["id"] == "gid://x/1" and "inventoryQuantities" not in existing
    assert existing["inventoryItem"] == new["inventoryItem"]


def test_the_double_sets_an_existing_variants_stock_only_where_it_is_stocked(
    served: Served,
) -> None:
    # The schema (ProductVariantSetInput.inventoryQuantities): "If you're updating an
    # existing variant, then you can only update the quantities at locations where the
    # variant is already stocked". The double refuses the others (the stricter reading).
    shop = connector(served)
    stocked = str(shop.config.location_id)
    other = str(served.double.shop.add_location("Other")["id"])
    made = bulk.bulk_products(shop, tees(1), {}, "item-s")[0]
    assert made.remote_id is not None
    variant_id = served.double.shop.of("Product")[0]["_variants"][0]["id"]

    def set_at(location: str) -> dict[str, Any]:
        product = ChannelProduct(
            "TEE0",
            {"title": "Tee 0"},
            [ChannelVariant("TEE0-S", {"price": "9.00", "quantity": 6, "options": {}})],
        )
        variables = bulk.line_variables(shop, product, made.remote_id, {"TEE0-S": variant_id})
        (line,) = variables["input"]["variants"]
        line["inventoryQuantities"] = [{"locationId": location, "name": "available", "quantity": 6}]
        answer = shop.api.query(documents.BULK_PRODUCT_SET_LINKED, variables)["productSet"]
        return dict(answer)

    assert set_at(stocked)["userErrors"] == []
    refused = set_at(other)
    assert refused["product"] is None
    assert refused["userErrors"][0]["field"] == ["input", "variants", "0", "inventoryQuantities"]
    variant = served.double.shop.of("Product")[0]["_variants"][0]
    assert level(served.double, variant, stocked) == 6
    assert level(served.double, variant, other) is None
