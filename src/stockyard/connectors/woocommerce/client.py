"""A client for WooCommerce's REST API `wc/v3`: HTTP Basic with the consumer key and secret,
JSON in and out, every failure classified for the queue.

Classification goes by HTTP status and WooCommerce's error `code`, never by wording:
timeouts, refused connections, 408, 425, 429 and 5xx are TransientErrors (with
`Retry-After` when given); any other 4xx is a `WooCommerceRefused` (a PermanentError carrying
`status` and `code`), so the connector can tell a duplicate SKU (`product_invalid_sku`) or a
batch over the store's cap (413) from the rest.

What an error says reaches every member of the client: a transport error is named by its
type only (its text can quote the request's headers, the Authorization among them), and what
the store says is quoted with the connection's secrets taken out BEFORE it is cut
(connectors.answers.quote).

Answers are read up to `max_answer` bytes (refused at once when Content-Length says more),
so an address pointed at something answering without end cannot fill the worker's memory.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from stockyard import outbound
from stockyard.connectors.answers import Refused, fetch, quote, raise_if_retryable
from stockyard.errors import PermanentError

API_PATH = "/wp-json/wc/v3"
# A page of 100 variable products with their attributes is well under 1 MiB.
MAX_ANSWER = 32 * 1024 * 1024  # bytes


class WooCommerceRefused(Refused):
    """A 4xx answer: `status` and WooCommerce's `code` (e.g. rest_invalid_param)."""


class WooCommerceClient:
    def __init__(
        self,
        url: str,
        key: str,
        secret: str,
        timeout: float = 30.0,
        max_answer: int = MAX_ANSWER,
        secrets: Sequence[str] = (),
    ) -> None:
        self.max_answer = max_answer
        self._secrets = list(secrets)  # every form of them shown (connectors.base)
        # Through the outbound check: the store's address is the tenant's to write.
        self._http = outbound.client(
            base_url=url.rstrip("/") + API_PATH,
            setting="url",
            timeout=timeout,
            auth=httpx.BasicAuth(key, secret),
            headers={"Accept": "application/json"},
        )

    def close(self) -> None:
        self._http.close()

    def quote(self, said: Any) -> str:
        """What the store said, for an error: without the connection's secrets, then cut."""
        return quote(said, self._secrets)

    def call(
        self,
        method: str,
        path: str,
        what: str,
        body: Any = None,
        params: Mapping[str, str] | None = None,
    ) -> tuple[Any, httpx.Headers]:
        """The answer's JSON and headers, or the error its status means."""
        response, content = fetch(
            self._http,
            method,
            path,
            json=body,
            params=params,
            max_bytes=self.max_answer,
            too_large=lambda: self._too_large(what),
            timed_out=lambda kind: f"woocommerce: {what}: timed out ({kind})",
            unsendable=lambda kind: (
                f"woocommerce: {what}: the request could not be sent ({kind}): check the"
                " connection's settings and keys"
            ),
            unreachable=lambda kind: f"woocommerce: {what}: cannot reach the store ({kind})",
        )
        status = response.status_code
        if status >= 400:
            code, message = _error(content, self._secrets)
            text = f"woocommerce: {what}: HTTP {status}" + (f" {code}: {message}" if code else "")
            raise_if_retryable(response, text)
            raise WooCommerceRefused(text, status, code)
        try:
            return json.loads(content), response.headers
        except (ValueError, RecursionError):
            raise PermanentError(f"woocommerce: {what}: the answer is not JSON") from None

    def _too_large(self, what: str) -> PermanentError:
        return PermanentError(
            f"woocommerce: {what}: the answer is larger than {self.max_answer} bytes, the most"
            " Stockyard reads: check the url"
        )


def _error(content: bytes, secrets: list[str]) -> tuple[str | None, str]:
    """WooCommerce's `{code, message, data: {status}}`, if the answer is one; the message
    redacted, then cut."""
    try:
        body = json.loads(content)
    except (ValueError, RecursionError):
        return None, ""
    if isinstance(body, dict) and isinstance(body.get("code"), str):
        return quote(body["code"], secrets), quote(body.get("message", ""), secrets)
    return None, ""
