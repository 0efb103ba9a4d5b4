"""Erasing a customer on request, on SQLite and PostgreSQL: their personal fields leave the
catalog's customer row, their orders, and the payloads and errors of the client's queue
items (finished or not) and of their attempts; ids, totals, the queue's order and the audit
stay, the audit records the erasure without personal data, another client's data is never
touched, and erasing twice changes nothing more. Items that were queued go on with what
remains, or fail saying why."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest

from stockyard.accounts import Principal
from stockyard.application import Application
from stockyard.connectors.base import Connector
from stockyard.connectors.registry import ConnectorRegistry
from stockyard.engine import ItemFilter, Queue, Request
from stockyard.errors import Forbidden, InvalidInput, NotFound, PermanentError
from stockyard.tenancy import Tenancy
from tests.support.cli import invoke
from tests.support.queues import drain
from tests.support.remote import Remote

PERSONAL = (
    "buyer@acme.example",
    "Ann Buyer",
    "Acme Ltd",
    "+44 20 7946 0000",
    "1 Dock Road",
    "EC1A 1BB",
    "Bob Payable",
    "ap@acme.example",
    "Dora Delivery",
)
ROOT = Principal("test", platform_admin=True)


class Picky(Connector):
    """A trade store that refuses an account, repeating its email in the error (as real
    ones do): personal data lands in an item's error and its attempts."""

    roles: ClassVar[frozenset[str]] = frozenset({"channel"})

    def upsert_customer(self, customer: dict[str, Any], remote_id: str | None, key: str) -> str:
        raise PermanentError(f"an account with email {customer['email']} exists already")


@dataclass
class Env:
    queue: Queue
    client_id: int
    other_id: int
    source_id: int
    shop_id: int
    store_id: int
    their_source_id: int
    app: Application
    shop: Remote
    erp: Remote

    def run(self) -> None:
        drain(self.queue, self.app.handlers)

    def dump(self, client_id: int | None = None) -> str:
        """Every row of a client's tables that can hold a customer's data, as text."""
        client = int(client_id or self.client_id)
        of_items = f"item_id IN (SELECT id FROM items WHERE client_id = {client})"
        wheres = {
            "customers": f"client_id = {client}",
            "orders": f"client_id = {client}",
            "items": f"client_id = {client}",
            "audit": f"client_id = {client}",
            "attempts": of_items,
            "item_refs": of_items,
        }
        texts: list[str] = []
        with self.queue.db.write() as cur:
            for table, where in wheres.items():
                cur.execute(f"SELECT * FROM {table} WHERE {where}")  # ids are ints
                texts.extend(json.dumps([str(v) for v in row]) for row in cur.fetchall())
        return "\n".join(texts)

    def items(self, client_id: int | None = None, instruction: str | None = None) -> list[Any]:
        flt = ItemFilter(
            client_id or self.client_id, instructions=(instruction,) if instruction else ()
        )
        return sorted(self.queue.list_items(flt, limit=1000), key=lambda i: i.id)


@pytest.fixture
def env(queue: Queue, client_id: int) -> Iterator[Env]:
    erp, shop = Remote(), Remote()
    registry = ConnectorRegistry.installed()
    registry.add("picky", Picky)
    tenancy = Tenancy(queue.db)
    source = tenancy.add_connection(client_id, "source", "http", "ERP", {"base_url": erp.url})
    # The shop's customer codes are the ERP's accounts (its rules take customers): its
    # orders name the account by code (test_erase_customer_owner: where they do not).
    web = tenancy.add_connection(
        client_id,
        "channel",
        "http",
        "Web shop",
        {"base_url": shop.url, "rules": {"customers": True}},
    )
    trade = tenancy.add_connection(
        client_id, "channel", "picky", "Trade store", {"rules": {"customers": True}}
    )
    other = tenancy.ensure_client("other")
    theirs = tenancy.add_connection(other, "source", "http", "Their ERP", {"base_url": erp.url})
    app = Application(queue.db, queue=queue, connectors=registry)
    yield Env(queue, client_id, other, source.id, web.id, trade.id, theirs.id, app, shop, erp)
    erp.stop()
    shop.stop()


def acme(**changes: Any) -> dict[str, Any]:
    return {
        "code": "ACC-1001",
        "email": "buyer@acme.example",
        "name": "Ann Buyer",
        "company": "Acme Ltd",
        "phone": "+44 20 7946 0000",
        "addresses": [{"line1": "1 Dock Road", "postcode": "EC1A 1BB", "country": "GB"}],
        "price_tier": "trade",
        "credit_limit": "5000.00",
        "payment_terms": "30 days net",
        "contacts": [{"name": "Bob Payable", "email": "ap@acme.example", "role": "accounts"}],
    } | changes


