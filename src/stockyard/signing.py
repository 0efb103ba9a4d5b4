"""Standard Webhooks signatures (https://www.standardwebhooks.com): HMAC-SHA256 over
"<webhook-id>.<webhook-timestamp>.<body>", sent base64-encoded as `v1,<signature>` in the
`webhook-signature` header. Stockyard checks inbound pushes with it and signs the
webhooks it sends the same way.

A secret written `whsec_<base64>` is the standard's form (its key is the decoded bytes);
any other string is used as is.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping

TOLERANCE = 300.0  # seconds a signed message stays acceptable: replays after it are refused


class SignatureError(Exception):
    """The message is unsigned, signed with another secret, or too old or too new."""


def _key(secret: str) -> bytes:
    if secret.startswith("whsec_"):
        try:
            return base64.b64decode(secret[len("whsec_") :], validate=True)
        except binascii.Error:
            pass
    return secret.encode()


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def sign(secret: str, message_id: str, body: bytes, now: float | None = None) -> dict[str, str]:
    """The three headers a signed message carries."""
    timestamp = int(time.time() if now is None else now)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secret, message_id, timestamp, body),
    }


def verify(secret: str, headers: Mapping[str, str], body: bytes, now: float | None = None) -> str:
    """The message's id once its signature and timestamp check out; else SignatureError."""
    message_id = headers.get("webhook-id")
    stamp = headers.get("webhook-timestamp")
    given = headers.get("webhook-signature")
    if not message_id or not stamp or not given:
        raise SignatureError(
            "missing signature: send webhook-id, webhook-timestamp and webhook-signature"
        )
    try:
        timestamp = int(stamp)
    except ValueError:
        raise SignatureError("webhook-timestamp must be whole seconds since the epoch") from None
    now = time.time() if now is None else now
    if abs(now - timestamp) > TOLERANCE:
        raise SignatureError(
            f"webhook-timestamp is more than {int(TOLERANCE)} s from now: a replay, or a clock"
            " that is off"
        )
    expected = signature(secret, message_id, timestamp, body)
    # The header may list several signatures (e.g. during a secret rotation).
    if not any(hmac.compare_digest(expected, s) for s in given.split()):
        raise SignatureError("signature does not match: check the connection's webhook_secret")
    return message_id
