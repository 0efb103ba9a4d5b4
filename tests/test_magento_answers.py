"""The `magento` connector facing answers a Magento store should not give (issue 19, after
review): a redirect (a `url` naming www. or http:// where the store answers elsewhere), a
2xx that is not JSON (a proxy's or maintenance page), an empty 2xx where the route answers
something, and JSON of the wrong shape. Each is a PermanentError saying what came back,
never a write taken for done nor a traceback. Also the settings that must be refused (a
URL carrying a user and password) and the bulk wait setting.

Skipped when the document is not installed (bash scripts/install-magento-openapi.sh).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.responses import Response

from stockyard.connectors.base import ChannelProduct, ChannelVariant
from stockyard.errors import PermanentError
from tests.support import magento_contract as contract

pytestmark = pytest.mark.skipif(not contract.installed(), reason=contract.skip_reason())

from stockyard.connectors.magento import MagentoConnector, bulk  # noqa: E402
from tests.support.magento_double import TOKEN, MagentoDouble, Served, kept_contract, serve  # noqa: E402

KEY = "item-19-mg-answers"
ELSEWHERE = "https://www.shop.example/rest/all/V1/products/TEE"


@pytest.fixture
def served() -> Iterator[Served]:
    double = MagentoDouble()
    double.add_attribute("size", 141, ["S", "M", "L"])
    with serve(double) as s:
        yield s


@pytest.fixture
def shop(served: Served) -> Iterator[MagentoConnector]:
    c = MagentoConnector({"url": served.url, "access_token": TOKEN})
    yield c
    c.close()
    kept_contract(served.double)


def mug(price: str = "8.50") -> ChannelProduct:
    return ChannelProduct(
        "MUG", {"title": "Mug"}, [ChannelVariant("MUG-1", {"price": price, "quantity": 4})]
    )


def tee() -> ChannelProduct:
    return ChannelProduct(
        "TEE",
        {"title": "Tee"},
        [
            ChannelVariant(f"TEE-{s}", {"price": "19.90", "options": {"Size": s}}, f"TEE-{s}")
            for s in ("S", "M")
        ],
    )


def moved(status: int = 301) -> tuple[int, Response]:
    page = b"<html><body>Moved Permanently</body></html>"
    return status, Response(page, status, headers={"Location": ELSEWHERE}, media_type="text/html")


# ------------------------------------------------------------------------ redirects


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_is_a_permanent_error_naming_where_the_store_sends(
    served: Served, shop: MagentoConnector, status: int
) -> None:
    served.double.faults.append(moved(status))
    with pytest.raises(PermanentError, match=rf"HTTP {status}.*redirects to {ELSEWHERE}.*url"):
        shop.update_product("TEE", tee(), KEY)


def test_a_delete_redirected_is_not_taken_for_done(served: Served, shop: MagentoConnector) -> None:
    shop.create_product(mug(), KEY)
    served.double.faults.append(moved())
    with pytest.raises(PermanentError, match="redirects"):
        shop.delete_variant("MUG-1", "MUG-1", KEY)
    assert "MUG-1" in served.double.products


def test_an_informational_or_odd_status_is_not_success(
    served: Served, shop: MagentoConnector
) -> None:
    nothing = Response(b'{"items": []}', 299, media_type="application/json")
    served.double.faults.append((299, nothing))
    assert shop.find_product(["TEE-S"]) is None  # any 2xx with JSON is an answer
    served.double.faults.append((304, Response(b"", 304)))
    with pytest.raises(PermanentError, match="HTTP 304"):
        shop.find_product(["TEE-S"])


# ------------------------------------------------------------- not JSON, or empty


def test_a_2xx_page_that_is_not_json_is_permanent(served: Served, shop: MagentoConnector) -> None:
    page = Response(b"<html>Maintenance</html>", 200, media_type="text/html")
    served.double.faults.append((200, page))
    with pytest.raises(PermanentError, match=r"not JSON.*Maintenance.*url"):
        shop.update_product("TEE", tee(), KEY)


def test_an_empty_2xx_is_permanent_where_the_route_answers_something(
    served: Served, shop: MagentoConnector
) -> None:
    served.double.faults.append((200, Response(b"", 200)))
    with pytest.raises(PermanentError, match="empty answer"):
        shop.upsert_variants("TEE", tee().variants, KEY)  # base prices first


def test_an_empty_2xx_where_the_route_answers_nothing_is_done(
    served: Served, shop: MagentoConnector
) -> None:
    # POST /V1/inventory/source-items is a void service method.
    served.double.lost.append(("POST", "/V1/inventory/source-items", 200, Response(b"", 200)))
    made = shop.create_product(mug(), KEY)
    assert made.id == "MUG-1"
    assert served.double.source_items[("MUG-1", "default")]["quantity"] == 4


# ------------------------------------------------------------------ wrong shapes


@pytest.mark.parametrize("answer", ["a text", ["a", "list"], {"items": "none"}, {"items": [1]}])
def test_a_search_answer_of_the_wrong_shape_is_permanent(
    served: Served, shop: MagentoConnector, answer: Any
) -> None:
    served.double.faults.append((200, answer))
    with pytest.raises(PermanentError, match=r"GET /V1/products: .*answer"):
        shop.find_product(["TEE-S"])


def test_children_of_the_wrong_shape_are_permanent(served: Served, shop: MagentoConnector) -> None:
    shop.create_product(tee(), KEY)
    served.double.lost.append(("GET", "/V1/configurable-products/{sku}/children", 200, ["TEE-S"]))
    with pytest.raises(PermanentError, match=r"children.*answer"):
        shop.find_product(["TEE"])


def test_a_product_answer_that_is_not_an_object_is_permanent(
    served: Served, shop: MagentoConnector
) -> None:
    served.double.faults.append((200, "MUG-1"))  # GET /V1/products/MUG-1
    with pytest.raises(PermanentError, match="answer"):
        shop.create_product(mug(), KEY)


# ------------------------------------------------------------ price failures


def test_price_failures_of_any_shape_fail_the_prices_sent_and_never_crash(
    served: Served, shop: MagentoConnector
) -> None:
    shop.create_product(tee(), KEY)
    failures = [
        {"message": "Invalid attribute %fieldName.", "parameters": [{"fieldName": "price"}]},
        "not an object",
        {"message": "Requested product doesn't exist. SKU: %sku.", "parameters": ["TEE-M"]},
    ]
    served.double.faults.append((200, failures))
    s, m = shop.upsert_variants("TEE", tee().variants, KEY)
    # Failures naming no SKU fail every price sent; the last word on a SKU is kept.
    assert str(s.error) == "magento: price of TEE-S: not an object"
    assert "SKU: TEE-M" in str(m.error)
    served.double.faults.append((200, failures[:1]))
    s, m = shop.upsert_variants("TEE", tee().variants, KEY)
    assert "Invalid attribute price." in str(s.error)
    assert "Invalid attribute price." in str(m.error)


def test_a_price_answer_that_is_not_a_list_is_permanent(
    served: Served, shop: MagentoConnector
) -> None:
    shop.create_product(tee(), KEY)
    served.double.faults.append((200, {"done": True}))
    with pytest.raises(PermanentError, match=r"base-prices.*answer"):
        shop.upsert_variants("TEE", tee().variants, KEY)


# ----------------------------------------------------------------------- settings


@pytest.mark.parametrize(
    "url", ["https://admin:s3cret-pw@shop.example.com", "https://admin@shop.example.com"]
)
def test_a_url_with_a_user_or_password_is_refused_without_repeating_it(url: str) -> None:
    with pytest.raises(PermanentError, match="url") as refused:
        MagentoConnector({"url": url, "access_token": TOKEN})
    assert "s3cret-pw" not in str(refused.value)


def test_bulk_max_wait_is_a_setting_bounded_like_a_timeout() -> None:
    settings = {"url": "https://shop.example.com", "access_token": TOKEN}
    made = MagentoConnector(settings | {"bulk_max_wait": 45})
    try:
        assert made.config.bulk_max_wait == 45
        assert bulk._pacing(made).max_wait == 45
    finally:
        made.close()
    default = MagentoConnector(settings)
    try:
        assert default.config.bulk_max_wait == 300
    finally:
        default.close()
    for wrong in (0, 3601, "soon"):
        with pytest.raises(PermanentError, match="bulk_max_wait"):
            MagentoConnector(settings | {"bulk_max_wait": wrong})
