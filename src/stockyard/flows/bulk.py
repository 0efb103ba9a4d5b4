"""Large init/sync runs through a channel's bulk path (issue 18): one `bulk_products` item
per chunk of products instead of one add_product/update_product each.

The item writes its chunk with one `Connector.bulk_products` call. Products the channel
took are linked like add_product links them (product, variants by SKU, with the hashes of
what was sent). A variant the channel reports not wholly written keeps no hash (or no
link, if it had none) and its product gets an update_product item that sends it. Each
product that failed, or got no answer, is queued as its own add_product/update_product
item, which fails there with its own error and its own payload to fix: one bad product
fails only itself, as in a `sync_products` batch.
"""

from __future__ import annotations

from stockyard.catalog.store import StoredProduct
from stockyard.connectors.base import ChannelProduct, ProductResult
from stockyard.engine.handlers import Context
from stockyard.errors import InvalidInput, StockyardError
from stockyard.flows.base import Services, flow
from stockyard.flows.products import product_refs
from stockyard.flows.rules import product_hash, rules_of, variant_hash
from stockyard.tenancy import Connection

# A catalog of at least BULK_THRESHOLD accepted products goes through the bulk path, in
# chunks of BULK_CHUNK. 1,000 productSet lines are about 1-2 MB of JSONL (well under the
# 20 MB Shopify accepts per file), finish in minutes on a shop, and bound what one failed
# chunk has to redo; below the threshold per-product items are as fast and say more.
BULK_THRESHOLD = 1000
BULK_CHUNK = 1000
MODES = ("add", "update")


def chunked(
    ctx: Context, channel: Connection, planned: list[tuple[int, str]], mode: str, force: bool
) -> None:
    """Queue `planned` (product id, code) as bulk_products items of up to BULK_CHUNK."""
    for start in range(0, len(planned), BULK_CHUNK):
        part = planned[start : start + BULK_CHUNK]
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
    if len(ids) > BULK_CHUNK:
        # One item is one bulk operation: a larger list would not be bounded in size or in
        # what a failure makes redo.
        raise InvalidInput(
            f"invalid payload: 'product_ids' takes at most {BULK_CHUNK} ids, got {len(ids)}"
        )
    return ids


@flow
def bulk_products(services: Services, ctx: Context) -> None:
    channel = services.connection(ctx, "channel")
    mode = ctx.payload.get("mode")
    if mode not in MODES:
        raise InvalidInput("invalid payload: 'mode' must be 'add' or 'update'")
    ids = _ids(ctx)
    remote = services.connector(channel, "channel")
    if not remote.offers_bulk_products():
        for product_id in ids:  # the connection changed connector since the fan-out
            one_item(ctx, channel, mode, product_id, ())
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
            _link(services, ctx, channel, stored, view, result)
        else:
            one_item(ctx, channel, mode, stored.id, product_refs(stored))


def _link(
    services: Services,
    ctx: Context,
    channel: Connection,
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
    # productSet replaced the variant list: the ones the source dropped are gone there.
    for variant_id in stored.removed_variants:
        store.unlink(ch, "variant", variant_id)
    refs = product_refs(stored)
    if unsent:
        # What the line left out goes now, by the per-product path (only what differs:
        # those variants, and the images, which are not in the line either).
        payload = {"product_id": stored.id, "full": True, "force": False}
        ctx.enqueue("update_product", payload, ch, refs)
        return
    # Images are not part of the bulk line: each goes as add_image, as a product change does.
    for si in stored.images:
        ctx.enqueue("add_image", {"product_id": stored.id, "image_id": si.id}, ch, refs)
