"""Images by URL on WooCommerce products (issue 19) against the double over real HTTP:
WooCommerce downloads `images[].src` itself and replaces the product's whole list on a
PUT, so an image is added by reading the list and writing it back with the new one in
place; a retry after a lost answer finds the image by the mark in its `name` instead of
adding it twice; a delete writes the list back without it. Every request the connector
sent is valid against the transcribed wc/v3 contract (tests/support/woocommerce_contract)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from stockyard.connectors.base import ChannelImage
from stockyard.connectors.woocommerce import WooCommerceConnector
from stockyard.errors import PermanentError, TransientError
from tests.support.woocommerce_double import (
    Served,
    serve,
)
from tests.support.woocommerce_double_bulk import WooCommerceBulkDouble, connected

KEY = "item-1mg"
FRONT = "https://cdn.example.com/img/tee-front.jpg"
BACK = "https://cdn.example.com/img/tee-back.jpg"


@pytest.fixture
def served() -> Iterator[Served]:
    with serve(WooCommerceBulkDouble()) as s:
        yield s


@pytest.fixture
def store(served: Served) -> Iterator[WooCommerceConnector]:
    with connected(served) as c:
        yield c


def image(code: str = "front", url: str = FRONT, position: int = 0) -> ChannelImage:
    return ChannelImage(code, {"url": url, "alt": f"Tee, {code}", "position": position})


@pytest.fixture
def product(served: Served) -> int:
    """A product with one image the merchant added in WooCommerce's admin."""
    return served.double.add_product("TEE", images=["https://shop.example/own-photo.png"])


def shown(served: Served, pid: int) -> list[dict[str, object]]:
    return served.double.images_of(pid)


def test_an_image_is_added_by_url_keeping_the_merchants_own(
    served: Served, store: WooCommerceConnector, product: int
) -> None:
    (own,) = shown(served, product)
    made = store.add_image(str(product), image(position=0), KEY)
    assert served.double.calls() == [f"GET /products/{product}", f"PUT /products/{product}"]
    (put,) = [r for r in served.double.received if r.method == "PUT"]
    # The whole list goes back: the merchant's image by id, ours by src, first (featured).
    assert put.body["images"][0]["src"] == FRONT
    assert put.body["images"][1] == {"id": own["id"]}
    images = shown(served, product)
    assert [i["id"] for i in images] == [int(made), own["id"]]
    assert images[0]["alt"] == "Tee, front" and images[0]["source"] == FRONT


def test_a_second_image_goes_at_its_position_and_each_is_its_own(
    served: Served, store: WooCommerceConnector, product: int
) -> None:
    front = store.add_image(str(product), image(), KEY)
    back = store.add_image(str(product), image("back", BACK, position=5), KEY)
    assert front != back
    ids = [str(i["id"]) for i in shown(served, product)]
    assert ids[0] == front and ids[-1] == back
    # The same URL under another code is another image, not this one.
    other = store.add_image(str(product), image("front-again", FRONT), KEY)
    assert other not in (front, back) and len(shown(served, product)) == 4


def test_a_retry_after_a_lost_answer_finds_the_image_instead_of_adding_it_again(
    served: Served, store: WooCommerceConnector, product: int
) -> None:
    served.double.lose_next(504, "PUT")  # the PUT is done, its answer never arrives
    with pytest.raises(TransientError):
        store.add_image(str(product), image(), KEY)
    count = len(served.double.received)
    made = store.add_image(str(product), image(), KEY)
    assert served.double.calls()[count:] == [f"GET /products/{product}"]
    assert [i["source"] for i in shown(served, product)].count(FRONT) == 1
    assert made == str(shown(served, product)[0]["id"])


@pytest.mark.parametrize(
    "url", ["", "ftp://cdn.example.com/a.jpg", "file:///etc/passwd", "javascript:alert(1)", "/a"]
)
def test_only_http_urls_are_sent_and_nothing_else_is(
    served: Served, store: WooCommerceConnector, product: int, url: str
) -> None:
    count = len(served.double.received)
    with pytest.raises(PermanentError, match="image front: the url must be http"):
        store.add_image(str(product), image(url=url), KEY)
    assert len(served.double.received) == count


def test_a_url_the_store_cannot_download_fails_the_image_and_changes_nothing(
    served: Served, store: WooCommerceConnector, product: int
) -> None:
    before = shown(served, product)
    broken = "https://cdn.example.com/missing/tee.jpg"
    with pytest.raises(PermanentError, match="woocommerce_product_image_upload_error"):
        store.add_image(str(product), image(url=broken), KEY)
    assert shown(served, product) == before


def test_a_foreign_or_unknown_product_id_is_permanent(
    served: Served, store: WooCommerceConnector
) -> None:
    with pytest.raises(PermanentError, match="not a product id"):
        store.add_image("gid://shopify/Product/1", image(), KEY)
    with pytest.raises(PermanentError, match="HTTP 404"):
        store.add_image("99999", image(), KEY)


def test_delete_removes_only_that_image_and_is_repeatable(
    served: Served, store: WooCommerceConnector, product: int
) -> None:
    (own,) = shown(served, product)
    made = store.add_image(str(product), image(), KEY)
    count = len(served.double.received)
    store.delete_image(str(product), made, KEY)
    assert served.double.calls()[count:] == [f"GET /products/{product}", f"PUT /products/{product}"]
    assert [i["id"] for i in shown(served, product)] == [own["id"]]
    count = len(served.double.received)
    store.delete_image(str(product), made, KEY)  # gone already: nothing written
    assert served.double.calls()[count:] == [f"GET /products/{product}"]
    store.delete_image("99999", made, KEY)  # the product is gone: so is its image


def test_throttling_is_transient(served: Served, store: WooCommerceConnector, product: int) -> None:
    served.double.fail_next(429)
    with pytest.raises(TransientError):
        store.add_image(str(product), image(), KEY)
    assert store.add_image(str(product), image(), KEY)
