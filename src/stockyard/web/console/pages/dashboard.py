"""The dashboard: the queue over time (charts with axes, values on hover, a range to
choose), where failures are (each bar a link to those items in the queue), and how the
lanes stand. Its panel is a refresh region: /dashboard/panel serves the panel alone."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from stockyard.errors import InvalidInput
from stockyard.web.console.pages.common import Page, utc
from stockyard.web.query import Id

router = APIRouter()

RANGES = {"1h": 3600, "6h": 6 * 3600, "24h": 24 * 3600, "7d": 7 * 86400}
DEFAULT_RANGE = "24h"
BUCKETS = 60  # points a chart draws whatever the range: one hover target each
# The drawing's coordinates (the SVG scales to its box; its text keeps its proportions).
WIDTH, HEIGHT = 600, 170
LEFT, RIGHT, TOP, BOTTOM = 76, 594, 10, 150
LANE_STATES = ("blocked", "paused", "running", "ready", "waiting", "idle")


@dataclass(frozen=True, slots=True)
class Point:
    start: float
    end: float
    value: float | None  # None: no sample in the bucket (the workers were not recording)
    x: float
    y: float
    width: float

    @property
    def title(self) -> str:
        shown = "no sample" if self.value is None else f"{_round(self.value):,}"
        return f"{utc(self.start)} to {utc(self.end)[11:]}: {shown}"


@dataclass(frozen=True, slots=True)
class Chart:
    key: str
    title: str
    unit: str
    points: list[Point]
    peak: float
    now: float | None
    start: float
    end: float
    link: str | None = None  # the queue's view of what the chart counts

    @property
    def polyline(self) -> str:
        return " ".join(
            f"{p.x + p.width / 2:.1f},{p.y:.1f}" for p in self.points if p.value is not None
        )

    @property
    def y_ticks(self) -> list[tuple[float, str]]:
        """(y, label) for 0, the middle and the peak (a flat zero is drawn on 0 to 1)."""
        top = self.peak or 1
        return [
            (BOTTOM, "0"),
            ((TOP + BOTTOM) / 2, f"{_round(top / 2):,}"),
            (TOP, f"{_round(top):,}"),
        ]

    @property
    def now_text(self) -> str:
        return "—" if self.now is None else f"{_round(self.now):,}"

    @property
    def peak_text(self) -> str:
        return f"{_round(self.peak):,}"

    @property
    def x_ticks(self) -> list[float]:
        """Times under the chart: its start, middle and end."""
        return [self.start, (self.start + self.end) / 2, self.end]


def _round(value: float) -> int | float:
    return round(value) if value >= 10 or value == int(value) else round(value, 1)


def _range(request: Request) -> str:
    chosen = request.query_params.get("range") or DEFAULT_RANGE
    if chosen not in RANGES:
        raise InvalidInput(f"range: one of {', '.join(RANGES)}, not {chosen[:20]!r}")
    return chosen


def chart(
    key: str,
    title: str,
    unit: str,
    samples: list[tuple[float, float]],
    start: float,
    end: float,
    combine: str,
    link: str | None = None,
) -> Chart:
    """`samples` (time, value) in BUCKETS buckets between `start` and `end`: each bucket's
    mean ("mean": a rate) or its highest value ("max": a level, so peaks show)."""
    span = (end - start) / BUCKETS
    groups: list[list[float]] = [[] for _ in range(BUCKETS)]
    for t, v in samples:
        if start <= t <= end:
            groups[min(int((t - start) / span), BUCKETS - 1)].append(v)
    values = [None if not g else (sum(g) / len(g) if combine == "mean" else max(g)) for g in groups]
    peak = max((v for v in values if v is not None), default=0.0)
    scale = peak or 1.0
    step = (RIGHT - LEFT) / BUCKETS
    points = [
        Point(
            start + i * span,
            start + (i + 1) * span,
            v,
            LEFT + i * step,
            BOTTOM - (0 if v is None else v / scale * (BOTTOM - TOP)),
            step,
        )
        for i, v in enumerate(values)
    ]
    now = next((v for v in reversed(values) if v is not None), None)
    return Chart(key, title, unit, points, peak, now, start, end, link)


def _panel(page: Page, chosen: str) -> dict[str, Any]:
    end = time.time()
    start = end - RANGES[chosen]
    samples = page.service.queue_history(page.who, page.client_id, start)
    by_instruction, by_connection = page.service.failures_by(page.who, page.client_id)
    names = {c.id: c.description for c in page.service.connections(page.who, page.client_id)}
    lanes = page.service.lanes(page.who, page.client_id)
    states = {s: sum(1 for lane in lanes if lane.state == s) for s in LANE_STATES}
    failed = page.url("/items", status="failed")
    return {
        "range": chosen,
        "ranges": list(RANGES),
        "charts": [
            chart(
                "finished",
                "Finished per minute",
                "items a minute",
                [(t, d) for t, _, _, d in samples],
                start,
                end,
                "mean",
            ),
            chart(
                "queued",
                "Backlog (queued)",
                "items queued",
                [(t, q) for t, q, _, _ in samples],
                start,
                end,
                "max",
            ),
            chart(
                "failed",
                "Failed",
                "items failed",
                [(t, f) for t, _, f, _ in samples],
                start,
                end,
                "max",
                failed,
            ),
        ],
        "by_instruction": [
            (name, n, page.url("/items", status="failed", instruction=name))
            for name, n in by_instruction
        ],
        "by_connection": [
            (
                names.get(c, f"connection {c}") if c else "no connection",
                n,
                page.url("/items", status="failed", connection_id=c) if c else None,
            )
            for c, n in by_connection
        ],
        "lane_states": [(s, n) for s, n in states.items() if n or s in ("blocked", "paused")],
        "lanes_total": len(lanes),
    }


@router.get("/clients/{client_id}/dashboard")
def dashboard(request: Request, client_id: Id) -> Response:
    page = Page(request, client_id)
    return page.render("dashboard.html", **_panel(page, _range(request)))


@router.get("/clients/{client_id}/dashboard/panel")
def dashboard_panel(request: Request, client_id: Id) -> Response:
    """The dashboard's refresh region alone (console.js swaps it in)."""
    page = Page(request, client_id)
    return page.render("dashboard.html", fragment=True, **_panel(page, _range(request)))
