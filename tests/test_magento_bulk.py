"""Large syncs into Magento through its asynchronous bulk API (issue 19), over HTTP against
the Magento double: a chunk as a few bulks (products, then parents with their links and
the stock), a bulk nobody consumes turning into a retryable error after a bounded wait and
the retry resuming that bulk rather than posting another, a failed operation failing only
its product, and 1,000 products through the flows as one bulk_products item. Every request
the connector sent, every bulk element among them, was allowed by Adobe's OpenAPI document.

Skipped when the document is not installed (bash scripts/install-magento-openapi.sh).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from stockyard.connectors.base import ChannelProduct, ChannelVariant
from stockyard.errors import PermanentError, TransientError
from tests.support import magento_contract as contract

pytestmark = pytest.mark.skipif(not contract.installed(), reason=contract.skip_reason())

from stockyard.application import Application  # noqa: E402
from stockyard.catalog.models import Product  # noqa: E402
from stockyard.catalog.store import CatalogStore  # noqa: E402
from stockyard.connectors.magento import MagentoConnector, bulk  # noqa: E402
from stockyard.engine import ItemFilter, Queue, Request  # noqa: E402
from stockyard.engine.instructions import RetryPolicy  # noqa: E402
from stockyard.flows import bulk as flow_bulk  # noqa: E402
from stockyard.tenancy import Tenancy  # noqa: E402
from tests.support.magento_double import TOKEN, MagentoDouble, Served, kept_contract, serve  # noqa: E402
from tests.support.magento_pacing import PATIENT, brief, patient_polling  # noqa: E402, F401
from tests.support.queues import drain, fast_instructions, make_queue  # noqa: E402

KEY = "item-19-bulk"
# For the tests where nobody consumes on purpose: each attempt gives up after this.
BRIEF = brief(0.5)


@pytest.fixture
def brief_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bulk, "DEFAULT_PACING", BRIEF)


@pytest.fixture
def served() -> Iterator[Served]:
    double = MagentoDouble()
    double.add_attribute("size", 141, ["S", "M", "L"])
    with serve(double) as s:
        yield s
    # Whatever a test did: nothing the connector sent was refused by the contract (each
    # bulk element is checked as its synchronous request), nothing the double answered
    # was outside it.
    kept_contract(double)
    assert {r.authorization for r in double.received} <= {f"Bearer {TOKEN}"}


def connector(s: Served) -> MagentoConnector:
    return MagentoConnector({"url": s.url, "access_token": TOKEN})


def tee(code: str, price: str = "19.90") -> ChannelProduct:
    return ChannelProduct(
        code,
        {"title": f"Tee {code}"},
        [
            ChannelVariant(
                f"{code}-{size}", {"price": price, "quantity": 3, "options": {"Size": size}}
            )
            for size in ("S", "M")
        ],
    )


def mug(code: str) -> ChannelProduct:
    return ChannelProduct(
        code, {"title": "Mug"}, [ChannelVariant(f"{code}-1", {"price": "8", "quantity": 2})]
    )


def calls(s: Served) -> list[str]:
    found = []
    for r in s.double.received:
        path = r.path.removeprefix("/rest/all")
        if path.startswith("/V1/bulk/"):
            path = "/V1/bulk/{uuid}/" + path.rsplit("/", 1)[1]
        found.append(f"{r.method} {path}")
    return found


def test_a_chunk_goes_as_bulks_of_products_then_parents_and_stock(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bulk, "DEFAULT_PACING", PATIENT)
    shop = connector(served)
    results = shop.bulk_products([tee("TEE1"), tee("TEE2"), mug("MUG")], {}, KEY)

    assert [(r.key, r.ok, r.remote_id) for r in results] == [
        ("TEE1", True, "TEE1"),
        ("TEE2", True, "TEE2"),
        ("MUG", True, "MUG-1"),
    ]
    assert results[0].variants == {"TEE1-S": "TEE1-S", "TEE1-M": "TEE1-M"}
    products = served.double.products
    parent = products["TEE1"]
    assert parent["type_id"] == "configurable"
    links = parent["extension_attributes"]["configurable_product_links"]
    assert links == [products["TEE1-S"]["id"], products["TEE1-M"]["id"]]
    assert products["TEE1-S"]["visibility"] == 1 and products["MUG-1"]["visibility"] == 4
    assert served.double.source_items[("TEE2-M", "default")]["quantity"] == 3
    made = calls(served)
    # Three bulks: the simple products and children, then the parents and the stock.
    assert made.count("POST /async/bulk/V1/products") == 2
    assert made.count("POST /async/bulk/V1/inventory/source-items") == 1
    assert "POST /V1/products" not in made
    # Which SKUs the store has before the save (linked or not), then the children's ids,
    # up to 300 SKUs a read.
    assert made.count("GET /V1/products") == 2
    assert made.count("GET /V1/bulk") == 3  # one look for an open bulk per stage
    assert served.double.bulk_requests == 3
    assert served.double.operations(bulk.OPEN) == []


def test_a_bulk_nobody_consumes_is_a_retryable_error_and_the_retry_resumes_it(
    served: Served, monkeypatch: pytest.MonkeyPatch, brief_wait: None
) -> None:
    double = served.double
    double.consumers = False
    chunk = [tee("TEE1"), mug("MUG")]
    with pytest.raises(TransientError) as stuck:
        connector(served).bulk_products(chunk, {}, KEY)
    text = str(stuck.value)
    assert "3 of 3 operations open after 0.5 s" in text
    assert "bin/magento queue:consumers:start async.operations.all" in text
    assert stuck.value.retry_after == 0.5
    # Another worker (a new connector) tries again: the same bulk is waited for.
    with pytest.raises(TransientError):
        connector(served).bulk_products(chunk, {}, KEY)
    assert double.bulk_requests == 1
    assert len(double.operations(bulk.OPEN)) == 3
    (uuid,) = double.bulks
    assert connector(served).api.get(f"V1/bulk/{uuid}/operation-status/4") == 3
    # The consumers start while the third attempt waits for that same bulk.
    monkeypatch.setattr(bulk, "DEFAULT_PACING", bulk.Pacing(0.001, 0.01, max_wait=10))
    threading.Timer(0.2, lambda: setattr(double, "consumers", True)).start()
    results = connector(served).bulk_products(chunk, {}, KEY)
    assert all(r.ok for r in results)
    # The first bulk was not posted again: then the parents and the stock.
    assert double.bulk_requests == 3
    assert sorted(double.products) == ["MUG-1", "TEE1", "TEE1-M", "TEE1-S"]


def test_a_bulk_that_finished_between_attempts_is_posted_again_harmlessly(
    served: Served, brief_wait: None
) -> None:
    double = served.double
    double.consumers = False
    with pytest.raises(TransientError):
        connector(served).bulk_products([tee("TEE1")], {}, KEY)
    double.consumers = True
    double.run_consumers()
    ids = {sku: p["id"] for sku, p in double.products.items()}
    results = connector(served).bulk_products([tee("TEE1")], {}, KEY)
    assert all(r.ok for r in results)
    # Not open any more, so not found: saved again by SKU, nothing made twice.
    assert double.bulk_requests == 4
    assert {sku: p["id"] for sku, p in double.products.items() if sku in ids} == ids
    assert len(double.products) == 3


def test_an_open_bulk_of_other_data_is_not_taken_for_ours(served: Served, brief_wait: None) -> None:
    double = served.double
    double.consumers = False
    with pytest.raises(TransientError):
        connector(served).bulk_products([mug("MUG")], {}, KEY)
    changed = mug("MUG")
    changed.variants[0].fields["price"] = "9.50"
    with pytest.raises(TransientError):
        connector(served).bulk_products([changed], {}, KEY)
    assert double.bulk_requests == 2  # not the same elements: a bulk of its own
    double.consumers = True
    (result,) = connector(served).bulk_products([changed], {}, KEY)
    assert result.ok
    # Magento runs operations in the order accepted: the newer price stays.
    assert double.products["MUG-1"]["price"] == 9.5


def test_a_failed_operation_fails_only_its_product(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    double = served.double
    save = double._save

    def refuse(given: dict[str, Any], sku: str | None) -> tuple[int, Any]:
        if given.get("sku") == "BAD-1":
            return 400, {
                "message": "URL key for specified store already exists.",
            }
        return save(given, sku)

    monkeypatch.setattr(double, "_save", refuse)
    results = connector(served).bulk_products([mug("OK"), mug("BAD"), tee("TEE1")], {}, KEY)
    assert [r.ok for r in results] == [True, False, True]
    error = str(results[1].error)
    assert "bulk save of BAD-1 failed: URL key for specified store already exists." in error
    assert "BAD-1" not in double.products
    assert "TEE1" in double.products


def test_stock_a_store_refuses_leaves_the_variants_unsent(served: Served) -> None:
    shop = MagentoConnector(
        {"url": served.url, "access_token": TOKEN, "sources": {"main": "nowhere"}}
    )
    product = ChannelProduct(
        "MUG", {"title": "Mug"}, [ChannelVariant("MUG-1", {"price": "8", "stock": {"main": 2}})]
    )
    (result,) = shop.bulk_products([product], {}, KEY)
    # The product is there; its stock is not: the flow sends the variant again.
    assert (result.ok, result.remote_id, result.variants) == (True, "MUG-1", {})
    assert "MUG-1" in served.double.products


def test_a_product_that_changed_kind_is_left_to_its_own_item(served: Served) -> None:
    (result,) = connector(served).bulk_products([tee("TEE1")], {"TEE1": "TEE1-S"}, KEY)
    assert not result.ok
    assert "a simple product became configurable" in str(result.error)
    assert served.double.bulk_requests == 0


def test_group_prices_go_after_the_bulks_as_the_per_product_path_sends_them(
    served: Served,
) -> None:
    product = tee("TEE1")
    product.variants[0].fields["group_prices"] = {"Wholesale": "15.00"}
    (result,) = connector(served).bulk_products([product], {}, KEY)
    assert result.ok
    assert [(t["sku"], t["customer_group"], t["price"]) for t in served.double.tier_prices] == [
        ("TEE1-S", "Wholesale", 15.0)
    ]


def test_a_bulk_element_the_document_refuses_never_runs(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop = connector(served)
    body = shop._variant_body

    def misspelled(*args: Any, **kw: Any) -> dict[str, Any]:
        return body(*args, **kw) | {"prise": 1}

    monkeypatch.setattr(shop, "_variant_body", misspelled)
    with pytest.raises(PermanentError) as refused:
        shop.bulk_products([mug("MUG")], {}, KEY)
    assert "body[0]: POST /V1/products: request body: at $.product: Additional" in str(
        refused.value
    )
    assert "('prise' was unexpected)" in str(refused.value)
    assert served.double.bulks == {}
    served.double.received.clear()  # the fixture's check: this one was refused on purpose


# --- through the flows ------------------------------------------------------------------


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

    def run(self) -> None:
        drain(self.queue, Application(self.queue.db, queue=self.queue).handlers)

    def items(self, *statuses: str, instruction: str | None = None) -> list[Any]:
        flt = ItemFilter(
            self.client_id, statuses=statuses, instructions=(instruction,) if instruction else ()
        )
        return self.queue.list_items(flt, limit=1000)

    def add_products(self, count: int) -> None:
        for n in range(count):
            record = {
                "code": f"P{n:05d}",
                "title": f"Product {n}",
                "variants": [
                    {
                        "sku": f"P{n:05d}-{s}",
                        "price": "12.50",
                        "quantity": 3,
                        "options": {"Size": s},
                    }
                    for s in ("S", "M")
                ],
            }
            self.store.upsert_product(
                self.client_id, self.source_id, Product.model_validate(record)
            )


@pytest.fixture
def env(served: Served, tmp_path: Any) -> Iterator[Env]:
    policy = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.02, timeout=300.0)
    queue = make_queue(f"sqlite:///{tmp_path}/bulk.db", fast_instructions(policy))
    tenancy = Tenancy(queue.db)
    client_id = tenancy.ensure_client("default")
    source = tenancy.add_connection(
        client_id, "source", "http", "ERP", {"base_url": "http://127.0.0.1:9"}
    )
    channel = tenancy.add_connection(
        client_id, "channel", "magento", "Shop", {"url": served.url, "access_token": TOKEN}
    )
    yield Env(queue, client_id, channel.id, source.id, served)
    queue.db.close()


def test_a_thousand_product_init_is_one_bulk_products_item_of_a_few_calls(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bulk, "DEFAULT_PACING", PATIENT)
    env.add_products(1000)
    env.queue.enqueue(env.client_id, [Request("init_channel", {}, env.channel_id)])
    env.run()

    assert env.items("failed") == []
    assert len(env.items("done", instruction="bulk_products")) == 1
    assert env.items(instruction="add_product") == []
    double = env.served.double
    assert len(double.products) == 3000
    assert len(env.store.linked(env.channel_id, "product")) == 1000
    assert len(env.store.linked(env.channel_id, "variant")) == 2000
    made = calls(env.served)
    # 3 bulks, 7 reads of which variants the store has before the save, 10 of the
    # children's ids and whether their parents exist (300 SKUs a page), 3 looks for an
    # open bulk, 1 attribute, and the status reads: no call per product.
    assert made.count("GET /V1/products") == 17
    assert double.bulk_requests == 3
    print(f"\n1,000 products x 2 variants: {len(made)} requests")
    assert len(made) < 32


def test_a_stuck_chunk_goes_back_to_the_queue_and_finishes_once_consumers_run(
    env: Env, monkeypatch: pytest.MonkeyPatch, brief_wait: None
) -> None:
    monkeypatch.setattr(flow_bulk, "BULK_THRESHOLD", 3)
    env.add_products(3)
    double = env.served.double
    double.consumers = False
    env.queue.enqueue(env.client_id, [Request("init_channel", {}, env.channel_id)])
    env.run()
    (item,) = env.items(instruction="bulk_products")
    assert item.status == "failed"  # retried, then out of attempts: still retryable
    assert "consumers are probably not running" in (item.error or "")
    assert double.bulk_requests == 1  # each attempt waited for the same bulk
    # Retried by hand; the consumers start while it waits for that same bulk.
    monkeypatch.setattr(bulk, "DEFAULT_PACING", bulk.Pacing(0.001, 0.01, max_wait=10))
    env.queue.retry(env.client_id, [item.id], "test")
    threading.Timer(0.3, lambda: setattr(double, "consumers", True)).start()
    env.run()
    assert env.queue.get(env.client_id, item.id).status == "done"
    assert double.bulk_requests == 3  # the first bulk resumed; parents and stock posted
    assert len(env.store.linked(env.channel_id, "variant")) == 6


def test_a_sync_after_the_init_saves_the_same_products_by_sku(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(flow_bulk, "BULK_THRESHOLD", 3)
    env.add_products(3)
    env.queue.enqueue(env.client_id, [Request("init_channel", {}, env.channel_id)])
    env.run()
    double = env.served.double
    ids = {sku: p["id"] for sku, p in double.products.items()}
    links = double.products["P00001"]["extension_attributes"]["configurable_product_links"]
    env.queue.enqueue(env.client_id, [Request("sync_channel", {}, env.channel_id)])
    env.run()
    assert env.items("failed") == []
    assert len(env.items("done", instruction="bulk_products")) == 2
    # Saved over by SKU: nothing made twice, the parent's links as they were.
    assert {sku: p["id"] for sku, p in double.products.items()} == ids
    assert double.products["P00001"]["extension_attributes"]["configurable_product_links"] == links
