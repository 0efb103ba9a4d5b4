"""Faults for the Shopify double (issue 18): what a shop does on a bad day, switched on by
a test through `double.faults`.

- `fail_next(n, status)`: the next n GraphQL requests are answered with that HTTP status
  (a 502 from Shopify's edge, say) before anything else looks at them: not validated, not
  executed, no bucket spent. They are still recorded in `double.received` (with the status
  and the query, so a test can check they were valid and were retried).
- `error_next(n, code)`: the next n GraphQL requests are answered HTTP 200 with one
  top-level error of that `extensions.code` (`INTERNAL_SERVER_ERROR`, `SHOP_INACTIVE`,
  `ACCESS_DENIED`…), shaped as Shopify's "API response status and error codes" page shows
  them (message, extensions.code, extensions.requestId; no data, no cost). Like
  `fail_next`: not validated, not executed, no bucket spent, recorded.
- `refuse_titles`: productCreate refuses a product with one of these titles with a user
  error, as Shopify refuses data it will not take (a permanent error for the connector).
- `drain_next(n)`: the shop's bucket found empty by each of the next n requests, as when
  another app or worker on the same shop spends it: they are answered THROTTLED by the
  double's own bucket, with its true throttle status (the bucket refills from there).
- `at(i)`: when `double.received[i]` arrived, on the bucket's clock, so a test can tell
  how soon a client came back after THROTTLED (never spin).

Installed by `extensions()` in tests/support/shopify_double.py.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

if TYPE_CHECKING:
    from tests.support.shopify_double import Received, ShopifyDouble

GRAPHQL_PATH = "/admin/api/{version}/graphql.json"


@dataclass
class Faults:
    double: ShopifyDouble
    # Still to answer: an HTTP status, or a top-level error code inside an HTTP 200.
    pending: list[int | str] = field(default_factory=list)
    refuse_titles: set[str] = field(default_factory=set)
    drained: int = 0  # requests still to find the bucket empty
    served: int = 0  # how many requests a fault answered

    def fail_next(self, n: int, status: int = 502) -> None:
        with self.double.lock:
            self.pending.extend([status] * n)

    def error_next(self, n: int, code: str = "INTERNAL_SERVER_ERROR") -> None:
        with self.double.lock:
            self.pending.extend([code] * n)

    def drain_next(self, n: int) -> None:
        with self.double.lock:
            self.drained += n

    def at(self, index: int) -> float:
        """When the index-th recorded request arrived (the bucket's clock)."""
        received = self.double.received
        assert isinstance(received, Stamped), "faults installed after the double's requests"
        return received.times[index]

    def take(self) -> int | str | None:
        """The status to answer this request with, if a fault is pending (under the lock)."""
        if self.drained:
            self.drained -= 1
            self.double.bucket.refill()
            self.double.bucket.available = 0.0
        if not self.pending:
            return None
        self.served += 1
        return self.pending.pop(0)


class Stamped(list["Received"]):
    """The double's record of requests, each stamped when it was recorded (always under
    the double's lock, so the stamps follow the list's order)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        super().__init__()
        self.clock = clock
        self.times: list[float] = []

    def append(self, received: Received) -> None:
        self.times.append(self.clock())
        super().append(received)

    def clear(self) -> None:
        self.times.clear()
        super().clear()


def install(double: ShopifyDouble) -> None:
    faults = Faults(double)
    double.faults = faults  # type: ignore[attr-defined]
    stamped = Stamped(double.bucket.clock)
    stamped.extend(double.received)
    stamped.times.extend([double.bucket.clock()] * len(double.received))
    double.received = stamped
    # Ahead of the double's own route: the same path, answered here while a fault is
    # pending and handed on otherwise (Starlette keeps the read body on the request).
    double.app.router.routes.insert(
        0, Route(GRAPHQL_PATH, _faulty(double, faults), methods=["POST"])
    )
    create = double.resolvers[("Mutation", "productCreate")]
    double.resolvers[("Mutation", "productCreate")] = _refusing(create, faults)


def _faulty(double: ShopifyDouble, faults: Faults) -> Callable[[Request], Any]:
    from tests.support.shopify_double import Received

    async def endpoint(request: Request) -> Response:
        raw = await request.body()
        with double.lock:
            status = faults.take()
            if status is not None:
                body = _json(raw)
                answer = _coded(status) if isinstance(status, str) else None
                double.received.append(
                    Received(
                        request.path_params["version"],
                        request.headers.get("x-shopify-access-token"),
                        body.get("query"),
                        body.get("variables"),
                        body.get("operationName"),
                        200 if isinstance(status, str) else status,
                        answer,
                    )
                )
        if status is None:
            return await double._endpoint(request)
        if isinstance(status, str):
            return JSONResponse(answer)
        # Not JSON on purpose: what a proxy in front of a shop sends on a 5xx is not
        # Shopify's to define, so the connector must not need the body.
        return Response("<html><body>502 Bad Gateway</body></html>", status, media_type="text/html")

    return endpoint


def _refusing(create: Callable[..., Any], faults: Faults) -> Callable[..., Any]:
    from tests.support.shopify_double import UserErr

    def resolver(source: Any, info: Any, **args: Any) -> Any:
        title = (args.get("product") or {}).get("title")
        if title in faults.refuse_titles:
            # productCreate's user errors are plain UserError (field, message: no code in
            # the schema); the wording is the double's.
            raise UserErr(f"Title {title!r} is not allowed in this shop", ["title"])
        return create(source, info, **args)

    return resolver


def _coded(code: str) -> dict[str, Any]:
    """A top-level error as Shopify's docs show one (the message is the double's)."""
    request_id = str(uuid.uuid4())
    message = f"{code.replace('_', ' ').capitalize()}. Request ID: {request_id}"
    return {"errors": [{"message": message, "extensions": {"code": code, "requestId": request_id}}]}


def _json(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
