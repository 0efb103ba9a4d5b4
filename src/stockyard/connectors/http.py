"""The generic `http` connector: JSON over HTTP to configurable endpoints. It can act as a
source, a channel and a fulfillment service; docs/connectors.md is its contract.

Settings:
- `base_url` (required), `headers` (plain ones, e.g. Accept), `timeout` (seconds);
- `paths`: override any endpoint path below, e.g. {"create_product": "/v2/items"}.

Secrets (sealed, write-only; never among the settings, which read-only users see):
- `authorization`: the value of the Authorization header, e.g. "Bearer ...";
- `auth_headers`: any other credential headers, e.g. {"X-Api-Key": "..."};
- `hmac_secret`: sign every request body (`X-Stockyard-Timestamp`, `X-Stockyard-Signature:
  sha256=<hex of HMAC-SHA256 over "<timestamp>.<body>">`).

Requests go through stockyard.outbound: internal addresses are refused unless the
deployment allows them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator

from stockyard import outbound
from stockyard.connectors.base import (
    ERROR_LIMIT,
    ChannelImage,
    ChannelProduct,
    ChannelVariant,
    Connector,
    Page,
    RemoteProduct,
    Result,
    looks_like_credential,
    parse_settings,
)
from stockyard.connectors.downloads import retry_after
from stockyard.engine import Limits
from stockyard.errors import HandlerError, PermanentError, TransientError

PATHS: dict[str, str] = {
    "find_product": "/products",  # GET ?sku=A&sku=B
    "create_product": "/products",  # POST
    "product": "/products/{id}",  # PUT, DELETE
    "variants": "/products/{id}/variants",  # POST {"variants": [...]} -> {"results": [...]}
    "variant": "/products/{product_id}/variants/{id}",  # DELETE
    "images": "/products/{id}/images",  # POST
    "image": "/products/{product_id}/images/{id}",  # DELETE
    "orders": "/orders",  # GET ?since=<cursor>; POST (as a source: create an order)
    "order": "/orders/{id}",  # GET
    "order_fulfillments": "/orders/{id}/fulfillments",  # POST
    "source_products": "/products",  # GET ?since=<cursor> (as a source)
    "source_images": "/products/{id}/images",  # GET (as a source)
    "fulfillments": "/fulfillments",  # POST (as a fulfillment service)
}


# RFC 9110 field names (tokens) and values (visible ASCII, space, tab). Checked at save: httpx
# encodes values as ASCII (a non-ASCII one was a 500) and h11 refuses bad names at run time,
# which would fail every request of the connection; CR/LF would split a header in two.
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_HEADER_VALUE = re.compile(r"^[\t\x20-\x7e]*$")
# Hop-by-hop and framing headers belong to the transport: a tenant's Host would reach another
# virtual host behind a reverse proxy the deployment's allowance opens, Content-Length or
# Transfer-Encoding would desynchronise the framing, Proxy-* would talk to a proxy.
_TRANSPORT_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "upgrade",
        "te",
        "trailer",
    }
)


def _check_headers(headers: dict[str, str]) -> dict[str, str]:
    """The messages name the header, never its value: auth_headers are secrets."""
    for name, value in headers.items():
        if not _HEADER_NAME.match(name):
            raise ValueError(f"{name!r} is not a valid header name (an RFC 9110 token)")
        lower = name.lower()
        if lower in _TRANSPORT_HEADERS or lower.startswith("proxy-"):
            raise ValueError(f"{name} is a hop-by-hop or framing header, set by Stockyard")
        if not _HEADER_VALUE.match(value):
            raise ValueError(
                f"the value of {name} must be visible ASCII characters, spaces and tabs"
            )
    return headers


class HttpSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    base_url: str = Field(pattern=r"^https?://")
    headers: dict[str, str] = {}
    timeout: float = Field(default=30.0, gt=0, le=600)
    paths: dict[str, str] = {}
    # Secrets: left out of the repr, so no log line or error can show them.
    hmac_secret: str | None = Field(default=None, repr=False)
    authorization: str | None = Field(default=None, repr=False)
    auth_headers: dict[str, str] = Field(default={}, repr=False)

    @field_validator("headers", "auth_headers")
    @classmethod
    def valid_headers(cls, headers: dict[str, str]) -> dict[str, str]:
        return _check_headers(headers)

    @field_validator("authorization")
    @classmethod
    def valid_authorization(cls, value: str | None) -> str | None:
        if value is not None and not _HEADER_VALUE.match(value):
            raise ValueError("must be visible ASCII characters, spaces and tabs")
        return value


# Cut well past ERROR_LIMIT: redaction runs on the error later, and a secret cut in two
# here could not be matched; anything beyond ERROR_LIMIT is cut off after it anyway.
EXCERPT_LIMIT = ERROR_LIMIT + 4096


def _excerpt(response: httpx.Response) -> str:
    try:
        body = response.json()
        message = body.get("error") or body.get("message") if isinstance(body, dict) else None
        if message:
            return str(message)[:EXCERPT_LIMIT]
    except ValueError:
        pass
    return response.text[:EXCERPT_LIMIT] or response.reason_phrase


def classify(response: httpx.Response, what: str) -> HandlerError | None:
    """None for success; else the error the status means: 408, 425, 429 and 5xx transient
    (with the `Retry-After`), any other 4xx permanent (docs/connectors.md, the `http`
    connector's contract)."""
    status = response.status_code
    if status < 400:
        return None
    message = f"{what}: HTTP {status} {_excerpt(response)}"
    if status in (408, 425, 429) or status >= 500:
        return TransientError(message, retry_after(response.headers.get("retry-after", "")))
    return PermanentError(message)


class HttpConnector(Connector):
    roles = frozenset({"source", "channel", "fulfillment"})
    secret_settings = frozenset({"hmac_secret", "authorization", "auth_headers"})
    # Whatever answers is unknown (a shop, middleware, an in-house service): a few requests
    # at once keep a 200-item worker from opening 200 connections to it.
    default_limits = Limits(max_running=8)

    def __init__(self, settings: Mapping[str, Any]) -> None:
        super().__init__(settings)
        self.config = parse_settings(HttpSettings, settings, "http")
        unknown = set(self.config.paths) - set(PATHS)
        if unknown:
            raise PermanentError(f"http connector settings: unknown paths {sorted(unknown)}")
        for name, path in self.config.paths.items():
            # Relative only: an absolute URL would leave base_url (and its checks) behind.
            if not path.startswith("/") or path.startswith("//"):
                raise PermanentError(
                    f"http connector settings: paths.{name} must be a path starting with /"
                )
        self.paths = PATHS | self.config.paths
        headers = {**self.config.headers, **self.config.auth_headers}
        if self.config.authorization:
            headers["Authorization"] = self.config.authorization
        self.client = outbound.client(
            base_url=self.config.base_url.rstrip("/"), headers=headers, timeout=self.config.timeout
        )

    @classmethod
    def credential_problem(cls, settings: Mapping[str, Any]) -> str | None:
        problem = super().credential_problem(settings)
        if problem is not None:
            return problem
        headers = settings.get("headers")
        if isinstance(headers, Mapping):
            for name in sorted(headers):
                if looks_like_credential(str(name)):
                    return (
                        f"settings.headers.{name} is a credential: send it in secrets, as"
                        f' secrets.auth_headers ({{"{name}": "..."}})'
                        + (" or secrets.authorization" if name.lower() == "authorization" else "")
                    )
        base_url = settings.get("base_url")
        if isinstance(base_url, str):
            try:
                url = urlsplit(base_url)
                userinfo = url.username or url.password
            except ValueError:
                return None  # not a URL: the settings' own check says so
            if userinfo:
                return (
                    "settings.base_url holds a user name or password: send the credential"
                    " in secrets.authorization"
                )
            keys = [k for k, _ in parse_qsl(url.query) if looks_like_credential(k)]
            if keys:
                return (
                    f"settings.base_url's query parameter {keys[0]} is a credential: send it"
                    " in secrets (a header in secrets.auth_headers)"
                )
        return None

    def close(self) -> None:
        self.client.close()

    # ------------------------------------------------------------------------- transport

    def _path(self, name: str, **ids: str) -> str:
        return self.paths[name].format(**{k: quote(v, safe="") for k, v in ids.items()})

    def _call(
        self,
        method: str,
        path: str,
        what: str,
        body: Any = None,
        key: str | None = None,
        params: Any = None,
        missing_ok: bool = False,
    ) -> Any:
        content = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json"} if content is not None else {}
        if key is not None:
            headers["Idempotency-Key"] = key
        if self.config.hmac_secret:
            stamp = str(int(time.time()))
            mac = hmac.new(
                self.config.hmac_secret.encode(),
                stamp.encode() + b"." + (content or b""),
                hashlib.sha256,
            )
            headers["X-Stockyard-Timestamp"] = stamp
            headers["X-Stockyard-Signature"] = f"sha256={mac.hexdigest()}"
        try:
            response = self.client.request(
                method, path, content=content, headers=headers, params=params
            )
        except httpx.TimeoutException as exc:
            raise TransientError(f"{what}: timed out ({exc})") from None
        except httpx.TransportError as exc:
            raise TransientError(f"{what}: {type(exc).__name__}: {exc}") from None
        if missing_ok and response.status_code in (404, 410):
            return None
        error = classify(response, what)
        if error is not None:
            raise error
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise PermanentError(f"{what}: the answer is not JSON") from None

    @staticmethod
    def _field(data: Any, name: str, what: str) -> Any:
        if not isinstance(data, dict) or data.get(name) in (None, ""):
            raise PermanentError(f"{what}: the answer has no {name!r}")
        return data[name]

    # ------------------------------------------------------------------------ as a source

    def fetch_products(self, cursor: str | None) -> Page:
        data = self._call(
            "GET",
            self._path("source_products"),
            "pull products",
            params={"since": cursor} if cursor else None,
        )
        return Page(list(self._field(data, "products", "pull products")), data.get("cursor"))

    def fetch_images(self, product_code: str) -> list[dict[str, Any]]:
        data = self._call("GET", self._path("source_images", id=product_code), "fetch images")
        return list(self._field(data, "images", "fetch images"))

    def create_order(self, order: dict[str, Any], key: str) -> str:
        data = self._call("POST", self._path("orders"), "create order", order, key)
        return str(self._field(data, "code", "create order"))

    # ----------------------------------------------------------------------- as a channel

    def find_product(self, skus: list[str]) -> RemoteProduct | None:
        data = self._call(
            "GET", self._path("find_product"), "find product", params=[("sku", s) for s in skus]
        )
        found = self._field(data, "products", "find product") if data else []
        return _remote(found[0]) if found else None

    def create_product(self, product: ChannelProduct, key: str) -> RemoteProduct:
        body = _product_body(product) | {
            "variants": [_variant_body(v) for v in product.variants],
            "images": [_image_body(i) for i in product.images],
        }
        data = self._call("POST", self._path("create_product"), "create product", body, key)
        return _remote(data)

    def update_product(self, remote_id: str, product: ChannelProduct, key: str) -> None:
        path = self._path("product", id=remote_id)
        self._call("PUT", path, "update product", _product_body(product), key)

    def delete_product(self, remote_id: str, key: str) -> None:
        path = self._path("product", id=remote_id)
        self._call("DELETE", path, "delete product", key=key, missing_ok=True)

    def upsert_variants(
        self, product_remote_id: str, variants: list[ChannelVariant], key: str
    ) -> list[Result]:
        body = {"variants": [_variant_body(v) for v in variants]}
        path = self._path("variants", id=product_remote_id)
        data = self._call("POST", path, "write variants", body, key)
        answers = {str(r.get("sku")): r for r in self._field(data, "results", "write variants")}
        results = []
        for variant in variants:
            answer = answers.get(variant.sku)
            if answer is None:
                error: HandlerError | None = PermanentError("no result for this SKU")
            elif answer.get("error"):
                message = str(answer["error"])
                error = (
                    TransientError(message) if answer.get("transient") else PermanentError(message)
                )
            else:
                error = None
            remote = None if answer is None else answer.get("id")
            results.append(Result(variant.sku, None if remote is None else str(remote), error))
        return results

    def delete_variant(self, product_remote_id: str, remote_id: str, key: str) -> None:
        path = self._path("variant", product_id=product_remote_id, id=remote_id)
        self._call("DELETE", path, "delete variant", key=key, missing_ok=True)

    def add_image(self, product_remote_id: str, image: ChannelImage, key: str) -> str:
        path = self._path("images", id=product_remote_id)
        data = self._call("POST", path, "add image", _image_body(image), key)
        return str(self._field(data, "id", "add image"))

    def delete_image(self, product_remote_id: str, remote_id: str, key: str) -> None:
        path = self._path("image", product_id=product_remote_id, id=remote_id)
        self._call("DELETE", path, "delete image", key=key, missing_ok=True)

    def fetch_orders(self, cursor: str | None) -> Page:
        data = self._call(
            "GET", self._path("orders"), "pull orders", params={"since": cursor} if cursor else None
        )
        return Page(list(self._field(data, "orders", "pull orders")), data.get("cursor"))

    def get_order(self, remote_id: str) -> dict[str, Any]:
        data = self._call("GET", self._path("order", id=remote_id), "read order")
        if not isinstance(data, dict):
            raise PermanentError("read order: the answer is not an object")
        return data

    def push_fulfillment(self, order_remote_id: str, fulfillment: dict[str, Any], key: str) -> None:
        path = self._path("order_fulfillments", id=order_remote_id)
        self._call("POST", path, "push fulfillment", fulfillment, key)

    # ------------------------------------------------------------ as a fulfillment service

    def create_fulfillment(self, order: dict[str, Any], key: str) -> str:
        data = self._call("POST", self._path("fulfillments"), "create fulfillment", order, key)
        return str(self._field(data, "id", "create fulfillment"))


def _product_body(product: ChannelProduct) -> dict[str, Any]:
    return {"code": product.code, **product.fields}


def _variant_body(variant: ChannelVariant) -> dict[str, Any]:
    body = {"sku": variant.sku, **variant.fields}
    if variant.remote_id is not None:
        body["id"] = variant.remote_id
    return body


def _image_body(image: ChannelImage) -> dict[str, Any]:
    return {"code": image.code, **image.fields}


def _remote(data: Any) -> RemoteProduct:
    if not isinstance(data, dict) or not data.get("id"):
        raise PermanentError("the channel's answer has no product id")
    variants = {str(v["sku"]): str(v["id"]) for v in data.get("variants", []) if v.get("id")}
    images = {str(i["code"]): str(i["id"]) for i in data.get("images", []) if i.get("id")}
    return RemoteProduct(str(data["id"]), variants, images)
