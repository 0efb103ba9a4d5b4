"""Connections: sources, channels and fulfillment services, with write-only secrets."""

from __future__ import annotations

from fastapi import APIRouter

from stockyard.web.api import schemas as s
from stockyard.web.api.routes import CLIENT, ERRORS, ClientId, Id
from stockyard.web.deps import Caller, Service

router = APIRouter(prefix=CLIENT + "/connections", tags=["connections"], responses=ERRORS)


@router.get("", response_model=list[s.ConnectionOut])
def list_connections(client_id: ClientId, who: Caller, service: Service) -> list[s.ConnectionOut]:
    return [s.ConnectionOut.model_validate(c) for c in service.connections(who, client_id)]


@router.post("", status_code=201, response_model=s.ConnectionOut)
def create_connection(
    client_id: ClientId, body: s.NewConnection, who: Caller, service: Service
) -> s.ConnectionOut:
    """Settings are checked by the connector now, not when the first item fails."""
    view = service.create_connection(
        who,
        client_id,
        body.kind,
        body.connector,
        body.description,
        body.settings,
        body.secrets,
        None if body.limits is None else body.limits.limits(),
    )
    return s.ConnectionOut.model_validate(view)


@router.get("/{connection_id}", response_model=s.ConnectionOut)
def get_connection(
    client_id: ClientId, connection_id: Id, who: Caller, service: Service
) -> s.ConnectionOut:
    return s.ConnectionOut.model_validate(service.connection(who, client_id, connection_id))


@router.patch("/{connection_id}", response_model=s.ConnectionOut)
def update_connection(
    client_id: ClientId, connection_id: Id, body: s.ConnectionChange, who: Caller, service: Service
) -> s.ConnectionOut:
    view = service.update_connection(
        who, client_id, connection_id, body.description, body.settings, body.secrets
    )
    return s.ConnectionOut.model_validate(view)


@router.post("/{connection_id}/disable", response_model=s.ConnectionOut)
def disable_connection(
    client_id: ClientId, connection_id: Id, who: Caller, service: Service
) -> s.ConnectionOut:
    """Pauses its lane and refuses what it pushes in, until enabled again."""
    return s.ConnectionOut.model_validate(
        service.set_connection_enabled(who, client_id, connection_id, False)
    )


@router.post("/{connection_id}/enable", response_model=s.ConnectionOut)
def enable_connection(
    client_id: ClientId, connection_id: Id, who: Caller, service: Service
) -> s.ConnectionOut:
    return s.ConnectionOut.model_validate(
        service.set_connection_enabled(who, client_id, connection_id, True)
    )


@router.put("/{connection_id}/limits", response_model=s.ConnectionOut)
def set_connection_limits(
    client_id: ClientId, connection_id: Id, body: s.LimitsIn, who: Caller, service: Service
) -> s.ConnectionOut:
    """Replaces how hard the workers may drive the connection's remote system, on every
    worker and machine together; items beyond the limits wait, they never fail. Any kind of
    connection: a source's or channel's lane head counts toward them too."""
    view = service.set_connection_limits(who, client_id, connection_id, body.limits())
    return s.ConnectionOut.model_validate(view)
