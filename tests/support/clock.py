"""A clock a test moves by hand (`clock.now += 5`): for the code that takes a clock (the
Shopify double's bucket, the client's pacing, the shared budget)."""

from __future__ import annotations


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
