"""Trade orders through the queue: an order on account carries the customer's account
number to the ERP, and a payment the store recorded is checked against the order's total
once per paid value; a mismatch fails only that item, naming both sums. A buyer the store
reports in one of its customer groups is on account in the tier the channel's rules give
that group.

The trade store and the ERP are the in-memory HTTP servers of tests/support/remote.py,
talked to by the real `http` connector."""

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
    source_id: int
    trade_id: int

    @property
    def store(self) -> CatalogStore:
        return CatalogStore(self.queue.db)

    def run(self) -> None:
        drain(self.queue, Application(self.queue.db, queue=self.queue).handlers)

    def pull(self) -> None:
        self.queue.enqueue(self.client_id, [Request("pull_orders", {}, self.trade_id)])
        self.run()

    def payments(self) -> list[Any]:
        flt = ItemFilter(self.client_id, instructions=("update_order_instruction",))
        return sorted(self.queue.list_items(flt, limit=100), key=lambda i: i.id)


@pytest.fixture
def backend() -> str:
    # SQLite only: no SQL of their own (the catalog's queries run on both in other tests).
    return "sqlite"


@pytest.fixture
def env(queue: Queue, client_id: int) -> Iterator[Env]:
    erp, trade = Remote(), Remote()
    tenancy = Tenancy(queue.db)
    source = tenancy.add_connection(client_id, "source", "http", "ERP", {"base_url": erp.url})
    # The store's customer group "trade" shows the ERP's tier "trade" (and "vip", "gold").
    rules = {"group_prices": {"trade": "trade", "gold": "vip"}}
    channel = tenancy.add_connection(
        client_id, "channel", "http", "Trade store", {"base_url": trade.url, "rules": rules}
    )
    yield Env(queue, client_id, erp, trade, source.id, channel.id)
    erp.stop()
    trade.stop()


def on_account(paid: str | None = None, remote_id: str = "T-501") -> dict[str, Any]:
    order: dict[str, Any] = {
        "remote_id": remote_id,
        "number": f"#{remote_id}",
        "currency": "GBP",
        "customer": {"code": "ACC-1001", "email": "buyer@acme.example", "company": "Acme Ltd"},
        "lines": [{"sku": "BOLT-10", "quantity": 100, "price": "0.90"}],
        "shipping": "5.00",
        "total": "95.00",
    }
    return order if paid is None else order | {"paid": paid}


def test_an_order_on_account_reaches_the_erp_as_that_customers(env: Env) -> None:
    env.trade.state.orders.append(on_account())
    env.pull()
    (created,) = env.erp.state.created_orders.values()
    # The ERP is told whose order it is: the account number, not a guest's email alone.
    assert created["customer"]["code"] == "ACC-1001"
    assert env.payments() == []  # not paid yet: nothing to record


def _group_order(group: str, remote_id: str, **customer: Any) -> dict[str, Any]:
    order = on_account(remote_id=remote_id)
    order["customer"] = {"code": "ACC-1001", "email": "buyer@acme.example", "group": group}
    order["customer"].update(customer)
    return order


def test_a_buyer_in_a_customer_group_is_on_account_in_its_tier(env: Env) -> None:
    env.trade.state.orders.extend(
        [
            _group_order("vip", "T-601"),
            _group_order("Trade", "T-602"),  # groups compare without case, as the rule's
            # A tier the record gives is not the store's to say: the group's is taken
            # (tests/test_trade_orders_tier.py).
            _group_order("trade", "T-603", price_tier="gold"),
        ]
    )
    env.pull()
    created = {o["remote_id"]: o["customer"] for o in env.erp.state.created_orders.values()}
    assert {k: (c["code"], c["group"], c["price_tier"]) for k, c in created.items()} == {
        "T-601": ("ACC-1001", "vip", "gold"),
        "T-602": ("ACC-1001", "Trade", "trade"),
        "T-603": ("ACC-1001", "trade", "trade"),
    }
    stored = env.store.order(env.client_id, env.store.order_id(env.trade_id, "T-601"))
    assert stored.order.customer is not None
    assert stored.order.customer.price_tier == "gold"


def test_a_group_the_rules_do_not_map_fails_only_that_order(env: Env) -> None:
    env.trade.state.orders.extend([_group_order("staff", "T-701"), _group_order("trade", "T-702")])
    env.pull()
    flt = ItemFilter(env.client_id, instructions=("sync_order",))
    items = {i.refs[0]: i for i in env.queue.list_items(flt, limit=100)}
    failed = items["T-701"]
    assert failed.status == "failed"
    assert "the customer's group 'staff' is no price tier's in the channel rules" in (
        failed.error or ""
    )
    assert "rules.group_prices" in (failed.error or "")
    assert items["T-702"].status == "done"
    # Not a guest's sale at trade prices: the ERP got only the mapped order.
    assert [o["remote_id"] for o in env.erp.state.created_orders.values()] == ["T-702"]


def test_a_recorded_payment_is_checked_once_per_value(env: Env) -> None:
    env.trade.state.orders.append(on_account())
    env.pull()
    # The store reports the order again, changed (its pull answers what changed since).
    env.trade.state.orders.append(on_account(paid="95.00"))
    env.pull()
    env.trade.state.orders.append(on_account(paid="95.0"))  # the same sum again
    env.pull()
    (paid,) = env.payments()
    assert (paid.status, paid.payload) == ("done", {"remote_id": "T-501", "paid": "95.00"})
    order = env.store.order(env.client_id, env.store.order_id(env.trade_id, "T-501"))
    assert order.paid == 95
    assert len(env.erp.state.created_orders) == 1


def test_a_mismatched_payment_fails_only_its_item_naming_both_sums(env: Env) -> None:
    env.trade.state.orders.extend(
        [on_account(paid="90.00"), on_account(paid="95.00", remote_id="T-502")]
    )
    env.pull()
    # By order, not by item id: the two orders' sync_order items may run in either order.
    wrong, right = sorted(env.payments(), key=lambda i: i.payload["remote_id"])
    assert wrong.status == "failed"
    assert "#T-501: paid 90.00 does not match the order total 95.00 GBP" in (wrong.error or "")
    assert right.status == "done"
    # Both orders reached the ERP: a payment mismatch holds nothing else back.
    assert len(env.erp.state.created_orders) == 2
    first = env.store.order(env.client_id, env.store.order_id(env.trade_id, "T-501"))
    assert first.paid is None

    # The store corrects the payment: the new value is checked, and it matches.
    env.trade.state.orders.append(on_account(paid="95.00"))
    env.pull()
    checked = sorted(env.payments(), key=lambda i: (i.payload["remote_id"], i.id))
    assert [(p.payload["paid"], p.status) for p in checked] == [
        ("90.00", "failed"),
        ("95.00", "done"),  # T-501 again, corrected
        ("95.00", "done"),  # T-502
    ]
    first = env.store.order(env.client_id, env.store.order_id(env.trade_id, "T-501"))
    assert first.paid == 95


def test_a_payment_for_an_order_the_channel_never_reported_fails_clearly(env: Env) -> None:
    (item,) = env.queue.enqueue(
        env.client_id,
        [Request("update_order_instruction", {"remote_id": "NOPE", "paid": "1"}, env.trade_id)],
    )
    env.run()
    error = env.queue.get(env.client_id, item).error or ""
    assert error == f"no order 'NOPE' of channel {env.trade_id} in the catalog"
