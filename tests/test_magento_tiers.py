"""Customer-group prices for Magento (issue 19): a channel whose rules map Stockyard price
tiers to customer groups (`rules.group_prices`) sends each variant's price in a tier as
that group's Magento tier price at quantity 1; other channels' variants stay as they were
(their fingerprints unchanged). Over HTTP against the Magento double, which checks every
request against Adobe's OpenAPI document and the prices as Magento's TierPriceValidator
does. Skipped (the connector part) when the document is not installed.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from stockyard.catalog.models import Variant
from stockyard.catalog.store import StoredVariant
from stockyard.connectors.base import ChannelProduct, ChannelVariant
from stockyard.errors import PermanentError
from stockyard.flows.rules import ChannelRules, rules_of, variant_hash
from stockyard.tenancy import Connection
from tests.support import magento_contract as contract

KEY = "item-19-mg-tiers"
TIER_PRICES = "/V1/products/tier-prices"
needs_document = pytest.mark.skipif(not contract.installed(), reason=contract.skip_reason())


def stored(prices: dict[str, str] | None = None) -> StoredVariant:
    tiers = {tier: Decimal(price) for tier, price in (prices or {}).items()}
    variant = Variant(sku="TEE-S", price=Decimal("10.00"), prices=tiers, quantity=3)
    return StoredVariant(7, variant)


# ------------------------------------------------------------------------- the rules


def test_channels_without_group_prices_keep_their_variant_fingerprints() -> None:
    v = stored({"trade": "8.50"})
    plain = ChannelRules().variant(v)
    assert "group_prices" not in plain.fields
    # The fingerprint of a channel without the rule, as before the rule existed.
    before: dict[str, Any] = {
        "barcode": None,
        "price": "10.00",
        "quantity": 3,
        "weight": None,
        "options": {},
    }
    assert variant_hash(plain) == variant_hash(ChannelVariant("TEE-S", before))
    assert variant_hash(ChannelRules(price_tier="trade").variant(v)) == variant_hash(
        ChannelVariant("TEE-S", before | {"price": "8.50"})
    )


def test_a_mapped_tier_becomes_a_group_price_and_a_missing_one_none() -> None:
    rules = ChannelRules(group_prices={"trade": "Wholesale", "vip": "VIP"})
    fields = rules.variant(stored({"trade": "8.50"})).fields
    assert fields["group_prices"] == {"Wholesale": "8.50", "VIP": None}
    assert fields["price"] == "10.00"  # the channel's own price is unchanged
    # A price in the tier changes the variant's fingerprint: the change is sent.
    cheaper = rules.variant(stored({"trade": "8.00"}))
    assert variant_hash(cheaper) != variant_hash(rules.variant(stored({"trade": "8.50"})))


@pytest.mark.parametrize(
    ("group_prices", "words"),
    [
        ({"trade": "Wholesale", "b2b": "wholesale"}, "same customer group"),
        ({"trade": ""}, "group_prices"),
        (["Wholesale"], "group_prices"),
    ],
)
def test_bad_group_prices_rules_fail_the_channel_with_a_clear_message(
    group_prices: Any, words: str
) -> None:
    channel = Connection(
        id=3,
        client_id=1,
        kind="channel",
        connector="magento",
        description="Trade store",
        settings={"rules": {"group_prices": group_prices}},
        status="active",
    )
    with pytest.raises(PermanentError, match=words) as caught:
        rules_of(channel)
    assert "connection 3 (Trade store)" in str(caught.value)


# --------------------------------------------------------------------- the connector


@pytest.fixture
def served() -> Iterator[Any]:
    from tests.support.magento_double import MagentoDouble, serve

    double = MagentoDouble()
    double.add_attribute("size", 141, ["S", "M", "L"])
    with serve(double) as s:
        yield s


@pytest.fixture
def shop(served: Any) -> Iterator[Any]:
    from stockyard.connectors.magento import MagentoConnector
    from tests.support.magento_double import TOKEN

    c = MagentoConnector({"url": served.url, "access_token": TOKEN})
    yield c
    c.close()
    double = served.double
    assert [r.violation for r in double.received if r.violation] == []
    assert double.answer_faults == []


def tee(groups: dict[str, dict[str, str | None]] | None = None) -> ChannelProduct:
    variants = []
    for size in ("S", "M"):
        fields: dict[str, Any] = {"price": "19.90", "quantity": 5, "options": {"Size": size}}
        if groups is not None:
            fields["group_prices"] = groups.get(size, {})
        variants.append(ChannelVariant(f"TEE-{size}", fields, f"TEE-{size}"))
    return ChannelProduct("TEE", {"title": "Tee"}, variants)


def group_prices(served: Any) -> dict[tuple[str, str], Any]:
    return {
        (t["sku"], t["customer_group"]): (t["price"], t["quantity"], t["website_id"])
        for t in served.double.tier_prices
    }


@needs_document
def test_group_prices_go_as_tier_prices_at_quantity_one(served: Any, shop: Any) -> None:
    shop.create_product(tee(), KEY)
    product = tee({"S": {"Wholesale": "15.00", "Retailer": "18.00"}, "M": {"Wholesale": "16"}})
    results = shop.upsert_variants("TEE", product.variants, KEY)
    assert all(r.ok for r in results)
    assert group_prices(served) == {
        ("TEE-S", "Wholesale"): (15.0, 1, 0),
        ("TEE-S", "Retailer"): (18.0, 1, 0),
        ("TEE-M", "Wholesale"): (16.0, 1, 0),
    }
    [sent] = served.double.requests("POST", TIER_PRICES)
    assert {p["price_type"] for p in sent.body["prices"]} == {"fixed"}

    # A change is saved over the same price (no second row), in one call.
    shop.upsert_variants("TEE", tee({"S": {"Wholesale": "14.50"}}).variants, KEY)
    assert group_prices(served)[("TEE-S", "Wholesale")] == (14.5, 1, 0)
    assert len(served.double.tier_prices) == 3
    assert len(served.double.requests("POST", TIER_PRICES)) == 2


@needs_document
def test_a_tier_the_variant_lost_is_removed_and_the_merchants_prices_stay(
    served: Any, shop: Any
) -> None:
    shop.create_product(tee(), KEY)
    shop.upsert_variants("TEE", tee({"S": {"Wholesale": "15.00"}}).variants, KEY)
    # The merchant's own: a quantity break for the same group, and another group.
    merchant = {"price_type": "fixed", "website_id": 0, "sku": "TEE-S"}
    served.double.tier_prices += [
        merchant | {"customer_group": "Wholesale", "quantity": 10, "price": 12.0},
        merchant | {"customer_group": "General", "quantity": 1, "price": 17.0},
    ]
    shop.upsert_variants("TEE", tee({"S": {"Wholesale": None}}).variants, KEY)
    assert group_prices(served) == {
        ("TEE-S", "Wholesale"): (12.0, 10, 0),
        ("TEE-S", "General"): (17.0, 1, 0),
    }
    assert len(served.double.requests("POST", "/V1/products/tier-prices-delete")) == 1
    # Nothing left to remove: read, nothing deleted.
    shop.upsert_variants("TEE", tee({"S": {"Wholesale": None}}).variants, KEY)
    assert len(served.double.requests("POST", "/V1/products/tier-prices-delete")) == 1


@needs_document
def test_variants_without_group_prices_send_no_tier_prices(served: Any, shop: Any) -> None:
    shop.create_product(tee(), KEY)
    shop.upsert_variants("TEE", tee().variants, KEY)
    assert served.double.requests("POST", TIER_PRICES) == []


@needs_document
def test_a_group_magento_lacks_fails_only_its_variant_with_magentos_message(
    served: Any, shop: Any
) -> None:
    shop.create_product(tee(), KEY)
    product = tee({"S": {"Gold": "15.00"}, "M": {"Wholesale": "16.00"}})
    s, m = shop.upsert_variants("TEE", product.variants, KEY)
    assert not s.ok
    assert "No such entity with Customer Group = Gold" in str(s.error)
    assert "TEE-S" in str(s.error)
    assert m.ok
    assert group_prices(served) == {("TEE-M", "Wholesale"): (16.0, 1, 0)}


@needs_document
def test_a_malformed_group_price_fails_its_variant_before_anything_is_sent(
    served: Any, shop: Any
) -> None:
    shop.create_product(tee(), KEY)
    product = tee({"S": {"Wholesale": "cheap"}, "M": {"Wholesale": "-1"}})
    s, m = shop.upsert_variants("TEE", product.variants, KEY)
    assert "customer group 'Wholesale' must be a number >= 0" in str(s.error)
    assert "customer group 'Wholesale' must be a number >= 0" in str(m.error)
    assert served.double.requests("POST", TIER_PRICES) == []


@needs_document
def test_products_and_variants_made_get_their_group_prices_at_once(served: Any, shop: Any) -> None:
    product = tee({"S": {"Wholesale": "15.00"}, "M": {"Retailer": "18.00"}})
    shop.create_product(product, KEY)
    assert group_prices(served) == {
        ("TEE-S", "Wholesale"): (15.0, 1, 0),
        ("TEE-M", "Retailer"): (18.0, 1, 0),
    }
    # A variant added later (not linked yet: made and linked) gets its own.
    large = ChannelVariant(
        "TEE-L",
        {"price": "21", "options": {"Size": "L"}, "group_prices": {"Wholesale": "17"}},
    )
    (result,) = shop.upsert_variants("TEE", [large], KEY)
    assert result.ok
    assert group_prices(served)[("TEE-L", "Wholesale")] == (17.0, 1, 0)
    # A simple product too.
    mug = ChannelVariant("MUG-1", {"price": "8", "group_prices": {"Wholesale": "6.5"}})
    shop.create_product(ChannelProduct("MUG", {"title": "Mug"}, [mug]), KEY)
    assert group_prices(served)[("MUG-1", "Wholesale")] == (6.5, 1, 0)


@needs_document
def test_a_group_price_refused_on_create_fails_the_create_and_its_retry_sends_it_again(
    served: Any, shop: Any
) -> None:
    mug = ChannelVariant("MUG-1", {"price": "8", "group_prices": {"Gold": "6.5"}})
    product = ChannelProduct("MUG", {"title": "Mug"}, [mug])
    with pytest.raises(PermanentError, match="Customer Group = Gold"):
        shop.create_product(product, KEY)
    assert "MUG-1" in served.double.products
    served.double.customer_groups.append("Gold")
    assert shop.create_product(product, KEY).id == "MUG-1"
    assert group_prices(served) == {("MUG-1", "Gold"): (6.5, 1, 0)}
