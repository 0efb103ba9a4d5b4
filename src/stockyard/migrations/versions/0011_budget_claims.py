"""`connection_budgets.claim`, `claim_until`: fairness for a shared budget (issue 18).

A take refused because the bucket is short leaves a claim (its cost) until `claim_until`
(the wall clock); smaller takes leave that many points in the bucket while the claim
stands, so a large query (an 852-point orders page) is not starved by a stream of small
ones (15-point updates) keeping the bucket just below its need. A take at least as large
as the claim ignores it and, granted, clears it. 0 / 0: no claim.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"

REAL = sa.Float(precision=53)


def upgrade() -> None:
    op.add_column(
        "connection_budgets", sa.Column("claim", REAL, nullable=False, server_default="0")
    )
    op.add_column(
        "connection_budgets", sa.Column("claim_until", REAL, nullable=False, server_default="0")
    )


def downgrade() -> None:
    op.drop_column("connection_budgets", "claim_until")
    op.drop_column("connection_budgets", "claim")
