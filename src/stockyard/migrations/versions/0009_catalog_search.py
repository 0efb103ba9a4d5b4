"""The console's catalog search: `folded` on products (their code), variants (their SKU)
and customers (their code), the key case-folded by Python's str.casefold as
`item_refs.folded` is (migration 0008): "sku-ba", "SKU-BA" and "Sku-Ba" are one prefix,
and "straße" finds STRASSE. Indexed (client_id, folded): a prefix is one range per kind.
On PostgreSQL the columns' collation is "C", so that the range [prefix, next) holds every
key with the prefix in code point order whatever the database's locale (under en_US,
which ignores punctuation, "SKU-BAD" sorts after "SKU.").

`orders_number` makes an order's number (the search, an item's references) one probe
instead of a walk through the client's orders.

Existing keys are folded here: ASCII-only ones by SQL in one statement per table (lower()
in the "C" collation is casefold() on ASCII), the others by Python. On SQLite the same
casefold() is registered as a function, one statement per table. Columns added and rows
folded beforehand (a big PostgreSQL catalog, as docs/postgres.md says of 0008) are kept;
the indexes are made only if missing (built CONCURRENTLY beforehand).

Revision ID: 0009
Revises: 0008
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"

FOLDED = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")
KEYS = {"products": "code", "variants": "sku", "customers": "code"}
BATCH = 5000


def upgrade() -> None:
    bind = op.get_bind()
    for table, key in KEYS.items():
        # Added beforehand on a big PostgreSQL catalog, with its rows folded: kept.
        if "folded" not in {c["name"] for c in sa.inspect(bind).get_columns(table)}:
            op.add_column(table, sa.Column("folded", FOLDED))
        if bind.dialect.name == "sqlite":
            _fold_on_sqlite(bind, table, key)
        else:
            _fold_on_postgresql(bind, table, key)
        # Built beforehand CONCURRENTLY on a big PostgreSQL catalog (after adding the column).
        op.create_index(f"{table}_folded", table, ["client_id", "folded"], if_not_exists=True)
    op.create_index("orders_number", "orders", ["client_id", "number", "id"], if_not_exists=True)


def _fold_on_sqlite(bind: Any, table: str, key: str) -> None:
    raw = bind.connection.driver_connection
    raw.create_function("stockyard_casefold", 1, _casefold, deterministic=True)
    bind.execute(
        sa.text(f"UPDATE {table} SET folded = stockyard_casefold({key}) WHERE folded IS NULL")
    )


def _fold_on_postgresql(bind: Any, table: str, key: str) -> None:
    # One byte per character in UTF-8 is ASCII: lower() there is casefold().
    bind.execute(
        sa.text(
            f'UPDATE {table} SET folded = lower({key} COLLATE "C")'
            f" WHERE folded IS NULL AND octet_length({key}) = char_length({key})"
        )
    )
    rest = bind.execute(sa.text(f"SELECT id, {key} FROM {table} WHERE folded IS NULL")).all()
    update = sa.text(f"UPDATE {table} SET folded = :folded WHERE id = :id")
    changed = [{"id": r[0], "folded": r[1].casefold()} for r in rest]
    for start in range(0, len(changed), BATCH):
        bind.execute(update, changed[start : start + BATCH])


def _casefold(value: str | None) -> str | None:
    return None if value is None else value.casefold()


def downgrade() -> None:
    op.drop_index("orders_number", "orders")
    for table in KEYS:
        op.drop_index(f"{table}_folded", table)
        op.drop_column(table, "folded")
