"""Lanes: which are blocked and by what; pause and resume."""

from __future__ import annotations

from fastapi import APIRouter, Response

from stockyard.web.api import schemas as s
from stockyard.web.api.routes import CLIENT, ERRORS, ClientId, Id
from stockyard.web.deps import Caller, Service

router = APIRouter(prefix=CLIENT + "/lanes", tags=["lanes"], responses=ERRORS)


@router.get("", response_model=list[s.LaneOut])
def list_lanes(client_id: ClientId, who: Caller, service: Service) -> list[s.LaneOut]:
    """Every lane: blocked first, then paused, then by waiting work."""
    return [s.LaneOut.model_validate(v) for v in service.lanes(who, client_id)]


@router.post("/{lane_id}/pause", status_code=204)
def pause_lane(
    client_id: ClientId, lane_id: Id, who: Caller, service: Service, body: s.Pause | None = None
) -> Response:
    service.pause(who, client_id, lane_id, body.reason if body else "")
    return Response(status_code=204)


@router.post("/{lane_id}/resume", status_code=204)
def resume_lane(client_id: ClientId, lane_id: Id, who: Caller, service: Service) -> Response:
    service.resume(who, client_id, lane_id)
    return Response(status_code=204)
