"""The documents the Shopify connector will send, checked against Shopify's own Admin schema
(issue 18): field names, arguments, enums, input objects and directives are Shopify's, and
a wrong document is refused with Shopify's own hint. With variables, the input shapes are
checked too (graphql-core coerces them to the operation's variable types).

The documents are the connector's own (stockyard.connectors.shopify.documents): every one
of them is validated here, most with realistic variables. The schema comes from
scripts/install-shopify-schema.sh (`make shopify-schema`, run by `make test`); without it
these tests are skipped.
"""

from __future__ import annotations

from typing import Any

import pytest

from stockyard.connectors.shopify import documents
from stockyard.connectors.shopify.documents import (
    BULK_OPERATION,
    BULK_PRODUCT_SET,
    BULK_RUN_MUTATION,
    FULFILLMENT_CREATE,
    FULFILLMENT_ORDERS,
    INVENTORY_LEVELS,
    INVENTORY_SET,
    ORDER_FULFILLMENT_ORDERS,
    ORDERS_UPDATED_SINCE,
    PRODUCT_CREATE,
    PRODUCT_DELETE,
    PRODUCT_SET,
    PRODUCTS_BY_SKU,
    STAGED_UPLOADS_CREATE,
    VARIANTS_BULK_CREATE,
    VARIANTS_BULK_UPDATE,
)
from tests.support import shopify_schema as schema

pytestmark = schema.needs_schema

PRODUCT = "gid://shopify/Product/1"
VARIANT = "gid://shopify/ProductVariant/11"
ITEM = "gid://shopify/InventoryItem/21"
LOCATION = "gid://shopify/Location/31"
FULFILLMENT_ORDER = "gid://shopify/FulfillmentOrder/41"
FULFILLMENT_ORDER_LINE = "gid://shopify/FulfillmentOrderLineItem/51"

# --- Products -------------------------------------------------------------------------

PRODUCT_SET_VARIABLES: dict[str, Any] = {
    "identifier": {"handle": "tee-classic"},
    "input": {
        "title": "Classic tee",
        "handle": "tee-classic",
        "status": "ACTIVE",
        "productOptions": [{"name": "Size", "values": [{"name": "S"}, {"name": "M"}]}],
        "files": [
            {
                "originalSource": "https://erp.example/images/tee.jpg",
                "contentType": "IMAGE",
                "alt": "Classic tee",
            }
        ],
        "variants": [
            {
                "optionValues": [{"optionName": "Size", "name": size}],
                "sku": f"TEE-{size}",
                "price": "19.90",
                "compareAtPrice": "24.90",
                "barcode": f"400000000000{n}",
                "inventoryPolicy": "DENY",
                "inventoryItem": {
                    "sku": f"TEE-{size}",
                    "tracked": True,
                    "measurement": {"weight": {"unit": "GRAMS", "value": 180.0}},
                },
                "inventoryQuantities": [
                    {"locationId": LOCATION, "name": "available", "quantity": 5}
                ],
            }
            for n, size in enumerate(("S", "M"))
        ],
    },
}

PRODUCT_CREATE_VARIABLES: dict[str, Any] = {
    "product": {
        "title": "Classic tee",
        "handle": "tee-classic",
        "productOptions": [{"name": "Size", "values": [{"name": "S"}, {"name": "M"}]}],
    },
    "media": [
        {"originalSource": "https://erp.example/images/tee.jpg", "mediaContentType": "IMAGE"}
    ],
}

VARIANTS_BULK_CREATE_VARIABLES: dict[str, Any] = {
    "productId": PRODUCT,
    "variants": [
        {
            "optionValues": [{"optionName": "Size", "name": "S"}],
            "price": "19.90",
            "barcode": "4000000000001",
            "inventoryItem": {"sku": "TEE-S", "tracked": True},
            "inventoryQuantities": [{"locationId": LOCATION, "availableQuantity": 5}],
        }
    ],
}

VARIANTS_BULK_UPDATE_VARIABLES: dict[str, Any] = {
    "productId": PRODUCT,
    "variants": [{"id": VARIANT, "price": "17.90", "compareAtPrice": None}],
}

# --- Stock ----------------------------------------------------------------------------

INVENTORY_SET_VARIABLES: dict[str, Any] = {
    "key": "stockyard-item-7f3c",
    "input": {
        "name": "available",
        "reason": "correction",
        "referenceDocumentUri": "gid://stockyard/Item/7f3c",
        "quantities": [
            {
                "inventoryItemId": ITEM,
                "locationId": LOCATION,
                "quantity": 12,
                "changeFromQuantity": 9,
            }
        ],
    },
}

# --- Orders in ------------------------------------------------------------------------

# --- Fulfillments out -----------------------------------------------------------------

