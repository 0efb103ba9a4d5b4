"""WooCommerce defects found in review (issue 19; docs/woocommerce-notes.md, "Fixes after
review"): answers capped in size, page loops that end whatever the paging headers say,
one unreadable order failing alone, decimal quantities refused, order ids and answers of
the wrong shape refused clearly, the Basic credentials redacted, a variant's SKU linking
its parent, and unsigned pings charged to their sender's address. Every request the
connector sent is valid against the transcribed wc/v3 contract (the fixtures assert it)."""

from __future__ import annotations

import base64
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from stockyard.connectors.base import ChannelProduct, ChannelVariant
from stockyard.connectors.woocommerce import WooCommerceConnector, skus
from stockyard.connectors.woocommerce import fulfillments as wc_fulfillments
from stockyard.connectors.woocommerce import orders as wc_orders
from stockyard.connectors.woocommerce.client import WooCommerceClient
from stockyard.errors import PermanentError
from stockyard.web.settings import ApiSettings
from tests.support.api_env import ApiEnv
from tests.support.woocommerce_double import CONSUMER_KEY, CONSUMER_SECRET, Served, serve
from tests.support.woocommerce_double_bulk import WooCommerceBulkDouble, connected

KEY = "item-7d2a"
SECRET = "whsec-of-merchant-a"


@pytest.fixture
def served() -> Iterator[Served]:
    with serve(WooCommerceBulkDouble()) as s:
        yield s


def double(s: Served) -> WooCommerceBulkDouble:
    assert isinstance(s.double, WooCommerceBulkDouble)
    return s.double


@pytest.fixture
def store(served: Served) -> Iterator[WooCommerceConnector]:
    with connected(served) as c:
        yield c


def tee(code: str = "TEE", sizes: tuple[str, ...] = ("S", "M")) -> ChannelProduct:
    variants = [
        ChannelVariant(f"{code}-{s}", {"price": "19.90", "quantity": 3, "options": {"Size": s}})
        for s in sizes
    ]
    return ChannelProduct(code, {"title": "Tee"}, variants)


