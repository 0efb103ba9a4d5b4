"""Whole products written many at a time (issue 19): `bulk_products` for WooCommerce, which
the flows call for init/sync runs of 1,000 products and more (stockyard.flows.bulk).

WooCommerce has no bulk job: what it has are batch endpoints capped at 100 items (create +
update + delete together) and no idempotency keys, SKUs being the only identity. So a chunk
goes as:

1. a look-up of the products' own SKUs, up to 100 in one `GET /products?sku=a,b,c` (core
   takes a comma-separated list and, given `sku`, searches variations too);
2. the parents through `POST /products/batch`: a found SKU is updated, a new one created
   (a chunk run again therefore creates nothing twice);
3. per variable parent, its variations through `POST /products/<pid>/variations/batch`,
   by the per-product path's own code (`WooCommerceConnector._upsert`). For a parent that
   already existed, its variations are first found by their SKUs (the same look-up), or by
   listing the parent's variations when the store's look-up does not return them.

The bodies are the per-product path's (`_product_fields`, `_variant_fields`, `_attributes`):
one mapping. A product the store refuses (a per-item `{id, error}` answer, a 400 narrowed
down to it by halving the batch, a bad price found before anything is sent) gets a failed
ProductResult and the flow queues it as its own item; the others go on. A transient error
(429, 5xx, timeout) fails the whole call: the item is retried and the run, found by SKU,
updates what the first one made. Calls for N new variable products: ⌈N/100⌉ look-ups +
⌈N/100⌉ parent batches + N variation batches (docs/woocommerce-notes.md, "Batching across
items").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from stockyard.connectors.base import ChannelProduct, ProductResult
from stockyard.connectors.woocommerce import paging
from stockyard.connectors.woocommerce.client import WooCommerceClient, WooCommerceRefused
from stockyard.connectors.woocommerce.skus import lookup, variations_in
from stockyard.errors import HandlerError, PermanentError

if TYPE_CHECKING:
    from stockyard.connectors.woocommerce import WooCommerceConnector

SPLIT = frozenset({400, 413})  # a batch refused whole: halve it to find the item (or the cap)
Obj = dict[str, Any]


@dataclass
class _Plan:
    product: ChannelProduct
    sku: str  # the product's own SKU (a simple product's is its variant's)
    variable: bool
    body: Obj
    row: Obj | None = None  # the store's product holding `sku`, if any


def bulk_products(
    connector: WooCommerceConnector,
    products: list[ChannelProduct],
    remote_ids: Mapping[str, str],
    key: str,
) -> list[ProductResult]:
    done: dict[int, ProductResult] = {}
    plans: dict[int, _Plan] = {}
    for n, product in enumerate(products):
        try:
            plans[n] = _plan(connector, product)
        except PermanentError as exc:  # e.g. a bad price: this product alone
            done[n] = ProductResult(product.code, error=exc)
    found = lookup(connector.api, [p.sku for p in plans.values()])
    for n, plan in list(plans.items()):
        plan.row = found.get(plan.sku)
        problem = _misplaced(plan, remote_ids.get(plan.product.code))
        if problem:
            done[n] = ProductResult(plan.product.code, error=PermanentError(problem))
            del plans[n]
        elif plan.variable:
            existing = (plan.row or {}).get("attributes") or []
            plan.body["attributes"] = connector._attributes(plan.product.variants, existing)
    written = _write_parents(connector, plans)
    current = _current_variations(connector, [plans[n] for n, row in written.items() if row])
    for n, plan in plans.items():
        row = written[n]
        if isinstance(row, HandlerError):
            done[n] = ProductResult(plan.product.code, error=row)
        elif not plan.variable:
            rid = str(row["id"])
            done[n] = ProductResult(plan.product.code, remote_id=rid, variants={plan.sku: rid})
        else:
            done[n] = _variations(connector, plan, row, current.get(str(row["id"]), []))
    return [done[n] for n in range(len(products))]


def _plan(connector: WooCommerceConnector, product: ChannelProduct) -> _Plan:
    if not product.variants:
        raise PermanentError(f"woocommerce: product {product.code} has no variants")
    fields = connector._product_fields(product)
    if connector._simple(product):
        (v,) = product.variants
        body = fields | connector._variant_fields(v) | {"type": "simple", "sku": v.sku}
        return _Plan(product, v.sku, False, body)
    for v in product.variants:  # refused before its parent is made, not after
        connector._variant_fields(v)
    sku = connector._parent_sku(product)
    return _Plan(product, sku, True, fields | {"type": "variable", "sku": sku})


def _misplaced(plan: _Plan, remote_id: str | None) -> str | None:
    """Why this product cannot be written here, sent alone instead (its own item)."""
    row, code, sku = plan.row, plan.product.code, plan.sku
    if row is None:
        if remote_id:
            return (
                f"woocommerce: product {code} is linked to product {remote_id}, but no product"
                f" holds its SKU {sku}: written by its own item"
            )
        return None
    if row.get("parent_id"):
        return (
            f"woocommerce: product {code}: SKU {sku} is held by a variation of product"
            f" {row['parent_id']}"
        )
    if remote_id and remote_id != str(row["id"]):
        return (
            f"woocommerce: product {code} is linked to product {remote_id}, but its SKU {sku}"
            f" is held by product {row['id']}"
        )
    wanted = "variable" if plan.variable else "simple"
    if row.get("type") != wanted:
        return (
            f"woocommerce: product {code}: product {row['id']} (SKU {sku}) is"
            f" {row.get('type')}, this product needs it {wanted}"
        )
    return None


# ------------------------------------------------------------------------------ parents


def _write_parents(
    connector: WooCommerceConnector, plans: dict[int, _Plan]
) -> dict[int, Obj | HandlerError]:
    items: list[tuple[int, str, Obj]] = [
        (n, "update", p.body | {"id": int(p.row["id"])}) if p.row else (n, "create", p.body)
        for n, p in plans.items()
    ]
    out: dict[int, Obj | HandlerError] = {}
    size = connector.config.batch_size
    for start in range(0, len(items), size):
        out |= send_batch(connector.api, "/products/batch", "products", items[start : start + size])
    return out


def send_batch(
    api: WooCommerceClient, path: str, what: str, items: list[tuple[int, str, Obj]]
) -> dict[int, Obj | HandlerError]:
    """One batch of (key, action, body); each key's answer row or error, by position. A
    batch refused whole (413: the store's cap is lower; 400: one item is bad) is halved
    down to the item, so a bad one fails alone."""
    groups = {a: [(k, b) for k, act, b in items if act == a] for a in ("create", "update")}
    body = {a: [b for _, b in group] for a, group in groups.items() if group}
    try:
        answer, _ = api.call("POST", path, f"{what} batch", body)
    except WooCommerceRefused as exc:
        if exc.status not in SPLIT:
            raise
        if len(items) == 1:
            return {items[0][0]: exc}
        half = len(items) // 2
        return send_batch(api, path, what, items[:half]) | send_batch(api, path, what, items[half:])
    out: dict[int, Obj | HandlerError] = {}
    for action, group in groups.items():
        try:
            rows = paging.batch_rows(answer, action, len(group), f"{what} batch")
        except PermanentError as exc:  # says nothing of these items: they fail, not the chunk
            out |= {k: exc for k, _ in group}
            continue
        for (k, sent), row in zip(group, rows, strict=True):
            said = f"{action} {what[:-1]} {sent.get('sku', '')}"
            out[k] = paging.batch_row(row, said, api.quote)
    return out


# --------------------------------------------------------------------------- variations


def _current_variations(
    connector: WooCommerceConnector, plans: list[_Plan]
) -> dict[str, list[Obj]]:
    """The variations existing parents hold, by parent id: found by our SKUs in one look-up
    where the store's product search returns variations, else listed per parent."""
    existing = [p for p in plans if p.variable and p.row and p.row.get("variations")]
    if not existing:
        return {}
    found = lookup(connector.api, [v.sku for p in existing for v in p.product.variants])
    by_parent: dict[str, list[Obj]] = {}
    for plan in existing:
        assert plan.row is not None
        pid = str(plan.row["id"])
        rows = variations_in(found.values(), plan.row)
        by_parent[pid] = connector._variations(pid) if rows is None else rows
    return by_parent


def _variations(
    connector: WooCommerceConnector, plan: _Plan, parent: Obj, current: list[Obj]
) -> ProductResult:
    code, pid = plan.product.code, str(parent["id"])
    try:
        results = connector._upsert(parent, plan.product.variants, current)
    except PermanentError as exc:  # this parent's batch refused whole: this product alone
        return ProductResult(code, remote_id=pid, error=exc)
    failed = next((r.error for r in results if r.error is not None), None)
    if failed is not None:
        # The parent stays; its own item finds it by SKU and completes it.
        return ProductResult(code, remote_id=pid, error=failed)
    return ProductResult(code, remote_id=pid, variants={r.key: r.remote_id or "" for r in results})
