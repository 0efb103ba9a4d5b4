"""Tryton to Vendure for real: how long N products take to reach the shop, and a price
change of all of them to follow, through an in-process worker; and how that time splits
between waiting on Tryton, waiting on Vendure and Stockyard itself (docs/benchmarks.md).

Run after `make systems`:  .venv/bin/python -m bench.erp_shop [--products 100]"""

from __future__ import annotations

import argparse
import asyncio
import functools
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

from systems.launch import (
    TRYTON_ADMIN,
    TRYTON_DB,
    VENDURE_ADMIN,
    TrytonItem,
    allow_local_systems,
    free_port,
    seed_tryton_items,
    start_tryton,
    start_vendure,
    tryton_client,
    vendure_admin,
)

from stockyard.accounts import Principal
from stockyard.application import Application
from stockyard.connectors.tryton.client import TrytonClient
from stockyard.connectors.vendure.client import VendureClient
from stockyard.engine import ItemFilter, Request
from stockyard.engine.worker import Worker, WorkerSettings
from stockyard.tenancy import Tenancy

ADMIN = Principal("bench", platform_admin=True)
WAITED: dict[str, float] = defaultdict(float)


def _timed(system: str, method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            WAITED[system] += time.perf_counter() - started

    return wrapper


@contextmanager
def waits_measured() -> Iterator[None]:
    """Every request to Tryton and Vendure counted, by wrapping their clients' one way
    out."""
    originals = (TrytonClient.model, VendureClient._send)
    TrytonClient.model = _timed("tryton", TrytonClient.model)  # type: ignore[method-assign]
    VendureClient._send = _timed("vendure", VendureClient._send)  # type: ignore[method-assign]
    try:
        yield
    finally:
        TrytonClient.model, VendureClient._send = originals  # type: ignore[method-assign]


def _phase(name: str, run: Callable[[], None], n: int) -> None:
    WAITED.clear()
    started = time.perf_counter()
    run()
    wall = time.perf_counter() - started
    own = max(wall - WAITED["tryton"] - WAITED["vendure"], 0.0)
    print(
        f"{name}: {n} products in {wall:.1f} s ({n / wall:.1f}/s); waiting on Tryton"
        f" {WAITED['tryton'] / wall:.0%}, on Vendure {WAITED['vendure'] / wall:.0%},"
        f" Stockyard's own {own / wall:.0%}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--products", type=int, default=100)
    n = parser.parse_args().products
    allow_local_systems()
    folder = Path(tempfile.mkdtemp(prefix="stockyard-bench-erp-"))
    tryton = start_tryton(free_port(), folder / "tryton")
    vendure = start_vendure(free_port(), folder / "vendure")
    try:
        erp = tryton_client(tryton.url)
        items = tuple(
            TrytonItem(f"P{i:04d}", f"Product {i}", Decimal("10.00"), ((f"P{i:04d}", 5),))
            for i in range(n)
        )
        seed_tryton_items(erp, items)
        application = Application.init(f"sqlite:///{folder / 'stockyard.db'}")
        queue, service = application.queue, application.service
        client = service.create_client(ADMIN, "Bench")
        settings = {"url": tryton.url, "database": TRYTON_DB, "username": TRYTON_ADMIN[0]}
        source = service.create_connection(
            ADMIN,
            client.id,
            "source",
            "tryton",
            "Tryton",
            settings,
            {"password": TRYTON_ADMIN[1]},
        ).id
        service.create_connection(
            ADMIN,
            client.id,
            "channel",
            "vendure",
            "Vendure",
            {"url": f"{vendure.url}/admin-api", "username": VENDURE_ADMIN[0]},
            {"password": VENDURE_ADMIN[1]},
        )
        handlers = application.handlers

        def pull() -> None:
            queue.enqueue(client.id, [Request("pull_products", {}, source)])
            worker = Worker(
                queue,
                handlers,
                WorkerSettings(poll_interval=0.01),
                connection=Tenancy(queue.db).connection,
            )
            asyncio.run(worker.run(stop_when_idle=True))

        with waits_measured():
            _phase("new products", pull, n)
            templates = erp.model("product.template", "search", [], 0, None, None)
            erp.model("product.template", "write", templates, {"list_price": Decimal("12")})
            _phase("a new price for each", pull, n)
        shop = vendure_admin(vendure.url).query(
            "{ productVariants(options: {take: 1000}) { items { price } } }"
        )["productVariants"]["items"]
        assert sorted({v["price"] for v in shop}) == [1200], "Vendure did not converge"
        failed = queue.count(ItemFilter(client.id, statuses=("failed",)))
        assert failed == 0, f"{failed} items failed"
    finally:
        tryton.stop()
        vendure.stop()


if __name__ == "__main__":
    main()
