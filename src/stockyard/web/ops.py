"""Health, readiness and Prometheus metrics, of the process rather than of the API or the
console (unauthenticated: keep them off the internet)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from stockyard.metrics import CONTENT_TYPE
from stockyard.web.deps import state
from stockyard.web.problems import problem

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=dict[str, str])
def healthz() -> dict[str, str]:
    """The process answers."""
    return {"status": "ok"}


@router.get("/readyz", response_model=dict[str, str], responses={503: {"description": "not ready"}})
async def readyz(request: Request) -> Response:
    """The database answers and its schema is current."""
    if await run_in_threadpool(state(request).service.ready):
        return Response('{"status":"ready"}', media_type="application/json")
    return problem(503, "the database is unreachable or not initialised (stockyard init)")


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE: {}}}})
async def metrics(request: Request) -> Response:
    body = await run_in_threadpool(state(request).metrics.render)
    return Response(body, media_type=CONTENT_TYPE)
