"""The requests the Magento connector will send, checked against Adobe's own OpenAPI document
of the admin REST API, "Commerce Admin REST endpoints - All inclusive" for 2.4.7 (issue 19
groundwork): paths, methods, path and query parameters and body shapes are Adobe's, and a
wrong request is refused with a message that names the field.

The connector does not exist yet: these are the shapes it is to send (docs/magento-notes.md
lists them with the document's schema names), so the session that writes it can point its
own builders at the same checks. The document comes from
scripts/install-magento-openapi.sh (`make magento-openapi`, run by `make test`); without it
these tests are skipped.
"""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from tests.support import magento_contract as contract
from tests.support.magento_contract import ContractGap, ContractViolation

pytestmark = pytest.mark.skipif(not contract.installed(), reason=contract.skip_reason())

SHOP = "https://shop.example"


def refused(method: str, path: str, query: Any = None, body: Any = None) -> str:
    """The message check_request refuses the request with (fails if it is allowed)."""
    with pytest.raises(ContractViolation) as caught:
        contract.check_request(method, path, query, body)
    return str(caught.value)


# --- The document -----------------------------------------------------------------------


def test_the_pinned_document_loads_once_per_process() -> None:
    loaded = contract.load()
    assert contract.load() is loaded
    info = loaded.document["info"]
    assert info["version"] == contract.MAGENTO_VERSION == "2.4.7"
    assert info["title"] == "Commerce Admin REST endpoints - All inclusive"
    assert loaded.document["openapi"] == "3.0.0"
    # The issue expected about 15 s; openapi-core 0.23 takes about 1 s here. The bound
    # only catches a loader gone pathological, not a slow machine.
    assert loaded.load_seconds < 60


def test_every_object_schema_with_properties_is_closed() -> None:
    schemas = contract.load().document["components"]["schemas"]
    open_ones = [
        name
        for name, s in schemas.items()
        if "properties" in s and s.get("additionalProperties") is not False
    ]
    assert open_ones == []


# --- Products ---------------------------------------------------------------------------

SIMPLE: dict[str, Any] = {
    "product": {
        "sku": "TEE-CLASSIC",
        "name": "Classic tee",
        "attribute_set_id": 4,
        "price": 19.9,
        "status": 1,
        "visibility": 4,
        "type_id": "simple",
        "weight": 0.18,
        "extension_attributes": {
            "website_ids": [1],
            "category_links": [{"category_id": "3", "position": 0}],
            "stock_item": {"qty": 12, "is_in_stock": True},
        },
        "custom_attributes": [
            {"attribute_code": "description", "value": "<p>Cotton.</p>"},
            {"attribute_code": "url_key", "value": "tee-classic"},
        ],
    },
    "saveOptions": True,
}


def test_a_simple_product_is_created_with_stock_and_website() -> None:
    assert contract.check_request("POST", "/V1/products", None, SIMPLE) == "/V1/products"
    # The same through a store view's route and through the admin scope.
    contract.check_request("POST", "/rest/default/V1/products", None, SIMPLE)
    contract.check_request("PUT", "/rest/all/V1/products/TEE-CLASSIC", None, SIMPLE)


def _child(size: str, value_index: int) -> dict[str, Any]:
    return {
        "product": {
            "sku": f"TEE-{size}",
            "name": f"Classic tee {size}",
            "attribute_set_id": 4,
            "price": 19.9,
            "status": 1,
            "visibility": 1,  # not visible on its own: sold through the parent
            "type_id": "simple",
            "custom_attributes": [{"attribute_code": "size", "value": str(value_index)}],
        }
    }


def test_a_configurable_product_with_its_option_and_children() -> None:
    for size, index in (("S", 167), ("M", 168)):
        contract.check_request("POST", "/V1/products", None, _child(size, index))
    parent = {
        "product": {
            "sku": "TEE",
            "name": "Classic tee",
            "attribute_set_id": 4,
            "status": 1,
            "visibility": 4,
            "type_id": "configurable",
            "extension_attributes": {
                "website_ids": [1],
                "configurable_product_options": [
                    {
                        "attribute_id": "141",
                        "label": "Size",
                        "position": 0,
                        "values": [{"value_index": 167}, {"value_index": 168}],
                    }
                ],
                "configurable_product_links": [201, 202],
            },
        }
    }
    contract.check_request("POST", "/V1/products", None, parent)
    # Or the option and the links one by one, after the parent exists.
    option = {"option": {"attribute_id": "141", "label": "Size", "values": [{"value_index": 167}]}}
    assert (
        contract.check_request("POST", "/V1/configurable-products/TEE/options", None, option)
        == "/V1/configurable-products/{sku}/options"
    )
    assert (
        contract.check_request(
            "POST", "/V1/configurable-products/TEE/child", None, {"childSku": "TEE-S"}
        )
        == "/V1/configurable-products/{sku}/child"
    )