class _Api:
    """A client answering `answer` to every call: shapes no store should send."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer

    def call(self, *args: Any, **kwargs: Any) -> tuple[Any, dict[str, str]]:
        return self.answer, {"X-WP-Total": "1", "X-WP-TotalPages": "1"}

    def close(self) -> None:
        pass


# ------------------------------------------------------------------ answers capped


def test_an_answer_over_the_cap_is_refused_naming_the_cap(
    served: Served, store: WooCommerceConnector
) -> None:
    store.create_product(tee(), KEY)
    store.api.max_answer = 200  # bytes: the product's answer is larger
    with pytest.raises(PermanentError, match="larger than 200 bytes"):
        store.find_product(["TEE"])
    store.api.max_answer = 1 << 20
    assert store.find_product(["TEE"]) is not None
    assert WooCommerceClient(served.url, "k", "s").max_answer == 32 * 1024 * 1024


def test_an_endless_answer_is_cut_at_the_cap_not_read_whole() -> None:
    # Something at the store's address answering without a length and without end.
    listener = socket.create_server(("127.0.0.1", 0))
    port, sent = listener.getsockname()[1], [0]

    def answer() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n")
            try:
                while sent[0] < 64 * 1024 * 1024:
                    conn.sendall(b"[" * 65536)
                    sent[0] += 65536
            except OSError:
                pass  # the client hung up: what this test wants

    server = threading.Thread(target=answer, daemon=True)
    server.start()
    api = WooCommerceClient(f"http://127.0.0.1:{port}", "k", "s", max_answer=1 << 20)
    with pytest.raises(PermanentError, match="larger than 1048576 bytes"):
        api.call("GET", "/products", "list products")
    api.close()
    server.join(timeout=10)
    listener.close()
    assert sent[0] < 16 * 1024 * 1024


# ------------------------------------------------------------------ paging lies


def test_variations_paging_stops_on_a_short_page_whatever_total_pages_says(
    served: Served, store: WooCommerceConnector
) -> None:
    made = store.create_product(tee(), KEY)
    double(served).pages_lie = 10**9
    found = store.upsert_variants(made.id, tee().variants, KEY)
    assert [r.ok for r in found] == [True, True]
    lists = [r for r in served.double.received if r.path.endswith("/variations")]
    assert len(lists) == 1  # the first page was short: no second one asked for


def test_a_store_answering_the_same_page_forever_is_a_permanent_error(
    served: Served, store: WooCommerceConnector
) -> None:
    sizes = tuple(f"S{n}" for n in range(100))  # one full page of variations
    made = store.create_product(tee(sizes=sizes), KEY)
    double(served).pages_lie = 10**9
    double(served).pages_repeat = True
    before = len(served.double.received)
    with pytest.raises(PermanentError, match="repeats rows"):
        store.upsert_variants(made.id, tee(sizes=sizes).variants[:1], KEY)
    assert len(served.double.received) - before < 20


def test_the_sku_look_up_ends_whatever_total_pages_says(
    served: Served, store: WooCommerceConnector
) -> None:
    sizes = tuple(f"S{n}" for n in range(100))
    store.create_product(tee(sizes=sizes), KEY)
    double(served).pages_lie = 10**9
    found = skus.lookup(store.api, ["TEE", "TEE-S1", "NONE"])
    assert set(found) == {"TEE", "TEE-S1"}
    double(served).pages_repeat = True  # a full page (100 variations), then itself again
    with pytest.raises(PermanentError, match="repeats rows"):
        skus.lookup(store.api, [f"TEE-{s}" for s in sizes])


# ------------------------------------------------------------------ orders


def test_an_order_the_mapping_cannot_read_fails_alone_in_the_poll(
    served: Served, store: WooCommerceConnector
) -> None:
    good = served.double.add_order([("TEE-S", 1, "10.00")])
    bad = dict(served.double.add_order([("TEE-M", 1, "10.00")]))
    # A decimal-quantity plugin's line (the contract, and so the double, never send one).
    bad["line_items"] = [dict(bad["line_items"][0], quantity=1.5)]
    page = wc_orders.fetch_orders(_Api([good, bad]), None, now=served.double.clock)  # type: ignore[arg-type]
    assert page.records[1] == {"remote_id": str(bad["id"])}
    assert page.records[0]["remote_id"] == str(good["id"]) and page.records[0]["lines"]
    assert page.cursor == wc_orders._iso(served.double.clock)
    with pytest.raises(PermanentError, match="not a whole number"):
        wc_orders.to_record(bad)


@pytest.mark.parametrize("quantity", [1.5, "2", True, None])
def test_a_line_quantity_that_is_not_an_integer_is_refused(quantity: Any) -> None:
    order = {"id": 9, "currency": "EUR", "total": "10.00"}
    order["line_items"] = [{"sku": "TEE-S", "quantity": quantity, "total": "10.00"}]
    with pytest.raises(PermanentError, match="quantity"):
        wc_orders.to_record(order)


def test_a_whole_quantity_written_as_a_float_is_still_refused_not_truncated() -> None:
    order = {"id": 9, "currency": "EUR", "total": "10.00"}
    order["line_items"] = [{"sku": "TEE-S", "quantity": 2.0, "total": "10.00"}]
    with pytest.raises(PermanentError, match="quantity"):
        wc_orders.to_record(order)


# ------------------------------------------------------------------ shapes and ids


@pytest.mark.parametrize("order_id", ["../products/5", "5#x", "5?x=1", "0", "-1", ""])
def test_fulfillment_refuses_an_order_id_that_is_not_a_number(
    store: WooCommerceConnector, order_id: str
) -> None:
    with pytest.raises(PermanentError, match="not an order id"):
        store.push_fulfillment(order_id, {"state": "complete"}, KEY)


def test_a_url_with_a_fragment_is_refused() -> None:
    with pytest.raises(PermanentError, match="url"):
        WooCommerceConnector(
            {"url": "https://shop.example#x", "consumer_key": "ck_a", "consumer_secret": "cs_a"}
        )


@pytest.mark.parametrize("answer", [{"id": 1}, "products", [1, 2], [["a"]], None])
def test_answers_of_the_wrong_shape_are_clear_permanent_errors(answer: Any) -> None:
    c = WooCommerceConnector(
        {"url": "https://shop.example", "consumer_key": "ck_a", "consumer_secret": "cs_a"}
    )
    c.api = _Api(answer)  # type: ignore[assignment]
    with pytest.raises(PermanentError, match="answer"):
        c.find_product(["TEE"])
    with pytest.raises(PermanentError, match="answer"):
        wc_orders.fetch_orders(c.api, None)
    with pytest.raises(PermanentError):
        wc_fulfillments.push(c.api, "5", {"state": "complete"})
    c.close()


# ------------------------------------------------------------------ redaction


def test_the_basic_authorization_value_is_redacted_from_errors(served: Served) -> None:
    c = WooCommerceConnector(
        {"url": served.url, "consumer_key": CONSUMER_KEY, "consumer_secret": CONSUMER_SECRET}
    )
    basic = base64.b64encode(f"{CONSUMER_KEY}:{CONSUMER_SECRET}".encode()).decode()
    error = PermanentError(f"woocommerce: echoed Authorization: Basic {basic} and {basic!r}")
    c.redact_error(error)
    assert basic not in str(error) and "[redacted]" in str(error)
    c.close()


# ------------------------------------------------------------------ variant SKUs


def test_a_variant_sku_finds_its_parent_not_the_variation(
    served: Served, store: WooCommerceConnector
) -> None:
    made = store.create_product(tee(), KEY)
    assert double(served).sku_finds_variations  # answers variations, as core does
    found = store.find_product(["TEE-S"])
    assert found is not None and found.id == made.id
    assert found.variants == made.variants


def test_a_create_looks_its_skus_up_once(served: Served, store: WooCommerceConnector) -> None:
    store.create_product(tee(sizes=("S", "M", "L")), KEY)
    before = len(served.double.received)
    again = store.create_product(tee(sizes=("S", "M", "L")), KEY)
    looks = [
        r
        for r in served.double.received[before:]
        if r.method == "GET" and r.path == "/products" and "sku" in r.query
    ]
    assert len(looks) == 1 and len(again.variants) == 3


# ------------------------------------------------------------------ pings


def test_unsigned_pings_cannot_make_a_signed_delivery_429(tmp_path: Path) -> None:
    """A ping is unsigned: anyone can send one, so it spends its sender's address budget,
    never the connection's, which the store's signed deliveries need."""
    env = ApiEnv(f"sqlite:///{tmp_path}/ping.db", ApiSettings(rate_per_second=0.01, rate_burst=3))
    conn = env.service.create_connection(
        env.root,
        env.a.id,
        "channel",
        "woocommerce",
        "Woo",
        {"url": "http://127.0.0.1:9"},
        {"consumer_key": "ck_abcdef", "consumer_secret": "cs_abcdef", "webhook_secret": SECRET},
    ).id
    stranger = TestClient(env.app, raise_server_exceptions=False, client=("203.0.113.9", 5000))
    store = TestClient(env.app, raise_server_exceptions=False, client=("198.51.100.7", 5000))
    url = f"/v1/inbound/{conn}/webhooks/order/created"
    try:
        pings = [stranger.post(url, content=b"webhook_id=1").status_code for _ in range(6)]
        assert pings[:3] == [200] * 3 and set(pings[3:]) == {429}
        body = json.dumps(
            {"id": 5, "status": "processing", "date_modified_gmt": "2026-11-29T10:00:00"}
        ).encode()
        headers = {"x-wc-webhook-signature": wc_orders.signature(SECRET, body)}
        assert store.post(url, content=body, headers=headers).status_code == 200
    finally:
        stranger.close()
        store.close()
        env.close()
