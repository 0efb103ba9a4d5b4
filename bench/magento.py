"""A large init into Magento through its asynchronous bulk API (issue 19): N products of V
variants in the catalog, a new Magento channel's init_channel run by a `stockyard worker`
process against the Magento double (every request checked against Adobe's OpenAPI
document, every bulk element as its synchronous request; operations run by the double's
consumer as soon as their status is read). From 1,000 accepted products on
(stockyard.flows.bulk) a chunk of 1,000 is one bulk_products item.

Reported: wall time from the init to an idle queue, requests by kind, bulk operations run,
against the floor of requests the caps allow per chunk of 1,000 products:
  bulks: ceil(children / 5,000) + 2 (parents, stock), each needing >= 1 status read and
  one look for an open bulk of the same elements (its resume);
  whether each variant's SKU is in the store already (linked or not: an existing product
  is updated, never saved whole): ceil(children / 300) reads before the first bulk;
  children's ids and whether their parents exist: ceil((children + products) / 300) reads
  (the page cap; SKUs of <= 5,000 characters);
  1 attribute read per option a worker's connector has not read yet.
Needs the document (bash scripts/install-magento-openapi.sh).

    .venv/bin/python -m bench.magento [--products 1000] [--variants 3] [--workers 1]
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from systems.launch import allow_local_systems
from tests.support import magento_contract as contract
from tests.support.magento_double import TOKEN, MagentoDouble, Served, serve

from stockyard.accounts import Principal
from stockyard.application import Application
from stockyard.catalog.models import Product
from stockyard.catalog.store import CatalogStore
from stockyard.connectors.magento import MagentoConnector
from stockyard.engine import ItemFilter, Queue, Request

ADMIN = Principal("bench", platform_admin=True)
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


def labels(variants: int) -> list[str]:
    return [f"{SIZES[v % len(SIZES)]}{v // len(SIZES) or ''}" for v in range(variants)]


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


def kind(method: str, path: str) -> str:
    """The document's path template of a request (`GET /V1/products/{sku}`), async and
    bulk prefixes kept."""
    route = contract.split_route(path)
    prefix = "/async/bulk" if route.bulk else "/async" if route.asynchronous else ""
    return f"{method} {prefix}{contract.find_operation(method, route.path)[0]}"


def floor(n: int, variants: int) -> int:
    """Requests the caps allow at the least (module docstring)."""
    total = 1  # the one option's attribute, read once by the one worker's connector
    for start in range(0, n, MagentoConnector.bulk_chunk):
        chunk = min(MagentoConnector.bulk_chunk, n - start)
        children = chunk * variants
        bulks = math.ceil(children / 5000) + 2
        total += 3 * bulks + math.ceil(children / 300) + math.ceil((children + chunk) / 300)
    return total


def report(served: Served, n: int, variants: int, wall: float) -> None:
    received = served.double.received
    by_kind = Counter(kind(r.method, r.path) for r in received)
    least = floor(n, variants)
    ops = len(served.double.operations())
    print(
        f"{n} products x {variants} variants: {wall:.1f} s wall, {len(received)} requests"
        f" (the bulk path's floor {least}: {len(received) / least:.2f}x),"
        f" {served.double.bulk_requests} bulks"
        f" of {ops} operations, {ops / wall:.0f} operations/s"
    )
    print("requests by kind: " + ", ".join(f"{k} {v}" for k, v in by_kind.most_common()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--products", type=int, default=1000)
    parser.add_argument("--variants", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=3600)
    args = parser.parse_args()
    allow_local_systems()
    folder = Path(tempfile.mkdtemp(prefix="stockyard-bench-magento-"))
    url = f"sqlite:///{folder / 'stockyard.db'}"
    application = Application.init(url)
    queue, service = application.queue, application.service
    client = service.create_client(ADMIN, "Bench")
    double = MagentoDouble()
    double.add_attribute("size", 141, labels(args.variants))
    catalog = products(args.products, args.variants)
    with serve(double) as served:
        source = service.create_connection(ADMIN, client.id, "source", "demo", "Source", {}, {}).id
        store = CatalogStore(queue.db)
        for record in catalog:
            store.upsert_product(client.id, source, Product.model_validate(record))
        shop = service.create_connection(
            ADMIN,
            client.id,
            "channel",
            "magento",
            "Magento",
            {"url": served.url},
            {"access_token": TOKEN},
        ).id
        log = folder / "worker.log"
        workers = [_start_worker(url, log) for _ in range(args.workers)]
        try:
            started = time.perf_counter()
            queue.enqueue(client.id, [Request("init_channel", {}, shop)])
            _wait_idle(queue, client.id, args.timeout)
            wall = time.perf_counter() - started
        finally:
            for w in workers:
                w.terminate()
                w.wait(30)
        report(served, args.products, args.variants, wall)
        made = sum(1 for p in double.products.values() if p["type_id"] == "simple")
        failed = queue.count(ItemFilter(client.id, statuses=("failed",)))
        refused = [r.violation for r in double.received if r.violation]
        assert not refused and not double.answer_faults, (refused[:3], double.answer_faults[:3])
        assert made == args.products * args.variants, f"{made} variants in the double"
        assert failed == 0, f"{failed} items failed (log: {log})"


if __name__ == "__main__":
    main()
