"""A client for Magento 2's admin REST API (`/rest/<store>/V1/...`): the integration's
access token as `Authorization: Bearer`, JSON in and out, every failure classified for the
queue by status, never by wording: timeouts, transport failures, 408, 425, 429 and 5xx are
TransientErrors; 401 and 403 a PermanentError about the token; any other 4xx a
PermanentError carrying Magento's own message (its `%1` / `%name` placeholders filled
from `parameters`). 404 is given to the caller (`MagentoNotFound`), which knows whether
absent means done. Any other status outside 2xx is a PermanentError too: a redirect (not
followed) means `url` names the wrong address, and a write "redirected" wrote nothing. A
2xx counts only as JSON: a page that is not (a proxy's, a maintenance page) or an empty
body where the route answers something is a PermanentError; `obj`, `rows` and `items`
check an answer's shape where the caller reads it.

A transport error is named by its type only (its text can quote the request's headers, the
token among them), and an answer is read up to `max_answer` bytes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx

from stockyard import outbound
from stockyard.connectors.answers import fetch
from stockyard.connectors.downloads import retry_after
from stockyard.errors import PermanentError, TransientError

MAX_ANSWER = 32 * 1024 * 1024  # bytes


class MagentoNotFound(PermanentError):
    """404: the product (or attribute, ...) the request names does not exist."""


def sku_path(sku: str) -> str:
    """A SKU as one path segment (Magento decodes it; `/` must not split the route)."""
    return quote(sku, safe="")


# A store's message and each of its parameters are cut before the placeholders are
# filled, and the result after: `%1` repeated over a large body would otherwise fill in
# a large parameter that many times (gigabytes from a megabyte).
MESSAGE_LIMIT = 2000  # characters
PARAMETER_LIMIT = 200
_PLACEHOLDER = re.compile(r"%(\w+)")
_LAST_WORD = re.compile(r"\S+\Z")


def is_number(text: str) -> bool:
    """ASCII decimal digits only: `str.isdigit` also takes '²', which int() refuses."""
    return text.isascii() and text.isdigit()


def clip(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, never inside a word: secrets are taken out of an
    error after it is built, and a token cut in two would no longer be recognised."""
    if len(text) <= limit:
        return text
    head = text[:limit]
    if not text[limit].isspace():
        cut = _LAST_WORD.search(head)
        head = head[: cut.start()] if cut else head
    return head + "…"


def fill(text: str, named: Mapping[str, Any]) -> str:
    """`text`'s `%name` placeholders filled from `named`, bounded (MESSAGE_LIMIT)."""
    text = clip(text, MESSAGE_LIMIT)
    shown: dict[str, str] = {}
    out: list[str] = []
    size = pos = 0
    for m in _PLACEHOLDER.finditer(text):
        if m[1] in named and m[1] not in shown:
            shown[m[1]] = clip(_text_of(named[m[1]]), PARAMETER_LIMIT)
        value = shown.get(m[1], m[0])
        out += [text[pos : m.start()], value]
        size += m.start() - pos + len(value)
        pos = m.end()
        if size > MESSAGE_LIMIT:
            break
    else:
        out.append(text[pos:])
    return clip("".join(out), MESSAGE_LIMIT)


def _text_of(value: Any) -> str:
    try:
        return str(value)
    except RecursionError:  # JSON nested as deep as the parser allowed
        return "…"


def message(body: Any) -> str:
    """Magento's error message with its placeholders filled from `parameters`: an object
    by name (the document's error shape), a list of objects likewise, a list of strings by
    position (`%1`, `%2`; named placeholders, as the price API's, in order of appearance)."""
    if not isinstance(body, dict) or not isinstance(body.get("message"), str):
        return clip(_text_of(body), 200)
    text = clip(body["message"], MESSAGE_LIMIT)
    params = body.get("parameters")
    named: dict[str, Any] = {}
    if isinstance(params, dict):
        named = params
    elif isinstance(params, list):
        plain = [p for p in params if not isinstance(p, dict)]
        for value in params:
            if isinstance(value, dict):
                named |= value
        named |= {str(n): value for n, value in enumerate(plain, 1)}
        wanted = dict.fromkeys(_PLACEHOLDER.findall(text))
        names = [m for m in wanted if not is_number(m)]
        for name, value in zip(names, plain, strict=False):
            named.setdefault(name, value)
    return fill(text, named)