FULFILLMENT_CREATE_VARIABLES: dict[str, Any] = {
    "fulfillment": {
        "notifyCustomer": True,
        "trackingInfo": {
            "company": "DHL Express",
            "number": "JD014600006281230704",
            "url": "https://www.dhl.com/track?id=JD014600006281230704",
        },
        "lineItemsByFulfillmentOrder": [
            {
                "fulfillmentOrderId": FULFILLMENT_ORDER,
                # Partial: only these lines and quantities (none: the whole order).
                "fulfillmentOrderLineItems": [{"id": FULFILLMENT_ORDER_LINE, "quantity": 1}],
            }
        ],
    }
}

# --- Bulk -----------------------------------------------------------------------------

STAGED_UPLOADS_CREATE_VARIABLES: dict[str, Any] = {
    "input": [
        {
            "resource": "BULK_MUTATION_VARIABLES",
            "filename": "products.jsonl",
            "mimeType": "text/jsonl",
            "httpMethod": "POST",
        }
    ]
}

VALID: dict[str, tuple[str, dict[str, Any] | None]] = {
    "productSet": (PRODUCT_SET, PRODUCT_SET_VARIABLES),
    "productCreate": (PRODUCT_CREATE, PRODUCT_CREATE_VARIABLES),
    "productVariantsBulkCreate": (VARIANTS_BULK_CREATE, VARIANTS_BULK_CREATE_VARIABLES),
    "productVariantsBulkUpdate": (VARIANTS_BULK_UPDATE, VARIANTS_BULK_UPDATE_VARIABLES),
    "productVariants by sku": (PRODUCTS_BY_SKU, {"query": "sku:'TEE-S' OR sku:'TEE-M'"}),
    "productDelete": (PRODUCT_DELETE, {"input": {"id": PRODUCT}}),
    "inventorySetQuantities": (INVENTORY_SET, INVENTORY_SET_VARIABLES),
    "inventory levels": (INVENTORY_LEVELS, {"ids": [ITEM]}),
    "orders": (
        ORDERS_UPDATED_SINCE,
        {"query": "updated_at:>'2026-11-29T10:00:00Z'", "after": None},
    ),
    "order.fulfillmentOrders": (ORDER_FULFILLMENT_ORDERS, {"id": "gid://shopify/Order/61"}),
    "fulfillmentOrders": (FULFILLMENT_ORDERS, {"query": "status:open", "after": "abc"}),
    "fulfillmentCreate": (FULFILLMENT_CREATE, FULFILLMENT_CREATE_VARIABLES),
    "stagedUploadsCreate": (STAGED_UPLOADS_CREATE, STAGED_UPLOADS_CREATE_VARIABLES),
    "bulk productSet": (BULK_PRODUCT_SET, PRODUCT_SET_VARIABLES),
    "bulkOperationRunMutation": (
        BULK_RUN_MUTATION,
        {"mutation": BULK_PRODUCT_SET, "path": "tmp/21/bulk/products.jsonl", "client": "sy"},
    ),
    "bulkOperation": (BULK_OPERATION, {"id": "gid://shopify/BulkOperation/71"}),
}


@pytest.mark.parametrize("name", VALID)
def test_the_connectors_documents_are_valid(name: str) -> None:
    document, variables = VALID[name]
    assert schema.validate(document, variables) == []


@pytest.mark.parametrize("name", sorted(documents.all_documents()))
def test_every_document_of_the_connector_is_valid(name: str) -> None:
    """Each document the connector's module holds, without variables (the ones above are
    checked with variables too): a new document is checked the day it is written."""
    assert schema.validate(documents.all_documents()[name]) == []


def test_the_module_holds_the_documents_checked_with_variables() -> None:
    held = set(documents.all_documents().values())
    assert all(document in held for document, _ in VALID.values())


