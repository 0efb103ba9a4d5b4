"""The WooCommerce REST wc/v3 contract (tests/support/woocommerce_contract), transcribed from
WooCommerce's documented properties (issue 19): what it lets through and what it refuses.

The connector's contract tests and the WooCommerce double validate every request with
`check`; these tests pin down that the contract itself says what WooCommerce says -- string
prices, the 100-item cap on a batch counted across create + update + delete, per_page at most
100, the webhook headers -- and that a fault is reported at its JSON path.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import jsonschema_rs
import pytest

from tests.support import woocommerce_contract as wc
from tests.support.woocommerce_contract import ContractViolation, check, problems


def simple_product(sku: str = "TEE-1") -> dict[str, Any]:
    return {
        "name": "Plain tee",
        "type": "simple",
        "status": "publish",
        "sku": sku,
        "regular_price": "19.90",
        "sale_price": "",
        "manage_stock": True,
        "stock_quantity": 12,
        "images": [{"src": "https://cdn.example.org/tee.jpg", "alt": "Plain tee"}],
        "meta_data": [{"key": "_stockyard_item", "value": "tee-1"}],
    }


def variable_product() -> dict[str, Any]:
    return {
        "name": "Hoodie",
        "type": "variable",
        "sku": "HOOD",
        "description": "Warm.",
        "categories": [{"id": 9}],
        "images": [{"id": 31}, {"src": "http://cdn.example.org/hood-back.jpg"}],
        "attributes": [
            {"name": "Size", "visible": True, "variation": True, "options": ["S", "M", "L"]},
            {"id": 2, "variation": True, "options": ["Black"]},
        ],
        "default_attributes": [{"name": "Size", "option": "M"}],
    }


def variation(size: str) -> dict[str, Any]:
    return {
        "sku": f"HOOD-{size}",
        "regular_price": "49.00",
        "manage_stock": True,
        "stock_quantity": 4,
        "image": {"src": "https://cdn.example.org/hood.jpg"},
        "attributes": [{"name": "Size", "option": size}, {"id": 2, "option": "Black"}],
    }


def order() -> dict[str, Any]:
    """An order shaped like the ones in the docs' examples (our own values)."""
    address = {
        "first_name": "Ada",
        "last_name": "Lovelace",
        "company": "",
        "address_1": "12 Analytical Row",
        "address_2": "",
        "city": "London",
        "state": "",
        "postcode": "N1 7AA",
        "country": "GB",
    }
    return {
        "id": 5120,
        "parent_id": 0,
        "number": "5120",
        "status": "processing",
        "currency": "EUR",
        "date_created": "2026-11-02T10:15:00",
        "date_created_gmt": "2026-11-02T09:15:00",
        "date_modified": "2026-11-02T10:16:02",
        "date_modified_gmt": "2026-11-02T09:16:02",
        "discount_total": "0.00",
        "shipping_total": "4.90",
        "total": "123.70",
        "total_tax": "19.77",
        "prices_include_tax": True,
        "customer_id": 0,
        "customer_note": "Leave at the door.",
        "billing": {**address, "email": "ada@example.org", "phone": "+44 20 0000 0000"},
        "shipping": address,
        "payment_method": "bacs",
        "line_items": [
            {
                "id": 1,
                "name": "Hoodie - M, Black",
                "product_id": 700,
                "variation_id": 702,
                "quantity": 2,
                "tax_class": "",
                "subtotal": "98.00",
                "subtotal_tax": "15.65",
                "total": "98.00",
                "total_tax": "15.65",
                "taxes": [{"id": 1, "total": "15.65", "subtotal": "15.65"}],
                "meta_data": [{"id": 9, "key": "pa_size", "value": "m"}],
                "sku": "HOOD-M",
                "price": 49,
            },
            {
                "id": 2,
                "name": "Plain tee",
                "product_id": 650,
                "variation_id": 0,
                "quantity": 1,
                "subtotal": "19.90",
                "subtotal_tax": "3.18",
                "total": "19.90",
                "total_tax": "3.18",
                "sku": "TEE-1",
                "price": "19.90",
            },
        ],
        "tax_lines": [
            {
                "id": 3,
                "rate_code": "GB-VAT-1",
                "rate_id": 1,
                "label": "VAT",
                "compound": False,
                "tax_total": "18.83",
                "shipping_tax_total": "0.94",
            }
        ],
        "shipping_lines": [
            {
                "id": 4,
                "method_title": "Flat rate",
                "method_id": "flat_rate",
                "total": "4.90",
                "total_tax": "0.94",
            }
        ],
        "fee_lines": [],
        "coupon_lines": [],
        "refunds": [],
        "meta_data": [],
        "_links": {"self": [{"href": "https://shop.example.org/wp-json/wc/v3/orders/5120"}]},
    }