def test_a_product_is_deleted_by_sku() -> None:
    assert contract.check_request("DELETE", "/V1/products/TEE-S") == "/V1/products/{sku}"
    contract.check_response("DELETE", "/V1/products/TEE-S", 200, True)


def test_prices_go_in_one_call_for_many_skus() -> None:
    prices = {
        "prices": [
            {"sku": "TEE-S", "price": 17.5, "store_id": 0},
            {"sku": "TEE-M", "price": 18.5, "store_id": 0},
        ]
    }
    contract.check_request("POST", "/V1/products/base-prices", None, prices)
    # An empty list of failures is Magento's "all done".
    contract.check_response("POST", "/V1/products/base-prices", 200, [])
    tiers = {
        "prices": [
            {
                "sku": "TEE-S",
                "price": 15.0,
                "price_type": "fixed",
                "website_id": 0,
                "customer_group": "ALL GROUPS",
                "quantity": 10,
            }
        ]
    }
    contract.check_request("POST", "/V1/products/tier-prices", None, tiers)


def test_stock_through_msi_source_items_and_the_legacy_stock_item() -> None:
    items = {
        "sourceItems": [
            {"sku": "TEE-S", "source_code": "default", "quantity": 12, "status": 1},
            {"sku": "TEE-M", "source_code": "warehouse_b", "quantity": 0, "status": 0},
        ]
    }
    contract.check_request("POST", "/V1/inventory/source-items", None, items)
    # The document gives this operation no success answer at all: a gap, said as such.
    with pytest.raises(ContractGap, match="no success answer"):
        contract.check_response("POST", "/V1/inventory/source-items", 200, [])
    legacy = {"stockItem": {"qty": 12, "is_in_stock": True}}
    assert (
        contract.check_request("PUT", "/V1/products/TEE-S/stockItems/1", None, legacy)
        == "/V1/products/{productSku}/stockItems/{itemId}"
    )


def test_an_image_is_sent_as_base64_content() -> None:
    entry = {
        "entry": {
            "media_type": "image",
            "label": "Classic tee",
            "position": 0,
            "disabled": False,
            "types": ["image", "small_image", "thumbnail"],
            "content": {
                "base64_encoded_data": base64.b64encode(b"\x89PNG...").decode(),
                "type": "image/png",
                "name": "tee.png",
            },
        }
    }
    contract.check_request("POST", "/V1/products/TEE/media", None, entry)
    contract.check_response("POST", "/V1/products/TEE/media", 200, 57)
    # There is no URL field: Magento does not fetch images itself.
    by_url = {"entry": {**entry["entry"], "content": None, "url": "https://erp/tee.png"}}
    del by_url["entry"]["content"]
    assert "('url' was unexpected)" in refused("POST", "/V1/products/TEE/media", body=by_url)


# --- Orders -----------------------------------------------------------------------------

SINCE = {
    # updated_at >= since AND updated_at <= until: two filter groups are ANDed, filters in
    # one group ORed.
    "searchCriteria[filterGroups][0][filters][0][field]": "updated_at",
    "searchCriteria[filterGroups][0][filters][0][value]": "2026-11-29 13:55:00",
    "searchCriteria[filterGroups][0][filters][0][conditionType]": "gteq",
    "searchCriteria[filterGroups][1][filters][0][field]": "updated_at",
    "searchCriteria[filterGroups][1][filters][0][value]": "2026-11-29 14:05:00",
    "searchCriteria[filterGroups][1][filters][0][conditionType]": "lteq",
    "searchCriteria[sortOrders][0][field]": "updated_at",
    "searchCriteria[sortOrders][0][direction]": "ASC",
    "searchCriteria[pageSize]": 100,
    "searchCriteria[currentPage]": 2,
}


