"""Lists read page by page, and answers checked for the shape the connector reads.

A store's `X-WP-TotalPages` is only what it says: a caching proxy or a plugin can answer
a wrong count, or the same page whatever `page` asks. So a list stops at the first short
or empty page, never reads past min(X-WP-TotalPages, ceil(X-WP-Total / per_page)), and
refuses, naming the problem, a page that repeats one read before or a list longer than the
caller's most.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from stockyard.connectors.downloads import count
from stockyard.errors import PermanentError

if TYPE_CHECKING:
    from stockyard.connectors.woocommerce.client import WooCommerceClient

PER_PAGE = 100  # the most a wc/v3 list answers per page
Obj = dict[str, Any]


def read_all(
    api: WooCommerceClient, path: str, what: str, params: Mapping[str, str], most: int
) -> list[Obj]:
    """Every row of a list, at most `most` pages of PER_PAGE."""
    found: list[Obj] = []
    seen: set[Any] = set()
    page = 1
    while True:
        query = dict(params) | {"per_page": str(PER_PAGE), "page": str(page)}
        answer, headers = api.call("GET", path, what, None, query)
        rows = rows_of(answer, what)
        ids = {row_id(r, what) for r in rows}
        if rows and ids <= seen:
            raise PermanentError(
                f"woocommerce: {what}: page {page} repeats rows of an earlier page (is a cache"
                " in front of the store ignoring the `page` parameter?)"
            )
        seen |= ids
        found += rows
        if len(rows) < PER_PAGE or page >= last_page(headers):
            return found
        if page >= most:
            raise PermanentError(
                f"woocommerce: {what}: more than {most} pages of {PER_PAGE}, the most Stockyard"
                f" reads (the store says {headers.get('X-WP-TotalPages')} pages)"
            )
        page += 1


def last_page(headers: Mapping[str, str]) -> int:
    """The last page the headers allow: a count missing or unreadable ends the list."""
    pages = _count(headers.get("X-WP-TotalPages")) or 0
    total = _count(headers.get("X-WP-Total"))
    return pages if total is None else min(pages, math.ceil(total / PER_PAGE))


def _count(text: str | None) -> int | None:
    return None if text is None else count(text)


def rows_of(answer: Any, what: str) -> list[Obj]:
    """A list answer whose rows are objects, or a PermanentError saying it is not."""
    if not isinstance(answer, list) or not all(isinstance(r, dict) for r in answer):
        raise PermanentError(f"woocommerce: {what}: the answer is not a list of objects")
    return answer


def object_of(answer: Any, what: str) -> Obj:
    if not isinstance(answer, dict):
        raise PermanentError(f"woocommerce: {what}: the answer is not an object")
    return answer


def row_id(row: Obj, what: str) -> int | str:
    """A row's `id` (a number, or its digits), or a PermanentError: a store answering a
    list or an object there would otherwise fail far from here, as a TypeError."""
    found = row.get("id")
    if isinstance(found, bool) or not isinstance(found, int | str):
        raise PermanentError(f"woocommerce: {what}: a row's id is not a number")
    if isinstance(found, str) and count(found) is None:
        raise PermanentError(f"woocommerce: {what}: a row's id is not a number")
    return found


def batch_rows(answer: Any, action: str, sent: int, what: str) -> list[Any]:
    """A batch answer's rows for `action` ("create", "update"), one per item sent in that
    order, or a PermanentError saying what is wrong with the answer."""
    rows = object_of(answer, what).get(action) or []
    if not isinstance(rows, list):
        raise PermanentError(f"woocommerce: {what}: the answer's {action} is not a list")
    if len(rows) != sent:
        raise PermanentError(f"woocommerce: {what} answered {len(rows)} of {sent} {action}s")
    return rows


def batch_row(row: Any, what: str, quote: Callable[[Any], str]) -> Obj | PermanentError:
    """One item's row of a batch answer with its id, or the error the store (or the row's
    shape) says; `quote` takes the connection's secrets out of what the store said."""
    if not isinstance(row, dict):
        return PermanentError(f"woocommerce: {what}: the batch answered no object for it")
    error = row.get("error")
    if isinstance(error, dict):
        code, message = quote(error.get("code")), quote(error.get("message", ""))
        return PermanentError(f"woocommerce: {what}: {code}: {message}")
    try:
        row_id(row, what)
    except PermanentError as exc:
        return exc
    return row
