"""Customer-group prices (issue 19): a Stockyard price tier sent as a Magento customer
group's price at quantity 1, for channels whose rules map tiers to groups
(`rules.group_prices`, flows/rules.py). Such a variant carries `group_prices`, group ->
its price in the tier (a decimal string) or None when it has no price in that tier.

A price goes with `POST /V1/products/tier-prices` (add or update; Magento matches an
existing price by SKU, group, quantity and website), fixed, for all websites (website 0,
the only one a store with global prices takes). A group whose price the variant no
longer has is removed: Magento's delete matches on the value too, so the SKUs' tier prices
are read first (`POST /V1/products/tier-prices-information`). Tier prices of other groups
or quantities, the merchant's, are left alone (docs/magento-notes.md, "Images and tier
prices").
"""

from __future__ import annotations

import re
from typing import Any

from stockyard.connectors.amounts import non_negative
from stockyard.connectors.base import ChannelVariant, Result
from stockyard.connectors.magento.client import (
    MESSAGE_LIMIT,
    MagentoClient,
    clip,
    fill,
    message,
    rows,
)
from stockyard.errors import PermanentError

ALL_WEBSITES = 0
FIELD = "group_prices"

Obj = dict[str, Any]


def send_group_prices(
    api: MagentoClient, variants: list[ChannelVariant], results: dict[str, Result]
) -> None:
    """Sets the group prices of `variants` still ok in `results`; a variant Magento refuses
    (or whose prices are malformed) gets its error there, the others are unaffected."""
    wanted: list[Obj] = []
    gone: dict[str, set[str]] = {}  # sku -> groups (lower case) to remove
    for v in variants:
        groups = v.fields.get(FIELD)
        if not groups or not results[v.sku].ok:
            continue
        try:
            for group, price in _groups(v, groups).items():
                if price is None:
                    gone.setdefault(v.sku, set()).add(group.lower())
                else:
                    wanted.append(_row(v.sku, group, price))
        except PermanentError as exc:
            results[v.sku] = Result(v.sku, error=exc)
    if wanted:
        answer = api.call("POST", "V1/products/tier-prices", {"prices": wanted})
        _fail(results, rows(answer, "POST /V1/products/tier-prices"), [p["sku"] for p in wanted])
    if gone:
        _remove(api, gone, results)


def _groups(v: ChannelVariant, groups: Any) -> dict[str, float | None]:
    if not isinstance(groups, dict):
        raise PermanentError(f"magento: variant {v.sku}: {FIELD} must map groups to prices")
    return {str(group): _price(v, group, price) for group, price in groups.items()}


def _price(v: ChannelVariant, group: str, raw: Any) -> float | None:
    if raw is None:
        return None
    what = f"magento: variant {v.sku}: the price for customer group {group!r}"
    return float(non_negative(raw, what, "must be a number >= 0"))


def _row(sku: str, group: str, price: float) -> Obj:
    return {
        "sku": sku,
        "price": price,
        "price_type": "fixed",
        "website_id": ALL_WEBSITES,
        "customer_group": group,
        "quantity": 1,
    }


def _remove(api: MagentoClient, gone: dict[str, set[str]], results: dict[str, Result]) -> None:
    skus = [s for s in gone if results[s].ok]
    if not skus:
        return
    answer = api.call("POST", "V1/products/tier-prices-information", {"skus": skus})
    current = rows(answer, "POST /V1/products/tier-prices-information")
    stale = [
        _row(p["sku"], p["customer_group"], p["price"])
        for p in current
        if p.get("sku") in gone
        and str(p.get("customer_group", "")).lower() in gone[p["sku"]]
        and p.get("quantity") == 1
        and p.get("website_id") == ALL_WEBSITES
        and p.get("price_type") == "fixed"
    ]
    if stale:
        answer = api.call("POST", "V1/products/tier-prices-delete", {"prices": stale})
        what = "POST /V1/products/tier-prices-delete"
        _fail(results, rows(answer, what), [p["sku"] for p in stale])


def _fail(results: dict[str, Result], failures: list[Obj] | None, sent: list[str]) -> None:
    """Magento's answer lists the prices it refused (none: all done); each names its SKU
    among its parameters (one that names none fails every SKU sent)."""
    for failure in failures or []:
        params = failure.get("parameters")
        row = params[-len(_ROW)] if isinstance(params, list) and len(params) >= len(_ROW) else None
        for sku in [row] if row in sent else list(dict.fromkeys(sent)):
            error = PermanentError(f"magento: group price of {sku}: {_text(failure)}")
            results[sku] = Result(sku, error=error)


# The validator's row, always the last parameters of a tier price failure (Magento's
# TierPriceValidator), after the value it refuses, if any (`%price`, `%priceType`).
_ROW = ("SKU", "websiteId", "customerGroup", "qty")


def _text(failure: Obj) -> str:
    """The failure's message with its placeholders filled. Its parameters come as a list in
    the validator's order, not in the message's (`%customerGroup` first in its text, third
    in the list), so they are named by position."""
    params = failure.get("parameters")
    text = failure.get("message")
    if not isinstance(text, str) or not isinstance(params, list) or len(params) < len(_ROW):
        return message(failure)
    text = clip(text, MESSAGE_LIMIT)
    named = dict(zip(_ROW, params[-len(_ROW) :], strict=True))
    extra = [m for m in re.findall(r"%(\w+)", text) if m not in named]
    if extra and len(params) > len(_ROW):
        named[extra[0]] = params[0]
    return fill(text, named)
