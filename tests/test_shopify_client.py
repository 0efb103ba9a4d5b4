"""The Shopify client's classification of top-level GraphQL errors (issue 18): Shopify
answers most failures inside an HTTP 200 with `errors[].extensions.code`, and each code
decides whether the item is retried (transient) or the lane stops (permanent). The double
answers the codes through its faults module; every request sent is still valid against
the schema."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from stockyard.connectors.base import ChannelProduct
from stockyard.connectors.shopify import ShopifyConnector
from stockyard.connectors.shopify.client import ShopifyRefused
from stockyard.errors import PermanentError, TransientError
from tests.support import shopify_schema as schema

pytestmark = schema.needs_schema

from tests.support.shopify_double import TOKEN, Served, ShopifyDouble, serve  # noqa: E402
from tests.support.shopify_double_faults import Faults  # noqa: E402

TEE = ChannelProduct("P1", {"title": "Tee"}, [])


@pytest.fixture
def served() -> Iterator[Served]:
    with serve(ShopifyDouble(capacity=1e6, restore_rate=1e4)) as s:
        yield s
    for r in s.double.received:
        assert schema.validate(r.query or "", r.variables) == [], r.query


@pytest.fixture
def shop(served: Served) -> Iterator[ShopifyConnector]:
    base = served.url.split("/admin/api/")[0]
    made = ShopifyConnector(
        {"shop": "stockyard-test.myshopify.com", "access_token": TOKEN, "base_url": base}
    )
    yield made
    made.close()


def _faults(served: Served) -> Faults:
    faults: Faults = served.double.faults  # type: ignore[attr-defined]
    return faults


def test_an_internal_error_is_retried_and_the_retry_succeeds(
    served: Served, shop: ShopifyConnector
) -> None:
    _faults(served).error_next(1, "INTERNAL_SERVER_ERROR")
    with pytest.raises(TransientError) as caught:
        shop.create_product(TEE, "k1")
    assert caught.value.retry_after is not None and 0 < caught.value.retry_after <= 60
    assert "internal error" in str(caught.value)
    assert served.double.shop.of("Product") == []  # the failed request made nothing
    made = shop.create_product(TEE, "k1")  # the engine's retry
    assert made.id.startswith("gid://shopify/Product/")
    assert len(served.double.shop.of("Product")) == 1
    first = served.double.received[0]
    assert first.status == 200 and first.response["errors"][0]["extensions"]["code"] == (
        "INTERNAL_SERVER_ERROR"
    )


@pytest.mark.parametrize(
    ("code", "says"),
    [
        ("SHOP_INACTIVE", "shop is not active"),
        ("ACCESS_DENIED", "access scopes"),
        ("MAX_COST_EXCEEDED", "too expensive"),
        ("SOMETHING_NEW", "shopify refused"),
    ],
)
def test_codes_a_retry_cannot_cure_are_permanent(
    served: Served, shop: ShopifyConnector, code: str, says: str
) -> None:
    _faults(served).error_next(1, code)
    with pytest.raises(PermanentError, match=says) as caught:
        shop.find_product(["P1"])
    assert not isinstance(caught.value, TransientError)
    if isinstance(caught.value, ShopifyRefused):
        assert caught.value.code == code
    assert TOKEN not in str(caught.value)


def test_throttled_without_figures_is_transient_with_a_retry_after(
    served: Served, shop: ShopifyConnector
) -> None:
    _faults(served).error_next(1, "THROTTLED")
    with pytest.raises(TransientError) as caught:
        shop.find_product(["P1"])
    assert caught.value.retry_after and caught.value.retry_after > 0
    assert shop.find_product(["P1"]) is None


def test_an_internal_error_beside_another_code_is_permanent(shop: ShopifyConnector) -> None:
    # Only an answer that is nothing but Shopify's stand-in for a 500 is worth a retry: a
    # second, refusing error would refuse the retry too.
    body = {
        "errors": [
            {"message": "Internal error", "extensions": {"code": "INTERNAL_SERVER_ERROR"}},
            {"message": "Access denied", "extensions": {"code": "ACCESS_DENIED"}},
        ]
    }
    refused = shop.api._refused(body["errors"], None)
    assert isinstance(refused, ShopifyRefused) and refused.code == "ACCESS_DENIED"
