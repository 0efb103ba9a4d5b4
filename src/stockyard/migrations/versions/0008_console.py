"""The console's search by reference: `item_refs.folded`, the reference case-folded
(Python's str.casefold, so "SKU-ÄB" and "sku-äb" are one, which SQL's lower() is not on
SQLite), indexed with the item: an exact search ("all failed items of sku-bad") is one
key, a prefix search ("sku-ba") one range. On PostgreSQL the column's collation is "C", so
that the range is a prefix in code point order, as SQLite's is, whatever the database's
locale.

Existing references are folded here, in batches, by Python's casefold like new ones.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"

FOLDED = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")
BATCH = 5000


def upgrade() -> None:
    op.add_column("item_refs", sa.Column("folded", FOLDED))
    bind = op.get_bind()
    refs = [r[0] for r in bind.execute(sa.text("SELECT DISTINCT ref FROM item_refs"))]
    changed = [{"ref": r, "folded": r.casefold()} for r in refs]
    update = sa.text("UPDATE item_refs SET folded = :folded WHERE ref = :ref")
    for start in range(0, len(changed), BATCH):
        bind.execute(update, changed[start : start + BATCH])
    op.create_index("item_refs_folded", "item_refs", ["folded", "item_id"])


def downgrade() -> None:
    op.drop_index("item_refs_folded", "item_refs")
    op.drop_column("item_refs", "folded")
