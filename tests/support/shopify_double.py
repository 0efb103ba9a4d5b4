"""A fake Shopify Admin API on 127.0.0.1, built on Shopify's own schema (issue 18).

POST /admin/api/<version>/graphql.json, like a shop. Every request is parsed, validated and
its variables coerced against the real Admin schema (tests/support/shopify_schema.py);
an invalid request is answered with GraphQL errors and never executed. A valid one is
executed by graphql-core over an in-memory shop, with resolvers for the operations the
connector uses only; any other field fails loudly ("the Shopify double does not implement
QueryRoot.customers"). Resolvers return plain dicts keyed by the schema's field names and
graphql-core serialises them through Shopify's types, so a wrongly shaped answer is an error
here, not a silent guess.

Modelled (see docs/shopify-notes.md, "The test double", for what only a real shop confirms):
- the access token (401 without it), the pinned version (404 for another);
- query cost (`requested_cost`, a documented simple rule) and a leaky bucket per shop with
  an injectable clock; THROTTLED and MAX_COST_EXCEEDED in HTTP 200 with `extensions.cost`;
- the 250-item cap on input lists (shopify.dev/api/usage/limits);
- products: productSet (list fields replaced: omitted variants are deleted), productCreate
  (+ its standalone variant), productVariantsBulkCreate / BulkUpdate, productDelete,
  product(id), productVariants(query: "sku:…"), node(s)(id);
- stock: inventorySetQuantities with changeFromQuantity (compare-and-set, mandatory even if
  null) and @idempotent(key:) (mandatory; replay returns the first answer, other parameters
  under the same key are refused);
- orders(query: "updated_at:>…", sortKey, first/after cursors), order(id) with its
  fulfillment orders, fulfillmentCreate (partial or whole, with tracking).

Serve it with `serve(double)` (uvicorn in a thread, on a free port) or use `double.app`.
"""

from __future__ import annotations

import base64
import json
import operator
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import uvicorn
from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLInt,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLResolveInfo,
    GraphQLSchema,
    InlineFragmentNode,
    ListValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    execute_sync,
    get_named_type,
    get_operation_ast,
    is_leaf_type,
    parse,
    validate,
    value_from_ast,
    visit,
)
from graphql.error import GraphQLSyntaxError
from graphql.execution.values import get_directive_values, get_variable_values
from graphql.language import Visitor
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from systems.net import free_port

from tests.support import shopify_schema

Obj = dict[str, Any]

TOKEN = "shpat_double_token"
# Shopify's figures (shopify.dev/docs/apps/build/apis/graphql-admin/rate-limits): Standard
# plan restores 100 points/s; one query may cost at most 1,000 points. The bucket's size is
# not in the schema nor in the package; a real shop reports it as
# throttleStatus.maximumAvailable, so the connector must read it, not assume it.
CAPACITY = 1000.0
RESTORE_RATE = 100.0
MAX_QUERY_COST = 1000
MAX_INPUT_LIST = 250  # "Input arguments that accept an array have a maximum size of 250."
MAX_PAGE = 250
MUTATION_COST = 10
# Shopify's answer to a wrong token (its REST/GraphQL body; from Shopify's docs and forums).
UNAUTHORIZED = "[API] Invalid API key or access token (unrecognized login or wrong password)"
INVENTORY_NAMES = ("available", "on_hand")
# From Shopify's inventory-states guide (the reason field's description links there).
INVENTORY_REASONS = frozenset(
    (
        "correction",
        "cycle_count_available",
        "damaged",
        "movement_created",
        "movement_updated",
        "movement_received",
        "movement_canceled",
        "other",
        "promotion",
        "quality_control",
        "received",
        "reservation_created",
        "reservation_deleted",
        "reservation_updated",
        "restock",
        "safety_stock",
        "shrinkage",
    )
)
# Fulfillment order statuses whose supportedActions include CREATE_FULFILLMENT.
FULFILLABLE = frozenset(("OPEN", "IN_PROGRESS"))
# The orders query's comparison operators, as Shopify's search syntax writes them.
COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "=": operator.eq,
}


class Unimplemented(Exception):
    """A field the double has no resolver for: loud, with the field's name."""


class UserErr(Exception):
    def __init__(self, message: str, field: list[str] | None = None, code: str | None = None):
        super().__init__(message)
        # `code` null when Shopify's is unknown or the payload's error type has none.
        self.error: Obj = {"field": field, "message": message, "code": code}


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# --- cost ------------------------------------------------------------------------------


def requested_cost(
    schema: GraphQLSchema,
    document: Any,
    operation: OperationDefinitionNode,
    variables: dict[str, Any],
) -> int:
    """The double's cost rule (a model, not Shopify's figures; Shopify's docs: "running a
    query is the best way to find out its true cost"): scalars and enums 0; every object
    field 1 plus its selection; a connection 1 + `first` (or `last`) x its nodes/edges
    selection + its other selections (pageInfo), where `nodes { … }` and
    `edges { node { … } }` both cost 1 per node plus its selection; each mutation root
    field 10 plus its payload's selection. Fragments on several types are summed (Shopify
    takes the maximum), so the estimate errs high."""
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    mutation = operation.operation == OperationType.MUTATION
    root = schema.mutation_type if mutation else schema.query_type
    assert root is not None

    def selection(parent: Any, node: SelectionSetNode | None, top: bool = False) -> int:
        if node is None:
            return 0
        total = 0
        for sel in node.selections:
            if isinstance(sel, InlineFragmentNode):
                cond = (
                    schema.get_type(sel.type_condition.name.value) if sel.type_condition else None
                )
                total += selection(cond or parent, sel.selection_set, top)
            elif isinstance(sel, FragmentSpreadNode):
                frag = fragments[sel.name.value]
                cond = schema.get_type(frag.type_condition.name.value)
                total += selection(cond, frag.selection_set, top)
            elif isinstance(sel, FieldNode) and not sel.name.value.startswith("__"):
                assert isinstance(parent, GraphQLObjectType | GraphQLInterfaceType)
                definition = parent.fields[sel.name.value]
                named = get_named_type(definition.type)
                if is_leaf_type(named):
                    continue
                cost = (MUTATION_COST if mutation and top else 1) + _connection_or_object(
                    named, sel
                )
                total += cost
        return total

    def _connection_or_object(named: Any, node: FieldNode) -> int:
        if not named.name.endswith("Connection"):
            return selection(named, node.selection_set)
        size = 0
        for arg in node.arguments or ():
            if arg.name.value in ("first", "last"):
                size = value_from_ast(arg.value, GraphQLInt, variables) or 0
        per_page, rest = 0, 0
        for sel in node.selection_set.selections if node.selection_set else ():
            one = SelectionSetNode(selections=(sel,))
            if isinstance(sel, FieldNode) and sel.name.value == "nodes":
                per_page += selection(named, one)  # 1 per node + the node's selection
            elif isinstance(sel, FieldNode) and sel.name.value == "edges":
                edge = get_named_type(named.fields["edges"].type)
                per_page += selection(edge, sel.selection_set)  # edge free, node 1 + …
            else:
                rest += selection(named, one)
        return size * per_page + rest

    return selection(root, operation.selection_set, top=True)


