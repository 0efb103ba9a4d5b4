"""Notifications: who is told of what (subscriptions), which events were already noticed
(so racing workers and restarts notice each once), and failures awaiting their digest.

Revision ID: 0004
Revises: 0003
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME = sa.Float(precision=53)


def _partial(where: str) -> dict[str, Any]:
    return {"sqlite_where": sa.text(where), "postgresql_where": sa.text(where)}


def upgrade() -> None:
    op.create_table(
        "subscriptions",
        sa.Column("id", ID, primary_key=True),
        sa.Column("client_id", ID, sa.ForeignKey("clients.id"), nullable=False),
        sa.Column("kind", sa.Text, nullable=False),  # email or webhook
        sa.Column("target", sa.Text, nullable=False),  # an address or a URL
        sa.Column("events", sa.Text, nullable=False),  # JSON list; empty: every event
        sa.Column("connections", sa.Text, nullable=False),  # JSON list; empty: all
        sa.Column("secret", sa.Text),  # sealed: the webhook's signing secret
        sa.Column("created_at", TIME, nullable=False),
    )
    op.create_index("subscriptions_client", "subscriptions", ["client_id", "id"])
    # One row per event noticed; a stopped lane's row stays open until the lane moves on.
    op.create_table(
        "notices",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("client_id", ID, nullable=False),
        sa.Column("lane_id", ID),
        sa.Column("item_id", ID),
        sa.Column("open", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", TIME, nullable=False),
    )
    op.create_index("notices_open", "notices", ["lane_id"], **_partial("open = 1"))
    op.create_table(
        "failure_notices",
        sa.Column("item_id", ID, primary_key=True),
        sa.Column("attempts", sa.Integer, primary_key=True),
        sa.Column("client_id", ID, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),  # client:instruction:connection
        sa.Column("failed_at", TIME, nullable=False),
        sa.Column("sent", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_index(
        "failure_notices_unsent", "failure_notices", ["kind", "failed_at"], **_partial("sent = 0")
    )


def downgrade() -> None:
    for table in ("failure_notices", "notices", "subscriptions"):
        op.drop_table(table)
