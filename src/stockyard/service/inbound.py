"""What sources, channels and fulfillment services push in, turned into queue requests.

Each record becomes its own item (so one bad record fails alone and coalescing applies per
product). A signed push carries a message id: the items' idempotency keys derive from it,
so a delivery the sender repeats enqueues nothing new.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from stockyard.catalog.models import Customer, FulfillmentUpdate, Image, Order, Product
from stockyard.engine import Request
from stockyard.errors import InvalidInput
from stockyard.signing import SignatureError, verify

if TYPE_CHECKING:
    pass


@dataclass(frozen=True, slots=True)
class ImagePush:
    product: str  # the product's code
    image: Image


Record = Product | ImagePush | Customer | Order | FulfillmentUpdate | str


@dataclass(frozen=True, slots=True)
class Topic:
    name: str
    kind: str  # the connection kind that may push it
    instruction: str


TOPICS = {
    t.name: t
    for t in (
        Topic("products", "source", "sync_product"),
        Topic("images", "source", "sync_image"),
        Topic("customers", "source", "sync_customer"),
        Topic("orders", "channel", "sync_order"),
        Topic("fulfillments", "fulfillment", "sync_fulfillment"),
    )
}


def _dump(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json", exclude_defaults=True)


def _payload_and_refs(record: Record) -> tuple[dict[str, Any], tuple[str, ...]]:
    if isinstance(record, Product):
        return _dump(record), tuple(dict.fromkeys((record.key, *(v.sku for v in record.variants))))
    if isinstance(record, ImagePush):
        return {"product": record.product, "image": _dump(record.image)}, (record.product,)
    if isinstance(record, Customer):
        return _dump(record), (record.code,)
    if isinstance(record, Order):
        return {"order": _dump(record)}, (record.remote_id,)
    if isinstance(record, FulfillmentUpdate):
        return _dump(record), (record.remote_id,)
    # An order id alone: the channel is asked for the order when the item runs.
    return {"remote_id": record}, (record,)


def requests_for(
    topic: Topic, connection_id: int, records: Sequence[Record], message_id: str | None
) -> list[Request]:
    if not records:
        raise InvalidInput(f"{topic.name}: nothing to push")
    out = []
    for n, record in enumerate(records):
        payload, refs = _payload_and_refs(record)
        key = None if message_id is None else f"inbound:{connection_id}:{message_id}:{n}"
        out.append(Request(topic.instruction, payload, connection_id, refs, idempotency_key=key))
    return out


# What every refused push is told, whatever the reason: no such connection, another client's
# connection, a bad or missing signature or key. Saying which would tell a caller without
# credentials what exists and how it is secured.
REFUSED = (
    "push refused: sign it with the connection's webhook_secret (Standard Webhooks), or, for"
    " a connection without one, send an administrator's API key of its client"
)
# Unknown connections are checked against this, so they cost what a known one costs; made
# per process, so no signature can match it.
DUMMY_SECRET = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def signed_by(secret: str, headers: Mapping[str, str], body: bytes) -> bool:
    """Whether the push carries a signature made with `secret`, whatever its timestamp
    (checked after: only a sender that holds the secret is told its clock is off)."""
    try:
        stamp = int(headers.get("webhook-timestamp", ""))
        verify(secret, headers, body, now=stamp)
    except (ValueError, SignatureError):
        return False
    return True


# --- webhooks in a platform's own scheme ----------------------------------------------

# What every unauthenticated webhook is told, for the same reasons as REFUSED.
WEBHOOK_REFUSED = (
    "webhook refused: sign it the way the connection's platform does, with the secret"
    " kept as the connection's webhook_secret"
)
