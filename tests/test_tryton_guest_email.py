"""Web guests in the real Tryton found again by e-mail whatever its case (issue 21, second
review): a store passes on what the shopper typed, so Ann@Example.com and ann@example.com
are one guest, one party; and the e-mail is compared as a whole, never as a pattern."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from systems.launch import (
    TRYTON_ADMIN,
    TRYTON_DB,
    Running,
    TrytonItem,
    seed_tryton_items,
    tryton_client,
)

from stockyard.connectors.tryton import TrytonConnector
from stockyard.connectors.tryton.client import TrytonClient

BOLT = TrytonItem("TGB", "Bolt", Decimal("1.00"), (("TGB", 100),))


@pytest.fixture(scope="module")
def rpc(tryton: Running) -> TrytonClient:
    client = tryton_client(tryton.url)
    seed_tryton_items(client, (BOLT,))
    return client


@pytest.fixture
def connector(tryton: Running) -> TrytonConnector:
    settings = {"url": tryton.url, "database": TRYTON_DB, "username": TRYTON_ADMIN[0]}
    return TrytonConnector({**settings, "password": TRYTON_ADMIN[1]})


ADDRESS = {"name": "Ann Guest", "line1": "1 Main St", "city": "Springfield", "postcode": "1"}


def _party_of(rpc: TrytonClient, connector: TrytonConnector, number: int, email: str) -> int:
    order: dict[str, Any] = {
        "id": number,
        "remote_id": f"shop-{number}",
        "number": f"N-{number}",
        "currency": "USD",
        "customer": {"code": email, "email": email, "name": "Ann Guest"},
        "shipping_address": ADDRESS,
        "lines": [{"sku": "TGB", "quantity": 1, "price": "1.00"}],
        "total": "1.00",
    }
    sale_number = connector.create_order(order, f"key-{number}")
    (sale,) = rpc.model(
        "sale.sale", "search_read", [("number", "=", sale_number)], 0, 1, None, ["party"]
    )
    return int(sale["party"])


def test_a_guests_email_in_another_case_is_the_same_party(
    rpc: TrytonClient, connector: TrytonConnector
) -> None:
    first = _party_of(rpc, connector, 9501, "Ann.Case@Guests.example")
    assert _party_of(rpc, connector, 9502, "ann.case@guests.example") == first
    assert _party_of(rpc, connector, 9503, "ANN.CASE@GUESTS.EXAMPLE") == first


def test_an_email_is_never_matched_as_a_pattern(
    rpc: TrytonClient, connector: TrytonConnector
) -> None:
    """`_` and `%` are wildcards of SQL's LIKE: a shopper typing them must not land on
    another guest's party."""
    owner = _party_of(rpc, connector, 9511, "bo_b@guests.example")
    assert _party_of(rpc, connector, 9512, "boxb@guests.example") != owner
    assert _party_of(rpc, connector, 9513, "%@guests.example") != owner
    assert _party_of(rpc, connector, 9514, "BO_B@guests.example") == owner
