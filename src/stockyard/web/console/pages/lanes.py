"""Lanes: one FIFO per source or channel; how each stands (what blocks it and since when,
how much waits, how fast it goes), pausing (confirmed first) and resuming them. The table
is a refresh region: /lanes/table serves it alone."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from stockyard.engine import LaneView
from stockyard.errors import Forbidden, InvalidInput, NotFound
from stockyard.web.console.auth import check_csrf
from stockyard.web.console.pages.common import Page, error_summary
from stockyard.web.console.pages.dashboard import LANE_STATES
from stockyard.web.query import Id

router = APIRouter()


def _state(request: Request) -> str | None:
    """The ?state= the dashboard's lane counts link with: only lanes in that state."""
    state = request.query_params.get("state") or None
    if state is not None and state not in LANE_STATES:
        raise InvalidInput(f"state: one of {', '.join(LANE_STATES)}, not {state[:20]!r}")
    return state


def _table(page: Page, state: str | None) -> dict[str, Any]:
    lanes = page.service.lanes(page.who, page.client_id)
    if state is not None:
        lanes = [lane for lane in lanes if lane.state == state]
    rates = page.service.lane_rates(page.who, page.client_id, lanes)
    return {
        "lanes": lanes,
        "pace": {
            lane.lane_id: (
                _per_minute(rates[lane.lane_id].per_minute),
                # A stopped lane drains at no pace, whatever it did before it stopped.
                "—"
                if lane.state in ("blocked", "paused")
                else _duration(rates[lane.lane_id].drain_minutes),
            )
            for lane in lanes
        },
        "state": state,
        "errors": {lane.lane_id: error_summary(lane.head_error) for lane in lanes},
    }


def _per_minute(rate: float) -> str:
    if rate == 0:
        return "0"
    return f"{rate:,.0f}" if rate >= 10 else f"{rate:.1f}"


def _duration(minutes: float | None) -> str:
    """Minutes as a person reads them: "under a minute", "12 min", "3 h 20 min", "2 d 4 h";
    "—" when there is nothing to estimate."""
    if minutes is None:
        return "—"
    if minutes < 1:
        return "under a minute"
    whole = round(minutes)
    days, rest = divmod(whole, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days:,} d {hours} h" if hours else f"{days:,} d"
    if hours:
        return f"{hours} h {mins} min" if mins else f"{hours} h"
    return f"{mins} min"


@router.get("/clients/{client_id}/lanes")
def lanes(request: Request, client_id: Id) -> Response:
    page = Page(request, client_id)
    return page.render("lanes.html", **_table(page, _state(request)))


@router.get("/clients/{client_id}/lanes/table")
def lanes_table(request: Request, client_id: Id) -> Response:
    """The lanes table alone (console.js swaps it in)."""
    page = Page(request, client_id)
    return page.render("lanes.html", fragment=True, **_table(page, _state(request)))


@router.post("/clients/{client_id}/lanes/{lane_id}/{action}")
async def lane_action(request: Request, client_id: Id, lane_id: Id, action: str) -> Response:
    page = Page(request, client_id)
    await check_csrf(request, page.session)
    form = await request.form()  # read once by Starlette, cached
    if action not in ("pause", "resume"):
        raise InvalidInput(f"unknown action {action!r}")
    if not page.can_operate:  # before a confirmation of what the role may not do
        raise Forbidden(
            f"this needs the operator role; yours is {page.client and page.client.role}"
        )
    if action == "pause" and form.get("confirmed") != "yes":
        return _confirm_pause(page, lane_id)
    if action == "pause":
        page.service.pause(page.who, client_id, lane_id, "paused in the console")
    else:
        # Resuming only lets work go on again: nothing to confirm.
        page.service.resume(page.who, client_id, lane_id)
    return RedirectResponse(page.url("/lanes", msg=f"Lane {lane_id}: {action}d."), 303)


def _confirm_pause(page: Page, lane_id: int) -> Response:
    lane = next(
        (x for x in page.service.lanes(page.who, page.client_id) if x.lane_id == lane_id), None
    )
    if lane is None:
        raise NotFound(f"no lane {lane_id}")
    effects, warnings = _pause_effects(lane)
    return page.render(
        "confirm_action.html",
        title=f"Pause the lane of {lane.description}?",
        effects=effects,
        warnings=warnings,
        post_to=page.url(f"/lanes/{lane_id}/pause"),
        fields={},
        button="Pause the lane",
        danger=True,
        back=page.url("/lanes"),
    )


def _pause_effects(lane: LaneView) -> tuple[list[str], list[str]]:
    """What pausing does to this lane as it stands: a blocked lane runs nothing already,
    and the pause is what keeps it stopped once its head is dealt with."""
    waiting = f"{lane.waiting:,} item{'' if lane.waiting == 1 else 's'} waiting behind"
    if lane.state == "blocked":
        effects = [
            f"Nothing runs in it now: its head item failed ({waiting} the failed item).",
            "Paused, it stays stopped after a retry or skip until someone resumes it:"
            " the items behind the head do not start on their own.",
        ]
    else:
        effects = [
            f"The lane of {lane.description} stops taking new work: the item running now"
            " finishes, then nothing more starts until it is resumed.",
        ]
    effects.append(
        "Nothing is lost: its pending items stay queued, in order, and new items keep"
        " arriving behind them."
    )
    warnings = []
    if lane.pending:
        behind = f"{waiting} the head item" if lane.head_id else f"{lane.pending:,} items"
        warnings.append(f"{behind} will wait until someone resumes the lane.")
    return effects, warnings
