"""A real HTTP server on 127.0.0.1 that implements the `http` connector's contract
(docs/connectors.md) in memory: a shop (channel), an ERP (source) and a warehouse
(fulfillment service) at once. It records every request, and can be told to fail."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    headers: dict[str, str]


@dataclass
class State:
    products: dict[str, dict[str, Any]] = field(default_factory=dict)
    source_products: list[dict[str, Any]] = field(default_factory=list)
    orders: list[dict[str, Any]] = field(default_factory=list)
    created_orders: dict[str, dict[str, Any]] = field(default_factory=dict)  # by idem. key
    fulfillments: dict[str, dict[str, Any]] = field(default_factory=dict)
    pushed_fulfillments: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    reject_skus: dict[str, str] = field(default_factory=dict)  # sku -> error message
    fail_status: int | None = None  # answer every request with this status
    fail_times: int = 0  # ... this many times (0: until cleared)
    hmac_secret: str | None = None
    # Headers an injected failure's error text repeats back (a remote that echoes requests).
    echo_headers: list[str] = field(default_factory=list)


class Remote:
    def __init__(self) -> None:
        self.state = State()
        self.calls: list[Call] = []
        self.lock = threading.Lock()
        self._ids = itertools.count(1)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        # A short poll: shutdown() waits for it (0.5 s by default, at every test's end).
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def next_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids)}"

    def fail(self, status: int | None, times: int = 0) -> None:
        with self.lock:
            self.state.fail_status, self.state.fail_times = status, times

    def writes(self) -> list[Call]:
        """The calls that changed something."""
        return [c for c in self.calls if c.method != "GET"]

    def clear_calls(self) -> None:
        with self.lock:
            self.calls.clear()

    def product_by_code(self, code: str) -> dict[str, Any]:
        return next(p for p in self.state.products.values() if p.get("code") == code)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        remote = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    self._answer(400, {"error": "body is not JSON"})
                    return
                path = [unquote(p) for p in parts.path.strip("/").split("/") if p]
                call = Call(
                    self.command, parts.path, parse_qs(parts.query), body, dict(self.headers)
                )
                with remote.lock:
                    remote.calls.append(call)
                    status, answer = remote._route(call, path, raw)
                self._answer(status, answer)

            def _answer(self, status: int, answer: Any) -> None:
                data = b"" if answer is None else json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if status == 429:
                    self.send_header("Retry-After", "0")
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

        return Handler

    # ----------------------------------------------------------------------------- routes

    def _route(self, call: Call, path: list[str], raw: bytes) -> tuple[int, Any]:
        st = self.state
        if st.fail_status is not None:
            sent = "".join(f"; you sent {n}: {call.headers.get(n)}" for n in st.echo_headers)
            failure = {"error": "injected failure" + sent + " ..." * 200 * bool(sent)}
            if st.fail_times:
                st.fail_times -= 1
                if st.fail_times == 0:
                    status, st.fail_status = st.fail_status, None
                    return status, failure
            return st.fail_status, failure
        if st.hmac_secret is not None and not self._signed(call, raw):
            return 401, {"error": "bad signature"}
        m = call.method
        match path:
            case ["products"] if m == "GET" and "sku" in call.query:
                return 200, {"products": self._find(call.query["sku"])}
            case ["products"] if m == "GET":
                start = int(call.query.get("since", ["0"])[0])
                return 200, {
                    "products": st.source_products[start:],
                    "cursor": str(len(st.source_products)),
                }
            case ["products"] if m == "POST":
                return self._create_product(call.body)
            case ["products", pid] if m == "PUT":
                if pid not in st.products:
                    return 404, {"error": f"no product {pid}"}
                st.products[pid].update(call.body)
                return 200, {"id": pid}
            case ["products", pid] if m == "DELETE":
                return (204, None) if st.products.pop(pid, None) else (404, {"error": "gone"})
            case ["products", pid, "variants"] if m == "POST":
                if pid not in st.products:
                    return 404, {"error": f"no product {pid}"}
                return 200, {"results": [self._upsert(pid, v) for v in call.body["variants"]]}
            case ["products", pid, "variants", vid] if m == "DELETE":
                variants = st.products.get(pid, {}).get("variants", {})
                return (204, None) if variants.pop(vid, None) else (404, {"error": "gone"})
            case ["products", pid, "images"] if m == "POST":
                if pid not in st.products:
                    return 404, {"error": f"no product {pid}"}
                image_id = self.next_id("I")
                st.products[pid]["images"][image_id] = call.body
                return 201, {"id": image_id}
            case ["products", pid, "images", iid] if m == "DELETE":
                images = st.products.get(pid, {}).get("images", {})
                return (204, None) if images.pop(iid, None) else (404, {"error": "gone"})
            case ["orders"] if m == "GET":
                start = int(call.query.get("since", ["0"])[0])
                return 200, {"orders": st.orders[start:], "cursor": str(len(st.orders))}
            case ["orders"] if m == "POST":
                key = call.headers.get("Idempotency-Key", self.next_id("k"))
                if key not in st.created_orders:
                    st.created_orders[key] = call.body | {"code": self.next_id("SO-")}
                return 201, {"code": st.created_orders[key]["code"]}
            case ["orders", oid] if m == "GET":
                found = [o for o in st.orders if o["remote_id"] == oid]
                return (200, found[0]) if found else (404, {"error": f"no order {oid}"})
            case ["orders", oid, "fulfillments"] if m == "POST":
                st.pushed_fulfillments.append((oid, call.body))
                return 200, {}
            case ["fulfillments"] if m == "POST":
                key = call.headers.get("Idempotency-Key", self.next_id("k"))
                if key not in st.fulfillments:
                    st.fulfillments[key] = call.body | {"id": self.next_id("F")}
                return 201, {"id": st.fulfillments[key]["id"]}
        return 404, {"error": f"no route {m} {call.path}"}

    def _signed(self, call: Call, raw: bytes) -> bool:
        stamp = call.headers.get("X-Stockyard-Timestamp", "")
        given = call.headers.get("X-Stockyard-Signature", "")
        assert self.state.hmac_secret is not None
        mac = hmac.new(self.state.hmac_secret.encode(), stamp.encode() + b"." + raw, hashlib.sha256)
        return hmac.compare_digest(given, f"sha256={mac.hexdigest()}")

    def _find(self, skus: list[str]) -> list[dict[str, Any]]:
        found = []
        for pid, product in self.state.products.items():
            variants = [{"id": vid, "sku": v["sku"]} for vid, v in product["variants"].items()]
            if any(v["sku"] in skus for v in variants):
                found.append({"id": pid, "variants": variants})
        return found

    def _create_product(self, body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict) or not body.get("title"):
            return 422, {"error": "title is required"}
        bad = [v["sku"] for v in body.get("variants", []) if v["sku"] in self.state.reject_skus]
        if bad:
            return 422, {"error": "; ".join(self.state.reject_skus[s] for s in bad)}
        pid = self.next_id("P")
        variants = {self.next_id("V"): v for v in body.pop("variants", [])}
        images = {self.next_id("I"): i for i in body.pop("images", [])}
        self.state.products[pid] = body | {"variants": variants, "images": images}
        return 201, {
            "id": pid,
            "variants": [{"id": vid, "sku": v["sku"]} for vid, v in variants.items()],
            "images": [{"id": iid, "code": i["code"]} for iid, i in images.items()],
        }

    def _upsert(self, pid: str, variant: dict[str, Any]) -> dict[str, Any]:
        sku = variant["sku"]
        if sku in self.state.reject_skus:
            return {"sku": sku, "error": self.state.reject_skus[sku]}
        variants = self.state.products[pid]["variants"]
        vid = variant.get("id") or next((i for i, v in variants.items() if v["sku"] == sku), None)
        vid = vid or self.next_id("V")
        variants[vid] = {k: v for k, v in variant.items() if k != "id"}
        return {"sku": sku, "id": vid}
