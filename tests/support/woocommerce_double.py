"""A fake WooCommerce store (REST `wc/v3`) on 127.0.0.1, checked against the transcribed
contract in tests/support/woocommerce_contract (issue 19).

Every request it receives is checked with the contract's `check()` (body and query) before
anything is done: a violation is answered 400 `rest_invalid_param` with the violation's text
and recorded in `refused`; a batch of more than `BATCH_LIMIT` items in create + update +
delete is answered 413 `woocommerce_rest_request_entity_too_large`, nothing applied. Its own
answers are checked too (`product`, `variation`, `batch_response`, `error`, `paging_headers`):
a wrong answer is a bug of the double, recorded in `broken` and answered 500.

Modelled (docs/woocommerce-notes.md says what only a real store confirms):
- HTTP Basic auth with one consumer key and secret (401 otherwise);
- products (simple, variable) and variations per parent, one id sequence for both (they are
  WordPress posts); SKUs unique across products and variations (`product_invalid_sku`);
- `POST /products/batch`, `POST /products/<pid>/variations/batch`: 200 with per-item
  `{id, error}` answers in request order (a failed create has id 0); deletes forced;
- `GET /products?sku=`, `GET /products/<pid>/variations?sku=`, `per_page` / `page` with
  `X-WP-Total`, `X-WP-TotalPages` and `Link`;
- `DELETE` with `force=true` deletes; without it a product goes to the trash, keeping its SKU;
- `fail_next(status, ...)`: answer the next requests with 429 / 503 (a fault injector);
  `lose_next(status, method)`: do the next request of that method, then answer `status`
  instead of its result (an answer lost on the way back); `stall_next(seconds)`: hold the
  next request that long before doing it (a client's timeout, the write done after it);
- images by URL: the media library (`media`, attachment id -> {id, src, name, alt,
  source}); a product's `images` written as `{id}` (an existing attachment, else 400
  `woocommerce_product_invalid_image_id`) or `{src}` ("downloaded": a new attachment whose
  `src` is under the store's uploads, `name` the file's basename, the source URL kept as
  `source`; a URL with `/missing/` in its path fails the whole request with 400
  `woocommerce_product_image_upload_error`, nothing applied), `name` / `alt` set on the
  attachment when non-empty; the list replaces the product's; `add_product`, `images_of`;
- orders: `add_order` / `touch` (each stamps `date_modified_gmt` from `clock`), `GET /orders`
  with `status`, `modified_after` / `modified_before` (compared with date_modified_gmt when
  `dates_are_gmt` is true, else with the site-local date_modified, `site_offset` hours
  ahead), `orderby=modified`, `order`, paging; `GET` / `PUT /orders/<id>` (status);
  `GET /orders/<id>/notes?type=` and `POST` (customer notes);
- webhooks: `subscribe(topic, url, secret)`; `add_order` / `touch` deliver order.created /
  order.updated to the subscribers as WooCommerce does (JSON body, X-WC-Webhook-* headers,
  the signature), `ping(url)` the unsigned ping; each delivery's headers are checked against
  `webhook_headers`, the answers recorded in `delivered`. Changes made through the API
  (PUT) deliver nothing: tests call `touch` for that.

Serve it with `serve(double)` (uvicorn in a thread on 127.0.0.1, a server the process keeps
and lends: tests/support/app_servers.py).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support import woocommerce_contract as contract
from tests.support.app_servers import lend

PREFIX = "/wp-json/wc/v3"
CONSUMER_KEY = "ck_" + "3f9a1c" * 6 + "ab"
CONSUMER_SECRET = "cs_" + "7b2e4d" * 6 + "cd"
Obj = dict[str, Any]


class Refusal(Exception):
    """An error answer: `{code, message, data: {status}}`."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class Received:
    method: str
    path: str  # without PREFIX
    query: dict[str, str]
    body: Any
    authorized: bool
    status: int = 0  # the status answered


