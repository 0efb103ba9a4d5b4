"""Whose is a record, when an account is erased (SQLite and PostgreSQL): an account code
names the ERP's account only where the channel's codes are the accounts' (an order on
account, a channel that takes customers); an email names its owner only on a record that
carries no other account's code; an order's number names it only on its own channel; and
a record that arrives already marked erased is erased all the same."""

from __future__ import annotations

from typing import Any

from stockyard.engine import Request
from stockyard.tenancy import Tenancy
from tests.test_erase_customer import ROOT, Env, acme, env, order

__all__ = ["env"]  # the fixture, shared with test_erase_customer


def _channel(env: Env, name: str, rules: dict[str, Any] | None = None) -> int:
    settings: dict[str, Any] = {"base_url": env.shop.url}
    if rules is not None:
        settings["rules"] = rules
    return Tenancy(env.queue.db).add_connection(env.client_id, "channel", "http", name, settings).id


def test_a_web_shops_customer_with_the_same_number_is_another_person(env: Env) -> None:
    env.queue.enqueue(env.client_id, [Request("sync_customer", acme(code="42"), env.source_id)])
    env.run()
    woo = _channel(env, "Woo")
    zed = order(
        "9001",
        {"code": "42", "email": "zed@zeta.example", "name": "Zed Zeta"},
        shipping_address={"name": "Zed Zeta", "line1": "9 Elm St", "city": "Leeds"},
    )
    (item,) = env.queue.enqueue(
        env.client_id, [Request("sync_order", {"order": zed}, woo, ("9001",))]
    )
    env.run()
    before = env.queue.get(env.client_id, item)
    done = env.app.service.erase_customer(ROOT, env.client_id, "42")
    (stored,) = env.app.catalog.list_orders(env.client_id, None, 10)
    assert done.orders == [] and item not in done.items
    assert stored.order.customer is not None and stored.order.customer.name == "Zed Zeta"
    assert stored.order.shipping_address is not None
    assert env.queue.get(env.client_id, item).payload == before.payload


def test_an_order_on_a_channel_that_takes_customers_is_the_accounts(env: Env) -> None:
    env.queue.enqueue(env.client_id, [Request("sync_customer", acme(code="42"), env.source_id)])
    env.run()
    trade = _channel(env, "Trade", {"customers": True})
    mine = order("T-1", {"code": "42", "email": "orders@acme.example", "name": "Ann Buyer"})
    env.queue.enqueue(env.client_id, [Request("sync_order", {"order": mine}, trade, ("T-1",))])
    env.run()
    done = env.app.service.erase_customer(ROOT, env.client_id, "42")
    (stored,) = env.app.catalog.list_orders(env.client_id, None, 10)
    assert done.orders == [stored.id]
    assert stored.order.customer is not None and stored.order.customer.name == ""
    assert stored.order.shipping_address is None


def test_a_guest_order_is_the_accounts_by_its_own_email_only(env: Env) -> None:
    env.queue.enqueue(env.client_id, [Request("sync_customer", acme(), env.source_id)])
    env.run()
    guest = order("G-1", {"code": "guest:buyer@acme.example", "email": "Buyer@Acme.example"})
    env.queue.enqueue(
        env.client_id,
        [Request("sync_order", {"order": guest}, env.shop_id, ("G-1", "guest:buyer@acme.example"))],
    )
    env.run()
    done = env.app.service.erase_customer(ROOT, env.client_id, "ACC-1001")
    (stored,) = env.app.catalog.list_orders(env.client_id, None, 10)
    assert done.orders == [stored.id]
    assert stored.order.shipping_address is None
    (item,) = env.items(instruction="sync_order")
    # The guest code is the customer's email (in another case): hashed in the refs too.
    assert not any("buyer@acme.example" in ref.casefold() for ref in item.refs)