# (what is wrong, the document, its variables, a part of Shopify's answer)
WRONG: list[tuple[str, str, dict[str, Any] | None, str]] = [
    (
        "no per-variant update mutation",
        """mutation { productVariantUpdate(input: {id: "gid://shopify/ProductVariant/1",
        price: "1.00"}) { productVariant { id } } }""",
        None,
        "Did you mean 'productOptionUpdate', 'productVariantsBulkUpdate'",
    ),
    (
        "productCreate takes no variants",
        PRODUCT_CREATE,
        {"product": {"title": "T", "variants": [{"price": "1.00"}]}},
        "not to include unknown field 'variants'",
    ),
    (
        "compareQuantity is gone from 2026-04",
        INVENTORY_SET,
        {
            "key": "k",
            "input": {
                "name": "available",
                "reason": "correction",
                "quantities": [
                    {
                        "inventoryItemId": ITEM,
                        "locationId": LOCATION,
                        "quantity": 1,
                        "compareQuantity": 0,
                    }
                ],
            },
        },
        "unknown field 'compareQuantity'",
    ),
    (
        "inventorySetQuantities needs a reason",
        INVENTORY_SET,
        {"key": "k", "input": {"name": "available", "quantities": []}},
        "to include required field 'reason'",
    ),
    (
        "the orders' sort key is UPDATED_AT",
        "{ orders(first: 1, sortKey: UPDATED) { nodes { id } } }",
        None,
        "Did you mean the enum value 'UPDATED_AT'",
    ),
    (
        "variant updates are per product",
        "mutation($v: [ProductVariantsBulkInput!]!) { productVariantsBulkUpdate(variants: $v)"
        " { userErrors { message } } }",
        None,
        "Argument 'Mutation.productVariantsBulkUpdate(productId:)' of type 'ID!' is required",
    ),
    (
        "tracking info is one input object",
        "mutation($f: FulfillmentInput!) { fulfillmentCreate(fulfillment: $f) { fulfillment"
        " { trackingNumber } } }",
        None,
        "Cannot query field 'trackingNumber' on type 'Fulfillment'",
    ),
]


@pytest.mark.parametrize(
    ("what", "document", "variables", "hint"), WRONG, ids=[w[0] for w in WRONG]
)
def test_a_wrong_document_is_refused_with_shopifys_hint(
    what: str, document: str, variables: dict[str, Any] | None, hint: str
) -> None:
    errors = schema.validate(document, variables)
    assert any(hint in e for e in errors), errors


def test_the_idempotent_directive_comes_with_2026_01() -> None:
    """The pinned version must know @idempotent; 2025-10 refuses it, so the pin matters."""
    assert schema.validate(INVENTORY_SET, INVENTORY_SET_VARIABLES) == []
    if "2025-10" in schema.available_versions():
        errors = schema.validate(INVENTORY_SET, version="2025-10")
        assert any("Unknown directive '@idempotent'" in e for e in errors), errors


def test_a_syntax_error_is_an_error_not_an_exception() -> None:
    assert schema.validate("{ shop { name } ") == ["Syntax Error: Expected Name, found <EOF>."]


def test_the_schema_is_built_once_per_process() -> None:
    assert schema.load() is schema.load(schema.API_VERSION)


def test_a_missing_version_says_how_to_install() -> None:
    with pytest.raises(schema.SchemaMissing, match=r"install-shopify-schema\.sh"):
        schema.load("1999-01")


# --- Role B: fulfillments out, variants, images, locations (with variables) -------------

WEIGHTED_VARIANTS: dict[str, Any] = {
    "productId": PRODUCT,
    "variants": [
        {
            "id": VARIANT,
            "price": "19.90",
            "compareAtPrice": "24.90",
            "barcode": "4000000000001",
            "inventoryItem": {
                "sku": "TEE-S",
                "tracked": True,
                "measurement": {"weight": {"unit": "KILOGRAMS", "value": 0.18}},
            },
        }
    ],
}

MORE_VALID: dict[str, tuple[str, dict[str, Any] | None]] = {
    "variant update with weight": (documents.VARIANTS_BULK_UPDATE, WEIGHTED_VARIANTS),
    "productVariantsBulkDelete": (
        documents.VARIANTS_BULK_DELETE,
        {"productId": PRODUCT, "ids": [VARIANT]},
    ),
    "productVariant": (documents.VARIANT_EXISTS, {"id": VARIANT}),
    "productByIdentifier(handle)": (documents.PRODUCT_BY_HANDLE, {"handle": "tee"}),
    "product media": (documents.PRODUCT_MEDIA, {"id": PRODUCT}),
    "productUpdate(media:)": (
        documents.PRODUCT_ADD_MEDIA,
        {
            "product": {"id": PRODUCT},
            "media": [
                {
                    "originalSource": "https://erp.example/images/tee.jpg",
                    "mediaContentType": "IMAGE",
                    "alt": "Classic tee",
                }
            ],
        },
    ),
    "fileDelete": (documents.FILE_DELETE, {"ids": ["gid://shopify/MediaImage/81"]}),
    "inventory level at a location": (
        documents.INVENTORY_LEVEL_AT,
        {"item": ITEM, "location": LOCATION},
    ),
    "inventoryActivate": (
        documents.INVENTORY_ACTIVATE,
        {"item": ITEM, "location": LOCATION, "available": 4, "key": "stockyard-activate"},
    ),
    "order fulfillment orders, paged": (
        documents.ORDER_FULFILLMENT_ORDERS_PAGE,
        {"id": "gid://shopify/Order/61", "after": None},
    ),
    "fulfillment order lines": (
        documents.FULFILLMENT_ORDER_LINES,
        {"id": FULFILLMENT_ORDER, "after": "abc"},
    ),
    "product media with Stockyard's marks": (documents.PRODUCT_MEDIA_MARKED, {"id": PRODUCT}),
    "metafieldsSet: an image's mark": (
        documents.METAFIELDS_SET,
        {
            "metafields": [
                {
                    "ownerId": "gid://shopify/MediaImage/81",
                    "namespace": "stockyard",
                    "key": "image",
                    "type": "json",
                    "value": '{"code": "tee.jpg", "url": "https://erp.example/tee.jpg"}',
                }
            ]
        },
    ),
    "order fulfillment ledger": (
        documents.ORDER_FULFILLMENT_LEDGER,
        {"id": "gid://shopify/Order/61"},
    ),
    "fulfillmentTrackingInfoUpdate": (
        documents.FULFILLMENT_TRACKING_UPDATE,
        {
            "id": "gid://shopify/Fulfillment/71",
            "tracking": {"company": "DHL", "number": "JD0147", "url": "https://dhl.example/t/1"},
            "notify": False,
        },
    ),
}


