"""Bulk operations in the Shopify double (issue 18): stagedUploadsCreate for
BULK_MUTATION_VARIABLES, the multipart upload it names (a route of the double standing in
for Google Cloud Storage), bulkOperationRunMutation, bulkOperation(id), bulkOperations(query:
"status:… operation_type:…") newest first, and the result JSONL.

Each JSONL line is run through the double's own machinery: its variables coerced against
the mutation's variable definitions (Shopify's schema), the 250 cap on input lists, then
executed by graphql-core with the double's resolvers. Lines are not charged to the cost
bucket: Shopify does not meter a bulk operation's lines against the app's bucket
(docs/shopify-notes.md, "Bulk operations"). One bulk mutation runs per shop at a time: a
second one gets OPERATION_IN_PROGRESS, the schema's own code and wording.

bulkOperationRunQuery (an export): the query is validated against the schema and the
bulk-query rules of the mutation's description (at least one connection, at most five,
nested at most two deep), executed by graphql-core with every connection read whole (no
paging, as a bulk query reads them), and written as JSONL the way shopify.dev's "Perform
bulk operations with the GraphQL Admin API" describes with groupObjects false: one line
per node, a nested connection's nodes on lines of their own after their parent's, each
with `__parentId` (the parent's id); the parent's line leaves the connection out. Up to
five bulk queries run at once (the guide, API 2026-01 and later), beside a bulk mutation.

productSet, in bulk or not, refuses quantities of an existing variant (named by id) at a
location where it is not stocked (`_stocked_only`).

Status: CREATED -> RUNNING -> COMPLETED, one step per read of the operation (`steps`
reads in RUNNING); `hold` keeps bulk mutations RUNNING until released, so tests can see
one running (exports go on).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from graphql import (
    GraphQLError,
    TypeInfo,
    TypeInfoVisitor,
    Visitor,
    execute_sync,
    get_named_type,
    get_operation_ast,
    parse,
    validate,
    visit,
)
from graphql.error import GraphQLSyntaxError
from graphql.execution.values import get_variable_values
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

if TYPE_CHECKING:
    from tests.support.shopify_double import ShopifyDouble

Obj = dict[str, Any]
UPLOAD_PATH = "/staged-uploads/bulk"
RESULT_PATH = "/bulk-results"
ACTIVE = ("CREATED", "RUNNING", "CANCELING")
# The schema's description of BulkMutationErrorCode.OPERATION_IN_PROGRESS.
IN_PROGRESS = "The operation did not run because another bulk mutation is already running."
QUERIES_AT_ONCE = 5  # bulk queries per shop at a time (the guide, API 2026-01 and later)


@dataclass
class BulkState:
    base: str = ""  # http://127.0.0.1:PORT, as the last request reached the double
    uploads: dict[str, bytes] = field(default_factory=dict)  # staged key -> file
    upload_forms: list[dict[str, str]] = field(default_factory=list)
    operations: list[Obj] = field(default_factory=list)  # oldest first
    results: dict[str, str] = field(default_factory=dict)  # operation number -> JSONL
    steps: int = 1  # reads of a running operation before it completes
    hold: bool = False  # bulk mutations stay RUNNING
    staged: int = 0
    handles: dict[str, str] = field(default_factory=dict)  # product handle -> gid

    def running(self) -> list[Obj]:
        return [o for o in self.operations if o["status"] in ACTIVE]


class _Base:
    """Notes where the double is reached, so the staged and result URLs point back at it."""

    def __init__(self, app: ASGIApp, state: BulkState) -> None:
        self.app, self.state = app, state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("server"):
            host, port = scope["server"]
            self.state.base = f"http://{host}:{port}"
        await self.app(scope, receive, send)


def install(double: ShopifyDouble) -> None:
    state = BulkState()
    double.bulk = state  # type: ignore[attr-defined]
    double.app.add_middleware(_Base, state=state)
    double.resolvers.update(
        {
            ("Mutation", "stagedUploadsCreate"): lambda _s, _i, input: _staged(state, input),
            ("Mutation", "bulkOperationRunMutation"): lambda _s, _i, **a: _run(double, a),
            ("Mutation", "bulkOperationRunQuery"): lambda _s, _i, **a: _run_query(double, a),
            ("QueryRoot", "bulkOperation"): lambda _s, _i, id: _read(double, id),
            ("QueryRoot", "bulkOperations"): lambda _s, _i, **a: _list(double, a),
        }
    )

    _index_handles(double, state)
    _stocked_only(double)

    async def upload(request: Request) -> Response:
        form = await request.form()
        file = form.get("file")
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        if file is None or isinstance(file, str) or "key" not in fields:
            return PlainTextResponse("a key field and a file are needed", status_code=400)
        body = await file.read()
        with double.lock:
            state.upload_forms.append(fields)
            state.uploads[fields["key"]] = body
        return Response(status_code=201)

    async def result(request: Request) -> Response:
        with double.lock:
            text = state.results.get(request.path_params["number"])
        if text is None:
            return PlainTextResponse("no such result", status_code=404)
        return PlainTextResponse(text, media_type="application/jsonl")

    double.app.router.routes.append(Route(UPLOAD_PATH, upload, methods=["POST"]))
    double.app.router.routes.append(Route(RESULT_PATH + "/{number}.jsonl", result))


def _index_handles(double: ShopifyDouble, state: BulkState) -> None:
    """productSet by handle without scanning the whole shop per line: the double's own
    lookup walks every object, which makes a 10,000-line operation quadratic. Handles of
    products made by productSet or productCreate are indexed; a miss sets the product as
    new, as the double's lookup would."""
    by_handle = double.resolvers[("Mutation", "productSet")]
    create = double.resolvers[("Mutation", "productCreate")]

    def remember(answer: Any) -> Any:
        product = answer.get("product") if isinstance(answer, dict) else None
        if product:
            state.handles[product["handle"]] = product["id"]
        return answer

    def product_set(source: Any, info: Any, **args: Any) -> Any:
        ident = args.get("identifier") or {}
        handle = ident.get("handle")
        if handle and not ident.get("id") and not ident.get("customId"):
            gid = state.handles.get(handle)
            found = double.shop.get(gid, "Product") if gid else None
            if found is not None and found["handle"] == handle:
                args["identifier"] = {"id": gid}
            else:
                args["identifier"] = None
                args["input"] = {"handle": handle} | args["input"]
        return remember(by_handle(source, info, **args))

    double.resolvers[("Mutation", "productSet")] = product_set
    double.resolvers[("Mutation", "productCreate")] = lambda s, i, **a: remember(create(s, i, **a))


