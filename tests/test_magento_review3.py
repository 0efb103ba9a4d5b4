"""The Magento connector after the third review (issue 19; docs/magento-notes.md, "Fixes
after the third review"): a store's error message is bounded whatever its placeholders
and parameters, finding a bulk again and the per-SKU loops of a chunk stop at the call's
deadline, a failed bulk operation that names no product of ours fails the products it may
have been, products the store has but the flow has not linked keep what the merchant set,
an empty per-warehouse mapping is no stock per warehouse, and non-ASCII digits are refused
clearly. Every request sent was allowed by Adobe's OpenAPI document (the fixtures and the
checked fake API assert it).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from starlette.responses import Response

from stockyard.connectors.base import ChannelProduct, ChannelVariant
from stockyard.errors import PermanentError, TransientError
from tests.support import magento_contract as contract

pytestmark = pytest.mark.skipif(not contract.installed(), reason=contract.skip_reason())

from stockyard.connectors.magento import MagentoConnector, bulk, orders, prices  # noqa: E402
from stockyard.connectors.magento import bulk_find as find  # noqa: E402
from stockyard.connectors.magento import client as mclient  # noqa: E402
from tests.support.magento_double import TOKEN, MagentoDouble, Served, kept_contract, serve  # noqa: E402
from tests.support.magento_pacing import brief, patient_polling  # noqa: E402, F401

KEY = "item-19-review3"
FAST = brief(0.2)  # for the hand-clocked deadline tests


@pytest.fixture
def served() -> Iterator[Served]:
    double = MagentoDouble()
    double.add_attribute("size", 141, ["S", "M", "L"])
    with serve(double) as s:
        yield s
    kept_contract(double)


def shop(s: Served, **settings: Any) -> MagentoConnector:
    return MagentoConnector({"url": s.url, "access_token": TOKEN} | settings)


def mug(code: str = "MUG", quantity: float = 2) -> ChannelProduct:
    variant = ChannelVariant(f"{code}-1", {"price": "8", "quantity": quantity})
    return ChannelProduct(code, {"title": "Mug"}, [variant])


def tee(code: str = "TEE") -> ChannelProduct:
    return ChannelProduct(
        code,
        {"title": "Tee"},
        [
            ChannelVariant(f"{code}-{z}", {"price": "19", "quantity": 1, "options": {"Size": z}})
            for z in "SM"
        ],
    )


class Checked:
    """A store answering from `answer(path, params)`; every request is checked against
    the contract first, as the double checks what it receives."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.sent = 0

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        self.sent += 1
        query = urlencode(params or {})
        contract.check_url("GET", f"https://shop.example/rest/all/{path}?{query}")
        return self.answer(path, params or {})


# --- 1. a store's error message is bounded ------------------------------------------------

HUGE = {"message": "%1" * 500_000, "parameters": ["x" * 2000]}


def test_a_message_with_many_placeholders_is_bounded() -> None:
    started = time.monotonic()
    text = mclient.message(HUGE)
    assert len(text) <= mclient.MESSAGE_LIMIT + 1
    assert time.monotonic() - started < 1


def test_a_group_price_failure_with_many_placeholders_is_bounded() -> None:
    failure = {"message": "%SKU" * 500_000, "parameters": ["x" * 100_000, "0", "1", "1"]}
    assert len(prices._text(failure)) <= mclient.MESSAGE_LIMIT + 1


def test_the_store_answering_a_huge_message_gives_a_short_error(served: Served) -> None:
    served.double.faults.append((500, Response(json.dumps(HUGE), 500)))
    with pytest.raises(TransientError) as caught:
        shop(served).find_product(["MUG-1"])
    assert len(str(caught.value)) <= 1000


def test_a_cut_never_leaves_part_of_a_word() -> None:
    secret = "S3CR3T" * 50  # longer than a parameter is kept
    text = mclient.message({"message": "refused: %1", "parameters": ["see " + secret]})
    assert "S3CR3T" not in text
    with pytest.raises(PermanentError) as caught:
        mclient.obj(["x" * 60 + " " + secret], "GET /V1/x")
    assert "S3CR3T" not in str(caught.value)


def test_a_long_message_keeps_its_start() -> None:
    text = mclient.message({"message": "Product %1 is not valid. " * 200, "parameters": ["A"]})
    assert text.startswith("Product A is not valid.")
    assert len(text) <= mclient.MESSAGE_LIMIT + 1


