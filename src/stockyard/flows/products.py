"""Products in: a source's products and images reach the catalog, and
each channel whose rules accept a product gets items only for what changed there."""

from __future__ import annotations

from typing import Any

from stockyard.catalog.models import Image, Product, parse
from stockyard.catalog.store import Link, StoredProduct
from stockyard.connectors.base import ChannelProduct
from stockyard.engine import Request
from stockyard.engine.handlers import Context
from stockyard.errors import InvalidInput
from stockyard.flows import cursors
from stockyard.flows.base import Services, flow
from stockyard.flows.rules import (
    ChannelRules,
    image_hash,
    product_hash,
    rules_of,
    variant_hash,
)
from stockyard.tenancy import Connection


def product_refs(stored: StoredProduct) -> tuple[str, ...]:
    return tuple(dict.fromkeys((stored.code, *stored.skus)))


def plan_channel(
    services: Services, channel: Connection, rules: ChannelRules, stored: StoredProduct
) -> list[Request]:
    """The items that bring `channel` in line with the catalog's `stored` product, judged
    against the hashes of what the channel was last sent."""
    store, ch = services.store, channel.id
    refs = product_refs(stored)
    product_link = store.links(ch, "product", [stored.id]).get(stored.id)
    pid: dict[str, Any] = {"product_id": stored.id}
    if not rules.accepts(stored):
        if product_link is None:
            return []
        payload = pid | {"remote_id": product_link.remote_id}
        return [Request("delete_product", payload, ch, refs)]
    if product_link is None:
        return [Request("add_product", pid, ch, refs)]
    view = rules.view(stored)
    planned: list[Request] = []
    if product_hash(view) != product_link.hash:
        planned.append(Request("update_product", pid, ch, refs))
    variant_ids = [v.id for v in stored.variants] + stored.removed_variants
    variant_links = store.links(ch, "variant", variant_ids)
    for sv, vv in zip(stored.variants, view.variants, strict=True):
        link = variant_links.get(sv.id)
        if link is None or variant_hash(vv) != link.hash:
            instruction = "add_variant" if link is None else "update_variant"
            payload = pid | {"variant_id": sv.id}
            planned.append(Request(instruction, payload, ch, (sv.variant.sku, stored.code)))
    image_links = store.links(ch, "image", [i.id for i in stored.images] + stored.removed_images)
    planned += changed_images(ch, stored, view, image_links)
    return planned + removals(ch, stored, product_link.remote_id, variant_links, image_links)


def changed_images(
    channel_id: int, stored: StoredProduct, view: ChannelProduct, image_links: dict[int, Link]
) -> list[Request]:
    """add_image for each image the channel lacks, or holds as it was before a change."""
    refs = product_refs(stored)
    return [
        Request("add_image", {"product_id": stored.id, "image_id": si.id}, channel_id, refs)
        for si, iv in zip(stored.images, view.images, strict=True)
        if si.id not in image_links or image_hash(iv) != image_links[si.id].hash
    ]


def removals(
    channel_id: int,
    stored: StoredProduct,
    product_remote_id: str,
    variant_links: dict[int, Link],
    image_links: dict[int, Link],
) -> list[Request]:
    """A delete item for each variant and image the source dropped that the channel holds
    (by the links given)."""
    refs = product_refs(stored)
    removed = (
        ("delete_product_variant", "variant_id", stored.removed_variants, variant_links),
        ("delete_image", "image_id", stored.removed_images, image_links),
    )
    planned: list[Request] = []
    for instruction, id_name, entity_ids, links in removed:
        for entity_id in entity_ids:
            if entity_id in links:
                payload = {
                    "product_id": stored.id,
                    id_name: entity_id,
                    "remote_id": links[entity_id].remote_id,
                    "product_remote_id": product_remote_id,
                }
                planned.append(Request(instruction, payload, channel_id, refs))
    return planned


def fan_out(services: Services, ctx: Context, product_ids: list[int]) -> None:
    """Queue, for every active channel of the client, what these products changed there."""
    channels = [(c, rules_of(c)) for c in services.connections(ctx.job.client_id, "channel")]
    for product_id in product_ids:
        stored = services.store.product(ctx.job.client_id, product_id)
        for channel, rules in channels:
            for request in plan_channel(services, channel, rules, stored):
                ctx.enqueue(
                    request.instruction, request.payload, request.connection_id, request.refs
                )


def _write_product(services: Services, ctx: Context, data: Any) -> int:
    source = services.connection(ctx, "source")
    product = parse(Product, data, "product")
    return services.store.upsert_product(ctx.job.client_id, source.id, product)


@flow
def sync_product(services: Services, ctx: Context) -> None:
    fan_out(services, ctx, [_write_product(services, ctx, ctx.payload)])


@flow
def sync_products(services: Services, ctx: Context) -> None:
    """A batch: good products go on at once; each bad one is queued as its own
    sync_product, which fails there with its own error (and its own payload to fix)."""
    records = ctx.payload.get("products")
    if not isinstance(records, list) or not records:
        raise InvalidInput("invalid products: 'products' must be a non-empty list")
    written: list[int] = []
    for record in records:
        try:
            written.append(_write_product(services, ctx, record))
        except InvalidInput:
            code = record.get("code") or "" if isinstance(record, dict) else ""
            payload = record if isinstance(record, dict) else {"product": record}
            ctx.enqueue(
                "sync_product", payload, ctx.job.connection_id, (str(code),) if code else ()
            )
    fan_out(services, ctx, written)


@flow
def sync_image(services: Services, ctx: Context) -> None:
    services.connection(ctx, "source")
    code = ctx.payload.get("product")
    if not isinstance(code, str) or not code:
        raise InvalidInput("invalid image: 'product' must name the product's code")
    image = parse(Image, ctx.payload.get("image"), "image")
    fan_out(services, ctx, [services.store.add_image(ctx.job.client_id, code, image)])


@flow
def fetch_images(services: Services, ctx: Context) -> None:
    source = services.connection(ctx, "source")
    code = ctx.payload.get("product")
    if not isinstance(code, str) or not code:
        raise InvalidInput("invalid payload: 'product' must name the product's code")
    product_id = services.store.product_id(ctx.job.client_id, code)
    for record in services.connector(source, "source").fetch_images(code):
        services.store.add_image(ctx.job.client_id, code, parse(Image, record, "image"))
    fan_out(services, ctx, [product_id])


@flow
def pull_products(services: Services, ctx: Context) -> None:
    """Ask a source that cannot push for what changed since the last pull; each product
    becomes a sync_product item in the source's lane."""
    source = services.connection(ctx, "source")
    with cursors.Pull(services.store, source.id, "products", ctx.job.id) as pull:
        page = services.connector(source, "source").fetch_products(pull.start)
        for record in page.records:
            code = record.get("code") if isinstance(record, dict) else None
            ctx.enqueue("sync_product", record, source.id, (str(code),) if code else ())
        pull.advance(page.cursor)
