"""Products out: the channel-lane instructions. Each reads the catalog as it is when the item
runs (so a retry sends the latest data), sends only what differs from what the channel was
last sent, and records the channel's ids and the hashes of what it now holds."""

from __future__ import annotations

from dataclasses import dataclass

from stockyard.catalog.store import StoredProduct
from stockyard.connectors.base import ChannelVariant, Connector, Result
from stockyard.engine.handlers import Context
from stockyard.errors import HandlerError, InvalidInput, PermanentError, TransientError
from stockyard.flows import bulk
from stockyard.flows.base import Services, flow
from stockyard.flows.rules import ChannelRules, image_hash, product_hash, rules_of, variant_hash
from stockyard.tenancy import Connection


@dataclass(slots=True)
class Push:
    """One channel item's view of one product."""

    services: Services
    ctx: Context
    channel: Connection
    rules: ChannelRules
    remote: Connector
    stored: StoredProduct

    @property
    def key(self) -> str:
        return self.ctx.job.idempotency_key

    def link(self, kind: str, entity_id: int, remote_id: str, hash: str | None) -> None:
        self.services.store.link(self.channel.id, kind, entity_id, remote_id, hash)

    # ----------------------------------------------------------------------- link or add

    def product_remote_id(self) -> str:
        """The channel's id of the product: linked already, found by SKU, or created."""
        store, ch, stored = self.services.store, self.channel.id, self.stored
        link = store.links(ch, "product", [stored.id]).get(stored.id)
        if link is not None:
            return link.remote_id
        found = self.remote.find_product(stored.skus)
        if found is not None:
            # Linked with no hash: everything is sent once to make it match.
            self.link("product", stored.id, found.id, None)
            for sv in stored.variants:
                if sv.variant.sku in found.variants:
                    self.link("variant", sv.id, found.variants[sv.variant.sku], None)
            return found.id
        view = self.rules.view(stored)
        created = self.remote.create_product(view, self.key)
        self.link("product", stored.id, created.id, product_hash(view))
        for sv, vv in zip(stored.variants, view.variants, strict=True):
            if sv.variant.sku in created.variants:
                self.link("variant", sv.id, created.variants[sv.variant.sku], variant_hash(vv))
        for si, iv in zip(stored.images, view.images, strict=True):
            if iv.code in created.images:
                self.link("image", si.id, created.images[iv.code], image_hash(iv))
        return created.id

    # ----------------------------------------------------------------------------- pushes

    def product_fields(self, remote_id: str, force: bool = False) -> None:
        store, ch, stored = self.services.store, self.channel.id, self.stored
        view = self.rules.view(stored)
        link = store.links(ch, "product", [stored.id]).get(stored.id)
        digest = product_hash(view)
        if force or link is None or link.hash != digest:
            self.remote.update_product(remote_id, view, self.key)
            self.link("product", stored.id, remote_id, digest)

    def variants(self, remote_id: str, only: int | None = None, force: bool = False) -> None:
        """Send the variants that differ (or `only` one) in one batched call."""
        store, ch, stored = self.services.store, self.channel.id, self.stored
        chosen = [v for v in stored.variants if only is None or v.id == only]
        links = store.links(ch, "variant", [v.id for v in chosen])
        if only is not None and only not in links:
            self._link_variant_by_sku(chosen, links)
        pending: list[tuple[int, ChannelVariant]] = []
        for sv in chosen:
            link = links.get(sv.id)
            view = self.rules.variant(sv, None if link is None else link.remote_id)
            if force or link is None or link.hash != variant_hash(view):
                pending.append((sv.id, view))
        if not pending:
            return
        results = self.remote.upsert_variants(remote_id, [v for _, v in pending], self.key)
        by_sku = {r.key: r for r in results}
        failed: list[Result] = []
        for variant_id, view in pending:
            result = by_sku.get(view.sku) or Result(view.sku, error=PermanentError("no result"))
            remote_variant = result.remote_id or view.remote_id
            if result.ok and remote_variant is not None:
                self.link("variant", variant_id, remote_variant, variant_hash(view))
            elif result.ok:
                failed.append(Result(view.sku, error=PermanentError("the channel gave no id")))
            else:
                failed.append(result)
        if failed:
            raise _batch_error(failed, len(pending))

    def _link_variant_by_sku(self, chosen: list, links: dict) -> None:  # type: ignore[type-arg]
        """add_variant: link to a variant the channel already has with the same SKU."""
        found = self.remote.find_product([v.variant.sku for v in chosen])
        for sv in chosen:
            if found is not None and sv.variant.sku in found.variants:
                self.link("variant", sv.id, found.variants[sv.variant.sku], None)
                links.update(self.services.store.links(self.channel.id, "variant", [sv.id]))

    def removed_variants(self, remote_id: str) -> None:
        store, ch = self.services.store, self.channel.id
        for variant_id, link in store.links(ch, "variant", self.stored.removed_variants).items():
            self.remote.delete_variant(remote_id, link.remote_id, self.key)
            store.unlink(ch, "variant", variant_id)

    def images(self, remote_id: str, only: int | None = None, force: bool = False) -> None:
        store, ch, stored = self.services.store, self.channel.id, self.stored
        links = store.links(ch, "image", [i.id for i in stored.images])
        for position, si in enumerate(stored.images):
            if only is not None and si.id != only:
                continue
            view = self.rules.image(si, position)
            link = links.get(si.id)
            if link is not None and link.hash == image_hash(view) and not force:
                continue
            if link is not None:  # changed: the channel gets the new one in its place
                self.remote.delete_image(remote_id, link.remote_id, self.key)
            self.link(
                "image", si.id, self.remote.add_image(remote_id, view, self.key), image_hash(view)
            )
        for image_id, link in store.links(ch, "image", stored.removed_images).items():
            if only is None:
                self.remote.delete_image(remote_id, link.remote_id, self.key)
                store.unlink(ch, "image", image_id)

    def everything(self, force: bool = False) -> None:
        remote_id = self.product_remote_id()
        self.product_fields(remote_id, force)
        self.variants(remote_id, force=force)
        self.removed_variants(remote_id)
        self.images(remote_id, force=force)


