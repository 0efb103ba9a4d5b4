"""The bulk path's semantics across connectors (issue 19), through the queue and a worker
against the WooCommerce double (every request checked against the wc/v3 contract):

- a connector whose bulk write does not replace the variant list (WooCommerce, Magento)
  gets a variant the source dropped deleted by its own item, as the per-product path does;
- a connector says how many products one bulk_products item takes (`bulk_chunk`):
  the fan-out chunks by it and a larger item (queued before the connection changed
  connector) is split into items of it;
- a re-sync through the bulk path queues add_image only for images that changed and
  deletes the images the source dropped, as the per-product path does."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from stockyard.catalog.models import Product
from stockyard.connectors.base import Connector
from stockyard.connectors.shopify import ShopifyConnector
from stockyard.connectors.woocommerce import WooCommerceConnector
from stockyard.engine import Request
from stockyard.flows import bulk as flow_bulk
from tests.support.woocommerce_double import Served, serve
from tests.support.woocommerce_double_bulk import WooCommerceBulkDouble, no_refusals
from tests.test_woocommerce_bulk import Env
from tests.test_woocommerce_bulk import env as env

FRONT = "https://cdn.example.com/img/{code}-front.jpg"
BACK = "https://cdn.example.com/img/{code}-back.jpg"


@pytest.fixture
def served() -> Iterator[Served]:
    with serve(WooCommerceBulkDouble()) as s:
        yield s
        no_refusals(s.double)
        assert s.double.broken == []


def product(n: int, sizes: str = "SML", images: tuple[str, ...] = ()) -> Product:
    code = f"P{n:05d}"
    return Product.model_validate(
        {
            "code": code,
            "title": f"Product {n}",
            "variants": [
                {"sku": f"{code}-{s}", "price": "12.50", "options": {"Size": s}} for s in sizes
            ],
            "images": [{"code": i, "url": i.format(code=code)} for i in images],
        }
    )


def put(env: Env, *products: Product) -> None:
    for p in products:
        env.store.upsert_product(env.client_id, env.source_id, p)


def skus(env: Env) -> set[str]:
    return {v["sku"] for v in env.served.double.variations.values()}


# ------------------------------------------------------------------ removed variants


def test_the_connectors_say_whether_their_bulk_write_replaces_the_variant_list() -> None:
    assert ShopifyConnector.bulk_replaces_variants  # productSet: the list given is the list
    assert not WooCommerceConnector.bulk_replaces_variants
    assert not Connector.bulk_replaces_variants


def test_a_variant_the_source_dropped_is_deleted_after_a_bulk_resync(
    env: Env,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(flow_bulk, "BULK_THRESHOLD", 3)
    put(env, *(product(n) for n in range(4)))
    env.enqueue("init_channel")
    env.run()
    assert "P00000-L" in skus(env)
    put(env, product(0, "SM"))  # L dropped by the source

    env.enqueue("sync_channel")
    env.run()

    assert env.items("failed") == []
    (deleted,) = env.items("done", instruction="delete_product_variant")
    assert deleted.refs[0] == "P00000"
    assert "P00000-L" not in skus(env)
    assert len(skus(env)) == 11
    stored = env.store.product(env.client_id, env.store.product_id(env.client_id, "P00000"))
    assert env.store.links(env.channel_id, "variant", stored.removed_variants) == {}


# ------------------------------------------------------------------ chunks per connector


def test_woocommerce_takes_a_hundred_products_per_bulk_item() -> None:
    assert WooCommerceConnector.bulk_chunk == 100
    assert ShopifyConnector.bulk_chunk == Connector.bulk_chunk == 1000


def test_the_fan_out_chunks_by_the_connectors_size_and_an_item_takes_no_more(
    env: Env,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(flow_bulk, "BULK_THRESHOLD", 5)
    monkeypatch.setattr(WooCommerceConnector, "bulk_chunk", 4)
    put(env, *(product(n) for n in range(10)))
    env.enqueue("init_channel")
    env.run()
    chunks = env.items(instruction="bulk_products")
    assert sorted(len(i.payload["product_ids"]) for i in chunks) == [2, 4, 4]
    assert env.items("failed") == []
    assert len(env.store.linked(env.channel_id, "product")) == 10

    # An item larger than the connector's chunk (queued before the connection changed
    # connector) is split into items of the chunk, which write the products.
    ids = sorted(s[0] for s in env.store.product_summaries(env.client_id))[:5]
    payload = {"product_ids": ids, "mode": "update"}
    (item,) = env.queue.enqueue(env.client_id, [Request("bulk_products", payload, env.channel_id)])
    env.run()
    assert env.queue.get(env.client_id, item).status == "done"
    split = [i for i in env.items(instruction="bulk_products") if i.id > item]
    assert sorted(i.payload["product_ids"] for i in split) == [ids[:4], ids[4:]]
    assert {i.status for i in split} == {"done"} and env.items("failed") == []


def test_an_item_too_large_for_a_connector_without_bulk_becomes_one_item_each(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    put(env, *(product(n) for n in range(3)))
    ids = sorted(s[0] for s in env.store.product_summaries(env.client_id))
    monkeypatch.setattr(WooCommerceConnector, "bulk_chunk", 2)
    monkeypatch.setattr(WooCommerceConnector, "offers_bulk_products", classmethod(lambda c: False))
    payload = {"product_ids": ids, "mode": "add"}
    env.queue.enqueue(env.client_id, [Request("bulk_products", payload, env.channel_id)])
    env.run()
    added = env.items(instruction="add_product")
    assert sorted(i.payload["product_id"] for i in added) == ids
    assert env.items("failed") == [] and len(env.store.linked(env.channel_id, "product")) == 3


# ------------------------------------------------------------------ images


def image_items(env: Env, instruction: str, after: int) -> list[Any]:
    return [i for i in env.items(instruction=instruction) if i.id > after]


def test_a_bulk_resync_sends_only_changed_images_and_deletes_dropped_ones(
    env: Env,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(flow_bulk, "BULK_THRESHOLD", 3)
    put(env, *(product(n, images=(FRONT, BACK)) for n in range(4)))
    env.enqueue("init_channel")
    env.run()
    assert len(env.items("done", instruction="add_image")) == 8
    assert len(env.store.linked(env.channel_id, "image")) == 8

    # Nothing changed: the re-sync writes the products again but queues no image.
    mark = env.enqueue("sync_channel")
    env.run()
    assert image_items(env, "add_image", mark) == []

    # The source drops P00001's back image: the re-sync deletes it in the store.
    put(env, product(1, images=(FRONT,)))
    mark = env.enqueue("sync_channel")
    env.run()
    assert env.items("failed") == []
    assert image_items(env, "add_image", mark) == []
    (deleted,) = image_items(env, "delete_image", mark)
    assert deleted.status == "done"
    product_id = deleted.payload["product_id"]
    remote_id = env.store.links(env.channel_id, "product", [product_id])[product_id].remote_id
    sources = [i["source"] for i in env.served.double.images_of(int(remote_id))]
    assert sources == [FRONT.format(code="P00001")]
    assert len(env.store.linked(env.channel_id, "image")) == 7
