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
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from systems.launch import allow_local_systems
from tests.support.shopify_double import TOKEN, Served, ShopifyDouble, serve

from stockyard.accounts import Principal
from stockyard.application import Application
from stockyard.catalog.models import Product
from stockyard.catalog.store import CatalogStore
from stockyard.engine import ItemFilter, Queue, Request

ADMIN = Principal("bench", platform_admin=True)
BATCH = 50  # products per sync_products item
SIZES = ("S", "M", "L", "XL", "XXL")


def products(n: int, variants: int) -> list[dict[str, Any]]:
    return [
        {
            "code": f"P{i:05d}",
            "title": f"Product {i}",
            "options": ["Size"],
            "variants": [
                {
                    "sku": f"P{i:05d}-{SIZES[v % len(SIZES)]}{v // len(SIZES) or ''}",
                    "price": "10.00",
                    "quantity": 5,
                    "options": {"Size": f"{SIZES[v % len(SIZES)]}{v // len(SIZES) or ''}"},
                }
                for v in range(variants)
            ],
        }
        for i in range(n)
    ]


def _start_worker(url: str, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "stockyard", "worker", "--poll", "0.1", "--db", url],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        env={**os.environ, "STOCKYARD_LOG": "WARNING"},
    )


def _wait_idle(queue: Queue, client_id: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not queue.count(ItemFilter(client_id, statuses=("queued", "running"))):
            return
        time.sleep(0.5)
    raise SystemExit(f"the queue did not drain within {timeout:.0f} s")


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
    folder = Path(tempfile.mkdtemp(prefix="stockyard-bench-shopify-"))
    url = f"sqlite:///{folder / 'stockyard.db'}"
    application = Application.init(url)
    queue, service = application.queue, application.service
    client = service.create_client(ADMIN, "Bench")
    double = ShopifyDouble()  # a Standard plan's bucket, on the real clock
    location = str(double.shop.add_location("Warehouse")["id"])
    catalog = products(args.products, args.variants)
    with serve(double) as served:
        source = service.create_connection(ADMIN, client.id, "source", "demo", "Source", {}, {}).id
        if args.bulk:
            store = CatalogStore(queue.db)
            for record in catalog:
                store.upsert_product(client.id, source, Product.model_validate(record))
        shop = service.create_connection(
            ADMIN,
            client.id,
            "channel",
            "shopify",
            "Shopify",
            {
                "shop": "stockyard-bench.myshopify.com",
                "base_url": served.url.split("/admin/api/")[0],
                "location_id": location,
            },
            {"access_token": TOKEN},
        ).id
        workers = [_start_worker(url, folder / "worker.log") for _ in range(args.workers)]
        try:
            if args.bulk:
                started = time.perf_counter()
                queue.enqueue(client.id, [Request("init_channel", {}, shop)])
            else:
                queue.enqueue(client.id, [Request("init_channel", {}, shop)])
                _wait_idle(queue, client.id, 60)
                batches = [catalog[i : i + BATCH] for i in range(0, len(catalog), BATCH)]
                started = time.perf_counter()
                requests = [Request("sync_products", {"products": b}, source) for b in batches]
                queue.enqueue(client.id, requests)
            _wait_idle(queue, client.id, args.timeout)
            wall = time.perf_counter() - started
        finally:
            for w in workers:
                w.terminate()
                w.wait(30)
        report(served, args.products, args.variants, wall)
        if args.bulk:
            print(f"bulk operations: {len(double.bulk.operations)}")  # type: ignore[attr-defined]
        made = sum(1 for v in double.shop.of("ProductVariant") if v["sku"])
        failed = queue.count(ItemFilter(client.id, statuses=("failed",)))
        assert made == args.products * args.variants, f"{made} variants in the double"
        assert failed == 0, f"{failed} items failed (log: {folder / 'worker.log'})"


if __name__ == "__main__":
    main()