# --- 2. finding a bulk again and the per-SKU loops stop at the deadline --------------------

PART = [{"product": {"sku": "A-1", "price": 1}}]


def _ours(path: str, params: dict[str, Any]) -> Any:
    meta = json.dumps({"meta_information": json.dumps(PART[0])})
    if path.startswith("V1/bulk/B1/"):
        return {"operations_list": [{"id": 1, "status": 4, "serialized_data": meta}]}
    if "searchCriteria[currentPage]" not in params:  # open_bulk's search
        return {"items": [{"bulk_uuid": "B1", "topic_name": "t", "serialized_data": meta}]}
    return None


def test_a_page_repeating_itself_ends_the_search_for_newer_bulks() -> None:
    def answer(path: str, params: dict[str, Any]) -> Any:
        page = {"items": [{"bulk_uuid": "X", "serialized_data": "{}"}], "total_count": 10**15}
        return _ours(path, params) or page

    api = Checked(answer)
    assert find.open_bulk(api, PART, lambda e: e["product"]["sku"], lambda: None) is None  # type: ignore[arg-type]
    assert api.sent < 10


def test_the_search_for_newer_bulks_reads_a_bounded_number_of_pages() -> None:
    def answer(path: str, params: dict[str, Any]) -> Any:
        n = params.get("searchCriteria[currentPage]", 0)
        page = {"items": [{"bulk_uuid": f"X{n}", "serialized_data": "{}"}], "total_count": 10**15}
        return _ours(path, params) or page

    api = Checked(answer)
    assert find.open_bulk(api, PART, lambda e: e["product"]["sku"], lambda: None) is None  # type: ignore[arg-type]
    assert api.sent <= find.MAX_PAGES + 3


def test_the_search_for_newer_bulks_stops_at_the_deadline() -> None:
    def answer(path: str, params: dict[str, Any]) -> Any:
        n = params.get("searchCriteria[currentPage]", 0)
        page = {"items": [{"bulk_uuid": f"X{n}", "serialized_data": "{}"}], "total_count": 10**15}
        return _ours(path, params) or page

    api = Checked(answer)
    calls = []

    def check() -> None:
        calls.append(1)
        if len(calls) > 2:
            raise TransientError("past the deadline")

    with pytest.raises(TransientError):
        find.open_bulk(api, PART, lambda e: e["product"]["sku"], check)  # type: ignore[arg-type]
    assert api.sent <= 5


def test_the_lookup_of_a_chunk_stops_at_the_deadline(served: Served) -> None:
    connector = shop(served)
    run = bulk.Run(connector, FAST, clock=iter([0.0, 1e9, 1e9, 1e9]).__next__)
    skus = [f"S-{n}" for n in range(bulk.SKUS_PER_LOOKUP * 3)]
    before = len(served.double.received)
    with pytest.raises(TransientError):
        run._lookup(skus)
    assert len(served.double.received) - before <= 1


def test_legacy_stock_sku_by_sku_stops_at_the_deadline(served: Served) -> None:
    served.double.msi = False
    connector = shop(served, inventory="legacy")
    for n in range(3):
        connector.create_product(mug(f"M{n}"), KEY)
    ticks = iter([0.0] + [1e9] * 100)
    run = bulk.Run(connector, FAST, clock=ticks.__next__)
    before = len([r for r in served.double.received if r.method == "PUT"])
    with pytest.raises(TransientError):
        run._legacy_stock({f"M{n}-1": {"default": 7.0} for n in range(3)}, {})
    assert len([r for r in served.double.received if r.method == "PUT"]) == before


# --- 3. a failed operation that matches no product fails the part -----------------------


class Ops:
    def __init__(self, status_ops: list[Any], detailed: list[Any]) -> None:
        self.status_ops, self.detailed = status_ops, detailed

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        contract.check_url("GET", f"https://shop.example/rest/all/{path}")
        ops = self.detailed if path.endswith("detailed-status") else self.status_ops
        return {"operations_list": ops}


def _run(api: Any) -> bulk.Run:
    run = bulk.Run.__new__(bulk.Run)
    run.api, run.errors, run.unstocked = api, {}, set()
    return run


