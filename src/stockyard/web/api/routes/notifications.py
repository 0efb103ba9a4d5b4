"""Subscriptions to notices: email addresses and webhook endpoints."""

from __future__ import annotations

from fastapi import APIRouter, Response

from stockyard.web.api import schemas as s
from stockyard.web.api.routes import CLIENT, ERRORS, ClientId, Id
from stockyard.web.deps import Caller, Service

router = APIRouter(prefix=CLIENT + "/subscriptions", tags=["notifications"], responses=ERRORS)


@router.get("", response_model=list[s.SubscriptionOut])
def list_subscriptions(
    client_id: ClientId, who: Caller, service: Service
) -> list[s.SubscriptionOut]:
    return [s.SubscriptionOut.model_validate(x) for x in service.list_subscriptions(who, client_id)]


@router.post("", status_code=201, response_model=s.CreatedSubscription)
def subscribe(
    client_id: ClientId, body: s.NewSubscription, who: Caller, service: Service
) -> s.CreatedSubscription:
    """A webhook's answer holds its signing secret (Standard Webhooks, `whsec_…`), this
    once: keep it to verify what Stockyard sends."""
    sub, secret = service.subscribe(
        who, client_id, body.kind, body.target, body.events, body.connections
    )
    return s.CreatedSubscription(
        **s.SubscriptionOut.model_validate(sub).model_dump(), secret=secret
    )


@router.delete("/{subscription_id}", status_code=204)
def unsubscribe(
    client_id: ClientId, subscription_id: Id, who: Caller, service: Service
) -> Response:
    service.unsubscribe(who, client_id, subscription_id)
    return Response(status_code=204)
