"""Customers end to end through the queue: a source's customers are pulled (on a schedule
set per connection), stored in the catalog, and pushed to each channel that takes
customers only when what that channel holds differs, in the customer group the channel's
`group_prices` rule gives their price tier.

The source and the trade store here are one small in-process connector (`Ledger`) that
keeps its accounts in memory, so the test can see exactly what each call sent; the real
systems (Tryton's parties, Oscar's accounts) have their own tests."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar

import pytest

from stockyard.application import Application
from stockyard.catalog.models import Customer, Variant
from stockyard.catalog.store import CatalogStore, StoredVariant
from stockyard.connectors.base import Connector, Page
from stockyard.connectors.registry import ConnectorRegistry
from stockyard.engine import ItemFilter, Queue, Request
from stockyard.errors import PermanentError
from stockyard.flows.polling import schedule_polls
from stockyard.flows.rules import rules_of
from stockyard.tenancy import Tenancy
from stockyard.tenancy.connections import Connection
from tests.support.queues import drain


class Books:
    """What the ledger holds: the source's customers and the store's accounts."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.customers: list[dict[str, Any]] = []  # what fetch_customers answers, in order
        self.accounts: dict[str, dict[str, Any]] = {}  # remote id -> last customer sent
        self.calls: list[tuple[str, str | None, str]] = []  # (code, remote id given, key)
        self.reject: dict[str, str] = {}  # code -> error


BOOKS: dict[str, Books] = {}  # by the connection's "books" setting


class Ledger(Connector):
    roles: ClassVar[frozenset[str]] = frozenset({"source", "channel"})

    def __init__(self, settings: Mapping[str, Any]) -> None:
        super().__init__(settings)
        self.books = BOOKS[str(settings["books"])]

    def fetch_customers(self, cursor: str | None) -> Page:
        start = int(cursor or 0)
        with self.books.lock:
            records = self.books.customers[start:]
            return Page(records, str(start + len(records)))

    def upsert_customer(self, customer: dict[str, Any], remote_id: str | None, key: str) -> str:
        with self.books.lock:
            self.books.calls.append((customer["code"], remote_id, key))
            if customer["code"] in self.books.reject:
                raise PermanentError(self.books.reject[customer["code"]])
            remote_id = remote_id or f"acct-{len(self.books.accounts) + 1}"
            self.books.accounts[remote_id] = customer
            return remote_id


class Plain(Connector):
    """A channel that does not take customers."""

    roles: ClassVar[frozenset[str]] = frozenset({"channel"})


@dataclass
class Env:
    queue: Queue
    client_id: int
    erp: Books
    trade: Books
    source_id: int
    trade_id: int
    shop_id: int
    app: Application

    @property
    def store(self) -> CatalogStore:
        return CatalogStore(self.queue.db)

    def run(self) -> None:
        drain(self.queue, self.app.handlers)

    def items(self, *statuses: str, instruction: str | None = None) -> list[Any]:
        flt = ItemFilter(
            self.client_id, statuses=statuses, instructions=(instruction,) if instruction else ()
        )
        return self.queue.list_items(flt, limit=1000)

    def rules(self, rules: dict[str, Any]) -> None:
        """Set the trade store's channel rules (through the app's tenancy, whose cache the
        flows read)."""
        tenancy = self.app.tenancy
        settings = tenancy.connection(self.trade_id, self.client_id).settings
        tenancy.set_connection_settings(self.client_id, self.trade_id, settings | {"rules": rules})

    def sync(self, *customers: dict[str, Any]) -> list[int]:
        return self.queue.enqueue(
            self.client_id, [Request("sync_customer", c, self.source_id) for c in customers]
        )


@pytest.fixture
def backend() -> str:
    # SQLite only: the flows hold no SQL of their own beyond the catalog's queries, which
    # tests/test_erase_customer.py runs on both backends.
    return "sqlite"


@pytest.fixture
def env(queue: Queue, client_id: int, request: pytest.FixtureRequest) -> Iterator[Env]:
    name = request.node.name
    erp, trade = (
        BOOKS.setdefault(f"{name}:erp", Books()),
        BOOKS.setdefault(f"{name}:trade", Books()),
    )
    registry = ConnectorRegistry.installed()
    registry.add("ledger", Ledger)
    registry.add("plain", Plain)
    tenancy = Tenancy(queue.db)
    source = tenancy.add_connection(
        client_id, "source", "ledger", "ERP", {"books": f"{name}:erp", "poll_customers_every": 60}
    )
    trade_store = tenancy.add_connection(
        client_id,
        "channel",
        "ledger",
        "Trade store",
        # A channel is sent customers only when its rules ask (tests/test_customers_channels.py)
        {"books": f"{name}:trade", "rules": {"customers": True}},
    )
    shop = tenancy.add_connection(client_id, "channel", "plain", "Shop", {})
    app = Application(queue.db, queue=queue, connectors=registry)
    yield Env(queue, client_id, erp, trade, source.id, trade_store.id, shop.id, app)
    BOOKS.pop(f"{name}:erp"), BOOKS.pop(f"{name}:trade")