def _stage(route: str = bulk.PRODUCTS) -> bulk.Stage:
    elements = [{"product": {"sku": "A-1"}}, {"product": {"sku": "B-1"}}]
    return bulk.Stage(route, elements, lambda e: str(e["product"]["sku"]))


def test_a_failed_operation_naming_no_product_fails_every_product_of_the_part() -> None:
    failed = {"id": 1, "status": 3, "result_message": "URL key exists"}
    older = failed | {"serialized_data": json.dumps({"meta_information": '{"entity": 5}'})}
    run = _run(Ops([failed, {"id": 2, "status": 1}], [older, {"id": 2, "status": 1}]))
    stage = _stage()
    run._fail(stage, "B1", stage.elements, [failed], {"A-1": "A", "B-1": "B"})
    assert set(run.errors) == {"A", "B"}
    assert "URL key exists" in str(run.errors["A"])


def test_an_unmatched_failed_stock_operation_leaves_the_part_unstocked() -> None:
    failed = {"id": 1, "status": 3, "result_message": "no"}
    run = _run(Ops([failed], [failed]))
    stage = _stage(bulk.SOURCE_ITEMS)
    run._fail(stage, "B1", stage.elements, [failed], {"A-1": "A", "B-1": "B"})
    assert run.unstocked == {"A", "B"} and run.errors == {}


def test_a_posted_bulk_without_operations_is_an_error() -> None:
    run = _run(Ops([], []))
    stage = _stage()
    run._fail(stage, "B1", stage.elements, [], {"A-1": "A", "B-1": "B"})
    assert set(run.errors) == {"A", "B"}
    assert "no operations" in str(run.errors["A"])


# --- 4. an unlinked product the store has keeps what the merchant set --------------------


def test_an_unlinked_existing_product_keeps_its_status_and_url_key(served: Served) -> None:
    double = served.double
    connector = shop(served)
    connector.create_product(mug(), KEY)
    mine = double.products["MUG-1"]
    mine["status"] = 2
    for a in mine["custom_attributes"]:
        if a["attribute_code"] == "url_key":
            a["value"] = "best-mug-ever"
    results = connector.bulk_products([mug(quantity=5)], {}, KEY)
    assert all(r.ok for r in results)
    saved = double.products["MUG-1"]
    assert saved["status"] == 2
    keys = [a["value"] for a in saved["custom_attributes"] if a["attribute_code"] == "url_key"]
    assert keys == ["best-mug-ever"]


def test_unlinked_existing_children_keep_what_the_merchant_set(served: Served) -> None:
    double = served.double
    connector = shop(served)
    connector.create_product(tee(), KEY)
    double.products["TEE-S"]["status"] = 2
    results = connector.bulk_products([tee()], {}, KEY)
    assert all(r.ok for r in results)
    assert double.products["TEE-S"]["status"] == 2


# --- 5. an empty per-warehouse mapping -----------------------------------------------------


def test_an_empty_per_warehouse_mapping_sends_the_quantity_to_the_source() -> None:
    connector = MagentoConnector(
        {"url": "https://shop.example.com", "access_token": "t" * 32, "sources": {"WH1": "s1"}}
    )
    v = ChannelVariant("A", {"price": "1", "quantity": 10, "stock": {}})
    assert connector._stock(v) == {connector.config.source_code: 10.0}
    v = ChannelVariant("A", {"price": "1", "quantity": 10, "stock": {"WH1": 3}})
    assert connector._stock(v) == {"s1": 3.0}


# --- 6. non-ASCII digits, deep JSON ---------------------------------------------------------


def test_an_order_id_of_other_digits_is_refused_clearly() -> None:
    with pytest.raises(PermanentError, match="not an order id"):
        orders.read_order(None, "²")  # type: ignore[arg-type]


def test_a_retry_after_of_other_digits_is_ignored(served: Served) -> None:
    served.double.faults.append((429, Response(b"{}", 429, headers={"Retry-After": "²"})))
    with pytest.raises(TransientError) as caught:
        shop(served).find_product(["MUG-1"])
    assert caught.value.retry_after is None


def test_deeply_nested_json_is_a_clear_error(served: Served) -> None:
    served.double.faults.append((200, Response(b"[" * 100_000 + b"]" * 100_000, 200)))
    with pytest.raises(PermanentError, match="not JSON"):
        shop(served).find_product(["MUG-1"])