def signed_delivery(body: bytes, secret: str) -> dict[str, str]:
    """Headers of a WooCommerce webhook delivery of `body`, lower-cased as many HTTP stacks
    hand them over."""
    signature = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest())
    return {
        "content-type": "application/json",
        "x-wc-webhook-source": "https://shop.example.org/",
        "x-wc-webhook-topic": "order.created",
        "x-wc-webhook-resource": "order",
        "x-wc-webhook-event": "created",
        "x-wc-webhook-signature": signature.decode(),
        "x-wc-webhook-id": "14",
        "x-wc-webhook-delivery-id": "9a0c1f3e5b7d4c2a8e6f0b1d3c5a7e9f",
    }


def refused_at(kind: str, payload: Any) -> ContractViolation:
    with pytest.raises(ContractViolation) as caught:
        check(kind, payload)
    return caught.value


# -- The contract files themselves -------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(wc.KINDS))
def test_every_kind_is_a_2020_12_schema_that_names_its_source(kind: str) -> None:
    doc = wc.schema(kind)
    assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema_rs.meta.validate(doc)
    assert "woocommerce" in wc.source(kind).lower()
    assert "Source" in wc.source(kind) or "source" in wc.source(kind)


@pytest.mark.parametrize("kind", sorted(k for k, d in wc.KINDS.items() if d == "send"))
def test_what_we_send_allows_no_field_the_contract_does_not_list(kind: str) -> None:
    doc = wc.schema(kind)
    assert doc.get("additionalProperties") is False or doc.get("unevaluatedProperties") is False


def test_an_unknown_kind_is_a_key_error_naming_the_kinds() -> None:
    with pytest.raises(KeyError, match="batch_variations"):
        check("variations_batch", {})


# -- Products and variations -------------------------------------------------------------


def test_simple_and_variable_products_and_their_variations_conform() -> None:
    check("product_write", simple_product())
    check("product_write", variable_product())
    check("variation_write", variation("M"))
    check("product_write", {"regular_price": "21.00"})  # a price change is one small update


def test_a_misspelt_field_is_refused_at_its_own_path() -> None:
    fault = refused_at("product_write", {**simple_product(), "regular_prise": "19.90"})
    assert fault.path == "$.regular_prise"
    assert "'regular_prise' is not a field WooCommerce documents here" in str(fault)


@pytest.mark.parametrize("field", ["regular_price", "sale_price"])
def test_a_price_sent_as_a_number_is_refused(field: str) -> None:
    fault = refused_at("variation_write", {**variation("S"), field: 49.0})
    assert fault.path == f"$.{field}"
    assert 'is not of type "string"' in str(fault)


def test_a_price_string_must_be_a_plain_decimal_and_empty_clears_it() -> None:
    check("product_write", {"sale_price": ""})
    assert refused_at("product_write", {"regular_price": "19,90"}).path == "$.regular_price"
    assert refused_at("product_write", {"regular_price": "€19.90"}).path == "$.regular_price"


def test_read_only_fields_are_not_sent() -> None:
    for field, value in [("id", 5), ("price", "19.90"), ("variations", [1]), ("permalink", "x")]:
        assert refused_at("product_write", {field: value}).path == f"$.{field}"


def test_a_variation_has_one_image_and_attributes_with_one_option() -> None:
    assert refused_at("variation_write", {"images": [{"id": 1}]}).path == "$.images"
    fault = refused_at("variation_write", {"attributes": [{"name": "Size", "options": ["M"]}]})
    assert fault.path.startswith("$.attributes[0]")


def test_stock_is_manage_stock_with_an_integer_quantity() -> None:
    check("product_write", {"manage_stock": False, "stock_quantity": None})
    assert refused_at("product_write", {"stock_quantity": "4"}).path == "$.stock_quantity"
    assert refused_at("product_write", {"stock_quantity": 4.5}).path == "$.stock_quantity"
    assert refused_at("variation_write", {"manage_stock": "parent"}).path == "$.manage_stock"


def test_images_are_by_attachment_id_or_by_http_url() -> None:
    check("product_write", {"images": [{"id": 3}, {"src": "https://x.example/a.png"}]})
    assert refused_at("product_write", {"images": [{"alt": "no source"}]}).path == "$.images[0]"
    fault = refused_at("product_write", {"images": [{"src": "file:///etc/passwd"}]})
    assert fault.path == "$.images[0].src"


