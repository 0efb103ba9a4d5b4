"""Customers, after review: a change back to an earlier state is not lost, a source can
close an account (`active`), and only the channels that ask for customers get them (a
consumer shop is never sent a trade account).

The ERP and the trade store are the in-memory `Ledger` of tests/test_customers_flow.py."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from stockyard.catalog.models import Customer
from stockyard.engine import Request
from stockyard.engine.handlers import Context
from stockyard.errors import PermanentError
from stockyard.flows.customers import customer_hash, pull_customers
from stockyard.flows.rules import rules_of
from stockyard.tenancy import Tenancy
from tests.test_customers_flow import Env, acme, channel
from tests.test_customers_flow import backend as backend  # the fixtures, re-exported
from tests.test_customers_flow import env as env


def pull(env: Env) -> None:
    env.queue.enqueue(env.client_id, [Request("pull_customers", {}, env.source_id)])
    env.run()


# ------------------------------------------------------------ a change back is a change


def test_a_customer_changed_back_to_an_earlier_state_is_synced(env: Env) -> None:
    env.rules({"group_prices": {"trade": "trade"}})
    env.erp.customers.append(acme())
    pull(env)
    env.erp.customers.append(acme(price_tier=None))  # A -> B
    pull(env)
    env.erp.customers.append(acme())  # B -> A again: as it was first
    pull(env)
    stored = env.store.customer_by_code(env.client_id, "ACC-1001")
    assert stored.customer.price_tier == "trade"
    assert [a["group"] for a in env.trade.accounts.values()] == ["trade"]
    assert [c[0] for c in env.trade.calls] == ["ACC-1001"] * 3
    assert len(env.items("done", instruction="sync_customer")) == 3


def test_a_page_that_changes_a_customer_back_ends_with_its_last_record(env: Env) -> None:
    env.rules({"customers": True})
    env.erp.customers.extend([acme(), acme(name="Ann B."), acme()])
    pull(env)
    # Keyed by content, the second `acme()` was the first's item and the page ended on
    # "Ann B.". Queued items of one customer coalesce: the last record is the one applied.
    assert env.store.customer_by_code(env.client_id, "ACC-1001").customer.name == "Ann Buyer"
    assert [a["name"] for a in env.trade.accounts.values()] == ["Ann Buyer"]


def test_a_pull_run_again_after_a_crash_queues_nothing_twice(env: Env) -> None:
    env.rules({"customers": True})
    env.erp.customers.extend([acme(), acme(code="ACC-2")])
    (item,) = env.queue.enqueue(env.client_id, [Request("pull_customers", {}, env.source_id)])
    connection = Tenancy(env.queue.db).connection(env.source_id)

    def run_once() -> list[Request]:
        # The same item, run twice: its cursor was stored, its item never settled.
        job = SimpleNamespace(id=item, client_id=env.client_id, payload={})
        ctx = Context(job, connection)  # type: ignore[arg-type]
        pull_customers(env.app.flow_services, ctx)
        return ctx.follow_ups

    first, again = run_once(), run_once()
    assert [r.idempotency_key for r in first] == [r.idempotency_key for r in again]
    assert len({r.idempotency_key for r in first}) == 2
    ids = env.queue.enqueue(env.client_id, first)
    assert env.queue.enqueue(env.client_id, again) == ids


# ------------------------------------------------------------------------- active


def test_a_closed_account_is_carried_to_the_catalog_and_the_store(env: Env) -> None:
    env.rules({"customers": True})
    env.sync(acme())
    env.run()
    ((remote_id, sent),) = env.trade.accounts.items()
    assert sent["active"] is True
    env.sync(acme(active=False))
    env.run()
    assert env.store.customer_by_code(env.client_id, "ACC-1001").customer.active is False
    assert env.trade.accounts[remote_id]["active"] is False
    assert env.trade.calls[-1][1] == remote_id  # the account the store holds, closed
    env.sync(acme())  # opened again
    env.run()
    assert env.trade.accounts[remote_id]["active"] is True
    assert env.items("failed") == []


def test_a_closed_account_never_sent_is_not_opened_on_the_store(env: Env) -> None:
    env.rules({"customers": True})
    env.sync(acme(active=False))
    env.run()
    assert env.trade.calls == []
    assert env.items(instruction="sync_channel_customer") == []
    assert env.store.customer_by_code(env.client_id, "ACC-1001").customer.active is False


def test_active_is_a_boolean() -> None:
    with pytest.raises(ValueError, match="active"):
        Customer.model_validate(acme(active="maybe"))


def test_an_open_account_keeps_the_fingerprint_it_had_before_active_existed() -> None:
    # Links hold the hash of what a store was sent; the new field must not make every
    # customer look changed and be sent again.
    ann = Customer.model_validate(acme())
    before = {k: v for k, v in ann.model_dump(mode="json").items() if k != "active"}
    from stockyard.flows.rules import content_hash

    assert customer_hash(ann) == content_hash(before)
    assert customer_hash(ann.model_copy(update={"active": False})) != customer_hash(ann)


# --------------------------------------------------------- which channels get customers


def test_a_channel_gets_customers_only_when_its_rules_ask(env: Env) -> None:
    env.rules({})
    env.sync(acme())
    env.run()
    # No rules: a connector that could take accounts is not sent any.
    assert env.trade.calls == []
    assert env.items(instruction="sync_channel_customer") == []
    env.rules({"group_prices": {"trade": "trade"}})  # a trade store's groups: it takes them
    env.sync(acme())
    env.run()
    assert [a["group"] for a in env.trade.accounts.values()] == ["trade"]
    env.rules({"group_prices": {"trade": "trade"}, "customers": False})  # said no
    env.sync(acme(name="Ann B."))
    env.run()
    assert len(env.trade.calls) == 1
    env.rules({"customers": True})  # asked, without groups: in no group
    env.sync(acme(name="Ann B."))
    env.run()
    assert [a["group"] for a in env.trade.accounts.values()] == [None]
    assert env.items("failed") == []


def test_a_sync_channel_customer_for_a_channel_that_takes_none_fails_clearly(env: Env) -> None:
    env.rules({})
    env.sync(acme())
    env.run()
    customer_id = env.store.customer_by_code(env.client_id, "ACC-1001").id
    (item,) = env.queue.enqueue(
        env.client_id,
        [Request("sync_channel_customer", {"customer_id": customer_id}, env.trade_id)],
    )
    env.run()
    error = env.queue.get(env.client_id, item).error or ""
    assert "takes no customers" in error and "rules.customers" in error
    assert env.trade.calls == []


def test_the_customers_rule_is_a_boolean() -> None:
    assert rules_of(channel()).takes_customers is False
    assert rules_of(channel(rules={"group_prices": {"t": "g"}})).takes_customers is True
    assert rules_of(channel(rules={"customers": True})).takes_customers is True
    with pytest.raises(PermanentError, match="customers"):
        rules_of(channel(rules={"customers": "maybe"}))
