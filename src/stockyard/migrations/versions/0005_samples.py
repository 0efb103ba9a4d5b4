"""Queue samples: per client and minute, the backlog, the failed items and how many items
finished; what the console's dashboard draws.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME = sa.Float(precision=53)


def upgrade() -> None:
    op.create_table(
        "queue_samples",
        sa.Column("client_id", ID, primary_key=True),
        sa.Column("at", TIME, primary_key=True),
        sa.Column("queued", sa.Integer, nullable=False),
        sa.Column("failed", sa.Integer, nullable=False),
        sa.Column("finished", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("queue_samples")
