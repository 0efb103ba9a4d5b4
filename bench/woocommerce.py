"""Products into WooCommerce through its bulk path (issue 19): N products of V variants
held by the catalog, a new WooCommerce channel's init_channel run by a `stockyard worker`
process into the WooCommerce double over HTTP (every request checked against the
transcribed wc/v3 contract); wall time and calls made by kind, against the floor the batch
caps allow: ⌈N/100⌉ parent batches + one variations batch per variable product (WooCommerce
takes a product's variations only through its own parent's batch, and only once the
parent exists), plus the SKU look-ups (⌈N/100⌉) that make a repeated chunk harmless.

From 1,000 accepted products on, init_channel goes through bulk_products items of 100
(stockyard.flows.bulk, WooCommerceConnector.bulk_chunk: about 102 sequential calls an
item, so that one stays within BULK_CALL_SECONDS on a real WordPress); below that, one
add_product item per product (4 calls each for a new variable product: find_product's
one look-up of all its SKUs, create_product's look-up, the create, the variations
batch). The longest bulk_products item is reported: on the double it is the flow's own
cost, a real store adds 0.3-1 s a call.

    .venv/bin/python -m bench.woocommerce [--products 1000] [--variants 3]
"""

from __future__ import annotations

import argparse
import math
from collections import Counter
from typing import Any

from systems.launch import allow_local_systems
from tests.support.woocommerce_double import CONSUMER_KEY, CONSUMER_SECRET, serve
from tests.support.woocommerce_double_bulk import WooCommerceBulkDouble, kind, no_refusals

from bench._channels import Bench, size
from stockyard.engine import ItemFilter, Queue

CAP = 100  # WooCommerce's batch cap (create + update + delete)


def products(n: int, variants: int) -> list[dict[str, Any]]:
    return [
        {
            "code": f"P{i:05d}",
            "title": f"Product {i}",
            "variants": [
                {
                    "sku": f"P{i:05d}-{size(v)}",
                    "price": "10.00",
                    "stock": {"main": 5},
                    "options": {"Size": size(v)},
                }
                for v in range(variants)
            ],
        }
        for i in range(n)
    ]


def floor(n: int, variants: int) -> int:
    """Write calls the caps allow: parent batches of 100 + a variations batch per 100
    variants of each parent (every product here has options: all are variable)."""
    return math.ceil(n / CAP) + n * math.ceil(variants / CAP)


def report(double: WooCommerceBulkDouble, n: int, variants: int, wall: float) -> None:
    kinds: Counter[str] = Counter(kind(r) for r in double.received)
    calls = sum(kinds.values())
    lookups = kinds["GET /products"]
    least = floor(n, variants)
    writes = calls - lookups
    print(
        f"{n} products x {variants} variants: {wall:.1f} s wall, {calls} calls"
        f" ({calls / n:.2f} per product); floor {least} write calls + {math.ceil(n / CAP)}"
        f" look-ups: writes {writes} = {writes / least:.2f}x the floor,"
        f" all calls {calls / (least + math.ceil(n / CAP)):.2f}x;"
        " one add_product per new product makes 4 (find_product's look-up of its SKUs,"
        " create_product's look-up, create, variations batch)"
    )
    print("calls by kind: " + ", ".join(f"{k} {v}" for k, v in kinds.most_common()))


def report_items(queue: Queue, client_id: int) -> None:
    flt = ItemFilter(client_id, instructions=("bulk_products",))
    items = queue.list_items(flt, limit=1000)
    spans = [i.finished_at - i.started_at for i in items if i.finished_at and i.started_at]
    if spans:
        print(f"{len(items)} bulk_products items, the longest {max(spans):.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--products", type=int, default=100)
    parser.add_argument("--variants", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=3600)
    args = parser.parse_args()
    allow_local_systems()
    bench = Bench.init("woocommerce")
    double = WooCommerceBulkDouble()
    with serve(double) as served:
        bench.hold(products(args.products, args.variants))
        shop = bench.channel(
            "woocommerce",
            "WooCommerce",
            {"url": served.url},
            {"consumer_key": CONSUMER_KEY, "consumer_secret": CONSUMER_SECRET},
        )
        with bench.workers():
            wall = bench.time_init(shop, args.timeout)
        report(double, args.products, args.variants, wall)
        report_items(bench.queue, bench.client_id)
        made = sum(1 for v in double.variations.values() if v["sku"])
        failed = bench.failed()
        no_refusals(double)
        assert made == args.products * args.variants, f"{made} variations in the double"
        assert failed == 0, f"{failed} items failed (log: {bench.log})"


if __name__ == "__main__":
    main()
