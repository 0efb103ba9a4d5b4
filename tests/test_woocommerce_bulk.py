"""WooCommerce's bulk path (issue 19, "batching across items") against the double over real
HTTP: a chunk of products goes as SKU look-ups of up to 100, parent batches of up to 100
and one variations batch per parent; a chunk run again (or resumed after a transient
error) creates nothing twice; a product the store refuses fails alone; and through the
flow, an init of 1,000 products x 3 variants is ten bulk_products items of 100 making 1,020
calls in all.
Every request is checked against the transcribed wc/v3 contract (the fixtures assert it).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from stockyard.application import Application
from stockyard.catalog.models import Product
from stockyard.catalog.store import CatalogStore
from stockyard.connectors.base import ChannelProduct, ChannelVariant
from stockyard.connectors.woocommerce import WooCommerceConnector
from stockyard.engine import ItemFilter, Queue, Request
from stockyard.engine.instructions import RetryPolicy
from stockyard.errors import TransientError
from stockyard.flows import bulk as flow_bulk
from stockyard.tenancy import Tenancy
from tests.support.queues import drain, fast_instructions, make_queue
from tests.support.woocommerce_double import Served, serve
from tests.support.woocommerce_double_bulk import WooCommerceBulkDouble, no_refusals, woo_settings

KEY = "item-bulk"
LOOKUP = "GET /products"
PARENTS = "POST /products/batch"
VARIATIONS = "POST /products/<id>/variations/batch"
LIST = "GET /products/<id>/variations"


@pytest.fixture
def served() -> Iterator[Served]:
    with serve(WooCommerceBulkDouble()) as s:
        yield s
        no_refusals(s.double)


def double(s: Served) -> WooCommerceBulkDouble:
    assert isinstance(s.double, WooCommerceBulkDouble)
    return s.double


@pytest.fixture
def woo(served: Served) -> Iterator[WooCommerceConnector]:
    c = WooCommerceConnector(woo_settings(served))
    yield c
    c.close()


def tee(n: int, price: str = "19.90", sizes: tuple[str, ...] = ("S", "M", "L")) -> ChannelProduct:
    code = f"T{n:04d}"
    return ChannelProduct(
        code,
        {"title": f"Tee {n}"},
        [
            ChannelVariant(
                f"{code}-{s}", {"price": price, "quantity": i + 1, "options": {"Size": s}}
            )
            for i, s in enumerate(sizes)
        ],
    )


def mug(n: int) -> ChannelProduct:
    return ChannelProduct(
        f"M{n:04d}", {"title": f"Mug {n}"}, [ChannelVariant(f"M{n:04d}", {"price": "7"})]
    )


def catalog(tees: int, mugs: int = 0) -> list[ChannelProduct]:
    return [tee(n) for n in range(tees)] + [mug(n) for n in range(mugs)]


def store_skus(s: Served) -> list[str]:
    d = s.double
    return sorted(
        [p["sku"] for p in d.products.values()] + [v["sku"] for v in d.variations.values()]
    )


def trashed(sku: str, pid: int = 1) -> dict[str, Any]:
    return {
        "id": pid, "name": "Old", "type": "variable", "status": "trash", "sku": sku,
        "regular_price": "", "sale_price": "", "manage_stock": False, "stock_quantity": None,
        "stock_status": "instock", "parent_id": 0, "attributes": [], "images": [],
    }  # fmt: skip


def wanted_skus(products: list[ChannelProduct]) -> list[str]:
    own = [p.code for p in products if len(p.variants) > 1]
    return sorted(own + [v.sku for p in products for v in p.variants])


# --------------------------------------------------------------------- the connector


def test_new_products_take_a_lookup_a_parent_batch_per_100_and_a_variations_batch_each(
    served: Served, woo: WooCommerceConnector
) -> None:
    products = catalog(150, mugs=10)
    results = woo.bulk_products(products, {}, KEY)
    # 160 own SKUs: 2 look-ups, 2 parent batches; 150 variable parents: 150 batches.
    assert double(served).kinds() == {LOOKUP: 2, PARENTS: 2, VARIATIONS: 150}
    assert all(r.ok for r in results)
    assert [r.key for r in results] == [p.code for p in products]
    assert store_skus(served) == wanted_skus(products)
    d = served.double
    t7 = results[7]
    assert d.products[int(t7.remote_id or 0)]["type"] == "variable"
    medium = d.variations[int(t7.variants["T0007-M"])]
    # The per-product path's mapping: prices as strings, stock managed.
    assert (medium["regular_price"], medium["sale_price"]) == ("19.90", "")
    assert (medium["manage_stock"], medium["stock_quantity"]) == (True, 2)
    assert medium["attributes"] == [{"id": 0, "name": "Size", "option": "M"}]
    m3 = results[153]
    assert m3.variants == {"M0003": m3.remote_id}
    assert d.products[int(m3.remote_id or 0)]["type"] == "simple"
    # Each look-up names up to 100 SKUs in one comma-separated list.
    lookups = [r for r in d.received if r.path == "/products"]
    assert [len(r.query["sku"].split(",")) for r in lookups] == [100, 60]


def test_a_chunk_run_again_creates_nothing_twice_and_updates_by_id(
    served: Served, woo: WooCommerceConnector
) -> None:
    products = catalog(120, mugs=5)
    first = woo.bulk_products(products, {}, KEY)
    d = double(served)
    d.received.clear()
    cheaper = [tee(n, price="9.50") for n in range(120)] + [mug(n) for n in range(5)]
    again = woo.bulk_products(
        cheaper, {p.code: r.remote_id or "" for p, r in zip(products, first, strict=True)}, KEY
    )
    assert [(r.remote_id, r.variants) for r in again] == [(r.remote_id, r.variants) for r in first]
    assert store_skus(served) == wanted_skus(products)
    # 125 own SKUs (2 look-ups), the 360 variants of the 120 parents found (4 look-ups).
    assert d.kinds() == {LOOKUP: 6, PARENTS: 2, VARIATIONS: 120}
    batches = [r.body for r in d.received if r.path.endswith("/batch")]
    assert all("create" not in b for b in batches)
    assert served.double.variations[int(first[0].variants["T0000-S"])]["regular_price"] == "9.50"


def test_a_chunk_broken_by_a_transient_error_resumes_without_duplicates(
    served: Served, woo: WooCommerceConnector
) -> None:
    products = catalog(60, mugs=3)
    double(served).fail_on(VARIATIONS, 25, 503)
    with pytest.raises(TransientError):
        woo.bulk_products(products, {}, KEY)
    results = woo.bulk_products(products, {}, KEY)  # the item's retry
    assert all(r.ok for r in results)
    assert store_skus(served) == wanted_skus(products)  # every SKU exactly once
    assert len(served.double.products) == 63


def test_a_store_whose_search_skips_variations_gets_them_listed_per_parent(
    served: Served, woo: WooCommerceConnector
) -> None:
    products = catalog(5)
    first = woo.bulk_products(products, {}, KEY)
    d = double(served)
    d.sku_finds_variations = False
    d.received.clear()
    again = woo.bulk_products(products, {}, KEY)
    assert [r.variants for r in again] == [r.variants for r in first]
    assert d.kinds() == {LOOKUP: 2, PARENTS: 1, LIST: 5, VARIATIONS: 5}
    assert store_skus(served) == wanted_skus(products)


def test_a_product_the_store_refuses_fails_alone(served: Served, woo: WooCommerceConnector) -> None:
    d = served.double
    # A trashed product keeps its SKU: the store refuses T0002's parent (per-item error).
    d.products[1] = trashed("T0002")
    products = catalog(6)
    # A negative price: refused before anything of T0004 is sent.
    products[4] = tee(4, price="-1")
    results = woo.bulk_products(products, {}, KEY)
    assert [r.ok for r in results] == [True, True, False, True, False, True]
    assert "product_invalid_sku" in str(results[2].error)
    assert "price must be a number >= 0" in str(results[4].error)
    assert not any(p["sku"] == "T0004" for p in d.products.values())
    made = [p["sku"] for p in d.products.values() if p["status"] != "trash"]
    assert sorted(made) == ["T0000", "T0001", "T0003", "T0005"]


def test_a_variant_the_store_refuses_fails_its_product_alone(
    served: Served, woo: WooCommerceConnector
) -> None:
    woo.bulk_products([tee(9)], {}, KEY)
    clash = ChannelProduct(
        "T0001", {"title": "Tee 1"}, [*tee(1).variants, ChannelVariant("T0009-S", {"price": "1"})]
    )
    results = woo.bulk_products([tee(0), clash, tee(2)], {}, KEY)
    assert [r.ok for r in results] == [True, False, True]
    assert "T0009-S" in str(results[1].error) and "product_invalid_sku" in str(results[1].error)
    assert results[1].remote_id  # the parent stays: its own item finds it by SKU


def test_misplaced_products_are_sent_to_their_own_items(
    served: Served, woo: WooCommerceConnector
) -> None:
    (made,) = woo.bulk_products([mug(1)], {}, KEY)
    as_variable = ChannelProduct("M0001", {"title": "Mug"}, [*tee(1).variants])
    simple_sku_taken = ChannelProduct("X", {}, [ChannelVariant("M0001", {"price": "1"})])
    results = woo.bulk_products(
        [as_variable, mug(2), mug(3), simple_sku_taken],
        {"M0002": "999999", "X": "424242"},
        KEY,
    )
    assert [r.ok for r in results] == [False, False, True, False]
    assert "is simple, this product needs it variable" in str(results[0].error)
    assert "no product holds its SKU M0002" in str(results[1].error)
    assert f"held by product {made.remote_id}" in str(results[3].error)


def test_a_store_with_a_lower_cap_halves_the_parent_batch(served: Served) -> None:
    served.double.batch_limit = 30
    woo = WooCommerceConnector(woo_settings(served))
    results = woo.bulk_products([mug(n) for n in range(80)], {}, KEY)
    woo.close()
    assert all(r.ok for r in results)
    statuses = [r.status for r in served.double.received if r.path == "/products/batch"]
    assert statuses == [413, 413, 200, 200, 413, 200, 200]
    assert len(served.double.products) == 80


# ------------------------------------------------------------------------- the flow


@dataclass
class Env:
    queue: Queue
    app: Application
    client_id: int
    channel_id: int
    source_id: int
    served: Served

    @property
    def store(self) -> CatalogStore:
        return CatalogStore(self.queue.db)

    def run(self) -> None:
        drain(self.queue, self.app.handlers)

    def enqueue(self, instruction: str) -> int:
        (item,) = self.queue.enqueue(self.client_id, [Request(instruction, {}, self.channel_id)])
        return item

    def items(self, *statuses: str, instruction: str | None = None) -> list[Any]:
        flt = ItemFilter(
            self.client_id, statuses=statuses, instructions=(instruction,) if instruction else ()
        )
        return self.queue.list_items(flt, limit=1000)

    def add_products(self, count: int, price: str = "12.50") -> None:
        for n in range(count):
            self.store.upsert_product(self.client_id, self.source_id, catalog_product(n, price))


def catalog_product(n: int, price: str = "12.50") -> Product:
    return Product.model_validate(
        {
            "code": f"P{n:05d}",
            "title": f"Product {n}",
            "variants": [
                {
                    "sku": f"P{n:05d}-{size}",
                    "price": price,
                    "stock": {"main": 3},
                    "options": {"Size": size},
                }
                for size in ("S", "M", "L")
            ],
        }
    )


@pytest.fixture
def env(served: Served, tmp_path: Any) -> Iterator[Env]:
    policy = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.02, timeout=120.0)
    queue = make_queue(f"sqlite:///{tmp_path}/bulk.db", fast_instructions(policy))
    app = Application(queue.db, queue=queue)
    tenancy = Tenancy(queue.db)
    client_id = tenancy.ensure_client("default")
    source = tenancy.add_connection(
        client_id, "source", "http", "ERP", {"base_url": "http://127.0.0.1:9"}
    )
    channel = tenancy.add_connection(
        client_id, "channel", "woocommerce", "Woo", woo_settings(served)
    )
    yield Env(queue, app, client_id, channel.id, source.id, served)
    queue.db.close()


def test_an_init_of_1000_products_is_ten_bulk_items_at_the_floor_of_calls(env: Env) -> None:
    env.add_products(1000)
    init = env.enqueue("init_channel")
    env.run()
    children = env.queue.detail(env.client_id, init).children
    # Items of 100 (WooCommerceConnector.bulk_chunk): ~102 sequential calls each, bounded
    # on a slow WordPress; one parent batch each, so the calls stay at the floor.
    bulk_items = [c for c in children if c.instruction == "bulk_products"]
    assert [len(c.payload["product_ids"]) for c in bulk_items] == [100] * 10
    assert env.items("failed") == []
    assert env.items(instruction="add_product") == []
    d = double(env.served)
    # The floor the caps allow (10 parent batches + 1,000 variations batches) + 10 look-ups.
    assert d.kinds() == {LOOKUP: 10, PARENTS: 10, VARIATIONS: 1000}
    assert len(env.store.linked(env.channel_id, "product")) == 1000
    assert len(env.store.linked(env.channel_id, "variant")) == 3000
    assert len(d.variations) == 3000
    assert Tenancy(env.queue.db).connection(env.channel_id).status == "active"


def test_a_sync_after_an_init_updates_and_creates_nothing(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(flow_bulk, "BULK_THRESHOLD", 5)
    env.add_products(8)
    env.enqueue("init_channel")
    env.run()
    d = double(env.served)
    ids = set(d.products) | set(d.variations)
    d.received.clear()
    env.add_products(8, price="11.00")
    env.enqueue("sync_channel")
    env.run()
    assert env.items("failed") == []
    assert set(d.products) | set(d.variations) == ids
    batches = [r.body for r in d.received if r.path.endswith("/batch")]
    assert batches and all("create" not in b for b in batches)
    assert {v["regular_price"] for v in d.variations.values()} == {"11.00"}


def test_a_product_refused_in_bulk_fails_only_its_own_item(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(flow_bulk, "BULK_THRESHOLD", 5)
    env.add_products(6)
    # A trashed product keeps its SKU: the store refuses P00003's parent, in the bulk
    # item and again in its own.
    env.served.double.products[7] = trashed("P00003", 7)
    env.enqueue("init_channel")
    env.run()
    (bulk_item,) = env.items(instruction="bulk_products")
    assert bulk_item.status == "done"
    (failed,) = env.items("failed")
    assert failed.instruction == "add_product" and failed.parent_id == bulk_item.id
    assert "SKU P00003 is taken" in (failed.error or "")
    assert len(env.store.linked(env.channel_id, "product")) == 5
