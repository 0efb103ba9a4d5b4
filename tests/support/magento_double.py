"""A fake Magento 2 admin REST API on 127.0.0.1, checked against Adobe's OpenAPI document
(issue 19; tests/support/magento_contract.py, docs/magento-notes.md).

Every request is recorded, then checked with `check_url` (the URL as received, query
string decoded as Magento's PHP does, and the JSON body): a request the document does not
allow is answered 400 with Magento's error body (`{"message": ...}`, the violation's text)
and never executed. Every answer the double gives is checked with `check_response` before
it leaves; a wrong one is recorded (`answer_faults`) and answered 500, so a test fails
rather than the connector learning a shape Magento never sends. `ContractGap` (the
document has no success answer, e.g. POST /V1/inventory/source-items) is let through.

Modelled: `Authorization: Bearer <TOKEN>` (401 otherwise), the store prefix
`/rest/<store>`, products (simple and configurable, `configurable_product_options` and
`configurable_product_links` by child id, `POST` on an existing SKU saving over it),
`GET /V1/products` by `searchCriteria` on `sku` (`eq`, `in`; filters of one group ORed,
groups ANDed), attributes with their options (`GET /V1/products/attributes/{code}`),
child links, base prices (failures listed, empty = all done), MSI source items (set, and
read by searchCriteria), deletes. `msi = False` is a store with the Magento_Inventory
modules disabled: the `/V1/inventory/*` routes answer 404 ("Request does not match any
route.") and stock lives in each product's legacy stock item
(`extension_attributes.stock_item`, set by a product save or
`PUT /V1/products/{sku}/stockItems/{itemId}`).
`faults`: answers (status, body) given to the next requests instead of executing them (a
starlette Response as body is sent as is: a redirect, a proxy's HTML page);
`stalls`: seconds the next requests hang before a 503, unexecuted (a client timing out);
`lost`: answers given after executing a request of one operation; `refuse_names`: product
names a save is refused for (400), a store's own validation standing in. Orders and shipments:
magento_double_orders.py.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support import magento_contract as contract
from tests.support.app_servers import lend
from tests.support.magento_double_bulk import BulkMixin
from tests.support.magento_double_media import MediaMixin
from tests.support.magento_double_orders import OrdersMixin
from tests.support.magento_double_orders import _search as search_records

TOKEN = "mg-integration-token-0001"
NOT_FOUND = "The product that was requested doesn't exist. Verify the product and try again."
NO_ROUTE = "Request does not match any route."
Obj = dict[str, Any]


@dataclass
class Received:
    method: str
    url: str  # as received, query string percent-encoded
    path: str
    query: list[tuple[str, str]]
    body: Any
    authorization: str | None
    violation: str | None = None  # why the contract refused it, if it did


@dataclass
class MagentoDouble(BulkMixin, MediaMixin, OrdersMixin):
    products: dict[str, Obj] = field(default_factory=dict)  # sku -> product
    attributes: dict[str, Obj] = field(default_factory=dict)  # code -> attribute
    source_items: dict[tuple[str, str], Obj] = field(default_factory=dict)  # (sku, source)
    sources: set[str] = field(default_factory=lambda: {"default"})
    msi: bool = True  # False: MSI disabled, stock in the legacy stock items
    stores: set[int] = field(default_factory=lambda: {0, 1})  # store ids (0: admin)
    received: list[Received] = field(default_factory=list)
    answer_faults: list[str] = field(default_factory=list)
    faults: list[tuple[int, Any]] = field(default_factory=list)
    stalls: list[float] = field(default_factory=list)
    refuse_names: set[str] = field(default_factory=set)
    # (method, template, status, body): the next request of that operation is executed,
    # then answered with this instead (an answer lost on the way back: the store did the
    # work, the client saw a failure).
    lost: list[tuple[str, str, int, Any]] = field(default_factory=list)
    orders: dict[int, Obj] = field(default_factory=dict)  # entity_id -> order
    shipments: list[Obj] = field(default_factory=list)
    clock: int = 0  # seconds after 2026-11-29 12:00:00 (updated_at of changes)
    next_id: int = 1

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.app = Starlette(
            routes=[Route("/{path:path}", self._endpoint, methods=["GET", "POST", "PUT", "DELETE"])]
        )

    # ------------------------------------------------------------------ test set-up

    def add_attribute(self, code: str, attribute_id: int, labels: list[str]) -> Obj:
        """A select attribute whose option values (value_index) are attribute_id*100+n."""
        attribute = {
            "attribute_id": attribute_id,
            "attribute_code": code,
            "frontend_input": "select",
            "entity_type_id": "4",
            "is_required": False,
            "default_frontend_label": code.title(),
            "frontend_labels": [],
            "options": [{"label": " ", "value": ""}]  # Magento lists the empty choice first
            + [
                {"label": label, "value": str(attribute_id * 100 + n)}
                for n, label in enumerate(labels, 1)
            ],
        }
        self.attributes[code] = attribute
        return attribute

    def stock_item(self, sku: str) -> Obj:
        """A product's legacy stock item (a store without MSI)."""
        item: Obj = self.products[sku]["extension_attributes"]["stock_item"]
        return item

    def requests(self, method: str, template: str) -> list[Received]:
        """The requests received for one of the document's operations."""
        found = []
        for r in self.received:
            try:
                route = contract.split_route(r.path)
                if route.asynchronous:
                    continue
                if (r.method, contract.find_operation(r.method, route.path)[0]) == (
                    method,
                    template,
                ):
                    found.append(r)
            except contract.ContractViolation:
                continue
        return found

    # ---------------------------------------------------------------------- serving

    async def _endpoint(self, request: Request) -> Response:
        raw = await request.body()
        method = request.method
        path = request.url.path
        query = parse_qsl(request.url.query, keep_blank_values=True)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        received = Received(
            method, str(request.url), path, query, body, request.headers.get("authorization")
        )
        with self.lock:
            stall = self.stalls.pop(0) if self.stalls else None
        if stall is not None:
            with self.lock:
                self.received.append(received)
            await asyncio.sleep(stall)
            return JSONResponse({"message": "Service Unavailable"}, status_code=503)
        with self.lock:
            self.received.append(received)
            if received.authorization != f"Bearer {TOKEN}":
                return self._answer(
                    method,
                    path,
                    401,
                    {
                        "message": "The consumer isn't authorized to access %resources.",
                        "parameters": [{"resources": "Magento_Catalog::products"}],
                    },
                )
            if self.faults:
                status, answer = self.faults.pop(0)
                return _raw(answer, status)
            try:
                contract.check_url(method, str(request.url), body)
            except contract.ContractViolation as e:
                received.violation = str(e)
                return JSONResponse({"message": str(e)}, status_code=400)
            route = contract.split_route(path)
            template, params = contract.find_operation(method, route.path)
            status, answer = self._execute(method, template, params, query, body)
            for n, (m, t, lost_status, lost_answer) in enumerate(self.lost):
                if (m, t) == (method, template):
                    del self.lost[n]
                    return _raw(lost_answer, lost_status)
            return self._answer(method, path, status, answer, query)

    def _answer(
        self,
        method: str,
        path: str,
        status: int,
        body: Any,
        query: list[tuple[str, str]] | None = None,
    ) -> Response:
        try:
            contract.check_response(method, path, status, body, query)
        except contract.ContractGap:
            pass
        except contract.ContractViolation as e:
            self.answer_faults.append(str(e))
            return JSONResponse({"message": f"the double's answer is wrong: {e}"}, 500)
        return JSONResponse(body, status_code=status)

    # --------------------------------------------------------------------- handlers

    def _execute(
        self,
        method: str,
        template: str,
        params: dict[str, str],
        query: list[tuple[str, str]],
        body: Any,
    ) -> tuple[int, Any]:
        sales = self._orders_execute(method, template, params, query, body)
        if sales is not None:
            return sales
        sku = params.get("sku", "")
        if template.startswith("/V1/inventory/") and not self.msi:
            return 404, {"message": NO_ROUTE}
        match (method, template):
            case ("GET", "/V1/products"):
                return search_records(list(self.products.values()), query, _matches)
            case ("GET", "/V1/products/{sku}"):
                found = self.products.get(sku)
                return (200, found) if found else (404, {"message": NOT_FOUND})
            case ("POST", "/V1/products"):
                return self._save(body["product"], None)
            case ("PUT", "/V1/products/{sku}"):
                return self._save(body["product"], sku)
            case ("DELETE", "/V1/products/{sku}"):
                if self.products.pop(sku, None) is None:
                    return 404, {"message": NOT_FOUND}
                return 200, True
            case ("GET", "/V1/products/attributes/{attributeCode}"):
                attribute = self.attributes.get(params["attributeCode"])
                if attribute is None:
                    return 404, {
                        "message": 'The attribute with a "%1" attributeCode doesn\'t'
                        " exist. Verify the attribute and try again.",
                        "parameters": [{"fieldValue": params["attributeCode"]}],
                    }
                return 200, attribute
            case ("POST", "/V1/products/attributes/{attributeCode}/options"):
                return self._add_option(params["attributeCode"], body["option"])
            case ("GET", "/V1/configurable-products/{sku}/children"):
                parent = self.products.get(sku)
                if parent is None:
                    return 404, {"message": NOT_FOUND}
                ids = parent["extension_attributes"].get("configurable_product_links", [])
                return 200, [p for p in self.products.values() if p["id"] in ids]
            case ("POST", "/V1/configurable-products/{sku}/child"):
                return self._link(sku, body["childSku"])
            case ("POST", "/V1/products/base-prices"):
                return 200, self._prices(body["prices"])
            case ("POST", "/V1/inventory/source-items"):
                return self._stock(body["sourceItems"])
            case ("GET", "/V1/inventory/source-items"):
                return search_records(list(self.source_items.values()), query)
            case ("PUT", "/V1/products/{productSku}/stockItems/{itemId}"):
                return self._legacy_stock(params["productSku"], params["itemId"], body)
        return 400, {"message": f"the Magento double does not implement {method} {template}"}

    def _save(self, given: Obj, sku: str | None) -> tuple[int, Any]:
        sku = sku or given["sku"]
        if given.get("name") in self.refuse_names:
            return 400, {
                "message": 'The product "%fieldValue" cannot be saved: the store refused it.',
                "parameters": [{"fieldName": "name", "fieldValue": given["name"]}],
            }
        current = self.products.get(sku)
        extension = dict(given.get("extension_attributes") or {})
        links = extension.get("configurable_product_links")
        if links is not None:
            known = {p["id"] for p in self.products.values()}
            missing = [i for i in links if i not in known]
            if missing:
                return 400, {
                    "message": 'The product with id "%1" doesn\'t exist.',
                    "parameters": [str(missing[0])],
                }
        for option in extension.get("configurable_product_options") or []:
            if not any(
                str(a["attribute_id"]) == option["attribute_id"] for a in self.attributes.values()
            ):
                return 400, {
                    "message": "Provided attribute can not be used with configurable product."
                }
        if current is None:
            product: Obj = {
                "id": self.next_id,
                "sku": sku,
                "attribute_set_id": 4,
                "price": 0,
                "status": 1,
                "visibility": 4,
                "type_id": "simple",
                "created_at": "2026-11-29 12:00:00",
                "extension_attributes": {"website_ids": [1]},
                "custom_attributes": [],
            }
            self.next_id += 1
        else:
            product = json.loads(json.dumps(current))
        for key, value in given.items():
            if key == "extension_attributes":
                continue
            if key == "custom_attributes":
                merged = {a["attribute_code"]: a for a in product["custom_attributes"]}
                merged |= {a["attribute_code"]: a for a in value}
                product[key] = list(merged.values())
            else:
                product[key] = value
        given_stock = extension.pop("stock_item", None)
        if not self.msi:  # MSI keeps stock in source items; without it, the stock item
            item = product["extension_attributes"].get("stock_item") or _stock_item(product)
            extension["stock_item"] = item | (given_stock or {})
        product["extension_attributes"] = product["extension_attributes"] | extension
        product["sku"] = sku
        product["updated_at"] = "2026-11-29 12:00:00"
        self.products[sku] = product
        return 200, product

    def _link(self, sku: str, child_sku: str) -> tuple[int, Any]:
        parent, child = self.products.get(sku), self.products.get(child_sku)
        if parent is None or child is None:
            return 404, {"message": NOT_FOUND}
        extension = parent["extension_attributes"]
        if child["id"] in extension.get("configurable_product_links", []):
            return 400, {"message": "The product is already attached."}
        if not extension.get("configurable_product_options"):  # a simple product, say
            return 400, {"message": "The parent product doesn't have configurable product options."}
        links = extension.setdefault("configurable_product_links", [])
        values = {a["attribute_code"]: a["value"] for a in child.get("custom_attributes", [])}
        for option in extension.get("configurable_product_options", []):
            code = next(
                c
                for c, a in self.attributes.items()
                if str(a["attribute_id"]) == option["attribute_id"]
            )
            if code not in values:
                return 400, {
                    "message": 'The child product doesn\'t have the "%1" attribute'
                    " value. Verify the value and try again.",
                    "parameters": [code],
                }
            index = int(values[code])
            if all(v["value_index"] != index for v in option["values"]):
                option["values"].append({"value_index": index})
        links.append(child["id"])
        return 200, True

    def _prices(self, prices: list[Obj]) -> list[Obj]:
        failures = []
        for p in prices:
            if p["sku"] not in self.products:
                failures.append(
                    {
                        "message": "Requested product doesn't exist. SKU: %sku.",
                        "parameters": [p["sku"]],
                    }
                )
            elif p["store_id"] not in self.stores:
                failures.append(
                    {
                        "message": "Requested store is not found. Row ID: SKU = %SKU,"
                        " Store ID: %storeId.",
                        "parameters": [p["sku"], str(p["store_id"])],
                    }
                )
            elif p["price"] < 0:
                failures.append(
                    {
                        "message": "Invalid attribute %fieldName = %fieldValue.",
                        "parameters": ["Price", str(p["price"])],
                    }
                )
            else:
                self.products[p["sku"]]["price"] = p["price"]
        return failures

    def _add_option(self, code: str, option: Obj) -> tuple[int, Any]:
        attribute = self.attributes.get(code)
        if attribute is None:
            return 404, {"message": f'The attribute with a "{code}" attributeCode doesn\'t exist.'}
        choices = attribute["options"]
        if any(c["label"] == option["label"] for c in choices):
            return 400, {
                "message": f'Admin store attribute option label "{option["label"]}"'
                " is already exists."
            }
        value = attribute["attribute_id"] * 100 + len(choices)
        choices.append({"label": option["label"], "value": str(value)})
        return 200, str(value)

    def _legacy_stock(self, sku: str, item_id: str, body: Obj) -> tuple[int, Any]:
        product = self.products.get(sku)
        if product is None:
            return 404, {"message": NOT_FOUND}
        item = product["extension_attributes"]["stock_item"]
        if str(item["item_id"]) != item_id:
            return 400, {"message": "The stock item was not found."}
        given = {k: v for k, v in body["stockItem"].items() if k in ("qty", "is_in_stock")}
        item |= given
        return 200, item["item_id"]

    def _stock(self, items: list[Obj]) -> tuple[int, Any]:
        for item in items:
            if item["source_code"] not in self.sources:
                return 400, {"message": "Could not save Source Item"}
            if item["sku"] not in self.products:
                return 400, {"message": "Could not save Source Item"}
        for item in items:
            self.source_items[(item["sku"], item["source_code"])] = dict(item)
        return 200, []


