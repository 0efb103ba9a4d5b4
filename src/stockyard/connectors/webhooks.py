"""Webhooks in a platform's own scheme (e.g. Shopify's X-Shopify-Hmac-Sha256), received
at POST /v1/inbound/{connection}/webhooks/{topic}. A connector class that takes them
defines a classmethod

    read_webhook(topic, body, headers, secret, settings) -> Delivery

which checks the signature with the connection's `webhook_secret` (raising `Unsigned`
when it does not match), then anything else the platform's scheme asks (raising
Unauthenticated or InvalidInput with a message for the sender), and says what to enqueue.
The web and service layers know nothing of any platform."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

# Made per process, so that no signature can match it.
_DUMMY_KEY = secrets.token_bytes(32)


@dataclass(frozen=True, slots=True)
class Delivery:
    """What one webhook asks for: records of an inbound topic (e.g. "orders": channel
    order ids, read by id when each item runs), under the sender's delivery id, so that a
    repeated delivery enqueues nothing new. No records: accepted, nothing to do.

    `unsigned`: a delivery the platform cannot sign (e.g. WooCommerce's ping), accepted
    by its connector without a signature. It proves nothing of its sender, so it queues
    nothing, whatever it names, and its cost is charged to its sender's address."""

    message_id: str
    topic: str
    records: tuple[str, ...]
    unsigned: bool = False


class Unsigned(Exception):
    """The signature is missing or was made with another secret. The caller is told
    nothing more than any other refused push."""


def hmac_sha256_base64(secret: str, body: bytes) -> str:
    """Base64 of the HMAC-SHA256 of a webhook's raw body, keyed with its secret: the
    signature Shopify (X-Shopify-Hmac-Sha256) and WooCommerce (X-WC-Webhook-Signature)
    both send, so both are checked with the one function."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def dummy_check(body: bytes) -> None:
    """The work a platform's signature check costs (an HMAC-SHA256 of the whole raw body,
    compared in constant time), done for a webhook refused before any real check (no such
    connection, no webhooks, no secret): every refusal then takes as long as a bad
    signature, so its timing does not tell which connections exist or how they are set."""
    hmac.compare_digest(hmac.new(_DUMMY_KEY, body, hashlib.sha256).digest(), _DUMMY_KEY)
