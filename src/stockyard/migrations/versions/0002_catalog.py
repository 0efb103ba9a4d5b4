"""The catalog (products, variants, images, customers, orders, fulfillments), the channel
links, connection state for polling, and coalescing of queued items.

Revision ID: 0002
Revises: 0001
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME = sa.Float(precision=53)


def _partial(where: str) -> dict[str, Any]:
    return {"sqlite_where": sa.text(where), "postgresql_where": sa.text(where)}


def _stamps() -> list[sa.Column[Any]]:
    return [
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
    ]


def upgrade() -> None:
    # Coalescing: a newer item with the same key in the same lane supersedes queued ones.
    op.add_column("items", sa.Column("coalesce_key", sa.Text))
    op.add_column("items", sa.Column("superseded_by", ID))
    op.create_index(
        "items_coalesce",
        "items",
        ["lane_id", "coalesce_key"],
        **_partial("status = 'queued' AND coalesce_key IS NOT NULL"),
    )

    op.create_table(
        "products",
        sa.Column("id", ID, primary_key=True),
        sa.Column("client_id", ID, sa.ForeignKey("clients.id"), nullable=False),
        sa.Column("source_id", ID),
        sa.Column("code", sa.Text, nullable=False),  # the source's code for the product
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("data", sa.Text, nullable=False),  # the product-level fields, as JSON
        sa.Column("deleted", sa.Integer, nullable=False, server_default="0"),
        *_stamps(),
    )
    op.create_index("products_code", "products", ["client_id", "code"], unique=True)
    op.create_table(
        "variants",
        sa.Column("id", ID, primary_key=True),
        sa.Column("client_id", ID, nullable=False),
        sa.Column("product_id", ID, sa.ForeignKey("products.id"), nullable=False),
        sa.Column("sku", sa.Text, nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("deleted", sa.Integer, nullable=False, server_default="0"),
        *_stamps(),
    )
    op.create_index("variants_sku", "variants", ["client_id", "sku"], unique=True)
    op.create_index("variants_product", "variants", ["product_id", "position"])
    op.create_table(
        "images",
        sa.Column("id", ID, primary_key=True),
        sa.Column("client_id", ID, nullable=False),
        sa.Column("product_id", ID, sa.ForeignKey("products.id"), nullable=False),
        sa.Column("code", sa.Text, nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("deleted", sa.Integer, nullable=False, server_default="0"),
        *_stamps(),
    )
    op.create_index("images_code", "images", ["product_id", "code"], unique=True)
    op.create_table(
        "customers",
        sa.Column("id", ID, primary_key=True),
        sa.Column("client_id", ID, nullable=False),
        sa.Column("code", sa.Text, nullable=False),
        sa.Column("email", sa.Text),
        sa.Column("data", sa.Text, nullable=False),
        *_stamps(),
    )
    op.create_index("customers_code", "customers", ["client_id", "code"], unique=True)
    op.create_table(
        "orders",
        sa.Column("id", ID, primary_key=True),
        sa.Column("client_id", ID, nullable=False),
        sa.Column("channel_id", ID, nullable=False),
        sa.Column("remote_id", sa.Text, nullable=False),  # the channel's order id
        sa.Column("number", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("total", sa.Text, nullable=False),  # decimal, as text: exact
        sa.Column("paid", sa.Text),
        sa.Column("source_code", sa.Text),  # the ERP's code once add_order has run
        sa.Column("data", sa.Text, nullable=False),
        *_stamps(),
    )
    op.create_index("orders_remote", "orders", ["channel_id", "remote_id"], unique=True)
    op.create_index("orders_client", "orders", ["client_id", "id"])
    op.create_table(
        "fulfillments",
        sa.Column("id", ID, primary_key=True),
        sa.Column("client_id", ID, nullable=False),
        sa.Column("order_id", ID, sa.ForeignKey("orders.id"), nullable=False),
        sa.Column("service_id", ID, nullable=False),
        sa.Column("remote_id", sa.Text),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("data", sa.Text, nullable=False),  # tracking, lines
        *_stamps(),
    )
    op.create_index("fulfillments_order", "fulfillments", ["order_id"])
    op.create_index(
        "fulfillments_remote",
        "fulfillments",
        ["service_id", "remote_id"],
        unique=True,
        **_partial("remote_id IS NOT NULL"),
    )
    # What each channel holds of the catalog: its id for our product / variant / image and
    # a hash of what it was last sent, so unchanged data is never sent again.
    op.create_table(
        "channel_links",
        sa.Column("channel_id", ID, primary_key=True),
        sa.Column("kind", sa.Text, primary_key=True),
        sa.Column("entity_id", ID, primary_key=True),
        sa.Column("remote_id", sa.Text, nullable=False),
        sa.Column("hash", sa.Text),
        sa.Column("updated_at", TIME, nullable=False),
    )
    # Cursors of pulls and the schedule of polling, per connection.
    op.create_table(
        "connection_state",
        sa.Column("connection_id", ID, primary_key=True),
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("value", sa.Text),
        sa.Column("next_at", TIME),
        sa.Column("item_id", ID),
    )


def downgrade() -> None:
    for table in (
        "connection_state",
        "channel_links",
        "fulfillments",
        "orders",
        "customers",
        "images",
        "variants",
        "products",
    ):
        op.drop_table(table)
    op.drop_index("items_coalesce", "items")
    op.drop_column("items", "superseded_by")
    op.drop_column("items", "coalesce_key")
