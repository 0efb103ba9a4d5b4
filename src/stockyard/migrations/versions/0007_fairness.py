"""Fair claiming and per-connection limits.

- `items_fair_ready`: queued non-blocking items by client, then connection (0 for none),
  then due time: claims take turns between clients and, within a client, between its
  connections, reading a few entries of each instead of one global queue.
- `items_running_connection`: how many items of a connection run now, across every worker
  (a connection's concurrency cap is checked against it).
- `limits`: a connection's limits and its rate bucket, one row per limited connection of
  any kind; the row is locked while a claim spends from it, so limits hold across workers
  and machines.
- `lanes_client_ready`: ready lanes by client, for taking turns between clients.

Both indexes on items are partial (queued non-blocking items, running items), so they
build from a small part of a big table; docs/postgres.md, "Upgrades", says how to build
them beforehand without blocking writes.

Revision ID: 0007
Revises: 0006
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME = sa.Float(precision=53)


def _partial(where: str) -> dict[str, Any]:
    return {"sqlite_where": sa.text(where), "postgresql_where": sa.text(where)}


def upgrade() -> None:
    op.create_table(
        "limits",
        sa.Column("connection_id", ID, sa.ForeignKey("connections.id"), primary_key=True),
        sa.Column("client_id", ID, nullable=False),
        sa.Column("max_running", sa.Integer),
        sa.Column("per_second", sa.Float(precision=53)),
        sa.Column("burst", sa.Integer),
        sa.Column("tokens", sa.Float(precision=53)),
        sa.Column("tokens_at", TIME),
    )
    op.create_index(
        "lanes_client_ready",
        "lanes",
        ["client_id", "ready_at"],
        **_partial("ready_at IS NOT NULL AND paused = 0"),
    )
    op.create_index(
        "items_fair_ready",
        "items",
        ["client_id", sa.text("coalesce(connection_id, 0)"), "run_after", "id"],
        if_not_exists=True,  # built beforehand, CONCURRENTLY (docs/postgres.md, upgrades)
        **_partial("status = 'queued' AND lane_id IS NULL"),
    )
    op.create_index(
        "items_running_connection",
        "items",
        ["connection_id"],
        if_not_exists=True,
        **_partial("status = 'running' AND connection_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("items_running_connection", "items")
    op.drop_index("items_fair_ready", "items")
    op.drop_index("lanes_client_ready", "lanes")
    op.drop_table("limits")