def test_the_order_poll_validates_as_encoded_on_the_wire() -> None:
    url = httpx.URL(f"{SHOP}/rest/default/V1/orders", params=SINCE)
    raw = url.query.decode()
    # httpx percent-encodes the brackets; Magento (PHP) decodes them back into arrays.
    assert "searchCriteria%5BfilterGroups%5D%5B1%5D%5Bfilters%5D%5B0%5D%5Bfield%5D" in raw
    assert "2026-11-29+13%3A55%3A00" in raw or "2026-11-29%2013%3A55%3A00" in raw
    assert contract.check_url("GET", str(url)) == "/V1/orders"


def test_the_second_filter_group_is_checked_like_the_first() -> None:
    # The document declares index 0 only; index 1 is held to the same parameter.
    wrong = dict(SINCE)
    del wrong["searchCriteria[currentPage]"]
    contract.check_request("GET", "/V1/orders", wrong)
    misspelt = {**SINCE, "searchCriteria[filterGroups][1][filter][0][field]": "status"}
    message = refused("GET", "/V1/orders", misspelt)
    assert "'searchCriteria[filterGroups][1][filter][0][field]' is not in the document" in message


def test_search_criteria_sent_any_other_way_is_refused() -> None:
    as_json = refused("GET", "/V1/orders", {"searchCriteria": '{"pageSize": 100}'})
    assert "bracketed query parameters, not JSON" in as_json
    snake = refused("GET", "/V1/orders", {"searchCriteria[page_size]": 100})
    assert "'searchCriteria[page_size]' is not in the document" in snake
    not_a_number = refused("GET", "/V1/orders", {"searchCriteria[pageSize]": "all"})
    assert "searchCriteria[pageSize]" in not_a_number
    assert "integer" in not_a_number
    twice = [("searchCriteria[pageSize]", 100), ("searchCriteria[pageSize]", 50)]
    assert "given twice" in refused("GET", "/V1/orders", twice)


def _order(**extra: Any) -> dict[str, Any]:
    return {
        "entity_id": 7,
        "increment_id": "000000007",
        "state": "processing",
        "status": "processing",
        "updated_at": "2026-11-29 14:00:00",
        "customer_email": "ada@example.com",
        "base_grand_total": 44.8,
        "grand_total": 44.8,
        "items": [{"item_id": 70, "sku": "TEE-S", "qty_ordered": 2, "price": 17.5}],
        **extra,
    }


def test_the_order_page_answer_is_checked_too() -> None:
    page = {
        "items": [_order()],
        "search_criteria": {"filter_groups": [], "page_size": 100, "current_page": 2},
        "total_count": 101,
    }
    contract.check_response("GET", "/V1/orders", 200, page, SINCE)
    # The generated document marks nothing nullable: a double answering null is refused,
    # so it leaves absent fields out.
    with pytest.raises(ContractViolation, match="None is not of type 'string'"):
        contract.check_response(
            "GET", "/V1/orders", 200, {**page, "items": [_order(customer_firstname=None)]}
        )


def test_the_shipment_goes_back_with_its_tracks() -> None:
    ship = {
        "items": [{"order_item_id": 70, "qty": 2}],
        "notify": True,
        "tracks": [{"track_number": "1Z999AA10123456784", "title": "UPS", "carrier_code": "ups"}],
        "comment": {"comment": "Shipped from warehouse B", "is_visible_on_front": 1},
    }
    path = "/rest/default/V1/order/7/ship"
    assert contract.check_request("POST", path, None, ship) == "/V1/order/{orderId}/ship"
    contract.check_response("POST", path, 200, 31)
    # The order's id, not its increment id.
    assert "orderId" in refused("POST", "/V1/order/000000007-A/ship", body=ship)
    no_carrier = {"tracks": [{"track_number": "1Z", "title": "UPS"}]}
    message = refused("POST", path, body=no_carrier)
    assert "at $.tracks[0]: 'carrier_code' is a required property" in message


# --- Bulk -------------------------------------------------------------------------------


