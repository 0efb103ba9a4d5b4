"""Per-connection limits, kept by the engine: one row per limited connection (of any
kind) in `limits`, with its rate bucket (stockyard.engine.turns spends it). What a limit
means is `models.Limits`."""

from __future__ import annotations

import time
from collections.abc import Iterable

from stockyard.db import Cursor
from stockyard.engine.enqueue import connections_of
from stockyard.engine.models import Limits
from stockyard.engine.store import Sql
from stockyard.errors import NotFound


def put(sql: Sql, cur: Cursor, client_id: int, connection_id: int, limits: Limits) -> None:
    """Set the limits of a connection of the client (none: remove them); NotFound for
    another client's connection or a missing one, alike. A new rate bucket starts full."""
    target = connections_of(sql, cur, [connection_id]).get(connection_id)
    if target is None or target.client_id != client_id:
        raise NotFound(f"no connection {connection_id}")
    if limits.limited:
        rated = limits.per_second is not None
        sql.execute(
            cur,
            "put_limits",
            connection_id=connection_id,
            client_id=client_id,
            max_running=limits.max_running,
            per_second=limits.per_second,
            burst=limits.bucket if rated else None,
            tokens=float(limits.bucket) if rated else None,
            now=time.time(),
        )
    else:
        sql.execute(cur, "drop_limits", connection_id=connection_id)


def of(sql: Sql, cur: Cursor, client_id: int, connection_ids: Iterable[int]) -> dict[int, Limits]:
    """The limits of these connections of the client; unlimited ones are absent."""
    ids = sorted(set(connection_ids))
    if not ids:
        return {}
    rows = sql.all(cur, "limits_of", client_id=client_id, ids=ids)
    return {int(r[0]): Limits(r[1], r[2], r[3]) for r in rows}
