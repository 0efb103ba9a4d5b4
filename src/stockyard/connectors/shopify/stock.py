"""Stock out to Shopify (issue 18): the "available" quantity of inventory items per location.

Set with a compare-and-set (`changeFromQuantity` = the quantity just read) under an
idempotency key, so a sale landing in between is not overwritten and a repeated item
replays instead of setting twice; a stale answer is read again and set once more. An item
not stocked at a location yet is activated there with its quantity (inventoryActivate).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from stockyard.connectors.shopify import documents as d
from stockyard.connectors.shopify.answers import describe, user_errors
from stockyard.connectors.shopify.client import ShopifyClient
from stockyard.errors import HandlerError, PermanentError, TransientError

INVENTORY_ITEMS_PER_READ = 25  # x 10 levels: well under 1,000 points; more levels: one by one
INPUT_LIST_CAP = 250  # Shopify's cap on input lists (docs/shopify-notes.md)
STOCK_REASON = "correction"  # one of the reasons of Shopify's inventory-states guide

Level = tuple[str, str]  # (inventory item id, location id)


def idempotency_key(*parts: Any) -> str:
    seen = json.dumps(parts, sort_keys=True, default=str)
    return "stockyard-" + hashlib.sha256(seen.encode()).hexdigest()[:40]


def set_stock(api: ShopifyClient, targets: dict[Level, int], key: str) -> dict[str, HandlerError]:
    """Set each (item, location) to its quantity; an error per inventory item that failed."""
    errors: dict[str, HandlerError] = {}
    levels = list(targets)
    for start in range(0, len(levels), INPUT_LIST_CAP):
        chunk = {lv: targets[lv] for lv in levels[start : start + INPUT_LIST_CAP]}
        errors |= _set_chunk(api, chunk, key)
    return errors


def _set_chunk(api: ShopifyClient, targets: dict[Level, int], key: str) -> dict[str, HandlerError]:
    errors: dict[str, HandlerError] = {}
    targets = dict(targets)
    for attempt in (1, 2):
        read = available(api, list(targets))
        for level in [lv for lv in targets if lv not in read]:
            error = activate(api, level, targets.pop(level), key)
            if error is not None:
                errors[level[0]] = error
        pending = {lv: q for lv, q in targets.items() if read.get(lv) != q}
        if not pending:
            return errors
        quantities = [
            {
                "inventoryItemId": item,
                "locationId": location,
                "quantity": q,
                "changeFromQuantity": read[(item, location)],
            }
            for (item, location), q in pending.items()
        ]
        # The item's key with the quantities read: a repeat of this very call replays, a
        # retry after a stale answer (other quantities read) is a new request.
        variables = {
            "key": idempotency_key(key, sorted((*lv, read[lv], q) for lv, q in pending.items())),
            "input": {"name": "available", "reason": STOCK_REASON, "quantities": quantities},
        }
        payload = api.query(d.INVENTORY_SET, variables)["inventorySetQuantities"]
        problems = user_errors(payload, "set stock")
        if not problems:
            return errors
        codes = {e.get("code") for e in problems}
        if "CHANGE_FROM_QUANTITY_STALE" in codes and attempt == 1:
            continue  # read again and set once more
        failure: HandlerError
        if codes & {"CHANGE_FROM_QUANTITY_STALE", "IDEMPOTENCY_CONCURRENT_REQUEST"}:
            failure = TransientError(f"shopify: set stock: {describe(problems)}", retry_after=5)
        else:
            failure = PermanentError(f"shopify: set stock: {describe(problems)}")
        # inventorySetQuantities is all-or-nothing: every item of the call failed.
        return errors | {item: failure for item, _ in pending}
    return errors  # pragma: no cover - the loop returns


def activate(api: ShopifyClient, level: Level, quantity: int, key: str) -> HandlerError | None:
    """Stock the item at the location, with its quantity (the error, if any)."""
    item, location = level
    variables = {
        "item": item,
        "location": location,
        "available": quantity,
        "key": idempotency_key(key, "activate", item, location, quantity),
    }
    payload = api.query(d.INVENTORY_ACTIVATE, variables)["inventoryActivate"]
    problems = user_errors(payload, "activate stock")
    if problems:
        return PermanentError(
            f"shopify: stock item {item} at location {location}: {describe(problems)}"
        )
    return None


def available(api: ShopifyClient, levels: list[Level]) -> dict[Level, int]:
    """The "available" quantity of these (item, location) pairs; a pair missing from the
    answer is not stocked there."""
    found: dict[Level, int] = {}
    more: set[str] = set()  # items stocked at more locations than one page shows
    items = sorted({item for item, _ in levels})
    for start in range(0, len(items), INVENTORY_ITEMS_PER_READ):
        chunk = items[start : start + INVENTORY_ITEMS_PER_READ]
        for node in api.query(d.INVENTORY_LEVELS, {"ids": chunk})["nodes"]:
            if not node:
                continue
            page = node["inventoryLevels"]
            for level in page["nodes"]:
                found[(node["id"], level["location"]["id"])] = _available(level)
            if page["pageInfo"]["hasNextPage"]:
                more.add(node["id"])
    for item, location in levels:
        if item in more and (item, location) not in found:
            variables = {"item": item, "location": location}
            node = api.query(d.INVENTORY_LEVEL_AT, variables)["inventoryItem"]
            if node and node["inventoryLevel"]:
                found[(item, location)] = _available(node["inventoryLevel"])
    return found


def _available(level: dict[str, Any]) -> int:
    quantities = {q["name"]: q["quantity"] for q in level["quantities"]}
    return int(quantities.get("available") or 0)
