"""Settings checks of the `shopify` connector that a pattern alone says badly.

Messages never repeat the value: pydantic's errors become the 422 a member reads, and the
token is a secret."""

from __future__ import annotations

import re
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator

# What a header value can carry unchanged; Shopify's tokens (shpat_ + hex) are a subset.
_TOKEN = re.compile(r"[\x21-\x7e]+")
# Where http:// is allowed: a test double or a local proxy on this machine, which the
# outbound guard lets through only when STOCKYARD_OUTBOUND_ALLOW says so.
LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


def _token(value: str) -> str:
    # A NUL, CR or LF passes a plain string check, then every request fails with the
    # transport's message quoting the header: refused here, where it is typed.
    if not _TOKEN.fullmatch(value):
        raise ValueError("must be printable ASCII without spaces, as Shopify issues it")
    return value


def _base_url(value: str) -> str:
    # The token travels in a header: over http it is readable by anyone on the way.
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:
        host, parts = None, None
    if parts is None or not host:
        raise ValueError("must be an https:// URL with a host")
    if parts.scheme == "https" or (parts.scheme == "http" and host in LOOPBACK):
        return value
    raise ValueError("must be https:// (http:// only to a loopback address, for tests)")


AccessToken = Annotated[str, AfterValidator(_token)]
BaseUrl = Annotated[str, AfterValidator(_base_url)]
