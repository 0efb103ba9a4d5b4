"""A merchant's queue as the 7 a.m. operator finds it (issue 17's realistic data).

2,140 items over a Tryton source, three channels (two Vendure stores and an HTTP
marketplace whose connection name is 160 characters long) and a warehouse; 29 failures:
three blocked lanes and 26 non-blocking failures in several groups. The trade store's
lane stops behind a failed `add_product` of "café-2" (a 1.3 KB Python traceback as its
error) with 451 items waiting, among them updates of that very product; the marketplace
stopped on the same error; the ERP stopped on SKU-BAD, whose customer orders failed too.
Unicode SKUs, items of every status, catalog products and orders, dashboard samples.

Items are enqueued through the engine and run by the engine's real worker with handlers
that fail the way the remote systems do, so every status, error, attempt and lane state
is the engine's own. Seeding takes a few seconds; a test module seeds once and copies the
SQLite file for tests that change it (`copy_database`).
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from playwright.sync_api import Page

from stockyard.accounts import Accounts
from stockyard.application import Application
from stockyard.catalog.models import Customer, Order, OrderLine, Product, Variant
from stockyard.engine import ItemFilter, Request
from stockyard.engine.handlers import Context, HandlerRegistry
from stockyard.engine.worker import Worker, WorkerSettings
from stockyard.errors import PermanentError
from stockyard.samples import Samples
from stockyard.tenancy import Tenancy
from stockyard.web.app import create_app
from stockyard.web.settings import ApiSettings
from tests.support.api_env import FAST_HASHER, PASSWORD, ApiEnv
from tests.support.queues import drain, make_queue

CLIENT = "Harbour & Vine Provisions"
OPERATOR = "operator@harbourvine.example"
VIEWER = "viewer@harbourvine.example"
ADMIN = "owner@harbourvine.example"
TOTAL_ITEMS = 2_140
TRADE_WAITING = 451
MARKET_WAITING = 40
SOURCE_WAITING = 30
LONG_NAME = (
    "Marketplace listings for the Northern Cape, Western Cape and Namibia wholesale "
    "partners (pricing tier B, VAT inclusive, nightly stock sync at 02:00 SAST) - legacy"
)
UNICODE_SKUS = ("ÄPFEL-1", "café-2", "数据-3")
NEW_PRODUCT = "café-2"  # its add_product failed on two channels
BAD_SKU = "SKU-BAD"

# One error, two lanes: the ERP's product export crashed for café-2 (1.3 KB, line breaks).
TRACEBACK = """Traceback (most recent call last):
  File "/srv/stockyard/lib/python3.12/site-packages/stockyard/flows/handlers.py", line 212, in add_product
    product = await source.fetch_product(ctx.payload["code"], include_images=True)
  File "/srv/stockyard/lib/python3.12/site-packages/stockyard/connectors/tryton/__init__.py", line 348, in fetch_product
    return self._product(record, variants=self._variants(record), taxes=self._taxes(record))
  File "/srv/stockyard/lib/python3.12/site-packages/stockyard/connectors/tryton/__init__.py", line 391, in _taxes
    category = record["account_category"]["customer_taxes_used"][0]["rate"]
  File "/srv/stockyard/lib/python3.12/site-packages/stockyard/connectors/tryton/client.py", line 77, in __getitem__
    raise KeyError(self._describe_missing(name, self._fields))
