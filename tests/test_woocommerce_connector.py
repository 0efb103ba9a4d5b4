"""The `woocommerce` connector against the WooCommerce double over real HTTP (issue 19,
first slice): simple and variable products made and found again by SKU, a repeated create
finding what the first made, a price change as one small batch, batches split at 100 (and
halved on a 413 from a store with a lower cap), a duplicate SKU failing only its variant,
429 / 503 as transient errors, and every request the connector sent accepted by the
transcribed wc/v3 contract (tests/support/woocommerce_contract)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from stockyard.connectors.base import ChannelProduct, ChannelVariant
from stockyard.connectors.woocommerce import WooCommerceConnector
from stockyard.errors import PermanentError, TransientError
from tests.support.woocommerce_double import (
    CONSUMER_KEY,
    CONSUMER_SECRET,
    Served,
    serve,
)
from tests.support.woocommerce_double_bulk import WooCommerceBulkDouble, connected, woo_settings

KEY = "item-5c1e"


@pytest.fixture
def served() -> Iterator[Served]:
    with serve(WooCommerceBulkDouble()) as s:
        yield s


def connector(s: Served, **settings: Any) -> WooCommerceConnector:
    return WooCommerceConnector(woo_settings(s) | settings)


@pytest.fixture
def store(served: Served) -> Iterator[WooCommerceConnector]:
    with connected(served) as c:
        yield c
    assert served.double.received


def tee(
    price: str = "19.90", sizes: tuple[str, ...] = ("S", "M"), code: str = "TEE"
) -> ChannelProduct:
    return ChannelProduct(
        code,
        {"title": "Classic tee", "description": "Cotton <b>heavy</b>"},
        [
            ChannelVariant(
                f"{code}-{size}", {"price": price, "quantity": 5 + n, "options": {"Size": size}}
            )
            for n, size in enumerate(sizes)
        ],
    )


def mug() -> ChannelProduct:
    return ChannelProduct(
        "MUG", {"title": "Mug"}, [ChannelVariant("MUG-1", {"price": 7, "quantity": None})]
    )


def test_a_variable_product_is_made_with_one_variations_batch_and_found_by_sku(
    served: Served, store: WooCommerceConnector
) -> None:
    made = store.create_product(tee(), KEY)
    assert served.double.calls() == [
        "GET /products",  # the code looked up: nothing yet
        "POST /products",
        f"POST /products/{made.id}/variations/batch",
    ]
    product = served.double.products[int(made.id)]
    assert (product["type"], product["sku"], product["name"]) == ("variable", "TEE", "Classic tee")
    assert product["description"] == "Cotton &lt;b&gt;heavy&lt;/b&gt;"
    assert product["attributes"][0] | {"id": 0} == {
        "id": 0,
        "name": "Size",
        "options": ["S", "M"],
        "variation": True,
        "visible": True,
    }
    children = served.double.children(int(made.id))
    assert {v["sku"]: str(v["id"]) for v in children} == made.variants
    assert [(v["regular_price"], v["sale_price"]) for v in children] == [("19.90", "")] * 2
    assert [(v["manage_stock"], v["stock_quantity"]) for v in children] == [(True, 5), (True, 6)]
    assert [v["attributes"][0]["option"] for v in children] == ["S", "M"]

    # Core's SKU search answers the variation: its parent is the product found.
    by_variant = store.find_product(["TEE-S"])
    assert by_variant is not None and (by_variant.id, by_variant.variants) == (
        made.id,
        made.variants,
    )
    found = store.find_product(["NOPE", "TEE"])
    assert found is not None and (found.id, found.variants) == (made.id, made.variants)
    assert served.double.calls()[-2:] == ["GET /products", f"GET /products/{made.id}/variations"]


def test_a_repeated_create_finds_what_the_first_made(
    served: Served, store: WooCommerceConnector
) -> None:
    first = store.create_product(tee(), KEY)
    again = store.create_product(tee(price="21.00"), KEY)
    assert (again.id, again.variants) == (first.id, first.variants)
    assert len(served.double.products) == 1 and len(served.double.variations) == 2
    assert {v["regular_price"] for v in served.double.variations.values()} == {"21.00"}
    simple = store.create_product(mug(), KEY)
    assert store.create_product(mug(), KEY) == simple
    assert sum(p["sku"] == "MUG-1" for p in served.double.products.values()) == 1


def test_a_single_variant_without_options_is_a_simple_product(
    served: Served, store: WooCommerceConnector
) -> None:
    made = store.create_product(mug(), KEY)
    product = served.double.products[int(made.id)]
    assert (product["type"], product["sku"], product["regular_price"]) == ("simple", "MUG-1", "7")
    assert (product["manage_stock"], product["stock_quantity"]) == (False, None)
    assert made.variants == {"MUG-1": made.id}
    assert store.find_product(["MUG-1"]) == made
    # Its one variant is the product itself.
    (result,) = store.upsert_variants(
        made.id, [ChannelVariant("MUG-1", {"price": "8.50", "quantity": 3})], KEY
    )
    assert (result.ok, result.remote_id) == (True, made.id)
    assert (product["regular_price"], product["stock_quantity"]) == ("8.50", 3)


def test_a_price_change_is_one_single_item_batch_and_compare_at_is_the_regular_price(
    served: Served, store: WooCommerceConnector
) -> None:
    made = store.create_product(tee(), KEY)
    served.double.received.clear()
    sku = "TEE-M"
    change = ChannelVariant(
        sku,
        {"price": "15", "compare_at_price": "19.90", "quantity": 2, "options": {"Size": "M"}},
        made.variants[sku],
    )
    (result,) = store.upsert_variants(made.id, [change], KEY)
    assert (result.ok, result.remote_id) == (True, made.variants[sku])
    batch = served.double.received[-1]
    assert batch.body == {
        "update": [
            {
                "id": int(made.variants[sku]),
                "sku": sku,
                "regular_price": "19.90",
                "sale_price": "15",
                "manage_stock": True,
                "stock_quantity": 2,
                "attributes": [{"name": "Size", "option": "M"}],
            }
        ]
    }
    assert [c.split(" ")[0] for c in served.double.calls()] == ["GET", "GET", "POST"]


def test_a_batch_over_100_is_split(served: Served, store: WooCommerceConnector) -> None:
    sizes = tuple(f"S{n}" for n in range(150))
    made = store.create_product(tee(sizes=sizes), KEY)
    batches = [r for r in served.double.received if r.path.endswith("/variations/batch")]
    assert [len(r.body["create"]) for r in batches] == [100, 50]
    assert len(made.variants) == 150 and len(served.double.variations) == 150


def test_a_store_with_a_lower_cap_halves_the_batch_on_413(served: Served) -> None:
    served.double.batch_limit = 30
    store = connector(served)
    made = store.create_product(tee(sizes=tuple(f"S{n}" for n in range(80))), KEY)
    store.close()
    answers = [r.status for r in served.double.received if r.path.endswith("/variations/batch")]
    assert answers == [413, 413, 200, 200, 413, 200, 200]  # 80 -> 40 -> 20+20, 40 -> 20+20
    assert len(made.variants) == 80
    assert served.double.refused == []


def test_a_duplicate_sku_fails_only_its_variant(
    served: Served, store: WooCommerceConnector
) -> None:
    other = store.create_product(tee(code="POLO", sizes=("L",)), KEY)
    made = store.create_product(tee(), KEY)
    clash = ChannelVariant("POLO-L", {"price": "9", "quantity": 1, "options": {"Size": "L"}})
    fine = ChannelVariant("TEE-XL", {"price": "9", "quantity": 1, "options": {"Size": "XL"}})
    results = store.upsert_variants(made.id, [clash, fine], KEY)
    assert [r.key for r in results] == ["POLO-L", "TEE-XL"]
    assert not results[0].ok and "product_invalid_sku" in str(results[0].error)
    assert isinstance(results[0].error, PermanentError)
    assert results[1].ok and results[1].remote_id is not None
    assert served.double.skus()["POLO-L"] == int(other.variants["POLO-L"])  # untouched
    # The attribute gained the new options in one product update before the batch.
    product = served.double.products[int(made.id)]
    assert product["attributes"][0]["options"] == ["S", "M", "L", "XL"]


def test_a_create_whose_variant_fails_raises_and_its_retry_completes_it(
    served: Served, store: WooCommerceConnector
) -> None:
    store.create_product(mug(), KEY)
    product = ChannelProduct(
        "SET",
        {"title": "Set"},
        [
            ChannelVariant("MUG-1", {"price": "1", "options": {"Colour": "red"}}),
            ChannelVariant("SET-B", {"price": "1", "options": {"Colour": "blue"}}),
        ],
    )
    with pytest.raises(PermanentError, match="product_invalid_sku"):
        store.create_product(product, KEY)
    fixed = ChannelProduct(
        "SET",
        product.fields,
        [
            product.variants[1],
            ChannelVariant("SET-R", {"price": "1", "options": {"Colour": "red"}}),
        ],
    )
    made = store.create_product(fixed, KEY)
    assert set(made.variants) == {"SET-B", "SET-R"}
    assert sum(p["sku"] == "SET" for p in served.double.products.values()) == 1


@pytest.mark.parametrize("status", [429, 503])
def test_throttling_and_outages_are_transient(
    served: Served, store: WooCommerceConnector, status: int
) -> None:
    served.double.fail_next(status)
    with pytest.raises(TransientError, match=f"HTTP {status}"):
        store.create_product(tee(), KEY)
    made = store.create_product(tee(), KEY)  # the retry goes through
    assert len(made.variants) == 2


def test_delete_is_forced_and_repeatable(served: Served, store: WooCommerceConnector) -> None:
    made = store.create_product(tee(), KEY)
    store.delete_product(made.id, KEY)
    store.delete_product(made.id, KEY)  # gone already: done
    assert served.double.products == {} and served.double.variations == {}
    assert [r.query for r in served.double.received if r.method == "DELETE"] == [
        {"force": "true"}
    ] * 2


def test_wrong_keys_are_a_permanent_error(served: Served) -> None:
    store = connector(served, consumer_secret="cs_wrong")
    with pytest.raises(PermanentError, match="401 woocommerce_rest_authentication_error"):
        store.find_product(["TEE"])
    store.close()


@pytest.mark.parametrize(
    "url",
    ["http://shop.example.com", "ftp://shop.example.com", "https://ck:cs@shop.example.com"],
)
def test_settings_refuse_plain_http_and_credentials_in_the_url(url: str) -> None:
    with pytest.raises(PermanentError, match="woocommerce connector settings: url"):
        WooCommerceConnector({"url": url, "consumer_key": "ck_a", "consumer_secret": "cs_b"})


def test_the_keys_are_secrets() -> None:
    problem = WooCommerceConnector.credential_problem({"url": "https://x", "consumer_key": "ck"})
    assert problem == "settings.consumer_key is a credential: send it in secrets"


def test_the_contract_refuses_what_the_connector_must_not_send(served: Served) -> None:
    """The fixture's assertion has teeth: a number price is refused at its path."""
    import httpx

    answer = httpx.post(
        f"{served.url}/wp-json/wc/v3/products",
        json={"name": "x", "regular_price": 19.9},
        auth=(CONSUMER_KEY, CONSUMER_SECRET),
    )
    assert answer.status_code == 400 and answer.json()["code"] == "rest_invalid_param"
    assert served.double.refused and "$.regular_price" in served.double.refused[0]
