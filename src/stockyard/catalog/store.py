"""The catalog's tables: every query is one statement on a key or an index (see migration
0002). Entities are rows with their identity in columns and their fields as JSON."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from stockyard.catalog.models import (
    Customer,
    FulfillmentState,
    Image,
    Order,
    Product,
    Tracking,
    Variant,
)
from stockyard.db import Cursor, Database
from stockyard.errors import NotFound


@dataclass(frozen=True, slots=True)
class StoredVariant:
    id: int
    variant: Variant


@dataclass(frozen=True, slots=True)
class StoredImage:
    id: int
    image: Image


@dataclass(frozen=True, slots=True)
class StoredProduct:
    id: int
    client_id: int
    code: str
    fields: dict[str, Any]  # the product-level fields: title, description, tags, ...
    deleted: bool
    variants: list[StoredVariant]
    images: list[StoredImage]
    removed_variants: list[int]  # ids of variants the source dropped
    removed_images: list[int]

    @property
    def skus(self) -> list[str]:
        return [v.variant.sku for v in self.variants]

    def variant(self, variant_id: int) -> StoredVariant | None:
        return next((v for v in self.variants if v.id == variant_id), None)

    def image(self, image_id: int) -> StoredImage | None:
        return next((i for i in self.images if i.id == image_id), None)


@dataclass(frozen=True, slots=True)
class Link:
    remote_id: str
    hash: str | None


@dataclass(frozen=True, slots=True)
class StoredOrder:
    id: int
    client_id: int
    channel_id: int
    state: str
    paid: Decimal | None
    source_code: str | None
    order: Order


@dataclass(frozen=True, slots=True)
class StoredFulfillment:
    id: int
    client_id: int
    order_id: int
    service_id: int
    remote_id: str | None
    state: str
    tracking: Tracking | None


@dataclass(frozen=True, slots=True)
class ConnectionState:
    value: Any
    next_at: float | None
    item_id: int | None


@dataclass(frozen=True, slots=True)
class ProductRow:
    id: int
    code: str
    title: str
    deleted: bool
    updated_at: float


@dataclass(frozen=True, slots=True)
class VariantRow:
    id: int
    sku: str
    product_id: int
    product_code: str
    variant: Variant
    deleted: bool


_MAX_ID = 2**62
_ORDER_COLUMNS = "id, client_id, channel_id, state, paid, source_code, data"
_FULFILLMENT_COLUMNS = "id, client_id, order_id, service_id, remote_id, state, data"


def _order(row: Any) -> StoredOrder:
    return StoredOrder(
        id=int(row[0]),
        client_id=int(row[1]),
        channel_id=int(row[2]),
        state=row[3],
        paid=None if row[4] is None else Decimal(row[4]),
        source_code=row[5],
        order=Order(**json.loads(row[6])),
    )


def _fulfillment(row: Any) -> StoredFulfillment:
    tracking = json.loads(row[6]).get("tracking")
    return StoredFulfillment(
        id=int(row[0]),
        client_id=int(row[1]),
        order_id=int(row[2]),
        service_id=int(row[3]),
        remote_id=row[4],
        state=row[5],
        tracking=None if tracking is None else Tracking(**tracking),
    )


def _json(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


class CatalogStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # ------------------------------------------------------------------------- products

    def upsert_product(self, client_id: int, source_id: int | None, product: Product) -> int:
        """Write a product as the source sent it. Variants and images it no longer lists are
        marked removed (channels that hold them delete them)."""
        now = time.time()
        fields = product.model_dump(mode="json", exclude={"variants", "images", "code"})
        with self.db.write() as cur:
            (product_id,) = cur.execute(
                "INSERT INTO products (client_id, source_id, code, title, data, deleted,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (client_id, code) DO UPDATE SET source_id = excluded.source_id,"
                " title = excluded.title, data = excluded.data, deleted = excluded.deleted,"
                " updated_at = excluded.updated_at RETURNING id",
                (
                    client_id,
                    source_id,
                    product.key,
                    product.title,
                    _json(fields),
                    int(not product.active),
                    now,
                    now,
                ),
            ).fetchone()
            self._upsert_variants(cur, client_id, product_id, product.variants, now)
            self._upsert_images(cur, client_id, product_id, product.images, now)
        return int(product_id)

    def _upsert_variants(
        self, cur: Cursor, client_id: int, product_id: int, variants: list[Variant], now: float
    ) -> None:
        cur.executemany(
            "INSERT INTO variants (client_id, product_id, sku, position, data, deleted,"
            " created_at, updated_at) VALUES (?, ?, ?, ?, ?, 0, ?, ?)"
            " ON CONFLICT (client_id, sku) DO UPDATE SET product_id = excluded.product_id,"
            " position = excluded.position, data = excluded.data, deleted = 0,"
            " updated_at = excluded.updated_at",
            [
                (client_id, product_id, v.sku, n, _json(v.model_dump(mode="json")), now, now)
                for n, v in enumerate(variants)
            ],
        )
        cur.execute(
            "UPDATE variants SET deleted = 1, updated_at = ? WHERE product_id = ?"
            f" AND deleted = 0 AND NOT {self.db.in_list('sku')}",
            (now, product_id, self.db.list_param([v.sku for v in variants])),
        )

    def _upsert_images(
        self, cur: Cursor, client_id: int, product_id: int, images: list[Image], now: float
    ) -> None:
        if images:
            cur.executemany(
                "INSERT INTO images (client_id, product_id, code, position, data, deleted,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, ?, 0, ?, ?)"
                " ON CONFLICT (product_id, code) DO UPDATE SET position = excluded.position,"
                " data = excluded.data, deleted = 0, updated_at = excluded.updated_at",
                [
                    (client_id, product_id, i.key, n, _json(i.model_dump(mode="json")), now, now)
                    for n, i in enumerate(images)
                ],
            )
        cur.execute(
            "UPDATE images SET deleted = 1, updated_at = ? WHERE product_id = ?"
            f" AND deleted = 0 AND NOT {self.db.in_list('code')}",
            (now, product_id, self.db.list_param([i.key for i in images])),
        )

    def add_image(self, client_id: int, product_code: str, image: Image) -> int:
        """Add or replace one image of a product (sync_image); returns the product's id."""
        product_id = self.product_id(client_id, product_code)
        now = time.time()
        with self.db.write() as cur:
            (position,) = cur.execute(
                "SELECT count(*) FROM images WHERE product_id = ?", (product_id,)
            ).fetchone()
            cur.execute(
                "INSERT INTO images (client_id, product_id, code, position, data, deleted,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, ?, 0, ?, ?)"
                " ON CONFLICT (product_id, code) DO UPDATE SET data = excluded.data,"
                " deleted = 0, updated_at = excluded.updated_at",
                (
                    client_id,
                    product_id,
                    image.key,
                    position,
                    _json(image.model_dump(mode="json")),
                    now,
                    now,
                ),
            )
        return product_id

    def product_id(self, client_id: int, code: str) -> int:
        row = (
            self.db.connection()
            .execute("SELECT id FROM products WHERE client_id = ? AND code = ?", (client_id, code))
            .fetchone()
        )
        if row is None:
            raise NotFound(f"no product with code {code!r} in the catalog")
        return int(row[0])

    def product(self, client_id: int, product_id: int) -> StoredProduct:
        conn = self.db.connection()
        row = conn.execute(
            "SELECT code, data, deleted FROM products WHERE id = ? AND client_id = ?",
            (product_id, client_id),
        ).fetchone()
        if row is None:
            raise NotFound(f"no product {product_id} in the catalog")
        variants = conn.execute(
            "SELECT id, data, deleted FROM variants WHERE product_id = ? ORDER BY position, id",
            (product_id,),
        ).fetchall()
        images = conn.execute(
            "SELECT id, data, deleted FROM images WHERE product_id = ? ORDER BY position, id",
            (product_id,),
        ).fetchall()
        live_variants = [
            StoredVariant(i, Variant(**json.loads(d))) for i, d, x in variants if not x
        ]
        live_images = [StoredImage(i, Image(**json.loads(d))) for i, d, x in images if not x]
        return StoredProduct(
            id=product_id,
            client_id=client_id,
            code=row[0],
            fields=json.loads(row[1]),
            deleted=bool(row[2]) or not live_variants,
            variants=live_variants,
            images=live_images,
            removed_variants=[i for i, _, x in variants if x],
            removed_images=[i for i, _, x in images if x],
        )

    def product_ids(self, client_id: int) -> list[int]:
        rows = (
            self.db.connection()
            .execute(
                "SELECT id FROM products WHERE client_id = ? AND deleted = 0 ORDER BY id",
                (client_id,),
            )
            .fetchall()
        )
        return [int(r[0]) for r in rows]

    def product_summaries(self, client_id: int) -> list[tuple[int, str, dict[str, Any], bool]]:
        """Id, code, product-level fields and deleted flag of every product: what channel
        fan-outs filter on, in one statement."""
        rows = (
            self.db.connection()
            .execute(
                "SELECT id, code, data, deleted FROM products WHERE client_id = ? ORDER BY id",
                (client_id,),
            )
            .fetchall()
        )
        return [(int(i), c, json.loads(d), bool(x)) for i, c, d, x in rows]

    # Listings page by a unique, indexed key: products by code, variants by SKU, orders
    # and fulfillments newest first by id.

    def list_products(self, client_id: int, after: str, limit: int) -> list[ProductRow]:
        rows = (
            self.db.connection()
            .execute(
                "SELECT id, code, title, deleted, updated_at FROM products"
                " WHERE client_id = ? AND code > ? ORDER BY code LIMIT ?",
                (client_id, after, limit),
            )
            .fetchall()
        )
        return [ProductRow(int(r[0]), r[1], r[2], bool(r[3]), r[4]) for r in rows]

    def list_variants(self, client_id: int, after: str, limit: int) -> list[VariantRow]:
        rows = (
            self.db.connection()
            .execute(
                "SELECT v.id, v.sku, v.product_id, p.code, v.data, v.deleted FROM variants v"
                " JOIN products p ON p.id = v.product_id"
                " WHERE v.client_id = ? AND v.sku > ? ORDER BY v.sku LIMIT ?",
                (client_id, after, limit),
            )
            .fetchall()
        )
        return [
            VariantRow(int(r[0]), r[1], int(r[2]), r[3], Variant(**json.loads(r[4])), bool(r[5]))
            for r in rows
        ]

    def list_orders(self, client_id: int, before: int | None, limit: int) -> list[StoredOrder]:
        rows = (
            self.db.connection()
            .execute(
                f"SELECT {_ORDER_COLUMNS} FROM orders WHERE client_id = ? AND id < ?"
                " ORDER BY id DESC LIMIT ?",
                (client_id, _MAX_ID if before is None else before, limit),
            )
            .fetchall()
        )
        return [_order(r) for r in rows]

    def list_fulfillments(
        self, client_id: int, before: int | None, limit: int
    ) -> list[StoredFulfillment]:
        rows = (
            self.db.connection()
            .execute(
                f"SELECT {_FULFILLMENT_COLUMNS} FROM fulfillments WHERE client_id = ? AND id < ?"
                " ORDER BY id DESC LIMIT ?",
                (client_id, _MAX_ID if before is None else before, limit),
            )
            .fetchall()
        )
        return [_fulfillment(r) for r in rows]

    def variant_product(self, client_id: int, sku: str) -> int | None:
        row = (
            self.db.connection()
            .execute(
                "SELECT product_id FROM variants WHERE client_id = ? AND sku = ? AND deleted = 0",
                (client_id, sku),
            )
            .fetchone()
        )
        return None if row is None else int(row[0])

    # -------------------------------------------------------------------------- customers

    def upsert_customer(self, client_id: int, customer: Customer) -> int:
        now = time.time()
        with self.db.write() as cur:
            (customer_id,) = cur.execute(
                "INSERT INTO customers (client_id, code, email, data, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (client_id, code) DO UPDATE SET"
                " email = excluded.email, data = excluded.data, updated_at = excluded.updated_at"
                " RETURNING id",
                (
                    client_id,
                    customer.code,
                    customer.email,
                    _json(customer.model_dump(mode="json")),
                    now,
                    now,
                ),
            ).fetchone()
        return int(customer_id)

    def customer(self, client_id: int, code: str) -> Customer:
        row = (
            self.db.connection()
            .execute(
                "SELECT data FROM customers WHERE client_id = ? AND code = ?", (client_id, code)
            )
            .fetchone()
        )
        if row is None:
            raise NotFound(f"no customer {code!r} in the catalog")
        return Customer(**json.loads(row[0]))

    # ------------------------------------------------------------------------ channel links

    def links(self, channel_id: int, kind: str, entity_ids: list[int]) -> dict[int, Link]:
        if not entity_ids:
            return {}
        rows = (
            self.db.connection()
            .execute(
                "SELECT entity_id, remote_id, hash FROM channel_links WHERE channel_id = ?"
                f" AND kind = ? AND {self.db.in_list('entity_id')}",
                (channel_id, kind, self.db.list_param(entity_ids)),
            )
            .fetchall()
        )
        return {int(e): Link(r, h) for e, r, h in rows}

    def linked(self, channel_id: int, kind: str) -> dict[int, str]:
        """Every entity of one kind the channel holds: entity id -> remote id."""
        rows = (
            self.db.connection()
            .execute(
                "SELECT entity_id, remote_id FROM channel_links WHERE channel_id = ? AND kind = ?"
                " ORDER BY entity_id",
                (channel_id, kind),
            )
            .fetchall()
        )
        return {int(e): r for e, r in rows}

    def link(
        self, channel_id: int, kind: str, entity_id: int, remote_id: str, hash: str | None
    ) -> None:
        with self.db.write() as cur:
            cur.execute(
                "INSERT INTO channel_links (channel_id, kind, entity_id, remote_id, hash,"
                " updated_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (channel_id, kind, entity_id)"
                " DO UPDATE SET remote_id = excluded.remote_id, hash = excluded.hash,"
                " updated_at = excluded.updated_at",
                (channel_id, kind, entity_id, remote_id, hash, time.time()),
            )

    def unlink(self, channel_id: int, kind: str, entity_id: int) -> None:
        with self.db.write() as cur:
            cur.execute(
                "DELETE FROM channel_links WHERE channel_id = ? AND kind = ? AND entity_id = ?",
                (channel_id, kind, entity_id),
            )

    def clear_links(self, channel_id: int) -> int:
        with self.db.write() as cur:
            gone = cur.execute(
                "DELETE FROM channel_links WHERE channel_id = ? RETURNING entity_id", (channel_id,)
            ).fetchall()
        return len(gone)

    # ----------------------------------------------------------------------------- orders

    def upsert_order(self, client_id: int, channel_id: int, order: Order) -> tuple[int, bool]:
        """Store an order the channel reported; returns its id and whether it is new."""
        now = time.time()
        with self.db.write() as cur:
            row = cur.execute(
                "SELECT id FROM orders WHERE channel_id = ? AND remote_id = ?",
                (channel_id, order.remote_id),
            ).fetchone()
            data = _json(order.model_dump(mode="json"))
            if row is not None:
                cur.execute(
                    "UPDATE orders SET number = ?, total = ?, data = ?, updated_at = ?"
                    " WHERE id = ?",
                    (order.number, str(order.total), data, now, row[0]),
                )
                return int(row[0]), False
            (order_id,) = cur.execute(
                "INSERT INTO orders (client_id, channel_id, remote_id, number, state, total,"
                " data, created_at, updated_at) VALUES (?, ?, ?, ?, 'new', ?, ?, ?, ?)"
                " RETURNING id",
                (
                    client_id,
                    channel_id,
                    order.remote_id,
                    order.number or order.remote_id,
                    str(order.total),
                    data,
                    now,
                    now,
                ),
            ).fetchone()
        return int(order_id), True

    def order(self, client_id: int, order_id: int) -> StoredOrder:
        row = (
            self.db.connection()
            .execute(
                f"SELECT {_ORDER_COLUMNS} FROM orders WHERE id = ? AND client_id = ?",
                (order_id, client_id),
            )
            .fetchone()
        )
        if row is None:
            raise NotFound(f"no order {order_id} in the catalog")
        return _order(row)

    def order_id(self, channel_id: int, remote_id: str) -> int:
        row = (
            self.db.connection()
            .execute(
                "SELECT id FROM orders WHERE channel_id = ? AND remote_id = ?",
                (channel_id, remote_id),
            )
            .fetchone()
        )
        if row is None:
            raise NotFound(f"no order {remote_id!r} of channel {channel_id} in the catalog")
        return int(row[0])

    def update_order(self, order_id: int, **fields: Any) -> None:
        allowed = {"state", "paid", "source_code"}
        if not fields or set(fields) - allowed:
            raise ValueError(f"can only set {allowed}")
        assignments = ", ".join(f"{name} = ?" for name in fields)
        with self.db.write() as cur:
            cur.execute(
                f"UPDATE orders SET {assignments}, updated_at = ? WHERE id = ?",
                (*fields.values(), time.time(), order_id),
            )

    # ----------------------------------------------------------------------- fulfillments

    def add_fulfillment(
        self, client_id: int, order_id: int, service_id: int, remote_id: str, state: str
    ) -> int:
        now = time.time()
        with self.db.write() as cur:
            row = cur.execute(
                "SELECT id FROM fulfillments WHERE service_id = ? AND remote_id = ?",
                (service_id, remote_id),
            ).fetchone()
            if row is not None:
                return int(row[0])
            (fulfillment_id,) = cur.execute(
                "INSERT INTO fulfillments (client_id, order_id, service_id, remote_id, state,"
                " data, created_at, updated_at) VALUES (?, ?, ?, ?, ?, '{}', ?, ?) RETURNING id",
                (client_id, order_id, service_id, remote_id, state, now, now),
            ).fetchone()
        return int(fulfillment_id)

    def fulfillment(self, client_id: int, fulfillment_id: int) -> StoredFulfillment:
        return self._fulfillment("id = ? AND client_id = ?", (fulfillment_id, client_id))

    def fulfillment_by_remote(self, service_id: int, remote_id: str) -> StoredFulfillment:
        return self._fulfillment("service_id = ? AND remote_id = ?", (service_id, remote_id))

    def fulfillments(self, order_id: int) -> list[StoredFulfillment]:
        rows = (
            self.db.connection()
            .execute("SELECT id FROM fulfillments WHERE order_id = ? ORDER BY id", (order_id,))
            .fetchall()
        )
        return [self._fulfillment("id = ?", (r[0],)) for r in rows]

    def _fulfillment(self, where: str, params: tuple[Any, ...]) -> StoredFulfillment:
        row = (
            self.db.connection()
            .execute(f"SELECT {_FULFILLMENT_COLUMNS} FROM fulfillments WHERE {where}", params)
            .fetchone()
        )
        if row is None:
            raise NotFound(f"no such fulfillment ({', '.join(map(str, params))})")
        return _fulfillment(row)

    def update_fulfillment(
        self, fulfillment_id: int, state: FulfillmentState, tracking: Tracking | None
    ) -> None:
        data = {"tracking": None if tracking is None else tracking.model_dump(mode="json")}
        with self.db.write() as cur:
            cur.execute(
                "UPDATE fulfillments SET state = ?, data = ?, updated_at = ? WHERE id = ?",
                (state, _json(data), time.time(), fulfillment_id),
            )

    # ------------------------------------------------------------------- connection state

    def state(self, connection_id: int, key: str) -> ConnectionState | None:
        row = (
            self.db.connection()
            .execute(
                "SELECT value, next_at, item_id FROM connection_state"
                " WHERE connection_id = ? AND key = ?",
                (connection_id, key),
            )
            .fetchone()
        )
        if row is None:
            return None
        return ConnectionState(None if row[0] is None else json.loads(row[0]), row[1], row[2])

    def set_state(
        self,
        connection_id: int,
        key: str,
        value: Any = None,
        next_at: float | None = None,
        item_id: int | None = None,
    ) -> None:
        with self.db.write() as cur:
            cur.execute(
                "INSERT INTO connection_state (connection_id, key, value, next_at, item_id)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (connection_id, key) DO UPDATE SET"
                " value = excluded.value, next_at = excluded.next_at,"
                " item_id = excluded.item_id",
                (connection_id, key, _json(value), next_at, item_id),
            )