def _raw(answer: Any, status: int) -> Response:
    """A fault's answer: JSON, or a Response given as is (a redirect, an HTML page)."""
    return answer if isinstance(answer, Response) else JSONResponse(answer, status_code=status)


def _stock_item(product: Obj) -> Obj:
    """A new product's legacy stock item: none on hand (Magento's default)."""
    return {
        "item_id": product["id"],
        "product_id": product["id"],
        "stock_id": 1,
        "qty": 0,
        "is_in_stock": False,
    }


def _matches(product: Obj, f: dict[str, str]) -> bool:
    # A product's fields compare as the strings a query carries (sku, type_id, ids).
    value = product.get(f["field"])
    if value is None:
        return False
    condition = f.get("conditionType", "eq")
    if condition == "in":
        return str(value) in f["value"].split(",")
    if condition == "eq":
        return str(value) == f["value"]
    raise ValueError(condition)  # answered as Magento does: 400, invalid condition type


def kept_contract(double: MagentoDouble) -> None:
    """Nothing sent to the double was refused by Adobe's document (each bulk element checked
    as its synchronous request), and nothing the double answered was outside it."""
    assert [r.violation for r in double.received if r.violation] == []
    assert double.answer_faults == []


@dataclass
class Served:
    double: MagentoDouble
    url: str  # http://127.0.0.1:PORT


@contextmanager
def serve(double: MagentoDouble) -> Iterator[Served]:
    """`double` on 127.0.0.1 (uvicorn in a thread) until exit. The server is one this
    process keeps and lends to a double at a time (tests/support/app_servers.py): starting
    and stopping one per test cost 0.2 s a test."""
    with lend(double.app) as url:
        yield Served(double, url)
