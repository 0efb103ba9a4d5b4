"""A fake SAP Business One Service Layer (`/b1s/v1`, OData v3 style) on 127.0.0.1 (issue 20).

Every request body is validated by the pydantic model b1sl-python (0.16.0, generated from
the Service Layer's metadata) has for its entity: `Document` for Orders, `Item` for Items,
`BusinessPartner` ... as JSON, strictly (a string is no number) and by SAP's field names
only (the models also accept their Python names, `num_at_card`, which B1 refuses). The
models allow extra fields (UDFs); here any extra field that is not a UDF (`U_...`), at any
depth (a DocumentLine's too), is refused as well. Query options are
checked against the same models: every `$select`, `$filter` and `$orderby` name must be a
field of the entity (or a UDF). What the double does not model is refused with a 400 (an
unknown query option, a `$filter` outside the small grammar below), so a test notices
instead of reading a silently wrong answer. Each such refusal (SAP's code -1000) is recorded
in `refused`; B1's own business refusals (-5002: an unknown item or customer) are not.

Modelled (docs/sapb1-notes.md says what only a real Service Layer confirms):
- `POST /Login` (CompanyDB, UserName, Password) -> the B1SESSION cookie and a ROUTEID
  cookie (the load balancer's stickiness); a request without both, or with an expired or
  unknown session, is 401 with SAP's code 301; `session_seconds` makes sessions expire,
  `expire_sessions()` ends them all now; `POST /Logout`;
- collections `Items`, `Orders`, `DeliveryNotes`, `BusinessPartners`, `PriceLists`,
  `Warehouses` with `$select`, `$filter`, `$orderby`; server-driven paging: 20 rows a page
  (the Service Layer's default) unless `Prefer: odata.maxpagesize=N` asks otherwise
  (`honour_prefer=False`: a server configured to ignore it), with `odata.nextLink`
  relative to the service root (`Items?...&$skip=20`);
- `$filter`: `Field op literal` (`eq ne gt ge lt le`; 'strings' with '' for a quote,
  numbers), `and`, `or`, parentheses; nothing else;
- `GET /Orders(n)`, `POST /Orders` (CardCode, DocDueDate and lines required; items and
  the customer must exist; DocEntry and DocNum assigned; answered 201 with the document);
- `POST /$batch`: multipart/mixed of GET requests (no change sets), answered
  multipart/mixed, one `application/http` part per request, in order; a part the double
  cannot model is answered 400 inside the batch and recorded in `refused` too;
- faults: `fail_next(status, ...)`, `lose_next(method)` (do the request, then answer 502);
- the clock: every change stamps UpdateDate / UpdateTime from `clock` (the B1 server's
  local time), which `tick()` moves.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

from b1sl.b1sl.models._generated.entities.businesspartners import BusinessPartner
from b1sl.b1sl.models._generated.entities.general import Document, PriceList
from b1sl.b1sl.models._generated.entities.inventory import Item, Warehouse
from b1sl.b1sl.models.base import B1Model
from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.app_servers import lend

ROOT = "/b1s/v1"
COMPANY_DB = "SBODEMOUS"
USER = "manager"
PASSWORD = "Pw-" + "9c4e1a" * 4
INVALID = -1000  # SAP's code for a request it cannot read: what `refused` records
DEFAULT_PAGE = 20  # the Service Layer's default page size (b1s.conf PageSize)
Obj = dict[str, Any]

# Entity set -> (model, key field)
ENTITIES: dict[str, tuple[type[B1Model], str]] = {
    "Items": (Item, "ItemCode"),
    "Orders": (Document, "DocEntry"),
    "DeliveryNotes": (Document, "DocEntry"),
    "BusinessPartners": (BusinessPartner, "CardCode"),
    "PriceLists": (PriceList, "PriceListNo"),
    "Warehouses": (Warehouse, "WarehouseCode"),
}
QUERY_OPTIONS = {"$select", "$filter", "$orderby", "$skip"}


class LoginBody(BaseModel):
    """The Login body as SAP's Service Layer documentation gives it (b1sl has no model)."""

    model_config = ConfigDict(extra="forbid")
    CompanyDB: str
    UserName: str
    Password: str
    Language: int | None = None