def acme(**changes: Any) -> dict[str, Any]:
    return {
        "code": "ACC-1001",
        "email": "buyer@acme.example",
        "name": "Ann Buyer",
        "company": "Acme Ltd",
        "phone": "+44 20 7946 0000",
        "addresses": [{"line1": "1 Dock Road", "city": "London", "country": "GB"}],
        "price_tier": "trade",
        "credit_limit": "5000.00",
        "payment_terms": "30 days net",
        "contacts": [{"name": "Bob Payable", "email": "ap@acme.example", "role": "accounts"}],
    } | changes


def test_a_pulled_customer_reaches_the_catalog_and_the_trade_store_once(env: Env) -> None:
    env.erp.customers.append(acme())
    (pull,) = schedule_polls(env.app.flow_services)
    assert env.queue.get(env.client_id, pull).instruction == "pull_customers"
    env.run()

    stored = env.store.customer_by_code(env.client_id, "ACC-1001")
    assert stored.customer.price_tier == "trade"
    assert stored.customer.credit_limit == Decimal("5000.00")
    assert stored.customer.contacts[0].role == "accounts"
    ((remote_id, sent),) = env.trade.accounts.items()
    assert (sent["code"], sent["price_tier"], sent["credit_limit"]) == (
        "ACC-1001",
        "trade",
        "5000.00",
    )
    assert env.store.links(env.trade_id, "customer", [stored.id])[stored.id].remote_id == remote_id
    # The shop's connector takes no customers: nothing was queued for it.
    assert [i.lane_id for i in env.items(instruction="sync_channel_customer")] == [env.trade_id]
    assert env.items("failed") == []

    # The same customer again (a repeated pull, an unchanged record): nothing to send.
    env.sync(acme())
    env.run()
    assert len(env.trade.calls) == 1

    # A change is sent to the account the store already holds.
    env.sync(acme(credit_limit="7500.00"))
    env.run()
    assert env.trade.calls[-1][:2] == ("ACC-1001", remote_id)
    assert env.trade.accounts[remote_id]["credit_limit"] == "7500.00"
    assert len(env.trade.accounts) == 1


def test_the_pull_goes_on_from_its_cursor(env: Env) -> None:
    env.erp.customers.append(acme())
    env.queue.enqueue(env.client_id, [Request("pull_customers", {}, env.source_id)])
    env.run()
    env.erp.customers.append(acme(code="ACC-1002", email="two@beta.example"))
    env.queue.enqueue(env.client_id, [Request("pull_customers", {}, env.source_id)])
    env.run()
    synced = env.items("done", instruction="sync_customer")
    assert sorted(i.refs[0] for i in synced) == ["ACC-1001", "ACC-1002"]
    assert [c[0] for c in env.trade.calls] == ["ACC-1001", "ACC-1002"]


def test_a_rejected_account_fails_only_its_item_and_a_retry_sends_the_latest(env: Env) -> None:
    env.trade.reject["ACC-1001"] = "email already used by another account"
    env.sync(acme(), acme(code="ACC-2002", email="other@beta.example"))
    env.run()
    (failed,) = env.items("failed")
    assert failed.instruction == "sync_channel_customer"
    assert "email already used" in (failed.error or "")
    # The trade store's lane is blocked behind it (customers go in order); the catalog
    # holds both customers.
    env.store.customer_by_code(env.client_id, "ACC-2002")

    env.sync(acme(email="ann@acme.example"))
    env.run()
    del env.trade.reject["ACC-1001"]
    env.queue.retry(env.client_id, [failed.id], "tester")
    env.run()
    sent = {c["code"]: c for c in env.trade.accounts.values()}
    assert sent["ACC-1001"]["email"] == "ann@acme.example"
    assert "ACC-2002" in sent
    assert env.items("failed") == []