def test_a_product_and_a_variation_as_woocommerce_answer_them_conform() -> None:
    check(
        "product",
        {
            "id": 700,
            "name": "Hoodie",
            "type": "variable",
            "status": "publish",
            "sku": "HOOD",
            "price": "49.00",
            "regular_price": "",
            "sale_price": "",
            "manage_stock": False,
            "stock_quantity": None,
            "images": [{"id": 31, "src": "https://shop.example.org/wp-content/uploads/h.jpg"}],
            "attributes": [{"id": 0, "name": "Size", "variation": True, "options": ["S", "M"]}],
            "variations": [701, 702],
            "date_modified_gmt": "2026-11-02T09:00:00",
            "a_plugin_field": {"anything": True},
        },
    )
    check(
        "variation",
        {
            "id": 702,
            "sku": "HOOD-M",
            "regular_price": "49.00",
            "sale_price": "",
            "manage_stock": "parent",
            "stock_quantity": None,
            "image": None,
            "attributes": [{"id": 0, "name": "Size", "option": "M"}],
        },
    )


# -- Batches -----------------------------------------------------------------------------


def full_variation_batch(extra: int = 0) -> dict[str, Any]:
    return {
        "create": [variation(f"C{i}") for i in range(40)],
        "update": [{"id": 1000 + i, "regular_price": "50.00"} for i in range(40 + extra)],
        "delete": list(range(2000, 2020)),
    }


def test_a_batch_of_exactly_100_across_create_update_delete_conforms() -> None:
    check("batch_variations", full_variation_batch())
    check("batch_products", {"create": [simple_product(f"S{i}") for i in range(100)]})


def test_a_batch_of_101_is_refused_as_woocommerce_would_with_413() -> None:
    batch = full_variation_batch(extra=1)
    assert all(len(batch[k]) <= 100 for k in ("create", "update", "delete"))  # each array fits
    fault = refused_at("batch_variations", batch)
    assert fault.path == "$"
    assert "101 items in create + update + delete" in str(fault)
    assert "413 woocommerce_rest_request_entity_too_large" in str(fault)
    assert len(fault.problems) == 1  # nothing else is wrong with it


def test_101_products_in_one_array_is_refused_too() -> None:
    fault = refused_at("batch_products", {"update": [{"id": i + 1} for i in range(101)]})
    assert fault.path == "$"
    assert any("101 items" in p for p in fault.problems)


def test_batch_items_are_checked_like_single_requests() -> None:
    fault = refused_at("batch_products", {"update": [{"id": 7}, {"id": 8, "stock_quantty": 1}]})
    assert fault.path == "$.update[1].stock_quantty"
    assert refused_at("batch_products", {"update": [{"sku": "no id"}]}).path == "$.update[0]"
    assert refused_at("batch_variations", {"create": [{"id": 4}]}).path == "$.create[0].id"
    assert refused_at("batch_variations", {"delete": ["HOOD-M"]}).path == "$.delete[0]"
    assert refused_at("batch_products", {"upsert": []}).path == "$.upsert"
    assert refused_at("batch_products", {}).path == "$"


def test_a_batch_answer_with_a_per_item_error_conforms() -> None:
    check(
        "batch_response",
        {
            "create": [
                {
                    "id": 0,
                    "error": {
                        "code": "product_invalid_sku",
                        "message": "Invalid or duplicated SKU.",
                        "data": {"status": 400},
                    },
                },
                {"id": 703, "sku": "HOOD-L"},
            ],
            "delete": [{"id": 2000}],
        },
    )
    fault = refused_at("batch_response", {"update": [{"id": 7, "error": {"message": "no code"}}]})
    assert fault.path == "$.update[0].error"


def test_the_413_error_body_conforms() -> None:
    check(
        "error",
        {
            "code": wc.BATCH_TOO_LARGE_CODE,
            "message": f"Unable to accept more than {wc.BATCH_LIMIT} items for this request.",
            "data": {"status": wc.BATCH_TOO_LARGE_STATUS},
        },
    )


# -- Orders ------------------------------------------------------------------------------


def test_an_order_as_read_or_delivered_by_webhook_conforms() -> None:
    check("order", order())


def test_a_line_price_may_be_a_number_or_a_string_as_the_docs_show_both() -> None:
    lines = order()["line_items"]
    assert isinstance(lines[0]["price"], int) and isinstance(lines[1]["price"], str)
    check("order", order())


def test_an_extension_status_is_read_but_never_written() -> None:
    check("order", {**order(), "status": "shipped"})
    check("order_update", {"status": "completed"})
    assert refused_at("order_update", {"status": "shipped"}).path == "$.status"
    assert refused_at("order_update", {"status": "completed", "note": "x"}).path == "$.note"


def test_an_order_read_with_a_broken_line_is_refused_at_the_line() -> None:
    broken = order()
    broken["line_items"][1]["quantity"] = "1"
    assert refused_at("order", broken).path == "$.line_items[1].quantity"
    broken = order()
    del broken["line_items"][0]["sku"]
    assert refused_at("order", broken).path == "$.line_items[0]"
    broken = order()
    broken["total"] = 123.7
    assert refused_at("order", broken).path == "$.total"


