"""Defects of the third review outside Magento (issue 19; docs/woocommerce-notes.md, "Fixes
after the third review"): Shopify stock of a variant without per-warehouse stock, digits
that are not ASCII, WooCommerce answers of the wrong shape failing only what they concern,
the rate-limit key of callers that are not IP addresses, and secrets echoed across the
point where an error is cut. No request is sent here: the answers are made-up shapes
(`_Api`) that no store sends, so there is nothing for the wc/v3 contract to check."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest

from stockyard.catalog.models import Variant
from stockyard.catalog.store import StoredVariant
from stockyard.connectors import downloads
from stockyard.connectors.base import ChannelImage, ChannelProduct, ChannelVariant
from stockyard.connectors.shopify import ShopifyConnector
from stockyard.connectors.woocommerce import WooCommerceConnector, media, paging
from stockyard.connectors.woocommerce import bulk as wc_bulk
from stockyard.connectors.woocommerce.client import _error
from stockyard.errors import PermanentError
from stockyard.flows.rules import rules_of
from stockyard.tenancy import Connection
from stockyard.web import deps

HERE, THERE = "gid://shopify/Location/1", "gid://shopify/Location/2"
KEY, SECRET = "ck_" + "k" * 40, "cs_" + "s" * 40


class _Api:
    """A client answering `answers` in turn (the last one again): shapes no store sends."""

    def __init__(self, *answers: Any, headers: dict[str, str] | None = None) -> None:
        self.answers = list(answers)
        self.headers = headers or {}
        self.secrets: list[str] = []

    def call(self, *args: Any, **kwargs: Any) -> tuple[Any, dict[str, str]]:
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return answer, self.headers

    def quote(self, text: Any) -> str:
        return str(text)[:300]


def woo(api: Any) -> WooCommerceConnector:
    c = WooCommerceConnector(
        {"url": "https://shop.example.com", "consumer_key": KEY, "consumer_secret": SECRET}
    )
    c.api.close()
    c.api = api
    return c


# ------------------------------------------------------------------ 1. Shopify stock


def test_a_variant_without_per_warehouse_stock_sends_its_quantity_to_location_id() -> None:
    settings = {"shop": "a.myshopify.com", "location_id": HERE, "locations": {"WH1": THERE}}
    rules = rules_of(Connection(1, 1, "channel", "shopify", "s", settings, "active"))
    variant = rules.variant(StoredVariant(1, Variant(sku="A", price=Decimal(1), quantity=10)))
    assert variant.fields["stock"] == {}  # the catalog knows only its total
    shop = ShopifyConnector(settings | {"access_token": "shpat_" + "t" * 32})
    assert shop._stock(variant) == {HERE: 10}
    stocked = ChannelVariant("B", {"quantity": 10, "stock": {"WH1": 4}})
    assert shop._stock(stocked) == {THERE: 4}


# ------------------------------------------------------------------ 2. ASCII digits


@pytest.mark.parametrize("text", ["²", "\u0663", "\uff11\uff12", "9" * 5000])
def test_digits_that_are_not_ascii_are_unreadable_not_a_traceback(text: str) -> None:
    assert downloads.retry_after(text) is None
    assert paging.last_page({"X-WP-TotalPages": text}) == 0
    rows = [{"id": n} for n in range(paging.PER_PAGE)]
    api = _Api(rows, headers={"X-WP-TotalPages": text, "X-WP-Total": text})
    assert len(paging.read_all(api, "/products", "list", {}, 3)) == paging.PER_PAGE  # type: ignore[arg-type]


# ------------------------------------------------------------------ 3. answer shapes


def test_a_list_row_whose_id_is_not_a_number_is_a_clear_error() -> None:
    with pytest.raises(PermanentError, match="list: a row's id is not a number"):
        paging.read_all(_Api([{"id": [1]}]), "/products", "list", {}, 3)  # type: ignore[arg-type]


PARENT = {"id": 5, "type": "variable", "attributes": []}


@pytest.mark.parametrize("answer", [[], {"create": {"id": 1}}, {"create": []}])
def test_a_variations_batch_answered_out_of_shape_is_a_clear_error(answer: Any) -> None:
    store = woo(_Api(PARENT, [], answer))
    with pytest.raises(PermanentError, match="woocommerce: variations batch"):
        store.upsert_variants("5", [ChannelVariant("A", {"price": "1"})], "k")


@pytest.mark.parametrize("row", [[1], {"name": "x"}, {"id": [1]}, {"id": "²"}])
def test_a_variation_row_out_of_shape_fails_only_its_variant(row: Any) -> None:
    store = woo(_Api(PARENT, [], {"create": [{"id": 8}, row]}))
    variants = [ChannelVariant(s, {"price": "1", "options": {"Size": s}}) for s in ("S", "M")]
    good, bad = store.upsert_variants("5", variants, "k")
    assert good.remote_id == "8"
    assert bad.error is not None and str(bad.error).startswith("woocommerce: create variant M:")


@pytest.mark.parametrize("parent", [[], {"type": "variable"}])
def test_a_parent_answered_out_of_shape_is_a_clear_error(parent: Any) -> None:
    store = woo(_Api(parent))
    with pytest.raises(PermanentError, match="woocommerce: read product: "):
        store.upsert_variants("5", [ChannelVariant("A", {"price": "1"})], "k")


@pytest.mark.parametrize("answer", [[], "x", {"create": [{"id": 1}]}, {"create": 3}])
def test_a_product_batch_out_of_shape_fails_its_products_not_the_chunk(answer: Any) -> None:
    items = [(1, "create", {"sku": "A"}), (2, "create", {"sku": "B"})]
    out = wc_bulk.send_batch(_Api(answer), "/products/batch", "products", items)  # type: ignore[arg-type]
    assert set(out) == {1, 2}
    assert all(isinstance(e, PermanentError) and "products batch" in str(e) for e in out.values())


def test_one_row_out_of_shape_fails_only_its_product() -> None:
    items = [(1, "create", {"sku": "A"}), (2, "create", {"sku": "B"})]
    answer = {"create": [{"id": 7, "sku": "A"}, ["not", "a", "row"]]}
    out = wc_bulk.send_batch(_Api(answer), "/products/batch", "products", items)  # type: ignore[arg-type]
    assert out[1] == {"id": 7, "sku": "A"}
    assert isinstance(out[2], PermanentError) and "create product B" in str(out[2])


def test_bulk_fails_only_the_products_of_a_batch_answered_out_of_shape() -> None:
    simple = ChannelProduct("A", {"title": "A"}, [ChannelVariant("A-1", {"price": "1"})])
    store = woo(_Api([], [{"sku": "A-1", "id": 9}]))  # look-up, then a list for a batch
    (result,) = store.bulk_products([simple], {}, "k")
    assert not result.ok and "products batch" in str(result.error)


@pytest.mark.parametrize(
    "answer", [[], {"images": {"id": 1}}, {"images": [[1]]}, {"images": [{"id": "x"}]}]
)
def test_a_product_whose_images_are_out_of_shape_is_a_clear_error(answer: Any) -> None:
    image = ChannelImage("front", {"url": "https://cdn.example.com/a.jpg"})
    with pytest.raises(PermanentError, match="read product images: the answer"):
        media.add_image(_Api(answer), "5", image)  # type: ignore[arg-type]
    with pytest.raises(PermanentError, match="read product images: the answer"):
        media.delete_image(_Api(answer), "5", "1")  # type: ignore[arg-type]


def test_the_placeholder_an_older_store_answers_is_not_written_back_as_an_image() -> None:
    placeholder = {"images": [{"id": 0, "src": "https://shop.example.com/placeholder.png"}]}
    api = _Api(placeholder, {"images": [{"id": 31, "name": "front stockyard x"}]})
    sent: list[Any] = []
    answer = api.call

    def call(*args: Any, **kwargs: Any) -> tuple[Any, dict[str, str]]:
        sent.append(args[3] if len(args) > 3 else None)
        return answer(*args, **kwargs)

    api.call = call  # type: ignore[method-assign]
    image = ChannelImage("front", {"url": "https://cdn.example.com/a.jpg"})
    with pytest.raises(PermanentError, match="not in the product's answer"):
        media.add_image(api, "5", image)  # type: ignore[arg-type]
    assert [i.get("id") for i in sent[1]["images"]] == [None]  # only the new one, by src


# ------------------------------------------------------------------ 5. rate-limit key


def test_callers_that_are_not_ip_addresses_share_one_bucket() -> None:
    def at(host: str | None) -> str:
        client = SimpleNamespace(host=host) if host is not None else None
        return deps.address(SimpleNamespace(client=client))  # type: ignore[arg-type]

    made_up = {at(h) for h in ("testclient", "made-up-1", "made-up-2", "", "unix:/x")} | {at(None)}
    assert len(made_up) == 1
    assert made_up.isdisjoint({at("192.0.2.7"), at("2001:db8::1")})


# ------------------------------------------------------------------ 6. redact, then cut


def test_a_secret_echoed_across_the_cut_is_redacted_before_it() -> None:
    message = "x" * 290 + SECRET
    body = ('{"code": "woocommerce_rest_cannot_view", "message": "' + message + '"}').encode()
    code, said = _error(body, [SECRET])
    assert code == "woocommerce_rest_cannot_view"
    assert SECRET[:10] not in said and said.startswith("x" * 290)
    # A batch's per-item error, which no client status check reads, by the connector's
    # client (which knows the connection's secrets).
    store = WooCommerceConnector(
        {"url": "https://shop.example.com", "consumer_key": KEY, "consumer_secret": SECRET}
    )
    answer = {"create": [{"id": 0, "error": {"code": "bad", "message": message}}]}
    store.api.call = lambda *a, **k: (answer, {})  # type: ignore[method-assign,assignment]
    out = wc_bulk.send_batch(store.api, "/products/batch", "products", [(1, "create", {})])
    assert SECRET[:10] not in str(out[1]) and "[redacted]" in str(out[1])
    store.close()
