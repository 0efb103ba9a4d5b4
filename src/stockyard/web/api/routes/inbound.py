"""Pushes from sources (products, images, customers), channels (orders) and fulfillment
services (status): each record becomes a queue item.

Authentication: a connection with a `webhook_secret` secret accepts only pushes signed
with it by the Standard Webhooks scheme (webhook-id, webhook-timestamp and
webhook-signature headers; a repeated webhook-id enqueues nothing new, and a timestamp more
than 5 minutes off is refused). A connection without one accepts an administrator's key.

Webhooks in a platform's own scheme (POST .../webhooks/{topic}) are checked by the
connection's connector class (stockyard.connectors.webhooks), with the same secret.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials
from starlette.concurrency import run_in_threadpool

from stockyard.errors import Unauthenticated
from stockyard.service.inbound import ImagePush, Record
from stockyard.service.push import Pushed
from stockyard.web.api import schemas as s
from stockyard.web.api.routes import ERRORS, Id
from stockyard.web.deps import Service, address, bearer, ensure_tokens, state, token

router = APIRouter(prefix="/v1/inbound/{connection_id}", tags=["inbound"], responses=ERRORS)
Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
WebhookTopic = Annotated[str, Path(max_length=100, pattern=r"^[a-z0-9_]+(/[a-z0-9_]+)*$")]


async def _push(
    request: Request,
    service: Service,
    credentials: HTTPAuthorizationCredentials | None,
    connection_id: int,
    topic: str,
    records: Sequence[Record],
) -> s.Accepted:
    body = await request.body()
    return await _guarded(
        request,
        connection_id,
        lambda: Pushed(
            service.push(connection_id, topic, records, body, request.headers, token(credentials)),
            signed=True,
        ),
    )


async def _guarded(request: Request, connection_id: int, push: Callable[[], Pushed]) -> s.Accepted:
    # Refused pushes spend their address's tokens, like failed sign-ins: guessing
    # connection ids or secrets does not get a fresh allowance per id.
    # The connection's own budget is only looked at here and spent once the push proved
    # it comes from the sender: anyone can aim unsigned pushes at a connection id, and
    # those must not use up the real sender's allowance (they spend their address's).
    at = f"addr:{address(request)}"
    connection = f"inbound:{connection_id}"
    ensure_tokens(request, at, connection)
    limiter = state(request).limiter
    try:
        pushed = await run_in_threadpool(push)
    except Unauthenticated:
        limiter.take(at)
        raise
    except Exception:
        # Authenticated but refused (a replay, the wrong topic): the sender's own doing.
        limiter.take(connection)
        raise
    # Accepted unsigned (a platform's ping): anyone could have sent it.
    limiter.take(connection if pushed.signed else at)
    return s.Accepted(items=pushed.items)


@router.post("/products", status_code=202, response_model=s.Accepted)
async def push_products(
    connection_id: Id, body: s.ProductsPush, request: Request, service: Service, auth: Bearer
) -> s.Accepted:
    """From a source: each product becomes a sync_product item in the source's lane."""
    return await _push(request, service, auth, connection_id, "products", body.products)


@router.post("/images", status_code=202, response_model=s.Accepted)
async def push_images(
    connection_id: Id, body: s.ImagesPush, request: Request, service: Service, auth: Bearer
) -> s.Accepted:
    records = [ImagePush(i.product, i.image) for i in body.images]
    return await _push(request, service, auth, connection_id, "images", records)


@router.post("/customers", status_code=202, response_model=s.Accepted)
async def push_customers(
    connection_id: Id, body: s.CustomersPush, request: Request, service: Service, auth: Bearer
) -> s.Accepted:
    return await _push(request, service, auth, connection_id, "customers", body.customers)


@router.post("/orders", status_code=202, response_model=s.Accepted)
async def push_orders(
    connection_id: Id, body: s.OrdersPush, request: Request, service: Service, auth: Bearer
) -> s.Accepted:
    """From a channel: whole orders, or ids the channel is asked for when the item runs."""
    records: list[Record] = [*body.orders, *body.remote_ids]
    return await _push(request, service, auth, connection_id, "orders", records)


@router.post("/fulfillments", status_code=202, response_model=s.Accepted)
async def push_fulfillments(
    connection_id: Id, body: s.FulfillmentsPush, request: Request, service: Service, auth: Bearer
) -> s.Accepted:
    """From a fulfillment service: status and tracking of fulfillments it holds."""
    return await _push(request, service, auth, connection_id, "fulfillments", body.fulfillments)


# 200, not 202 like the other pushes: WooCommerce's webhook ping (WC_Webhook::deliver_ping)
# fails on anything but exactly 200, and the merchant cannot save the webhook; Shopify and
# WooCommerce's deliveries take any 2xx.
@router.post("/webhooks/{topic:path}", status_code=200, response_model=s.Accepted)
async def push_webhook(
    connection_id: Id, topic: WebhookTopic, request: Request, service: Service
) -> s.Accepted:
    """A webhook in the connection's platform's own scheme (e.g. Shopify's
    X-Shopify-Hmac-Sha256, signed with the app's client secret kept as the connection's
    webhook_secret), on one of the topics its connector takes (e.g. orders/create). The
    raw body is what is signed, so it is read as is. Answered 200 with the items queued."""
    body = await request.body()
    return await _guarded(
        request,
        connection_id,
        lambda: service.push_webhook(connection_id, topic, body, request.headers),
    )
