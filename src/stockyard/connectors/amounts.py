"""A non-negative number a connector sends a platform (a price, a weight), read one way by
Magento, Shopify and WooCommerce: as a Decimal from its text, so that "19.90" is not
rounded through a float on the way in, and refused when it is none, infinite, NaN or
negative, which no platform stores as meant. A refusal is a PermanentError: the catalog
must change before sending again helps."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from stockyard.errors import PermanentError


def non_negative(raw: Any, what: str, unreadable: str = "must be a number") -> Decimal:
    """`raw` as a finite Decimal >= 0; else a PermanentError "`what` `unreadable`" when it
    is no number, "`what` must be a number >= 0" when it is out of range."""
    try:
        value = Decimal(str(raw))
    except InvalidOperation:
        raise PermanentError(f"{what} {unreadable}") from None
    if not value.is_finite() or value < 0:
        raise PermanentError(f"{what} must be a number >= 0")
    return value