class Refusal(Exception):
    """An error answer in SAP's shape: {error: {code, message: {lang, value}}}."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def sap_error(status: int, code: int, message: str) -> JSONResponse:
    body = {"error": {"code": code, "message": {"lang": "en-us", "value": message}}}
    return JSONResponse(body, status_code=status)


# ------------------------------------------------------------------ model checks


def fields_of(model: type[B1Model]) -> set[str]:
    return {f.alias for f in model.model_fields.values() if f.alias}


def known_name(model: type[B1Model], name: str) -> bool:
    return name in fields_of(model) or bool(re.fullmatch(r"U_\w+", name))


def strict(model: type[B1Model], body: Any) -> B1Model:
    """`body` validated by `model` as the Service Layer reads JSON: by SAP's names only
    (b1sl's models also take their Python names, which B1 refuses), strict types (no "2"
    for a number, no 5 for a string), no extra field but UDFs at any depth."""
    if not isinstance(body, dict):
        raise Refusal(400, INVALID, "the body is not a JSON object")
    try:
        parsed = model.model_validate_json(
            json.dumps(body), strict=True, by_alias=True, by_name=False
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise Refusal(400, INVALID, f"{where}: {first['msg']}") from None
    extras = list(_extras(parsed, ""))
    if extras:
        raise Refusal(400, INVALID, f"Property '{extras[0]}' is invalid")
    return parsed


def _extras(value: Any, where: str) -> Iterator[str]:
    if isinstance(value, B1Model):
        for key in value.model_extra or {}:
            if not key.startswith("U_") and key != "odata.etag":
                yield f"{where}{key}"
        for name, spec in type(value).model_fields.items():
            yield from _extras(getattr(value, name), f"{where}{spec.alias or name}.")
    elif isinstance(value, list):
        for n, item in enumerate(value):
            yield from _extras(item, f"{where}{n}.")


# ---------------------------------------------------------------------- $filter

_TOKEN = re.compile(r"\s*(\(|\)|'(?:[^']|'')*'|-?\d+(?:\.\d+)?|[A-Za-z_][A-Za-z0-9_]*)")
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "gt": lambda a, b: a is not None and a > b,
    "ge": lambda a, b: a is not None and a >= b,
    "lt": lambda a, b: a is not None and a < b,
    "le": lambda a, b: a is not None and a <= b,
}


def tokens(text: str) -> list[str]:
    found, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            if text[pos:].strip() == "":
                break
            raise Refusal(400, INVALID, f"$filter: cannot read {text[pos : pos + 20]!r}")
        found.append(m.group(1))
        pos = m.end()
    return found


class Filter:
    """The subset of OData's $filter the connector sends, as a predicate on rows."""

    def __init__(self, text: str, model: type[B1Model]) -> None:
        self.model = model
        self.tokens = tokens(text)
        self.pos = 0
        self.tree = self._or()
        if self.pos != len(self.tokens):
            raise Refusal(400, INVALID, f"$filter: unexpected {self.tokens[self.pos]!r}")

    def _peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _take(self) -> str:
        token = self._peek()
        if token is None:
            raise Refusal(400, INVALID, "$filter: ends too early")
        self.pos += 1
        return token

    def _or(self) -> Any:
        terms = [self._and()]
        while self._peek() == "or":
            self._take()
            terms.append(self._and())
        return ("or", terms)

    def _and(self) -> Any:
        terms = [self._factor()]
        while self._peek() == "and":
            self._take()
            terms.append(self._factor())
        return ("and", terms)

    def _factor(self) -> Any:
        token = self._take()
        if token == "(":
            inner = self._or()
            if self._take() != ")":
                raise Refusal(400, INVALID, "$filter: missing )")
            return inner
        if not known_name(self.model, token):
            raise Refusal(
                400, INVALID, f"$filter: Property '{token}' of '{self.model.__name__}' is invalid"
            )
        op = self._take()
        if op not in _OPS:
            raise Refusal(400, INVALID, f"$filter: operator {op!r} is not supported here")
        literal = self._take()
        if literal.startswith("'"):
            value: Any = literal[1:-1].replace("''", "'")
        elif re.fullmatch(r"-?\d+(\.\d+)?", literal):
            value = float(literal) if "." in literal else int(literal)
        else:
            raise Refusal(400, INVALID, f"$filter: {literal!r} is not a literal")
        return ("cmp", token, op, value)

    def __call__(self, row: Obj) -> bool:
        return self._eval(self.tree, row)

    def _eval(self, node: Any, row: Obj) -> bool:
        kind = node[0]
        if kind == "or":
            return any(self._eval(n, row) for n in node[1])
        if kind == "and":
            return all(self._eval(n, row) for n in node[1])
        _, name, op, value = node
        have = row.get(name)
        try:
            return bool(_OPS[op](have, value))
        except TypeError:
            raise Refusal(
                400, INVALID, f"$filter: {name} cannot be compared with {value!r}"
            ) from None


