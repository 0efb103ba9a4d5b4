"""The address setting of a connector whose every request carries a secret (a token in a
header, Basic auth's key and secret): Magento's and WooCommerce's `url`, Oscar's `url`,
Shopify's `base_url`. Shared so that one rule holds for all of them:

- https only: over http the secret is readable by anyone on the way; http is let through
  only to this machine (a loopback host: a test double, a local proxy), which the
  outbound guard still lets through only when STOCKYARD_OUTBOUND_ALLOW says so;
- a host, and no user name or password (httpx would send them as Basic auth in place of,
  or beside, the secret, and settings are no place for a password);
- no query or fragment: the clients append API paths to the address.

Messages never repeat the value (pydantic's errors become the 422 a member reads); each
connector words the plain-http refusal itself (`why`), as it knows why it needs https.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

import httpx


def is_loopback(host: str) -> bool:
    """`host` is this machine: "localhost" or a loopback address (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def secret_bearing_url(value: str, why: str) -> str:
    """`value` unchanged if it is an address a secret may be sent to; else a ValueError
    (`why`: the plain-http refusal's words, e.g. "must be https:// (...)")."""
    try:
        httpx.URL(value)  # what the client will parse it with (e.g. IDNA it refuses)
    except httpx.InvalidURL:
        raise ValueError("not a valid URL") from None
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:  # e.g. an unclosed "[" or a port that is not a number
        parts, host = None, None
    if parts is None or not host:
        raise ValueError("must be an https:// URL with a host (the store's address)")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not carry a user name or password (user:password@)")
    # "?" or "#" alone leave an empty query or fragment, still not the store's address.
    if parts.query or parts.fragment or "?" in value or "#" in value:
        raise ValueError("must be the store's https:// address, without a query or fragment")
    if parts.scheme == "https" or (parts.scheme == "http" and is_loopback(host)):
        return value
    raise ValueError(why)
