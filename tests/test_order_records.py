"""Order records a channel's poll emits by id only (issue 19): WooCommerce's and Magento's
fetch_orders name an order their mapping cannot read as just `{"remote_id": …}`, so that
one bad order fails only its own sync_order item. That item reads the order by id
(get_order) and fails with the connector's reason; the poll's other orders go through.
Run through the real queue and worker against each platform's double."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from stockyard.application import Application
from stockyard.engine import ItemFilter, Queue, Request
from stockyard.engine.instructions import RetryPolicy
from stockyard.flows.orders import order_request
from stockyard.tenancy import Connection, Tenancy
from tests.support import magento_contract
from tests.support.queues import drain, fast_instructions, make_queue
from tests.support.woocommerce_double import (
    CONSUMER_KEY,
    CONSUMER_SECRET,
    WooCommerceDouble,
    serve,
)

POLICY = RetryPolicy(max_attempts=1, base_delay=0.01, max_delay=0.02, timeout=60.0)


class DecimalQuantityStore(WooCommerceDouble):
    """A store with a decimal-quantity plugin: core's order schema says a line's quantity
    is an integer, the plugin's lines say 1.5. The double checks its order answers against
    the contract with that one deviation allowed; requests are checked as ever."""

    def _own(self, kind: str, payload: Any) -> None:
        if kind == "order":
            lines = [dict(li, quantity=int(li["quantity"])) for li in payload["line_items"]]
            payload = dict(payload, line_items=lines)
        super()._own(kind, payload)


class Env:
    def __init__(self, url: str, name: str, settings: dict[str, Any]):
        self.queue: Queue = make_queue(url, fast_instructions(POLICY))
        self.app = Application(self.queue.db, queue=self.queue)
        tenancy = Tenancy(self.queue.db)
        self.client = tenancy.ensure_client("default")
        tenancy.add_connection(
            self.client, "source", "http", "ERP", {"base_url": "http://127.0.0.1:9"}
        )
        self.channel = tenancy.add_connection(self.client, "channel", name, name, settings).id

    def pull(self) -> dict[str, Any]:
        """pull_orders run to the end: each sync_order item by its order's remote id."""
        request = Request("pull_orders", {}, self.channel)
        self.queue.enqueue(self.client, [request])
        drain(self.queue, self.app.handlers)
        flt = ItemFilter(self.client, instructions=("sync_order",))
        return {i.refs[0]: i for i in self.queue.list_items(flt, limit=100)}


@pytest.fixture
def woo_env(tmp_path: Any) -> Iterator[tuple[Env, WooCommerceDouble]]:
    with serve(DecimalQuantityStore()) as s:
        settings = {"url": s.url, "consumer_key": CONSUMER_KEY, "consumer_secret": CONSUMER_SECRET}
        env = Env(f"sqlite:///{tmp_path}/woo.db", "woocommerce", settings)
        yield env, s.double
        env.queue.db.close()
        assert s.double.refused == [] and s.double.broken == []


def test_a_woocommerce_order_its_mapping_cannot_read_fails_alone_saying_why(
    woo_env: tuple[Env, WooCommerceDouble],
) -> None:
    env, double = woo_env
    # The poll looks back from the real time: the double's orders are placed just before.
    double.clock = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=5)
    good = double.add_order([("TEE-S", 1, "10.00")])
    bad = double.add_order([("CHEESE", 1, "10.00")])
    bad["line_items"][0]["quantity"] = 1.5  # sold by the kilo
    other = double.add_order([("MUG", 2, "4.00")])

    items = env.pull()

    failed = items[str(bad["id"])]
    assert failed.payload == {"remote_id": str(bad["id"])}
    assert failed.status == "failed"
    assert "CHEESE: quantity '1.5' is not a whole number" in (failed.error or "")
    for placed in (good, other):
        item = items[str(placed["id"])]
        assert item.status == "done" and item.payload["order"]["lines"]


@pytest.fixture
def magento_env(tmp_path: Any) -> Iterator[tuple[Env, Any]]:
    if not magento_contract.installed():
        pytest.skip(magento_contract.skip_reason())
    from tests.support.magento_double import TOKEN, MagentoDouble
    from tests.support.magento_double import serve as serve_magento

    with serve_magento(MagentoDouble()) as s:
        settings = {"url": s.url, "access_token": TOKEN}
        env = Env(f"sqlite:///{tmp_path}/mg.db", "magento", settings)
        yield env, s.double
        env.queue.db.close()
        assert [r.violation for r in s.double.received if r.violation] == []


def test_a_magento_order_its_mapping_cannot_read_fails_alone_saying_why(
    magento_env: tuple[Env, Any],
) -> None:
    env, double = magento_env
    good = double.add_order([{"sku": "MUG-1", "qty": 1, "price": 8.5}])
    bad = double.add_order([{"sku": "MUG-1", "qty": 1.5, "price": 8.5}])

    items = env.pull()

    failed = items[str(bad["entity_id"])]
    assert failed.payload == {"remote_id": str(bad["entity_id"])}
    assert failed.status == "failed"
    assert "MUG-1: qty_ordered 1.5 is not a whole number" in (failed.error or "")
    item = items[str(good["entity_id"])]
    assert item.status == "done" and item.payload["order"]["lines"]


@pytest.mark.parametrize(
    ("record", "payload"),
    [
        ({"remote_id": "7"}, {"remote_id": "7"}),
        ({"remote_id": 7}, {"order": {"remote_id": 7}}),  # refused by sync_order's parse
        ({"remote_id": ""}, {"order": {"remote_id": ""}}),
        ({"remote_id": "7", "lines": []}, {"order": {"remote_id": "7", "lines": []}}),
        (["7"], {"order": ["7"]}),
    ],
)
def test_only_a_record_that_is_exactly_a_remote_id_is_read_by_id(
    record: Any, payload: dict[str, Any]
) -> None:
    channel = Connection(1, 1, "channel", "woocommerce", "Woo", {}, "active")
    assert order_request(channel, record).payload == payload