def test_the_tracking_note_is_customer_visible_and_needs_text() -> None:
    check(
        "order_note_write",
        {"note": "Shipped with DHL: 00340434161234567890", "customer_note": True},
    )
    assert refused_at("order_note_write", {"customer_note": True}).path == "$"
    assert (
        refused_at("order_note_write", {"note": "x", "customer_note": "yes"}).path
        == "$.customer_note"
    )
    assert (
        refused_at("order_note_write", {"note": "x", "is_customer_note": True}).path
        == "$.is_customer_note"
    )


def test_shipment_tracking_extension_takes_a_known_or_a_custom_provider_not_both() -> None:
    check(
        "shipment_tracking_write",
        {"tracking_number": "1Z999", "tracking_provider": "UPS", "date_shipped": "2026-11-03"},
    )
    check(
        "shipment_tracking_write",
        {
            "tracking_number": "77",
            "custom_tracking_provider": "Local courier",
            "custom_tracking_link": "https://track.example/77",
        },
    )
    assert refused_at("shipment_tracking_write", {"tracking_number": "1"}).path == "$"
    both = {
        "tracking_number": "1",
        "tracking_provider": "UPS",
        "custom_tracking_provider": "X",
        "custom_tracking_link": "https://t.example/1",
    }
    assert refused_at("shipment_tracking_write", both).path == "$"


# -- Polling and paging ------------------------------------------------------------------


def test_the_order_poll_query_conforms() -> None:
    check(
        "order_list_query",
        {
            "modified_after": "2026-11-02T09:00:00",
            "dates_are_gmt": "true",
            "per_page": "100",
            "page": "3",
            "orderby": "modified",
            "order": "asc",
        },
    )
    check(
        "order_list_query",
        {"modified_after": "2026-11-02T09:00:00.5+00:00", "status": "processing,on-hold"},
    )
    check("product_list_query", {"sku": "HOOD-M"})
    check("variation_list_query", {"per_page": "100", "sku": "HOOD-M"})


def test_per_page_above_100_and_a_misspelt_parameter_are_refused() -> None:
    assert refused_at("order_list_query", {"per_page": "101"}).path == "$.per_page"
    assert refused_at("order_list_query", {"per_page": "0"}).path == "$.per_page"
    assert (
        refused_at("order_list_query", {"modified_since": "2026-11-02T09:00:00"}).path
        == "$.modified_since"
    )
    assert (
        refused_at("order_list_query", {"modified_after": "yesterday"}).path == "$.modified_after"
    )
    assert refused_at("order_list_query", {"dates_are_gmt": "yes"}).path == "$.dates_are_gmt"
    # Query values go on the wire as strings: an int means the connector skipped encoding.
    assert refused_at("product_list_query", {"per_page": 50}).path == "$.per_page"


def test_paging_headers_are_matched_whatever_their_case() -> None:
    check(
        "paging_headers",
        {
            "x-wp-total": "250",
            "X-WP-TotalPages": "3",
            "Link": '<https://s.example/wp-json/wc/v3/orders?page=2>; rel="next"',
        },
    )
    fault = refused_at("paging_headers", {"X-WP-Total": "250"})
    assert fault.path == "$" and "X-WP-TotalPages" in str(fault)
    assert (
        refused_at("paging_headers", {"X-WP-Total": "many", "X-WP-TotalPages": "1"}).path
        == '$["X-WP-Total"]'
    )


# -- Webhook deliveries ------------------------------------------------------------------


def test_a_signed_webhook_delivery_carries_every_documented_header() -> None:
    body = json.dumps(order(), separators=(",", ":")).encode()
    check("webhook_headers", signed_delivery(body, "s3cret"))


def test_a_delivery_missing_a_header_or_with_a_hex_signature_is_refused() -> None:
    headers = signed_delivery(b"{}", "s3cret")
    del headers["x-wc-webhook-delivery-id"]
    fault = refused_at("webhook_headers", headers)
    assert fault.path == "$" and "X-WC-Webhook-Delivery-ID" in str(fault)
    hexed = signed_delivery(b"{}", "s3cret")
    hexed["x-wc-webhook-signature"] = hmac.new(b"s3cret", b"{}", hashlib.sha256).hexdigest()
    assert refused_at("webhook_headers", hexed).path == '$["X-WC-Webhook-Signature"]'


def test_problems_lists_every_fault_and_check_reports_the_first() -> None:
    payload = {"regular_price": 10, "sale_price": 5, "stok": 1}
    found = problems("product_write", payload)
    assert len(found) == 3
    fault = refused_at("product_write", payload)
    assert fault.problems == found and "(+2 more)" in str(fault)
    assert wc.conforms("product_write", simple_product())
