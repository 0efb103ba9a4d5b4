"""Handlers that record what ran, for the lane rules' tests."""

from __future__ import annotations

import asyncio
import threading

from stockyard.engine import Queue
from stockyard.engine.handlers import Context, HandlerRegistry
from stockyard.errors import PermanentError, TransientError
from stockyard.flows.catalog import default_instructions
from stockyard.tenancy import Tenancy


class Recorder:
    """Handlers that log what ran, and fail as the payload says."""

    def __init__(self) -> None:
        self.runs: list[tuple[int, int | None]] = []
        self.lock = threading.Lock()
        self.running: dict[int | None, int] = {}
        self.max_parallel_per_lane = 0

    async def handle(self, ctx: Context) -> None:
        lane = ctx.job.lane_id
        with self.lock:
            self.runs.append((ctx.job.id, lane))
            if lane is not None:
                self.running[lane] = self.running.get(lane, 0) + 1
                self.max_parallel_per_lane = max(self.max_parallel_per_lane, self.running[lane])
        try:
            await asyncio.sleep(float(ctx.payload.get("sleep", 0)))
            fail = ctx.payload.get("fail")
            if fail == "permanent":
                raise PermanentError("bad data")
            if fail == "transient" and ctx.job.attempt <= int(ctx.payload.get("times", 99)):
                raise TransientError("HTTP 503")
            for follow in ctx.payload.get("then", []):
                ctx.enqueue(follow, {}, ctx.job.connection_id)
        finally:
            if lane is not None:
                with self.lock:
                    self.running[lane] -= 1

    def registry(self) -> HandlerRegistry:
        reg = HandlerRegistry()
        reg.register_all(default_instructions().names(), self.handle)
        return reg

    def order(self, lane: int) -> list[int]:
        return [i for i, lane_id in self.runs if lane_id == lane]


def channel(queue: Queue, client_id: int, name: str = "Shop") -> int:
    return Tenancy(queue.db).add_connection(client_id, "channel", "demo", name).id


def status(queue: Queue, client_id: int, item_id: int) -> str:
    return queue.get(client_id, item_id).status
