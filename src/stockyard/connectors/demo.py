"""The `demo` connector: each item does what its payload says, so the queue's rules can be
watched and tested without any remote system.

Payload keys of a demo script (all optional):
- "sleep": seconds to work (default 0);
- "fail": "transient" or "permanent";
- "times": with "fail": "transient", fail only the first N attempts, then succeed;
- "message": the error message;
- "then": a list of follow-up items, each {"instruction", "payload", "connection_id", "refs"}.

The instructions that only write the catalog (`CATALOG_INSTRUCTIONS`) need no remote
system: on a demo connection they run the real flow unless their payload is a script, so
a product sent to a demo source is in the catalog and reaches the demo channels, as it
would with real ones. Everything else succeeds without calling anything.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from stockyard.connectors.base import Connector
from stockyard.engine.handlers import Context
from stockyard.errors import PermanentError, TransientError

CATALOG_INSTRUCTIONS = ("sync_product", "sync_products", "sync_image", "sync_customer")
SCRIPT_KEYS = frozenset({"sleep", "fail", "times", "message", "then"})


class DemoConnector(Connector):
    """Registered so `demo` connections can be created like any other; their items never
    reach it: the handlers below run them instead (see stockyard.application)."""

    roles = frozenset({"source", "channel", "fulfillment"})


async def handle(ctx: Context) -> None:
    """Run the item's script."""
    pause = ctx.payload.get("sleep")
    if pause:
        await asyncio.sleep(float(pause))
    _finish(ctx)


def catalog_handler(flow: Callable[[Context], None]) -> Callable[[Context], None]:
    """The handler of a catalog instruction on a demo connection: the real `flow`, or the
    payload's script if it is one."""

    def run(ctx: Context) -> None:
        if SCRIPT_KEYS.isdisjoint(ctx.payload):
            flow(ctx)
            return
        pause = ctx.payload.get("sleep")
        if pause:
            time.sleep(float(pause))  # a plain handler runs on a worker thread
        _finish(ctx)

    return run


def _finish(ctx: Context) -> None:
    payload = ctx.payload
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
