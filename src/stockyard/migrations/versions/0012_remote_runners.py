"""Remote runners (issue 20): connections whose non-blocking items only a remote program
claims (the `agent` next to an ERP behind a firewall), over the HTTP protocol of
docs/remote-workers.md.

- `remote_runners`: one row per such connection (written with the connection, never
  removed: a connection's connector does not change). In-process claims skip these
  connections' non-blocking items (their lanes run as any other's); `Queue.claim_remote`
  takes them for the remote program's session.
- `workers.remote`: a worker row of such a session. It is leased, heartbeats and is
  reaped like any worker, but takes no place among the in-process workers sharing lanes
  (it never claims a lane: counted, it would make its share of lanes wait for a handoff).
- `remote_messages`: the message id (Standard Webhooks' webhook-id) of each signed request
  of a remote runner, per connection, for as long as its signature could be replayed
  (pruned by `seen_at` as new ones are noted): a repeated one is refused.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME = sa.Float(precision=53)


def upgrade() -> None:
    op.create_table(
        "remote_runners",
        sa.Column("connection_id", ID, sa.ForeignKey("connections.id"), primary_key=True),
        sa.Column("client_id", ID, nullable=False),
        sa.Column("created_at", TIME),
    )
    op.add_column("workers", sa.Column("remote", sa.Integer, nullable=False, server_default="0"))
    op.create_table(
        "remote_messages",
        sa.Column("connection_id", ID, nullable=False),
        sa.Column("message_id", sa.Text, nullable=False),
        sa.Column("seen_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("connection_id", "message_id"),
    )
    op.create_index("remote_messages_seen", "remote_messages", ["seen_at"])
    # Connections of the `agent` connector made before this revision (none in a release:
    # the connector arrived with it; a development database may hold some).
    op.execute(
        "INSERT INTO remote_runners (connection_id, client_id, created_at)"
        " SELECT id, client_id, created_at FROM connections WHERE connector = 'agent'"
    )


def downgrade() -> None:
    op.drop_table("remote_messages")
    op.drop_column("workers", "remote")
    op.drop_table("remote_runners")
