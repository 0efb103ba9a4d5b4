"""Wiring: the database, the instruction catalog, the queue and the handlers, from settings."""

from __future__ import annotations

import os

from stockyard.connectors import demo
from stockyard.db import DEFAULT_URL, connect
from stockyard.engine.queue import Queue
from stockyard.errors import StockyardError
from stockyard.handlers import HandlerRegistry
from stockyard.instructions import Instructions, default_instructions

DEFAULT_CLIENT = "default"


def database_url(url: str | None = None) -> str:
    return url or os.environ.get("STOCKYARD_DATABASE_URL") or DEFAULT_URL


def open_queue(url: str | None = None, instructions: Instructions | None = None) -> Queue:
    """A queue on an initialised database; a clear error if `stockyard init` never ran."""
    db = connect(database_url(url))
    if not db.schema_ready():
        raise StockyardError(f"{db.describe()} is not initialised: run `stockyard init`")
    return Queue(db, instructions or default_instructions())


def init_queue(url: str | None = None) -> Queue:
    db = connect(database_url(url))
    db.migrate()
    queue = Queue(db, default_instructions())
    queue.ensure_client(DEFAULT_CLIENT)
    return queue


def default_handlers(instructions: Instructions | None = None) -> HandlerRegistry:
    """Until the real flows land, every instruction runs the demo connector's handler."""
    registry = HandlerRegistry()
    registry.register_all((i.name for i in (instructions or default_instructions())), demo.handle)
    return registry
