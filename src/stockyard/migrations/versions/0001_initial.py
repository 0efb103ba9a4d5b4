"""Initial schema: clients, connections, lanes, items, references, attempts, audit, workers.

Revision ID: 0001
Revises:
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None

# SQLite only aliases the rowid (fast, increasing) for the exact type "INTEGER PRIMARY KEY".
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME = sa.Float(precision=53)  # epoch seconds: one representation on both backends


def _partial(where: str) -> dict[str, Any]:
    return {"sqlite_where": sa.text(where), "postgresql_where": sa.text(where)}


def upgrade() -> None:
    op.create_table(
        "clients",
        sa.Column("id", ID, primary_key=True),
        sa.Column("name", sa.Text, nullable=False, unique=True),
        sa.Column("created_at", TIME, nullable=False),
    )
    op.create_table(
        "connections",
        sa.Column("id", ID, primary_key=True),
        sa.Column("client_id", ID, sa.ForeignKey("clients.id"), nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("connector", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("settings", sa.Text, nullable=False, server_default="{}"),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("created_at", TIME, nullable=False),
    )
    op.create_index("connections_client", "connections", ["client_id", "id"])
    # One lane per source or channel. head_id is the lane's oldest unfinished item and
    # ready_at is set only while that head may be claimed, so claiming reads one index.
    op.create_table(
        "lanes",
        sa.Column("id", ID, sa.ForeignKey("connections.id"), primary_key=True),
        sa.Column("client_id", ID, nullable=False),
        sa.Column("head_id", ID),
        sa.Column("ready_at", TIME),
        sa.Column("pending", sa.Integer, nullable=False, server_default="0"),
        sa.Column("paused", sa.Integer, nullable=False, server_default="0"),
        sa.Column("paused_at", TIME),
        sa.Column("paused_by", sa.Text),
        sa.Column("pause_reason", sa.Text),
    )
    op.create_index(
        "lanes_ready", "lanes", ["ready_at"], **_partial("ready_at IS NOT NULL AND paused = 0")
    )
    op.create_index("lanes_client", "lanes", ["client_id", "id"])
    op.create_table(
        "items",
        sa.Column("id", ID, primary_key=True),
        sa.Column("client_id", ID, nullable=False),
        sa.Column("instruction", sa.Text, nullable=False),
        sa.Column("blocking", sa.Integer, nullable=False),
        sa.Column("connection_id", ID),
        sa.Column("lane_id", ID),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("refs", sa.Text, nullable=False, server_default="[]"),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("parent_id", ID),
        sa.Column("idempotency_key", sa.Text),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.Column("run_after", TIME, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
        sa.Column("worker_id", sa.Text),
        sa.Column("started_at", TIME),
        sa.Column("finished_at", TIME),
        sa.Column("error", sa.Text),
        sa.Column("error_kind", sa.Text),
    )
    op.create_index(
        "items_free_ready",
        "items",
        ["run_after", "id"],
        **_partial("status = 'queued' AND lane_id IS NULL"),
    )
    op.create_index(
        "items_lane_queued",
        "items",
        ["lane_id", "id"],
        **_partial("status = 'queued' AND lane_id IS NOT NULL"),
    )
    op.create_index("items_running", "items", ["worker_id"], **_partial("status = 'running'"))
    op.create_index("items_failed", "items", ["client_id", "id"], **_partial("status = 'failed'"))
    op.create_index("items_client", "items", ["client_id", "id"])
    op.create_index(
        "items_connection",
        "items",
        ["connection_id", "id"],
        **_partial("connection_id IS NOT NULL"),
    )
    op.create_index("items_parent", "items", ["parent_id"], **_partial("parent_id IS NOT NULL"))
    op.create_index(
        "items_idempotency",
        "items",
        ["client_id", "idempotency_key"],
        unique=True,
        **_partial("idempotency_key IS NOT NULL"),
    )
    op.create_index(
        "items_finished",
        "items",
        ["finished_at"],
        **_partial("status IN ('done', 'skipped', 'superseded')"),
    )
    op.create_table(
        "item_refs",
        sa.Column("ref", sa.Text, primary_key=True),
        sa.Column("item_id", ID, primary_key=True),
        sqlite_with_rowid=False,
    )
    op.create_index("item_refs_item", "item_refs", ["item_id"])
    op.create_table(
        "attempts",
        sa.Column("id", ID, primary_key=True),
        sa.Column("item_id", ID, nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("worker_id", sa.Text),
        sa.Column("started_at", TIME, nullable=False),
        sa.Column("ended_at", TIME, nullable=False),
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("error", sa.Text),
    )
    op.create_index("attempts_item", "attempts", ["item_id", "number"])
    op.create_table(
        "audit",
        sa.Column("id", ID, primary_key=True),
        sa.Column("at", TIME, nullable=False),
        sa.Column("client_id", ID),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("item_id", ID),
        sa.Column("lane_id", ID),
        sa.Column("detail", sa.Text),
    )
    op.create_index("audit_item", "audit", ["item_id"], **_partial("item_id IS NOT NULL"))
    op.create_index("audit_lane", "audit", ["lane_id"], **_partial("lane_id IS NOT NULL"))
    op.create_table(
        "workers",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("hostname", sa.Text, nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("started_at", TIME, nullable=False),
        sa.Column("heartbeat_at", TIME, nullable=False),
        sa.Column("stopped_at", TIME),
        sa.Column("stop_reason", sa.Text),
    )
    op.create_index("workers_alive", "workers", ["heartbeat_at"], **_partial("stopped_at IS NULL"))
