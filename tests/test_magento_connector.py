"""The `magento` connector against the Magento double over real HTTP (issue 19, first
slice): a simple product and a configurable one with its children, options and links, each
found again by SKU; a repeated create making nothing twice; a price change as one
base-prices call and stock as one source-items call; deletes; errors classified (429 and
503 transient, a 400 permanent with Magento's message). Every request the connector sent
was allowed by Adobe's OpenAPI document (the double checks each one) and every answer the
double gave was one the document allows.

Skipped when the document is not installed (bash scripts/install-magento-openapi.sh).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from stockyard.connectors.base import ChannelProduct, ChannelVariant
from stockyard.errors import PermanentError, TransientError
from tests.support import magento_contract as contract

pytestmark = pytest.mark.skipif(not contract.installed(), reason=contract.skip_reason())

from stockyard.connectors.magento import MagentoConnector  # noqa: E402
from tests.support.magento_double import TOKEN, MagentoDouble, Served, kept_contract, serve  # noqa: E402

KEY = "item-19-mg"


@pytest.fixture
def served() -> Iterator[Served]:
    double = MagentoDouble()
    double.add_attribute("size", 141, ["S", "M", "L"])
    double.sources.add("east")
    with serve(double) as s:
        yield s


def connector(s: Served, **settings: Any) -> MagentoConnector:
    return MagentoConnector({"url": s.url, "access_token": TOKEN} | settings)


@pytest.fixture
def shop(served: Served) -> Iterator[MagentoConnector]:
    c = connector(served)
    yield c
    c.close()
    double = served.double
    # Whatever a test did: nothing the connector sent was refused by the contract, and
    # nothing the double answered was outside it.
    assert double.received
    kept_contract(double)
    assert {r.authorization for r in double.received} == {f"Bearer {TOKEN}"}
    assert all(r.path.startswith("/rest/all/V1/") for r in double.received)


def tee(price: str = "19.90", quantities: tuple[int, ...] = (5, 3)) -> ChannelProduct:
    return ChannelProduct(
        "TEE",
        {"title": "Classic tee", "description": "Cotton"},
        [
            ChannelVariant(
                f"TEE-{size}", {"price": price, "quantity": q, "options": {"Size": size}}
            )
            for size, q in zip(("S", "M", "L"), quantities, strict=False)
        ],
    )


def calls(s: Served) -> list[str]:
    return [f"{r.method} {r.path.removeprefix('/rest/all')}" for r in s.double.received]


def test_a_simple_product_is_made_and_found_by_sku(served: Served, shop: MagentoConnector) -> None:
    mug = ChannelProduct(
        "MUG", {"title": "Mug"}, [ChannelVariant("MUG-1", {"price": "8.50", "quantity": 4})]
    )
    made = shop.create_product(mug, KEY)
    assert made.id == "MUG-1"
    assert made.variants == {"MUG-1": "MUG-1"}
    product = served.double.products["MUG-1"]
    assert (product["type_id"], product["visibility"], product["price"]) == ("simple", 4, 8.5)
    assert product["extension_attributes"]["website_ids"] == [1]
    assert served.double.source_items[("MUG-1", "default")]["quantity"] == 4
    found = shop.find_product(["NOPE", "MUG-1"])
    assert found is not None and found.id == "MUG-1"
    assert shop.find_product(["NOPE"]) is None
    # Made again (a repeated item): saved over, not made twice.
    served.double.received.clear()
    assert shop.create_product(mug, KEY) == made
    assert calls(served) == [
        "GET /V1/products/MUG-1",
        "PUT /V1/products/MUG-1",
        "POST /V1/inventory/source-items",
    ]


def test_a_configurable_product_with_children_options_and_links(
    served: Served, shop: MagentoConnector
) -> None:
    made = shop.create_product(tee(), KEY)
    assert made.id == "TEE"
    assert made.variants == {"TEE-S": "TEE-S", "TEE-M": "TEE-M"}
    products = served.double.products
    parent = products["TEE"]
    assert parent["type_id"] == "configurable"
    (option,) = parent["extension_attributes"]["configurable_product_options"]
    assert option["attribute_id"] == "141"
    assert option["values"] == [{"value_index": 14101}, {"value_index": 14102}]
    links = parent["extension_attributes"]["configurable_product_links"]
    assert links == [products["TEE-S"]["id"], products["TEE-M"]["id"]]
    child = products["TEE-S"]
    assert child["visibility"] == 1
    assert {"attribute_code": "size", "value": "14101"} in child["custom_attributes"]
    assert [served.double.source_items[(s, "default")]["quantity"] for s in made.variants] == [
        5,
        3,
    ]
    found = shop.find_product(["TEE-M"])
    # A child alone cannot name its parent; the parent is found through the code.
    assert found is None
    assert served.double.requests("GET", "/V1/products/attributes/{attributeCode}")


def test_a_repeated_create_finds_what_the_first_made(
    served: Served, shop: MagentoConnector
) -> None:
    shop.create_product(tee(), KEY)
    before = {s: p["id"] for s, p in served.double.products.items()}
    served.double.received.clear()
    again = shop.create_product(tee(), KEY)
    assert again.id == "TEE"
    assert {s: p["id"] for s, p in served.double.products.items()} == before
    assert served.double.requests("POST", "/V1/products") == []
    # A first try that died between the children and the parent: the parent is made once.
    del served.double.products["TEE"]
    shop.create_product(tee(), KEY)
    assert sorted(served.double.products) == ["TEE", "TEE-M", "TEE-S"]
    assert len(served.double.requests("POST", "/V1/products")) == 1


def linked(product: ChannelProduct) -> list[ChannelVariant]:
    """The variants as the flow gives them once linked: their remote id is their SKU."""
    return [ChannelVariant(v.sku, v.fields, v.sku) for v in product.variants]


def test_a_price_change_of_linked_variants_writes_one_base_prices_call_only(
    served: Served, shop: MagentoConnector
) -> None:
    made = shop.create_product(tee(), KEY)
    served.double.received.clear()
    results = shop.upsert_variants(made.id, linked(tee(price="17.50")), KEY)
    assert [(r.key, r.remote_id, r.ok) for r in results] == [
        ("TEE-S", "TEE-S", True),
        ("TEE-M", "TEE-M", True),
    ]
    # No search (linked); the stock is read and left alone: one write, the prices.
    assert calls(served) == ["POST /V1/products/base-prices", "GET /V1/inventory/source-items"]
    (prices,) = served.double.requests("POST", "/V1/products/base-prices")
    assert prices.body == {
        "prices": [
            {"sku": "TEE-S", "price": 17.5, "store_id": 0},
            {"sku": "TEE-M", "price": 17.5, "store_id": 0},
        ]
    }
    assert served.double.products["TEE-M"]["price"] == 17.5


def test_a_stock_change_writes_only_the_levels_that_differ(
    served: Served, shop: MagentoConnector
) -> None:
    made = shop.create_product(tee(), KEY)
    served.double.received.clear()
    shop.upsert_variants(made.id, linked(tee(quantities=(0, 3))), KEY)
    assert calls(served) == [
        "POST /V1/products/base-prices",
        "GET /V1/inventory/source-items",
        "POST /V1/inventory/source-items",
    ]
    (stock,) = served.double.requests("POST", "/V1/inventory/source-items")
    assert stock.body == {
        "sourceItems": [{"sku": "TEE-S", "source_code": "default", "quantity": 0, "status": 0}]
    }


def test_unlinked_variants_are_looked_up_first(served: Served, shop: MagentoConnector) -> None:
    made = shop.create_product(tee(), KEY)
    served.double.received.clear()
    shop.upsert_variants(made.id, tee(price="17.50", quantities=(0, 9)).variants, KEY)
    assert calls(served) == [
        "GET /V1/products",
        "POST /V1/products/base-prices",
        "GET /V1/inventory/source-items",
        "POST /V1/inventory/source-items",
    ]
    item = served.double.source_items[("TEE-S", "default")]
    assert (item["quantity"], item["status"]) == (0, 0)


def test_a_linked_variant_deleted_in_the_store_is_made_again(
    served: Served, shop: MagentoConnector
) -> None:
    made = shop.create_product(tee(), KEY)
    served.double.products.pop("TEE-M")
    results = shop.upsert_variants(made.id, linked(tee(price="17.50")), KEY)
    assert all(r.ok for r in results), results
    again = served.double.products["TEE-M"]
    assert again["price"] == 17.5
    assert (
        again["id"]
        in served.double.products["TEE"]["extension_attributes"]["configurable_product_links"]
    )


def test_a_price_the_store_refuses_fails_that_variant_with_magentos_words(
    served: Served,
) -> None:
    shop = connector(served, price_store_id=7)
    try:
        made = shop.create_product(tee(), KEY)
        results = shop.upsert_variants(made.id, tee(price="17.50").variants, KEY)
    finally:
        shop.close()
    assert [r.ok for r in results] == [False, False]
    assert str(results[0].error) == (
        "magento: price of TEE-S: Requested store is not found. Row ID: SKU = TEE-S, Store ID: 7."
    )
    assert served.double.products["TEE-S"]["price"] == 19.9  # as created
    assert [r.violation for r in served.double.received if r.violation] == []


def test_a_new_variant_is_made_and_linked(served: Served, shop: MagentoConnector) -> None:
    made = shop.create_product(tee(), KEY)
    results = shop.upsert_variants(made.id, tee(quantities=(5, 3, 7)).variants, KEY)
    assert all(r.ok for r in results)
    large = served.double.products["TEE-L"]
    parent = served.double.products["TEE"]
    assert large["id"] in parent["extension_attributes"]["configurable_product_links"]
    assert {"value_index": 14103} in parent["extension_attributes"]["configurable_product_options"][
        0
    ]["values"]


def test_stock_by_warehouse_goes_to_mapped_sources(served: Served) -> None:
    shop = connector(served, sources={"WH1": "default", "WH2": "east", "WH3": "east"})
    try:
        v = ChannelVariant("CAP-1", {"price": "5", "stock": {"WH1": 2, "WH2": 3, "WH3": 4}})
        shop.create_product(ChannelProduct("CAP", {"title": "Cap"}, [v]), KEY)
    finally:
        shop.close()
    items = served.double.source_items
    assert items[("CAP-1", "default")]["quantity"] == 2
    assert items[("CAP-1", "east")]["quantity"] == 7
    assert [r.violation for r in served.double.received if r.violation] == []


def test_update_and_delete(served: Served, shop: MagentoConnector) -> None:
    made = shop.create_product(tee(), KEY)
    renamed = ChannelProduct("TEE", {"title": "Heavy tee"}, tee().variants)
    shop.update_product(made.id, renamed, KEY)
    assert served.double.products["TEE"]["name"] == "Heavy tee"
    shop.delete_product(made.id, KEY)
    assert served.double.products == {}
    shop.delete_product(made.id, KEY)  # gone already: done
    shop.delete_variant(made.id, "TEE-S", KEY)


def test_an_option_value_the_attribute_lacks_is_added_to_it(
    served: Served, shop: MagentoConnector
) -> None:
    odd = ChannelProduct(
        "TEE",
        {"title": "Tee"},
        [ChannelVariant(f"TEE-{s}", {"price": "1", "options": {"Size": s}}) for s in ("S", "XXL")],
    )
    shop.create_product(odd, KEY)
    options = served.double.attributes["size"]["options"]
    (xxl,) = [o for o in options if o["label"] == "XXL"]
    child = served.double.products["TEE-XXL"]
    assert {"attribute_code": "size", "value": xxl["value"]} in child["custom_attributes"]
    assert (
        len(served.double.requests("POST", "/V1/products/attributes/{attributeCode}/options")) == 1
    )
    colour = ChannelProduct(
        "HAT",
        {"title": "Hat"},
        [ChannelVariant("HAT-R", {"price": "1", "options": {"Colour": "Red"}})],
    )
    with pytest.raises(PermanentError, match="no attribute 'colour'"):
        shop.create_product(colour, KEY)


def test_variants_without_options_are_told_apart_by_the_variant_attribute(
    served: Served, shop: MagentoConnector
) -> None:
    # As an ERP without variant attributes sends them (Tryton): the SKU is the value.
    served.double.add_attribute("variant", 150, [])
    plain = ChannelProduct(
        "PEN", {"title": "Pen"}, [ChannelVariant(f"PEN-{c}", {"price": "2"}) for c in "AB"]
    )
    made = shop.create_product(plain, KEY)
    assert made.variants == {"PEN-A": "PEN-A", "PEN-B": "PEN-B"}
    parent = served.double.products["PEN"]
    (option,) = parent["extension_attributes"]["configurable_product_options"]
    assert (option["attribute_id"], option["label"]) == ("150", "Variant")
    labels = {o["value"]: o["label"] for o in served.double.attributes["variant"]["options"]}
    values = {
        sku: next(
            a["value"]
            for a in served.double.products[sku]["custom_attributes"]
            if a["attribute_code"] == "variant"
        )
        for sku in made.variants
    }
    assert {sku: labels[v] for sku, v in values.items()} == {"PEN-A": "PEN-A", "PEN-B": "PEN-B"}


@pytest.mark.parametrize("status", [429, 503])
def test_throttling_and_outages_are_transient(
    served: Served, shop: MagentoConnector, status: int
) -> None:
    served.double.faults.append((status, {"message": "Slow down"}))
    with pytest.raises(TransientError, match=f"HTTP {status}|429"):
        shop.find_product(["TEE-S"])
    assert shop.find_product(["TEE-S"]) is None  # the next try goes through


def test_a_refusal_is_permanent_and_names_magentos_message(
    served: Served, shop: MagentoConnector
) -> None:
    served.double.faults.append(
        (400, {"message": 'The value of attribute "%1" must be set.', "parameters": ["name"]})
    )
    with pytest.raises(PermanentError, match=r'The value of attribute "name" must be set\.'):
        shop.update_product("TEE", tee(), KEY)


def test_a_contract_violation_reaches_the_connector_as_permanent(
    served: Served,
) -> None:
    # A request the document refuses is answered 400 with the violation: permanent.
    shop = connector(served)
    try:
        with pytest.raises(
            PermanentError,
            match=r"HTTP 400: .*at \$\.prices\[0\]\.price: '1' is not of type 'number'",
        ):
            shop.api.call(
                "POST", "V1/products/base-prices", {"prices": [{"sku": "A", "price": "1"}]}
            )
    finally:
        shop.close()
    assert served.double.received[-1].violation


def test_settings_refuse_plain_http_and_bad_tokens() -> None:
    with pytest.raises(PermanentError, match="url"):
        MagentoConnector({"url": "http://shop.example.com", "access_token": TOKEN})
    with pytest.raises(PermanentError, match="access_token"):
        MagentoConnector({"url": "https://shop.example.com", "access_token": "a b"})
    made = MagentoConnector({"url": "https://shop.example.com/", "access_token": TOKEN})
    try:
        assert made.config.store_code == "all"
        assert "access_token" in MagentoConnector.secret_settings
        assert TOKEN not in repr(made.config)
    finally:
        made.close()


@pytest.fixture
def no_msi(served: Served) -> Served:
    served.double.msi = False  # the store's Magento_Inventory* modules disabled
    return served


def test_without_msi_stock_goes_to_the_legacy_stock_item_and_msi_is_not_asked_again(
    no_msi: Served, shop: MagentoConnector
) -> None:
    made = shop.create_product(tee(), KEY)
    double = no_msi.double
    assert [double.stock_item(s)["qty"] for s in ("TEE-S", "TEE-M")] == [5, 3]
    assert double.stock_item("TEE-S")["is_in_stock"] is True
    assert len(double.requests("POST", "/V1/inventory/source-items")) == 1  # the 404
    double.received.clear()
    shop.upsert_variants(made.id, linked(tee(price="17.50", quantities=(0, 3))), KEY)
    # The stock items are read with the products (one search), only TEE-S's written.
    assert calls(no_msi) == [
        "POST /V1/products/base-prices",
        "GET /V1/products",
        f"PUT /V1/products/TEE-S/stockItems/{double.stock_item('TEE-S')['item_id']}",
    ]
    (put,) = double.requests("PUT", "/V1/products/{productSku}/stockItems/{itemId}")
    assert put.body == {"stockItem": {"qty": 0, "is_in_stock": False}}
    assert (double.stock_item("TEE-S")["qty"], double.stock_item("TEE-S")["is_in_stock"]) == (
        0,
        False,
    )


def test_inventory_setting_legacy_never_asks_msi(served: Served) -> None:
    served.double.msi = False
    shop = connector(served, inventory="legacy")
    try:
        shop.create_product(tee(), KEY)
    finally:
        shop.close()
    assert [r for r in served.double.received if "/inventory/" in r.path] == []
    assert served.double.stock_item("TEE-M")["qty"] == 3
    assert [r.violation for r in served.double.received if r.violation] == []


def test_inventory_setting_msi_on_a_store_without_it_is_a_clear_permanent_error(
    served: Served,
) -> None:
    served.double.msi = False
    shop = connector(served, inventory="msi")
    try:
        with pytest.raises(PermanentError, match=r"MSI.*inventory"):
            shop.create_product(tee(), KEY)
    finally:
        shop.close()
    with pytest.raises(PermanentError, match="inventory"):
        connector(served, inventory="both")
