"""What the channel benchmarks (bench.shopify, bench.woocommerce, bench.magento) share: a
fresh Stockyard in a temporary folder with one client and a `demo` source, a catalog of
N generated products, `stockyard worker` processes reaching the double over HTTP as in
production, and the wait until the queue is idle. What each measures and reports stays
in its own module.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stockyard.accounts import Principal
from stockyard.application import Application
from stockyard.catalog.models import Product
from stockyard.catalog.store import CatalogStore
from stockyard.engine import ItemFilter, Queue, Request
from stockyard.service import Stockyard

ADMIN = Principal("bench", platform_admin=True)
SIZES = ("S", "M", "L", "XL", "XXL")


def size(v: int) -> str:
    """The v-th size label: S .. XXL, then S1 .. XXL1 and so on, so any count is unique."""
    return f"{SIZES[v % len(SIZES)]}{v // len(SIZES) or ''}"


def products(n: int, variants: int) -> list[dict[str, Any]]:
    """N products of `variants` sizes each, 5 in stock at 10.00."""
    return [
        {
            "code": f"P{i:05d}",
            "title": f"Product {i}",
            "options": ["Size"],
            "variants": [
                {
                    "sku": f"P{i:05d}-{size(v)}",
                    "price": "10.00",
                    "quantity": 5,
                    "options": {"Size": size(v)},
                }
                for v in range(variants)
            ],
        }
        for i in range(n)
    ]


@dataclass
class Bench:
    """A fresh Stockyard in `folder` with one client and its `demo` source."""

    folder: Path
    url: str
    queue: Queue
    service: Stockyard
    client_id: int
    source_id: int

    @classmethod
    def init(cls, name: str) -> Bench:
        folder = Path(tempfile.mkdtemp(prefix=f"stockyard-bench-{name}-"))
        url = f"sqlite:///{folder / 'stockyard.db'}"
        application = Application.init(url)
        service = application.service
        client = service.create_client(ADMIN, "Bench").id
        source = service.create_connection(ADMIN, client, "source", "demo", "Source", {}, {}).id
        return cls(folder, url, application.queue, service, client, source)

    @property
    def log(self) -> Path:
        return self.folder / "worker.log"

    def hold(self, catalog: list[dict[str, Any]]) -> None:
        """The catalog as the source's accepted products, before any channel exists."""
        store = CatalogStore(self.queue.db)
        for record in catalog:
            store.upsert_product(self.client_id, self.source_id, Product.model_validate(record))

    def channel(
        self, connector: str, name: str, settings: dict[str, Any], secret: dict[str, Any]
    ) -> int:
        return self.service.create_connection(
            ADMIN, self.client_id, "channel", connector, name, settings, secret
        ).id

    @contextmanager
    def workers(self, count: int = 1) -> Iterator[None]:
        """`count` worker processes until exit, logging to `log`."""
        started = [_start_worker(self.url, self.log) for _ in range(count)]
        try:
            yield
        finally:
            for w in started:
                w.terminate()
                w.wait(30)

    def wait_idle(self, timeout: float) -> None:
        """Until nothing is queued or running; a bench that never drains stops."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.queue.count(ItemFilter(self.client_id, statuses=("queued", "running"))):
                return
            time.sleep(0.5)
        raise SystemExit(f"the queue did not drain within {timeout:.0f} s")

    def time_init(self, shop: int, timeout: float) -> float:
        """Seconds from the channel's init_channel to an idle queue (workers running)."""
        started = time.perf_counter()
        self.queue.enqueue(self.client_id, [Request("init_channel", {}, shop)])
        self.wait_idle(timeout)
        return time.perf_counter() - started

    def failed(self) -> int:
        return self.queue.count(ItemFilter(self.client_id, statuses=("failed",)))


def _start_worker(url: str, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "stockyard", "worker", "--poll", "0.1", "--db", url],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        env={**os.environ, "STOCKYARD_LOG": "WARNING"},
    )