def test_two_accounts_sharing_a_mailbox_are_two_customers(env: Env) -> None:
    box = "accounts@acme.example"
    north = acme(code="ACC-1", email=box, name="Acme North")
    south = acme(code="ACC-2", email=box, name="Acme South", addresses=[], contacts=[])
    env.queue.enqueue(
        env.client_id,
        [
            Request("sync_customer", north, env.source_id),
            Request("sync_customer", south, env.source_id),
        ],
    )
    env.run()
    theirs = order(
        "S-1",
        {"code": "ACC-2", "email": box, "name": "Acme South"},
        shipping_address={"name": "South depot", "line1": "7 Quay", "city": "Hull"},
    )
    (item,) = env.queue.enqueue(
        env.client_id, [Request("sync_order", {"order": theirs}, env.shop_id, ("S-1",))]
    )
    env.run()
    before = env.queue.get(env.client_id, item)
    done = env.app.service.erase_customer(ROOT, env.client_id, "ACC-1")
    (stored,) = env.app.catalog.list_orders(env.client_id, None, 10)
    assert done.orders == [] and item not in done.items
    assert stored.order.shipping_address is not None
    assert env.queue.get(env.client_id, item).payload == before.payload
    other = env.app.catalog.customer_by_code(env.client_id, "ACC-2")
    assert other is not None and other.fields["name"] == "Acme South"


def test_the_same_order_number_on_another_channel_is_another_order(env: Env) -> None:
    env.queue.enqueue(env.client_id, [Request("sync_customer", acme(), env.source_id)])
    env.run()
    woo = _channel(env, "Woo")
    ann = order("1001", {"code": "guest:buyer@acme.example", "email": "buyer@acme.example"})
    zed = order(
        "1001",
        {"code": "guest:zed@zeta.example", "email": "zed@zeta.example", "name": "Zed"},
        shipping_address={"name": "Zed", "company": "Acme Ltd", "line1": "1 Dock Road"},
    )
    env.queue.enqueue(
        env.client_id, [Request("sync_order", {"order": ann}, env.shop_id, ("1001",))]
    )
    env.run()
    (theirs,) = env.queue.enqueue(
        env.client_id,
        [Request("sync_order", {"order": zed}, woo, ("1001", "guest:zed@zeta.example"))],
    )
    before = env.queue.get(env.client_id, theirs)
    done = env.app.service.erase_customer(ROOT, env.client_id, "ACC-1001")
    after = env.queue.get(env.client_id, theirs)
    assert len(done.orders) == 1 and theirs not in done.items
    assert after.payload == before.payload and list(after.refs) == list(before.refs)


def test_a_record_arriving_marked_erased_is_erased_all_the_same(env: Env) -> None:
    marked = {"stockyard_erased_at": 1}
    guest = order(
        "M-1",
        {"code": "guest:buyer@acme.example", "email": "buyer@acme.example", "attributes": marked},
    )
    env.queue.enqueue(
        env.client_id,
        [
            Request("sync_customer", acme(attributes=marked), env.source_id),
            Request("sync_order", {"order": guest}, env.shop_id, ("M-1",)),
        ],
    )
    env.run()
    row = env.app.catalog.customer_by_code(env.client_id, "ACC-1001")
    assert row is not None and not row.erased  # the source's marker is not ours
    (stored,) = env.app.catalog.list_orders(env.client_id, None, 10)
    assert stored.order.customer is not None
    assert "stockyard_erased_at" not in stored.order.customer.attributes
    done = env.app.service.erase_customer(ROOT, env.client_id, "ACC-1001")
    row = env.app.catalog.customer_by_code(env.client_id, "ACC-1001")
    assert not done.already_erased
    assert row is not None and row.erased and row.fields["name"] == ""
    assert done.orders == [stored.id]
    assert "Dora Delivery" not in env.dump() and "Ann Buyer" not in env.dump()


def test_an_erased_row_keeps_whether_the_account_is_open(env: Env) -> None:
    env.queue.enqueue(env.client_id, [Request("sync_customer", acme(active=False), env.source_id)])
    env.run()
    env.app.service.erase_customer(ROOT, env.client_id, "ACC-1001")
    row = env.app.catalog.customer_by_code(env.client_id, "ACC-1001")
    assert row is not None and row.erased and row.fields["active"] is False
