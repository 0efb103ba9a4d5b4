"""What a channel is sent of a variant: per-warehouse stock only to channels that map
warehouses to locations of their own (or ask for it), so every other channel's variants
keep their fingerprint and are not all sent again."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from stockyard.catalog.models import Variant
from stockyard.catalog.store import StoredVariant
from stockyard.errors import PermanentError
from stockyard.flows.rules import rules_of, variant_hash
from stockyard.tenancy.connections import Connection

STOCKED = StoredVariant(
    7, Variant(sku="MUG", price=Decimal("12.50"), stock={"north": 3, "south": 4, "east": 5})
)


def channel(connector: str = "shopify", **settings: Any) -> Connection:
    return Connection(1, 1, "channel", connector, "Shop", settings, "active")


def test_a_channel_without_locations_gets_the_sum_and_no_per_warehouse_stock() -> None:
    view = rules_of(channel()).variant(STOCKED)
    assert view.fields["quantity"] == 12
    assert "stock" not in view.fields


def test_a_channel_mapping_locations_gets_stock_per_warehouse_of_its_warehouses() -> None:
    mapped = channel(
        locations={"north": "gid://shopify/Location/1"},
        rules={"warehouses": ["north", "south"]},
    )
    view = rules_of(mapped).variant(STOCKED)
    assert view.fields["quantity"] == 7
    assert view.fields["stock"] == {"north": 3, "south": 4}
    # A move between warehouses changes what this channel holds, so it is sent again.
    moved = StoredVariant(
        7, Variant(sku="MUG", price=Decimal("12.50"), stock={"north": 4, "south": 3})
    )
    assert variant_hash(rules_of(mapped).variant(moved)) != variant_hash(view)


def test_a_magento_channel_mapping_sources_gets_stock_per_warehouse() -> None:
    mapped = channel("magento", sources={"north": "src-north", "south": "src-south"})
    assert rules_of(mapped).variant(STOCKED).fields["stock"] == {
        "north": 3,
        "south": 4,
        "east": 5,
    }


def test_an_oscar_channel_mapping_partners_gets_stock_per_warehouse() -> None:
    mapped = channel("oscar", partners={"north": "main", "south": "main"})
    assert rules_of(mapped).variant(STOCKED).fields["stock"] == {
        "north": 3,
        "south": 4,
        "east": 5,
    }
    # Without partners (all stock on "main"), the sum is enough: no new fingerprint.
    assert "stock" not in rules_of(channel("oscar")).variant(STOCKED).fields


def test_a_setting_named_like_another_connectors_map_changes_nothing() -> None:
    # `sources` means nothing to a Shopify channel: its variants keep their fingerprint.
    view = rules_of(channel(sources={"north": "x"})).variant(STOCKED)
    assert "stock" not in view.fields
    assert "stock" not in rules_of(channel(partners={"north": "x"})).variant(STOCKED).fields


def test_a_channel_can_ask_for_stock_per_warehouse_in_its_rules() -> None:
    view = rules_of(channel(rules={"stock_by_warehouse": True})).variant(STOCKED)
    assert view.fields["stock"] == {"north": 3, "south": 4, "east": 5}


def test_a_nonsense_rule_is_refused_naming_it() -> None:
    with pytest.raises(PermanentError, match="stock_by_warehouse"):
        rules_of(channel(rules={"stock_by_warehouse": "sometimes"}))
