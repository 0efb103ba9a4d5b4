"""The instruction catalog of the commerce flows, as data.

One row per instruction: its mode, which lane it runs in, its description template, its
coalescing key and whether it is internal. Adding an instruction is one row here plus one
handler (`stockyard.flows.handlers.FLOWS`). The mechanism (what an instruction is, how it is looked
up) is the engine's: `stockyard.engine.instructions`.
"""

from __future__ import annotations

from stockyard.connectors.base import BULK_ITEM_TIMEOUT
from stockyard.engine.instructions import Instruction, Instructions, LaneKind, RetryPolicy

_B, _NB = True, False
_CH, _SRC, _NONE = LaneKind.CHANNEL, LaneKind.SOURCE, LaneKind.NONE

_PRODUCT, _VARIANT = "product:{{product_id}}", "variant:{{variant_id}}"
_PUB, _INT = False, True  # public: tenants may enqueue it; internal: Stockyard only

# name, blocking, lane, description template, coalescing key template, internal
CATALOG: tuple[tuple[str, bool, LaneKind, str, str, bool], ...] = (
    ("add_image", _B, _CH, "Add image to {{channel_description}}", "", _PUB),
    ("add_product", _B, _CH, "Add product to {{channel_description}}", _PRODUCT, _PUB),
    ("add_variant", _B, _CH, "Add variant to {{channel_description}}", _VARIANT, _PUB),
    # A chunk of a large init/sync on a channel with a bulk path (flows.bulk).
    ("bulk_products", _B, _CH, "Send products in bulk to {{channel_description}}", "", _PUB),
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
    ("pull_customers", _B, _SRC, "Pull customers from {{source_description}}", "", _PUB),
    (
        "sync_channel_customer",
        _B,
        _CH,
        "Update customer on {{channel_description}}",
        "customer:{{customer_id}}",
        _PUB,
    ),
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
# the channel does not get, the later instructions of the same lane and reference (SKU,
# product code) that need it, and what becomes of them. Stockyard's updates do not fail
# with "No product found to update" (Stock2Shop's classic): an unlinked product or variant
# is linked by SKU or added by the update itself (flows.channel) — with the data that made
# the add fail, so the first of them most likely fails the same way and stops the lane.
# instruction skipped: (what is lost, instructions that depend on it, what happens to them)
_REDO = (
    "each tries to add it itself, with the data that made the add fail, so the first of"
    " them will most likely fail the same way and stop the lane again"
)
SKIP_CONSEQUENCES: dict[str, tuple[str, tuple[str, ...], str]] = {
    "add_product": (
        "the channel does not get the product now",
        ("update_product", "update_variant", "add_variant", "add_image"),
        _REDO,
    ),
    "add_variant": (
        "the channel does not get the variant now",
        ("update_variant",),
        _REDO,
    ),
}

# What skipping an item loses when nothing queued depends on it: the item's own work, never
# done. instruction: (one, many, what becomes of them; {connection} is the item's
# connection by name). "5 customer orders (ORD-1400 … ORD-1404) will never reach Tryton".
SKIP_LOSSES: dict[str, tuple[str, str, str]] = {
    "add_order": ("customer order", "customer orders", "will never reach {connection}"),
    "sync_order": (
        "order",
        "orders",
        "will never be brought over from {connection}: the ERP does not get them",
    ),
    "sync_fulfillment": (
        "fulfillment",
        "fulfillments",
        "will never be synced from {connection}: the shop does not learn they shipped",
    ),
}


# Instructions whose retries differ from the engine's default. bulk_products hands its
# item back while the channel's bulk job runs (each attempt polls a bounded time, then
# TransientError): a job of many minutes, or another one ahead of it, needs more attempts.
RETRIES: dict[str, RetryPolicy] = {
    "bulk_products": RetryPolicy(
        max_attempts=60, base_delay=10.0, max_delay=300.0, timeout=BULK_ITEM_TIMEOUT
    ),
    # An agent's shipment can arrive before its answer to fulfill_order (flows.orders
    # sync_fulfillment): tried again for some minutes, then failed naming the fulfilment.
    "sync_fulfillment": RetryPolicy(max_attempts=10, base_delay=10.0, max_delay=300.0),
}


def default_instructions() -> Instructions:
    return Instructions(
        Instruction(n, b, lane, t, RETRIES.get(n, RetryPolicy()), coalesce=c, internal=i)
        for n, b, lane, t, c, i in CATALOG
    )
