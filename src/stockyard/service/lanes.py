"""Lanes: one FIFO per source or channel; reading them, pausing and resuming them."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from stockyard.samples import Samples
from stockyard.service.base import OPERATE, READ, ServiceBase

if TYPE_CHECKING:
    from stockyard.accounts import Principal
    from stockyard.engine import LaneView


THROUGHPUT_WINDOW = 15 * 60.0  # seconds of finished items a lane's throughput is read from


@dataclass(frozen=True, slots=True)
class LaneRate:
    """How fast a lane has been going: items finished per minute over the last
    `THROUGHPUT_WINDOW`, and the minutes its waiting items would take at that pace (None
    when nothing waits or nothing finished, so no estimate can be made)."""

    per_minute: float
    drain_minutes: float | None


class LanesService(ServiceBase):
    def lanes(self, who: Principal, client_id: int) -> list[LaneView]:
        self._allow(who, client_id, READ)
        return self.queue.lanes(client_id)

    def pause(self, who: Principal, client_id: int, lane_id: int, reason: str) -> None:
        self._allow(who, client_id, OPERATE)
        self.queue.pause(client_id, lane_id, who.actor, reason)

    def resume(self, who: Principal, client_id: int, lane_id: int) -> None:
        self._allow(who, client_id, OPERATE)
        self.queue.resume(client_id, lane_id, who.actor)

    def lane_rates(
        self, who: Principal, client_id: int, lanes: list[LaneView]
    ) -> dict[int, LaneRate]:
        """Throughput and time to drain of the given lanes of the client (as `lanes`
        returned them: one read of the items finished in the window, not per lane)."""
        self._allow(who, client_id, READ)
        since = time.time() - THROUGHPUT_WINDOW
        finished = Samples(self.queue).finished_by_lane(client_id, since)
        minutes = THROUGHPUT_WINDOW / 60
        rates = {}
        for lane in lanes:
            per_minute = finished.get(lane.lane_id, 0) / minutes
            # Everything pending drains, the head included.
            pending = lane.pending
            drain = pending / per_minute if pending and per_minute else None
            rates[lane.lane_id] = LaneRate(per_minute, drain)
        return rates
