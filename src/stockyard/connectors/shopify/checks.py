"""Settings checks of the `shopify` connector that a pattern alone says badly.

Messages never repeat the value: pydantic's errors become the 422 a member reads, and the
token is a secret."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

from stockyard.connectors.urls import secret_bearing_url

# What a header value can carry unchanged; Shopify's tokens (shpat_ + hex) are a subset.
_TOKEN = re.compile(r"[\x21-\x7e]+")


def _token(value: str) -> str:
    # A NUL, CR or LF passes a plain string check, then every request fails with the
    # transport's message quoting the header: refused here, where it is typed.
    if not _TOKEN.fullmatch(value):
        raise ValueError("must be printable ASCII without spaces, as Shopify issues it")
    return value


def _base_url(value: str) -> str:
    # The token travels in a header: over http it is readable by anyone on the way.
    return secret_bearing_url(
        value, "must be https:// (http:// only to a loopback address, for tests)"
    )


AccessToken = Annotated[str, AfterValidator(_token)]
BaseUrl = Annotated[str, AfterValidator(_base_url)]
