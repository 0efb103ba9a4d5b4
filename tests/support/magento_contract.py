"""Adobe's OpenAPI document of the Magento 2 admin REST API, for checking the requests the
Magento connector sends (contract tests) and the answers of its test double (issue 19).

The document is Adobe's generated "Commerce Admin REST endpoints - All inclusive" (OpenAPI
3.0.0, Adobe Commerce 2.4.7 with B2B), as shipped by the npm package
@graphcommerce/magento-graphql-rest (scripts/m2rest-admin.json);
scripts/install-magento-openapi.sh (`make magento-openapi`) unpacks a pinned,
integrity-checked version into a cache outside the repository. Nothing here downloads
anything: when the file is missing, `ContractMissing` says how to get it.

Checked with openapi-core, with four things the raw document does not say but Magento does
(docs/magento-notes.md, "Sharp edges"):

- Closed objects. No schema of the document sets `additionalProperties`, so as written it
  lets any misspelled field through; Magento's web API input processor refuses a field its
  data interface has no setter for. `load` closes every object schema that lists
  properties, so a misspelled field is refused here too.
- searchCriteria in the query string. The document declares only index 0 of each list
  (`searchCriteria[filterGroups][0][filters][0][field]`); Magento takes any index. A
  parameter with other indices is checked as its index-0 form, and a query parameter the
  document does not declare at all (a misspelling, or searchCriteria sent as JSON) is
  refused: Magento would silently ignore it.
- Required fields of one schema, the legacy stock item, are not required (`RELAXED`).
- Routes outside the document: the store code prefix `/rest/<store>` and the asynchronous
  `/async/V1/...` and `/async/bulk/V1/...` routes, whose bodies are the synchronous
  operation's (bulk: a list of them, with route parameters named `by<Name>` in the path
  and given in each element).
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse
from openapi_core.validation.request.exceptions import ParameterValidationError

# The @graphcommerce/magento-graphql-rest release the document comes from
# (scripts/install-magento-openapi.sh); 9.0.4 and 10.0.3 ship the same file.
PACKAGE_VERSION = "10.0.3"
MAGENTO_VERSION = "2.4.7"
DIR_ENV = "STOCKYARD_MAGENTO_OPENAPI_DIR"
INSTALL = "bash scripts/install-magento-openapi.sh"

# What the document's server URL is replaced by: paths are matched after it.
_HOST = "http://magento.test"
_BASE = "/rest/default"
# Magento store codes: a letter, then lower-case letters, digits and underscores; `all`
# addresses every store view (admin scope).
_STORE_PREFIX = re.compile(r"^/rest/([a-z][a-z0-9_]*)(?=/)")
_INDEX = re.compile(r"\[(\d+)\]")
_BY_PARAM = re.compile(r"^by([A-Z]\w*)$")

# Schemas whose `required` list is dropped. The generator marks required every field whose
# getter never returns null, which for these says what Magento answers, not what a request
# must carry: Adobe's own tutorial "Create the simple products" (developer.adobe.com/
# commerce/webapi/rest/tutorials/configurable-product/create-simple-products/) sends a
# stock_item of qty and is_in_stock alone, where the document requires 23 fields, and
# sending all of them would overwrite every "use config" default of the store.
RELAXED = ("catalog-inventory-data-stock-item-interface",)


class ContractMissing(RuntimeError):
    """The document is not installed (scripts/install-magento-openapi.sh)."""


class ContractViolation(AssertionError):
    """A request or response the document does not allow; the message says where and why."""


class ContractGap(ContractViolation):
    """The document does not describe this (e.g. a success answer of an operation whose
    only documented responses are errors): nothing can be checked."""


@dataclass(frozen=True)
class Contract:
    api: OpenAPI
    document: dict[str, Any]
    load_seconds: float

    def operation(self, method: str, path_template: str) -> dict[str, Any] | None:
        item = self.document["paths"].get(path_template)
        op = item.get(method.lower()) if item else None
        return op if isinstance(op, dict) else None


def document_dir() -> Path:
    """The unpacked package: $STOCKYARD_MAGENTO_OPENAPI_DIR, else the cache folder."""
    given = os.environ.get(DIR_ENV)
    if given:
        return Path(given)
    cache_home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache_home / "stockyard" / f"magento-graphql-rest-{PACKAGE_VERSION}"


def document_path() -> Path:
    return document_dir() / "scripts" / "m2rest-admin.json"


def installed() -> bool:
    return document_path().is_file()


def skip_reason() -> str:
    return f"Magento admin OpenAPI document not installed at {document_path()} ({INSTALL})"


def load() -> Contract:
    """The document, closed and checked by openapi-core's spec validator, once per
    process (about 1 s here: 0.3 s to parse, 0.7 s to validate the document)."""
    return _load()


@cache
def _load() -> Contract:
    path = document_path()
    if not path.is_file():
        raise ContractMissing(f"{skip_reason()}")
    started = time.perf_counter()
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    document["servers"] = [{"url": _HOST + _BASE}]
    for schema in document["components"]["schemas"].values():
        _close(schema)
    for name in RELAXED:
        document["components"]["schemas"][name].pop("required", None)
    for body in document["components"].get("requestBodies", {}).values():
        for media in body.get("content", {}).values():
            _close(media.get("schema", {}))
    for item in document["paths"].values():
        for op in item.values():
            if isinstance(op, dict):
                for media in op.get("requestBody", {}).get("content", {}).values():
                    _close(media.get("schema", {}))
    api = OpenAPI.from_dict(document)  # validates the document itself
    return Contract(api, document, time.perf_counter() - started)


def _close(schema: Any) -> None:
    """additionalProperties: false on every object schema with properties, recursively
    through inline properties and items ($ref'd schemas are closed where defined)."""
    if not isinstance(schema, dict) or "$ref" in schema:
        return
    if "properties" in schema and "additionalProperties" not in schema:
        schema["additionalProperties"] = False
    for sub in schema.get("properties", {}).values():
        _close(sub)
    _close(schema.get("items"))


# --- Routes -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """A request path taken apart: the store code, whether asynchronous (and bulk), and
    the synchronous `/V1/...` path the document describes."""

    store: str
    asynchronous: bool
    bulk: bool
    path: str


def split_route(path: str) -> Route:
    """`/rest/<store>/[async/[bulk/]]V1/...` or the same without `/rest/<store>` (the
    default store view), into its parts. Anything else is refused."""
    store = "default"
    rest = path
    m = _STORE_PREFIX.match(path)
    if m:
        store, rest = m.group(1), path[m.end() :]
    elif path.startswith("/rest/"):
        raise ContractViolation(f"{path}: the store code must match [a-z][a-z0-9_]*")
    asynchronous = bulk = False
    if rest.startswith("/async/bulk/"):
        asynchronous = bulk = True
        rest = rest.removeprefix("/async/bulk")
    elif rest.startswith("/async/"):
        asynchronous = True
        rest = rest.removeprefix("/async")
    if not rest.startswith("/V1/"):
        raise ContractViolation(f"{path}: not a Magento REST route (/rest/<store>/V1/...)")
    return Route(store, asynchronous, bulk, rest)


def find_operation(method: str, path: str) -> tuple[str, dict[str, str]]:
    """The document's path template matching `path` (a /V1/... path) for `method`, and the
    path parameters. Literal segments win over parameters, as in Magento's router."""
    segments = path.strip("/").split("/")
    best: tuple[int, str, dict[str, str]] | None = None
    for template, parts in _templates(method.lower(), len(segments)):
        params: dict[str, str] = {}
        literal = 0
        for part, seg in zip(parts, segments, strict=True):
            if part.startswith("{") and part.endswith("}"):
                params[part[1:-1]] = seg
            elif part == seg:
                literal += 1
            else:
                break
        else:
            if best is None or literal > best[0]:
                best = (literal, template, params)
    if best is None:
        raise ContractViolation(f"{method.upper()} {path}: no such operation in the document")
    return best[1], best[2]


@cache
def _templates(method: str, length: int) -> list[tuple[str, list[str]]]:
    """The document's path templates with an operation for `method` and `length` segments,
    split, in the document's order: find_operation runs for every request and every bulk
    element, and scanning all of the document's paths each time was a good part of a
    1,000-product bulk test."""
    found = []
    for template, item in load().document["paths"].items():
        parts = template.strip("/").split("/")
        if method in item and len(parts) == length:
            found.append((template, parts))
    return found


# --- Requests ---------------------------------------------------------------------------

Query = Mapping[str, Any] | Iterable[tuple[str, Any]]


def check_request(method: str, path: str, query: Query | None = None, body: Any = None) -> str:
    """Raise ContractViolation unless the request is one the document allows. `path` is
    the request path (with or without /rest/<store>; async and bulk routes too), `query`
    the query parameters as sent (pairs or a mapping; values as strings or numbers),
    `body` the JSON body (None: no body). Returns the document's path template."""
    route = split_route(path)
    method = method.upper()
    if route.bulk:
        return _check_bulk(method, route.path, query, body)
    if route.asynchronous and method == "GET":
        raise ContractViolation(f"{method} {path}: asynchronous routes take no GET")
    template, params = find_operation(method, route.path)
    _check_one(method, route.path, template, params, _pairs(query), body)
    return template


def check_url(method: str, url: str, body: Any = None) -> str:
    """check_request for a URL as sent on the wire (`https://shop/rest/en/V1/orders?
    searchCriteria%5BpageSize%5D=100`): the query string is decoded as Magento's PHP does
    (percent-decoding, `+` as space), so what is checked is what Magento would read."""
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    return check_request(method, parts.path, pairs, body)


def _check_bulk(method: str, path: str, query: Query | None, body: Any) -> str:
    where = f"{method} /async/bulk{path}"
    if method == "GET":
        raise ContractViolation(f"{where}: bulk routes take no GET")
    if _pairs(query):
        raise ContractViolation(f"{where}: bulk routes take no query parameters")
    if not isinstance(body, list) or not body:
        raise ContractViolation(f"{where}: the body must be a non-empty JSON array")
    # Route parameters are written `by<Name>` (bySku) and given in each element.
    names: list[tuple[int, str]] = []
    segments = path.split("/")
    for i, seg in enumerate(segments):
        m = _BY_PARAM.match(seg)
        if m:
            names.append((i, m.group(1)[0].lower() + m.group(1)[1:]))
    template = ""
    for n, element in enumerate(body):
        if not isinstance(element, dict):
            raise ContractViolation(f"{where}: body[{n}]: must be an object")
        concrete = list(segments)
        rest = dict(element)
        for i, name in names:
            if name not in rest:
                raise ContractViolation(f"{where}: body[{n}]: route parameter {name!r} missing")
            concrete[i] = str(rest.pop(name))
        sync = "/".join(concrete)
        try:
            template, params = find_operation(method, sync)
            _check_one(method, sync, template, params, [], rest)
        except ContractViolation as e:
            raise ContractViolation(f"{where}: body[{n}]: {e}") from None
    return template


def _pairs(query: Query | None) -> list[tuple[str, str]]:
    if query is None:
        return []
    items = query.items() if isinstance(query, Mapping) else query
    return [(str(k), str(v)) for k, v in items]


def _check_one(
    method: str,
    path: str,
    template: str,
    params: dict[str, str],
    query: list[tuple[str, str]],
    body: Any,
) -> None:
    contract = load()
    op = contract.operation(method, template)
    assert op is not None
    declared = {p["name"] for p in op.get("parameters", []) if p.get("in") == "query"}
    where = f"{method} {path}"
    # The document declares index 0 only: each other index is checked as its index-0 form,
    # one request per parameter (values of one name at different indices never collide).
    direct: list[tuple[str, str]] = []
    shifted: list[tuple[str, str]] = []
    for name, value in query:
        if name in declared:
            direct.append((name, value))
            continue
        as_zero = _INDEX.sub("[0]", name)
        if as_zero in declared:
            shifted.append((as_zero, value))
            continue
        hint = (
            " (searchCriteria goes as bracketed query parameters, not JSON)"
            if (name == "searchCriteria")
            else ""
        )
        known = ", ".join(sorted(declared)) or "none"
        raise ContractViolation(
            f"{where}: query parameter {name!r} is not in the document{hint}; declared: {known}"
        )
    names = [n for n, _ in direct]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ContractViolation(f"{where}: query parameter(s) given twice: {', '.join(dupes)}")
    data = None if body is None else json.dumps(body).encode()
    batches = [direct] + [[pair] for pair in shifted]
    for batch in batches:
        request = MockRequest(
            _HOST,
            method.lower(),
            _BASE + path,
            path_pattern=_BASE + template,
            args=dict(batch),
            view_args=params,
            data=data,
            content_type="application/json",
        )
        try:
            contract.api.validate_request(request)
        except Exception as e:  # openapi-core's errors; re-raised readably
            raise ContractViolation(f"{where}: {_explain(e, 'request')}") from e


# --- Responses --------------------------------------------------------------------------


def check_response(
    method: str, path: str, status: int, body: Any, query: Query | None = None
) -> None:
    """Raise ContractViolation unless `body` (JSON) is what the document says `method`
    `path` answers with `status`. ContractGap when the document says nothing checkable:
    a 2xx of an operation whose documented responses are all errors."""
    route = split_route(path)
    method = method.upper()
    if route.asynchronous:
        raise ContractGap(
            f"{method} {path}: the asynchronous answer (bulk_uuid, request_items, errors) is"
            " not in the document"
        )
    template, params = find_operation(method, route.path)
    contract = load()
    op = contract.operation(method, template)
    assert op is not None
    responses = op.get("responses", {})
    where = f"{method} {route.path} -> {status}"
    if str(status) not in responses and 200 <= status < 300:
        if not any(code.startswith("2") for code in responses):
            raise ContractGap(f"{where}: the document describes no success answer")
        raise ContractViolation(f"{where}: status not in the document ({', '.join(responses)})")
    request = MockRequest(
        _HOST,
        method.lower(),
        _BASE + route.path,
        path_pattern=_BASE + template,
        args=dict(_pairs(query)),
        view_args=params,
    )
    response = MockResponse(json.dumps(body).encode(), status_code=status)
    try:
        contract.api.validate_response(request, response)
    except Exception as e:
        raise ContractViolation(f"{where}: {_explain(e, 'response')}") from e


# --- Messages ---------------------------------------------------------------------------


def _explain(error: BaseException, side: str) -> str:
    """openapi-core's error, readably: where the schema errors under it are, each as
    `at $.<path>: <message>` with jsonschema's message (e.g. "'ten' is not of type
    'number'", "Additional properties are not allowed ('skuu' was unexpected)"), without
    the whole value repeated; otherwise the chain of openapi-core's own messages."""
    label = str(error) if isinstance(error, ParameterValidationError) else f"{side} body"
    parts: list[str] = []
    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        schema_errors = getattr(cause, "schema_errors", None)
        if schema_errors:
            lines = []
            for se in schema_errors:
                at = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in se.path)
                lines.append(f"at ${at}: {se.message}")
            return f"{label}: " + "; ".join(lines)
        if str(cause) not in parts:
            parts.append(str(cause))
        cause = cause.__cause__ or cause.__context__
    return "; ".join(parts)