class MagentoClient:
    def __init__(
        self, base_url: str, token: str, timeout: float = 30.0, max_answer: int = MAX_ANSWER
    ) -> None:
        self._http = outbound.client(
            base_url=base_url.rstrip("/") + "/",
            setting="url",
            timeout=timeout,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        )
        self.max_answer = max_answer

    def close(self) -> None:
        self._http.close()

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return self.call("GET", path, params=params)

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: dict[str, Any] | None = None,
        empty: bool = False,
    ) -> Any:
        """`path` relative to the store's `/rest/<store>/` (e.g. `V1/products`). `empty`:
        the route answers nothing (a void service method), so an empty 2xx is done."""
        what = f"{method} /{path.split('?')[0]}"
        response, content = fetch(
            self._http,
            method,
            path,
            json=body,
            params=params,
            max_bytes=self.max_answer,
            too_large=self._too_large,
            timed_out=lambda kind: f"magento: {what} timed out ({kind})",
            unsendable=lambda kind: (
                f"magento: {what} could not be sent ({kind}): check the connection's settings"
                " and access token"
            ),
            unreachable=lambda kind: f"magento: cannot reach the store ({kind})",
        )
        return self._result(what, response, content, empty)

    def _too_large(self) -> PermanentError:
        return PermanentError(
            f"magento: the answer is larger than {self.max_answer} bytes: check url"
        )

    @staticmethod
    def _result(what: str, response: httpx.Response, content: bytes, empty: bool) -> Any:
        status = response.status_code
        body: Any = None
        try:
            body = json.loads(content) if content else None
            page = None
        except (ValueError, RecursionError):  # RecursionError: JSON nested too deep
            body = page = content[:200].decode("utf-8", "replace")
        _refuse(what, response, body)
        # A 2xx only counts when it is Magento's JSON: a proxy's or maintenance page
        # answered 200 must not pass for a write the store made.
        if page is not None:
            raise PermanentError(
                f"magento: {what}: the answer is not JSON ({clip(page, 80)!r}): check url"
            )
        if not content and not empty:
            raise PermanentError(f"magento: {what}: an empty answer (HTTP {status}): check url")
        return body


def _refuse(what: str, response: httpx.Response, body: Any) -> None:
    """Raises for any status outside 2xx: a redirect too, which httpx does not follow (a
    PUT followed as a GET would write nothing) and which means `url` names the wrong
    address (www., http://)."""
    status = response.status_code
    if status == 429:
        after = response.headers.get("retry-after", "")
        raise TransientError(
            f"magento: {what}: too many requests (HTTP 429)",
            retry_after=retry_after(after),
        )
    if status in (408, 425) or status >= 500:
        raise TransientError(f"magento: {what}: HTTP {status}: {message(body)}")
    if status in (401, 403):
        raise PermanentError(
            f"magento refused the access token (HTTP {status}): check the integration's"
            " token, its resources, and that the store lets integration tokens be used as"
            " standalone Bearer tokens"
        )
    if status == 404:
        raise MagentoNotFound(f"magento: {what}: {message(body)}")
    if 300 <= status < 400 and response.headers.get("location"):
        where = response.headers["location"].split("?")[0][:200]
        raise PermanentError(
            f"magento: {what}: HTTP {status}: the store redirects to {where}: check url"
        )
    if not 200 <= status < 300:
        raise PermanentError(f"magento: {what}: HTTP {status}: {message(body)}")


def obj(answer: Any, what: str) -> dict[str, Any]:
    """`answer` as the JSON object the route gives, or a PermanentError saying so."""
    if not isinstance(answer, dict):
        raise PermanentError(f"magento: {what}: the answer is not an object: {_shown(answer)}")
    return answer


def rows(answer: Any, what: str) -> list[dict[str, Any]]:
    """`answer` as a list of JSON objects (an absent list: none)."""
    if answer is None:
        return []
    if not isinstance(answer, list) or not all(isinstance(r, dict) for r in answer):
        raise PermanentError(
            f"magento: {what}: the answer is not a list of objects: {_shown(answer)}"
        )
    return answer


def items(answer: Any, what: str) -> list[dict[str, Any]]:
    """The `items` of a search answer (searchCriteria)."""
    return rows(obj(answer, what).get("items"), what)


def _shown(answer: Any) -> str:
    return clip(_repr_of(answer), 80)


def _repr_of(answer: Any) -> str:
    try:
        return repr(answer)
    except RecursionError:
        return "…"
