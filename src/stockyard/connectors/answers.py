"""Reading a platform's answer with a cap on its size, shared by the connectors whose
clients talk JSON to a tenant-written address (Magento, Shopify, Oscar, WooCommerce).

The address may point at something that answers without end (a misconfigured proxy, a
file server, an attacker's host), and the worker that reads it is shared with other
tenants: an answer is refused at once when its Content-Length says it is over the cap,
and the count is kept while streaming, since a server may send no length, or lie. One
reader keeps the connectors from drifting apart on that; each still says in its own
words (`too_large`) what went wrong and which setting to check.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx

from stockyard.connectors.downloads import count


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