def _oversized_lists(document: Any, variables: Any) -> list[int]:
    sizes: list[int] = []

    def walk(value: Any) -> None:
        if isinstance(value, list):
            if len(value) > MAX_INPUT_LIST:
                sizes.append(len(value))
            for v in value:
                walk(v)
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)

    walk(variables)

    class Lists(Visitor):
        def enter_list_value(self, node: ListValueNode, *_: Any) -> None:
            if len(node.values) > MAX_INPUT_LIST:
                sizes.append(len(node.values))

    visit(document, Lists())
    return sizes


# --- the bucket ------------------------------------------------------------------------


class Bucket:
    """Shopify's leaky bucket per app and shop: holds `capacity` points, restores
    `restore_rate` per second of `clock` (injectable, so tests need no sleeps)."""

    def __init__(self, capacity: float, restore_rate: float, clock: Callable[[], float]):
        self.capacity = capacity
        self.restore_rate = restore_rate
        self.clock = clock
        self.available = capacity
        self.at = clock()

    def refill(self) -> float:
        now = self.clock()
        self.available = min(self.capacity, self.available + (now - self.at) * self.restore_rate)
        self.at = now
        return self.available

    def status(self) -> Obj:
        return {
            "maximumAvailable": self.capacity,
            "currentlyAvailable": self.available,
            "restoreRate": self.restore_rate,
        }


# --- the shop --------------------------------------------------------------------------


@dataclass
class Received:
    """One request as the double saw it, and its answer."""

    version: str
    token: str | None
    query: str | None
    variables: dict[str, Any] | None
    operation_name: str | None
    status: int
    response: Any
    requested_cost: int | None = None


@dataclass
class Shop:
    """The in-memory shop: every object by its gid, as the dict graphql-core serialises."""

    currency: str = "EUR"
    objects: dict[str, Obj] = field(default_factory=dict)
    levels: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)
    idempotency: dict[str, tuple[str, Obj]] = field(default_factory=dict)
    next_id: int = 1000

    def gid(self, kind: str) -> str:
        self.next_id += 1
        return f"gid://shopify/{kind}/{self.next_id}"

    def add(self, kind: str, **fields: Any) -> Obj:
        obj: Obj = {"__typename": kind, "id": self.gid(kind), **fields}
        self.objects[obj["id"]] = obj
        return obj

    def of(self, kind: str) -> list[Obj]:
        return [o for o in self.objects.values() if o["__typename"] == kind]

    def get(self, gid: str, kind: str) -> Obj | None:
        obj = self.objects.get(gid)
        return obj if obj is not None and obj["__typename"] == kind else None

    def money(self, amount: str) -> Obj:
        return {"shopMoney": {"amount": amount, "currencyCode": self.currency}}

    # Seeding, for tests.
    def add_location(self, name: str) -> Obj:
        return self.add("Location", name=name)

    def add_order(
        self,
        lines: list[tuple[str, int, str]],
        location: Obj,
        updated_at: str | None = None,
        name: str | None = None,
    ) -> Obj:
        """An order of (sku, quantity, unit price) lines with one open fulfillment order at
        `location`."""
        stamp = updated_at or _now_iso()
        order = self.add("Order", createdAt=stamp, updatedAt=stamp, cancelledAt=None)
        total = sum(float(price) * qty for _, qty, price in lines)
        order.update(
            name=name or f"#{order['id'].rsplit('/', 1)[1]}",
            email="buyer@example.com",
            currencyCode=self.currency,
            displayFinancialStatus="PAID",
            displayFulfillmentStatus="UNFULFILLED",
            totalPriceSet=self.money(f"{total:.2f}"),
            shippingAddress={
                "name": "Ada Buyer",
                "address1": "1 Main St",
                "address2": None,
                "city": "Berlin",
                "zip": "10115",
                "countryCodeV2": "DE",
                "phone": None,
            },
            _lines=[],
            _fulfillment_orders=[],
            _fulfillments=[],
        )
        fo = self.add(
            "FulfillmentOrder",
            status="OPEN",
            orderId=order["id"],
            updatedAt=stamp,
            assignedLocation={"location": location},
            _lines=[],
        )
        for sku, qty, price in lines:
            variant = next((v for v in self.of("ProductVariant") if v["sku"] == sku), None)
            line = self.add(
                "LineItem",
                sku=sku,
                quantity=qty,
                variant=variant,
                originalUnitPriceSet=self.money(price),
            )
            order["_lines"].append(line)
            fo["_lines"].append(
                self.add(
                    "FulfillmentOrderLineItem",
                    sku=sku,
                    remainingQuantity=qty,
                    totalQuantity=qty,
                    lineItem=line,
                )
            )
        order["_fulfillment_orders"].append(fo)
        return order

    def split_fulfillment_order(self, order: Obj, skus: list[str], location: Obj) -> Obj:
        """Move the lines of these SKUs into a new open fulfillment order at `location`
        (as Shopify splits an order between locations)."""
        fo = self.add(
            "FulfillmentOrder",
            status="OPEN",
            orderId=order["id"],
            updatedAt=order["updatedAt"],
            assignedLocation={"location": location},
            _lines=[],
        )
        for other in order["_fulfillment_orders"]:
            moved = [line for line in other["_lines"] if line["sku"] in skus]
            other["_lines"] = [line for line in other["_lines"] if line not in moved]
            fo["_lines"] += moved
        order["_fulfillment_orders"].append(fo)
        return fo

    def available(self, item_id: str, location_id: str) -> int | None:
        level = self.levels.get((item_id, location_id))
        return None if level is None else level["available"]


