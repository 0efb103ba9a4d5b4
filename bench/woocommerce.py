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
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from systems.launch import allow_local_systems
from tests.support.woocommerce_double import CONSUMER_KEY, CONSUMER_SECRET, serve
from tests.support.woocommerce_double_bulk import WooCommerceBulkDouble, kind, no_refusals

from stockyard.accounts import Principal
from stockyard.application import Application
from stockyard.catalog.models import Product
from stockyard.catalog.store import CatalogStore
from stockyard.engine import ItemFilter, Queue, Request

ADMIN = Principal("bench", platform_admin=True)
SIZES = ("S", "M", "L", "XL", "XXL")
CAP = 100  # WooCommerce's batch cap (create + update + delete)


def products(n: int, variants: int) -> list[dict[str, Any]]:
    return [
        {
            "code": f"P{i:05d}",
            "title": f"Product {i}",
            "variants": [
                {
                    "sku": f"P{i:05d}-{_size(v)}",
                    "price": "10.00",
                    "stock": {"main": 5},
                    "options": {"Size": _size(v)},
                }
                for v in range(variants)
            ],
        }
        for i in range(n)
    ]


def _size(v: int) -> str:
    return f"{SIZES[v % len(SIZES)]}{v // len(SIZES) or ''}"


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
    folder = Path(tempfile.mkdtemp(prefix="stockyard-bench-woocommerce-"))
    url = f"sqlite:///{folder / 'stockyard.db'}"
    application = Application.init(url)
    queue, service = application.queue, application.service
    client = service.create_client(ADMIN, "Bench")
    double = WooCommerceBulkDouble()
    with serve(double) as served:
        source = service.create_connection(ADMIN, client.id, "source", "demo", "Source", {}, {}).id
        store = CatalogStore(queue.db)
        for record in products(args.products, args.variants):
            store.upsert_product(client.id, source, Product.model_validate(record))
        shop = service.create_connection(
            ADMIN,
            client.id,
            "channel",
            "woocommerce",
            "WooCommerce",
            {"url": served.url},
            {"consumer_key": CONSUMER_KEY, "consumer_secret": CONSUMER_SECRET},
        ).id
        worker = _start_worker(url, folder / "worker.log")
        try:
            started = time.perf_counter()
            queue.enqueue(client.id, [Request("init_channel", {}, shop)])
            _wait_idle(queue, client.id, args.timeout)
            wall = time.perf_counter() - started
        finally:
            worker.terminate()
            worker.wait(30)
        report(double, args.products, args.variants, wall)
        report_items(queue, client.id)
        made = sum(1 for v in double.variations.values() if v["sku"])
        failed = queue.count(ItemFilter(client.id, statuses=("failed",)))
        no_refusals(double)
        assert made == args.products * args.variants, f"{made} variations in the double"
        assert failed == 0, f"{failed} items failed (log: {folder / 'worker.log'})"


if __name__ == "__main__":
    main()
