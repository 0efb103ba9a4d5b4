"""What an erasure may touch, on SQLite and PostgreSQL: only what provably is the erased
customer's (other customers at the same company or address, other people's orders and
products that name the company stay whole); a code that is an email address goes
everywhere the email goes; a store reporting an erased order again, or the source
sending the erased customer again, brings nothing personal back until an operator
un-erases; values with quotes and backslashes are found in plain-text errors."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from stockyard.connectors.base import Connector
from stockyard.engine import Request
from stockyard.errors import NotFound, PermanentError
from tests.support.cli import invoke
from tests.test_erase_customer import ROOT, Env, acme, env, order

__all__ = ["env"]  # the fixture, shared with test_erase_customer

GUEST = "buyer@acme.example"


def test_other_customers_orders_and_products_that_share_values_are_left_whole(
    env: Env,
) -> None:
    env.queue.enqueue(env.client_id, [Request("sync_customer", acme(), env.source_id)])
    env.run()
    colleague = acme(
        code="ACC-1002",
        email="carl@acme.example",
        name="Carl Other",
        phone="+44 20 7946 1111",
    )  # the same accounts mailbox (ap@acme.example) as Ann's account's contact
    # Ann's change waits behind a failed record, and so does her colleague's.
    _bad, hers, theirs = env.queue.enqueue(
        env.client_id,
        [
            Request("sync_customer", acme(code="ACC-9", credit_limit="-1"), env.source_id),
            Request("sync_customer", acme(phone="+44 20 7946 9999"), env.source_id),
            Request("sync_customer", colleague, env.source_id),
        ],
    )
    zed = order(
        "W-50",
        {"code": "guest-5", "email": "zed@zeta.example", "name": "Zed"},
        shipping_address={"name": "Zed", "company": "Acme Ltd", "line1": "1 Dock Road"},
    )
    (stranger,) = env.queue.enqueue(
        env.client_id, [Request("sync_order", {"order": zed}, env.shop_id, ("W-50",))]
    )
    product = {
        "code": "P-1",
        "title": "Press spares for Acme Ltd, 1 Dock Road",
        "variants": [{"sku": "P-1-A", "price": "1.00"}],
    }
    (spares,) = env.queue.enqueue(
        env.client_id, [Request("sync_product", product, env.source_id, ("P-1",))]
    )
    whole = {i: env.queue.get(env.client_id, i).payload for i in (theirs, stranger, spares)}

    done = env.app.service.erase_customer(ROOT, env.client_id, "ACC-1001")

    assert {theirs, stranger, spares}.isdisjoint(done.items)
    assert {i: env.queue.get(env.client_id, i).payload for i in whole} == whole
    # Ann's own queued change is erased all the same.
    assert hers in done.items
    assert env.queue.get(env.client_id, hers).payload["phone"] == ""


def test_a_guest_order_coded_by_email_loses_the_email_as_code(env: Env) -> None:
    env.queue.enqueue(env.client_id, [Request("sync_customer", acme(), env.source_id)])
    env.shop.state.orders.append(order("W-9", {"code": GUEST, "email": GUEST}))
    env.queue.enqueue(env.client_id, [Request("pull_orders", {}, env.shop_id)])
    env.run()
    assert GUEST in env.dump()

    env.app.service.erase_customer(ROOT, env.client_id, "ACC-1001")

    assert GUEST not in env.dump().casefold()
    (stored,) = env.app.catalog.list_orders(env.client_id, None, 10)
    assert stored.order.customer is not None
    assert stored.order.customer.code.startswith("erased-")


def test_a_customer_coded_by_email_loses_it_from_rows_refs_keys_and_the_audit(
    env: Env,
) -> None:
    env.queue.enqueue(
        env.client_id, [Request("sync_customer", acme(code=GUEST), env.source_id, (GUEST,))]
    )
    env.shop.state.orders.append(order("W-9", {"code": GUEST, "email": GUEST}))
    env.queue.enqueue(env.client_id, [Request("pull_orders", {}, env.shop_id)])
    env.run()
    assert GUEST in env.dump()

    done = env.app.service.erase_customer(ROOT, env.client_id, GUEST)

    dumped = env.dump().casefold()
    assert GUEST not in dumped
    assert done.code.startswith("erased-") and done.code in env.dump()
    (entry,) = [
        e
        for e in env.app.tenancy.audit_log(env.client_id, None, 50)
        if e.action == "customer.erase"
    ]
    assert entry.detail["code"] == done.code
    # Erasing it again by the email finds the erased row, and changes nothing more.
    again = env.app.service.erase_customer(ROOT, env.client_id, GUEST)
    assert again.already_erased and again.code == done.code and again.items == []


def test_a_store_reporting_an_erased_order_again_brings_back_only_its_sums(env: Env) -> None:
    ann = {"code": "ACC-1001", "email": GUEST, "name": "Ann Buyer"}
    env.queue.enqueue(env.client_id, [Request("sync_customer", acme(), env.source_id)])
    env.shop.state.orders.append(order("T-1", ann))
    env.queue.enqueue(env.client_id, [Request("pull_orders", {}, env.shop_id)])
    env.run()
    env.app.service.erase_customer(ROOT, env.client_id, "ACC-1001")

    # The store reports it again: it recorded a payment.
    again = order("T-1", ann, paid="90.00", total="90.00")
    env.queue.enqueue(env.client_id, [Request("sync_order", {"order": again}, env.shop_id)])
    env.run()

    (stored,) = env.app.catalog.list_orders(env.client_id, None, 10)
    assert stored.order.paid is not None and str(stored.order.paid) == "90.00"
    assert stored.order.customer is not None and stored.order.customer.email is None
    assert stored.order.customer.name == "" and stored.order.shipping_address is None
    assert "Ann Buyer" not in repr(stored.order) and "Dock Road" not in repr(stored.order)


def test_the_source_sending_an_erased_customer_again_keeps_it_erased_until_un_erased(
    env: Env,
) -> None:
    env.queue.enqueue(env.client_id, [Request("sync_customer", acme(), env.source_id)])
    env.run()
    env.app.service.erase_customer(ROOT, env.client_id, "ACC-1001")

    sent_before = len(env.items(instruction="sync_channel_customer"))
    changed = acme(credit_limit="7000.00")
    env.queue.enqueue(env.client_id, [Request("sync_customer", changed, env.source_id)])
    env.run()
    row = env.app.catalog.customer_by_code(env.client_id, "ACC-1001")
    assert row.erased and row.email is None and row.customer.name == ""
    # Nothing is queued for the channels either: an erased account has nothing to send.
    assert len(env.items(instruction="sync_channel_customer")) == sent_before
    # Trade terms are not personal: they follow the source.
    assert str(row.customer.credit_limit) == "7000.00"

    # An operator un-erases (the customer came back for good): the next record is stored.
    env.app.service.unerase_customer(ROOT, env.client_id, "ACC-1001")
    assert not env.app.catalog.customer_by_code(env.client_id, "ACC-1001").erased
    env.queue.enqueue(env.client_id, [Request("sync_customer", changed, env.source_id)])
    env.run()
    row = env.app.catalog.customer_by_code(env.client_id, "ACC-1001")
    assert not row.erased and row.customer.name == "Ann Buyer"
    with pytest.raises(NotFound, match="no erased customer 'NOPE'"):
        env.app.service.unerase_customer(ROOT, env.client_id, "NOPE")
    audit = [e.action for e in env.app.tenancy.audit_log(env.client_id, None, 50)]
    assert "customer.unerase" in audit


class Echo(Connector):
    """A trade store that refuses an account repeating its name in the error."""

    roles: ClassVar[frozenset[str]] = frozenset({"channel"})

    def upsert_customer(self, customer: dict[str, Any], remote_id: str | None, key: str) -> str:
        raise PermanentError(f"account {customer['name']} refused")


def test_values_with_quotes_and_backslashes_are_erased_from_plain_text(env: Env) -> None:
    env.app.connectors.add("echo", Echo)
    env.app.tenancy.add_connection(
        env.client_id, "channel", "echo", "Echo store", {"rules": {"customers": True}}
    )
    name = 'Ann "Hammer" O\\Buyer'
    env.queue.enqueue(env.client_id, [Request("sync_customer", acme(name=name), env.source_id)])
    env.run()
    (refused,) = [
        i
        for i in env.items(instruction="sync_channel_customer")
        if (i.error or "").startswith("account Ann")
    ]
    env.app.service.erase_customer(ROOT, env.client_id, "ACC-1001")
    assert env.queue.get(env.client_id, refused.id).error == "account [erased] refused"


def test_the_cli_un_erases_and_asks_first(env: Env) -> None:
    env.queue.enqueue(env.client_id, [Request("sync_customer", acme(), env.source_id)])
    env.run()
    env.app.service.erase_customer(ROOT, env.client_id, "ACC-1001")
    url = env.queue.db.url
    refused = invoke(url, "customers", "unerase", "ACC-1001")
    assert refused.returncode == 2 and "add --yes to confirm" in refused.stderr
    done = invoke(url, "customers", "unerase", "--yes", "ACC-1001")
    assert done.returncode == 0, done.stderr
    assert "customer ACC-1001 is no longer erased" in done.stdout
    again = invoke(url, "customers", "unerase", "--yes", "ACC-1001")
    assert again.returncode != 0 and "no erased customer 'ACC-1001'" in again.stderr
