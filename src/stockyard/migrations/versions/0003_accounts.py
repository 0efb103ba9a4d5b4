"""Accounts: users, their roles per client, API keys and login sessions; connection
secrets, sealed (encrypted) apart from the settings.

Revision ID: 0003
Revises: 0002
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME = sa.Float(precision=53)


def _partial(where: str) -> dict[str, Any]:
    return {"sqlite_where": sa.text(where), "postgresql_where": sa.text(where)}


def upgrade() -> None:
    op.add_column("connections", sa.Column("secrets", sa.Text))
    op.create_index("fulfillments_client", "fulfillments", ["client_id", "id"])
    op.create_index("audit_client", "audit", ["client_id", "id"])
    op.create_table(
        "users",
        sa.Column("id", ID, primary_key=True),
        sa.Column("email", sa.Text, nullable=False, unique=True),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("platform_admin", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", TIME, nullable=False),
    )
    op.create_table(
        "memberships",
        sa.Column("user_id", ID, sa.ForeignKey("users.id"), primary_key=True),
        sa.Column("client_id", ID, sa.ForeignKey("clients.id"), primary_key=True),
        sa.Column("role", sa.Text, nullable=False),
    )
    op.create_index("memberships_client", "memberships", ["client_id", "user_id"])
    # Keys are found by the SHA-256 of the whole token; only its prefix is kept readable.
    op.create_table(
        "api_keys",
        sa.Column("id", ID, primary_key=True),
        sa.Column("client_id", ID, sa.ForeignKey("clients.id"), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("prefix", sa.Text, nullable=False),
        sa.Column("token_hash", sa.Text, nullable=False, unique=True),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column("revoked_at", TIME),
    )
    op.create_index("api_keys_client", "api_keys", ["client_id", "id"])
    op.create_table(
        "sessions",
        sa.Column("token_hash", sa.Text, primary_key=True),
        sa.Column("user_id", ID, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("expires_at", TIME, nullable=False),
    )
    op.create_index("sessions_user", "sessions", ["user_id"])


def downgrade() -> None:
    for table in ("sessions", "api_keys", "memberships", "users"):
        op.drop_table(table)
    op.drop_index("audit_client", "audit")
    op.drop_index("fulfillments_client", "fulfillments")
    op.drop_column("connections", "secrets")
