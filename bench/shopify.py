"""Products into Shopify at the pace its cost bucket allows (issue 18): N products of V
variants each, sent by a `stockyard worker` process to the Shopify double (Shopify's own
Admin schema, a Standard plan's bucket: 1,000 points, 100 points/s), against the floor
the bucket allows: (points spent - the first 1,000 of burst) / 100 points/s.

The products come from a `demo` source (sync_products, 50 a batch): what is measured is the
channel's side, not an ERP's. The double runs in this process; the worker is a separate
process reaching it over HTTP, as in production. Needs the schema
(bash scripts/install-shopify-schema.sh).

    .venv/bin/python -m bench.shopify [--products 1000] [--variants 3] [--workers 1]
    .venv/bin/python -m bench.shopify --bulk --products 10000

With --bulk the catalog holds the products before the channel exists, and what is timed is
the new channel's init_channel: from 1,000 accepted products on (stockyard.flows.bulk) it
goes through bulk operations, 1,000 products each, instead of an add_product per product.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from typing import Any

from systems.launch import allow_local_systems
from tests.support.shopify_double import TOKEN, Served, ShopifyDouble, serve

from bench._channels import Bench, products
from stockyard.engine import Request

BATCH = 50  # products per sync_products item


def spent(served: Served, since: int = 0) -> tuple[int, int, int]:
    """(points charged, THROTTLED answers, requests) since the `since`-th request."""
    points = throttles = 0
    received = served.double.received[since:]
    for r in received:
        answer = r.response if isinstance(r.response, dict) else {}
        points += _charged(answer)
        codes = [(e.get("extensions") or {}).get("code") for e in answer.get("errors") or []]
        throttles += "THROTTLED" in codes
    return points, throttles, len(received)


def report(served: Served, n: int, variants: int, wall: float) -> None:
    bucket = served.double.bucket
    points, throttles, requests = spent(served)
    floor = max(0.0, points - bucket.capacity) / bucket.restore_rate
    by_field: Counter[str] = Counter()
    points_by_field: Counter[str] = Counter()
    for r in served.double.received:
        name = _root_field(r.query or "")
        by_field[name] += 1
        points_by_field[name] += _charged(r.response)
    against = f"{wall / floor:.2f}x the floor" if floor else "no floor: within the first burst"
    print(
        f"{n} products x {variants} variants: {wall:.1f} s wall, {requests} requests,"
        f" {points} points spent ({points / n:.1f} per product), {throttles} THROTTLED;"
        f" floor {floor:.1f} s at {bucket.restore_rate:g} points/s after the"
        f" {bucket.capacity:g}-point burst: {against}"
    )
    print(
        "requests (points) by root field: "
        + ", ".join(f"{k} {v} ({points_by_field[k]})" for k, v in by_field.most_common())
    )


def _charged(answer: Any) -> int:
    cost = ((answer or {}).get("extensions") or {}).get("cost") or {}
    return int(cost.get("actualQueryCost") or 0)


def _root_field(query: str) -> str:
    body = query.split("{", 1)[1] if "{" in query else query
    return body.strip().split("(")[0].split("{")[0].split()[0] if body.strip() else "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--products", type=int, default=100)
    parser.add_argument("--variants", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=7200)
    parser.add_argument(
        "--bulk",
        action="store_true",
        help="the catalog holds the products already; time a new channel's init_channel"
        " (bulk operations from 1,000 products on)",
    )
    args = parser.parse_args()
    allow_local_systems()
    bench = Bench.init("shopify")
    double = ShopifyDouble()  # a Standard plan's bucket, on the real clock
    location = str(double.shop.add_location("Warehouse")["id"])
    catalog = products(args.products, args.variants)
    with serve(double) as served:
        if args.bulk:
            bench.hold(catalog)
        shop = bench.channel(
            "shopify",
            "Shopify",
            {
                "shop": "stockyard-bench.myshopify.com",
                "base_url": served.url.split("/admin/api/")[0],
                "location_id": location,
            },
            {"access_token": TOKEN},
        )
        with bench.workers(args.workers):
            if args.bulk:
                wall = bench.time_init(shop, args.timeout)
            else:
                wall = _time_syncs(bench, shop, catalog, args.timeout)
        report(served, args.products, args.variants, wall)
        if args.bulk:
            print(f"bulk operations: {len(double.bulk.operations)}")  # type: ignore[attr-defined]
        made = sum(1 for v in double.shop.of("ProductVariant") if v["sku"])
        failed = bench.failed()
        assert made == args.products * args.variants, f"{made} variants in the double"
        assert failed == 0, f"{failed} items failed (log: {bench.log})"


def _time_syncs(bench: Bench, shop: int, catalog: list[dict[str, Any]], timeout: float) -> float:
    """The channel made (its init, untimed), then seconds from the catalog's
    sync_products batches to an idle queue: the pace of products arriving one by one."""
    bench.queue.enqueue(bench.client_id, [Request("init_channel", {}, shop)])
    bench.wait_idle(60)
    batches = [catalog[i : i + BATCH] for i in range(0, len(catalog), BATCH)]
    started = time.perf_counter()
    requests = [Request("sync_products", {"products": b}, bench.source_id) for b in batches]
    bench.queue.enqueue(bench.client_id, requests)
    bench.wait_idle(timeout)
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