def _stocked_only(double: ShopifyDouble) -> None:
    """productSet sets an existing variant's quantities only where it is stocked (schema,
    ProductVariantSetInput.inventoryQuantities: "If you're updating an existing variant,
    then you can only update the quantities at locations where the variant is already
    stocked"). Whether Shopify refuses the others or skips them is not said; the double
    refuses (the stricter reading: a line that relied on it fails its product loudly)."""
    from tests.support.shopify_double import UserErr

    inner = double.resolvers[("Mutation", "productSet")]

    def product_set(source: Any, info: Any, **args: Any) -> Any:
        for n, data in enumerate((args.get("input") or {}).get("variants") or []):
            variant = double.shop.get(data.get("id") or "", "ProductVariant")
            if variant is None:
                continue
            item = variant["_item"]["id"]
            for q in data.get("inventoryQuantities") or []:
                if (item, q["locationId"]) not in double.shop.levels:
                    raise UserErr(
                        "An existing variant's quantities can only be set where it is stocked",
                        ["input", "variants", str(n), "inventoryQuantities"],
                    )
        return inner(source, info, **args)

    double.resolvers[("Mutation", "productSet")] = product_set


def _staged(state: BulkState, inputs: list[Obj]) -> Obj:
    targets = []
    for one in inputs:
        if one["resource"] != "BULK_MUTATION_VARIABLES":
            raise NotImplementedError("the double stages bulk mutation variables only")
        state.staged += 1
        key = f"tmp/stockyard-double/bulk/{state.staged}/{one['filename']}"
        # The fields a storage service's signed form carries (values are the double's).
        params = {
            "Content-Type": one["mimeType"],
            "success_action_status": "201",
            "acl": "private",
            "key": key,
            "policy": "double-policy",
        }
        targets.append(
            {
                "url": state.base + UPLOAD_PATH,
                "resourceUrl": None,
                "parameters": [{"name": k, "value": v} for k, v in params.items()],
            }
        )
    return {"stagedTargets": targets, "userErrors": []}


def _refused(message: str, code: str) -> Obj:
    return {
        "bulkOperation": None,
        "userErrors": [{"field": None, "message": message, "code": code}],
    }


