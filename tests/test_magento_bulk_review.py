"""The Magento bulk path after the second review (issue 19; docs/magento-notes.md, "Fixes
after the second review"): an older open bulk is not resumed over a newer one of the same
SKUs, one deadline bounds the whole call, a refused legacy stock item fails only its
product, existing products get what the per-product path sends (not a whole new body), and
a configurable's code equal to another product's SKU fails both instead of merging them.
Every request was allowed by Adobe's OpenAPI document (the fixture asserts it).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from stockyard.connectors.base import BULK_CALL_SECONDS, ChannelProduct, ChannelVariant
from stockyard.errors import PermanentError, TransientError
from tests.support import magento_contract as contract

pytestmark = pytest.mark.skipif(not contract.installed(), reason=contract.skip_reason())

from stockyard.connectors.magento import MagentoConnector, bulk  # noqa: E402
from tests.support.magento_double import TOKEN, MagentoDouble, Served, kept_contract, serve  # noqa: E402
from tests.support.magento_pacing import brief, patient_polling  # noqa: E402, F401

KEY = "item-19-review"
# For the tests where a consumer is down on purpose: each attempt gives up after this.
BRIEF = brief(2)


@pytest.fixture
def brief_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bulk, "DEFAULT_PACING", BRIEF)


def _served(double: MagentoDouble) -> Iterator[Served]:
    double.add_attribute("size", 141, ["S", "M", "L"])
    with serve(double) as s:
        yield s
    kept_contract(double)


@pytest.fixture
def served() -> Iterator[Served]:
    yield from _served(MagentoDouble())


@pytest.fixture
def legacy() -> Iterator[Served]:
    yield from _served(MagentoDouble(msi=False))


def shop(s: Served, **settings: Any) -> MagentoConnector:
    return MagentoConnector({"url": s.url, "access_token": TOKEN} | settings)


def tee(code: str = "TEE") -> ChannelProduct:
    return ChannelProduct(
        code,
        {"title": "Tee"},
        [
            ChannelVariant(f"{code}-{z}", {"price": "19", "quantity": 1, "options": {"Size": z}})
            for z in "SM"
        ],
    )


def mug(code: str = "MUG", quantity: float = 2, sku: str | None = None) -> ChannelProduct:
    variant = ChannelVariant(sku or f"{code}-1", {"price": "8", "quantity": quantity})
    return ChannelProduct(code, {"title": "Mug"}, [variant])


def only_catalog_consumer(double: MagentoDouble, stock: dict[str, bool]) -> None:
    """The product consumer runs; the stock one only while stock["on"]."""

    def run_consumers() -> int:
        double.consuming = True
        try:
            for op in double.operations(bulk.OPEN):
                if "inventory" not in op["topic_name"] or stock["on"]:
                    double._run_operation(op)
        finally:
            double.consuming = False
        return 0

    double.run_consumers = run_consumers  # type: ignore[method-assign]


# --- 1. an older open bulk is not resumed over a newer one --------------------------------


def test_an_older_open_bulk_is_not_resumed_when_a_newer_one_writes_the_same_skus(
    served: Served, monkeypatch: pytest.MonkeyPatch, brief_wait: None
) -> None:
    double = served.double
    stock = {"on": False}
    only_catalog_consumer(double, stock)
    for quantity in (3, 5, 3):  # the ERP's stock moves while the stock consumer is down
        with pytest.raises(TransientError):
            shop(served).bulk_products([mug(quantity=quantity)], {}, KEY)
    wait = bulk.Run._wait

    def consumer_back(run: bulk.Run, uuid: str, deadline: float) -> Any:
        # The stock consumer comes back while the next attempt waits for a stock bulk.
        stock["on"] = stock["on"] or "inventory" in double.bulks[uuid]["description"]
        return wait(run, uuid, deadline)

    monkeypatch.setattr(bulk.Run, "_wait", consumer_back)
    (result,) = shop(served).bulk_products([mug(quantity=3)], {}, KEY)
    assert result.ok and result.variants == {"MUG-1": "MUG-1"}
    # Operations run in the order accepted: the store ends at what the flow records.
    assert double.source_items[("MUG-1", "default")]["quantity"] == 3


def test_the_newest_open_bulk_of_the_same_elements_is_still_resumed(
    served: Served, brief_wait: None
) -> None:
    double = served.double
    stock = {"on": False}
    only_catalog_consumer(double, stock)
    for _ in range(2):
        with pytest.raises(TransientError):
            shop(served).bulk_products([mug(quantity=3)], {}, KEY)
    stock_bulks = [b for b in double.bulks.values() if "inventory" in b["description"]]
    assert len(stock_bulks) == 1


# --- 2. one deadline for the whole call ----------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.001)


def test_one_deadline_bounds_every_stage_of_the_call(served: Served) -> None:
    double = served.double
    clock = FakeClock()
    stock = {"on": False}
    only_catalog_consumer(double, stock)
    # The products bulk finishes only at 200 s of the call's 300; the stock bulk never.
    run = double.run_consumers
    double.run_consumers = lambda: run() if clock.now >= 200 else 0  # type: ignore[method-assign]
    connector = shop(served)
    job = bulk.Run(connector, bulk.Pacing(1.0, 15.0, 300.0), clock=clock, sleep=clock.sleep)
    with pytest.raises(TransientError) as stuck:
        job.products([mug()], {})
    assert 300 <= clock.now < 301  # not 200 + another 300
    assert "after 300 s" in str(stuck.value)


def test_the_wait_never_passes_the_bulk_call_bound(served: Served) -> None:
    served.double.consumers = False
    clock = FakeClock()
    job = bulk.Run(shop(served), bulk.Pacing(1.0, 15.0, 10_000.0), clock=clock, sleep=clock.sleep)
    with pytest.raises(TransientError):
        job.products([mug()], {})
    assert BULK_CALL_SECONDS <= clock.now < BULK_CALL_SECONDS + 1


def test_bulk_max_wait_above_the_call_bound_is_refused(served: Served) -> None:
    with pytest.raises(PermanentError) as refused:
        shop(served, bulk_max_wait=BULK_CALL_SECONDS + 1)
    assert "bulk_max_wait" in str(refused.value)
    assert shop(served, bulk_max_wait=BULK_CALL_SECONDS).config.bulk_max_wait == 600


# --- 3. legacy stock: one refused item fails only its product ------------------------------


def refuse_legacy_stock(double: MagentoDouble, bad: str) -> None:
    original = double._legacy_stock

    def refuse(sku: str, item_id: str, body: Any) -> tuple[int, Any]:
        if sku == bad:
            return 400, {"message": "The stock item was not found."}
        return original(sku, item_id, body)

    double._legacy_stock = refuse  # type: ignore[method-assign]


@pytest.mark.parametrize("inventory", ["legacy", "auto"])
def test_a_refused_legacy_stock_item_leaves_only_its_product_unstocked(
    legacy: Served, inventory: str
) -> None:
    double = legacy.double
    refuse_legacy_stock(double, "BAD-1")
    chunk = [mug("A", 3), mug("BAD", 4), mug("C", 5)]
    results = shop(legacy, inventory=inventory).bulk_products(chunk, {}, KEY)
    assert [(r.key, r.ok, r.variants) for r in results] == [
        ("A", True, {"A-1": "A-1"}),
        ("BAD", True, {}),  # made, its stock not written: the flow sends the variant again
        ("C", True, {"C-1": "C-1"}),
    ]
    assert double.stock_item("C-1")["qty"] == 5
    # A store without MSI answers 404 on the bulk stock route: nothing is queued for it.
    assert not [op for op in double.operations() if "inventory" in op["topic_name"]]


# --- 4. existing products get what the per-product path sends ------------------------------


def test_existing_products_keep_what_the_merchant_set(served: Served) -> None:
    double = served.double
    connector = shop(served)
    connector.create_product(tee(), KEY)
    connector.create_product(mug(), KEY)
    mine = double.products["MUG-1"]
    mine["status"] = 2  # the merchant disabled it and gave it a URL key of their own
    for a in mine["custom_attributes"]:
        if a["attribute_code"] == "url_key":
            a["value"] = "best-mug-ever"
    extra = double._save(
        {
            "sku": "TEE-L",
            "name": "Tee L",
            "custom_attributes": [{"attribute_code": "size", "value": "3"}],
        },
        None,
    )[1]
    parent = double.products["TEE"]["extension_attributes"]
    parent["configurable_product_links"].append(extra["id"])
    changed = tee()
    changed.fields["title"] = "Tee 2"
    changed.variants.append(
        ChannelVariant("TEE-XL", {"price": "21", "quantity": 1, "options": {"Size": "XL"}})
    )
    changed.variants[0].fields["price"] = "17"
    results = connector.bulk_products([changed, mug()], {"TEE": "TEE", "MUG": "MUG-1"}, KEY)
    assert all(r.ok for r in results), [r.error for r in results]
    assert double.products["MUG-1"]["status"] == 2
    url_key = [
        a["value"]
        for a in double.products["MUG-1"]["custom_attributes"]
        if a["attribute_code"] == "url_key"
    ]
    assert url_key == ["best-mug-ever"]
    links = double.products["TEE"]["extension_attributes"]["configurable_product_links"]
    ids = {s: double.products[s]["id"] for s in ("TEE-S", "TEE-M", "TEE-L", "TEE-XL")}
    assert sorted(links) == sorted(ids.values())  # the merchant's child kept, ours added
    assert double.products["TEE"]["name"] == "Tee 2"
    assert double.products["TEE-S"]["price"] == 17.0
    assert double.products["TEE-XL"]["visibility"] == 1
    existing = [
        e["product"]
        for r in double.received
        if r.path.endswith("/async/bulk/V1/products")
        for e in r.body
        if e["product"]["sku"] in ("MUG-1", "TEE-S", "TEE")
    ]
    for body in existing:  # no whole-body fields on products that exist
        assert not {"status", "visibility", "attribute_set_id", "type_id"} & set(body)
        assert "website_ids" not in (body.get("extension_attributes") or {})


# --- 5. a configurable's code equal to another product's SKU -------------------------------


def test_a_configurable_code_equal_to_another_skus_fails_both(served: Served) -> None:
    clash = mug("MUG", sku="x")  # MySQL compares SKUs without case
    results = shop(served).bulk_products([tee("X"), clash, mug("OK")], {}, KEY)
    assert [r.ok for r in results] == [False, False, True]
    for r in results[:2]:
        assert "X" in str(r.error) and "same SKU" in str(r.error)
    assert not {"X", "x", "X-S"} & set(served.double.products)


def test_the_per_product_path_does_not_take_a_simple_product_for_the_parent(
    served: Served,
) -> None:
    connector = shop(served)
    connector.create_product(mug("MUG", sku="X"), KEY)
    with pytest.raises(PermanentError) as refused:
        connector.create_product(tee("X"), KEY)
    assert "X is a simple product" in str(refused.value)
    assert served.double.products["X"]["type_id"] == "simple"


def test_the_double_refuses_a_link_to_a_parent_without_options(served: Served) -> None:
    connector = shop(served)
    connector.create_product(mug("MUG", sku="X"), KEY)
    connector.create_product(mug("OTHER"), KEY)
    status, answer = served.double._link("X", "OTHER-1")
    assert status == 400
    assert answer["message"] == "The parent product doesn't have configurable product options."
