"""Lanes: one FIFO per source or channel; reading them, pausing and resuming them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from stockyard.service.base import OPERATE, READ, ServiceBase

if TYPE_CHECKING:
    from stockyard.accounts import Principal
    from stockyard.engine import LaneView


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