@dataclass
class WooCommerceDouble:
    key: str = CONSUMER_KEY
    secret: str = CONSUMER_SECRET
    batch_limit: int = contract.BATCH_LIMIT
    products: dict[int, Obj] = field(default_factory=dict)
    variations: dict[int, Obj] = field(default_factory=dict)  # id -> variation (with parent)
    received: list[Received] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # contract violations of requests
    broken: list[str] = field(default_factory=list)  # contract violations of own answers
    orders: dict[int, Obj] = field(default_factory=dict)
    notes: dict[int, list[Obj]] = field(default_factory=dict)  # order id -> its notes
    clock: datetime = field(default_factory=lambda: datetime(2026, 11, 2, 9, 0, tzinfo=UTC))
    site_offset: int = 2  # hours the site's timezone is ahead of UTC
    hooks: list[tuple[str, str, str]] = field(default_factory=list)  # topic, url, secret
    delivered: list[Delivered] = field(default_factory=list)
    media: dict[int, Obj] = field(default_factory=dict)  # attachment id -> attachment
    _faults: list[int] = field(default_factory=list)
    _lost: list[tuple[int, str]] = field(default_factory=list)  # (status, method)
    _stalls: list[float] = field(default_factory=list)
    currency: str = "EUR"  # the store's, on every order
    # A store that lies about paging: X-WP-TotalPages (and X-WP-Total, that many full
    # pages) say this; with `pages_repeat` it also answers page 1 whatever page is asked
    # (a cache or plugin that drops the query's `page`).
    pages_lie: int | None = None
    pages_repeat: bool = False
    first_id: int = 100  # ids (products, orders …) count up from here
    _next_id: int = 100
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._next_id = self.first_id
        p = PREFIX
        self.app = Starlette(
            routes=[
                Route(f"{p}/products", self._endpoint, methods=["GET", "POST"]),
                Route(f"{p}/products/batch", self._endpoint, methods=["POST"]),
                Route(
                    f"{p}/products/{{pid:int}}", self._endpoint, methods=["GET", "PUT", "DELETE"]
                ),
                Route(
                    f"{p}/products/{{pid:int}}/variations", self._endpoint, methods=["GET", "POST"]
                ),
                Route(
                    f"{p}/products/{{pid:int}}/variations/batch", self._endpoint, methods=["POST"]
                ),
                Route(
                    f"{p}/products/{{pid:int}}/variations/{{vid:int}}",
                    self._endpoint,
                    methods=["GET", "PUT", "DELETE"],
                ),
                Route(f"{p}/orders", self._endpoint, methods=["GET"]),
                Route(f"{p}/orders/{{oid:int}}", self._endpoint, methods=["GET", "PUT"]),
                Route(f"{p}/orders/{{oid:int}}/notes", self._endpoint, methods=["GET", "POST"]),
            ]
        )

    # ------------------------------------------------------------------ test helpers

    def fail_next(self, *statuses: int) -> None:
        """Answer the next requests with these statuses (429, 503 ...), one each."""
        self._faults.extend(statuses)

    def lose_next(self, status: int, method: str) -> None:
        """Do the next `method` request, then answer `status` instead of its result."""
        self._lost.append((status, method.upper()))

    @property
    def lock(self) -> threading.Lock:
        """Held while a request is answered: hold it to read the store consistently."""
        return self._lock

    def trash(self, pid: int) -> None:
        """Move a product to the trash, as the admin's "Move to Trash" (it keeps its SKU)."""
        self.products[pid]["status"] = "trash"

    def stall_next(self, seconds: float) -> None:
        """Hold the next request `seconds` before doing it (and answering)."""
        self._stalls.append(seconds)

    def add_product(self, sku: str, images: list[str] | None = None) -> int:
        """A simple product made in the store's admin, with images from these URLs."""
        with self._lock:
            body: Obj = {"sku": sku, "name": sku}
            if images:
                body["images"] = [{"src": u} for u in images]
            return int(self._create(body)["id"])

    def images_of(self, pid: int) -> list[Obj]:
        """The product's images in order, each its attachment (with its `source` URL)."""
        return [dict(self.media[i]) for i in self.products[pid]["_images"]]

    def skus(self) -> dict[str, int]:
        """Every SKU in the store (products, trashed ones included, and variations) -> id."""
        found = {p["sku"]: i for i, p in self.products.items() if p["sku"]}
        return found | {v["sku"]: i for i, v in self.variations.items() if v["sku"]}

    def children(self, pid: int) -> list[Obj]:
        return [v for v in self.variations.values() if v["parent_id"] == pid]

    def calls(self) -> list[str]:
        """Every request received, in order, as "METHOD /path"."""
        return [f"{r.method} {r.path}" for r in self.received]

    # ---------------------------------------------------------------------- dispatch

    async def _endpoint(self, request: Request) -> Response:
        raw = await request.body()
        if self._stalls:
            await asyncio.sleep(self._stalls.pop(0))
        path = request.url.path.removeprefix(PREFIX)
        query = dict(request.query_params)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        seen = Received(request.method, path, query, body, self._authorized(request))
        with self._lock:
            self.received.append(seen)
            response = self._answer(seen, request.path_params)
        seen.status = response.status_code
        return response

    def _authorized(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            key, _, secret = base64.b64decode(value).decode().partition(":")
        except ValueError:
            return False
        return (key, secret) == (self.key, self.secret)

    def _answer(self, seen: Received, ids: dict[str, int]) -> Response:
        try:
            if self._faults:
                status = self._faults.pop(0)
                raise Refusal(status, "stockyard_double_fault", f"injected HTTP {status}")
            if not seen.authorized:
                raise Refusal(
                    401, "woocommerce_rest_authentication_error", "Consumer key is invalid."
                )
            content, headers = self._route(seen, ids)
            lost = next((x for x in self._lost if x[1] == seen.method), None)
            if lost is not None:
                self._lost.remove(lost)
                raise Refusal(lost[0], "stockyard_double_lost", "the answer was lost")
            kind = "batch_response" if seen.path.endswith("/batch") else None
            if kind is not None:
                self._own(kind, content)
            if headers:
                self._own("paging_headers", headers)
            return JSONResponse(
                content, status_code=201 if _created(seen) else 200, headers=headers
            )
        except Refusal as r:
            error = _error(r.status, r.code, r.message)
            self._own("error", error)
            return JSONResponse(error, status_code=r.status)
        except _Broken as b:
            return JSONResponse(_error(500, "stockyard_double_broken", str(b)), status_code=500)

    def _check(self, kind: str, payload: Any) -> None:
        try:
            contract.check(kind, payload)
        except contract.ContractViolation as exc:
            self.refused.append(str(exc))
            raise Refusal(400, "rest_invalid_param", str(exc)) from None

    def _own(self, kind: str, payload: Any) -> None:
        try:
            contract.check(kind, payload)
        except contract.ContractViolation as exc:
            self.broken.append(str(exc))
            raise _Broken(str(exc)) from None

    def _route(self, seen: Received, ids: dict[str, int]) -> tuple[Any, dict[str, str]]:
        m, body, q = seen.method, seen.body, seen.query
        if seen.path.startswith("/orders"):
            return self._orders_route(seen, ids.get("oid"))
        pid, vid = ids.get("pid"), ids.get("vid")
        variations = "/variations" in seen.path
        if seen.path.endswith("/batch"):
            kind = "batch_variations" if variations else "batch_products"
            if isinstance(body, dict):
                total = sum(len(body.get(k) or []) for k in ("create", "update", "delete"))
                if total > self.batch_limit:
                    raise Refusal(
                        contract.BATCH_TOO_LARGE_STATUS,
                        contract.BATCH_TOO_LARGE_CODE,
                        f"Unable to accept more than {self.batch_limit} items for this request.",
                    )
            self._check(kind, body)
            return self._batch(body, pid), {}
        if m == "GET" and vid is None and (pid is None or variations):
            self._check("variation_list_query" if variations else "product_list_query", q)
            rows = self._children_of(pid) if variations else list(self.products.values())
            rows = [r for r in rows if r["status"] != "trash"]
            if "sku" in q:
                wanted = set(q["sku"].split(","))
                rows = [r for r in rows if r["sku"] in wanted]
            return self._page(seen.path, rows, q, "variation" if variations else "product")
        if m == "POST":
            self._check("variation_write" if variations else "product_write", body)
            return (self._create_variation(pid, body) if variations else self._create(body)), {}
        if m == "GET":
            return self._shown(self._variation(pid, vid) if variations else self._product(pid)), {}
        if m == "PUT":
            self._check("variation_write" if variations else "product_write", body)
            row = self._variation(pid, vid) if variations else self._product(pid)
            return self._update(row, body), {}
        if m == "DELETE":
            force = q.get("force", "false")
            if force not in ("true", "false", "1", "0") or set(q) - {"force"}:
                self._refuse_query(q)
            row = self._variation(pid, vid) if variations else self._product(pid)
            return self._delete(row, force in ("true", "1")), {}
        raise Refusal(
            404, "rest_no_route", "No route was found matching the URL and request method."
        )

    def _refuse_query(self, q: dict[str, str]) -> None:
        text = f"DELETE takes only force=true|false, got {sorted(q)}"
        self.refused.append(text)
        raise Refusal(400, "rest_invalid_param", text)

    # ------------------------------------------------------------------------ store

    def _id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _product(self, pid: int | None) -> Obj:
        row = self.products.get(pid or 0)
        if row is None:
            raise Refusal(404, "woocommerce_rest_product_invalid_id", "Invalid ID.")
        return row

    def _variation(self, pid: int | None, vid: int | None) -> Obj:
        row = self.variations.get(vid or 0)
        if row is None or row["parent_id"] != pid:
            raise Refusal(404, "woocommerce_rest_product_variation_invalid_id", "Invalid ID.")
        return row

    def _children_of(self, pid: int | None) -> list[Obj]:
        parent = self._product(pid)
        return self.children(parent["id"])

    def _sku_free(self, sku: str, own: int | None = None) -> None:
        holder = self.skus().get(sku)
        if sku and holder is not None and holder != own:
            raise Refusal(400, "product_invalid_sku", "Invalid or duplicated SKU.")

    def _create(self, body: Obj) -> Obj:
        self._sku_free(body.get("sku", ""))
        row: Obj = {
            "id": self._id(),
            "name": "Product",
            "type": "simple",
            "status": "publish",
            "sku": "",
            "regular_price": "",
            "sale_price": "",
            "manage_stock": False,
            "stock_quantity": None,
            "stock_status": "instock",
            "parent_id": 0,
            "attributes": [],
            "_images": [],
        }
        self.products[row["id"]] = self._apply(row, body)
        return self._shown(row)

    def _create_variation(self, pid: int | None, body: Obj) -> Obj:
        parent = self._product(pid)
        if parent["type"] != "variable":
            raise Refusal(
                400, "woocommerce_rest_invalid_product_id", "The product is not variable."
            )
        self._sku_free(body.get("sku", ""))
        row: Obj = {
            "id": self._id(),
            "parent_id": parent["id"],
            "status": "publish",
            "sku": "",
            "regular_price": "",
            "sale_price": "",
            "manage_stock": False,
            "stock_quantity": None,
            "stock_status": "instock",
            "attributes": [],
            "image": None,
        }
        self.variations[row["id"]] = self._apply(row, body)
        return self._shown(row)

    def _update(self, row: Obj, body: Obj) -> Obj:
        if "sku" in body:
            self._sku_free(body["sku"], row["id"])
        self._apply(row, body)
        return self._shown(row)

    def _apply(self, row: Obj, body: Obj) -> Obj:
        if "images" in body:  # first: a download that fails leaves the product as it was
            row["_images"] = self._attach(body["images"])
        for name, value in body.items():
            if name == "images":
                continue
            elif name == "attributes" and "parent_id" in row and row.get("parent_id"):
                row["attributes"] = [
                    {"id": a.get("id", 0), "name": a.get("name", ""), "option": a.get("option", "")}
                    for a in value
                ]
            elif name == "attributes":
                row["attributes"] = [
                    {
                        "id": a.get("id", 0),
                        "name": a.get("name", ""),
                        "variation": a.get("variation", False),
                        "visible": a.get("visible", False),
                        "options": list(a.get("options", [])),
                    }
                    for a in value
                ]
            else:
                row[name] = value
        row["date_modified_gmt"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
        return row

    def _attach(self, images: list[Obj]) -> list[int]:
        """Attachment ids for a product's new `images` list, as WooCommerce's
        set_product_images does: an id is reused, a src downloaded (a new attachment each
        time), then name and alt set when given. A failure leaves no new attachment."""
        for image in images:
            if "id" not in image and "/missing/" in image["src"]:
                raise Refusal(
                    400,
                    "woocommerce_product_image_upload_error",
                    f"Error getting remote image {image['src']}. Error: Not Found",
                )
            if "id" in image and image["id"] not in self.media:
                raise Refusal(
                    400,
                    "woocommerce_product_invalid_image_id",
                    f"#{image['id']} is an invalid image ID.",
                )
        ids = []
        for image in images:
            attachment = self.media[image["id"]] if "id" in image else self._download(image["src"])
            for key in ("name", "alt"):
                if image.get(key):
                    attachment[key] = image[key]
            ids.append(attachment["id"])
        return ids

    def _download(self, src: str) -> Obj:
        base = src.split("?")[0].rstrip("/").rsplit("/", 1)[-1] or "image"
        stem, dot, ext = base.rpartition(".")
        taken = {m["src"].rsplit("/", 1)[-1] for m in self.media.values()}
        name, n = base, 0
        while name in taken:  # wp_unique_filename: -1, -2 … before the extension
            n += 1
            name = f"{stem}-{n}{dot}{ext}" if dot else f"{base}-{n}"
        attachment: Obj = {
            "id": self._id(),
            "src": f"https://shop.example/wp-content/uploads/2026/11/{name}",
            "name": name,
            "alt": "",
            "source": src,
        }
        self.media[attachment["id"]] = attachment
        return attachment

    def _delete(self, row: Obj, force: bool) -> Obj:
        shown = self._shown(row)
        if row["id"] in self.variations:
            if not force:
                raise Refusal(
                    501, "woocommerce_rest_trash_not_supported", "Variations cannot be trashed."
                )
            del self.variations[row["id"]]
        elif force:
            for child in self.children(row["id"]):
                del self.variations[child["id"]]
            del self.products[row["id"]]
        else:
            row["status"] = "trash"  # keeps its SKU
        return shown

    def _shown(self, row: Obj) -> Obj:
        out = {k: v for k, v in row.items() if not k.startswith("_")}
        out["price"] = row["sale_price"] or row["regular_price"]
        if row["id"] in self.variations:
            out.pop("parent_id")
            self._own("variation", out)
        else:
            out["variations"] = [v["id"] for v in self.children(row["id"])]
            out["images"] = [
                {k: self.media[i][k] for k in ("id", "src", "name", "alt")} for i in row["_images"]
            ]
            self._own("product", out)
        return out

    def _batch(self, body: Obj, pid: int | None) -> Obj:
        variations = pid is not None
        if variations:
            self._product(pid)
        answer: Obj = {}
        for action in ("create", "update", "delete"):
            items = body.get(action)
            if not items:
                continue
            out = answer[action] = []
            for item in items:
                try:
                    if action == "create":
                        made = (
                            self._create_variation(pid, item) if variations else self._create(item)
                        )
                        out.append(made)
                    elif action == "update":
                        fields = {k: v for k, v in item.items() if k != "id"}
                        row = (
                            self._variation(pid, item["id"])
                            if variations
                            else self._product(item["id"])
                        )
                        out.append(self._update(row, fields))
                    else:
                        row = self._variation(pid, item) if variations else self._product(item)
                        out.append(self._delete(row, force=True))
                except Refusal as r:
                    failed = item.get("id", 0) if isinstance(item, dict) else item
                    out.append({"id": failed, "error": _error(r.status, r.code, r.message)})
        return answer

    def _page(
        self, path: str, rows: list[Obj], q: dict[str, str], kind: str
    ) -> tuple[list[Obj], dict[str, str]]:
        per_page, page = int(q.get("per_page", "10")), int(q.get("page", "1"))
        pages = max(1, math.ceil(len(rows) / per_page)) if rows else 0
        shown_page = 1 if self.pages_repeat else page
        chosen = rows[(shown_page - 1) * per_page : shown_page * per_page]
        total = len(rows)
        if self.pages_lie is not None:
            pages, total = self.pages_lie, self.pages_lie * per_page
        headers = {"X-WP-Total": str(total), "X-WP-TotalPages": str(pages)}
        links = []
        base = f"{PREFIX}{path}"
        if page < pages:
            links.append(f'<{base}?page={page + 1}&per_page={per_page}>; rel="next"')
        if page > 1:
            links.append(f'<{base}?page={page - 1}&per_page={per_page}>; rel="prev"')
        if links:
            headers["Link"] = ", ".join(links)
        return [self._shown(r) for r in chosen], headers

    # ----------------------------------------------------------------------- orders

    def tick(self, seconds: float = 1) -> datetime:
        self.clock += timedelta(seconds=seconds)
        return self.clock

    def add_order(
        self,
        lines: list[tuple[str, int, str]],
        status: str = "processing",
        shipping: str = "0.00",
        tax_rate: str = "0",
        prices_include_tax: bool = False,
        customer_id: int = 0,
        email: str = "ana@example.com",
    ) -> Obj:
        """An order of (sku, quantity, net unit price) lines, totals as WooCommerce keeps
        them (line and shipping totals without tax, tax apart), then order.created."""
        rate = Decimal(tax_rate)
        oid = self._id()
        items: list[Obj] = []
        for n, (sku, quantity, unit) in enumerate(lines, 1):
            total = Decimal(unit) * quantity
            tax = (total * rate).quantize(Decimal("0.01"))
            items.append(
                {
                    "id": oid * 100 + n,
                    "name": f"Product {sku}",
                    "product_id": 1,
                    "variation_id": 0,
                    "quantity": quantity,
                    "tax_class": "",
                    "subtotal": f"{total:.2f}",
                    "subtotal_tax": f"{tax:.2f}",
                    "total": f"{total:.2f}",
                    "total_tax": f"{tax:.2f}",
                    "taxes": [],
                    "meta_data": [],
                    "sku": sku,
                    "price": float(Decimal(unit)),
                }
            )
        ship_tax = (Decimal(shipping) * rate).quantize(Decimal("0.01"))
        cart_tax = sum((Decimal(i["total_tax"]) for i in items), Decimal(0))
        net = sum((Decimal(i["total"]) for i in items), Decimal(0)) + Decimal(shipping)
        address = {
            "first_name": "Ana",
            "last_name": "Lima",
            "company": "",
            "address_1": "Rua Augusta 1",
            "address_2": "",
            "city": "Lisboa",
            "state": "",
            "postcode": "1100-048",
            "country": "PT",
            "phone": "+351 210 000 000",
        }
        order: Obj = {
            "id": oid,
            "parent_id": 0,
            "number": str(oid),
            "status": status,
            "currency": self.currency,
            "date_created_gmt": _wc(self.clock),
            "prices_include_tax": prices_include_tax,
            "customer_id": customer_id,
            "customer_note": "",
            "billing": address | {"email": email},
            "shipping": dict(address),
            "discount_total": "0.00",
            "discount_tax": "0.00",
            "shipping_total": f"{Decimal(shipping):.2f}",
            "shipping_tax": f"{ship_tax:.2f}",
            "cart_tax": f"{cart_tax:.2f}",
            "total_tax": f"{cart_tax + ship_tax:.2f}",
            "total": f"{net + cart_tax + ship_tax:.2f}",
            "line_items": items,
            "tax_lines": [],
            "shipping_lines": [],
            "fee_lines": [],
            "coupon_lines": [],
            "refunds": [],
            "meta_data": [],
        }
        self.orders[oid] = order
        self._stamp(order)
        self.notes[oid] = []
        self._deliver("order.created", order)
        return order

    def touch(self, oid: int, **changes: Any) -> Obj:
        """Change an order as the merchant would (a new date_modified), then order.updated."""
        order = self.orders[oid]
        order.update(changes)
        self._stamp(order)
        self._deliver("order.updated", order)
        return order

    def _stamp(self, order: Obj) -> None:
        order["date_modified_gmt"] = _wc(self.clock)
        order["date_modified"] = _wc(self.clock + timedelta(hours=self.site_offset))
        order["date_created"] = order["date_created_gmt"]

    def customer_notes(self, oid: int) -> list[str]:
        return [n["note"] for n in self.notes[oid] if n["customer_note"]]

    def _orders_route(self, seen: Received, oid: int | None) -> tuple[Any, dict[str, str]]:
        m, q = seen.method, seen.query
        if oid is None:
            self._check("order_list_query", q)
            rows = list(self.orders.values())
            if "status" in q and q["status"] != "any":
                rows = [o for o in rows if o["status"] in q["status"].split(",")]
            gmt = q.get("dates_are_gmt") in ("true", "1")
            field_name = "date_modified_gmt" if gmt else "date_modified"
            if "modified_after" in q:
                rows = [o for o in rows if o[field_name] > q["modified_after"][:19]]
            if "modified_before" in q:
                rows = [o for o in rows if o[field_name] < q["modified_before"][:19]]
            key = "date_modified_gmt" if q.get("orderby") == "modified" else "id"
            rows.sort(key=lambda o: (o[key], o["id"]), reverse=q.get("order", "desc") == "desc")
            return self._order_page(seen.path, rows, q)
        order = self.orders.get(oid)
        if order is None:
            raise Refusal(404, "woocommerce_rest_shop_order_invalid_id", "Invalid ID.")
        if seen.path.endswith("/notes"):
            if m == "POST":
                self._check("order_note_write", seen.body)
                note = {
                    "id": self._id(),
                    "author": "WooCommerce",
                    "date_created_gmt": _wc(self.clock),
                    "note": seen.body["note"],
                    "customer_note": bool(seen.body.get("customer_note", False)),
                }
                self.notes[oid].append(note)
                return note, {}
            if set(q) - {"type"} or q.get("type", "any") not in ("any", "customer", "internal"):
                text = f"GET notes takes only type=any|customer|internal, got {q}"
                self.refused.append(text)
                raise Refusal(400, "rest_invalid_param", text)
            kind = q.get("type", "any")
            return [
                n
                for n in self.notes[oid]
                if kind == "any" or n["customer_note"] == (kind == "customer")
            ], {}
        if m == "PUT":
            self._check("order_update", seen.body)
            order.update(seen.body)
            self._stamp(order)
        self._own("order", order)
        return order, {}

    def _order_page(
        self, path: str, rows: list[Obj], q: dict[str, str]
    ) -> tuple[list[Obj], dict[str, str]]:
        per_page, page = int(q.get("per_page", "10")), int(q.get("page", "1"))
        pages = math.ceil(len(rows) / per_page)
        chosen = rows[(page - 1) * per_page : page * per_page]
        for o in chosen:
            self._own("order", o)
        return [dict(o) for o in chosen], {
            "X-WP-Total": str(len(rows)),
            "X-WP-TotalPages": str(pages),
        }

    # --------------------------------------------------------------------- webhooks

    def subscribe(self, topic: str, url: str, secret: str) -> None:
        self.hooks.append((topic, url, secret))

    def _deliver(self, topic: str, order: Obj) -> None:
        for subscribed, url, secret in self.hooks:
            if subscribed == topic:
                self.post_webhook(url, topic, json.dumps(order).encode(), secret)

    def post_webhook(self, url: str, topic: str, body: bytes, secret: str) -> Delivered:
        """POST `body` to `url` as WooCommerce delivers a webhook, signed with `secret`."""
        resource, _, event = topic.partition(".")
        mac = hmac.new(secret.encode(), body, hashlib.sha256).digest()
        headers = {
            "Content-Type": "application/json",
            "X-WC-Webhook-Source": "https://shop.example/",
            "X-WC-Webhook-Topic": topic,
            "X-WC-Webhook-Resource": resource,
            "X-WC-Webhook-Event": event,
            "X-WC-Webhook-Signature": base64.b64encode(mac).decode(),
            "X-WC-Webhook-ID": "7",
            "X-WC-Webhook-Delivery-ID": f"{len(self.delivered) + 1:032x}",
        }
        self._own("webhook_headers", headers)
        return self._post(url, body, headers)

    def ping(self, url: str, webhook_id: int = 7) -> Delivered:
        """The ping WooCommerce posts when a webhook is saved: unsigned, a form body."""
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        return self._post(url, f"webhook_id={webhook_id}".encode(), headers)

    def _post(self, url: str, body: bytes, headers: dict[str, str]) -> Delivered:
        answer = httpx.post(url, content=body, headers=headers, timeout=30)
        out = Delivered(url, body, headers, answer.status_code, answer.text)
        self.delivered.append(out)
        return out


@dataclass
class Delivered:
    url: str
    body: bytes
    headers: dict[str, str]
    status: int
    answer: str


def _wc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


class _Broken(Exception):
    """The double's own answer broke the contract."""


def _created(seen: Received) -> bool:
    return seen.method == "POST" and not seen.path.endswith("/batch")


def _error(status: int, code: str, message: str) -> Obj:
    return {"code": code, "message": message, "data": {"status": status}}


@dataclass
class Served:
    double: WooCommerceDouble
    url: str  # the store's address, e.g. http://127.0.0.1:PORT (the API is under PREFIX)


@contextmanager
def serve(double: WooCommerceDouble) -> Iterator[Served]:
    """`double` on 127.0.0.1 (uvicorn in a thread) until exit. The server is one this
    process keeps and lends to a double at a time (tests/support/app_servers.py): starting
    and stopping one per test cost 0.2 s a test."""
    with lend(double.app) as url:
        yield Served(double, url)