def _batch_error(failed: list[Result], attempted: int) -> HandlerError:
    detail = "; ".join(f"{r.key}: {r.error}" for r in failed[:10])
    message = f"{len(failed)} of {attempted} variants failed: {detail}"
    if all(isinstance(r.error, TransientError) for r in failed):
        return TransientError(message)
    return PermanentError(message)


def _id(ctx: Context, name: str) -> int:
    value = ctx.payload.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"invalid payload: {name!r} must be an integer id")
    return value


def _push(services: Services, ctx: Context) -> Push | None:
    """The push for the item's product, or None when the channel should not hold it."""
    channel = services.connection(ctx, "channel")
    rules = rules_of(channel)
    stored = services.store.product(ctx.job.client_id, _id(ctx, "product_id"))
    if not rules.accepts(stored):
        return None
    return Push(services, ctx, channel, rules, services.connector(channel, "channel"), stored)


@flow
def add_product(services: Services, ctx: Context) -> None:
    """Add the product (or link the channel's product with the same SKU), then make the
    channel's copy match: an earlier attempt may have stopped half-way."""
    push = _push(services, ctx)
    if push is not None:
        push.everything()


@flow
def update_product(services: Services, ctx: Context) -> None:
    """Product-level fields; with "full", variants and images too ("force": send all,
    not only what differs). Unlinked, it falls back to link-or-add."""
    push = _push(services, ctx)
    if push is None:
        return
    linked = services.store.links(push.channel.id, "product", [push.stored.id])
    full, force = bool(ctx.payload.get("full")), bool(ctx.payload.get("force"))
    if full or not linked:
        push.everything(force)
    else:
        push.product_fields(linked[push.stored.id].remote_id)


@flow
def update_variant(services: Services, ctx: Context) -> None:
    """Also add_variant: an unlinked variant is linked by SKU or created."""
    push = _push(services, ctx)
    if push is None:
        return
    variant_id = _id(ctx, "variant_id")
    if push.stored.variant(variant_id) is None:
        return  # removed since: its delete_product_variant item takes care of it
    push.variants(push.product_remote_id(), only=variant_id)


@flow
def add_image(services: Services, ctx: Context) -> None:
    push = _push(services, ctx)
    if push is None:
        return
    image_id = _id(ctx, "image_id")
    if push.stored.image(image_id) is not None:
        push.images(push.product_remote_id(), only=image_id)


@flow
def delete_product(services: Services, ctx: Context) -> None:
    channel = services.connection(ctx, "channel")
    product_id = _id(ctx, "product_id")
    remote_id = ctx.payload.get("remote_id")
    if not isinstance(remote_id, str) or not remote_id:
        raise InvalidInput("invalid payload: 'remote_id' must be the channel's product id")
    services.connector(channel, "channel").delete_product(remote_id, ctx.job.idempotency_key)
    store = services.store
    stored = store.product(ctx.job.client_id, product_id)
    store.unlink(channel.id, "product", product_id)
    for variant_id in [v.id for v in stored.variants] + stored.removed_variants:
        store.unlink(channel.id, "variant", variant_id)
    for image_id in [i.id for i in stored.images] + stored.removed_images:
        store.unlink(channel.id, "image", image_id)


