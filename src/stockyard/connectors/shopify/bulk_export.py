"""Which of a bulk chunk's products the shop already holds (issue 18), known without one
search per product: a bulk query exports every product's handle and its variants' SKUs
(`BULK_EXPORT_SKUS`), and `place` decides, per product, how its productSet line names the
product, or that it does not go in bulk at all (docs/shopify-notes.md, "Bulk operations").

The export is taken per chunk, right before the chunk's bulk mutation: the chunks of one
run see each other's products that way (chunk 2 must see what chunk 1 created), which a
copy shared by the run would not. It is a bulk query, so it costs the app's bucket nothing
but the few requests that start, poll and read it, and it may run while another item's bulk
mutation runs. An export older than the end of any bulk mutation is stale (that mutation
may have made a product under a handle the export says is free) and is taken again.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from stockyard.connectors.base import ChannelProduct
from stockyard.connectors.shopify import documents as d
from stockyard.connectors.shopify.bulk import ACTIVE, RESTARTABLE, BulkRunner, _run_refused
from stockyard.errors import PermanentError, TransientError

EXPORT = "StockyardBulkSkus"
EXPORTS_PER_ATTEMPT = 2  # then the item is handed back: the shop is busy changing


@dataclass
class ShopIndex:
    handles: dict[str, str] = field(default_factory=dict)  # handle -> product id
    owners: dict[str, set[str]] = field(default_factory=dict)  # SKU -> product ids
    variants: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # (id, sku)


@dataclass(frozen=True)
class Placement:
    """How one product goes in bulk: `remote_id` set by id (None: created under its free
    handle), `variant_ids` the shop's variants it keeps (SKU -> id); or `why` it does not."""

    remote_id: str | None = None
    variant_ids: dict[str, str] = field(default_factory=dict)
    why: str = ""


def read(rows: Iterable[dict[str, Any]]) -> ShopIndex:
    """The index of an export's JSONL rows: products, then their variants (`__parentId`)."""
    index = ShopIndex()
    for row in rows:
        gid, parent = row.get("id"), row.get("__parentId")
        if not isinstance(gid, str):
            continue
        if parent is None and isinstance(row.get("handle"), str):
            index.handles[row["handle"]] = gid
            index.variants.setdefault(gid, [])
        elif isinstance(parent, str):
            sku = row["sku"] if isinstance(row.get("sku"), str) else ""
            index.variants.setdefault(parent, []).append((gid, sku))
            if sku:
                index.owners.setdefault(sku, set()).add(parent)
    return index


def place(
    products: list[ChannelProduct],
    remote_ids: Mapping[str, str],
    index: ShopIndex,
    slug: Callable[[str], str],
) -> dict[str, Placement]:
    placed = {p.code: _one(p, remote_ids.get(p.code), index, slug) for p in products}
    # Two products of the chunk aiming at one shop product (or one free handle) would be
    # merged into it: neither goes in bulk, each item of its own sorts it out.
    aims = Counter(_aim(p.code, placed[p.code], slug) for p in products)
    for p in products:
        if placed[p.code].why == "" and aims[_aim(p.code, placed[p.code], slug)] > 1:
            placed[p.code] = Placement(why="another product of the chunk names the same one")
    return placed


def _aim(code: str, placement: Placement, slug: Callable[[str], str]) -> str:
    return placement.remote_id or "handle:" + slug(code)


def _one(
    product: ChannelProduct, linked: str | None, index: ShopIndex, slug: Callable[[str], str]
) -> Placement:
    skus = {v.sku for v in product.variants}
    if linked is not None:  # Stockyard's product already: its variant list is Stockyard's
        return Placement(linked, _kept(index, linked, skus))
    holders = set().union(*(index.owners.get(s, set()) for s in skus))
    if len(holders) > 1:
        return Placement(why=f"its SKUs are on {len(holders)} products of the shop")
    if holders:
        (found,) = holders
        unknown = [v for v, sku in index.variants.get(found, []) if sku not in skus]
        if unknown:
            # productSet would delete them: linking such a product is add_product's job.
            return Placement(why=f"{found} also has {len(unknown)} variant(s) it does not know")
        return Placement(found, _kept(index, found, skus))
    handle = slug(product.code)
    if handle in index.handles:
        return Placement(why=f"handle {handle!r} is {index.handles[handle]}'s, without its SKUs")
    return Placement()


def _kept(index: ShopIndex, product_id: str, skus: set[str]) -> dict[str, str]:
    return {sku: v for v, sku in index.variants.get(product_id, []) if sku in skus}


# --------------------------------------------------------------------------- export


def shop_index(runner: BulkRunner, key: str) -> ShopIndex:
    """This item's export, resumed if an earlier attempt started it, taken again if stale."""
    name = f"{EXPORT}_{hashlib.sha256(key.encode()).hexdigest()[:32]}"
    own = _own_export(runner, name)
    for _ in range(EXPORTS_PER_ATTEMPT):
        if own is None or own["status"] in RESTARTABLE:
            own = _start(runner, d.BULK_EXPORT_SKUS.replace(EXPORT, name, 1))
        created = str(own["createdAt"])
        done = runner._wait(own)
        if done["status"] == "COMPLETED" and not _stale(runner, created):
            url = done.get("url")
            return read(runner._rows(str(url))) if url else ShopIndex()
        own = None
    raise TransientError(
        "shopify: the shop's products changed while they were exported; exporting again",
        retry_after=runner.pacing.poll_interval,
    )


def _own_export(runner: BulkRunner, name: str) -> dict[str, Any] | None:
    nodes = runner.api.query(d.BULK_QUERIES_RECENT)["bulkOperations"]["nodes"]
    mine = re.compile(rf"\bquery {re.escape(name)}\b")
    own = next((n for n in nodes if mine.search(n.get("query") or "")), None)
    return None if own is None else dict(own)


def _start(runner: BulkRunner, query: str) -> dict[str, Any]:
    run = runner.api.query(d.BULK_RUN_QUERY, {"query": query})["bulkOperationRunQuery"]
    errors = [e for e in (run or {}).get("userErrors") or [] if isinstance(e, dict)]
    if errors:
        raise _run_refused(errors, runner.pacing.busy_retry)
    if not run or not run.get("bulkOperation"):
        raise PermanentError("shopify: bulkOperationRunQuery answered no operation")
    return dict(run["bulkOperation"])


def _stale(runner: BulkRunner, created: str) -> bool:
    """Whether a bulk mutation ended after the export began (its products may be missing
    from it), or runs now (the chunk's own cannot start anyway: handed back)."""
    nodes = runner.api.query(d.BULK_MUTATIONS_RECENT)["bulkOperations"]["nodes"]
    if any(n["status"] in ACTIVE for n in nodes):
        raise TransientError(
            "shopify: another bulk mutation is running on the shop; one runs at a time",
            retry_after=runner.pacing.busy_retry,
        )
    began = _time(created)
    return any(n.get("completedAt") and _time(n["completedAt"]) >= began for n in nodes)


def _time(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise PermanentError(f"shopify: a bulk operation time is not ISO 8601: {text!r}") from None
