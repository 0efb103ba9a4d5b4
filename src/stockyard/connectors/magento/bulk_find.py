"""Finding a bulk again (issue 19; docs/magento-notes.md, "Finding a bulk again" and
"Fixes after the second review"): Magento names every bulk itself and keeps no reference
of the client's, so an open bulk is found by what it writes. One of exactly a stage's
elements is resumed only when no newer open bulk of the same topic writes any of its
SKUs: that one would run after it, and its older data would win.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from stockyard.connectors.magento.client import MagentoClient, items, obj, rows

Obj = dict[str, Any]
OPEN = 4
# A SKU written as is inside serialized_data (JSON inside JSON escapes quotes, slashes,
# backslashes and non-ASCII): only those are searched for with `like`.
_PLAIN = re.compile(r"[A-Za-z0-9 ._:+#-]+")
CANDIDATES = 3  # open bulks checked before posting another
SKUS_PER_LIKE = 20  # `like` filters ORed in one search of newer open operations
NEWER_PAGE = 100
# Pages of newer open operations read before giving up on resuming (then the stage is
# posted again, which is always safe): a store's total_count alone cannot bound the loop.
MAX_PAGES = 20


def open_bulk(
    api: MagentoClient, part: list[Obj], whose: Callable[[Obj], str], check: Callable[[], None]
) -> str | None:
    """An open bulk (one operation still status 4) of exactly these elements. `check`
    raises once the call's deadline has passed (called before each further request)."""
    sku = whose(part[0])
    if not _PLAIN.fullmatch(sku):
        return None
    prefix = "searchCriteria[filterGroups]"
    found = api.get(
        "V1/bulk",
        {
            f"{prefix}[0][filters][0][field]": "serialized_data",
            f"{prefix}[0][filters][0][value]": f"%{sku}%",
            f"{prefix}[0][filters][0][conditionType]": "like",
            f"{prefix}[1][filters][0][field]": "status",
            f"{prefix}[1][filters][0][value]": str(OPEN),
            f"{prefix}[1][filters][0][conditionType]": "eq",
            "searchCriteria[sortOrders][0][field]": "id",
            "searchCriteria[sortOrders][0][direction]": "DESC",
            "searchCriteria[pageSize]": 20,
        },
    )
    first = _normal(part[0])
    candidates = {
        op["bulk_uuid"]: str(op.get("topic_name") or "")
        for op in items(found, "GET /V1/bulk")
        if _normal(element(op)) == first and op.get("bulk_uuid")
    }
    wanted = [_normal(e) for e in part]
    for bulk, topic in list(candidates.items())[:CANDIDATES]:
        check()
        ops = sorted(operations(api, bulk, "detailed-status"), key=lambda op: op.get("id", 0))
        if [_normal(element(op)) for op in ops] == wanted:
            # Resumed over a newer open bulk of the same SKUs, it would run first and
            # the newer (older data) after it: then post again, to run last.
            return str(bulk) if _newest(api, bulk, topic, part, check) else None
    return None


def _newest(
    api: MagentoClient, bulk: str, topic: str, part: list[Obj], check: Callable[[], None]
) -> bool:
    """Whether no open operation of the same topic newer than `bulk`'s writes any of
    the part's SKUs (the search sorts operations newest first)."""
    skus = list(dict.fromkeys(sku for e in part for sku in _skus(e)))
    if not topic or not all(_PLAIN.fullmatch(sku) for sku in skus):
        return False  # cannot be searched for: post again, which is always safe
    for start in range(0, len(skus), SKUS_PER_LIKE):
        if not _newest_of(api, bulk, topic, set(skus[start : start + SKUS_PER_LIKE]), check):
            return False
    return True


def _newest_of(
    api: MagentoClient, bulk: str, topic: str, skus: set[str], check: Callable[[], None]
) -> bool:
    params: dict[str, Any] = {}
    for n, sku in enumerate(sorted(skus)):
        prefix = f"searchCriteria[filterGroups][0][filters][{n}]"
        params |= {f"{prefix}[field]": "serialized_data", f"{prefix}[value]": f"%{sku}%"}
        params[f"{prefix}[conditionType]"] = "like"
    for group, (name, value) in enumerate((("status", str(OPEN)), ("topic_name", topic)), 1):
        prefix = f"searchCriteria[filterGroups][{group}][filters][0]"
        params |= {f"{prefix}[field]": name, f"{prefix}[value]": value}
        params[f"{prefix}[conditionType]"] = "eq"
    params |= {
        "searchCriteria[sortOrders][0][field]": "id",
        "searchCriteria[sortOrders][0][direction]": "DESC",
        "searchCriteria[pageSize]": NEWER_PAGE,
    }
    seen: set[str] = set()
    for page in range(1, MAX_PAGES + 1):
        check()
        answer = obj(
            api.get("V1/bulk", params | {"searchCriteria[currentPage]": page}),
            "GET /V1/bulk",
        )
        found = items(answer, "GET /V1/bulk")
        rows_of = {json.dumps(op, sort_keys=True, default=str) for op in found}
        if rows_of & seen:
            return False  # the store repeats its pages (past the last): not to be trusted
        seen |= rows_of
        for op in found:
            if op.get("bulk_uuid") == bulk:
                return True  # everything after it is older
            if skus & set(_skus(element(op))):  # `like` also matches longer SKUs
                return False
        total = answer.get("total_count")
        if not found or not isinstance(total, int) or page * NEWER_PAGE >= total:
            return True  # ours finished meanwhile and no open one writes these SKUs
    return False


def operations(api: MagentoClient, bulk: str, which: str) -> list[Obj]:
    what = f"GET /V1/bulk/{{bulkUuid}}/{which}"
    answer = obj(api.get(f"V1/bulk/{bulk}/{which}"), what)
    return rows(answer.get("operations_list"), what)


def _skus(element: Any) -> list[str]:
    """The SKUs one bulk element writes (none when it is not one of ours)."""
    if not isinstance(element, dict):
        return []
    try:
        if "product" in element:
            return [str(element["product"]["sku"])]
        for key in ("sourceItems", "prices"):
            if key in element:
                return [str(i["sku"]) for i in element[key]]
        return [str(element["childSku"])] if "childSku" in element else []
    except (KeyError, TypeError):
        return []


def element(op: Obj) -> Any:
    """The element an operation was given: Magento's envelope's meta_information (None
    when unreadable: then it matches no element of ours)."""
    try:
        envelope = json.loads(op.get("serialized_data") or "{}")
        return json.loads(envelope.get("meta_information") or "null")
    except (ValueError, TypeError, AttributeError):
        return None


def _normal(value: Any) -> Any:
    """JSON as compared across PHP's re-encoding: every number a float."""
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normal(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return float(value)
    return value
