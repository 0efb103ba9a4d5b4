"""`stockyard demo`: a merchant's day in a minute. Demo connections and items (some fail on
purpose), a worker draining them, and the lanes at the end. `stockyard serve --demo` adds
the same connections and items, once, and a demo login."""

from __future__ import annotations

import asyncio
import random

from rich.console import Console
from rich.live import Live
from rich.table import Table

from stockyard.application import DEFAULT_CLIENT, Application
from stockyard.engine import ItemFilter, Queue, Request
from stockyard.engine.worker import WorkerSettings
from stockyard.tenancy import Tenancy

DEMO_EMAIL = "admin@example.com"
DEMO_PASSWORD = "stockyard-demo"
CONNECTIONS = {  # key: (kind, description)
    "source": ("source", "Sage ERP"),
    "shop": ("channel", "Shopify (main store)"),
    "trade": ("channel", "Trade store (B2B)"),
    "warehouse": ("fulfillment", "Warehouse"),
}


def _demo_requests(n: int, lanes: dict[str, int], rng: random.Random) -> list[Request]:
    requests: list[Request] = []
    for i in range(n):
        sku = f"SKU-{i % 400:04d}"
        roll = rng.random()
        payload: dict[str, object] = {
            "sku": sku,
            "price": round(rng.uniform(5, 500), 2),
            "sleep": round(rng.uniform(0, 0.02), 3),
        }
        if roll < 0.25:
            requests.append(Request("sync_product", payload, lanes["source"], (sku,)))
        elif roll < 0.7:
            channel = lanes["shop"] if roll < 0.5 else lanes["trade"]
            if rng.random() < 0.03:
                payload |= {"fail": "transient", "times": 1, "message": "HTTP 503 from channel"}
            requests.append(Request("update_variant", payload, channel, (sku,)))
        elif roll < 0.85:
            order = f"ORD-{10000 + i}"
            requests.append(
                Request("add_order", {"order": order, "sleep": 0.01}, lanes["source"], (order,))
            )
        else:
            shipment = {"remote_id": f"F-{i}"}
            requests.append(Request("sync_fulfillment", shipment, lanes["warehouse"]))
    # One bad SKU blocks the trade store's lane; the other lanes carry on.
    at = len(requests) // 3
    requests.insert(
        at,
        Request(
            "update_product",
            {"sku": "SKU-BAD", "fail": "permanent", "message": "price tier 'trade' missing"},
            lanes["trade"],
            ("SKU-BAD",),
        ),
    )
    return requests


def _status_table(queue: Queue, client_id: int) -> Table:
    table = Table("status", "items", title="queue")
    for status in ("queued", "running", "done", "failed", "skipped"):
        table.add_row(status, str(queue.count(ItemFilter(client_id, statuses=(status,)))))
    return table


def _seed_queue(queue: Queue, n: int, out: Console, once: bool) -> int:
    """The demo connections (made if missing) and `n` items on them; with `once`, no items
    if the connections were there already (the data of an earlier run)."""
    tenancy = Tenancy(queue.db)
    client_id = tenancy.client_id(DEFAULT_CLIENT)
    existing = {(c.kind, c.description): c.id for c in tenancy.connections(client_id)}
    if once and all(spec in existing for spec in CONNECTIONS.values()):
        out.print(f"demo data already on {queue.db.describe()}: not added again")
        return client_id
    lanes = {
        key: existing.get((kind, desc)) or tenancy.add_connection(client_id, kind, "demo", desc).id
        for key, (kind, desc) in CONNECTIONS.items()
    }
    ids = queue.enqueue(client_id, _demo_requests(n, lanes, random.Random(7)))
    out.print(f"queued items {ids[0]}..{ids[-1]} on {queue.db.describe()}")
    return client_id


def seed(url: str, out: Console, n: int = 500) -> tuple[str, str]:
    """Demo connections and items for `stockyard serve --demo`, added once (a second run
    finds them), and a demo login (a platform administrator) whose email and password are
    returned."""
    app = Application.init(url)
    try:
        _seed_queue(app.queue, n, out, once=True)
        if app.accounts.user_by_email(DEMO_EMAIL) is None:
            app.accounts.create_user(DEMO_EMAIL, DEMO_PASSWORD, platform_admin=True)
    finally:
        app.close()
    return DEMO_EMAIL, DEMO_PASSWORD


def run_demo(url: str, n: int, out: Console, db_option: str | None = None) -> None:
    """`db_option`: the --db the command was given, which the commands it suggests need."""
    app = Application.init(url)
    queue = app.queue
    client_id = _seed_queue(queue, n, out, once=False)
    asyncio.run(_drain(app, client_id, out))
    lanes_table = Table("lane", "description", "state", "head", "waiting", "error", title="lanes")
    for lane in queue.lanes(client_id):
        lanes_table.add_row(
            str(lane.lane_id),
            lane.description,
            lane.state,
            str(lane.head_id or ""),
            str(lane.waiting),
            lane.head_error or "",
        )
    out.print(lanes_table)
    db = f" --db {db_option}" if db_option else ""
    out.print("Try:")
    for command in (
        "stockyard lanes",
        "stockyard items list --status failed",
        "stockyard skip --sku SKU-BAD --yes",
        "stockyard worker",
    ):
        out.print(f"  {command}{db}")


async def _drain(app: Application, client_id: int, out: Console) -> None:
    queue = app.queue
    settings = WorkerSettings(concurrency=100, poll_interval=0.02)
    worker = app.worker(settings, periodic=False)
    task = asyncio.create_task(worker.run())
    with Live(_status_table(queue, client_id), console=out, refresh_per_second=8) as live:
        while True:
            await asyncio.sleep(0.25)
            live.update(_status_table(queue, client_id))
            # Done when nothing can run: whatever remains waits behind a failed item.
            if not any(
                lane.state in ("ready", "running", "waiting") for lane in queue.lanes(client_id)
            ) and not queue.count(
                ItemFilter(client_id, statuses=("queued", "running"), blocking=False)
            ):
                break
            if task.done():
                break
    worker.stop()
    await task
