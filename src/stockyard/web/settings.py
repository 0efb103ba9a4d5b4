"""The HTTP application's limits, apart from its code: the CLI reads them from its options
without loading FastAPI."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ApiSettings:
    """Limits of every HTTP caller, of the API and the console alike."""

    max_body: int = 5 * 1024 * 1024
    rate_per_second: float = 50.0  # per caller; 0 turns the limit off
    rate_burst: int = 200
