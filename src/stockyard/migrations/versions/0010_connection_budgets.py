"""`connection_budgets`: a remote API's metered budget shared by every worker of one
connection (issue 18: Shopify's query-cost bucket is per app and shop, so the workers of a
shop's connection, in several processes and on several hosts, must draw from one record
rather than each pace by the last answer it saw).

One row per metered connection, made on the first answer that reports the budget:
`capacity`, `restore_rate` (points per second) and `available` as the remote API last
reported them, projected forward by the workers' own spending; `at` is when `available`
was true (the bucket's clock never goes back); `spent` counts every point ever taken, so
a report can discount what other workers took after the request it answers was sent.
`available` may be below zero: points promised to workers that wait for them.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
REAL = sa.Float(precision=53)


def upgrade() -> None:
    op.create_table(
        "connection_budgets",
        sa.Column("connection_id", ID, sa.ForeignKey("connections.id"), primary_key=True),
        sa.Column("client_id", ID, nullable=False),
        sa.Column("capacity", REAL, nullable=False),
        sa.Column("available", REAL, nullable=False),
        sa.Column("restore_rate", REAL, nullable=False),
        sa.Column("at", REAL, nullable=False),
        sa.Column("spent", REAL, nullable=False, server_default="0"),
    )


def downgrade() -> None:
    op.drop_table("connection_budgets")
