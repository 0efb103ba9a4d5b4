"""The dashboard: the queue over time and where failures are."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from stockyard.web.console.pages.common import Page
from stockyard.web.query import Id

router = APIRouter()


CHART_W, CHART_H = 600, 120


def chart(points: list[tuple[float, int]], start: float, end: float) -> dict[str, Any]:
    """An SVG polyline of `points` (time, value) between `start` and `end`."""
    top = max((v for _, v in points), default=0) or 1
    span = max(end - start, 1.0)
    coords = " ".join(
        f"{(t - start) / span * CHART_W:.1f},{CHART_H - v / top * (CHART_H - 4):.1f}"
        for t, v in points
    )
    return {
        "points": coords,
        "top": top,
        "last": points[-1][1] if points else 0,
        "width": CHART_W,
        "height": CHART_H,
    }


@router.get("/clients/{client_id}/dashboard")
def dashboard(request: Request, client_id: Id) -> Response:
    page = Page(request, client_id)
    hours = 24
    end = time.time()
    start = end - hours * 3600
    samples = page.service.queue_history(page.who, client_id, start)
    if samples and samples[0][0] < end - 60:
        start = samples[0][0]  # a short history fills the chart rather than its last inch
    by_instruction, by_connection = page.service.failures_by(page.who, client_id)
    names = {c.id: c.description for c in page.service.connections(page.who, client_id)}
    return page.render(
        "dashboard.html",
        hours=hours,
        charts=[
            ("Finished per minute", chart([(t, d) for t, _, _, d in samples], start, end)),
            ("Backlog (queued)", chart([(t, q) for t, q, _, _ in samples], start, end)),
            ("Failed", chart([(t, f) for t, _, f, _ in samples], start, end)),
        ],
        by_instruction=by_instruction,
        by_connection=[(names.get(c, "none") if c else "none", n) for c, n in by_connection],
    )
