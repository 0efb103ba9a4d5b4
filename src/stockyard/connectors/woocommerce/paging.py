"""Lists read page by page, and answers checked for the shape the connector reads.

A store's `X-WP-TotalPages` is only what it says: a caching proxy or a plugin can answer
a wrong count, or the same page whatever `page` asks. So a list stops at the first short
or empty page, never reads past min(X-WP-TotalPages, ceil(X-WP-Total / per_page)), and
refuses, naming the problem, a page that repeats one read before or a list longer than the
caller's most.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
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
        ids = {r.get("id") for r in rows}
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