def _run(double: ShopifyDouble, args: Obj) -> Obj:
    state: BulkState = double.bulk  # type: ignore[attr-defined]
    if any(o["type"] == "MUTATION" for o in state.running()):
        return _refused(IN_PROGRESS, "OPERATION_IN_PROGRESS")
    path = args["stagedUploadPath"]
    if path not in state.uploads:
        return _refused("The JSONL file could not be found.", "NO_SUCH_FILE")
    try:
        document = parse(args["mutation"])
    except GraphQLSyntaxError as e:
        return _refused(f"Invalid mutation: {e.message}", "INVALID_MUTATION")
    errors = validate(double.schema, document)
    operation = get_operation_ast(document)
    if errors or operation is None or operation.operation.value != "mutation":
        detail = "; ".join(e.message for e in errors) or "not one mutation operation"
        return _refused(f"Invalid mutation: {detail}", "INVALID_MUTATION")
    op = _new_operation(state, "MUTATION", args["mutation"])
    op.update(_path=path, _client=args.get("clientIdentifier"))
    return {"bulkOperation": op, "userErrors": []}


def _new_operation(state: BulkState, kind: str, query: str) -> Obj:
    number = len(state.operations) + 1
    op = {
        "__typename": "BulkOperation",
        "id": f"gid://shopify/BulkOperation/{number}",
        "status": "CREATED",
        "type": kind,
        "query": query,
        "errorCode": None,
        "objectCount": "0",
        "rootObjectCount": "0",
        "fileSize": None,
        "url": None,
        "partialDataUrl": None,
        "createdAt": _now(),
        "completedAt": None,
        "_number": str(number),
        "_reads": 0,
    }
    state.operations.append(op)
    return op


def _run_query(double: ShopifyDouble, args: Obj) -> Obj:
    state: BulkState = double.bulk  # type: ignore[attr-defined]
    if sum(o["type"] == "QUERY" for o in state.running()) >= QUERIES_AT_ONCE:
        # The code Shopify gives past the limit is not documented: the schema's closest.
        return _refused("A bulk operation is already in progress.", "OPERATION_IN_PROGRESS")
    from tests.support.shopify_double import Unimplemented

    if args.get("groupObjects"):
        raise Unimplemented("the Shopify double exports ungrouped JSONL only")
    problem = _bulk_query_problem(double, args["query"])
    if problem:
        return _refused(problem, "INVALID")
    return {"bulkOperation": _new_operation(state, "QUERY", args["query"]), "userErrors": []}


def _bulk_query_problem(double: ShopifyDouble, query: str) -> str | None:
    """Why Shopify would refuse `query` as a bulk query (schema and the bulk-query rules of
    bulkOperationRunQuery's description), or None."""
    try:
        document = parse(query)
    except GraphQLSyntaxError as e:
        return f"Invalid bulk query: {e.message}"
    errors = validate(double.schema, document)
    operation = get_operation_ast(document)
    if errors or operation is None or operation.operation.value != "query":
        return "Invalid bulk query: " + ("; ".join(e.message for e in errors) or "not a query")
    depths = _connection_depths(double, document)
    if not depths:
        return "Bulk queries must contain at least one connection."
    if len(depths) > 5 or max(depths) > 2:
        return "Bulk queries support up to five connections nested at most two levels deep."
    return None


def _connection_depths(double: ShopifyDouble, document: Any) -> list[int]:
    """The nesting depth (1 = top) of every connection field the document selects."""
    info = TypeInfo(double.schema)
    depths: list[int] = []
    open_: list[bool] = []

    class Connections(Visitor):
        def enter_field(self, *_: Any) -> None:
            named = get_named_type(info.get_type())
            is_connection = named is not None and named.name.endswith("Connection")
            open_.append(is_connection)
            if is_connection:
                depths.append(sum(open_))

        def leave_field(self, *_: Any) -> None:
            open_.pop()

    visit(document, TypeInfoVisitor(info, Connections()))
    return depths


def _read(double: ShopifyDouble, gid: str) -> Obj | None:
    state: BulkState = double.bulk  # type: ignore[attr-defined]
    op = next((o for o in state.operations if o["id"] == gid), None)
    if op is not None:
        _advance(double, op)
    return op


def _list(double: ShopifyDouble, args: Obj) -> Obj:
    from tests.support.shopify_double import _connection

    state: BulkState = double.bulk  # type: ignore[attr-defined]
    wanted: dict[str, str] = {}
    for term in (args.get("query") or "").split():
        name, _, value = term.partition(":")
        if name not in ("status", "operation_type") or not value:
            raise GraphQLError(f"the Shopify double filters bulk operations by {name!r} only")
        wanted[name] = value.upper()
    for op in state.operations:
        _advance(double, op)  # a shop's operations move on whoever reads them
    found = [
        o
        for o in state.operations
        if o["status"] == wanted.get("status", o["status"])
        and o["type"] == wanted.get("operation_type", o["type"])
    ]
    # Newest first unless reversed (the field's description).
    return _connection(
        found, {**args, "reverse": not args.get("reverse")}, key=lambda o: int(o["_number"])
    )


