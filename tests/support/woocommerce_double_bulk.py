"""The WooCommerce double as the bulk path needs it (issue 19): a `GET /products?sku=a,b`
that also answers variations, calls counted by kind, a fault on the n-th request of a kind.

`sku_finds_variations` models WooCommerce core: given `sku`, the wc/v3 products controller
searches products and variations (`prepare_objects_query` sets `post_type` to product and
product_variation; plugins/woocommerce/includes/rest-api/Controllers/Version3/
class-wc-rest-products-controller.php), and answers a variation as the products controller
renders it: `type` "variation", its `parent_id`, one `option` per attribute. Those rows are
checked against the `variation` read contract (the `product` one describes parents). Set
it False to model a store whose search skips variations (the connector then lists them).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from stockyard.connectors.woocommerce import WooCommerceConnector
from tests.support.woocommerce_double import (
    CONSUMER_KEY,
    CONSUMER_SECRET,
    Received,
    Served,
    WooCommerceDouble,
)

_ID = re.compile(r"/\d+")


def kind(r: Received) -> str:
    """The request as "METHOD /path", ids as <id> (POST /products/<id>/variations/batch)."""
    return f"{r.method} {_ID.sub('/<id>', r.path)}"


@dataclass
class WooCommerceBulkDouble(WooCommerceDouble):
    sku_finds_variations: bool = True
    _fail_on: dict[str, tuple[int, int]] = field(default_factory=dict)  # kind -> (left, status)

    def kinds(self) -> Counter[str]:
        """Requests received, by kind."""
        return Counter(kind(r) for r in self.received)

    def fail_on(self, of_kind: str, nth: int, status: int) -> None:
        """Answer the `nth` request of `of_kind` from now with `status` (nothing applied)."""
        self._fail_on[of_kind] = (nth, status)

    def _answer(self, seen: Received, ids: dict[str, int]) -> Any:
        armed = self._fail_on.get(kind(seen))
        if armed is not None:
            left, status = armed
            self._fail_on[kind(seen)] = (left - 1, status)
            if left == 1:
                del self._fail_on[kind(seen)]
                self.fail_next(status)
        return super()._answer(seen, ids)

    def _route(self, seen: Received, ids: dict[str, int]) -> tuple[Any, dict[str, str]]:
        q = seen.query
        if not (
            self.sku_finds_variations
            and seen.method == "GET"
            and seen.path == "/products"
            and "sku" in q
        ):
            return super()._route(seen, ids)
        self._check("product_list_query", q)
        wanted = set(q["sku"].split(",")) | {q["sku"]}
        rows = [r for r in self.products.values() if r["status"] != "trash" and r["sku"] in wanted]
        rows += [v for v in self.variations.values() if v["sku"] in wanted]
        shown, headers = self._page(seen.path, rows, q, "product")
        for out in shown:
            variation = self.variations.get(out["id"])
            if variation is not None:
                out |= {"type": "variation", "parent_id": variation["parent_id"]}
        return shown, headers


def no_refusals(double: WooCommerceDouble) -> None:
    """The contract refused nothing sent, the double's answers kept to it, keys right."""
    assert double.refused == []
    assert double.broken == []
    assert all(r.authorized for r in double.received)


def woo_settings(s: Served) -> dict[str, Any]:
    """A connection's settings for the served double, with its consumer key."""
    return {"url": s.url, "consumer_key": CONSUMER_KEY, "consumer_secret": CONSUMER_SECRET}


@contextmanager
def connected(s: Served, **settings: Any) -> Iterator[WooCommerceConnector]:
    """A connector to the served double; once done with it, whatever the test did, the
    contract refused nothing it sent and every request carried the key."""
    c = WooCommerceConnector(woo_settings(s) | settings)
    yield c
    c.close()
    no_refusals(s.double)
