"""Who decides an order is on account: only the channel's rules. A channel's order record
may say anything about its buyer; the price tier that tells the ERP to book the sale on
the account whose code the buyer carries (Tryton: that party's sale, at its prices, on its
credit) is derived from the customer group the store reports, through the channel's
`rules.group_prices`. A `price_tier` in the record itself is dropped, and a channel
without `group_prices` never books on account.

The ERP and the stores are the in-memory HTTP servers of tests/support/remote.py, talked
to by the real `http` connector; orders arrive both pushed (a sync_order item, as the API
enqueues it) and pulled (pull_orders through the connector)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from stockyard.application import Application
from stockyard.catalog.store import CatalogStore
from stockyard.engine import ItemFilter, Queue, Request
from stockyard.tenancy import Tenancy
from tests.support.queues import drain
from tests.support.remote import Remote


@dataclass
class Env:
    queue: Queue
    client_id: int
    erp: Remote
    trade: Remote
    shop: Remote
    trade_id: int  # group_prices {"trade": "trade"}
    shop_id: int  # no rules: a consumer shop

    def run(self) -> None:
        drain(self.queue, Application(self.queue.db, queue=self.queue).handlers)

    def push(self, channel_id: int, order: dict[str, Any]) -> None:
        self.queue.enqueue(self.client_id, [Request("sync_order", {"order": order}, channel_id)])
        self.run()

    def pull(self, channel_id: int) -> None:
        self.queue.enqueue(self.client_id, [Request("pull_orders", {}, channel_id)])
        self.run()

    def created(self) -> dict[str, dict[str, Any]]:
        """The ERP's orders by the channel's id, with the customer they were sent."""
        return {o["remote_id"]: o["customer"] for o in self.erp.state.created_orders.values()}

    def stored_tier(self, channel_id: int, remote_id: str) -> str | None:
        store = CatalogStore(self.queue.db)
        order = store.order(self.client_id, store.order_id(channel_id, remote_id)).order
        return None if order.customer is None else order.customer.price_tier

    def failed(self) -> list[Any]:
        flt = ItemFilter(self.client_id, statuses=("failed",))
        return self.queue.list_items(flt, limit=100)


@pytest.fixture
def backend() -> str:
    return "sqlite"  # no SQL of its own


@pytest.fixture
def env(queue: Queue, client_id: int) -> Iterator[Env]:
    erp, trade, shop = Remote(), Remote(), Remote()
    tenancy = Tenancy(queue.db)
    tenancy.add_connection(client_id, "source", "http", "ERP", {"base_url": erp.url})
    rules = {"group_prices": {"trade": "trade"}}
    trade_store = tenancy.add_connection(
        client_id, "channel", "http", "Trade store", {"base_url": trade.url, "rules": rules}
    )
    web = tenancy.add_connection(client_id, "channel", "http", "Web shop", {"base_url": shop.url})
    yield Env(queue, client_id, erp, trade, shop, trade_store.id, web.id)
    for remote in (erp, trade, shop):
        remote.stop()


def order(remote_id: str, **customer: Any) -> dict[str, Any]:
    return {
        "remote_id": remote_id,
        "number": f"#{remote_id}",
        "currency": "GBP",
        "customer": {"code": "ACC-1001", "email": "mallory@evil.example"} | customer,
        "lines": [{"sku": "BOLT-10", "quantity": 100, "price": "0.90"}],
        "total": "90.00",
    }


def test_a_pushed_price_tier_books_nothing_on_account(env: Env) -> None:
    # A consumer shop: whatever its record says, its buyer is a guest to the ERP.
    env.push(env.shop_id, order("X-1", price_tier="trade"))
    env.push(env.shop_id, order("X-2", price_tier="trade", group="trade"))
    # The trade store: a tier without a group, or beside a group, is not taken either.
    env.push(env.trade_id, order("X-3", price_tier="trade"))
    env.push(env.trade_id, order("X-4", price_tier="gold", group="trade"))
    created = env.created()
    assert {k: c["price_tier"] for k, c in created.items()} == {
        "X-1": None,
        "X-2": None,
        "X-3": None,
        "X-4": "trade",  # the group's tier, not the one the record claimed
    }
    assert [env.stored_tier(env.shop_id, r) for r in ("X-1", "X-2")] == [None, None]
    assert env.stored_tier(env.trade_id, "X-4") == "trade"
    assert env.failed() == []


def test_a_pulled_price_tier_books_nothing_on_account(env: Env) -> None:
    env.shop.state.orders.append(order("W-1", price_tier="trade", group="trade"))
    env.pull(env.shop_id)
    env.trade.state.orders.extend([order("T-1", price_tier="trade"), order("T-2", group="Trade")])
    env.pull(env.trade_id)
    assert {k: c["price_tier"] for k, c in env.created().items()} == {
        "W-1": None,
        "T-1": None,
        "T-2": "trade",
    }
    assert env.failed() == []


def test_a_group_the_trade_store_does_not_map_still_fails_that_order(env: Env) -> None:
    # On a channel with group_prices, a buyer in a group it does not map is a store set up
    # half-way: failing beats booking a sale at that group's prices as a guest's.
    env.push(env.trade_id, order("T-9", group="staff", price_tier="trade"))
    (failed,) = env.failed()
    assert "the customer's group 'staff' is no price tier's" in (failed.error or "")
    assert env.created() == {}
