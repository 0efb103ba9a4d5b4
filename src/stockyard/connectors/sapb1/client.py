"""A client for SAP Business One's Service Layer (`/b1s/v1`, OData): a session opened by
`POST /Login` (CompanyDB, UserName, Password), JSON in and out, every failure classified
for the queue.

The session is the B1SESSION cookie, and the ROUTEID cookie a load balancer in front of
several Service Layer nodes sets to send a session's requests to the node that holds it:
both are kept from the Login answer and sent on every request (httpx's cookie jar is not
used: a jar would also keep cookies any answer sets, and drops `Secure` ones on a loopback
http test double). A session ends after the Service Layer's SessionTimeout of idleness
(30 minutes by default) or when the node restarts: the next request answers 401, and the
call logs in again once and repeats itself; a second 401 is a PermanentError.

Classification by status, never by wording: timeouts, transport failures, 408, 425, 429
and 5xx are TransientErrors (with Retry-After when given); 404 is `SapB1NotFound`; any
other 4xx a `SapB1Refused` (PermanentError) quoting SAP's `error.message.value` with the
connection's secrets taken out before it is cut. A transport error is named by its type
only. Answers are read up to `max_answer` bytes.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import uuid
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

from stockyard import outbound
from stockyard.connectors.answers import Refused, fetch, quote, raise_if_retryable
from stockyard.errors import PermanentError, TransientError

API_PATH = "/b1s/v1"
MAX_ANSWER = 16 * 1024 * 1024  # bytes: a page of 100 items with prices and stock is ~1 MiB
# Pages followed for one lookup list (a price list's numbers, an order's deliveries): far
# more than those ever have. The long lists (items, customers, delivery notes) are read
# `pages_per_pull` pages a pull instead (read_pages), and go on at the next pull.
MOST_PAGES = 2000
COOKIES = ("B1SESSION", "ROUTEID")
LOG_IN = "log in"
Obj = dict[str, Any]


class SapB1Refused(Refused):
    """A 4xx answer: `status` and SAP's error `code`."""


class SapB1NotFound(SapB1Refused):
    """404: the entity the request names does not exist."""


