"""The instruction catalog of the commerce flows, as data.

One row per instruction: its mode, which lane it runs in, its description template, its
coalescing key and whether it is internal. Adding an instruction is one row here plus one
handler (`stockyard.flows.handlers.FLOWS`). The mechanism (what an instruction is, how it is looked
up) is the engine's: `stockyard.engine.instructions`.
"""

from __future__ import annotations

from stockyard.engine.instructions import Instruction, Instructions, LaneKind

_B, _NB = True, False
_CH, _SRC, _NONE = LaneKind.CHANNEL, LaneKind.SOURCE, LaneKind.NONE

_PRODUCT, _VARIANT = "product:{{product_id}}", "variant:{{variant_id}}"
_PUB, _INT = False, True  # public: tenants may enqueue it; internal: Stockyard only

# name, blocking, lane, description template, coalescing key template, internal
CATALOG: tuple[tuple[str, bool, LaneKind, str, str, bool], ...] = (
    ("add_image", _B, _CH, "Add image to {{channel_description}}", "", _PUB),
    ("add_product", _B, _CH, "Add product to {{channel_description}}", _PRODUCT, _PUB),
    ("add_variant", _B, _CH, "Add variant to {{channel_description}}", _VARIANT, _PUB),
    ("clear_channel", _B, _CH, "Clear channel {{channel_description}}", "", _PUB),
    ("init_channel", _B, _CH, "Init channel {{channel_description}}", "", _PUB),
    ("set_channel_status", _B, _CH, "Set channel status {{channel_description}}", "", _PUB),
    ("delete_image", _B, _CH, "Delete image on {{channel_description}}", "", _PUB),
    ("delete_product", _B, _CH, "Delete product on {{channel_description}}", "", _PUB),
    ("delete_product_variant", _B, _CH, "Delete variant on {{channel_description}}", "", _PUB),
    ("sync_channel", _B, _CH, "Sync channel {{channel_description}}", "", _PUB),
    ("sync_channel_products", _B, _CH, "Update products on {{channel_description}}", "", _PUB),
    (
        "update_product",
        _B,
        _CH,
        "Update product on {{channel_description}}",
        "product:{{product_id}}",
        _PUB,
    ),
    (
        "update_variant",
        _B,
        _CH,
        "Update variant on {{channel_description}}",
        "variant:{{variant_id}}",
        _PUB,
    ),
    ("fetch_images", _B, _SRC, "Fetch images from {{source_description}}", "", _PUB),
    ("sync_image", _B, _SRC, "Sync image from {{source_description}}", "", _PUB),
    (
        "sync_product",
        _B,
        _SRC,
        "Sync product from {{source_description}}",
        "product:{{code}}",
        _PUB,
    ),
    ("sync_products", _B, _SRC, "Sync products from {{source_description}}", "", _PUB),
    (
        "sync_customer",
        _B,
        _SRC,
        "Sync customer from {{source_description}}",
        "customer:{{code}}",
        _PUB,
    ),
    ("pull_products", _B, _SRC, "Pull products from {{source_description}}", "", _PUB),
    ("add_order", _NB, _NONE, "Create order at {{source_description}}", "", _PUB),
    ("fulfill_order", _NB, _NONE, "Create fulfillment at {{fulfillment_description}}", "", _PUB),
    ("update_order_instruction", _NB, _NONE, "Update order instruction", "", _PUB),
    (
        "sync_channel_fulfillments",
        _NB,
        _NONE,
        "Sync fulfillment to {{channel_description}}",
        "",
        _PUB,
    ),
    ("sync_fulfillment", _NB, _NONE, "Sync fulfillment from {{fulfillment_description}}", "", _PUB),
    (
        "pull_fulfillments",
        _NB,
        _NONE,
        "Pull fulfillments from {{fulfillment_description}}",
        "",
        _PUB,
    ),
    ("sync_order", _NB, _NONE, "Sync order from {{channel_description}}", "", _PUB),
    ("pull_orders", _NB, _NONE, "Pull orders from {{channel_description}}", "", _PUB),
    ("send_email", _NB, _NONE, "Send email", "", _INT),
    ("send_webhook", _NB, _NONE, "Send webhook", "", _INT),
)


# What skipping a failed item leaves undone, for a confirmation to warn about: the thing
# the channel never gets, the later instructions of the same lane and reference (SKU,
# product code) that need it and so will fail, and the error they will fail with.
# instruction skipped: (what is lost, instructions that depend on it, their error)
SKIP_CONSEQUENCES: dict[str, tuple[str, tuple[str, ...], str]] = {
    "add_product": (
        "the channel never gets the product",
        (
            "update_product",
            "update_variant",
            "add_variant",
            "add_image",
            "delete_product",
            "delete_product_variant",
        ),
        "No product found to update",
    ),
    "add_variant": (
        "the channel never gets the variant",
        ("update_variant", "delete_product_variant"),
        "No variant found to update",
    ),
}


def default_instructions() -> Instructions:
    return Instructions(
        Instruction(n, b, lane, t, coalesce=c, internal=i) for n, b, lane, t, c, i in CATALOG
    )
