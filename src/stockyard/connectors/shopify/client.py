"""A client for Shopify's Admin GraphQL API: one endpoint per shop and API version, the
access token in `X-Shopify-Access-Token`, every failure classified for the queue, and the
shop's query-cost bucket respected.

Pacing: Shopify meters by query cost in a leaky bucket per app and shop and reports it in
every answer (`extensions.cost.throttleStatus`: maximumAvailable, currentlyAvailable,
restoreRate). The client remembers the last report and each document's last requested
cost. Before sending a document it knows, it projects the bucket to now: if the cost does
not fit, it waits when the wait is short (`max_wait`), else raises a TransientError whose
retry_after is the time the bucket needs, so the engine retries the item later instead of
the worker sleeping or spinning. A THROTTLED answer (HTTP 200 with the error code, or 429)
becomes the same TransientError: retry_after = points missing / restoreRate. A query that
costs more than the whole bucket can never run: a PermanentError.

The bucket is per app and shop, so every worker of a connection spends from the same one.
Built by the connector registry, the client takes the connection's `SharedBudget`
(stockyard.connectors.budget: one database row for all workers, processes and hosts):
before a request it takes the document's expected cost there (or is promised it within
`max_wait`, or refused with the retry-after), and after every answer it reports the
shop's figures there. Without one (built directly, as tests do) it paces by itself.
The budget is an estimate: its database failing before a request hands the item back to
the queue (a TransientError, the detail in the log only); failing after the answer loses
nothing but the report, so a mutation that succeeded is never sent twice.

What an error says reaches every member of the client: a transport error is named by its
type only (its text can quote the request's headers, the token among them), and an answer
is read up to `max_answer` bytes, so an address pointed at a proxy answering without end
cannot exhaust a worker shared with other tenants.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from stockyard import db, outbound
from stockyard.connectors.answers import fetch
from stockyard.connectors.budget import Refusal, SharedBudget, offered
from stockyard.connectors.downloads import retry_after
from stockyard.errors import HandlerError, PermanentError, TransientError

MAX_QUERY_COST = 1000  # Shopify's limit for one query (its docs; the double enforces it)
# What a document never sent is taken to cost: a mutation's cost by Shopify's rate-limit
# page ("Mutations: 10 points"); a query costs at least 1. Paced on it instead of nothing,
# a first fileDelete no longer meets an empty bucket (THROTTLED in the end-to-end test).
UNKNOWN_COST = 10.0
MAX_ANSWER = 32 * 1024 * 1024  # bytes; a page of 250 products with variants is far less
# When the shared budget's database fails: a retry soon, as for a short bucket.
BUDGET_RETRY = 5.0
# After INTERNAL_SERVER_ERROR: Shopify names no wait; past a blip, short of hammering.
INTERNAL_RETRY = 10.0

log = logging.getLogger(__name__)


@dataclass
class BucketReport:
    """The shop's bucket as last reported, and when (on the client's clock)."""

    maximum: float
    available: float
    restore_rate: float
    at: float

    def projected(self, now: float) -> float:
        return min(self.maximum, self.available + max(0.0, now - self.at) * self.restore_rate)


class ShopifyRefused(PermanentError):
    """A GraphQL error that is not about throttling; `code` is extensions.code if any."""

    def __init__(self, message: str, code: str | None) -> None:
        super().__init__(message)
        self.code = code


class ShopifyClient:
    def __init__(
        self,
        url: str,
        token: str,
        timeout: float = 30.0,
        max_wait: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        budget: SharedBudget | None = None,
        max_answer: int = MAX_ANSWER,
    ) -> None:
        # Through the outbound check: the shop's address is the tenant's to write. httpx
        # ends a base URL with "/", so the endpoint's last segment is posted to.
        base, _, self._endpoint = url.rpartition("/")
        self._http = outbound.client(
            base_url=base + "/",
            setting="base_url",
            timeout=timeout,
            headers={"X-Shopify-Access-Token": token},
        )
        self._max_wait = max_wait
        self.max_answer = max_answer
        self.clock = clock
        self.sleep = sleep
        self._lock = threading.Lock()
        self.bucket: BucketReport | None = None
        self._costs: dict[str, float] = {}  # document -> its last requested cost
        # The registry offers the connection's shared budget while it builds the connector.
        self.budget = budget if budget is not None else offered()

    def close(self) -> None:
        self._http.close()

    def query(self, document: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        budget, mark = self.budget, None
        if budget is not None:
            mark = self._take(budget, document)
        else:
            self._pace(document)
        payload = {"query": document, "variables": variables or {}}
        response, content = fetch(
            self._http,
            "POST",
            self._endpoint,
            json=payload,
            max_bytes=self.max_answer,
            too_large=self._too_long,
            timed_out=lambda kind: f"shopify timed out ({kind})",
            unsendable=lambda kind: (
                f"shopify: the request could not be sent ({kind}): check the connection's"
                " settings and access token"
            ),
            unreachable=lambda kind: f"cannot reach shopify ({kind})",
        )
        return self._result(document, response, content, mark)

    def _too_long(self) -> PermanentError:
        return PermanentError(
            f"shopify: the answer is larger than {self.max_answer} bytes, the most Stockyard"
            " reads: check base_url"
        )

    # --------------------------------------------------------------------------- pacing

    def _take(self, budget: SharedBudget, document: str) -> float | None:
        """Take the document's expected cost from the shared budget (a document never sent:
        UNKNOWN_COST); the mark to report the answer with."""
        with self._lock:
            cost = self._costs.get(document, UNKNOWN_COST)
        try:
            taken = budget.take(cost, self._max_wait)
        except db.DATABASE_ERRORS as exc:
            log.warning("shopify: the shared budget could not be taken from: %s", exc)
            raise TransientError(
                "shopify: the connection's shared query-cost budget is unavailable",
                retry_after=BUDGET_RETRY,
            ) from None
        if taken is None:  # no worker has seen the shop's bucket yet
            return None
        if isinstance(taken, Refusal):
            if cost > taken.capacity:
                raise PermanentError(_too_big(cost, taken.capacity))
            raise TransientError(
                f"shopify: the shop's query-cost bucket, shared by the connection's workers,"
                f" cannot cover {cost:.0f} points within {self._max_wait:g} s",
                retry_after=taken.retry_after,
            )
        if taken.wait > 0:
            self.sleep(taken.wait)
        return taken.mark

    def _pace(self, document: str) -> None:
        """Alone: project the last bucket this client saw."""
        with self._lock:
            cost = self._costs.get(document, UNKNOWN_COST)
            bucket = self.bucket
        if bucket is None:
            return
        if cost > bucket.maximum:
            raise PermanentError(_too_big(cost, bucket.maximum))
        missing = cost - bucket.projected(self.clock())
        if missing <= 0:
            return
        wait = missing / bucket.restore_rate if bucket.restore_rate > 0 else math.inf
        if wait > self._max_wait:
            raise TransientError(
                f"shopify: the shop's query-cost bucket is short by {missing:.0f} points",
                retry_after=wait,
            )
        self.sleep(wait)

    def _note_cost(self, document: str, body: Any, mark: float | None) -> dict[str, Any] | None:
        cost = ((body.get("extensions") or {}).get("cost") or {}) if isinstance(body, dict) else {}
        status = cost.get("throttleStatus") or {}
        try:
            report = BucketReport(
                float(status["maximumAvailable"]),
                float(status["currentlyAvailable"]),
                float(status["restoreRate"]),
                self.clock(),
            )
        except (KeyError, TypeError, ValueError):
            return None
        with self._lock:
            self.bucket = report
            if isinstance(cost.get("requestedQueryCost"), int | float):
                self._costs[document] = float(cost["requestedQueryCost"])
        if self.budget is not None:
            self._report(self.budget, report, mark)
        return dict(cost)

    @staticmethod
    def _report(budget: SharedBudget, report: BucketReport, mark: float | None) -> None:
        # The answer is in: losing it over a report would send a mutation that succeeded
        # again. The next answer's report corrects the row.
        try:
            budget.report(report.maximum, report.available, report.restore_rate, mark)
        except db.DATABASE_ERRORS as exc:
            log.warning("shopify: the shared budget could not be reported to: %s", exc)

    # --------------------------------------------------------------------------- answers

    def _result(
        self, document: str, response: httpx.Response, content: bytes, mark: float | None
    ) -> dict[str, Any]:
        status = response.status_code
        try:
            body = json.loads(content)
        except ValueError:
            body = None
        text = content[:200].decode("utf-8", "replace")
        cost = self._note_cost(document, body, mark)
        if status == 429:
            raise self._throttled(cost, response.headers.get("retry-after"))
        if status in (408, 425) or status >= 500:
            raise TransientError(f"shopify answered HTTP {status}")
        if status in (401, 403):
            raise PermanentError(
                f"shopify refused the access token (HTTP {status}): check the app's token"
                " and its scopes"
            )
        if not isinstance(body, dict):
            raise PermanentError(f"shopify answered HTTP {status}: {text}")
        errors = body.get("errors")
        if errors:
            if isinstance(errors, list):
                raise self._refused(errors, cost)
            raise PermanentError(f"shopify answered HTTP {status}: {str(errors)[:200]}")
        if status >= 400 or not isinstance(body.get("data"), dict):
            raise PermanentError(f"shopify answered HTTP {status}: {text}")
        return dict(body["data"])

    def _refused(self, errors: list[Any], cost: dict[str, Any] | None) -> HandlerError:
        """The error for an answer's top-level `errors`, by their `extensions.code`
        (docs/shopify-notes.md, "Client errors by code")."""
        codes = {_code(e) for e in errors}
        if "THROTTLED" in codes:
            return self._throttled(cost, None)
        if codes == {"INTERNAL_SERVER_ERROR"}:
            # Shopify's stand-in for a 500: the same request may well pass shortly.
            return TransientError(
                f"shopify: internal error: {_messages(errors)}", retry_after=INTERNAL_RETRY
            )
        if "MAX_COST_EXCEEDED" in codes:
            return PermanentError(f"shopify: query too expensive: {_messages(errors)}")
        if "SHOP_INACTIVE" in codes:
            return ShopifyRefused(
                "shopify: the shop is not active (SHOP_INACTIVE: closed or frozen, e.g. for"
                " fraud risk): nothing reaches it until it is active again; check the shop in"
                " its Shopify admin",
                "SHOP_INACTIVE",
            )
        if "ACCESS_DENIED" in codes:
            return ShopifyRefused(
                f"shopify denied access: check the app's access scopes: {_messages(errors)}",
                "ACCESS_DENIED",
            )
        code = next(iter(sorted(c for c in codes if c)), None)
        return ShopifyRefused(f"shopify refused: {_messages(errors)}", code)

    def _throttled(self, cost: dict[str, Any] | None, header: str | None) -> HandlerError:
        requested = (cost or {}).get("requestedQueryCost")
        bucket = self.bucket if cost is not None else None
        if bucket is not None and isinstance(requested, int | float):
            if requested > bucket.maximum:
                return PermanentError(_too_big(requested, bucket.maximum))
            missing = max(1.0, requested - bucket.available)
            wait = missing / bucket.restore_rate if bucket.restore_rate > 0 else 60.0
            return TransientError(
                f"shopify: THROTTLED ({requested} points asked, {bucket.available:.0f} of"
                f" {bucket.maximum:.0f} available, {bucket.restore_rate:g}/s)",
                retry_after=wait,
            )
        after = retry_after(header or "")
        return TransientError("shopify: THROTTLED", retry_after=after or 1.0)


def _too_big(cost: float, maximum: float) -> str:
    return (
        f"shopify: a query of {cost:.0f} points can never fit the shop's bucket of"
        f" {maximum:.0f}: its page size must shrink"
    )


def _code(error: Any) -> str | None:
    extensions = error.get("extensions") if isinstance(error, dict) else None
    code = extensions.get("code") if isinstance(extensions, dict) else None
    return code if isinstance(code, str) else None


def _messages(errors: list[Any]) -> str:
    return "; ".join(str(e.get("message") if isinstance(e, dict) else e) for e in errors[:3])