# ------------------------------------------------------------------------ double


@dataclass
class Received:
    method: str
    path: str  # after ROOT, with the query
    headers: dict[str, str]
    body: Any
    status: int = 0


@dataclass
class SapB1Double:
    session_seconds: float = 30 * 60.0
    honour_prefer: bool = True
    # B1's local time, from now: the connector reads recent delivery notes only.
    clock: datetime = field(default_factory=lambda: datetime.now().replace(microsecond=0))
    items: dict[str, Obj] = field(default_factory=dict)
    orders: dict[int, Obj] = field(default_factory=dict)
    deliveries: dict[int, Obj] = field(default_factory=dict)
    partners: dict[str, Obj] = field(default_factory=dict)
    price_lists: dict[int, Obj] = field(default_factory=dict)
    warehouses: dict[str, Obj] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    logins: int = 0
    route: str = ".node2"
    _sessions: dict[str, datetime] = field(default_factory=dict)
    _faults: list[tuple[int, str]] = field(default_factory=list)
    _lost: list[tuple[str, str]] = field(default_factory=list)
    _next_entry: int = 100
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.app = Starlette(
            routes=[Route(ROOT + "/{rest:path}", self._endpoint, methods=["GET", "POST", "PATCH"])]
        )
        for number, name in ((1, "Base Price"), (2, "Wholesale")):
            self.add_price_list(number, name)
        for code in ("01", "02"):
            self.warehouses[code] = {"WarehouseCode": code, "WarehouseName": f"Warehouse {code}"}

    # ---------------------------------------------------------------- test helpers

    def tick(self, seconds: float = 1.0) -> None:
        self.clock += timedelta(seconds=seconds)

    def _stamp(self, row: Obj) -> None:
        self.tick()
        row["UpdateDate"] = self.clock.strftime("%Y-%m-%d")
        row["UpdateTime"] = self.clock.strftime("%H:%M:%S")

    def fail_next(self, *statuses: int, message: str = "") -> None:
        """Answer the next requests with these statuses, one each (SAP's error shape,
        `message` its value)."""
        self._faults.extend((s, message) for s in statuses)

    def lose_next(self, method: str, containing: str = "") -> None:
        """Do the next `method` request (whose body contains `containing`), then answer
        502 instead of its result: an answer lost on the way back."""
        self._lost.append((method.upper(), containing))

    def expire_sessions(self) -> None:
        self._sessions.clear()

    def add_price_list(self, number: int, name: str) -> None:
        row = {"PriceListNo": number, "PriceListName": name}
        strict(PriceList, row)
        self.price_lists[number] = row

    def add_item(
        self,
        code: str,
        name: str,
        prices: dict[int, float],
        stock: dict[str, float] | None = None,
        **fields: Any,
    ) -> Obj:
        """An item made in B1: prices per price list number, InStock per warehouse."""
        with self._lock:
            row: Obj = {
                "ItemCode": code,
                "ItemName": name,
                "SalesItem": "tYES",
                "InventoryItem": "tYES",
                "Valid": "tYES",
                "Frozen": "tNO",
                "ItemPrices": [
                    {"PriceList": n, "Price": prices.get(n, 0.0), "Currency": "EUR"}
                    for n in sorted(self.price_lists)
                ],
                "ItemWarehouseInfoCollection": [
                    {"WarehouseCode": w, "InStock": q, "Committed": 0.0, "Ordered": 0.0}
                    for w, q in (stock or {}).items()
                ],
                **fields,
            }
            strict(Item, row)
            self._stamp(row)
            self.items[code] = row
            return row

    def set_price(self, code: str, price_list: int, price: float) -> None:
        """A price changed in the item master data (which stamps the item)."""
        with self._lock:
            row = self.items[code]
            for p in row["ItemPrices"]:
                if p["PriceList"] == price_list:
                    p["Price"] = price
            self._stamp(row)

    def set_stock(self, code: str, warehouse: str, quantity: float, stamp: bool = True) -> None:
        with self._lock:
            row = self.items[code]
            lines = [
                w for w in row["ItemWarehouseInfoCollection"] if w["WarehouseCode"] == warehouse
            ]
            if lines:
                lines[0]["InStock"] = quantity
            else:
                row["ItemWarehouseInfoCollection"].append(
                    {"WarehouseCode": warehouse, "InStock": quantity, "Committed": 0.0}
                )
            if stamp:
                self._stamp(row)

    def add_partner(self, code: str, name: str, **fields: Any) -> Obj:
        with self._lock:
            row = {"CardCode": code, "CardName": name, "CardType": "cCustomer", **fields}
            strict(BusinessPartner, row)
            self._stamp(row)
            self.partners[code] = row
            return row

    def deliver(self, order_entry: int, tracking: str = "", close: bool = True) -> Obj:
        """A delivery note based on the order (Copy To in B1): every line, BaseType 17."""
        with self._lock:
            order = self.orders[order_entry]
            entry = self._entry()
            note: Obj = {
                "DocEntry": entry,
                "DocNum": entry,
                "CardCode": order["CardCode"],
                "NumAtCard": order.get("NumAtCard"),  # Copy To copies the header
                "TrackingNumber": tracking or None,
                "Cancelled": "tNO",
                "DocumentStatus": "bost_Open",
                "DocumentLines": [
                    {
                        "LineNum": n,
                        "ItemCode": line["ItemCode"],
                        "Quantity": line["Quantity"],
                        "BaseType": 17,
                        "BaseEntry": order_entry,
                        "BaseLine": n,
                    }
                    for n, line in enumerate(order["DocumentLines"])
                ],
            }
            strict(Document, note)
            self._stamp(note)
            self.deliveries[entry] = note
            if close:
                order["DocumentStatus"] = "bost_Close"
                self._stamp(order)
            return note

    def close_order(self, order_entry: int, cancel: bool = False) -> None:
        """The order closed by hand (Close: what is left will not be delivered), or
        cancelled (which B1 allows only while nothing was copied from it)."""
        with self._lock:
            order = self.orders[order_entry]
            order["DocumentStatus"] = "bost_Close"
            if cancel:
                order["Cancelled"] = "tYES"
            self._stamp(order)

    def calls(self) -> list[str]:
        return [f"{r.method} {r.path.split('?')[0]}" for r in self.received]

    def _entry(self) -> int:
        self._next_entry += 1
        return self._next_entry

    # -------------------------------------------------------------------- dispatch

    async def _endpoint(self, request: Request) -> Response:
        raw = await request.body()
        rest = request.path_params["rest"]
        target = rest + (f"?{request.url.query}" if request.url.query else "")
        seen = Received(
            request.method, target, dict(request.headers), raw.decode("utf-8", "replace")
        )
        with self._lock:
            self.received.append(seen)
            response = self._answer(request.method, rest, request.url.query, request, raw)
            seen.status = response.status_code
        return response

    def _answer(self, method: str, rest: str, query: str, request: Request, raw: bytes) -> Response:
        if self._faults:
            status, message = self._faults.pop(0)
            return sap_error(status, -1, message or f"fault injected ({status})")
        try:
            if rest == "Login" and method == "POST":
                return self._login(raw)
            self._session(request.cookies)
            if rest == "Logout" and method == "POST":
                self._sessions.pop(request.cookies.get("B1SESSION", ""), None)
                return Response(status_code=204)
            if rest == "$batch" and method == "POST":
                return self._batch(request.headers.get("content-type", ""), raw)
            prefer = request.headers.get("prefer", "")
            response = self._resource(method, rest, query, raw, prefer)
        except Refusal as refusal:
            if refusal.code == INVALID:  # B1's business refusals (-5002) are not the test's
                self.refused.append(f"{method} {rest}: {refusal.message}")
            return sap_error(refusal.status, refusal.code, refusal.message)
        lost = next((x for x in self._lost if x[0] == method and x[1] in raw.decode()), None)
        if lost is not None:
            self._lost.remove(lost)
            return sap_error(502, -1, "Proxy Error: the answer was lost on the way")
        return response

    def _login(self, raw: bytes) -> Response:
        try:
            body = LoginBody.model_validate_json(raw)
        except ValidationError as exc:
            self.refused.append(f"POST Login: {exc.errors()[0]['msg']}")
            return sap_error(400, INVALID, "Login body is invalid")
        if (body.CompanyDB, body.UserName, body.Password) != (COMPANY_DB, USER, PASSWORD):
            return sap_error(401, 100000027, "Login failed")
        self.logins += 1
        session = str(uuid.uuid4())
        self._sessions[session] = self.clock + timedelta(seconds=self.session_seconds)
        answer = JSONResponse(
            {
                "odata.metadata": f"{ROOT}/$metadata#B1Sessions/@Element",
                "SessionId": session,
                "Version": "1000190",
                "SessionTimeout": int(self.session_seconds // 60) or 1,
            }
        )
        answer.set_cookie("B1SESSION", session, path="/b1s/v1", httponly=True)
        answer.set_cookie("ROUTEID", self.route, path="/b1s")
        return answer

    def _session(self, cookies: dict[str, str]) -> None:
        session = cookies.get("B1SESSION", "")
        expires = self._sessions.get(session)
        if expires is None or expires <= self.clock or cookies.get("ROUTEID") != self.route:
            self._sessions.pop(session, None)
            raise Refusal(401, 301, "Invalid session or session already timeout.")

    # ------------------------------------------------------------------ resources

    def _resource(self, method: str, rest: str, query: str, raw: bytes, prefer: str) -> Response:
        m = re.fullmatch(r"(\w+)(?:\((\d+|'(?:[^']|'')*')\))?", rest)
        if m is None or m[1] not in ENTITIES:
            raise Refusal(404, -1, f"Resource not found for the segment '{rest}'")
        name, key = m[1], m[2]
        model = ENTITIES[name][0]
        options = self._options(query, model)
        rows = self._rows(name)
        if method == "GET" and key is None:
            return self._list(name, rows, options, prefer, query)
        if method == "GET":
            row = rows.get(_key(key))
            if row is None:
                raise Refusal(404, -2028, "No matching records found (ODBC -2028)")
            return JSONResponse(_selected(row, options.get("$select")))
        if options:
            raise Refusal(400, INVALID, f"query options on {method} are not modelled")
        body = _json(raw)
        if method == "POST" and key is None and name == "Orders":
            return JSONResponse(self._create_order(body), status_code=201)
        if method == "PATCH" and key is not None and name == "Items":
            return self._patch_item(_key(key), body)
        raise Refusal(405, -1, f"{method} {name} is not modelled by the double")

    def _rows(self, name: str) -> dict[Any, Obj]:
        tables: dict[str, dict[Any, Obj]] = {
            "Items": self.items,
            "Orders": self.orders,
            "DeliveryNotes": self.deliveries,
            "BusinessPartners": self.partners,
            "PriceLists": self.price_lists,
            "Warehouses": self.warehouses,
        }
        return tables[name]

    def _options(self, query: str, model: type[B1Model]) -> dict[str, str]:
        options = dict(parse_qsl(query, keep_blank_values=True))
        unknown = sorted(set(options) - QUERY_OPTIONS)
        if unknown:
            raise Refusal(400, INVALID, f"query option {unknown[0]} is not modelled")
        for option in ("$select", "$orderby"):
            for part in filter(None, (p.strip() for p in options.get(option, "").split(","))):
                name = part.split()[0]
                if not known_name(model, name) or part.split()[1:] not in ([], ["asc"]):
                    raise Refusal(400, INVALID, f"{option}: Property '{part}' is invalid")
        if "$filter" in options:
            Filter(options["$filter"], model)  # checked now, applied by _list
        return options

    def _list(
        self, name: str, rows: dict[Any, Obj], options: dict[str, str], prefer: str, query: str
    ) -> Response:
        model, key = ENTITIES[name]
        chosen = list(rows.values())
        if "$filter" in options:
            predicate = Filter(options["$filter"], model)
            chosen = [r for r in chosen if predicate(r)]
        order = [p.split()[0] for p in options.get("$orderby", "").split(",") if p.strip()]
        chosen.sort(key=lambda r: tuple(str(r.get(f) or "") for f in [*order, key]))
        size = DEFAULT_PAGE
        wanted = re.search(r"odata\.maxpagesize=(\d+)", prefer)
        if wanted and self.honour_prefer:
            size = int(wanted[1])
        skip = int(options.get("$skip", "0") or 0)
        page = chosen[skip : skip + size]
        body: Obj = {
            "odata.metadata": f"{ROOT}/$metadata#{name}",
            "value": [_selected(r, options.get("$select")) for r in page],
        }
        if skip + size < len(chosen):
            rest = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != "$skip"]
            body["odata.nextLink"] = f"{name}?" + urlencode(
                [*rest, ("$skip", str(skip + size))], quote_via=quote
            )
        headers = {"Preference-Applied": f"odata.maxpagesize={size}"} if wanted else {}
        return JSONResponse(body, headers=headers)

    def _create_order(self, body: Any) -> Obj:
        strict(Document, body)
        for required in ("CardCode", "DocDueDate", "DocumentLines"):
            if not body.get(required):
                raise Refusal(400, -5002, f"Enter {required}")
        if body["CardCode"] not in self.partners:
            raise Refusal(400, -5002, f"Invalid BP code '{body['CardCode']}'")
        for line in body["DocumentLines"]:
            if line.get("ItemCode") not in self.items:
                raise Refusal(400, -5002, f"Invalid item code '{line.get('ItemCode')}'")
            if not line.get("Quantity") or line["Quantity"] <= 0:
                raise Refusal(400, -5002, "Enter a quantity")
            if line.get("WarehouseCode") and line["WarehouseCode"] not in self.warehouses:
                raise Refusal(400, -5002, f"Invalid warehouse '{line['WarehouseCode']}'")
        entry = self._entry()
        order = copy.deepcopy(body)
        order.update(DocEntry=entry, DocNum=entry + 1000, DocumentStatus="bost_Open")
        order["Cancelled"] = "tNO"
        order["DocTotal"] = sum(
            line["Quantity"] * line.get("UnitPrice", 0) for line in order["DocumentLines"]
        )
        for n, line in enumerate(order["DocumentLines"]):
            line["LineNum"] = n
        self._stamp(order)
        self.orders[entry] = order
        return copy.deepcopy(order)

    def _patch_item(self, code: Any, body: Any) -> Response:
        strict(Item, body)
        row = self.items.get(code)
        if row is None:
            raise Refusal(404, -2028, "No matching records found (ODBC -2028)")
        row.update(copy.deepcopy(body))
        self._stamp(row)
        return Response(status_code=204)

    # ---------------------------------------------------------------------- $batch

    def _batch(self, content_type: str, raw: bytes) -> Response:
        m = re.search(r"boundary=\"?([^\";]+)\"?", content_type)
        if not content_type.startswith("multipart/mixed") or m is None:
            raise Refusal(400, INVALID, "$batch: Content-Type must be multipart/mixed; boundary=")
        boundary = m[1]
        text = raw.decode("utf-8")
        parts = text.split(f"--{boundary}")
        if len(parts) < 3 or not parts[-1].startswith("--"):
            raise Refusal(400, INVALID, "$batch: the body does not close its boundary")
        out = f"batchresponse_{uuid.uuid4()}"
        answers: list[str] = []
        for part in parts[1:-1]:
            head, _, request = part.strip("\r\n").partition("\r\n\r\n")
            if "application/http" not in head.lower():
                raise Refusal(400, INVALID, "$batch: only application/http parts are modelled")
            line = request.split("\r\n")[0]
            rm = re.fullmatch(r"GET (\S+) HTTP/1\.1", line)
            if rm is None or not rm[1].startswith(ROOT + "/"):
                raise Refusal(400, INVALID, f"$batch: only GET {ROOT}/... is modelled: {line!r}")
            path, _, query = rm[1][len(ROOT) + 1 :].partition("?")
            try:
                inner = self._resource("GET", path, query, b"", "")
            except Refusal as refusal:
                if refusal.code == INVALID:  # as outside $batch: the test must notice
                    self.refused.append(f"GET {path} (in $batch): {refusal.message}")
                inner = sap_error(refusal.status, refusal.code, refusal.message)
            body = bytes(inner.body).decode()
            answers.append(
                f"--{out}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary"
                f"\r\n\r\nHTTP/1.1 {inner.status_code} {_reason(inner.status_code)}\r\n"
                f"Content-Type: application/json;odata=minimalmetadata;charset=utf-8\r\n\r\n"
                f"{body}\r\n"
            )
        payload = "".join(answers) + f"--{out}--\r\n"
        return Response(payload, status_code=202, media_type=f"multipart/mixed;boundary={out}")


def _reason(status: int) -> str:
    return {200: "OK", 201: "Created", 400: "Bad Request", 404: "Not Found"}.get(status, "")


def _key(text: str) -> Any:
    return text[1:-1].replace("''", "'") if text.startswith("'") else int(text)


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        raise Refusal(400, INVALID, "the body is not JSON") from None


def _selected(row: Obj, select: str | None) -> Obj:
    if not select:
        return copy.deepcopy(row)
    names = [p.strip() for p in select.split(",") if p.strip()]
    return {n: copy.deepcopy(row.get(n)) for n in names}


@dataclass
class Served:
    double: SapB1Double
    url: str  # the server's address, e.g. http://127.0.0.1:PORT (the API is under ROOT)


@contextmanager
def serve(double: SapB1Double) -> Iterator[Served]:
    """`double` on 127.0.0.1 until exit (a server this process lends: app_servers.py)."""
    with lend(double.app) as url:
        yield Served(double, url)


def settings(s: Served, **extra: Any) -> Obj:
    """A sapb1 connection's settings for the served double, its password included."""
    return {
        "url": s.url,
        "company_db": COMPANY_DB,
        "username": USER,
        "password": PASSWORD,
        **extra,
    }
