"""Values read from a shop's orders the same way by every connector that takes orders in
(Magento, Shopify, WooCommerce): a time the shop wrote, and a unit price as Stockyard
keeps it. Shared so that an order from one shop and the same order from another read
alike (the same instant, the same price text) and a fix reaches all of them."""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from stockyard.errors import PermanentError


def instant(text: Any, connector: str) -> dt.datetime:
    """An ISO 8601 time (a trailing "Z" too; Python before 3.11 refused it); without an
    offset it is UTC (Magento's `2026-11-29 12:00:00`, WooCommerce's *_gmt fields). A time
    that is none is a PermanentError naming `connector`: the shop will send it again."""
    try:
        moment = dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        raise PermanentError(f"{connector}: unreadable time {str(text)[:40]!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def unit_price(price: Decimal) -> str:
    """A unit price to 4 decimals, written with 2 when the cents say it all."""
    exact = price.quantize(Decimal("0.0001"), ROUND_HALF_EVEN)
    cents = exact.quantize(Decimal("0.01"))
    return str(cents if cents == exact else exact)
