"""Exponential back-off with full jitter (AWS architecture blog's recommendation)."""

from __future__ import annotations

import random

from stockyard.engine.instructions import RetryPolicy


def delay(policy: RetryPolicy, failures: int, rng: random.Random | None = None) -> float:
    """Seconds to wait after the `failures`-th consecutive transient failure (1-based)."""
    ceiling = min(policy.max_delay, policy.base_delay * 2.0 ** max(failures - 1, 0))
    # Half fixed, half random: spreads a thundering herd yet never retries instantly.
    jitter: float = (rng or random).uniform(0, ceiling / 2)
    return ceiling / 2 + jitter
