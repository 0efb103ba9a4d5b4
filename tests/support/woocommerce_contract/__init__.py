"""WooCommerce's REST `wc/v3` contract, for the WooCommerce connector's contract tests and the
test double that stands in for a store (issue 19).

WooCommerce publishes no machine-readable schema in a registry these machines reach (no npm
or PyPI package carries the REST v3 JSON Schema; a live store serves it per route on OPTIONS).
So the shapes are transcribed here, once, from WooCommerce's documented properties: one JSON
Schema (draft 2020-12) file per kind of request or response, each naming its source page in
`$comment`. Facts, not code: docs/woocommerce-notes.md lists the sources and what only a real
store can confirm.

Kinds come in two directions:

* "send" -- what the connector sends. Every documented writable property is listed and no
  other is allowed, so a misspelt or read-only field fails, and so does a price sent as a
  number.
* "read" -- what WooCommerce answers or delivers. Only what the connector reads is
  constrained; unknown fields pass (plugins and new WooCommerce versions add fields).

`check(kind, payload)` raises `ContractViolation` naming the JSON path of the first fault
(`$.update[3].regular_price`); `problems(kind, payload)` lists them all. Header kinds match
names case-insensitively, as HTTP does. Batch kinds also enforce WooCommerce's cap on
create + update + delete together, which JSON Schema cannot express.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any, Literal

import jsonschema_rs

HERE = Path(__file__).resolve().parent
BASE_URI = "https://stockyard.invalid/contracts/woocommerce/"

# WC_REST_Controller::check_batch_limit: create + update + delete, at most this many, else
# HTTP 413 with this code (the store's owner can change the number with the
# woocommerce_rest_batch_items_limit filter; 100 is WooCommerce's default).
BATCH_LIMIT = 100
BATCH_TOO_LARGE_STATUS = 413
BATCH_TOO_LARGE_CODE = "woocommerce_rest_request_entity_too_large"
# WC_REST_CRUD_Controller::get_collection_params: per_page maximum.
PER_PAGE_MAX = 100

Direction = Literal["send", "read"]

KINDS: dict[str, Direction] = {
    "product_write": "send",
    "variation_write": "send",
    "batch_products": "send",
    "batch_variations": "send",
    "order_update": "send",
    "order_note_write": "send",
    "shipment_tracking_write": "send",
    "product_list_query": "send",
    "variation_list_query": "send",
    "order_list_query": "send",
    "product": "read",
    "variation": "read",
    "batch_response": "read",
    "order": "read",
    "error": "read",
    "paging_headers": "read",
    "webhook_headers": "read",
}
HEADER_KINDS = frozenset({"paging_headers", "webhook_headers"})
BATCH_KINDS = frozenset({"batch_products", "batch_variations"})
_SHARED = ("common",)


class ContractViolation(ValueError):
    """A payload the WooCommerce contract does not allow. `path` is the JSON path of the first
    fault (`$` for the whole payload); `problems` holds every fault found, as text."""

    def __init__(self, kind: str, path: str, problems: list[str]) -> None:
        self.kind = kind
        self.path = path
        self.problems = problems
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(f"WooCommerce {kind}: {problems[0]}{more}")


def schema(kind: str) -> dict[str, Any]:
    """The JSON Schema of `kind`, as stored (the double reads enums and limits from it)."""
    return dict(_raw(_file(kind)))


def source(kind: str) -> str:
    """The `$comment` of `kind`'s schema: where its shape comes from."""
    return str(_raw(_file(kind))["$comment"])


def problems(kind: str, payload: Any) -> list[str]:
    """Every way `payload` breaks the contract of `kind`, each as "at <JSON path>: <what>";
    empty when it conforms."""
    instance = _canonical_headers(kind, payload) if kind in HEADER_KINDS else payload
    found = [fault for e in _validator(kind).iter_errors(instance) for fault in _faults(e)]
    if kind in BATCH_KINDS and isinstance(payload, Mapping):
        total = sum(
            len(v) for k in ("create", "update", "delete") if isinstance(v := payload.get(k), list)
        )
        if total > BATCH_LIMIT:
            found.insert(
                0,
                (
                    "$",
                    f"{total} items in create + update + delete; WooCommerce accepts at most"
                    f" {BATCH_LIMIT} (HTTP {BATCH_TOO_LARGE_STATUS} {BATCH_TOO_LARGE_CODE})",
                ),
            )
    return [f"at {path}: {message}" for path, message in found]


def check(kind: str, payload: Any) -> None:
    """Raise `ContractViolation` unless `payload` conforms to the contract of `kind`."""
    found = problems(kind, payload)
    if found:
        path = found[0].removeprefix("at ").split(": ", 1)[0]
        raise ContractViolation(kind, path, found)


def conforms(kind: str, payload: Any) -> bool:
    return not problems(kind, payload)


def _file(kind: str) -> str:
    if kind not in KINDS:
        raise KeyError(f"no WooCommerce contract kind {kind!r}; kinds: {', '.join(sorted(KINDS))}")
    return kind


@cache
def _raw(name: str) -> dict[str, Any]:
    with open(HERE / f"{name}.json", encoding="utf-8") as f:
        loaded: dict[str, Any] = json.load(f)
    return loaded


@cache
def _registry() -> jsonschema_rs.Registry:
    names = [*_SHARED, *KINDS]
    return jsonschema_rs.Registry([(f"{BASE_URI}{n}.json", _raw(n)) for n in names])


@cache
def _validator(kind: str) -> jsonschema_rs.Validator:
    return jsonschema_rs.validator_for(
        _raw(_file(kind)),
        validate_formats=True,
        registry=_registry(),
        offline=True,
    )


def _faults(error: jsonschema_rs.ValidationError) -> list[tuple[str, str]]:
    """(JSON path, message) of one validation error; a field that is not allowed is reported
    at its own path ($.regular_prise), not at the object holding it."""
    where = list(error.instance_path)
    match error.kind:
        case jsonschema_rs.ValidationErrorKind.AdditionalProperties(
            unexpected
        ) | jsonschema_rs.ValidationErrorKind.UnevaluatedProperties(unexpected):
            return [
                (_json_path([*where, name]), f"{name!r} is not a field WooCommerce documents here")
                for name in unexpected
            ]
    return [(_json_path(where), error.message)]


def _canonical_headers(kind: str, headers: Any) -> Any:
    """Headers with the names the schema spells (HTTP names are case-insensitive); names the
    schema does not know are kept as they came."""
    if not isinstance(headers, Mapping):
        return headers
    known = {name.lower(): name for name in _raw(kind)["properties"]}
    return {known.get(str(k).lower(), str(k)): v for k, v in headers.items()}


def _json_path(parts: list[str | int]) -> str:
    out = "$"
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.isidentifier():
            out += f".{part}"
        else:
            out += f"[{json.dumps(part)}]"
    return out