class SapB1Client:
    def __init__(
        self,
        url: str,
        company_db: str,
        username: str,
        password: str,
        timeout: float = 30.0,
        max_answer: int = MAX_ANSWER,
        secrets: Sequence[str] = (),
    ) -> None:
        self.root = url.rstrip("/") + API_PATH
        self._login_body = {"CompanyDB": company_db, "UserName": username, "Password": password}
        self.max_answer = max_answer
        self._secrets = list(secrets)
        self._cookies: dict[str, str] = {}
        self._lock = threading.Lock()
        self.logins = 0
        self._http = outbound.client(
            base_url=self.root + "/",
            setting="url",
            timeout=timeout,
            headers={"Accept": "application/json"},
        )

    def close(self) -> None:
        if self._cookies:
            # Frees the session (and its license seat) at once, not after the timeout.
            with contextlib.suppress(TransientError, PermanentError):
                self._send("POST", "Logout", "log out", _request())
            self._cookies = {}
        self._http.close()

    def quote(self, said: Any) -> str:
        """What SAP said, for an error: without the connection's secrets, then cut."""
        return quote(said, self._secrets)

    # ------------------------------------------------------------------------ session

    def login(self) -> None:
        response, content = self._send("POST", "Login", LOG_IN, _request(self._login_body))
        if response.status_code >= 400:
            self._raise(response, content, LOG_IN)
        found = {name: response.cookies.get(name) for name in COOKIES}
        if not found["B1SESSION"]:
            raise PermanentError(
                "sapb1: the Login answer set no B1SESSION cookie: check that url is the"
                " Service Layer's address (https://<server>:50000)"
            )
        self._cookies = {name: value for name, value in found.items() if value}
        self.logins += 1

    # ------------------------------------------------------------------------- calls

    def call(
        self,
        method: str,
        path: str,
        what: str,
        body: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """The answer's JSON (None for an empty answer), or the error its status means.
        `path` is relative to the service root (`Items`, `Orders(12)`)."""
        response, content = self.exchange(method, path, what, body, params, headers)
        if response.status_code >= 400:
            self._raise(response, content, what)
        return _json(content, what)

    def exchange(
        self,
        method: str,
        path: str,
        what: str,
        body: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
    ) -> tuple[httpx.Response, bytes]:
        """The raw answer, in a session: logged in first if need be, and once more when
        the session has ended (401). The worker's threads share one connector: one of them
        logs in again, the others send with the session it made."""
        request = _request(body, params, headers, content)
        with self._lock:
            fresh = not self._cookies
            if fresh:
                self.login()
            used = self._cookies
        answer = self._send(method, path, what, request)
        if answer[0].status_code == 401 and not fresh:
            with self._lock:
                if self._cookies is used:  # not renewed by another thread meanwhile
                    self._cookies = {}
                    self.login()
            answer = self._send(method, path, what, request)
        return answer

    def _send(
        self, method: str, path: str, what: str, request: Mapping[str, Any]
    ) -> tuple[httpx.Response, bytes]:
        """`request` (httpx's params, headers and json or content) sent with the session's
        cookies."""
        sent = dict(request["headers"])
        if self._cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self._cookies.items())
        self._http.cookies.clear()  # only the session's own cookies are ever sent
        return fetch(
            self._http,
            method,
            path,
            max_bytes=self.max_answer,
            too_large=lambda: PermanentError(
                f"sapb1: {what}: the answer is larger than {self.max_answer} bytes, the most"
                " Stockyard reads: check url"
            ),
            timed_out=lambda kind: f"sapb1: {what}: timed out ({kind})",
            unsendable=lambda kind: (
                f"sapb1: {what}: the request could not be sent ({kind}): check the"
                " connection's settings"
            ),
            unreachable=lambda kind: f"sapb1: {what}: cannot reach the Service Layer ({kind})",
            **{**request, "headers": sent},
        )

    def _raise(self, response: httpx.Response, content: bytes, what: str) -> None:
        status = response.status_code
        code, message = _error(content)
        said = f" {self.quote(code)}: {self.quote(message)}" if code or message else ""
        text = f"sapb1: {what}: HTTP {status}{said}"
        raise_if_retryable(response, text)
        if status == 401 and what == LOG_IN:
            raise SapB1Refused(
                f"{text}: the Service Layer refused the login: check company_db, username"
                " and password",
                status,
                code,
            )
        if status == 401:
            raise SapB1Refused(
                f"{text}: the Service Layer ended a session it had just opened (is a load"
                " balancer in front of it dropping the ROUTEID cookie?)",
                status,
                code,
            )
        if status == 404:
            raise SapB1NotFound(text, status, code)
        if 300 <= status < 400:
            raise PermanentError(f"{text}: a redirect: check url")
        raise SapB1Refused(text, status, code)

    # -------------------------------------------------------------------------- lists

    def read_all(
        self, path: str, what: str, params: Mapping[str, str], page_size: int
    ) -> list[Obj]:
        """Every row of a (short) collection, or a PermanentError past MOST_PAGES pages."""
        rows, more = self.read_pages(path, what, params, page_size, MOST_PAGES)
        if more:
            raise PermanentError(f"sapb1: {what}: more than {MOST_PAGES} pages")
        return rows

    def read_pages(
        self, path: str, what: str, params: Mapping[str, str], page_size: int, most: int
    ) -> tuple[list[Obj], bool]:
        """The rows of up to `most` pages of a collection, and whether there are more:
        server-driven pages of up to `page_size` rows (`Prefer: odata.maxpagesize`),
        following `odata.nextLink`. A server that ignores the preference (its own default
        is 20 rows) still gives every row: its nextLink is followed the same way."""
        prefer = {"Prefer": f"odata.maxpagesize={page_size}"}
        rows: list[Obj] = []
        target, query = path, dict(params)
        seen: set[str] = set()
        for _ in range(most):
            answer = self.call("GET", target, what, params=query, headers=prefer)
            rows += rows_of(answer, what)
            link = answer.get("odata.nextLink") or answer.get("@odata.nextLink")
            if not link:
                return rows, False
            if not isinstance(link, str) or link in seen:
                raise PermanentError(f"sapb1: {what}: the Service Layer repeats a page")
            seen.add(link)
            target, query = self._next(link, what)
        return rows, True

    def _next(self, link: str, what: str) -> tuple[str, dict[str, str]]:
        """A nextLink as a path under the service root and its query. Relative (OData v3:
        `Items?$skip=20`), absolute-path or a full URL of this server: never anywhere else,
        where the session cookie would go."""
        parts = urlsplit(link)
        path = parts.path
        if parts.scheme or parts.netloc:
            mine = urlsplit(self.root)
            if (parts.scheme, parts.netloc) != (mine.scheme, mine.netloc):
                raise PermanentError(f"sapb1: {what}: a nextLink to another server")
        if path.startswith("/"):
            prefix = urlsplit(self.root).path + "/"
            if not path.startswith(prefix):
                raise PermanentError(f"sapb1: {what}: a nextLink outside the Service Layer")
            path = path[len(prefix) :]
        return path, dict(parse_qsl(parts.query, keep_blank_values=True))

    # -------------------------------------------------------------------------- batch

    def batch_get(self, paths: Sequence[str], what: str) -> list[tuple[int, Any]]:
        """GET each of `paths` (relative to the service root, with their query) in one
        `$batch` request: (status, JSON) per path, in order."""
        boundary = f"batch_{uuid.uuid4()}"
        parts = [
            f"--{boundary}\r\nContent-Type: application/http\r\n"
            f"Content-Transfer-Encoding: binary\r\n\r\n"
            f"GET {urlsplit(self.root).path}/{p} HTTP/1.1\r\n\r\n"
            for p in paths
        ]
        payload = ("".join(parts) + f"--{boundary}--\r\n").encode()
        headers = {"Content-Type": f"multipart/mixed;boundary={boundary}"}
        response, content = self.exchange("POST", "$batch", what, headers=headers, content=payload)
        if response.status_code >= 400:
            self._raise(response, content, what)
        answers = _batch_answers(response.headers.get("content-type", ""), content, what)
        if len(answers) != len(paths):
            raise PermanentError(
                f"sapb1: {what}: $batch answered {len(answers)} parts for {len(paths)} requests"
            )
        return answers