KeyError: "account_category: product 'café-2' (Café crème blend 1 kg, template 4471) has no
account category; the channel needs a tax rate for every product. Set an account category
with customer taxes on the product template in Tryton (Product > Accounting) and retry. Fields
read: id, code, name, list_price, cost_price, default_uom, type, salable, consumable,
account_category, customer_taxes_used, template, products, attributes, images, weight."
"""  # noqa: E501 (a traceback's lines are as long as they are)
ORDER_ERROR = "Tryton: order line SKU-BAD: the product is not salable (product.template 9182)"
CREDIT_HOLD = "Tryton: customer CUST-0417 is on credit hold; the sale cannot be confirmed"
WAREHOUSE_404 = "Warehouse answered 404: shipment not found"
CHANNEL_410 = "Vendure answered 410: the order was archived on the storefront"
SOURCE_ERROR = "Tryton: product SKU-BAD has no list price for price tier 'trade'"
SKIPPED_ERROR = "Warehouse answered 409: shipment already closed"


@dataclass
class Story:
    """What the tests look for in the seeded data."""

    url: str
    client_id: int
    source: int
    shop: int
    trade: int
    market: int
    warehouse: int
    trade_head: int  # failed add_product café-2, 451 waiting behind it
    market_head: int  # the same error on the marketplace
    source_head: int  # failed sync_product SKU-BAD
    bad_orders: list[int] = field(default_factory=list)  # failed add_order of SKU-BAD
    products: dict[str, int] = field(default_factory=dict)  # SKU -> catalog product id
    orders: dict[str, int] = field(default_factory=dict)  # order number -> catalog order id
    failed: int = 0


class Remote:
    """The remote systems as the handlers see them: an item fails with its payload's
    `error` until the operator fixes its SKU at the source (`fix`)."""

    def __init__(self) -> None:
        self.fixed: set[str] = set()
        self.lock = threading.Lock()

    def fix(self, sku: str) -> None:
        with self.lock:
            self.fixed.add(sku)

    def handle(self, ctx: Context) -> None:
        payload = ctx.payload
        error = payload.get("error")
        with self.lock:
            fixed = payload.get("sku") in self.fixed
        if error and not fixed:
            raise PermanentError(str(error))

    def handlers(self) -> HandlerRegistry:
        registry = HandlerRegistry()
        for name in INSTRUCTIONS:
            registry.register(name, self.handle)
        return registry


INSTRUCTIONS = (
    "add_product",
    "update_product",
    "update_variant",
    "sync_product",
    "add_order",
    "sync_fulfillment",
    "sync_order",
)


def _connections(env: ApiEnv, client: int) -> dict[str, int]:
    svc, root = env.service, env.root
    tryton = {"url": "http://127.0.0.1:9/", "database": "harbour"}
    vendure = {"url": "http://127.0.0.1:9/admin-api"}
    secret = {"password": "not-used"}
    http = {"base_url": "http://127.0.0.1:9"}
    return {
        "source": svc.create_connection(
            root, client, "source", "tryton", "Tryton ERP (head office)", tryton, secret
        ).id,
        "shop": svc.create_connection(
            root, client, "channel", "vendure", "Vendure storefront", vendure, secret
        ).id,
        "trade": svc.create_connection(
            root, client, "channel", "vendure", "Trade store (B2B)", vendure, secret
        ).id,
        "market": svc.create_connection(root, client, "channel", "http", LONG_NAME, http, {}).id,
        "warehouse": svc.create_connection(
            root, client, "fulfillment", "http", "Warehouse (Cape Town)", http, {}
        ).id,
    }


def _catalog(env: ApiEnv, client: int, source: int, shop: int, story: Story) -> None:
    store = env.service.store
    skus = [*UNICODE_SKUS, BAD_SKU, *(f"SKU-{i:04d}" for i in range(12))]
    for sku in skus:
        product = Product(
            code=f"P-{sku}",
            title=f"Harbour & Vine {sku}",
            variants=[
                Variant(sku=sku, price=Decimal("129.00"), prices={"trade": Decimal("99.00")}),
                Variant(sku=f"{sku}-XL", price=Decimal("149.00")),
            ],
        )
        story.products[sku] = store.upsert_product(client, source, product)
    for i in range(12):
        number = f"ORD-2026-{1400 + i}"
        sku = BAD_SKU if i < 5 else UNICODE_SKUS[i % 3]
        order = Order(
            remote_id=f"V-{88000 + i}",
            number=number,
            customer=Customer(code=f"CUST-{410 + i:04d}", name=f"Customer {i}"),
            lines=[
                OrderLine(sku=sku, quantity=2, price=Decimal("129.00"), title=sku),
                OrderLine(sku="SKU-0001", quantity=1, price=Decimal("20.00")),
            ],
            total=Decimal("278.00"),
        )
        story.orders[number], _ = store.upsert_order(client, shop, order)


def _product_item(instruction: str, lane: int, sku: str, pid: int, **extra: Any) -> Request:
    payload = {"sku": sku, "code": f"P-{sku}", "product_id": pid, "variant_id": pid * 10, **extra}
    return Request(instruction, payload, lane, (sku,))


def _history(c: dict[str, int], story: Story, filler: int) -> list[Request]:
    """Phase one, in enqueue order: what ran overnight and the failures."""
    pid = story.products
    done: list[Request] = []
    lanes = (c["shop"], c["trade"], c["market"], c["source"])
    for i in range(filler):
        # Mostly distinct products (repeated ones would coalesce), some of the catalog's.
        sku = UNICODE_SKUS[i % 3] if i % 97 == 0 else f"SKU-{1000 + i:04d}"
        lane = lanes[i % 4]
        instruction = (
            "sync_product" if lane == c["source"] else ("update_variant", "add_product")[i % 2]
        )
        product = pid.get(sku, 1000 + i)
        done.append(_product_item(instruction, lane, sku, product, price=str(100 + i % 50)))
    heads = [
        _product_item("add_product", c["trade"], NEW_PRODUCT, pid[NEW_PRODUCT], error=TRACEBACK),
        _product_item("add_product", c["market"], NEW_PRODUCT, pid[NEW_PRODUCT], error=TRACEBACK),
        _product_item("sync_product", c["source"], BAD_SKU, pid[BAD_SKU], error=SOURCE_ERROR),
    ]
    nonblocking: list[Request] = []
    numbers = list(story.orders)
    for n in numbers[:5]:  # SKU-BAD's customer orders: a blind skip of the SKU skips them
        nonblocking.append(
            Request("add_order", {"order": n, "error": ORDER_ERROR}, None, (n, BAD_SKU))
        )
    for i, n in enumerate(numbers[5:11]):
        payload = {"order": n, "error": CREDIT_HOLD}
        nonblocking.append(Request("add_order", payload, None, (n, UNICODE_SKUS[i % 3])))
    for i in range(8):
        payload = {"remote_id": f"F-7{i:03d}", "error": WAREHOUSE_404}
        nonblocking.append(Request("sync_fulfillment", payload, c["warehouse"], (f"F-7{i:03d}",)))
    for i in range(7):
        payload = {"order": f"V-9{i:04d}", "error": CHANNEL_410}
        nonblocking.append(Request("sync_order", payload, c["shop"], (f"V-9{i:04d}",)))
    for i in range(3):  # failed overnight and skipped by the night shift
        payload = {"remote_id": f"F-6{i:03d}", "error": SKIPPED_ERROR}
        nonblocking.append(Request("sync_fulfillment", payload, c["warehouse"], (f"F-6{i:03d}",)))
    return done + heads + nonblocking


def _waiting(lane: int, count: int, story: Story) -> list[Request]:
    """Work that arrived behind a stopped channel, updates of the product that never got
    there among it (one per product or variant: newer ones would coalesce with them)."""
    pid = story.products
    cafe = pid[NEW_PRODUCT]
    items = []
    for i in range(count):
        if i == 3:
            items.append(_product_item("update_product", lane, NEW_PRODUCT, cafe))
        elif i in (40, 200):
            items.append(_product_item("update_variant", lane, NEW_PRODUCT, cafe, variant_id=i))
        else:
            sku = f"SKU-{3000 + i:04d}" if i % 5 else UNICODE_SKUS[i % 3]
            kind = ("update_variant", "update_product")[i % 2]
            product = pid.get(sku, 3000 + i) if i % 5 else 5000 + i
            items.append(_product_item(kind, lane, sku, product, price=str(90 + i % 30)))
    return items


def _morning(c: dict[str, int], story: Story) -> list[Request]:
    """Phase two, enqueued after the night's worker stopped: the work behind the stopped
    lanes, the storefront's runnable work (two updates of one variant: the older is
    superseded), orders, items due later."""
    pid = story.products
    behind = _waiting(c["trade"], TRADE_WAITING, story) + _waiting(
        c["market"], MARKET_WAITING, story
    )
    behind += [
        _product_item("sync_product", c["source"], f"SKU-{i:04d}", 4000 + i, price="12.00")
        for i in range(SOURCE_WAITING)
    ]
    items = [
        *behind,
        _product_item("update_variant", c["shop"], "SKU-0003", pid["SKU-0003"], price="41.00"),
        _product_item("update_variant", c["shop"], "SKU-0003", pid["SKU-0003"], price="42.00"),
    ]
    for i in range(60):
        sku = f"SKU-{6000 + i:04d}" if i % 4 else UNICODE_SKUS[i % 3]
        product = pid[sku] if i % 4 == 0 and i < 12 else 6000 + i
        items.append(_product_item("update_product", c["shop"], sku, product, price=str(i)))
    for i in range(15):
        items.append(
            Request("add_order", {"order": f"ORD-2026-15{i:02d}"}, None, (f"ORD-2026-15{i:02d}",))
        )
    for i in range(3):
        ref = f"F-8{i:03d}"
        items.append(
            Request("sync_fulfillment", {"remote_id": ref}, c["warehouse"], (ref,), delay=3600)
        )
    return items


@contextmanager
def seeded_database(folder: Path) -> Iterator[tuple[ApiEnv, Story]]:
    """The morning's data in a new SQLite file in `folder` (one per test module)."""
    url = f"sqlite:///{folder}/console.db"
    env = ApiEnv(url)
    try:
        yield env, seed(env, url)
    finally:
        env.close()


