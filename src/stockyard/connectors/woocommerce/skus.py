"""SKU look-ups, many SKUs in one request: `GET /products?sku=a,b,c` (core takes a
comma-separated list and, given `sku`, searches variations too, answering them with
`type` "variation" and their `parent_id`; docs/woocommerce-notes.md, "Batching across
items"). Used by the per-product path and the bulk path alike."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from stockyard.connectors.woocommerce import paging

if TYPE_CHECKING:
    from stockyard.connectors.woocommerce.client import WooCommerceClient

LOOKUP_SKUS = 100  # SKUs are unique, so one page (per_page 100) holds every match
LOOKUP_PAGES = 3  # a plugin's looser search may answer more; past that, a problem to name
# Many web servers refuse request lines over 8 KB; a look-up's sku list stays well under.
LOOKUP_CHARS = 4000
Obj = dict[str, Any]


def lookup(api: WooCommerceClient, skus: Iterable[str]) -> dict[str, Obj]:
    """The store's products and variations holding these SKUs, by SKU."""
    found: dict[str, Obj] = {}
    for group in _groups(list(dict.fromkeys(s for s in skus if s))):
        wanted = set(group)
        rows = paging.read_all(
            api, "/products", f"look up {len(group)} SKUs", {"sku": ",".join(group)}, LOOKUP_PAGES
        )
        # Exact matches only: core also matches the whole list as one SKU.
        found |= {r["sku"]: r for r in rows if isinstance(r.get("sku"), str) and r["sku"] in wanted}
    return found


def variations_in(found: Iterable[Obj], parent: Obj) -> list[Obj] | None:
    """The parent's variations among a look-up's rows, or None when none of them came back
    (a store whose search skips variations, or variations not ours): list them instead."""
    pid = str(parent["id"])
    rows = [r for r in found if str(r.get("parent_id") or "") == pid]
    ids = {str(i) for i in parent.get("variations") or []}
    return rows if ids & {str(r.get("id")) for r in rows} else None


def _groups(skus: list[str]) -> Iterator[list[str]]:
    group: list[str] = []
    size = 0
    for sku in skus:
        if "," in sku:  # cannot be one of a list: looked up alone
            yield [sku]
            continue
        length = len(quote(sku, safe="")) + 3  # and the encoded comma
        if group and (len(group) == LOOKUP_SKUS or size + length > LOOKUP_CHARS):
            yield group
            group, size = [], 0
        group.append(sku)
        size += length
    if group:
        yield group