def _delete_part(services: Services, ctx: Context, kind: str) -> None:
    channel = services.connection(ctx, "channel")
    entity_id = _id(ctx, f"{kind}_id")
    remote_id, product_remote_id = (
        ctx.payload.get("remote_id"),
        ctx.payload.get("product_remote_id"),
    )
    if not isinstance(remote_id, str) or not isinstance(product_remote_id, str):
        raise InvalidInput("invalid payload: 'remote_id' and 'product_remote_id' are needed")
    remote = services.connector(channel, "channel")
    if kind == "variant":
        remote.delete_variant(product_remote_id, remote_id, ctx.job.idempotency_key)
    else:
        remote.delete_image(product_remote_id, remote_id, ctx.job.idempotency_key)
    services.store.unlink(channel.id, kind, entity_id)


@flow
def delete_product_variant(services: Services, ctx: Context) -> None:
    _delete_part(services, ctx, "variant")


@flow
def delete_image(services: Services, ctx: Context) -> None:
    _delete_part(services, ctx, "image")


# ---------------------------------------------------------------------- channel lifecycle


def _fan_out(
    services: Services, ctx: Context, channel: Connection, status: str, **how: bool
) -> None:
    """One item per product in this lane (or, for a large init/sync on a channel with a
    bulk path, one item per chunk: flows.bulk), then set_channel_status last: FIFO makes
    it last."""
    rules = rules_of(channel)
    client = ctx.job.client_id
    linked = services.store.linked(channel.id, "product")
    planned: list[tuple[int, str]] = []  # (product id, code) to add or update
    for product_id, code, fields, deleted in services.store.product_summaries(client):
        accepted = not deleted and rules.filter.accepts(fields)
        if how.get("clear") or (how.get("prune") and not accepted):
            if product_id in linked:
                payload = {"product_id": product_id, "remote_id": linked[product_id]}
                ctx.enqueue("delete_product", payload, channel.id, (code,))
        elif accepted:
            planned.append((product_id, code))
    mode = "add" if how.get("add") else "update"
    chunk = _bulk_chunk(services, channel, len(planned), how)
    if chunk is not None:
        bulk.chunked(ctx, channel, planned, mode, bool(how.get("force")), chunk)
    else:
        for product_id, code in planned:
            if mode == "add":
                ctx.enqueue("add_product", {"product_id": product_id}, channel.id, (code,))
            else:
                payload = {"product_id": product_id, "full": True, "force": bool(how.get("force"))}
                ctx.enqueue("update_product", payload, channel.id, (code,))
    ctx.enqueue("set_channel_status", {"status": status}, channel.id)


def _bulk_chunk(
    services: Services, channel: Connection, count: int, how: dict[str, bool]
) -> int | None:
    """The connector's bulk chunk when the fan-out goes by bulk: init_channel and
    sync_channel (everything sent again) of a large catalog, on a channel whose connector
    writes products in bulk. None: one item per product."""
    if count < bulk.BULK_THRESHOLD or not (how.get("add") or how.get("force")):
        return None
    remote = services.connector(channel, "channel")
    return remote.bulk_chunk if remote.offers_bulk_products() else None


@flow
def init_channel(services: Services, ctx: Context) -> None:
    channel = services.connection(ctx, "channel")
    services.store.clear_links(channel.id)
    _fan_out(services, ctx, channel, "active", add=True)


@flow
def sync_channel(services: Services, ctx: Context) -> None:
    """Every accepted product, everything sent again, using the channel ids we hold."""
    _fan_out(services, ctx, services.connection(ctx, "channel"), "active", force=True)


@flow
def sync_channel_products(services: Services, ctx: Context) -> None:
    """Every accepted product brought up to date; products the rules now refuse deleted."""
    _fan_out(services, ctx, services.connection(ctx, "channel"), "active", prune=True)


@flow
def clear_channel(services: Services, ctx: Context) -> None:
    _fan_out(services, ctx, services.connection(ctx, "channel"), "inactive", clear=True)


@flow
def set_channel_status(services: Services, ctx: Context) -> None:
    channel = services.connection(ctx, "channel")
    status = ctx.payload.get("status", "active")
    if status not in ("active", "inactive"):
        raise InvalidInput("invalid payload: 'status' must be 'active' or 'inactive'")
    services.tenancy.set_connection_status(ctx.job.client_id, channel.id, str(status))
