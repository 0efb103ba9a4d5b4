"""What the sapb1 connector's tests share: the Service Layer double served for a test
(which fails if the double refused any request body), a connector on it, a web order."""

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
