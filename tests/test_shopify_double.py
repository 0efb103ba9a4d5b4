"""The Shopify double (tests/support/shopify_double.py) over HTTP: it refuses what Shopify's
schema refuses, executes the connector's documents, pages, compares-and-sets, replays by
idempotency key, throttles by query cost and wants the access token (issue 18).

The documents are the connector's own (tests/test_shopify_schema.py). Skipped when the
schema is not installed (bash scripts/install-shopify-schema.sh).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support import shopify_schema as schema

pytestmark = schema.needs_schema

from stockyard.connectors.shopify import documents as _documents  # noqa: E402
from stockyard.connectors.shopify.documents import (  # noqa: E402
    FULFILLMENT_CREATE,
    INVENTORY_SET,
    PRODUCT_CREATE,
    PRODUCT_SET,
    PRODUCTS_BY_SKU,
    VARIANTS_BULK_CREATE,
    VARIANTS_BULK_UPDATE,
)
from tests.support.clock import Clock  # noqa: E402
from tests.support.shopify_double import TOKEN, Served, ShopifyDouble, serve  # noqa: E402
from tests.test_shopify_schema import (  # noqa: E402
    PRODUCT_CREATE_VARIABLES,
    PRODUCT_SET_VARIABLES,
)

# The connector's orders documents (10 orders x 20 line items; 5 fulfillment orders x 20
# lines) stay under 1,000 points; the paging test wants small pages: 2 orders x 10 lines.
ORDERS_UPDATED_SINCE = _documents.ORDERS_UPDATED_SINCE.replace("first: 20)", "first: 10)").replace(
    "orders(first: 10,", "orders(first: 2,"
)
ORDER_FULFILLMENT_ORDERS = _documents.ORDER_FULFILLMENT_ORDERS


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def served(clock: Clock) -> Iterator[Served]:
    # A roomy bucket: these tests are about behaviour, the throttle test sets its own.
    double = ShopifyDouble(capacity=1e6, restore_rate=1e4, clock=clock)
    with serve(double) as s:
        yield s


def post(
    s: Served, query: str, variables: dict[str, Any] | None = None, token: str | None = TOKEN
) -> httpx.Response:
    headers = {"X-Shopify-Access-Token": token} if token else {}
    return httpx.post(s.url, json={"query": query, "variables": variables}, headers=headers)


def data(s: Served, query: str, variables: dict[str, Any] | None = None) -> Any:
    response = post(s, query, variables)
    assert response.status_code == 200
    body = response.json()
    assert "errors" not in body, body["errors"]
    return body["data"]


def test_an_invalid_document_is_refused_with_the_schemas_hint(served: Served) -> None:
    bad = 'mutation { productVariantUpdate(input: {id: "x"}) { productVariant { id } } }'
    body = post(served, bad).json()
    assert "data" not in body
    assert "Did you mean 'productOptionUpdate', 'productVariantsBulkUpdate'" in str(body)
    # Wrong variables too (coerced against Shopify's input types), and nothing executed.
    body = post(served, PRODUCT_CREATE, {"product": {"title": "T", "variants": []}}).json()
    assert "unknown field 'variants'" in str(body["errors"])
    assert served.double.shop.of("Product") == []
    assert len(served.double.received) == 2


def test_an_unimplemented_field_fails_loudly(served: Served) -> None:
    body = post(served, "{ shop { name } }").json()
    assert "does not implement QueryRoot.shop" in body["errors"][0]["message"]


def test_product_set_then_read_back_by_sku(served: Served) -> None:
    shop = served.double.shop
    location = shop.add_location("Main")
    variables = PRODUCT_SET_VARIABLES | {
        "input": PRODUCT_SET_VARIABLES["input"]
        | {
            "variants": [
                v
                | {
                    "inventoryQuantities": [
                        {"locationId": location["id"], "name": "available", "quantity": 5}
                    ]
                }
                for v in PRODUCT_SET_VARIABLES["input"]["variants"]
            ]
        }
    }
    made = data(served, PRODUCT_SET, variables)["productSet"]
    assert made["userErrors"] == []
    assert [v["sku"] for v in made["product"]["variants"]["nodes"]] == ["TEE-S", "TEE-M"]

    found = data(served, PRODUCTS_BY_SKU, {"query": "sku:'TEE-M'"})["productVariants"]["nodes"]
    assert [(v["sku"], v["product"]["handle"]) for v in found] == [("TEE-M", "tee-classic")]
    item = found[0]["inventoryItem"]["id"]
    assert shop.available(item, location["id"]) == 5

    # productSet again without TEE-M: the variant left out is deleted (the sharp edge).
    variables["input"]["variants"] = variables["input"]["variants"][:1]
    again = data(served, PRODUCT_SET, variables)["productSet"]["product"]
    assert again["id"] == made["product"]["id"]
    assert [v["sku"] for v in again["variants"]["nodes"]] == ["TEE-S"]
    assert data(served, PRODUCTS_BY_SKU, {"query": "sku:'TEE-M'"})["productVariants"]["nodes"] == []


def test_product_create_then_variants_create_and_update(served: Served) -> None:
    location = served.double.shop.add_location("Main")
    product = data(served, PRODUCT_CREATE, PRODUCT_CREATE_VARIABLES)["productCreate"]["product"]
    variants = [
        {
            "optionValues": [{"optionName": "Size", "name": size}],
            "price": "19.90",
            "inventoryItem": {"sku": f"TEE-{size}", "tracked": True},
            "inventoryQuantities": [{"locationId": location["id"], "availableQuantity": 3}],
        }
        for size in ("S", "M")
    ]
    made = data(served, VARIANTS_BULK_CREATE, {"productId": product["id"], "variants": variants})
    created = made["productVariantsBulkCreate"]["productVariants"]
    assert [v["sku"] for v in created] == ["TEE-S", "TEE-M"]
    update = {"productId": product["id"], "variants": [{"id": created[0]["id"], "price": "17.90"}]}
    updated = data(served, VARIANTS_BULK_UPDATE, update)["productVariantsBulkUpdate"]
    assert updated["productVariants"][0]["price"] == "17.90"
    # The standalone variant productCreate made is gone (REMOVE_STANDALONE_VARIANT).
    assert len(served.double.shop.of("ProductVariant")) == 2
    wrong = {"productId": product["id"], "variants": [{"id": "gid://shopify/ProductVariant/9"}]}
    refused = data(served, VARIANTS_BULK_UPDATE, wrong)["productVariantsBulkUpdate"]
    assert refused["productVariants"] is None
    assert refused["userErrors"][0]["code"] == "PRODUCT_VARIANT_DOES_NOT_EXIST"


def test_orders_are_paged_by_cursor_in_update_order(served: Served) -> None:
    shop = served.double.shop
    location = shop.add_location("Main")
    for minute in (5, 1, 4, 2, 3):
        shop.add_order([("TEE-S", 1, "19.90")], location, f"2026-11-29T10:0{minute}:00Z")
    shop.add_order([("TEE-S", 1, "19.90")], location, "2026-11-29T09:00:00Z")  # too old
    query = "updated_at:>'2026-11-29T10:00:00Z'"
    seen, after, pages = [], None, 0
    while True:
        orders = data(served, ORDERS_UPDATED_SINCE, {"query": query, "after": after})["orders"]
        seen += [o["updatedAt"] for o in orders["nodes"]]
        pages += 1
        if not orders["pageInfo"]["hasNextPage"]:
            break
        after = orders["pageInfo"]["endCursor"]
    assert seen == [f"2026-11-29T10:0{m}:00Z" for m in range(1, 6)]
    assert pages == 3


def test_partial_then_full_fulfillment_with_tracking(served: Served) -> None:
    shop = served.double.shop
    order = shop.add_order([("TEE-S", 2, "19.90"), ("TEE-M", 1, "19.90")], shop.add_location("M"))
    fo = data(served, ORDER_FULFILLMENT_ORDERS, {"id": order["id"]})["order"]
    fo = fo["fulfillmentOrders"]["nodes"][0]
    first_line = fo["lineItems"]["nodes"][0]
    tracking = {"company": "DHL Express", "number": "JD1", "url": "https://dhl.example/JD1"}
    partial = {
        "fulfillment": {
            "trackingInfo": tracking,
            "lineItemsByFulfillmentOrder": [
                {
                    "fulfillmentOrderId": fo["id"],
                    "fulfillmentOrderLineItems": [{"id": first_line["id"], "quantity": 1}],
                }
            ],
        }
    }
    made = data(served, FULFILLMENT_CREATE, partial)["fulfillmentCreate"]["fulfillment"]
    assert made["trackingInfo"] == [tracking]
    assert order["displayFulfillmentStatus"] == "PARTIALLY_FULFILLED"
    rest = {"fulfillment": {"lineItemsByFulfillmentOrder": [{"fulfillmentOrderId": fo["id"]}]}}
    data(served, FULFILLMENT_CREATE, rest)
    assert order["displayFulfillmentStatus"] == "FULFILLED"
    again = data(served, FULFILLMENT_CREATE, rest)["fulfillmentCreate"]
    assert again["fulfillment"] is None and again["userErrors"]


def test_a_fulfillment_order_on_hold_cannot_be_fulfilled(served: Served) -> None:
    shop = served.double.shop
    order = shop.add_order([("TEE-S", 2, "19.90")], shop.add_location("M"))
    fo = order["_fulfillment_orders"][0]
    fo["status"] = "ON_HOLD"
    whole = {"fulfillment": {"lineItemsByFulfillmentOrder": [{"fulfillmentOrderId": fo["id"]}]}}
    answer = data(served, FULFILLMENT_CREATE, whole)["fulfillmentCreate"]
    assert answer["fulfillment"] is None
    assert "ON_HOLD" in answer["userErrors"][0]["message"]
    assert order["displayFulfillmentStatus"] == "UNFULFILLED"


def _stocked(s: Served) -> tuple[str, str]:
    location = s.double.shop.add_location("Main")
    variables = PRODUCT_SET_VARIABLES | {
        "input": PRODUCT_SET_VARIABLES["input"]
        | {
            "variants": [
                v
                | {
                    "inventoryQuantities": [
                        {"locationId": location["id"], "name": "available", "quantity": 9}
                    ]
                }
                for v in PRODUCT_SET_VARIABLES["input"]["variants"]
            ]
        }
    }
    product = data(s, PRODUCT_SET, variables)["productSet"]["product"]
    return product["variants"]["nodes"][0]["inventoryItem"]["id"], location["id"]


def _set(item: str, location: str, quantity: int, change_from: int | None, key: str) -> Any:
    return {
        "key": key,
        "input": {
            "name": "available",
            "reason": "correction",
            "quantities": [
                {
                    "inventoryItemId": item,
                    "locationId": location,
                    "quantity": quantity,
                    "changeFromQuantity": change_from,
                }
            ],
        },
    }


def test_compare_and_set_refuses_a_stale_quantity(served: Served) -> None:
    item, location = _stocked(served)
    stale = data(served, INVENTORY_SET, _set(item, location, 12, 7, "k1"))
    errors = stale["inventorySetQuantities"]["userErrors"]
    assert [e["code"] for e in errors] == ["CHANGE_FROM_QUANTITY_STALE"]
    assert served.double.shop.available(item, location) == 9
    done = data(served, INVENTORY_SET, _set(item, location, 12, 9, "k2"))
    change = done["inventorySetQuantities"]["inventoryAdjustmentGroup"]["changes"][0]
    assert (change["delta"], change["quantityAfterChange"]) == (3, 12)
    # changeFromQuantity must be passed, even as null (absent is refused; null skips it).
    absent = _set(item, location, 1, None, "k3")
    del absent["input"]["quantities"][0]["changeFromQuantity"]
    assert data(served, INVENTORY_SET, absent)["inventorySetQuantities"]["userErrors"]
    assert data(served, INVENTORY_SET, _set(item, location, 4, None, "k4"))
    assert served.double.shop.available(item, location) == 4


def test_an_idempotency_key_replays_the_first_answer(served: Served) -> None:
    item, location = _stocked(served)
    first = data(served, INVENTORY_SET, _set(item, location, 12, 9, "item-7f3c"))
    # The same request again (its compare quantity is stale by now): the first answer.
    assert data(served, INVENTORY_SET, _set(item, location, 12, 9, "item-7f3c")) == first
    assert served.double.shop.available(item, location) == 12
    other = data(served, INVENTORY_SET, _set(item, location, 13, 12, "item-7f3c"))
    codes = [e["code"] for e in other["inventorySetQuantities"]["userErrors"]]
    assert codes == ["IDEMPOTENCY_KEY_PARAMETER_MISMATCH"]
    # Without the directive (mandatory from 2026-04 by the field's description): refused.
    bare = INVENTORY_SET.replace(" @idempotent(key: $key)", "").replace(", $key: String!", "")
    variables = _set(item, location, 1, 12, "unused")
    del variables["key"]
    assert "requires @idempotent" in str(post(served, bare, variables).json()["errors"])


def test_throttled_when_the_bucket_is_empty_and_restored_in_time(clock: Clock) -> None:
    double = ShopifyDouble(capacity=100, restore_rate=50, clock=clock)
    query = "{ productVariants(first: 30) { nodes { id product { id } } } }"  # 1 + 30 x 2
    with serve(double) as s:
        body = post(s, query).json()
        assert body["extensions"]["cost"]["requestedQueryCost"] == 61
        assert body["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] == 39
        throttled = post(s, query)
        assert throttled.status_code == 200
        body = throttled.json()
        assert body["errors"][0]["extensions"]["code"] == "THROTTLED"
        assert "data" not in body
        assert body["extensions"]["cost"] == {
            "requestedQueryCost": 61,
            "actualQueryCost": None,
            "throttleStatus": {
                "maximumAvailable": 100,
                "currentlyAvailable": 39,
                "restoreRate": 50,
            },
        }
        clock.now += (61 - 39) / 50  # the restore time the status implies
        assert "errors" not in post(s, query).json()
        assert [r.requested_cost for r in double.received] == [61, 61, 61]
        huge = "{ orders(first: 250) { nodes { lineItems(first: 250) { nodes { id } } } } }"
        assert post(s, huge).json()["errors"][0]["extensions"]["code"] == "MAX_COST_EXCEEDED"


def test_input_lists_over_250_are_refused(served: Served) -> None:
    item, location = _stocked(served)
    variables = _set(item, location, 1, None, "big")
    variables["input"]["quantities"] *= 251
    body = post(served, INVENTORY_SET, variables).json()
    assert body["errors"][0]["extensions"]["code"] == "MAX_INPUT_SIZE_EXCEEDED"


def test_401_without_the_access_token(served: Served) -> None:
    for token in (None, "shpat_wrong"):
        response = post(served, "{ shop { name } }", token=token)
        assert response.status_code == 401
        assert "Invalid API key or access token" in response.json()["errors"]
    assert [r.status for r in served.double.received] == [401, 401]
    assert [r.token for r in served.double.received] == [None, "shpat_wrong"]


def test_inventory_activate_needs_a_key_stocks_the_item_and_replays(served: Served) -> None:
    item, main = _stocked(served)
    annex = served.double.shop.add_location("Annex")["id"]
    bare = _documents.INVENTORY_ACTIVATE.replace(" @idempotent(key: $key)", "").replace(
        ", $key: String!", ""
    )
    refused = post(served, bare, {"item": item, "location": annex, "available": 3}).json()
    assert "requires @idempotent" in refused["errors"][0]["message"]
    assert served.double.shop.available(item, annex) is None
    variables = {"item": item, "location": annex, "available": 3, "key": "k1"}
    level = data(served, _documents.INVENTORY_ACTIVATE, variables)["inventoryActivate"]
    assert level["inventoryLevel"]["quantities"] == [{"name": "available", "quantity": 3}]
    served.double.shop.levels[(item, annex)]["available"] = 1  # a sale
    data(served, _documents.INVENTORY_ACTIVATE, variables)  # the same key: a replay
    assert served.double.shop.available(item, annex) == 1
    assert served.double.shop.available(item, main) == 9


def test_variants_bulk_delete_refuses_foreign_and_last_variants(served: Served) -> None:
    unstocked = [
        {k: v for k, v in variant.items() if k != "inventoryQuantities"}
        for variant in PRODUCT_SET_VARIABLES["input"]["variants"]
    ]
    variables = {**PRODUCT_SET_VARIABLES, "input": {**PRODUCT_SET_VARIABLES["input"]}}
    variables["input"]["variants"] = unstocked
    product = data(served, PRODUCT_SET, variables)["productSet"]["product"]
    small, medium = (v["id"] for v in product["variants"]["nodes"])
    delete = _documents.VARIANTS_BULK_DELETE

    def codes(ids: list[str]) -> list[str]:
        answer = data(served, delete, {"productId": product["id"], "ids": ids})
        return [e["code"] for e in answer["productVariantsBulkDelete"]["userErrors"]]

    assert codes([small, medium]) == ["CANNOT_DELETE_LAST_VARIANT"]
    assert codes(["gid://shopify/ProductVariant/1"]) == [
        "AT_LEAST_ONE_VARIANT_DOES_NOT_BELONG_TO_THE_PRODUCT"
    ]
    assert codes([medium]) == []
    assert data(served, _documents.VARIANT_EXISTS, {"id": medium})["productVariant"] is None


def test_media_are_processed_asynchronously_and_deleted_as_files(served: Served) -> None:
    product = data(served, PRODUCT_CREATE, PRODUCT_CREATE_VARIABLES)["productCreate"]["product"]
    read = {"id": product["id"]}
    (media,) = data(served, _documents.PRODUCT_MEDIA, read)["product"]["media"]["nodes"]
    assert (media["status"], media["image"]) == ("UPLOADED", None)
    added = {
        "product": {"id": product["id"]},
        "media": [
            {"originalSource": "https://erp.example/broken.png", "mediaContentType": "IMAGE"}
        ],
    }
    data(served, _documents.PRODUCT_ADD_MEDIA, added)
    served.double.process_media()
    ready, failed = data(served, _documents.PRODUCT_MEDIA, read)["product"]["media"]["nodes"]
    assert ready["status"] == "READY" and ready["image"]["url"].split("?")[0].endswith("/tee.jpg")
    assert failed["status"] == "FAILED" and failed["mediaErrors"][0]["code"]
    deleted = data(served, _documents.FILE_DELETE, {"ids": [failed["id"]]})["fileDelete"]
    assert deleted == {"deletedFileIds": [failed["id"]], "userErrors": []}
    again = data(served, _documents.FILE_DELETE, {"ids": [failed["id"]]})["fileDelete"]
    assert again["userErrors"][0]["code"] == "FILE_DOES_NOT_EXIST"