def _request(
    body: Any = None,
    params: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    content: bytes | None = None,
) -> dict[str, Any]:
    """httpx's arguments for a request's parts: `content` as is, else `body` as JSON."""
    request: dict[str, Any] = {"params": params, "headers": dict(headers or {})}
    if content is not None:
        request["content"] = content
    else:
        request["json"] = body
    return request


def _batch_answers(content_type: str, content: bytes, what: str) -> list[tuple[int, Any]]:
    m = re.search(r"boundary=\"?([^\";]+)\"?", content_type)
    if m is None:
        raise PermanentError(f"sapb1: {what}: the $batch answer is not multipart")
    found: list[tuple[int, Any]] = []
    for part in content.decode("utf-8", "replace").split(f"--{m[1]}")[1:]:
        if part.startswith("--"):
            break
        _, _, inner = part.strip("\r\n").partition("\r\n\r\n")
        status_line, _, rest = inner.partition("\r\n")
        sm = re.match(r"HTTP/1\.1 (\d{3})", status_line)
        if sm is None:
            raise PermanentError(f"sapb1: {what}: a $batch part has no status line")
        _, _, body = rest.partition("\r\n\r\n") if "\r\n\r\n" in rest else ("", "", rest)
        found.append((int(sm[1]), _json(body.strip().encode(), what)))
    return found


def _json(content: bytes, what: str) -> Any:
    if not content:
        return None
    try:
        return json.loads(content)
    except (ValueError, RecursionError):
        raise PermanentError(f"sapb1: {what}: the answer is not JSON: check url") from None


def _error(content: bytes) -> tuple[str | None, str]:
    """SAP's `{error: {code, message: {lang, value}}}` (v1) or `message: "..."` (v2)."""
    try:
        body = json.loads(content)
    except (ValueError, RecursionError):
        return None, ""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None, ""
    message = error.get("message")
    if isinstance(message, dict):
        message = message.get("value")
    code = error.get("code")
    return (str(code) if code is not None else None), str(message or "")


def rows_of(answer: Any, what: str) -> list[Obj]:
    """A collection answer's `value`, a list of objects, or a PermanentError."""
    value = answer.get("value") if isinstance(answer, dict) else None
    if not isinstance(value, list) or not all(isinstance(r, dict) for r in value):
        raise PermanentError(f"sapb1: {what}: the answer is not a collection (no value list)")
    return value


def literal(text: str) -> str:
    """`text` as an OData string literal: quoted, a quote doubled."""
    return "'" + text.replace("'", "''") + "'"
