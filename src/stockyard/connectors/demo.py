"""The `demo` connector: each item does what its payload says, so the queue's rules can be
watched and tested without any remote system.

Payload keys (all optional):
- "sleep": seconds to work (default 0);
- "fail": "transient" or "permanent";
- "times": with "fail": "transient", fail only the first N attempts, then succeed;
- "message": the error message;
- "then": a list of follow-up items, each {"instruction", "payload", "connection_id", "refs"}.
"""

from __future__ import annotations

import asyncio

from stockyard.connectors.base import Connector
from stockyard.engine.handlers import Context
from stockyard.errors import PermanentError, TransientError


class DemoConnector(Connector):
    """Registered so `demo` connections can be created like any other; their items never
    reach it: the demo handler below runs them instead (see stockyard.app)."""

    roles = frozenset({"source", "channel", "fulfillment"})


async def handle(ctx: Context) -> None:
    payload = ctx.payload
    pause = payload.get("sleep")
    if pause:
        await asyncio.sleep(float(pause))
    failure = payload.get("fail")
    message = str(payload.get("message") or f"demo {failure} failure")
    if failure == "permanent":
        raise PermanentError(message)
    if failure == "transient" and ctx.job.attempt <= int(payload.get("times", 1_000_000)):
        raise TransientError(message)
    for follow in payload.get("then", ()):
        ctx.enqueue(
            follow["instruction"],
            follow.get("payload"),
            follow.get("connection_id"),
            follow.get("refs", ()),
        )