def seed(env: ApiEnv, url: str, remote: Remote | None = None) -> Story:
    """The client, its people, connections, catalog and 2,140 items, run by a real worker."""
    svc, root, queue = env.service, env.root, env.queue
    client = svc.create_client(root, CLIENT).id
    svc.set_member(root, client, OPERATOR, "operator", PASSWORD)
    svc.set_member(root, client, VIEWER, "read-only", PASSWORD)
    svc.set_member(root, client, ADMIN, "administrator", PASSWORD)
    svc.subscribe(root, client, "email", OPERATOR, [], [])
    c = _connections(env, client)
    story = Story(
        url=url,
        client_id=client,
        source=c["source"],
        shop=c["shop"],
        trade=c["trade"],
        market=c["market"],
        warehouse=c["warehouse"],
        trade_head=0,
        market_head=0,
        source_head=0,
    )
    _catalog(env, client, c["source"], c["shop"], story)
    morning = _morning(c, story)
    fixed_part = len(_history(c, story, 0)) + len(morning)
    history = _history(c, story, TOTAL_ITEMS - fixed_part)
    samples = Samples(queue)
    now = time.time()
    _yesterday(samples, client, now)
    ids = queue.enqueue(client, history)
    remote = remote or Remote()
    drain(queue, remote.handlers())
    by_error = _ids_by_payload(history, ids)
    story.trade_head, story.market_head = by_error["add_product"]
    [story.source_head] = by_error["sync_product"]
    story.bad_orders = by_error["bad_orders"]
    queue.skip(client, by_error["skipped"], "night-shift@harbourvine.example")
    samples.record(time.time() - 60)
    queue.enqueue(client, morning)
    _leave_running(env, 3)
    samples.record(time.time())
    story.failed = queue.count(ItemFilter(client, statuses=("failed",)))
    return story


