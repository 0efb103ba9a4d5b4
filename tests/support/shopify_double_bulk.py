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

Status: CREATED -> RUNNING -> COMPLETED, one step per read of the operation (`steps`
reads in RUNNING); `hold` keeps it RUNNING until released, so tests can see it running.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from graphql import GraphQLError, execute_sync, get_operation_ast, parse, validate
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


@dataclass
class BulkState:
    base: str = ""  # http://127.0.0.1:PORT, as the last request reached the double
    uploads: dict[str, bytes] = field(default_factory=dict)  # staged key -> file
    upload_forms: list[dict[str, str]] = field(default_factory=list)
    operations: list[Obj] = field(default_factory=list)  # oldest first
    results: dict[str, str] = field(default_factory=dict)  # operation number -> JSONL
    steps: int = 1  # reads of a running operation before it completes
    hold: bool = False
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
            ("QueryRoot", "bulkOperation"): lambda _s, _i, id: _read(double, id),
            ("QueryRoot", "bulkOperations"): lambda _s, _i, **a: _list(double, a),
        }
    )

    _index_handles(double, state)

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
    number = len(state.operations) + 1
    op = {
        "__typename": "BulkOperation",
        "id": f"gid://shopify/BulkOperation/{number}",
        "status": "CREATED",
        "type": "MUTATION",
        "query": args["mutation"],
        "errorCode": None,
        "objectCount": "0",
        "rootObjectCount": "0",
        "fileSize": None,
        "url": None,
        "partialDataUrl": None,
        "createdAt": _now(),
        "completedAt": None,
        "_number": str(number),
        "_path": path,
        "_reads": 0,
        "_client": args.get("clientIdentifier"),
    }
    state.operations.append(op)
    return {"bulkOperation": op, "userErrors": []}


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
    if op["status"] != "RUNNING" or state.hold:
        return
    op["_reads"] += 1
    if op["_reads"] >= state.steps:
        _complete(double, op)


def _complete(double: ShopifyDouble, op: Obj) -> None:
    state: BulkState = double.bulk  # type: ignore[attr-defined]
    lines = state.uploads[op["_path"]].decode().splitlines()
    out = [
        json.dumps(execute_line(double, op["query"], raw) | {"__lineNumber": n})
        for n, raw in enumerate(lines)
    ]
    text = "".join(line + "\n" for line in out)
    state.results[op["_number"]] = text
    op.update(
        status="COMPLETED",
        objectCount=str(len(lines)),
        rootObjectCount=str(len(lines)),
        fileSize=str(len(text)),
        url=f"{state.base}{RESULT_PATH}/{op['_number']}.jsonl" if lines else None,
        completedAt=_now(),
    )


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
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