def test_bad_customers_fail_naming_the_field(env: Env) -> None:
    bad_limit, behind = env.sync(acme(credit_limit="-5"), acme(code="ACC-3"))
    env.run()
    error = env.queue.get(env.client_id, bad_limit).error or ""
    assert error.startswith("invalid customer: credit_limit:")
    # Customers of a source go in order: the next waits for an operator's decision.
    assert env.queue.get(env.client_id, behind).status == "queued"
    (item,) = env.queue.enqueue(
        env.client_id, [Request("sync_channel_customer", {"customer_id": "1"}, env.trade_id)]
    )
    env.run()
    assert "'customer_id' must be an integer id" in (env.queue.get(env.client_id, item).error or "")


def test_another_clients_customer_is_not_found(env: Env) -> None:
    env.sync(acme())
    env.run()
    customer_id = env.store.customer_by_code(env.client_id, "ACC-1001").id
    other = Tenancy(env.queue.db).ensure_client("other")
    channel = Tenancy(env.queue.db).add_connection(
        other, "channel", "ledger", "Their store", {"books": next(iter(BOOKS))}
    )
    (theirs,) = env.queue.enqueue(
        other, [Request("sync_channel_customer", {"customer_id": customer_id}, channel.id)]
    )
    env.run()
    item = env.queue.get(other, theirs)
    assert (item.status, item.error) == ("failed", f"no customer {customer_id} in the catalog")


# ---------------------------------------------------------------- customer groups

TIERED = StoredVariant(
    3,
    Variant.model_validate(
        {"sku": "BOLT-10", "price": "1.20", "prices": {"trade": "0.90", "gold": "0.80"}}
    ),
)


def channel(**settings: Any) -> Connection:
    return Connection(1, 1, "channel", "oscar", "Trade store", settings, "active")


def test_price_tiers_is_no_rule_any_more_group_prices_is_the_one_way() -> None:
    with pytest.raises(PermanentError, match="price_tiers"):
        rules_of(channel(rules={"price_tiers": ["trade"]}))
    rules = rules_of(channel(rules={"group_prices": {"trade": "trade", "platinum": "vip"}}))
    view = rules.variant(TIERED)
    assert view.fields["price"] == "1.20"
    assert "tier_prices" not in view.fields
    # A tier the variant has no price in: None, and the store shows that group the price.
    assert view.fields["group_prices"] == {"trade": "0.90", "vip": None}


def test_a_customer_is_sent_in_the_group_of_their_tier_and_an_order_maps_it_back() -> None:
    rules = rules_of(channel(rules={"group_prices": {"trade": "Wholesale"}}))
    ann = Customer.model_validate(acme())
    assert rules.customer(ann).group == "Wholesale"
    assert ann.group is None  # the catalog's customer is left as the source sent it
    assert rules.customer(ann.model_copy(update={"price_tier": "gold"})).group is None
    assert rules.customer(ann.model_copy(update={"price_tier": None})).group is None
    # A group set by someone else is the channel's view all the same.
    assert rules.customer(ann.model_copy(update={"group": "Retail"})).group == "Wholesale"
    assert rules.tier_of("Wholesale") == rules.tier_of("wholesale") == "trade"
    assert rules.tier_of("Retail") is None
    assert rules_of(channel()).customer(ann).group is None


def test_the_trade_store_gets_the_group_and_a_group_change_is_resent(env: Env) -> None:
    env.rules({"group_prices": {"trade": "trade", "gold": "vip"}})
    env.sync(acme())
    env.run()
    ((remote_id, sent),) = env.trade.accounts.items()
    assert (sent["price_tier"], sent["group"]) == ("trade", "trade")
    # A customer moved to another tier moves to that tier's group on the store.
    env.sync(acme(price_tier="gold"))
    env.run()
    assert env.trade.accounts[remote_id]["group"] == "vip"
    # Out of every mapped tier: no group (the public prices).
    env.sync(acme(price_tier="platinum"))
    env.run()
    assert env.trade.accounts[remote_id]["group"] is None
    assert len(env.trade.calls) == 3
    # The catalog keeps the source's customer, without any channel's group.
    assert env.store.customer_by_code(env.client_id, "ACC-1001").customer.group is None
    assert env.items("failed") == []


def test_a_rules_change_that_moves_the_customer_is_seen_as_a_change(env: Env) -> None:
    env.sync(acme())  # rules {"customers": true}: no groups
    env.run()
    assert [c["group"] for c in env.trade.accounts.values()] == [None]
    env.rules({"group_prices": {"trade": "trade"}})
    env.sync(acme())  # the same customer, pulled again: this channel's view changed
    env.run()
    assert [c["group"] for c in env.trade.accounts.values()] == ["trade"]
    assert len(env.trade.calls) == 2