def _advance(double: ShopifyDouble, op: Obj) -> None:
    state: BulkState = double.bulk  # type: ignore[attr-defined]
    if op["status"] == "CREATED":
        op["status"] = "RUNNING"
        return
    if op["status"] != "RUNNING" or (state.hold and op["type"] == "MUTATION"):
        return
    op["_reads"] += 1
    if op["_reads"] >= state.steps:
        _complete(double, op)


def _complete(double: ShopifyDouble, op: Obj) -> None:
    state: BulkState = double.bulk  # type: ignore[attr-defined]
    if op["type"] == "QUERY":
        out, roots = export(double, op["query"])
    else:
        lines = state.uploads[op["_path"]].decode().splitlines()
        out = [
            json.dumps(execute_line(double, op["query"], raw) | {"__lineNumber": n})
            for n, raw in enumerate(lines)
        ]
        roots = len(lines)
    text = "".join(line + "\n" for line in out)
    state.results[op["_number"]] = text
    op.update(
        status="COMPLETED",
        objectCount=str(len(out)),
        rootObjectCount=str(roots),
        fileSize=str(len(text)),
        url=f"{state.base}{RESULT_PATH}/{op['_number']}.jsonl" if out else None,
        completedAt=_now(),
    )


def export(double: ShopifyDouble, query: str) -> tuple[list[str], int]:
    """A bulk query's JSONL lines (ungrouped, `__parentId` on nested nodes) and how many
    root objects they hold."""
    from tests.support.shopify_double import Unimplemented

    whole: dict[tuple[str, str], Callable[..., list[Obj]]] = {
        ("QueryRoot", "products"): lambda _s, _i, **_a: double.shop.of("Product"),
        ("Product", "variants"): lambda p, _i, **_a: p["_variants"],
    }

    def resolve(source: Any, info: Any, **args: Any) -> Any:
        named = get_named_type(info.return_type)
        if named is not None and named.name.endswith("Connection"):
            reader = whole.get((info.parent_type.name, info.field_name))
            if reader is None:
                raise Unimplemented(
                    f"the Shopify double does not export {info.parent_type.name}."
                    f"{info.field_name} in bulk"
                )
            items = reader(source, info, **args)
            return {"nodes": items, "edges": [{"node": n, "cursor": ""} for n in items]}
        return double._resolve(source, info, **args)

    result = execute_sync(
        double.schema,
        parse(query),
        field_resolver=resolve,
        type_resolver=lambda value, _info, _type: value["__typename"],
    )
    if result.errors or not result.data:
        raise GraphQLError("; ".join(e.message for e in result.errors or []) or "no data")
    (root,) = result.data.values()
    out: list[str] = []
    roots = _flatten(_nodes(root), None, out)
    return out, roots


def _nodes(connection: Obj) -> list[Obj]:
    if "nodes" in connection:
        return list(connection["nodes"])
    return [edge["node"] for edge in connection.get("edges") or []]


def _is_connection(value: Any) -> bool:
    return isinstance(value, dict) and ("edges" in value or "nodes" in value)


def _flatten(nodes: list[Obj], parent: str | None, out: list[str]) -> int:
    for node in nodes:
        line = {k: v for k, v in node.items() if not _is_connection(v)}
        if parent is not None:
            line["__parentId"] = parent
        out.append(json.dumps(line))
        for value in node.values():
            if _is_connection(value):
                _flatten(_nodes(value), node.get("id"), out)
    return len(nodes)


def execute_line(double: ShopifyDouble, mutation: str, raw: str) -> Obj:
    """One JSONL line through the schema and the double's resolvers, uncharged."""
    from tests.support.shopify_double import MAX_INPUT_LIST, _oversized_lists

    document = parse(mutation)
    operation = get_operation_ast(document)
    assert operation is not None
    try:
        variables = json.loads(raw)
    except ValueError:
        return {"errors": [{"message": "Unexpected file structure - expected JSONL"}]}
    coerced = get_variable_values(double.schema, operation.variable_definitions or (), variables)
    if isinstance(coerced, list):
        return {"errors": [e.formatted for e in coerced]}
    if _oversized_lists(document, coerced.coerced):
        return {"errors": [{"message": f"an input list is over {MAX_INPUT_LIST}"}]}
    result = execute_sync(
        double.schema,
        document,
        variable_values=variables,
        field_resolver=double._resolve,
        type_resolver=lambda value, _info, _type: value["__typename"],
    )
    answer: Obj = {"data": result.data}
    if result.errors:
        answer["errors"] = [e.formatted for e in result.errors]
    return answer


def _now() -> str:
    # Microseconds, where a real shop gives seconds: the connector compares these times
    # (is an export older than a bulk mutation's end?), and a test runs many in a second.
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
