"""The `shopify` connector against the Shopify double over real HTTP (issue 18): products
with variants made and found again by SKU, a price change as one variant update, an
existing product linked instead of duplicated, stock compare-and-set through a stale
answer, THROTTLED as a transient error with the bucket's retry-after, and every request
the connector sent valid against Shopify's own schema.

Skipped when the schema is not installed (bash scripts/install-shopify-schema.sh).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stockyard.connectors.base import ChannelImage, ChannelProduct, ChannelVariant
from stockyard.connectors.shopify import ShopifyConnector, documents
from stockyard.connectors.shopify.client import ShopifyClient
from stockyard.errors import PermanentError, TransientError
from tests.support import shopify_schema as schema
from tests.support.api_env import ApiEnv

pytestmark = schema.needs_schema

from tests.support.clock import Clock  # noqa: E402
from tests.support.shopify_double import TOKEN, Served, ShopifyDouble, serve  # noqa: E402
from tests.support.shopify_double_faults import Faults  # noqa: E402

KEY = "item-7f3c"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def served(clock: Clock) -> Iterator[Served]:
    double = ShopifyDouble(capacity=1e6, restore_rate=1e4, clock=clock)
    with serve(double) as s:
        yield s


@pytest.fixture
def location(served: Served) -> str:
    return str(served.double.shop.add_location("Main")["id"])


def connector(s: Served, **settings: Any) -> ShopifyConnector:
    base = s.url.split("/admin/api/")[0]
    return ShopifyConnector(
        {"shop": "stockyard-test.myshopify.com", "access_token": TOKEN, "base_url": base} | settings
    )


@pytest.fixture
def shop(served: Served, location: str) -> Iterator[ShopifyConnector]:
    c = connector(served, location_id=location)
    yield c
    c.close()
    # Whatever a test did, every request the connector sent was valid against the schema.
    assert served.double.received
    for r in served.double.received:
        assert r.token == TOKEN
        assert schema.validate(r.query or "", r.variables) == [], r.query


def tee(price: str = "19.90", quantities: tuple[int, int] = (5, 3)) -> ChannelProduct:
    return ChannelProduct(
        "TEE",
        {"title": "Classic tee", "description": "Cotton <b>heavy</b>"},
        [
            ChannelVariant(
                f"TEE-{size}",
                {"price": price, "barcode": None, "quantity": q, "options": {"Size": size}},
            )
            for size, q in zip(("S", "M"), quantities, strict=True)
        ],
    )


def operations(s: Served) -> list[str | None]:
    return [r.operation_name or _name(r.query) for r in s.double.received]


def _name(query: str | None) -> str | None:
    words = (query or "").split()
    return words[1].split("(")[0] if len(words) > 1 else None


def test_create_a_product_with_variants_and_find_it_by_sku(
    served: Served, shop: ShopifyConnector, location: str
) -> None:
    made = shop.create_product(tee(), KEY)
    assert set(made.variants) == {"TEE-S", "TEE-M"}
    # The handle looked up (1 point: free), then two writes and nothing read back: a new
    # product holds only the standalone variant.
    assert operations(served) == ["ProductByHandle", "ProductCreate", "VariantsCreate"]

    found = shop.find_product(["NOPE", "TEE-M"])
    assert found is not None
    assert found.id == made.id
    assert found.variants == made.variants

    double = served.double.shop
    (product,) = double.of("Product")
    assert product["title"] == "Classic tee"
    assert product["descriptionHtml"] == "Cotton &lt;b&gt;heavy&lt;/b&gt;"
    assert [v["sku"] for v in product["_variants"]] == ["TEE-S", "TEE-M"]  # no standalone left
    assert [v["price"] for v in product["_variants"]] == ["19.90", "19.90"]
    items = [v["_item"]["id"] for v in product["_variants"]]
    assert [double.available(i, location) for i in items] == [5, 3]
    assert shop.find_product(["NOPE"]) is None


def test_a_product_without_options_gets_shopifys_default_title(
    served: Served, shop: ShopifyConnector
) -> None:
    single = ChannelProduct("MUG", {"title": "Mug"}, [ChannelVariant("MUG-1", {"price": "8"})])
    made = shop.create_product(single, KEY)
    (variant,) = served.double.shop.of("ProductVariant")
    assert made.variants == {"MUG-1": variant["id"]}
    assert variant["selectedOptions"] == [{"name": "Title", "value": "Default Title"}]


# --- create_product leaves no stray product behind -----------------------------------------


def refusing(shop: ShopifyConnector, refused: dict[str, Exception], applied: bool = False) -> None:
    """The shop's client refuses each document of `refused` once with its error: before
    sending (pacing, an unsent 5xx) or, `applied`, after Shopify applied it (a lost answer)."""
    real = shop.api.query

    def query(document: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        error = refused.pop(document, None)
        if error is not None and not applied:
            raise error
        answer = real(document, variables)
        if error is not None:
            raise error
        return answer

    shop.api.query = query  # type: ignore[method-assign]


def refused_by_pacing() -> TransientError:
    return TransientError("shopify: the shop's query-cost bucket cannot cover", retry_after=3)


def tees(s: Served) -> list[tuple[str, list[str | None]]]:
    return [(p["handle"], [v["sku"] for v in p["_variants"]]) for p in s.double.shop.of("Product")]


def test_refused_variants_and_delete_leave_one_product_the_retry_finishes(
    served: Served, shop: ShopifyConnector, location: str
) -> None:
    refusing(
        shop,
        {
            documents.VARIANTS_BULK_CREATE: refused_by_pacing(),
            documents.PRODUCT_DELETE: refused_by_pacing(),
        },
    )
    with pytest.raises(TransientError):
        shop.create_product(tee(), KEY)
    assert tees(served) == [("tee", [None])]  # kept: the retry finds it by its handle
    assert shop.find_product(["TEE-S", "TEE-M"]) is None  # so the flow creates again
    before = len(served.double.received)
    made = shop.create_product(tee(), KEY)
    assert operations(served)[before:] == [
        "ProductByHandle",
        "ProductVariantsFirst",
        "VariantsCreate",
    ]
    assert tees(served) == [("tee", ["TEE-S", "TEE-M"])]
    found = shop.find_product(["TEE-M"])
    assert found is not None and found.id == made.id and found.variants == made.variants
    items = [v["_item"]["id"] for v in served.double.shop.of("Product")[0]["_variants"]]
    assert [served.double.shop.available(i, location) for i in items] == [5, 3]


def test_a_502_on_the_variants_call_keeps_the_product_for_the_retry(
    served: Served, shop: ShopifyConnector
) -> None:
    real = shop.api.query
    faults: Faults = served.double.faults  # type: ignore[attr-defined]

    def query(document: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        if document == documents.VARIANTS_BULK_CREATE and not faults.served:
            faults.fail_next(1, 502)  # Shopify's edge, before the shop
        return real(document, variables)

    shop.api.query = query  # type: ignore[method-assign]
    with pytest.raises(TransientError, match="502"):
        shop.create_product(tee(), KEY)
    assert "ProductDelete" not in operations(served)
    shop.create_product(tee(), KEY)
    assert tees(served) == [("tee", ["TEE-S", "TEE-M"])]


@pytest.mark.parametrize("lost", [documents.PRODUCT_CREATE, documents.VARIANTS_BULK_CREATE])
def test_an_applied_call_whose_answer_was_lost_is_not_made_twice(
    served: Served, shop: ShopifyConnector, lost: str
) -> None:
    refusing(shop, {lost: TransientError("shopify: internal error")}, applied=True)
    with pytest.raises(TransientError):
        shop.create_product(tee(), KEY)
    made = shop.create_product(tee(), KEY)
    assert tees(served) == [("tee", ["TEE-S", "TEE-M"])]
    assert set(made.variants) == {"TEE-S", "TEE-M"}
    assert "ProductCreate" not in operations(served)[-3:]


def test_a_handle_holding_another_products_skus_is_left_alone(
    served: Served, shop: ShopifyConnector
) -> None:
    other = ChannelProduct("TEE", {"title": "Merchant tee"}, [ChannelVariant("OTHER-1", {})])
    shop.create_product(other, KEY)
    refusing(shop, {documents.VARIANTS_BULK_CREATE: refused_by_pacing()})
    with pytest.raises(TransientError):
        shop.create_product(tee(), KEY)
    made = shop.create_product(tee(), KEY)  # finds its own product under its second handle
    (merchant, ours) = tees(served)
    assert merchant == ("tee", ["OTHER-1"])
    assert ours[0].startswith("tee-") and ours[1] == ["TEE-S", "TEE-M"]
    product = served.double.shop.get(made.id, "Product")
    assert product is not None and product["handle"] == ours[0]


def test_a_handle_holding_a_product_of_another_title_without_skus_is_not_adopted(
    served: Served, shop: ShopifyConnector
) -> None:
    shop.api.query(documents.PRODUCT_CREATE, {"product": {"title": "Gift card", "handle": "tee"}})
    shop.create_product(tee(), KEY)
    (gift, ours) = tees(served)
    assert gift == ("tee", [None])
    assert ours[0] != "tee" and ours[1] == ["TEE-S", "TEE-M"]


def test_both_handles_taken_by_others_is_a_clear_permanent_error(
    served: Served, shop: ShopifyConnector
) -> None:
    shop.create_product(ChannelProduct("TEE", {}, [ChannelVariant("OTHER-1", {})]), KEY)
    shop.create_product(ChannelProduct("TEE", {}, [ChannelVariant("OTHER-2", {})]), KEY)
    with pytest.raises(PermanentError, match="hold other products"):
        shop.create_product(tee(), KEY)
    assert len(tees(served)) == 2


def test_a_handle_taken_between_look_up_and_create_is_looked_up_again(
    served: Served, shop: ShopifyConnector
) -> None:
    shop.create_product(tee(), KEY)  # made by a concurrent try, say
    real = shop.api.query

    def query(document: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        if document == documents.PRODUCT_BY_HANDLE:
            return {"productByIdentifier": None}  # the look-up ran before that try's create
        return real(document, variables)

    shop.api.query = query  # type: ignore[method-assign]
    with pytest.raises(TransientError, match="taken meanwhile") as caught:
        shop.create_product(tee(), KEY)
    assert caught.value.retry_after is not None
    shop.api.query = real  # type: ignore[method-assign]
    shop.create_product(tee(), KEY)
    assert tees(served) == [("tee", ["TEE-S", "TEE-M"])]


def test_the_double_refuses_a_taken_handle_and_suffixes_a_title_made_one(
    served: Served, shop: ShopifyConnector
) -> None:
    shop.create_product(tee(), KEY)
    taken = shop.api.query(documents.PRODUCT_CREATE, {"product": {"title": "T", "handle": "tee"}})
    assert taken["productCreate"]["product"] is None
    assert taken["productCreate"]["userErrors"][0]["field"] == ["handle"]
    made = shop.api.query(documents.PRODUCT_CREATE, {"product": {"title": "Tee"}})
    assert made["productCreate"]["product"]["handle"] == "tee-1"


def test_a_permanent_error_after_the_create_deletes_the_product(
    served: Served, shop: ShopifyConnector
) -> None:
    bad = ChannelProduct(
        "TEE", {"title": "Classic tee"}, [ChannelVariant("TEE-S", {"weight": "x"})]
    )
    with pytest.raises(PermanentError, match="weight"):
        shop.create_product(bad, KEY)
    assert tees(served) == []


def test_a_failed_cleanup_says_so_and_the_retry_adopts_the_product(
    served: Served, shop: ShopifyConnector
) -> None:
    bad = ChannelProduct(
        "TEE", {"title": "Classic tee"}, [ChannelVariant("TEE-S", {"weight": "x"})]
    )
    refusing(shop, {documents.PRODUCT_DELETE: refused_by_pacing()})
    with pytest.raises(PermanentError, match=r"weight.*could not be deleted"):
        shop.create_product(bad, KEY)
    fixed = ChannelProduct("TEE", {"title": "Classic tee"}, [ChannelVariant("TEE-S", {})])
    shop.create_product(fixed, KEY)
    assert tees(served) == [("tee", ["TEE-S"])]


def test_a_price_change_is_one_variant_update(served: Served, shop: ShopifyConnector) -> None:
    made = shop.create_product(tee(), KEY)
    before = len(served.double.received)
    changed = [
        ChannelVariant(v.sku, v.fields, made.variants[v.sku]) for v in tee(price="17.50").variants
    ]
    results = shop.upsert_variants(made.id, changed, KEY)
    assert [(r.key, r.ok) for r in results] == [("TEE-S", True), ("TEE-M", True)]
    sent = operations(served)[before:]
    # Read the variants (a first page of 10: 33 points, not 303), update them in one call,
    # read the stock (unchanged: not set).
    assert sent == ["ProductVariantsFirst", "VariantsUpdate", "InventoryLevels"]
    assert served.double.received[before].requested_cost == 33
    prices = {v["sku"]: v["price"] for v in served.double.shop.of("ProductVariant")}
    assert prices == {"TEE-S": "17.50", "TEE-M": "17.50"}


def test_a_product_with_more_variants_than_the_first_page_is_read_whole(
    served: Served, shop: ShopifyConnector
) -> None:
    sizes = [f"S{n:02d}" for n in range(12)]
    many = ChannelProduct(
        "BIG",
        {"title": "Big"},
        [ChannelVariant(f"BIG-{z}", {"price": "5", "options": {"Size": z}}) for z in sizes],
    )
    made = shop.create_product(many, KEY)
    before = len(served.double.received)
    changed = [ChannelVariant(v.sku, v.fields | {"price": "6"}, None) for v in many.variants]
    assert all(r.ok for r in shop.upsert_variants(made.id, changed, KEY))
    assert operations(served)[before : before + 2] == ["ProductVariantsFirst", "ProductVariants"]
    assert len(served.double.shop.of("ProductVariant")) == 12  # matched by SKU, none added


def test_a_document_never_sent_is_paced_as_a_mutation_not_as_free(clock: Clock) -> None:
    double = ShopifyDouble(capacity=1000, restore_rate=100, clock=clock)
    with serve(double) as s:
        c = connector(s, max_wait=0.0)
        c.api.clock = clock
        double.bucket.available = 105.0
        c.find_product(["NOPE"])  # 101 points: the client saw 4 left
        sent = len(double.received)
        with pytest.raises(TransientError) as caught:
            c.delete_product("gid://shopify/Product/1", KEY)  # never sent before
        assert len(double.received) == sent  # refused here, not THROTTLED there
        assert caught.value.retry_after == pytest.approx((10 - 4) / 100, abs=0.01)
        c.close()


def test_an_existing_product_is_linked_by_sku_not_duplicated(
    served: Served, shop: ShopifyConnector
) -> None:
    made = shop.create_product(tee(), KEY)
    # Another Stockyard (or the merchant) knows the product only by its SKUs.
    linked = shop.find_product([v.sku for v in tee().variants])
    assert linked is not None and linked.id == made.id
    # A third variant joins the linked product; the others are updated, not recreated.
    variants = [ChannelVariant(v.sku, v.fields, linked.variants[v.sku]) for v in tee().variants]
    variants.append(
        ChannelVariant("TEE-L", {"price": "21.00", "quantity": 2, "options": {"Size": "L"}})
    )
    results = shop.upsert_variants(linked.id, variants, KEY)
    assert all(r.ok for r in results)
    assert len(served.double.shop.of("Product")) == 1
    assert sorted(v["sku"] for v in served.double.shop.of("ProductVariant")) == [
        "TEE-L",
        "TEE-M",
        "TEE-S",
    ]


def test_update_product_changes_fields_and_keeps_variants(
    served: Served, shop: ShopifyConnector
) -> None:
    made = shop.create_product(tee(), KEY)
    shop.update_product(made.id, ChannelProduct("TEE", {"title": "Tee"}, []), KEY)
    (product,) = served.double.shop.of("Product")
    assert product["title"] == "Tee"
    assert len(product["_variants"]) == 2


def test_delete_product_and_already_gone_is_done(served: Served, shop: ShopifyConnector) -> None:
    made = shop.create_product(tee(), KEY)
    shop.delete_product(made.id, KEY)
    shop.delete_product(made.id, KEY)
    assert served.double.shop.of("Product") == []


def test_stock_compare_and_set_through_a_stale_answer(
    served: Served, shop: ShopifyConnector, location: str
) -> None:
    made = shop.create_product(tee(), KEY)
    double = served.double
    item = next(v["_item"]["id"] for v in double.shop.of("ProductVariant") if v["sku"] == "TEE-S")
    real = double.resolvers[("Mutation", "inventorySetQuantities")]
    calls: list[dict[str, Any]] = []

    def sold_in_between(source: Any, info: Any, input: dict[str, Any]) -> Any:
        # A sale lands between the connector's read and its first set: that set is stale.
        if not calls:
            double.shop.levels[(item, location)]["available"] -= 1
        calls.append(input)
        return real(source, info, input=input)

    double.resolvers[("Mutation", "inventorySetQuantities")] = sold_in_between
    variants = [
        ChannelVariant(v.sku, v.fields, made.variants[v.sku])
        for v in tee(quantities=(12, 3)).variants
    ]
    results = shop.upsert_variants(made.id, variants, KEY)
    assert all(r.ok for r in results)
    assert double.shop.available(item, location) == 12
    # First with the quantity read (5), stale; read again (4) and set once more.
    assert [c["quantities"][0]["changeFromQuantity"] for c in calls] == [5, 4]
    sets = [r for r in double.received if _name(r.query) == "InventorySet"]
    answers = [r.response["data"]["inventorySetQuantities"]["userErrors"] for r in sets]
    assert [e[0]["code"] if e else None for e in answers] == ["CHANGE_FROM_QUANTITY_STALE", None]
    keys = [r.variables["key"] for r in sets if r.variables]
    assert len(set(keys)) == 2  # the retry is a new request, not a replay of the stale one

    # The same item again: the quantity is already right, nothing is set.
    before = len(sets)
    shop.upsert_variants(made.id, variants, KEY)
    assert len([r for r in double.received if _name(r.query) == "InventorySet"]) == before


def test_a_repeated_stock_call_replays_instead_of_setting_twice(
    served: Served, shop: ShopifyConnector, location: str
) -> None:
    made = shop.create_product(tee(), KEY)
    variants = [
        ChannelVariant(v.sku, v.fields, made.variants[v.sku])
        for v in tee(quantities=(9, 3)).variants
    ]
    shop.upsert_variants(made.id, variants, KEY)
    (sent,) = [r for r in served.double.received if _name(r.query) == "InventorySet"]
    # The same request again (a worker died after sending it): Shopify answers the first
    # answer again, the stock moves once.
    shop.api.query(sent.query or "", sent.variables)
    item = next(
        v["_item"]["id"] for v in served.double.shop.of("ProductVariant") if v["sku"] == "TEE-S"
    )
    assert served.double.shop.available(item, location) == 9
    assert len(served.double.shop.of("InventoryAdjustmentGroup")) == 1


def test_throttled_is_a_transient_error_with_the_buckets_retry_after(clock: Clock) -> None:
    double = ShopifyDouble(capacity=1000, restore_rate=100, clock=clock)
    with serve(double) as s:
        c = connector(s, max_wait=0.5)
        c.api.clock = clock  # the client projects the bucket on the same (fake) time
        waited: list[float] = []

        def sleep(seconds: float) -> None:
            waited.append(seconds)
            clock.now += seconds + 0.001

        c.api.sleep = sleep
        c.create_product(tee(), KEY)
        double.bucket.available = 20.0
        with pytest.raises(TransientError) as caught:
            c.find_product(["TEE-S"])
        throttled = double.received[-1]
        assert throttled.response["errors"][0]["extensions"]["code"] == "THROTTLED"
        cost = throttled.requested_cost
        assert cost is not None
        assert caught.value.retry_after == pytest.approx((cost - 20) / 100)
        assert "THROTTLED" in str(caught.value)

        # Asked again before the bucket refilled: refused here, nothing sent (no spinning).
        sent = len(double.received)
        clock.now += 0.1
        with pytest.raises(TransientError) as again:
            c.find_product(["TEE-S"])
        assert len(double.received) == sent
        assert again.value.retry_after == pytest.approx((cost - 30) / 100)
        assert waited == []

        # A short wait (within max_wait) is waited out rather than failing the item.
        clock.now += (cost - 30) / 100 - 0.25
        found = c.api.query(documents.VARIANTS_BY_SKU, {"query": 'sku:"TEE-S"'})
        assert [v["sku"] for v in found["productVariants"]["nodes"]] == ["TEE-S"]
        assert waited == [pytest.approx(0.25)]
        assert len(double.received) == sent + 1
        c.close()


def test_a_query_bigger_than_the_bucket_is_permanent(clock: Clock) -> None:
    double = ShopifyDouble(capacity=50, restore_rate=10, clock=clock)
    with serve(double) as s:
        c = connector(s)
        with pytest.raises(PermanentError, match="can never fit"):
            c.find_product(["TEE-S"])
        c.close()


def test_a_wrong_token_is_permanent(served: Served) -> None:
    c = connector(served, access_token="shpat_wrong")
    with pytest.raises(PermanentError, match="HTTP 401"):
        c.find_product(["TEE-S"])
    c.close()


def test_settings_are_checked() -> None:
    assert ShopifyConnector.credential_problem({"access_token": "x"}) == (
        "settings.access_token is a credential: send it in secrets"
    )
    with pytest.raises(PermanentError, match="shop"):
        ShopifyConnector({"shop": "example.com", "access_token": "t"})
    with pytest.raises(PermanentError, match="location_id"):
        ShopifyConnector({"shop": "a.myshopify.com", "access_token": "t", "location_id": "Main"})
    # The shop's address goes through the outbound guard like any tenant-written URL.
    with pytest.raises(PermanentError, match="base_url"):
        ShopifyConnector(
            {"shop": "a.myshopify.com", "access_token": "t", "base_url": "https://10.0.0.1"}
        )


@pytest.mark.parametrize(
    "url", ["http://shop-proxy.example", "http://10.0.0.1", "ftp://127.0.0.1", "https://", "x"]
)
def test_base_url_is_https_unless_loopback(url: str) -> None:
    # The token travels in a header: in clear over http, to whoever is on the way.
    with pytest.raises(PermanentError, match="base_url") as caught:
        ShopifyConnector({"shop": "a.myshopify.com", "access_token": "t", "base_url": url})
    assert "https" in str(caught.value)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080", "http://localhost", "http://[::1]:9"])
def test_a_loopback_base_url_may_be_http_for_a_test_double(url: str) -> None:
    ShopifyConnector({"shop": "a.myshopify.com", "access_token": "t", "base_url": url}).close()


@pytest.mark.parametrize(
    "token", ["shpat_secret\x00", "shpat_secret\r\nX-Evil: 1", "shpat secret", "shpat_sécret", "\t"]
)
def test_a_token_that_is_not_printable_ascii_is_refused_without_echoing_it(token: str) -> None:
    with pytest.raises(PermanentError, match="access_token") as caught:
        ShopifyConnector({"shop": "a.myshopify.com", "access_token": token})
    assert "secret" not in str(caught.value)


def test_a_request_that_cannot_be_sent_names_no_header_value(served: Served) -> None:
    # Built directly, past the settings' check: the transport refuses the header itself,
    # and its message quotes the value.
    api = ShopifyClient(served.url, "shpat_secret\x00")
    with pytest.raises(PermanentError) as caught:
        api.query(documents.VARIANTS_BY_SKU, {"query": 'sku:"X"'})
    api.close()
    assert "secret" not in str(caught.value) and "shpat" not in str(caught.value)
    assert "LocalProtocolError" in str(caught.value)
    assert served.double.received == []


def test_a_shop_out_of_reach_is_transient_and_says_only_what_failed() -> None:
    api = ShopifyClient("http://127.0.0.1:9/admin/api/2026-07/graphql.json", TOKEN)
    with pytest.raises(TransientError) as caught:
        api.query(documents.VARIANTS_BY_SKU, {"query": 'sku:"X"'})
    api.close()
    assert str(caught.value) == "cannot reach shopify (ConnectError)"


def test_an_answer_over_the_cap_is_permanent_and_names_the_cap(
    served: Served, shop: ShopifyConnector
) -> None:
    shop.create_product(tee(), KEY)
    shop.api.max_answer = 200  # bytes: the product's answer is larger
    with pytest.raises(PermanentError, match="200 bytes"):
        shop.find_product(["TEE-S"])
    shop.api.max_answer = 1 << 20
    assert shop.find_product(["TEE-S"]) is not None


def test_answers_are_capped_at_32_mib_by_default(served: Served) -> None:
    api = ShopifyClient(served.url, TOKEN)
    assert api.max_answer == 32 * 1024 * 1024
    api.close()


# --- variants deleted, weight, compare-at and barcode ------------------------------------


def test_delete_a_variant_already_gone_is_done_and_the_last_one_is_refused(
    served: Served, shop: ShopifyConnector
) -> None:
    made = shop.create_product(tee(), KEY)
    shop.delete_variant(made.id, made.variants["TEE-M"], KEY)
    (product,) = served.double.shop.of("Product")
    assert [v["sku"] for v in product["_variants"]] == ["TEE-S"]
    shop.delete_variant(made.id, made.variants["TEE-M"], KEY)  # a repeat: already gone
    with pytest.raises(PermanentError, match="CANNOT_DELETE_LAST_VARIANT"):
        shop.delete_variant(made.id, made.variants["TEE-S"], KEY)


def test_weight_compare_at_price_and_barcode_are_sent(served: Served, location: str) -> None:
    shop = connector(served, location_id=location, weight_unit="GRAMS")
    product = ChannelProduct(
        "MUG",
        {"title": "Mug"},
        [
            ChannelVariant(
                "MUG-1",
                {
                    "price": "8.00",
                    "compare_at_price": "9.50",
                    "barcode": "4006381333931",
                    "weight": "350",
                    "quantity": 2,
                },
            )
        ],
    )
    made = shop.create_product(product, KEY)
    (variant,) = served.double.shop.of("ProductVariant")
    assert (variant["compareAtPrice"], variant["barcode"]) == ("9.50", "4006381333931")
    assert variant["_item"]["measurement"]["weight"] == {"unit": "GRAMS", "value": 350.0}
    lighter = ChannelVariant("MUG-1", {**product.variants[0].fields, "weight": "340.5"})
    shop.upsert_variants(made.id, [lighter], KEY)
    assert variant["_item"]["measurement"]["weight"] == {"unit": "GRAMS", "value": 340.5}
    shop.close()


def test_the_weight_unit_defaults_to_kilograms(served: Served, shop: ShopifyConnector) -> None:
    mug = ChannelVariant("MUG-1", {"price": "8", "weight": "0.35"})
    shop.create_product(ChannelProduct("MUG", {"title": "Mug"}, [mug]), KEY)
    (variant,) = served.double.shop.of("ProductVariant")
    assert variant["_item"]["measurement"]["weight"] == {"unit": "KILOGRAMS", "value": 0.35}


# --- warehouses -> locations, inventoryActivate ------------------------------------------


def test_stock_per_warehouse_goes_to_the_mapped_locations(served: Served, location: str) -> None:
    annex = str(served.double.shop.add_location("Annex")["id"])
    shop = connector(
        served,
        location_id=location,
        locations={"WH-A": location, "WH-B": annex, "WH-C": annex},
    )

    def mug(stock: dict[str, int]) -> ChannelVariant:
        return ChannelVariant(
            "MUG-1", {"price": "8", "quantity": sum(stock.values()), "stock": stock}
        )

    made = shop.create_product(
        ChannelProduct("MUG", {"title": "Mug"}, [mug({"WH-A": 4, "WH-B": 1, "WH-C": 2, "X": 9})]),
        KEY,
    )
    double = served.double.shop
    item = double.of("ProductVariant")[0]["_item"]["id"]
    assert (double.available(item, location), double.available(item, annex)) == (4, 3)
    # Warehouses summed per location; a warehouse left out counts 0 (as the flow's sum).
    shop.upsert_variants(made.id, [mug({"WH-A": 6, "WH-C": 5})], KEY)
    assert (double.available(item, location), double.available(item, annex)) == (6, 5)
    shop.close()


def test_an_item_not_stocked_at_a_location_is_activated_there(
    served: Served, location: str
) -> None:
    first = connector(served, location_id=location)
    made = first.create_product(tee(), KEY)
    first.close()
    annex = str(served.double.shop.add_location("Annex")["id"])
    shop = connector(served, location_id=location, locations={"WH-A": location, "WH-B": annex})
    variants = [
        ChannelVariant(v.sku, {**v.fields, "stock": {"WH-A": 5, "WH-B": 7}}, made.variants[v.sku])
        for v in tee().variants
    ]
    results = shop.upsert_variants(made.id, variants, KEY)
    assert all(r.ok for r in results), results
    double = served.double.shop
    items = [v["_item"]["id"] for v in double.of("ProductVariant")]
    assert [double.available(i, annex) for i in items] == [7, 7]
    assert [double.available(i, location) for i in items] == [5, 5]
    activations = [r for r in served.double.received if _name(r.query) == "InventoryActivate"]
    assert len(activations) == 2
    # Again: already stocked there and right, nothing more is sent.
    shop.upsert_variants(made.id, variants, KEY)
    assert len([r for r in served.double.received if _name(r.query) == "InventoryActivate"]) == 2
    shop.close()


def test_location_settings_are_checked() -> None:
    base = {"shop": "a.myshopify.com", "access_token": "t"}
    with pytest.raises(PermanentError, match=r"locations\.WH-A"):
        ShopifyConnector(base | {"locations": {"WH-A": "Main"}})
    with pytest.raises(PermanentError, match="weight_unit"):
        ShopifyConnector(base | {"weight_unit": "KG"})
    with pytest.raises(PermanentError, match="notify_customer"):
        ShopifyConnector(base | {"notify_customer": "maybe"})


# --- images (product media) --------------------------------------------------------------


def image(url: str = "https://erp.example/img/tee-front.jpg", alt: str = "Front") -> ChannelImage:
    return ChannelImage(url, {"url": url, "alt": alt, "position": 0})


def test_add_an_image_then_a_retry_finds_it_and_delete_it(
    served: Served, shop: ShopifyConnector
) -> None:
    made = shop.create_product(tee(), KEY)
    media_id = shop.add_image(made.id, image(), KEY)
    (product,) = served.double.shop.of("Product")
    assert [(m["id"], m["alt"], m["status"]) for m in product["_media"]] == [
        (media_id, "Front", "UPLOADED")
    ]
    # A retry while Shopify still processes it, and once it is processed: the same media.
    assert shop.add_image(made.id, image(), KEY) == media_id
    served.double.process_media()
    assert shop.add_image(made.id, image(), KEY) == media_id
    assert shop.add_image(made.id, image("https://erp.example/img/tee-back.jpg", ""), KEY) != (
        media_id
    )
    assert len(product["_media"]) == 2
    shop.delete_image(made.id, media_id, KEY)
    assert [m["alt"] for m in product["_media"]] == [""]
    shop.delete_image(made.id, media_id, KEY)  # already gone: done


def test_an_image_shopify_could_not_process_is_a_permanent_error(
    served: Served, shop: ShopifyConnector
) -> None:
    made = shop.create_product(tee(), KEY)
    broken = image("https://erp.example/img/broken.jpg")
    shop.add_image(made.id, broken, KEY)
    served.double.process_media()
    with pytest.raises(PermanentError, match="IMAGE_DOWNLOAD_FAILURE"):
        shop.add_image(made.id, broken, KEY)
    # The failed media is removed, so the item's retry (the URL fixed) starts clean.
    (product,) = served.double.shop.of("Product")
    assert product["_media"] == []
    with pytest.raises(PermanentError, match="http"):
        shop.add_image(made.id, image("ftp://erp.example/a.jpg"), KEY)


def test_an_item_stocked_at_more_than_ten_locations_is_read_at_the_one_wanted(
    served: Served, location: str
) -> None:
    first = connector(served, location_id=location)
    made = first.create_product(tee(), KEY)
    first.close()
    double = served.double.shop
    items = [v["_item"]["id"] for v in double.of("ProductVariant")]
    extra = [str(double.add_location(f"Shop {n}")["id"]) for n in range(10)]
    for item in items:
        for loc in extra:
            double.levels[(item, loc)] = {"available": 2, "on_hand": 2}
    last = extra[-1]  # the 11th level of each item: past the first page of 10
    shop = connector(served, location_id=last)
    variants = [
        ChannelVariant(v.sku, {**v.fields, "quantity": 6}, made.variants[v.sku])
        for v in tee().variants
    ]
    assert all(r.ok for r in shop.upsert_variants(made.id, variants, KEY))
    assert [double.available(i, last) for i in items] == [6, 6]
    names = operations(served)
    assert "InventoryActivate" not in names
    assert names.count("InventoryLevelAt") == 2
    shop.close()


def test_an_endless_answer_is_cut_at_the_cap_not_read_whole() -> None:
    # A proxy at base_url answering without a length and without end.
    listener = socket.create_server(("127.0.0.1", 0))
    port, sent = listener.getsockname()[1], [0]

    def answer() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n")
            chunk = b"[" * 65536
            try:
                while sent[0] < 64 * 1024 * 1024:
                    conn.sendall(chunk)
                    sent[0] += len(chunk)
            except OSError:
                pass  # the client hung up: what this test wants

    server = threading.Thread(target=answer, daemon=True)
    server.start()
    api = ShopifyClient(f"http://127.0.0.1:{port}/admin/api/2026-07/graphql.json", TOKEN)
    api.max_answer = 1024 * 1024
    with pytest.raises(PermanentError, match="larger than 1048576 bytes"):
        api.query(documents.VARIANTS_BY_SKU, {"query": 'sku:"X"'})
    api.close()
    server.join(timeout=10)
    listener.close()
    assert sent[0] < 16 * 1024 * 1024  # stopped soon after the cap, not at the end


@pytest.mark.parametrize(
    ("settings", "secrets", "field"),
    [
        ({}, {"access_token": "shpat_zq9\x00"}, "access_token"),
        ({}, {"access_token": "shpat_zq9\r\nX: 1"}, "access_token"),
        ({}, {"access_token": "shpat zq9"}, "access_token"),
        ({"base_url": "http://shop-proxy.example"}, {"access_token": "shpat_ok"}, "base_url"),
    ],
)
def test_the_api_refuses_bad_shopify_settings_with_a_422_naming_the_field(
    tmp_path: Path, settings: dict[str, Any], secrets: dict[str, Any], field: str
) -> None:
    api = ApiEnv(f"sqlite:///{tmp_path}/api.db")
    try:
        body = {
            "kind": "channel",
            "connector": "shopify",
            "description": "Shop",
            "settings": {"shop": "a.myshopify.com"} | settings,
            "secrets": secrets,
        }
        r = api.http.post(
            f"/v1/clients/{api.a.id}/connections",
            headers=api.headers(api.a.tokens["administrator"]),
            json=body,
        )
        assert r.status_code == 422, r.text
        assert field in r.json()["detail"] and "zq9" not in r.text
    finally:
        api.close()