@pytest.mark.parametrize("name", MORE_VALID)
def test_the_connectors_other_documents_are_valid_with_variables(name: str) -> None:
    document, variables = MORE_VALID[name]
    assert schema.validate(document, variables) == []


def test_weight_units_are_shopifys() -> None:
    wrong = {
        **WEIGHTED_VARIANTS,
        "variants": [
            {
                "id": VARIANT,
                "inventoryItem": {"measurement": {"weight": {"unit": "KG", "value": 1.0}}},
            }
        ],
    }
    errors = schema.validate(documents.VARIANTS_BULK_UPDATE, wrong)
    assert any("KG" in e for e in errors), errors


# --- bulk product writes (role C): what shopify/bulk.py sends --------------------------


def _bulk_line(remote_id: str | None, variant_ids: dict[str, str] | None = None) -> dict[str, Any]:
    from stockyard.connectors.base import ChannelProduct, ChannelVariant
    from stockyard.connectors.shopify import ShopifyConnector
    from stockyard.connectors.shopify.bulk import line_variables

    shop = ShopifyConnector(
        {"shop": "s.myshopify.com", "access_token": "t", "location_id": LOCATION}
    )
    product = ChannelProduct(
        "TEE",
        {"title": "Tee", "description": "Cotton", "vendor": "Acme", "tags": ["b2b"]},
        [
            ChannelVariant(
                f"TEE-{size}",
                {
                    "price": "9.90",
                    "compare_at_price": None,
                    "quantity": 4,
                    "options": {"Size": size},
                },
            )
            for size in ("S", "M")
        ],
    )
    return line_variables(shop, product, remote_id, variant_ids)


@pytest.mark.parametrize("remote_id", [None, PRODUCT])
def test_a_bulk_line_is_valid_for_the_bulk_mutation(remote_id: str | None) -> None:
    from stockyard.connectors.shopify.bulk import OPERATION

    named = documents.BULK_PRODUCT_SET_LINKED.replace(OPERATION, OPERATION + "_ab12", 1)
    assert schema.validate(named, _bulk_line(remote_id)) == []
    run = {"mutation": named, "path": "tmp/21/bulk/x.jsonl", "client": OPERATION + "_ab12"}
    assert schema.validate(documents.BULK_RUN_MUTATION, run) == []


def test_recent_bulk_mutations_are_listed_newest_first() -> None:
    assert schema.validate(documents.BULK_MUTATIONS_RECENT) == []
    # No reverse: the field's default order is newest first.
    assert "reverse" not in documents.BULK_MUTATIONS_RECENT


def test_a_bulk_line_keeps_the_shops_variants_by_id() -> None:
    from stockyard.connectors.shopify.bulk import OPERATION

    named = documents.BULK_PRODUCT_SET_LINKED.replace(OPERATION, OPERATION + "_ab12", 1)
    line = _bulk_line(PRODUCT, {"TEE-S": VARIANT})
    assert schema.validate(named, line) == []
    assert [v.get("id") for v in line["input"]["variants"]] == [VARIANT, None]


def test_the_export_is_a_bulk_query_the_run_mutation_takes() -> None:
    from stockyard.connectors.shopify.bulk_export import EXPORT

    named = documents.BULK_EXPORT_SKUS.replace(EXPORT, EXPORT + "_ab12", 1)
    assert schema.validate(named) == []
    assert schema.validate(documents.BULK_RUN_QUERY, {"query": named}) == []
    # A bulk query reads each connection whole: no paging arguments.
    assert "first" not in documents.BULK_EXPORT_SKUS
    assert schema.validate(documents.BULK_QUERIES_RECENT) == []