def _yesterday(samples: Samples, client: int, now: float) -> None:
    """A day of minute samples before the morning, as the workers would have recorded
    them: a night sync's backlog at 02:00 drained by morning, failures creeping up; the
    dashboard's charts then have something to show."""
    rows = []
    for minute in range(24 * 60, 5, -1):
        at = now - now % 60 - minute * 60
        night = max(0.0, 1 - abs(minute - 300) / 120)  # a peak five hours ago
        rows.append(
            {
                "client_id": client,
                "at": at,
                "queued": int(900 * night + 20 + (minute * 7919) % 13),
                "failed": min(29, (24 * 60 - minute) // 45),
                "finished": int(160 * night + 4 + (minute * 104729) % 9),
            }
        )
    with samples.db.write() as cur:
        samples.execute_many(cur, "insert_sample", rows)


def _ids_by_payload(requests: list[Request], ids: list[int]) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {
        "add_product": [],
        "sync_product": [],
        "bad_orders": [],
        "skipped": [],
    }
    for request, item in zip(requests, ids, strict=True):
        error = request.payload.get("error")
        if error == TRACEBACK:
            found["add_product"].append(item)
        elif error == SOURCE_ERROR:
            found["sync_product"].append(item)
        elif error == ORDER_ERROR:
            found["bad_orders"].append(item)
        elif error == SKIPPED_ERROR:
            found["skipped"].append(item)
    return found


def _leave_running(env: ApiEnv, count: int) -> None:
    """Items a worker on another machine is running right now (it holds them)."""
    worker = "worker-2.harbourvine"
    env.queue.register_worker(worker, "worker-2", 4242)
    env.queue.claim(worker, count)


def copy_database(source: str, target: Path) -> str:
    """A copy of a seeded SQLite database (the backup API: one consistent file)."""
    path = source.removeprefix("sqlite:///")
    with sqlite3.connect(path) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    return f"sqlite:///{target}"


class RunningWorker:
    """The engine's worker in a thread, with the given handlers, until stopped."""

    def __init__(self, env: ApiEnv, remote: Remote) -> None:
        self.worker = Worker(
            env.queue,
            remote.handlers(),
            WorkerSettings(concurrency=20, poll_interval=0.05),
            connection=Tenancy(env.queue.db).connection,
        )
        self.thread = threading.Thread(target=lambda: asyncio.run(self.worker.run()), daemon=True)

    def __enter__(self) -> RunningWorker:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.worker.stop()
        self.thread.join(30)


def post_form(page: Page, action: str, fields: dict[str, str | list[str]]) -> None:
    """Submit a form as the browser would (a real navigation, the page's CSRF token): a
    way to a page only a POST reaches, such as a bulk action's confirmation. The form is
    built through the DevTools protocol, which the console's CSP does not govern."""
    values = {"csrf": page.input_value("input[name=csrf] >> nth=0"), **fields}
    with page.expect_navigation():
        page.evaluate(
            """([action, values]) => {
                const form = document.createElement("form");
                form.method = "post";
                form.action = action;
                for (const [name, value] of Object.entries(values)) {
                    for (const one of [].concat(value)) {
                        const input = document.createElement("input");
                        input.type = "hidden";
                        input.name = name;
                        input.value = one;
                        form.append(input);
                    }
                }
                document.body.append(form);
                form.submit();
            }""",
            [action, values],
        )


class SeededEnv(ApiEnv):
    """The application on a copy of a seeded database: what ApiEnv offers a test (queue,
    service, app), without adding its two merchants again. `sealer` is the seeding env's:
    the copy's connection secrets were sealed with it."""

    def __init__(self, url: str, seeding: ApiEnv) -> None:
        self.queue = make_queue(url, migrate=False)
        self.sealer = seeding.sealer
        self.application = Application(
            self.queue.db,
            queue=self.queue,
            accounts=Accounts(self.queue.db, FAST_HASHER),
            sealer=lambda: self.sealer,
        )
        self.service = self.application.service
        self.app = create_app(self.service, ApiSettings(rate_per_second=0))

    def close(self) -> None:
        self.queue.db.close()
