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
from collections import Counter

from systems.launch import allow_local_systems
from tests.support import magento_contract as contract
from tests.support.magento_double import TOKEN, MagentoDouble, Served, serve

from bench._channels import Bench, products, size
from stockyard.connectors.magento import MagentoConnector


def labels(variants: int) -> list[str]:
    return [size(v) for v in range(variants)]


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
    bench = Bench.init("magento")
    double = MagentoDouble()
    double.add_attribute("size", 141, labels(args.variants))
    catalog = products(args.products, args.variants)
    with serve(double) as served:
        bench.hold(catalog)
        shop = bench.channel("magento", "Magento", {"url": served.url}, {"access_token": TOKEN})
        with bench.workers(args.workers):
            wall = bench.time_init(shop, args.timeout)
        report(served, args.products, args.variants, wall)
        made = sum(1 for p in double.products.values() if p["type_id"] == "simple")
        failed = bench.failed()
        refused = [r.violation for r in double.received if r.violation]
        assert not refused and not double.answer_faults, (refused[:3], double.answer_faults[:3])
        assert made == args.products * args.variants, f"{made} variants in the double"
        assert failed == 0, f"{failed} items failed (log: {bench.log})"


if __name__ == "__main__":
    main()