def order(remote_id: str, customer: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {
        "remote_id": remote_id,
        "number": f"#{remote_id}",
        "currency": "GBP",
        "customer": customer,
        "lines": [{"sku": "BOLT-10", "quantity": 100, "price": "0.90"}],
        "shipping_address": {
            "name": "Dora Delivery",
            "line1": "1 Dock Road",
            "city": "London",
            "postcode": "EC1A 1BB",
        },
        "total": "90.00",
    } | changes


NINE = acme(
    code="ACC-9",
    email="nine@nine.example",
    name="Nina Nine",
    company="Nine plc",
    phone="+44 1632 960999",
    addresses=[],
    contacts=[],
)


def populate(env: Env) -> dict[str, int]:
    """Ann's customer record, two orders of hers (one on account, one as a guest with her
    email), a stranger's order, a failed push of her account, and a change of hers still
    queued behind a failed record in the source's lane."""
    env.queue.enqueue(env.client_id, [Request("sync_customer", acme(), env.source_id)])
    env.shop.state.orders.extend(
        [
            order("T-1", {"code": "ACC-1001", "email": "buyer@acme.example", "name": "Ann Buyer"}),
            order(
                "W-2",
                # A guest: known by the e-mail alone (in another case), never by a code.
                {
                    "code": "guest:buyer@acme.example",
                    "email": "BUYER@acme.example",
                    "phone": "+44 20 7946 0000",
                },
            ),
            order(
                "W-3",
                {"code": "guest-78", "email": "zed@zeta.example", "name": "Zed"},
                shipping_address={"name": "Zed", "line1": "9 Elm St", "postcode": "ZZ9 9ZZ"},
            ),
        ]
    )
    env.queue.enqueue(env.client_id, [Request("pull_orders", {}, env.shop_id)])
    env.run()
    # The other client has a customer with the same code and data: never touched.
    env.queue.enqueue(env.other_id, [Request("sync_customer", acme(), env.their_source_id)])
    bad, waiting = env.queue.enqueue(
        env.client_id,
        [
            # Another account's (nothing of Ann's in it: her email on another account's
            # record would not make it hers, test_erase_customer_owner).
            Request("sync_customer", NINE | {"credit_limit": "-1"}, env.source_id),
            Request("sync_customer", acme(phone="+44 20 7946 9999"), env.source_id),
        ],
    )
    env.run()
    (refused,) = env.items(instruction="sync_channel_customer")
    return {"bad": bad, "waiting": waiting, "refused": refused.id}


def test_erasing_removes_every_personal_value_and_keeps_the_rest(env: Env) -> None:
    ids = populate(env)
    before = env.dump()
    assert all(value in before for value in PERSONAL)
    refused = env.queue.get(env.client_id, ids["refused"])
    assert "buyer@acme.example" in (refused.error or "")
    store = env.app.catalog
    orders_before = {o.order.remote_id: o for o in store.list_orders(env.client_id, None, 100)}
    items_before = [(i.id, i.instruction, i.status, i.lane_id) for i in env.items()]

    done = env.app.service.erase_customer(ROOT, env.client_id, "ACC-1001")

    assert (done.code, done.already_erased) == ("ACC-1001", False)
    assert done.orders == sorted(orders_before[r].id for r in ("T-1", "W-2"))
    after = env.dump()
    for value in PERSONAL:
        assert value.casefold() not in after.casefold(), value
    # The stranger's order, and the other client's customer of the same code, are whole.
    assert "zed@zeta.example" in after and "9 Elm St" in after
    assert all(value in env.dump(env.other_id) for value in PERSONAL[:4])
    theirs = store.customer_by_code(env.other_id, "ACC-1001")
    assert theirs.customer.email == "buyer@acme.example" and not theirs.erased

    # The customer row keeps its code and trade terms.
    row = store.customer_by_code(env.client_id, "ACC-1001")
    assert row.erased and row.email is None
    assert (row.customer.name, row.customer.contacts, row.customer.addresses) == ("", [], [])
    assert (row.customer.price_tier, row.customer.payment_terms) == ("trade", "30 days net")
    # Orders keep ids, numbers, lines, totals, the ERP's code; no addresses.
    for remote_id in ("T-1", "W-2"):
        was, now = orders_before[remote_id], store.order(env.client_id, orders_before[remote_id].id)
        assert (now.order.total, now.order.lines, now.source_code) == (
            was.order.total,
            was.order.lines,
            was.source_code,
        )
        assert now.order.shipping_address is None
        assert now.order.customer is not None and now.order.customer.email is None
    # The queue: same items, same order, same statuses and lanes; the errors say what
    # happened without saying to whom.
    assert [(i.id, i.instruction, i.status, i.lane_id) for i in env.items()] == items_before
    refused = env.queue.get(env.client_id, ids["refused"])
    assert refused.error == "an account with email [erased] exists already"
    # The audit records the erasure: who, which code, how much; nothing personal.
    (entry,) = [
        e
        for e in env.app.tenancy.audit_log(env.client_id, None, 50)
        if e.action == "customer.erase"
    ]
    assert entry.actor == "test"
    assert entry.detail["code"] == "ACC-1001" and entry.detail["orders"] == 2


def test_queued_items_go_on_with_what_remains_or_fail_saying_why(env: Env) -> None:
    ids = populate(env)
    store = env.app.catalog
    env.app.service.erase_customer(ROOT, env.client_id, "ACC-1001")

    # The change that waited behind a failed record runs: it stores nothing personal.
    env.queue.skip(env.client_id, [ids["bad"]], "tester")
    env.run()
    assert env.queue.get(env.client_id, ids["waiting"]).status == "done"
    row = store.customer_by_code(env.client_id, "ACC-1001")
    assert row.erased and row.customer.phone == ""
    # The failed push of the account, retried, finds nothing to send and finishes.
    env.queue.retry(env.client_id, [ids["refused"]], "tester")
    env.run()
    assert env.queue.get(env.client_id, ids["refused"]).status == "done"


def test_an_erased_order_not_yet_in_the_erp_fails_saying_why(env: Env) -> None:
    populate(env)
    env.erp.fail(503)  # the ERP is down when Ann's next order arrives
    env.shop.state.orders.append(order("T-4", {"code": "ACC-1001", "name": "Ann Buyer"}))
    env.queue.enqueue(env.client_id, [Request("pull_orders", {}, env.shop_id)])
    env.run()
    (waiting,) = [i for i in env.items(instruction="add_order") if i.status == "failed"]
    env.app.service.erase_customer(ROOT, env.client_id, "ACC-1001")
    env.erp.fail(None)
    env.queue.retry(env.client_id, [waiting.id], "tester")
    env.run()
    failed = env.queue.get(env.client_id, waiting.id)
    assert failed.status == "failed"
    assert failed.error == (
        "order #T-4: its customer's personal data was erased on request, so it cannot be"
        " sent to ERP; skip this item"
    )


def test_a_product_whose_code_is_the_account_number_is_left_alone(env: Env) -> None:
    populate(env)
    product = {
        "code": "ACC-1001",
        "title": "Account binder",
        "variants": [{"sku": "ACC-1001-A4", "price": "3.00"}],
    }
    (item,) = env.queue.enqueue(
        env.client_id, [Request("sync_product", product, env.source_id, ("ACC-1001",))]
    )
    env.app.service.erase_customer(ROOT, env.client_id, "ACC-1001")
    assert env.queue.get(env.client_id, item).payload == product


def test_erasing_twice_changes_nothing_more(env: Env) -> None:
    populate(env)
    first = env.app.service.erase_customer(ROOT, env.client_id, "ACC-1001")
    dumped = env.dump()
    second = env.app.service.erase_customer(ROOT, env.client_id, "ACC-1001")
    assert first.orders and first.items and first.attempts == 1
    assert second.already_erased and (second.orders, second.items) == ([], [])
    # Only the audit grew: by the second entry.
    grown = set(env.dump().splitlines()) - set(dumped.splitlines())
    assert len(grown) == 1 and "customer.erase" in grown.pop()


def test_tenancy_roles_and_bad_input(env: Env) -> None:
    populate(env)
    service = env.app.service
    stranger = Principal("stranger", roles={env.other_id: "administrator"})
    with pytest.raises(NotFound):
        service.erase_customer(stranger, env.client_id, "ACC-1001")
    operator = Principal("op", roles={env.client_id: "operator"})
    with pytest.raises(Forbidden, match="administrator"):
        service.erase_customer(operator, env.client_id, "ACC-1001")
    with pytest.raises(NotFound, match="no customer 'NOPE'"):
        service.erase_customer(ROOT, env.client_id, "NOPE")
    with pytest.raises(InvalidInput, match="1 to 1000"):
        service.erase_customer(ROOT, env.client_id, "  ")
    assert not env.app.catalog.customer_by_code(env.client_id, "ACC-1001").erased


def test_the_cli_erases_and_asks_first(env: Env) -> None:
    populate(env)
    url = env.queue.db.url
    refused = invoke(url, "customers", "erase", "ACC-1001")
    assert refused.returncode == 2 and "add --yes to confirm" in refused.stderr
    done = invoke(url, "customers", "erase", "--yes", "ACC-1001")
    assert done.returncode == 0, done.stderr
    assert "customer ACC-1001 erased: 2 orders" in done.stdout
    missing = invoke(url, "customers", "erase", "--yes", "--client", "nobody", "ACC-1001")
    assert missing.returncode == 2 and "no client named 'nobody'" in missing.stderr
