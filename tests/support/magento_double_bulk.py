"""The Magento double's asynchronous bulk side (issue 19; docs/magento-notes.md, "Large
syncs: the asynchronous bulk API").

`POST /async/bulk/V1/<route>` (already checked element by element against the document by
the double's `check_url`) is accepted as Magento's web API does: 202 with `bulk_uuid`,
`request_items` (`id` = the element's index, `data_hash`, `status` "accepted") and
`errors` false. Each element becomes an open operation (status 4) whose `serialized_data`
is Magento's envelope (`entity_id`, `entity_link`, `meta_information` = the element as
JSON, `store_id`). Operations run only when the "consumer" runs: with `consumers` on, every
open operation runs before the double answers the next request (a store whose
`async.operations.all` consumer keeps up); with it off they stay open forever (cron and
consumers stopped: the well-known failure). `run_consumers()` runs them now.

An operation runs the synchronous operation of its element through the double's own
handlers: 2xx -> status 1 "Service execution success ...", 4xx -> 3 with Magento's message,
5xx -> 2 (retriable). Each such answer is checked against the document like any answer.

Status reads: `GET /V1/bulk/{uuid}/status`, `/detailed-status`, `/operation-status/{s}`
(a count) and the operation search `GET /V1/bulk` (searchCriteria on `bulk_uuid`, `status`,
`topic_name` with `eq`, `serialized_data` with `like`, sorted by `id`, paged). Answers are
checked against the document by the double's `_answer`.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from tests.support import magento_contract as contract

Obj = dict[str, Any]
OPEN, COMPLETE, RETRIABLY_FAILED, NOT_RETRIABLY_FAILED = 4, 1, 2, 3
# Magento's topic for a route: its service interface and method (Adobe's status example
# shows the product one), else one derived from the route.
TOPICS = {
    ("POST", "/V1/products"): "async.magento.catalog.api.productrepositoryinterface.save.POST",
    ("POST", "/V1/inventory/source-items"): (
        "async.magento.inventoryapi.api.sourceitemssaveinterface.execute.POST"
    ),
    ("POST", "/V1/products/base-prices"): (
        "async.magento.catalog.api.basepricestorageinterface.update.POST"
    ),
}
_CRITERION = re.compile(r"searchCriteria\[filterGroups\]\[(\d+)\]\[filters\]\[(\d+)\]\[(\w+)\]")


@dataclass
class BulkMixin:
    bulks: dict[str, Obj] = field(default_factory=dict)  # uuid -> bulk summary + operations
    consumers: bool = True  # the async.operations.all consumer runs
    bulk_requests: int = 0  # POSTs to /async/bulk/... accepted
    consuming: bool = field(default=False, repr=False)  # an operation is running now

    def run_consumers(self) -> int:
        """Run every open operation now, in the order accepted; how many ran."""
        ran = 0
        self.consuming = True
        try:
            for op in self.operations(OPEN):
                self._run_operation(op)
                ran += 1
        finally:
            self.consuming = False
        return ran

    def operations(self, status: int | None = None) -> list[Obj]:
        return [
            op
            for bulk in self.bulks.values()
            for op in bulk["operations"]
            if status is None or op["status"] == status
        ]

    # ------------------------------------------------------------------- the hook

    def _orders_execute(
        self,
        method: str,
        template: str,
        params: dict[str, str],
        query: list[tuple[str, str]],
        body: Any,
    ) -> tuple[int, Any] | None:
        # Called first by the double's _execute, under its lock, with the request being
        # served last in `received`; an operation the consumer runs goes straight on.
        if self.consuming:
            return self._next(method, template, params, query, body)
        path = self.received[-1].path  # type: ignore[attr-defined]
        route = contract.split_route(path)
        if route.bulk and route.path.startswith("/V1/inventory/") and not self.msi:  # type: ignore[attr-defined]
            # Without the MSI modules the route does not exist, asynchronous or not.
            return 404, {"message": "Request does not match any route."}
        if route.bulk:
            return self._accept(method, route.path, body)
        if self.consumers:
            self.run_consumers()
        found = self._bulk_read(method, template, params, query)
        if found is not None:
            return found
        return self._next(method, template, params, query, body)

    def _next(
        self,
        method: str,
        template: str,
        params: dict[str, str],
        query: list[tuple[str, str]],
        body: Any,
    ) -> tuple[int, Any] | None:
        """The next mixin's handlers (media, tiers, orders), then the double's own."""
        answer: tuple[int, Any] | None = super()._orders_execute(  # type: ignore[misc]
            method, template, params, query, body
        )
        return answer

    # ------------------------------------------------------------------ accepting

    def _accept(self, method: str, path: str, body: list[Obj]) -> tuple[int, Any]:
        bulk_uuid = str(uuid.uuid4())
        operations, items = [], []
        for n, element in enumerate(body):
            sync_path, rest = _route_for(path, element)
            template, params = contract.find_operation(method, sync_path)
            topic = TOPICS.get((method, template)) or _topic(method, template)
            meta = json.dumps(element, separators=(",", ":"))
            operations.append(
                {
                    "id": n,
                    "bulk_uuid": bulk_uuid,
                    "topic_name": topic,
                    "serialized_data": json.dumps(
                        {
                            "entity_id": None,
                            "entity_link": "",
                            "meta_information": meta,
                            "store_id": 0,
                        }
                    ),
                    "result_serialized_data": "",
                    "status": OPEN,
                    "result_message": "",
                    "error_code": 0,
                    "_call": (method, template, params, rest),
                }
            )
            digest = hashlib.sha256(meta.encode()).hexdigest()
            items.append({"id": n, "data_hash": digest, "status": "accepted"})
        self.bulks[bulk_uuid] = {
            "bulk_id": bulk_uuid,
            "description": f"Topic {operations[0]['topic_name']}",
            "start_time": "2026-11-29 12:00:00",
            "user_id": 1,
            "user_type": 1,  # an integration
            "operations": operations,
        }
        self.bulk_requests += 1
        return 202, {"bulk_uuid": bulk_uuid, "request_items": items, "errors": False}

    def _run_operation(self, op: Obj) -> None:
        method, template, params, body = op["_call"]
        status, answer = self._execute(method, template, params, [], body)  # type: ignore[attr-defined]
        if 200 <= status < 300:
            try:
                contract.check_response(method, template, status, answer)
            except contract.ContractGap:
                pass
            except contract.ContractViolation as e:
                self.answer_faults.append(str(e))  # type: ignore[attr-defined]
            op |= {
                "status": COMPLETE,
                "result_message": f"Service execution success {op['topic_name']}",
                "result_serialized_data": json.dumps(answer),
            }
            return
        from stockyard.connectors.magento.client import message

        op |= {
            "status": RETRIABLY_FAILED if status >= 500 else NOT_RETRIABLY_FAILED,
            "result_message": message(answer),
            "error_code": status,
        }

    # -------------------------------------------------------------------- reading

    def _bulk_read(
        self, method: str, template: str, params: dict[str, str], query: list[tuple[str, str]]
    ) -> tuple[int, Any] | None:
        if method != "GET" or not template.startswith("/V1/bulk"):
            return None
        if template == "/V1/bulk":
            return self._search_operations(query)
        bulk = self.bulks.get(params.get("bulkUuid", ""))
        if bulk is None:
            return 404, {
                "message": "Bulk uuid %bulkUuid not exist",
                "parameters": {"bulkUuid": params.get("bulkUuid", "")},
            }
        ops = bulk["operations"]
        summary = {k: v for k, v in bulk.items() if k != "operations"}
        summary["operation_count"] = len(ops)
        if template.endswith("/detailed-status"):
            return 200, summary | {"operations_list": [_full(op) for op in ops]}
        if template.endswith("/status"):
            return 200, summary | {"operations_list": [_short(op) for op in ops]}
        # operation-status/{status}: how many of the bulk's operations have it
        wanted = int(params["status"]) if params["status"].isdigit() else -1
        return 200, sum(1 for op in ops if op["status"] == wanted)

    def _search_operations(self, query: list[tuple[str, str]]) -> tuple[int, Any]:
        groups: dict[str, dict[str, dict[str, str]]] = {}
        size, page, descending = 20, 1, False
        for name, value in query:
            m = _CRITERION.fullmatch(name)
            if m:
                groups.setdefault(m[1], {}).setdefault(m[2], {})[m[3]] = value
            elif name == "searchCriteria[pageSize]":
                size = int(value)
            elif name == "searchCriteria[currentPage]":
                page = int(value)
            elif name.endswith("[direction]"):
                descending = value.upper() == "DESC"
        found = self.operations()
        for group in groups.values():
            if any(f.get("conditionType", "eq") not in ("eq", "like") for f in group.values()):
                return 400, {"message": "the Magento double's bulk search takes eq and like"}
            found = [op for op in found if any(_matches(op, f) for f in group.values())]
        if descending:
            found = found[::-1]
        chunk = found[(page - 1) * size : page * size]
        return 200, {
            "items": [_full(op) for op in chunk],
            "search_criteria": {"filter_groups": [], "page_size": size, "current_page": page},
            "total_count": len(found),
        }


def _route_for(path: str, element: Obj) -> tuple[str, Obj]:
    """The synchronous path of one element (`by<Name>` segments filled from it) and the
    element without those route parameters (the synchronous body)."""
    rest = dict(element)
    segments = []
    for seg in path.split("/"):
        m = re.fullmatch(r"by([A-Z]\w*)", seg)
        if m:
            name = m[1][0].lower() + m[1][1:]
            seg = str(rest.pop(name))
        segments.append(seg)
    return "/".join(segments), rest


def _topic(method: str, template: str) -> str:
    return "async." + template.strip("/").replace("/", ".").lower() + f".{method}"


def _short(op: Obj) -> Obj:
    return {k: op[k] for k in ("id", "status", "result_message", "error_code")}


def _full(op: Obj) -> Obj:
    return {k: v for k, v in op.items() if not k.startswith("_")}


def _matches(op: Obj, f: dict[str, str]) -> bool:
    value = str(op.get(f["field"], ""))
    condition = f.get("conditionType", "eq")
    if condition == "eq":
        return value == f["value"]
    # like: % any run of characters, _ any one (MySQL's LIKE)
    pattern = re.escape(f["value"]).replace("%", ".*").replace("_", ".")
    return re.fullmatch(pattern, value, re.DOTALL) is not None
