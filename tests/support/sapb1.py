"""What the sapb1 connector's tests share: the Service Layer double served for a test
(which fails if the double refused any request body), a connector on it, a mug shop, a
web order."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from stockyard.connectors.sapb1 import SapB1Connector
from tests.support.sapb1_double import SapB1Double, Served, serve, settings


@pytest.fixture
def served() -> Iterator[Served]:
    with serve(SapB1Double()) as s:
        yield s
    assert s.double.refused == []


def connect(s: Served, **extra: Any) -> SapB1Connector:
    return SapB1Connector(settings(s, **extra))


def mug_shop(s: Served, **extra: Any) -> SapB1Connector:
    """The double selling a mug (12.50 on price list 1) to the web shop's customer WEB, and
    a connector booking web orders to WEB (`extra`: more settings)."""
    s.double.add_item("MUG", "Mug", {1: 12.5})
    s.double.add_partner("WEB", "Web customer")
    return connect(s, web_customer="WEB", **extra)


def order(number: str = "1001", **extra: Any) -> dict[str, Any]:
    return {
        "id": 7,
        "remote_id": f"V{number}",
        "number": number,
        "currency": "EUR",
        "lines": [{"sku": "MUG", "quantity": 2, "price": "12.50"}],
        "total": "25.00",
        "shipping_address": {"name": "Ann", "line1": "1 Main St", "city": "Oslo"},
        **extra,
    }
