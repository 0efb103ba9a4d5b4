"""The console's search by reference: `item_refs.folded`, the reference case-folded
(Python's str.casefold, so "SKU-ÄB" and "sku-äb" are one, which SQL's lower() is not on
SQLite), and `item_refs.client_id`, the item's client, indexed (client_id, folded,
item_id): an exact search ("all failed items of sku-bad") is one key of the client, a
prefix search ("sku-ba") one range of the client's references only (another client's
references never widen it). On PostgreSQL the column's collation is "C", so that the
range is a prefix in code point order, as SQLite's is, whatever the database's locale.

Existing references are folded in SQL, never one statement per reference: on SQLite by
Python's casefold registered as a function, in one UPDATE; on PostgreSQL by lower() in
the "C" collation for ASCII-only references (there it is casefold), Python only for the
others (few: unicode SKUs). Their client is filled in from their item in one UPDATE.
Rows folded or filled already are left alone and the columns and index are made only if
missing, so on a large PostgreSQL database all of it can be done beforehand without
blocking writes (docs/postgres.md, "Upgrades").

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"

FOLDED = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
INDEXED = ["client_id", "folded", "item_id"]
BATCH = 5000
# On PostgreSQL: references of ASCII characters only, whose casefold is lower() in "C".
ASCII_ONLY = "ref !~ '[^\\x01-\\x7f]'"


def upgrade() -> None:
    bind = op.get_bind()
    columns = {c["name"] for c in sa.inspect(bind).get_columns("item_refs")}
    if "folded" not in columns:
        op.add_column("item_refs", sa.Column("folded", FOLDED))
    # Nullable: a reference of an item gone (pruned meanwhile) has no client to fill in.
    if "client_id" not in columns:
        op.add_column("item_refs", sa.Column("client_id", ID))
    if bind.dialect.name == "sqlite":
        _fold_sqlite(bind)
        bind.execute(
            sa.text(
                "UPDATE item_refs SET client_id = (SELECT client_id FROM items"
                " WHERE items.id = item_refs.item_id) WHERE client_id IS NULL"
            )
        )
    else:
        _fold_postgresql(bind)
        bind.execute(
            sa.text(
                "UPDATE item_refs r SET client_id = i.client_id FROM items i"
                " WHERE i.id = r.item_id AND r.client_id IS NULL"
            )
        )
    # Built beforehand, CONCURRENTLY, on a large PostgreSQL database (docs/postgres.md);
    # one of the same name on (folded, item_id) only (an earlier recipe) is made again.
    found = {i["name"]: i["column_names"] for i in sa.inspect(bind).get_indexes("item_refs")}
    if "item_refs_folded" in found and found["item_refs_folded"] != INDEXED:
        op.drop_index("item_refs_folded", "item_refs")
    op.create_index("item_refs_folded", "item_refs", INDEXED, if_not_exists=True)


def _fold_sqlite(bind: sa.Connection) -> None:
    driver = bind.connection.driver_connection
    assert driver is not None
    driver.create_function("stockyard_casefold", 1, _casefold, deterministic=True)
    bind.execute(
        sa.text("UPDATE item_refs SET folded = stockyard_casefold(ref) WHERE folded IS NULL")
    )


def _fold_postgresql(bind: sa.Connection) -> None:
    bind.execute(
        sa.text(
            f'UPDATE item_refs SET folded = lower(ref COLLATE "C")'
            f" WHERE folded IS NULL AND {ASCII_ONLY}"
        )
    )
    rest = bind.execute(sa.text("SELECT DISTINCT ref FROM item_refs WHERE folded IS NULL"))
    changed = [{"ref": r, "folded": r.casefold()} for (r,) in rest]
    # item_refs' key leads with ref: each statement finds its rows by the key.
    update = sa.text("UPDATE item_refs SET folded = :folded WHERE ref = :ref")
    for start in range(0, len(changed), BATCH):
        bind.execute(update, changed[start : start + BATCH])


def _casefold(ref: str | None) -> str | None:
    return None if ref is None else ref.casefold()


def downgrade() -> None:
    op.drop_index("item_refs_folded", "item_refs")
    op.drop_column("item_refs", "client_id")
    op.drop_column("item_refs", "folded")
