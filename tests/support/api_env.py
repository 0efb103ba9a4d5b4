"""Two merchants (clients A and B) with items, connections, catalog data, members and keys,
behind the real FastAPI application, called in-process through httpx."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient

from stockyard.accounts import Accounts, Principal
from stockyard.application import Application
from stockyard.catalog.models import Order, Product
from stockyard.engine import Outcome, Queue, Request
from stockyard.sealing import Sealer
from stockyard.service import Stockyard
from stockyard.web.app import create_app
from stockyard.web.settings import ApiSettings
from tests.support.queues import make_queue

# Cheap hashes: tests make many users; production keeps argon2's defaults.
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
PASSWORD = "correct horse battery"


def product(code: str, sku: str, price: str = "10.00") -> dict[str, Any]:
    return {"code": code, "title": f"Product {code}", "variants": [{"sku": sku, "price": price}]}


def order(remote_id: str) -> dict[str, Any]:
    return {
        "remote_id": remote_id,
        "lines": [{"sku": "A-1", "quantity": 1, "price": "5"}],
        "total": "5",
    }


@dataclass
class Tenant:
    """One client and what it holds; ids are what another client must never reach."""

    id: int
    name: str
    source: int = 0
    channel: int = 0
    warehouse: int = 0
    failed_item: int = 0
    queued_item: int = 0
    product: int = 0
    order: int = 0
    fulfillment: int = 0
    key_id: int = 0
    member_id: int = 0
    subscription_id: int = 0
    tokens: dict[str, str] = field(default_factory=dict)  # role -> API key token


class ApiEnv:
    def __init__(self, url: str, settings: ApiSettings | None = None) -> None:
        self.queue: Queue = make_queue(url)
        self.sealer = Sealer([Sealer.new_key()])
        self.application = Application(
            self.queue.db,
            queue=self.queue,
            accounts=Accounts(self.queue.db, FAST_HASHER),
            sealer=lambda: self.sealer,
        )
        self.service: Stockyard = self.application.service
        self.app: FastAPI = create_app(self.service, settings or ApiSettings(rate_per_second=0))
        self.http = TestClient(self.app, raise_server_exceptions=False)
        self.root = Principal("test", platform_admin=True)
        self.a = self._tenant("merchant-a")
        self.b = self._tenant("merchant-b")
        self.admin_session = self._platform_admin()

    def close(self) -> None:
        self.http.close()
        self.queue.db.close()

    def headers(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def _platform_admin(self) -> str:
        self.service.accounts.create_user("root@example.com", PASSWORD, platform_admin=True)
        return self.service.login("root@example.com", PASSWORD)

    def _tenant(self, name: str) -> Tenant:
        svc, root = self.service, self.root
        t = Tenant(svc.create_client(root, name).id, name)
        base = {"base_url": "http://127.0.0.1:9"}
        t.source = svc.create_connection(root, t.id, "source", "http", "ERP", base, {}).id
        t.channel = svc.create_connection(root, t.id, "channel", "http", "Shop", base, {}).id
        t.warehouse = svc.create_connection(
            root, t.id, "fulfillment", "http", "Warehouse", base, {}
        ).id
        failed, queued = self.queue.enqueue(
            t.id,
            [
                Request("update_product", {"product_id": 1}, t.channel, ("SKU-" + name,)),
                Request("update_product", {"product_id": 2}, t.channel, ("SKU-" + name,)),
            ],
        )
        self._fail(failed)
        t.failed_item, t.queued_item = failed, queued
        store = svc.store
        t.product = store.upsert_product(
            t.id, t.source, Product.model_validate(product("P-" + name, "SKU-" + name))
        )
        t.order, _ = store.upsert_order(t.id, t.channel, Order.model_validate(order("O-" + name)))
        t.fulfillment = store.add_fulfillment(t.id, t.order, t.warehouse, "F-" + name, "open")
        for role in ("read-only", "operator", "administrator"):
            t.tokens[role] = svc.create_key(root, t.id, f"{role} key", role)[1]
        t.key_id = svc.create_key(root, t.id, "spare key", "read-only")[0].id
        t.subscription_id = svc.subscribe(root, t.id, "webhook", "http://127.0.0.1:9/", [], [])[
            0
        ].id
        t.member_id = svc.set_member(
            root, t.id, f"someone@{name}.example", "operator", PASSWORD
        ).user_id
        return t

    def _fail(self, item_id: int) -> None:
        """Make the item failed the way a worker would: claim it, settle a permanent error."""
        worker = f"test-{item_id}-{time.monotonic_ns()}"
        self.queue.register_worker(worker, "test", 0)
        jobs = self.queue.claim(worker, 10)
        for job in jobs:
            kind = "permanent" if job.id == item_id else "done"
            self.queue.settle(worker, [Outcome(job, kind, time.time(), "bad price")])  # type: ignore[arg-type]
        self.queue.stop_worker(worker)