def test_bulk_product_saves_are_a_list_of_the_synchronous_bodies() -> None:
    body = [SIMPLE, _child("S", 167), _child("M", 168)]
    assert contract.check_request("POST", "/async/bulk/V1/products", None, body) == "/V1/products"
    contract.check_request("POST", "/rest/all/async/bulk/V1/products", None, body)
    # Route parameters are spelled by<Name> and given in each element.
    links = [{"sku": "TEE", "childSku": "TEE-S"}, {"sku": "TEE", "childSku": "TEE-M"}]
    contract.check_request("POST", "/async/bulk/V1/configurable-products/bySku/child", None, links)
    assert "route parameter 'sku' missing" in refused(
        "POST", "/async/bulk/V1/configurable-products/bySku/child", body=[{"childSku": "TEE-S"}]
    )
    assert "body[2]" in refused(
        "POST", "/async/bulk/V1/products", body=[SIMPLE, SIMPLE, {"product": {"name": "no sku"}}]
    )
    assert "non-empty JSON array" in refused("POST", "/async/bulk/V1/products", body=SIMPLE)
    # Its answer (bulk_uuid, request_items, errors) is not in the document.
    with pytest.raises(ContractGap):
        contract.check_response("POST", "/async/bulk/V1/products", 202, {})


def test_the_bulk_status_poll_and_its_answer() -> None:
    uuid = "799a59c0-09ca-4d60-b432-2953986c1c38"
    assert contract.check_request("GET", f"/V1/bulk/{uuid}/status") == "/V1/bulk/{bulkUuid}/status"
    open_ops = {
        "operations_list": [
            {"id": 1, "status": 4, "result_message": "", "error_code": 0},
            {"id": 2, "status": 1, "result_message": "Service execution success", "error_code": 0},
        ],
        "user_type": 1,
        "bulk_id": uuid,
        "description": "Topic async.magento.catalog.api.productrepositoryinterface.save.post",
        "start_time": "2026-11-29 14:06:00",
        "user_id": 3,
        "operation_count": 2,
    }
    contract.check_response("GET", f"/V1/bulk/{uuid}/status", 200, open_ops)
    missing = {k: v for k, v in open_ops.items() if k != "operation_count"}
    with pytest.raises(ContractViolation, match="'operation_count' is a required property"):
        contract.check_response("GET", f"/V1/bulk/{uuid}/status", 200, missing)
    assert "no GET" in refused("GET", f"/async/V1/bulk/{uuid}/status")


# --- Wrong requests ---------------------------------------------------------------------


def test_a_misspelled_field_is_refused_with_its_name() -> None:
    wrong = {"product": {**SIMPLE["product"], "prise": 19.9}}
    message = refused("POST", "/V1/products", body=wrong)
    assert message == (
        "POST /V1/products: request body: at $.product: Additional properties are not"
        " allowed ('prise' was unexpected)"
    )
    nested = {"sourceItems": [{"sku": "TEE-S", "sourceCode": "default", "quantity": 1}]}
    assert "('sourceCode' was unexpected)" in refused(
        "POST", "/V1/inventory/source-items", body=nested
    )


def test_a_wrong_type_is_refused_where_it_is() -> None:
    # WooCommerce wants prices as strings; Magento's document says number.
    wrong = {"prices": [{"sku": "TEE-S", "price": "17.50", "store_id": 0}]}
    message = refused("POST", "/V1/products/base-prices", body=wrong)
    assert "at $.prices[0].price: '17.50' is not of type 'number'" in message
    stock = {"product": {"sku": "A", "extension_attributes": {"stock_item": {"qty": "12"}}}}
    assert "at $.product.extension_attributes.stock_item.qty" in refused(
        "POST", "/V1/products", body=stock
    )
    # A custom attribute's value is a string in the document: category ids go through
    # extension_attributes.category_links instead.
    categories = {
        "product": {"sku": "A", "custom_attributes": [{"attribute_code": "x", "value": [3]}]}
    }
    assert "[3] is not of type 'string'" in refused("POST", "/V1/products", body=categories)


def test_missing_required_parts_are_refused() -> None:
    assert "'sku' is a required property" in refused(
        "POST", "/V1/products", body={"product": {"name": "no sku"}}
    )
    assert "'childSku' is a required property" in refused(
        "POST", "/V1/configurable-products/TEE/child", body={"child_sku": "TEE-S"}
    )


def test_routes_outside_the_document_are_refused() -> None:
    assert "no such operation" in refused("POST", "/V1/product", body=SIMPLE)
    assert "no such operation" in refused("PATCH", "/V1/products/TEE", body=SIMPLE)
    assert "store code" in refused("GET", "/rest/Default-FR/V1/orders")
    assert "not a Magento REST route" in refused("GET", "/rest/default/V2/orders")
