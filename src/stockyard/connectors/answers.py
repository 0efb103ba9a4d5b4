"""Sending a request and reading a platform's answer with a cap on its size, shared by the
connectors whose clients talk JSON to a tenant-written address (Magento, Shopify, Oscar,
WooCommerce, SAP Business One).

A request that fails on the way is classified one way for all of them: a timeout or a
transport failure (refused, reset, DNS) is a TransientError, a request this side cannot
even send (httpx's LocalProtocolError: a header value such as a token with a newline) a
PermanentError, since sending it again cannot help. The error names the failure by its
type only: its text can quote the request's headers, the secret among them.

The address may point at something that answers without end (a misconfigured proxy, a
file server, an attacker's host), and the worker that reads it is shared with other
tenants: an answer is refused at once when its Content-Length says it is over the cap,
and the count is kept while streaming, since a server may send no length, or lie. One
reader keeps the connectors from drifting apart on that; each still says in its own
words (`too_large`) what went wrong and which setting to check.

What a platform says is quoted in errors with the connection's secrets taken out BEFORE
it is cut (`quote`): a secret cut in two is no longer found by the connector's redaction,
which runs on the finished error. An answer is worth another try by its status alone
(`raise_if_retryable`: 408, 425, 429, 5xx, with the Retry-After), never by its wording.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from stockyard.connectors.base import redact
from stockyard.connectors.downloads import count, retry_after
from stockyard.errors import PermanentError, TransientError

MESSAGE = 300  # characters of what a platform says kept in an error


class Refused(PermanentError):
    """A 4xx answer: its `status` and the platform's error `code` (None when it gave
    none), so a connector can tell one refusal from another."""

    def __init__(self, message: str, status: int, code: str | None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def quote(said: Any, secrets: list[str]) -> str:
    """What a platform said, for an error: without the connection's secrets, then cut."""
    return redact(str(said), secrets)[:MESSAGE]


def raise_if_retryable(response: httpx.Response, text: str) -> None:
    """A TransientError saying `text` (with the answer's Retry-After) when the status is
    worth another try: 408, 425, 429 or 5xx."""
    status = response.status_code
    if status in (408, 425, 429) or status >= 500:
        raise TransientError(text, retry_after(response.headers.get("retry-after", "")))


def read_capped(
    response: httpx.Response, max_bytes: int, too_large: Callable[[], Exception]
) -> bytes:
    """`response`'s body (decoded), or `too_large()` raised once it is, or declares to be,
    larger than `max_bytes`."""
    declared = count(response.headers.get("content-length", ""))
    if (declared or 0) > max_bytes:
        raise too_large()
    chunks, size = [], 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise too_large()
        chunks.append(chunk)
    return b"".join(chunks)


def fetch(
    http: httpx.Client,
    method: str,
    url: str,
    *,
    max_bytes: int,
    too_large: Callable[[], Exception],
    timed_out: Callable[[str], str],
    unsendable: Callable[[str], str],
    unreachable: Callable[[str], str],
    **request: Any,
) -> tuple[httpx.Response, bytes]:
    """The answer to `method url` (`request`: httpx's json, params, ...) and its body read
    by `read_capped`; a failure on the way raised as its class says, in the connector's
    words (each given the failure's type name)."""
    try:
        with http.stream(method, url, **request) as response:
            return response, read_capped(response, max_bytes, too_large)
    except httpx.TimeoutException as exc:
        raise TransientError(timed_out(type(exc).__name__)) from None
    except httpx.LocalProtocolError as exc:
        raise PermanentError(unsendable(type(exc).__name__)) from None
    except httpx.TransportError as exc:
        raise TransientError(unreachable(type(exc).__name__)) from None