def _cursor(key: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode()


def _connection(
    items: list[Obj],
    args: dict[str, Any],
    key: Callable[[Obj], Any] = lambda o: int(o["id"].rsplit("/", 1)[1]),
) -> Obj:
    """A Relay connection over `items`, keyset cursors on `key` (first/after only)."""
    if args.get("last") is not None or args.get("before") is not None:
        raise Unimplemented("the Shopify double pages forward only (first/after)")
    first = args.get("first")
    if first is None:
        raise GraphQLError("you must provide one of first or last")
    if not 0 <= first <= MAX_PAGE:
        raise GraphQLError(f"first must be between 0 and {MAX_PAGE}")
    reverse = bool(args.get("reverse"))
    ordered = sorted(items, key=key, reverse=reverse)
    after = args.get("after")
    if after is not None:
        mark = json.loads(base64.urlsafe_b64decode(after.encode()))
        mark = tuple(mark) if isinstance(mark, list) else mark
        ordered = [o for o in ordered if (key(o) < mark if reverse else key(o) > mark)]
    page = ordered[:first]
    edges = [{"node": o, "cursor": _cursor(key(o))} for o in page]
    return {
        "nodes": page,
        "edges": edges,
        "pageInfo": {
            "hasNextPage": len(ordered) > first,
            "hasPreviousPage": after is not None,
            "startCursor": edges[0]["cursor"] if edges else None,
            "endCursor": edges[-1]["cursor"] if edges else None,
        },
    }


def extensions() -> list[Callable[[ShopifyDouble], None]]:
    """The areas of the double kept in their own modules (orders and webhooks, bulk
    operations): each module's `install(double)` adds its resolvers to `double.resolvers`
    and its routes to `double.app`. Imported here, late, because they import this module."""
    from tests.support import (
        shopify_double_bulk,
        shopify_double_faults,
        shopify_double_marks,
        shopify_double_orders,
    )

    return [
        shopify_double_faults.install,
        shopify_double_bulk.install,
        shopify_double_orders.install,
        shopify_double_marks.install,
    ]


class ShopifyDouble:
    """The fake Admin API: `app` (ASGI), `shop` (state), `received` (every request)."""

    def __init__(
        self,
        token: str = TOKEN,
        version: str = shopify_schema.API_VERSION,
        capacity: float = CAPACITY,
        restore_rate: float = RESTORE_RATE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.token = token
        self.version = version
        self.schema = shopify_schema.load(version)
        self.shop = Shop()
        self.bucket = Bucket(capacity, restore_rate, clock)
        self.received: list[Received] = []
        self.lock = threading.Lock()
        self.resolvers: dict[tuple[str, str], Callable[..., Any]] = {
            ("QueryRoot", "product"): lambda _s, _i, id: self.shop.get(id, "Product"),
            ("QueryRoot", "productByIdentifier"): self._product_by_identifier,
            ("QueryRoot", "order"): lambda _s, _i, id: self.shop.get(id, "Order"),
            ("QueryRoot", "fulfillmentOrder"): lambda _s, _i, id: self.shop.get(
                id, "FulfillmentOrder"
            ),
            ("QueryRoot", "node"): lambda _s, _i, id: self.shop.objects.get(id),
            ("QueryRoot", "nodes"): lambda _s, _i, ids: [self.shop.objects.get(i) for i in ids],
            ("QueryRoot", "productVariants"): self._product_variants,
            ("QueryRoot", "orders"): self._orders,
            ("Product", "variants"): lambda p, _i, **a: _connection(p["_variants"], a),
            ("Product", "media"): self._product_media,
            ("QueryRoot", "productVariant"): lambda _s, _i, id: self.shop.get(id, "ProductVariant"),
            ("ProductVariant", "inventoryItem"): lambda v, _i: v["_item"],
            ("ProductVariant", "product"): lambda v, _i: v["_product"],
            ("InventoryItem", "inventoryLevels"): self._inventory_levels,
            ("InventoryItem", "inventoryLevel"): lambda item, _i, locationId, **_a: (
                self._level(item["id"], locationId)
                if (item["id"], locationId) in self.shop.levels
                else None
            ),
            ("QueryRoot", "inventoryItem"): lambda _s, _i, id: self.shop.get(id, "InventoryItem"),
            ("InventoryLevel", "quantities"): lambda lv, _i, names: [
                {"name": n, "quantity": self.shop.levels[lv["_key"]].get(n, 0)} for n in names
            ],
            ("Order", "lineItems"): lambda o, _i, **a: _connection(o["_lines"], a),
            ("Order", "fulfillmentOrders"): lambda o, _i, **a: _connection(
                o["_fulfillment_orders"], a
            ),
            ("FulfillmentOrder", "lineItems"): lambda fo, _i, **a: _connection(fo["_lines"], a),
            ("Order", "fulfillments"): lambda o, _i, **a: o["_fulfillments"][: a.get("first")],
            ("Mutation", "productSet"): self._product_set,
            ("Mutation", "productCreate"): self._product_create,
            ("Mutation", "productDelete"): self._product_delete,
            ("Mutation", "productVariantsBulkCreate"): self._variants_create,
            ("Mutation", "productVariantsBulkUpdate"): self._variants_update,
            ("Mutation", "productVariantsBulkDelete"): self._variants_delete,
            ("Mutation", "productUpdate"): self._product_update,
            ("Mutation", "fileDelete"): self._file_delete,
            ("Mutation", "inventoryActivate"): self._inventory_activate,
            ("Mutation", "inventorySetQuantities"): self._inventory_set,
            ("Mutation", "fulfillmentCreate"): self._fulfillment_create,
        }
        self.app = Starlette(
            routes=[Route("/admin/api/{version}/graphql.json", self._endpoint, methods=["POST"])]
        )
        for install in extensions():
            install(self)

    # --- HTTP --------------------------------------------------------------------------

    async def _endpoint(self, request: Request) -> JSONResponse:
        version = request.path_params["version"]
        token = request.headers.get("x-shopify-access-token")
        raw = await request.body()
        body: Any = None
        with self.lock:
            if token != self.token:
                status, answer, cost = 401, {"errors": UNAUTHORIZED}, None
            elif version != self.version:
                status, answer, cost = 404, {"errors": "Not Found"}, None
            else:
                try:
                    body = json.loads(raw)
                    assert isinstance(body, dict)
                except (ValueError, AssertionError):
                    status, answer, cost = 400, {"errors": "body must be a JSON object"}, None
                else:
                    status = 200
                    answer, cost = self.answer(
                        body.get("query"), body.get("variables"), body.get("operationName")
                    )
            body = body if isinstance(body, dict) else {}
            self.received.append(
                Received(
                    version,
                    token,
                    body.get("query"),
                    body.get("variables"),
                    body.get("operationName"),
                    status,
                    answer,
                    cost,
                )
            )
        return JSONResponse(answer, status_code=status)

    # --- GraphQL -----------------------------------------------------------------------

    def answer(self, query: Any, variables: Any, operation_name: Any) -> tuple[Obj, int | None]:
        """The GraphQL answer to one request and its requested cost (None: never costed)."""
        if not isinstance(query, str):
            return {"errors": [{"message": "No query string was present"}]}, None
        try:
            document = parse(query)
        except GraphQLSyntaxError as e:
            return {"errors": [e.formatted]}, None
        invalid = validate(self.schema, document)
        if invalid:
            return {"errors": [e.formatted for e in invalid]}, None
        operation = get_operation_ast(document, operation_name)
        if operation is None:
            return {"errors": [{"message": "An operation name is required"}]}, None
        coerced = get_variable_values(
            self.schema, operation.variable_definitions or (), variables or {}
        )
        if isinstance(coerced, list):
            return {"errors": [e.formatted for e in coerced]}, None
        values = coerced.coerced
        cost = requested_cost(self.schema, document, operation, values)
        self.bucket.refill()
        if cost > MAX_QUERY_COST:
            message = f"Query has cost of {cost}, which exceeds max cost of {MAX_QUERY_COST}"
            return self._costed({"errors": [_coded(message, "MAX_COST_EXCEEDED")]}, cost), cost
        if cost > self.bucket.available:
            # Shopify's throttled answer (its docs, not the schema): HTTP 200, an error with
            # extensions.code THROTTLED, no data, and the bucket in extensions.cost.
            return self._costed({"errors": [_coded("Throttled", "THROTTLED")]}, cost), cost
        self.bucket.available -= cost
        oversized = _oversized_lists(document, values)
        if oversized:
            message = (
                f"The input array size of {oversized[0]} is greater than the maximum allowed"
                f" of {MAX_INPUT_LIST}."
            )
            answer: Obj = {"errors": [_coded(message, "MAX_INPUT_SIZE_EXCEEDED")]}
            return self._costed(answer, cost, actual=cost), cost
        result = execute_sync(
            self.schema,
            document,
            variable_values=variables or {},
            operation_name=operation_name,
            field_resolver=self._resolve,
            type_resolver=lambda value, _info, _type: value["__typename"],
        )
        answer = {"data": result.data}
        if result.errors:
            answer["errors"] = [e.formatted for e in result.errors]
        return self._costed(answer, cost, actual=cost), cost

    def _costed(self, answer: Obj, requested: int, actual: int | None = None) -> Obj:
        # The shape of extensions.cost is Shopify's documented one (shopify.dev, "GraphQL
        # Admin API rate limits"); it is not part of the schema. actualQueryCost: the
        # double charges the requested cost (a real shop refunds the difference).
        answer["extensions"] = {
            "cost": {
                "requestedQueryCost": requested,
                "actualQueryCost": actual,
                "throttleStatus": self.bucket.status(),
            }
        }
        return answer

    def _resolve(self, source: Any, info: GraphQLResolveInfo[Any], **args: Any) -> Any:
        resolver = self.resolvers.get((info.parent_type.name, info.field_name))
        if resolver is not None:
            try:
                return resolver(source, info, **args)
            except UserErr as e:
                # A payload with nothing but the user error (every other field null).
                payload = get_named_type(info.return_type)
                assert isinstance(payload, GraphQLObjectType)
                return {**dict.fromkeys(payload.fields), "userErrors": [e.error]}
        if isinstance(source, dict) and info.field_name in source:
            return source[info.field_name]
        raise Unimplemented(
            f"the Shopify double does not implement {info.parent_type.name}.{info.field_name}"
        )

    # --- products ----------------------------------------------------------------------

    def _product_variants(self, _s: Any, _i: Any, **args: Any) -> Obj:
        variants = self.shop.of("ProductVariant")
        query = args.get("query")
        if query:
            skus = set()
            for term in re.split(r"\s+OR\s+", query.strip()):
                m = re.fullmatch(r"sku:(?:'([^']*)'|\"([^\"]*)\"|(\S+))", term.strip())
                if m is None:
                    raise Unimplemented(f"the Shopify double only searches variants by sku: {term}")
                skus.add(next(g for g in m.groups() if g is not None))
            variants = [v for v in variants if v["sku"] in skus]
        return _connection(variants, args)

    def _inventory_levels(self, item: Obj, _i: Any, **args: Any) -> Obj:
        levels = [self._level(iid, loc) for (iid, loc) in self.shop.levels if iid == item["id"]]
        return _connection(levels, args, key=lambda lv: lv["location"]["id"])

    def _by_handle(self, handle: str) -> Obj | None:
        return next((p for p in self.shop.of("Product") if p["handle"] == handle), None)

    def _product_by_identifier(self, _s: Any, _i: Any, identifier: Obj) -> Obj | None:
        if identifier.get("id"):
            return self.shop.get(identifier["id"], "Product")
        if identifier.get("handle"):
            return self._by_handle(identifier["handle"])
        raise Unimplemented("the Shopify double finds products by id or handle only")

    def _new_product(self, data: Obj) -> Obj:
        handle = data.get("handle")
        if not handle:
            # Made from the title, suffixed when taken (shopify.dev, productByHandle: "if
            # you had two products called Potion, then their handles would be potion and
            # potion-1").
            base = re.sub(r"[^a-z0-9]+", "-", str(data.get("title", "product")).lower())
            handle, n = base.strip("-"), 0
            while self._by_handle(handle) is not None:
                n += 1
                handle = f"{base.strip('-')}-{n}"
        product = self.shop.add("Product", _variants=[], _media=[], options=[])
        product["handle"] = handle
        product["status"] = "ACTIVE"
        return product

    def _set_product_fields(self, product: Obj, data: Obj) -> None:
        for name in ("title", "handle", "status", "vendor", "productType", "tags"):
            if name in data:
                product[name] = data[name]
        if "descriptionHtml" in data:
            product["descriptionHtml"] = data["descriptionHtml"]
        if "productOptions" in data:
            product["options"] = [
                {
                    "__typename": "ProductOption",
                    "id": self.shop.gid("ProductOption"),
                    "name": o["name"],
                    "position": o.get("position") or n,
                    "values": [v["name"] for v in o.get("values") or []],
                    "optionValues": [
                        {"id": self.shop.gid("ProductOptionValue"), "name": v["name"]}
                        for v in o.get("values") or []
                    ],
                }
                for n, o in enumerate(data["productOptions"] or [], start=1)
            ]

    def _variant(self, product: Obj, data: Obj, variant: Obj | None = None) -> Obj:
        if variant is None:
            item = self.shop.add("InventoryItem", sku=None, tracked=False)
            variant = self.shop.add(
                "ProductVariant",
                sku=None,
                price="0.00",
                compareAtPrice=None,
                barcode=None,
                inventoryPolicy="DENY",
                selectedOptions=[],
                _product=product,
                _item=item,
                _standalone=False,
            )
            item["variant"] = variant
            product["_variants"].append(variant)
        for name in ("price", "compareAtPrice", "barcode", "inventoryPolicy"):
            if name in data:
                variant[name] = data[name]
        if "optionValues" in data:
            variant["selectedOptions"] = [
                {"name": o.get("optionName"), "value": o.get("name")} for o in data["optionValues"]
            ]
        variant["title"] = " / ".join(o["value"] for o in variant["selectedOptions"]) or (
            "Default Title"
        )
        item_data = data.get("inventoryItem") or {}
        sku = data.get("sku", item_data.get("sku", variant["sku"]))
        variant["sku"] = variant["_item"]["sku"] = sku
        if "tracked" in item_data:
            variant["_item"]["tracked"] = item_data["tracked"]
        if (item_data.get("measurement") or {}).get("weight"):
            weight = item_data["measurement"]["weight"]
            variant["_item"]["measurement"] = {
                "id": self.shop.gid("InventoryItemMeasurement"),
                "weight": {"unit": weight["unit"], "value": weight["value"]},
            }
        for q in data.get("inventoryQuantities") or []:
            if self.shop.get(q["locationId"], "Location") is None:
                raise UserErr("Location does not exist", ["inventoryQuantities"])
            level = self.shop.levels.setdefault(
                (variant["_item"]["id"], q["locationId"]), {"available": 0, "on_hand": 0}
            )
            name = q.get("name", "available")
            quantity = q["quantity"] if "quantity" in q else q["availableQuantity"]
            delta = quantity - level.get(name, 0)
            level[name] = quantity
            if name == "available":
                level["on_hand"] += delta
        return variant

    def _delete_variant(self, product: Obj, variant: Obj) -> None:
        product["_variants"].remove(variant)
        item_id = variant["_item"]["id"]
        for key in [k for k in self.shop.levels if k[0] == item_id]:
            del self.shop.levels[key]
        self.shop.objects.pop(item_id, None)
        self.shop.objects.pop(variant["id"], None)

    def _product_set(self, _s: Any, _i: Any, input: Obj, **args: Any) -> Obj:
        ident = args.get("identifier") or {}
        product: Obj | None = None
        if ident.get("id"):
            product = self.shop.get(ident["id"], "Product")
            if product is None:
                raise UserErr(
                    "Product does not exist", ["identifier", "id"], "PRODUCT_DOES_NOT_EXIST"
                )
        elif ident.get("handle"):
            product = next(
                (p for p in self.shop.of("Product") if p["handle"] == ident["handle"]), None
            )
        if ident.get("customId"):
            raise Unimplemented("the Shopify double does not implement productSet by customId")
        if product is None:
            product = self._new_product(
                {**input, "handle": input.get("handle") or ident.get("handle")}
            )
        self._set_product_fields(product, input)
        if "files" in input:
            for media in product["_media"]:
                self.shop.objects.pop(media["id"], None)
            product["_media"] = [self._new_media(product, f) for f in input["files"] or []]
        if "variants" in input:
            # List fields are replaced (the mutation's description): a variant matched by id
            # or by its option values is updated, a new one created, every other deleted.
            kept: list[Obj] = []
            for data in input["variants"] or []:
                key = [(o.get("optionName"), o.get("name")) for o in data["optionValues"]]
                match = next(
                    (
                        v
                        for v in product["_variants"]
                        if v not in kept
                        and (
                            v["id"] == data.get("id")
                            or [(o["name"], o["value"]) for o in v["selectedOptions"]] == key
                        )
                    ),
                    None,
                )
                kept.append(self._variant(product, data, match))
            for variant in [v for v in product["_variants"] if v not in kept]:
                self._delete_variant(product, variant)
            product["_variants"] = kept
        return {"product": product, "productSetOperation": None, "userErrors": []}

    def _product_create(self, _s: Any, _i: Any, **args: Any) -> Obj:
        data = args.get("product")
        if data is None:
            raise Unimplemented("the Shopify double does not implement productCreate(input:)")
        handle = data.get("handle")
        if handle and self._by_handle(handle) is not None:
            # A handle given is not suffixed but refused from 2025-01 (shopify.dev changelog
            # "New validation against duplicate handles in productCreate, productUpdate, and
            # productSet mutation inputs"); Shopify's wording is a guess.
            raise UserErr(
                f"Handle '{handle}' already in use. Please provide a new handle.", ["handle"]
            )
        product = self._new_product(data)
        self._set_product_fields(product, data)
        product["_media"] = [self._new_media(product, m) for m in args.get("media") or []]
        # The standalone variant: the first value of every option (or "Default Title").
        first = [
            {"optionName": o["name"], "name": o["optionValues"][0]["name"]}
            for o in product["options"]
            if o["optionValues"]
        ]
        self._variant(product, {"optionValues": first})["_standalone"] = True
        return {"product": product, "userErrors": []}

    def _product_delete(self, _s: Any, _i: Any, input: Obj, **_a: Any) -> Obj:
        product = self.shop.get(input["id"], "Product")
        if product is None:
            raise UserErr("Product does not exist", ["id"])
        for variant in list(product["_variants"]):
            self._delete_variant(product, variant)
        del self.shop.objects[product["id"]]
        return {"deletedProductId": product["id"], "userErrors": []}

    def _variants_create(
        self, _s: Any, _i: Any, productId: str, variants: list[Obj], **args: Any
    ) -> Obj:
        product = self.shop.get(productId, "Product")
        if product is None:
            raise UserErr("Product does not exist", ["productId"], "PRODUCT_DOES_NOT_EXIST")
        if args.get("strategy") == "REMOVE_STANDALONE_VARIANT":
            for v in [v for v in product["_variants"] if v["_standalone"]]:
                self._delete_variant(product, v)
        made = [self._variant(product, data) for data in variants]
        return {"product": product, "productVariants": made, "userErrors": []}

    def _variants_update(
        self, _s: Any, _i: Any, productId: str, variants: list[Obj], **_a: Any
    ) -> Obj:
        product = self.shop.get(productId, "Product")
        if product is None:
            raise UserErr("Product does not exist", ["productId"], "PRODUCT_DOES_NOT_EXIST")
        found = []
        for n, data in enumerate(variants):
            variant = self.shop.get(data.get("id") or "", "ProductVariant")
            if variant is None or variant["_product"] is not product:
                raise UserErr(
                    "Product variant does not exist",
                    ["variants", str(n), "id"],
                    "PRODUCT_VARIANT_DOES_NOT_EXIST",
                )
            if data.get("inventoryQuantities"):
                raise UserErr(
                    "Inventory quantities can only be provided during create",
                    ["variants", str(n), "inventoryQuantities"],
                    "NO_INVENTORY_QUANTITIES_ON_VARIANTS_UPDATE",
                )
            found.append((variant, data))
        updated = [self._variant(product, data, variant) for variant, data in found]
        return {"product": product, "productVariants": updated, "userErrors": []}

    def _variants_delete(self, _s: Any, _i: Any, productId: str, variantsIds: list[str]) -> Obj:
        product = self.shop.get(productId, "Product")
        if product is None:
            raise UserErr("Product does not exist", ["productId"], "PRODUCT_DOES_NOT_EXIST")
        doomed = [v for v in product["_variants"] if v["id"] in variantsIds]
        if len(doomed) != len(set(variantsIds)):
            raise UserErr(
                "At least one variant does not belong to the product",
                ["variantsIds"],
                "AT_LEAST_ONE_VARIANT_DOES_NOT_BELONG_TO_THE_PRODUCT",
            )
        if len(doomed) == len(product["_variants"]):
            raise UserErr(
                "Cannot delete the last variant of a product",
                ["variantsIds"],
                "CANNOT_DELETE_LAST_VARIANT",
            )
        for variant in doomed:
            self._delete_variant(product, variant)
        return {"product": product, "userErrors": []}

    # --- media -------------------------------------------------------------------------

    def _new_media(self, product: Obj, data: Obj) -> Obj:
        """A MediaImage as Shopify makes it from a URL: UPLOADED, no image yet, until
        `process_media` (Shopify processes media asynchronously)."""
        return self.shop.add(
            "MediaImage",
            alt=data.get("alt"),
            status="UPLOADED",
            fileStatus="UPLOADED",
            mediaContentType=data.get("mediaContentType") or data.get("contentType") or "IMAGE",
            mediaErrors=[],
            mediaWarnings=[],
            fileErrors=[],
            image=None,
            createdAt=_now_iso(),
            updatedAt=_now_iso(),
            _source=data["originalSource"],
            _product=product,
        )

    def process_media(self, failing: str = "broken") -> None:
        """Shopify's asynchronous processing, done: every waiting media READY with its
        image on the CDN (named after the source's file), or FAILED when its source URL
        contains `failing`."""
        for media in self.shop.of("MediaImage"):
            if media["status"] not in ("UPLOADED", "PROCESSING"):
                continue
            if failing and failing in media["_source"]:
                media["status"] = "FAILED"
                media["mediaErrors"] = [
                    {
                        "code": "IMAGE_DOWNLOAD_FAILURE",
                        "details": None,
                        "message": "Download failed",
                    }
                ]
                continue
            name = media["_source"].split("?")[0].rsplit("/", 1)[-1] or "image"
            media["status"] = "READY"
            media["image"] = {
                "url": f"https://cdn.shopify.double/s/files/1/0001/files/{name}?v=1",
                "altText": media["alt"],
            }

    def _product_media(self, product: Obj, _i: Any, **args: Any) -> Obj:
        if args.get("query") or args.get("sortKey") not in (None, "POSITION"):
            raise Unimplemented("the Shopify double lists media in position order only")
        positions = {id(m): n for n, m in enumerate(product["_media"])}
        return _connection(product["_media"], args, key=lambda m: positions[id(m)])

    def _product_update(self, _s: Any, _i: Any, **args: Any) -> Obj:
        data = args.get("product")
        if data is None or args.get("input") is not None or args.get("identifier") is not None:
            raise Unimplemented("the Shopify double implements productUpdate(product: {id})")
        product = self.shop.get(data["id"], "Product")
        if product is None:
            raise UserErr("Product does not exist", ["product", "id"])
        self._set_product_fields(product, data)
        # Media given here are added to the product's (productCreateMedia's successor).
        product["_media"] += [self._new_media(product, m) for m in args.get("media") or []]
        return {"product": product, "userErrors": []}

    def _file_delete(self, _s: Any, _i: Any, fileIds: list[str]) -> Obj:
        files = [self.shop.get(i, "MediaImage") for i in fileIds]
        if any(f is None for f in files):
            raise UserErr("File does not exist", ["fileIds"], "FILE_DOES_NOT_EXIST")
        for media in files:
            assert media is not None
            media["_product"]["_media"].remove(media)
            del self.shop.objects[media["id"]]
        return {"deletedFileIds": list(fileIds), "userErrors": []}

    # --- stock -------------------------------------------------------------------------

    def _idempotency_key(self, field: str, info: GraphQLResolveInfo[Any]) -> str:
        directive = self.schema.get_directive("idempotent")
        assert directive is not None
        given = get_directive_values(directive, info.field_nodes[0], info.variable_values)
        if not given:
            # The field's description makes the key mandatory from 2026-04; GraphQL cannot,
            # so the double refuses. Shopify's own wording for this is unknown here.
            raise GraphQLError(f"{field} requires @idempotent(key:) (2026-04 on)")
        return str(given["key"])

    def _inventory_activate(self, _s: Any, info: GraphQLResolveInfo[Any], **args: Any) -> Obj:
        key = self._idempotency_key("inventoryActivate", info)
        fingerprint = json.dumps(["activate", args], sort_keys=True)
        if key in self.shop.idempotency:
            first_fingerprint, first_answer = self.shop.idempotency[key]
            if first_fingerprint == fingerprint:
                return first_answer
            raise UserErr("The same idempotency key cannot be used with different parameters")
        item, location = args["inventoryItemId"], args["locationId"]
        if self.shop.get(item, "InventoryItem") is None:
            raise UserErr("The inventory item could not be found", ["inventoryItemId"])
        if self.shop.get(location, "Location") is None:
            raise UserErr("The location could not be found", ["locationId"])
        # Already active: the level is kept as it is (whether Shopify then applies
        # `available` is not said by the schema; the connector never relies on it).
        level = self.shop.levels.get((item, location))
        if level is None:
            available = args.get("available") or 0
            on_hand = args.get("onHand")
            self.shop.levels[(item, location)] = {
                "available": available,
                "on_hand": available if on_hand is None else on_hand,
            }
        answer = {"inventoryLevel": self._level(item, location), "userErrors": []}
        self.shop.idempotency[key] = (fingerprint, answer)
        return answer

    def _level(self, item_id: str, location_id: str) -> Obj:
        return {
            "__typename": "InventoryLevel",
            "id": f"gid://shopify/InventoryLevel/{item_id.rsplit('/', 1)[1]}"
            f"?inventory_item_id={location_id.rsplit('/', 1)[1]}",
            "location": self.shop.objects[location_id],
            "_key": (item_id, location_id),
        }

    def _inventory_set(self, _s: Any, info: GraphQLResolveInfo[Any], input: Obj) -> Obj:
        key = self._idempotency_key("inventorySetQuantities", info)
        fingerprint = json.dumps(input, sort_keys=True)
        if key in self.shop.idempotency:
            first_fingerprint, first_answer = self.shop.idempotency[key]
            if first_fingerprint == fingerprint:
                return first_answer
            return {
                "inventoryAdjustmentGroup": None,
                "userErrors": [
                    {
                        "field": None,
                        "message": "The same idempotency key cannot be used with different"
                        " operation parameters.",
                        "code": "IDEMPOTENCY_KEY_PARAMETER_MISMATCH",
                    }
                ],
            }
        answer = self._inventory_apply(input)
        self.shop.idempotency[key] = (fingerprint, answer)
        return answer

    def _inventory_apply(self, input: Obj) -> Obj:
        errors: list[Obj] = []

        def error(message: str, path: list[str], code: str | None) -> None:
            errors.append({"field": path, "message": message, "code": code})

        name = input["name"]
        if name not in INVENTORY_NAMES:
            error(
                "The quantity name must be available or on_hand", ["input", "name"], "INVALID_NAME"
            )
        if input["reason"] not in INVENTORY_REASONS:
            error("The reason is not valid", ["input", "reason"], "INVALID_REASON")
        for n, q in enumerate(input["quantities"]):
            at = ["input", "quantities", str(n)]
            level = self.shop.levels.get((q["inventoryItemId"], q["locationId"]))
            if self.shop.get(q["inventoryItemId"], "InventoryItem") is None:
                error(
                    "The inventory item could not be found",
                    [*at, "inventoryItemId"],
                    "INVALID_INVENTORY_ITEM",
                )
            elif self.shop.get(q["locationId"], "Location") is None:
                error("The location could not be found", [*at, "locationId"], "INVALID_LOCATION")
            elif level is None:
                error(
                    "The item is not stocked at the location",
                    [*at, "locationId"],
                    "ITEM_NOT_STOCKED_AT_LOCATION",
                )
            elif "changeFromQuantity" not in q:
                # "Mandatory: you must explicitly pass a value, even if null" (the input's
                # description); absent and null differ only in the coerced input. Shopify's
                # own code for this is unknown: none is given.
                error(
                    "changeFromQuantity must be given (null skips the check)",
                    [*at, "changeFromQuantity"],
                    None,
                )
            elif q["changeFromQuantity"] is not None and q["changeFromQuantity"] != level.get(
                name, 0
            ):
                error(
                    "The specified compare quantity does not match the current quantity",
                    [*at, "changeFromQuantity"],
                    "CHANGE_FROM_QUANTITY_STALE",
                )
        if errors:
            return {"inventoryAdjustmentGroup": None, "userErrors": errors}
        changes = []
        for q in input["quantities"]:
            level = self.shop.levels[(q["inventoryItemId"], q["locationId"])]
            delta = q["quantity"] - level.get(name, 0)
            level[name] = q["quantity"]
            if name == "available":
                level["on_hand"] += delta
            changes.append(
                {
                    "name": name,
                    "delta": delta,
                    "quantityAfterChange": q["quantity"],
                    "item": self.shop.objects[q["inventoryItemId"]],
                    "location": self.shop.objects[q["locationId"]],
                    "ledgerDocumentUri": None,
                }
            )
        group = self.shop.add(
            "InventoryAdjustmentGroup",
            reason=input["reason"],
            referenceDocumentUri=input.get("referenceDocumentUri"),
            createdAt=_now_iso(),
            changes=changes,
        )
        return {"inventoryAdjustmentGroup": group, "userErrors": []}

    # --- orders and fulfillments -------------------------------------------------------

    def _orders(self, _s: Any, _i: Any, **args: Any) -> Obj:
        orders = self.shop.of("Order")
        for term in (args.get("query") or "").split():
            m = re.fullmatch(r"updated_at:(>=|<=|>|<)?'?([^']+)'?", term)
            if m is None:
                raise Unimplemented(f"the Shopify double filters orders by updated_at only: {term}")
            op, when = m.group(1) or "=", _parse_time(m.group(2))
            orders = [o for o in orders if COMPARE[op](_parse_time(o["updatedAt"]), when)]
        sort = args.get("sortKey") or "ID"
        fields = {"UPDATED_AT": "updatedAt", "CREATED_AT": "createdAt", "ID": None}
        if sort not in fields:
            raise Unimplemented(f"the Shopify double does not sort orders by {sort}")
        by = fields[sort]

        def key(o: Obj) -> Any:
            number = int(o["id"].rsplit("/", 1)[1])
            return number if by is None else (o[by], number)

        return _connection(orders, args, key=key)

    def _fulfillment_create(self, _s: Any, _i: Any, fulfillment: Obj, **_a: Any) -> Obj:
        groups = fulfillment["lineItemsByFulfillmentOrder"]
        plan: list[tuple[Obj, int]] = []
        fos: list[Obj] = []
        for n, group in enumerate(groups):
            at = ["fulfillment", "lineItemsByFulfillmentOrder", str(n)]
            fo = self.shop.get(group["fulfillmentOrderId"], "FulfillmentOrder")
            if fo is None or fo["status"] in ("CLOSED", "CANCELLED"):
                raise UserErr(
                    "Fulfillment order does not exist or is closed.", [*at, "fulfillmentOrderId"]
                )
            if fo["status"] not in FULFILLABLE:
                # Only OPEN and IN_PROGRESS ones offer CREATE_FULFILLMENT among their
                # supportedActions (an ON_HOLD one must be released first). Wording unverified.
                raise UserErr(
                    f"Fulfillment order {fo['id']} is {fo['status']} and cannot be fulfilled.",
                    [*at, "fulfillmentOrderId"],
                )
            fos.append(fo)
            wanted = group.get("fulfillmentOrderLineItems")
            if not wanted:
                plan += [(line, line["remainingQuantity"]) for line in fo["_lines"]]
                continue
            for m, item in enumerate(wanted):
                line = next((x for x in fo["_lines"] if x["id"] == item["id"]), None)
                if line is None or not 0 < item["quantity"] <= line["remainingQuantity"]:
                    raise UserErr(
                        "Invalid fulfillment order line item quantity requested.",
                        [*at, "fulfillmentOrderLineItems", str(m)],
                    )
                plan.append((line, item["quantity"]))
        if len({(fo["orderId"], fo["assignedLocation"]["location"]["id"]) for fo in fos}) > 1:
            raise UserErr(
                "All fulfillment orders must belong to the same order and location.",
                ["fulfillment", "lineItemsByFulfillmentOrder"],
            )
        for line, quantity in plan:
            line["remainingQuantity"] -= quantity
        stamp = _now_iso()
        for fo in fos:
            done = all(x["remainingQuantity"] == 0 for x in fo["_lines"])
            fo["status"] = "CLOSED" if done else "IN_PROGRESS"
            fo["updatedAt"] = stamp
        tracking = fulfillment.get("trackingInfo") or {}
        made = self.shop.add(
            "Fulfillment",
            status="SUCCESS",
            createdAt=stamp,
            trackingInfo=[
                {
                    "company": tracking.get("company"),
                    "number": tracking.get("number"),
                    "url": tracking.get("url"),
                }
            ]
            if tracking
            else [],
            location=fos[0]["assignedLocation"]["location"],
            _lines=[(line["sku"], quantity) for line, quantity in plan],
        )
        order = self.shop.objects[fos[0]["orderId"]]
        order["_fulfillments"].append(made)
        closed = all(fo["status"] == "CLOSED" for fo in order["_fulfillment_orders"])
        order["displayFulfillmentStatus"] = "FULFILLED" if closed else "PARTIALLY_FULFILLED"
        order["updatedAt"] = stamp
        return {"fulfillment": made, "userErrors": []}


def _coded(message: str, code: str) -> Obj:
    return {"message": message, "extensions": {"code": code}}


@dataclass
class Served:
    double: ShopifyDouble
    url: str  # e.g. http://127.0.0.1:PORT/admin/api/2026-07/graphql.json


@contextmanager
def serve(double: ShopifyDouble) -> Iterator[Served]:
    """`double` on 127.0.0.1 on a free port (uvicorn in a thread), stopped on exit."""
    port = free_port()
    config = uvicorn.Config(double.app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        yield Served(double, f"http://127.0.0.1:{port}/admin/api/{double.version}/graphql.json")
    finally:
        server.should_exit = True
        thread.join(10)
