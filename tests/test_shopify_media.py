"""Images out to the Shopify double as product media (issue 18): each media Stockyard adds
carries a `stockyard.image` mark, so a retry finds the image it sent and another image
never matches, whatever its file name or alt text; a media without a mark is taken as the
image only by the exact file name Shopify keeps (or that name with Shopify's UUID), or by
its alt text while unprocessed. Every request the connector sent is valid against the
schema.

Skipped when the schema is not installed (bash scripts/install-shopify-schema.sh).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from stockyard.connectors.base import ChannelImage, ChannelProduct, ChannelVariant
from stockyard.connectors.shopify import ShopifyConnector
from stockyard.errors import PermanentError
from tests.support import shopify_schema as schema

pytestmark = schema.needs_schema

from tests.support.shopify_double import TOKEN, Obj, Served, ShopifyDouble, serve  # noqa: E402
from tests.support.shopify_double_marks import merchant_media  # noqa: E402

KEY = "item-1ma6e"
IMG = "https://erp.example/img/"


@pytest.fixture
def served() -> Iterator[Served]:
    with serve(ShopifyDouble(capacity=1e6, restore_rate=1e4)) as s:
        yield s


@pytest.fixture
def shop(served: Served) -> Iterator[ShopifyConnector]:
    base = served.url.split("/admin/api/")[0]
    c = ShopifyConnector(
        {"shop": "stockyard-test.myshopify.com", "access_token": TOKEN, "base_url": base}
    )
    yield c
    c.close()
    assert served.double.received
    for r in served.double.received:
        assert r.token == TOKEN
        assert schema.validate(r.query or "", r.variables) == [], r.query


@pytest.fixture
def product(served: Served, shop: ShopifyConnector) -> tuple[str, Obj]:
    tee = ChannelProduct(
        "TEE", {"title": "Classic tee"}, [ChannelVariant("TEE-S", {"price": "19.90"})]
    )
    made = shop.create_product(tee, KEY)
    (obj,) = served.double.shop.of("Product")
    return made.id, obj


def image(name: str, alt: str = "Classic tee", code: str | None = None) -> ChannelImage:
    return ChannelImage(code or name, {"url": IMG + name, "alt": alt, "position": 0})


def adds(s: Served) -> int:
    return sum(1 for r in s.double.received if "mutation ProductAddMedia" in (r.query or ""))


def test_an_image_whose_name_ends_another_ones_is_a_new_media(
    served: Served, shop: ShopifyConnector, product: tuple[str, Obj]
) -> None:
    pid, obj = product
    back = shop.add_image(pid, image("tee_back.jpg"), KEY)
    served.double.process_media()
    front = shop.add_image(pid, image("tee.jpg"), KEY)
    assert front != back
    assert len(obj["_media"]) == 2


def test_a_merchants_image_is_taken_only_by_its_exact_file_name(
    served: Served, shop: ShopifyConnector, product: tuple[str, Obj]
) -> None:
    pid, obj = product
    theirs = merchant_media(served.double, obj, IMG + "tee_back.jpg", alt="")
    served.double.process_media()
    assert shop.add_image(pid, image("tee.jpg", alt=""), KEY) != theirs["id"]
    # A name Shopify made unique with a UUID is still the image's own.
    renamed = merchant_media(
        served.double, obj, IMG + "x/tee_0f8e6a52-1b1c-4c3e-9d2a-7e5f3b9c1a20.jpg"
    )
    served.double.process_media()
    again = shop.add_image(pid, image("x/tee.jpg", alt="", code="other"), KEY)
    assert again == renamed["id"]


def test_two_images_with_the_same_alt_added_back_to_back_are_two_media(
    served: Served, shop: ShopifyConnector, product: tuple[str, Obj]
) -> None:
    pid, obj = product
    first = shop.add_image(pid, image("tee-front.jpg"), KEY)
    second = shop.add_image(pid, image("tee-side.jpg"), KEY)  # the first still UPLOADED
    assert first != second
    assert [m["status"] for m in obj["_media"]] == ["UPLOADED", "UPLOADED"]
    assert adds(served) == 2


def test_a_retried_add_finds_the_image_it_sent_processed_or_not(
    served: Served, shop: ShopifyConnector, product: tuple[str, Obj]
) -> None:
    pid, obj = product
    sent = shop.add_image(pid, image("tee-front.jpg"), KEY)
    assert shop.add_image(pid, image("tee-front.jpg"), KEY) == sent
    served.double.process_media()
    assert shop.add_image(pid, image("tee-front.jpg"), KEY) == sent
    assert len(obj["_media"]) == 1
    assert adds(served) == 1


def test_a_retry_after_a_lost_answer_adopts_the_unmarked_media_and_marks_it(
    served: Served, shop: ShopifyConnector, product: tuple[str, Obj]
) -> None:
    pid, obj = product
    update = served.double.resolvers[("Mutation", "productUpdate")]

    def lost(*args: Any, **kwargs: Any) -> Any:
        update(*args, **kwargs)  # done in Shopify, the answer never arrives
        raise RuntimeError("connection reset")

    served.double.resolvers[("Mutation", "productUpdate")] = lost
    with pytest.raises(Exception):  # noqa: B017 - whatever the client makes of it
        shop.add_image(pid, image("tee-front.jpg"), KEY)
    served.double.resolvers[("Mutation", "productUpdate")] = update
    (media,) = obj["_media"]
    assert "_metafields" not in media
    assert shop.add_image(pid, image("tee-front.jpg"), KEY) == media["id"]
    assert ("stockyard", "image") in media["_metafields"]
    # Marked now: another image with the same alt is a new media.
    assert shop.add_image(pid, image("tee-side.jpg"), KEY) != media["id"]
    assert len(obj["_media"]) == 2


def test_a_failed_media_is_removed_and_the_item_fails(
    served: Served, shop: ShopifyConnector, product: tuple[str, Obj]
) -> None:
    pid, obj = product
    shop.add_image(pid, image("broken.jpg"), KEY)
    served.double.process_media()
    with pytest.raises(PermanentError, match="IMAGE_DOWNLOAD_FAILURE"):
        shop.add_image(pid, image("broken.jpg"), KEY)
    assert obj["_media"] == []
