"""Large init/sync runs through a channel's bulk path (issue 18): one `bulk_products` item
per chunk of products instead of one add_product/update_product each.

The item writes its chunk with one `Connector.bulk_products` call. Products the channel
took are linked like add_product links them (product, variants by SKU, with the hashes of
what was sent). A variant the channel reports not wholly written keeps no hash (or no
link, if it had none) and its product gets an update_product item that sends it. Each
product that failed, or got no answer, is queued as its own add_product/update_product
item, which fails there with its own error and its own payload to fix: one bad product
fails only itself, as in a `sync_products` batch.

What the bulk write leaves out goes as a product change sends it (products.plan_channel):
images (add_image for those new or changed, delete_image for those the source dropped)
and, for a connector whose bulk write creates and updates only (`bulk_replaces_variants`
false: WooCommerce, Magento), a delete_product_variant per variant the source dropped;
Shopify's productSet replaces the variant list, so those are gone already.
"""

from __future__ import annotations

from stockyard.catalog.store import StoredProduct
from stockyard.connectors.base import ChannelProduct, Connector, ProductResult
from stockyard.engine.handlers import Context
from stockyard.errors import InvalidInput, StockyardError
from stockyard.flows.base import Services, flow
from stockyard.flows.products import changed_images, product_refs, removals
from stockyard.flows.rules import product_hash, rules_of, variant_hash
from stockyard.tenancy import Connection

# A catalog of at least BULK_THRESHOLD accepted products goes through the bulk path, in
# chunks of the connector's `bulk_chunk` (Shopify's 1,000 productSet lines are 1-2 MB of
# JSONL and one bulk operation; WooCommerce's 100 keep an item's sequential calls bounded).
# Below the threshold per-product items are as fast and say more.
BULK_THRESHOLD = 1000
BULK_CHUNK = Connector.bulk_chunk  # the chunk of a connector that sets none of its own
MODES = ("add", "update")
# The most ids an item is read with: a chunk of any connector's, split into chunks of the
# connection's current one (an item queued before the connection changed connector).
MOST_IDS = 10 * BULK_CHUNK


def chunked(
    ctx: Context,
    channel: Connection,
    planned: list[tuple[int, str]],
    mode: str,
    force: bool,
    size: int,
) -> None:
    """Queue `planned` (product id, code) as bulk_products items of up to `size`."""
    for start in range(0, len(planned), size):
        part = planned[start : start + size]
        payload = {"product_ids": [p for p, _ in part], "mode": mode, "force": force}
        ctx.enqueue("bulk_products", payload, channel.id)


def one_item(
    ctx: Context, channel: Connection, mode: str, product_id: int, refs: tuple[str, ...]
) -> None:
    if mode == "add":
        ctx.enqueue("add_product", {"product_id": product_id}, channel.id, refs)
    else:
        payload = {"product_id": product_id, "full": True, "force": True}
        ctx.enqueue("update_product", payload, channel.id, refs)


def _ids(ctx: Context) -> list[int]:
    ids = ctx.payload.get("product_ids")
    if (
        not isinstance(ids, list)
        or not ids
        or any(isinstance(i, bool) or not isinstance(i, int) for i in ids)
    ):
        raise InvalidInput("invalid payload: 'product_ids' must be a non-empty list of ids")
    if len(ids) > MOST_IDS:
        raise InvalidInput(
            f"invalid payload: 'product_ids' takes at most {MOST_IDS} ids, got {len(ids)}"
        )
    return ids


def _requeued(
    ctx: Context, channel: Connection, remote: Connector, mode: str, ids: list[int]
) -> bool:
    """Whether the item was queued again in the items this connector takes: one per product
    without a bulk path, chunks of its `bulk_chunk` for a list longer than that (either
    way, queued before the connection changed connector). One item is one chunk: a larger
    list would not be bounded in time, in size, or in what a failure makes redo."""
    if not remote.offers_bulk_products():
        for product_id in ids:
            one_item(ctx, channel, mode, product_id, ())
        return True
    if len(ids) <= remote.bulk_chunk:
        return False
    force = ctx.payload.get("force") is True
    chunked(ctx, channel, [(i, "") for i in ids], mode, force, remote.bulk_chunk)
    return True


@flow
def bulk_products(services: Services, ctx: Context) -> None:
    channel = services.connection(ctx, "channel")
    mode = ctx.payload.get("mode")
    if mode not in MODES:
        raise InvalidInput("invalid payload: 'mode' must be 'add' or 'update'")
    remote = services.connector(channel, "channel")
    ids = _ids(ctx)
    if _requeued(ctx, channel, remote, mode, ids):
        return
    rules = rules_of(channel)
    chosen: list[tuple[StoredProduct, ChannelProduct]] = []
    for product_id in ids:
        try:
            stored = services.store.product(ctx.job.client_id, product_id)
        except StockyardError:
            one_item(ctx, channel, mode, product_id, ())  # fails there, alone, saying why
            continue
        if rules.accepts(stored):
            chosen.append((stored, rules.view(stored)))
    if not chosen:
        return
    links = services.store.links(channel.id, "product", [s.id for s, _ in chosen])
    remote_ids = {s.code: links[s.id].remote_id for s, _ in chosen if s.id in links}
    views = [v for _, v in chosen]
    results = remote.bulk_products(views, remote_ids, ctx.job.idempotency_key)
    for (stored, view), result in zip(chosen, results, strict=True):
        if result.ok and result.remote_id:
            _link(services, ctx, channel, remote, stored, view, result)
        else:
            one_item(ctx, channel, mode, stored.id, product_refs(stored))


def _link(
    services: Services,
    ctx: Context,
    channel: Connection,
    remote: Connector,
    stored: StoredProduct,
    view: ChannelProduct,
    result: ProductResult,
) -> None:
    store, ch = services.store, channel.id
    assert result.remote_id is not None
    store.link(ch, "product", stored.id, result.remote_id, product_hash(view))
    before = store.links(ch, "variant", [sv.id for sv in stored.variants])
    unsent = False
    for sv, vv in zip(stored.variants, view.variants, strict=True):
        remote_variant = result.variants.get(vv.sku)
        if remote_variant is not None:
            store.link(ch, "variant", sv.id, remote_variant, variant_hash(vv))
            continue
        unsent = True
        if sv.id in before:
            # Not (wholly) written by the bulk line (e.g. its stock): the hash of what the
            # channel held before would be a lie now; without one it is sent again.
            store.link(ch, "variant", sv.id, before[sv.id].remote_id, None)
    if remote.bulk_replaces_variants:  # the ones the source dropped are gone there
        for variant_id in stored.removed_variants:
            store.unlink(ch, "variant", variant_id)
    refs = product_refs(stored)
    if unsent:
        # What the line left out goes now, by the per-product path (only what differs:
        # those variants, the images, and deleting what the source dropped).
        payload = {"product_id": stored.id, "full": True, "force": False}
        ctx.enqueue("update_product", payload, ch, refs)
        return
    # Images are not in the bulk line, and a create-and-update bulk write leaves dropped
    # variants in place: both go as a product change sends them (products.plan_channel).
    image_ids = [i.id for i in stored.images] + stored.removed_images
    image_links = store.links(ch, "image", image_ids)
    variant_links = store.links(ch, "variant", stored.removed_variants)
    planned = changed_images(ch, stored, view, image_links)
    planned += removals(ch, stored, result.remote_id, variant_links, image_links)
    for request in planned:
        ctx.enqueue(request.instruction, request.payload, ch, request.refs)
