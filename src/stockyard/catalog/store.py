"""The catalog's tables: entities are rows with their identity in columns and their fields
as JSON. The statements are in queries.sql."""

from __future__ import annotations

import hashlib
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
from stockyard.db import Cursor, Row, Store, load_queries
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


# The attribute that marks a customer erased on request (service.customers): its value is
# when. Kept in the row's data so every reader of a customer sees it, with no new column.
ERASED = "stockyard_erased_at"


@dataclass(frozen=True, slots=True)
class StoredCustomer:
    id: int
    code: str
    email: str | None
    fields: dict[str, Any]

    @property
    def customer(self) -> Customer:
        return Customer.model_validate(self.fields)

    @property
    def erased(self) -> bool:
        return is_erased_record(self.fields)


def erased_code(client_id: int, code: str) -> str:
    """What replaces a customer code that is an email address (a shop's guest, coded by
    email) once erased: the same for the same email in one client, so the erased row is
    found again (erasing twice, the source sending the email again), and no other client
    shares it. A hash can be matched by someone who already knows the address, never
    read back (docs/privacy.md)."""
    digest = hashlib.sha256(f"{client_id}:{code.strip().casefold()}".encode()).hexdigest()
    return f"erased-{digest[:24]}"


def is_email_code(code: str) -> bool:
    """A code that is an email address is personal data itself; an account number is
    the ERP's id and stays."""
    return "@" in code


def erased_customer(data: dict[str, Any], when: float) -> dict[str, Any]:
    """A customer dict (as models.Customer dumps it) without its personal fields, marked
    erased at `when`; its code and trade terms stay."""
    # Whether the account is open is the ERP's state of it, nothing personal: a closed
    # account stays closed once erased.
    kept = {k: v for k, v in data.items() if k in ("code", "price_tier", "credit_limit", "active")}
    kept.update({"payment_terms": data.get("payment_terms", "")})
    kept["attributes"] = {ERASED: when}
    return Customer.model_validate(kept).model_dump(mode="json")


def customer_of(row: Row) -> StoredCustomer:
    return StoredCustomer(int(row["id"]), row["code"], row["email"], json.loads(row["data"]))


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
_ORDER_FIELDS = frozenset({"state", "paid", "source_code"})


def _product_row(r: Row) -> ProductRow:
    return ProductRow(int(r["id"]), r["code"], r["title"], bool(r["deleted"]), r["updated_at"])


def _variant_row(r: Row) -> VariantRow:
    return VariantRow(
        int(r["id"]),
        r["sku"],
        int(r["product_id"]),
        r["product_code"],
        Variant(**json.loads(r["data"])),
        bool(r["deleted"]),
    )


def _order(row: Row) -> StoredOrder:
    return StoredOrder(
        id=int(row["id"]),
        client_id=int(row["client_id"]),
        channel_id=int(row["channel_id"]),
        state=row["state"],
        paid=None if row["paid"] is None else Decimal(row["paid"]),
        source_code=row["source_code"],
        order=Order(**json.loads(row["data"])),
    )


def _fulfillment(row: Row) -> StoredFulfillment:
    tracking = json.loads(row["data"]).get("tracking")
    return StoredFulfillment(
        id=int(row["id"]),
        client_id=int(row["client_id"]),
        order_id=int(row["order_id"]),
        service_id=int(row["service_id"]),
        remote_id=row["remote_id"],
        state=row["state"],
        tracking=None if tracking is None else Tracking(**tracking),
    )


def _after_prefix(prefix: str) -> str:
    """The least string above every string that starts with `prefix` in code point order
    (SQLite's, and PostgreSQL's "C" collation): the prefix with its last character raised
    by one. An empty prefix has none: every key."""
    if not prefix:
        return chr(0x10FFFF)
    last = ord(prefix[-1])
    if last >= 0x10FFFF:
        return prefix + chr(0x10FFFF)
    # Surrogates cannot be stored: step over them.
    raised = last + 1 if not 0xD7FF <= last < 0xDFFF else 0xE000
    return prefix[:-1] + chr(raised)


def is_erased_record(data: Any) -> bool:
    """Whether a customer dict is one the eraser wrote: marked erased AND holding nothing
    personal. The mark alone proves nothing: a source or a store can send a record with
    any attribute, and a record that looked erased would never be erased. A mark on a
    blank record is harmless whoever wrote it (there is nothing left to erase)."""
    if not isinstance(data, dict):
        return False
    attributes = data.get("attributes")
    if not isinstance(attributes, dict) or ERASED not in attributes:
        return False
    try:
        whole = Customer.model_validate(data).model_dump(mode="json")
        return erased_customer(data, attributes[ERASED]) == whole
    except ValueError:
        return False


def without_forged_mark(data: dict[str, Any]) -> dict[str, Any]:
    """An inbound customer dict without an erased mark it cannot carry (one on a record
    with personal data): only the eraser marks records, and it blanks them."""
    attributes = data.get("attributes")
    if not isinstance(attributes, dict) or ERASED not in attributes or is_erased_record(data):
        return data
    return data | {"attributes": {k: v for k, v in attributes.items() if k != ERASED}}


def _keep_erasure(order: Order, stored: dict[str, Any]) -> Order:
    """An order reported again whose stored customer was erased on request keeps the
    erased customer and no addresses: the store repeating its copy (a payment recorded,
    a state changed) must not bring the personal data back. Sums, lines and payment
    are the store's news and follow it."""
    customer = stored.get("customer")
    if not is_erased_record(customer):
        return order
    return order.model_copy(
        update={
            "customer": Customer.model_validate(customer),
            "shipping_address": None,
            "billing_address": None,
        }
    )


def _json(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


class CatalogStore(Store):
    queries = load_queries(__package__, "queries.sql")

    # ------------------------------------------------------------------------- products

    def upsert_product(self, client_id: int, source_id: int | None, product: Product) -> int:
        """Write a product as the source sent it. Variants and images it no longer lists are
        marked removed (channels that hold them delete them)."""
        now = time.time()
        fields = product.model_dump(mode="json", exclude={"variants", "images", "code"})
        with self.db.write() as cur:
            product_id = self.value(
                cur,
                "upsert_product",
                client_id=client_id,
                source_id=source_id,
                code=product.key,
                folded=product.key.casefold(),
                title=product.title,
                data=_json(fields),
                deleted=int(not product.active),
                now=now,
            )
            self._upsert_variants(cur, client_id, product_id, product.variants, now)
            self._upsert_images(cur, client_id, product_id, product.images, now)
        return int(product_id)

    def _upsert_variants(
        self, cur: Cursor, client_id: int, product_id: int, variants: list[Variant], now: float
    ) -> None:
        self.execute_many(
            cur,
            "upsert_variant",
            [
                {
                    "client_id": client_id,
                    "product_id": product_id,
                    "sku": v.sku,
                    "folded": v.sku.casefold(),
                    "position": n,
                    "data": _json(v.model_dump(mode="json")),
                    "now": now,
                }
                for n, v in enumerate(variants)
            ],
        )
        self.execute(
            cur,
            "remove_other_variants",
            now=now,
            product_id=product_id,
            skus=[v.sku for v in variants],
        )

    def _upsert_images(
        self, cur: Cursor, client_id: int, product_id: int, images: list[Image], now: float
    ) -> None:
        self.execute_many(
            cur,
            "upsert_image",
            [
                {
                    "client_id": client_id,
                    "product_id": product_id,
                    "code": i.key,
                    "position": n,
                    "data": _json(i.model_dump(mode="json")),
                    "now": now,
                }
                for n, i in enumerate(images)
            ],
        )
        self.execute(
            cur,
            "remove_other_images",
            now=now,
            product_id=product_id,
            codes=[i.key for i in images],
        )

    def add_image(self, client_id: int, product_code: str, image: Image) -> int:
        """Add or replace one image of a product (sync_image); returns the product's id."""
        product_id = self.product_id(client_id, product_code)
        now = time.time()
        with self.db.write() as cur:
            position = self.value(cur, "image_count", product_id=product_id)
            self.execute(
                cur,
                "replace_image",
                client_id=client_id,
                product_id=product_id,
                code=image.key,
                position=position,
                data=_json(image.model_dump(mode="json")),
                now=now,
            )
        return product_id

    def product_id(self, client_id: int, code: str) -> int:
        row = self.must(
            self.conn,
            "product_id",
            missing=NotFound(f"no product with code {code!r} in the catalog"),
            client_id=client_id,
            code=code,
        )
        return int(row["id"])

    def product(self, client_id: int, product_id: int) -> StoredProduct:
        conn = self.conn
        row = self.must(
            conn,
            "product",
            missing=NotFound(f"no product {product_id} in the catalog"),
            id=product_id,
            client_id=client_id,
        )
        variants = self.all(conn, "product_variants", product_id=product_id)
        images = self.all(conn, "product_images", product_id=product_id)
        live_variants = [
            StoredVariant(v["id"], Variant(**json.loads(v["data"])))
            for v in variants
            if not v["deleted"]
        ]
        live_images = [
            StoredImage(i["id"], Image(**json.loads(i["data"]))) for i in images if not i["deleted"]
        ]
        return StoredProduct(
            id=product_id,
            client_id=client_id,
            code=row["code"],
            fields=json.loads(row["data"]),
            deleted=bool(row["deleted"]) or not live_variants,
            variants=live_variants,
            images=live_images,
            removed_variants=[v["id"] for v in variants if v["deleted"]],
            removed_images=[i["id"] for i in images if i["deleted"]],
        )

    def product_summaries(self, client_id: int) -> list[tuple[int, str, dict[str, Any], bool]]:
        """Id, code, product-level fields and deleted flag of every product: what channel
        fan-outs filter on, in one statement."""
        rows = self.all(self.conn, "product_summaries", client_id=client_id)
        return [(int(r["id"]), r["code"], json.loads(r["data"]), bool(r["deleted"])) for r in rows]

    # Listings page by a unique, indexed key: products by code, variants by SKU, orders
    # and fulfillments newest first by id.

    def list_products(self, client_id: int, after: str, limit: int) -> list[ProductRow]:
        rows = self.all(self.conn, "list_products", client_id=client_id, after=after, limit=limit)
        return [_product_row(r) for r in rows]

    def list_variants(self, client_id: int, after: str, limit: int) -> list[VariantRow]:
        rows = self.all(self.conn, "list_variants", client_id=client_id, after=after, limit=limit)
        return [_variant_row(r) for r in rows]

    def list_orders(self, client_id: int, before: int | None, limit: int) -> list[StoredOrder]:
        before = _MAX_ID if before is None else before
        rows = self.all(self.conn, "list_orders", client_id=client_id, before=before, limit=limit)
        return [_order(r) for r in rows]

    def list_fulfillments(
        self, client_id: int, before: int | None, limit: int
    ) -> list[StoredFulfillment]:
        before = _MAX_ID if before is None else before
        rows = self.all(
            self.conn, "list_fulfillments", client_id=client_id, before=before, limit=limit
        )
        return [_fulfillment(r) for r in rows]

    # --------------------------------------------------------------------------- finding

    def products_with_prefix(self, client_id: int, prefix: str, limit: int) -> list[ProductRow]:
        rows = self._in_range("products_in_range", client_id, prefix, limit)
        return [_product_row(r) for r in rows]

    def variants_with_prefix(self, client_id: int, prefix: str, limit: int) -> list[VariantRow]:
        rows = self._in_range("variants_in_range", client_id, prefix, limit)
        return [_variant_row(r) for r in rows]

    def customers_with_prefix(
        self, client_id: int, prefix: str, limit: int
    ) -> list[StoredCustomer]:
        rows = self._in_range("customers_in_range", client_id, prefix, limit)
        return [customer_of(r) for r in rows]

    def _in_range(self, query: str, client_id: int, prefix: str, limit: int) -> list[Row]:
        """Rows whose key starts with `prefix` in any case: its case-folded form is a prefix
        of theirs (so "straße" finds STRASSE), one range on the (client_id, folded) index."""
        folded = prefix.casefold()
        return self.all(
            self.conn,
            query,
            client_id=client_id,
            lo=folded,
            hi=_after_prefix(folded),
            limit=limit,
        )

    def product_of(self, client_id: int, code_or_sku: str) -> int | None:
        """The product a ref names: its code, else one of its variants' SKU."""
        row = self.one(self.conn, "product_id", client_id=client_id, code=code_or_sku)
        if row is None:
            row = self.one(self.conn, "variant_product_id", client_id=client_id, sku=code_or_sku)
            return None if row is None else int(row["product_id"])
        return int(row["id"])

    def orders_named(
        self, client_id: int, channel_ids: list[int], text: str, limit: int
    ) -> list[StoredOrder]:
        """A client's orders a channel knows by `text` (its id for it) or numbered `text`."""
        found: dict[int, StoredOrder] = {}
        for channel_id in channel_ids:
            row = self.one(
                self.conn,
                "channel_order",
                channel_id=channel_id,
                remote_id=text,
                client_id=client_id,
            )
            if row is not None:
                found[int(row["id"])] = _order(row)
        for row in self.all(
            self.conn, "orders_numbered", client_id=client_id, number=text, limit=limit
        ):
            found.setdefault(int(row["id"]), _order(row))
        return sorted(found.values(), key=lambda o: -o.id)[:limit]

    # -------------------------------------------------------------------------- customers

    def upsert_customer(self, client_id: int, customer: Customer) -> int:
        """Store a customer as its source sent it; a customer erased on request stays
        erased (only its trade terms follow the source) until an operator un-erases it
        (catalog.erasure): the source sending them again brings nothing personal back."""
        with self.db.write() as cur:
            code, email = customer.code, customer.email
            data = without_forged_mark(customer.model_dump(mode="json"))
            erased = self._erased_customer_row(cur, client_id, code)
            if erased is not None:
                code, email = erased.code, None
                data = erased_customer(data | {"code": code}, erased.fields["attributes"][ERASED])
            customer_id = self.value(
                cur,
                "upsert_customer",
                client_id=client_id,
                code=code,
                folded=code.casefold(),
                email=email,
                data=_json(data),
                now=time.time(),
            )
        return int(customer_id)

    def _erased_customer_row(self, cur: Cursor, client_id: int, code: str) -> StoredCustomer | None:
        """The erased row a record of `code` lands on: the row of that code, or for an
        email code the row its erasure renamed (erased_code)."""
        codes = [code, erased_code(client_id, code)] if is_email_code(code) else [code]
        for each in codes:
            row = self.one(cur, "customer_by_code", client_id=client_id, code=each)
            if row is not None:
                found = customer_of(row)
                return found if found.erased else None
        return None

    def customer(self, client_id: int, customer_id: int) -> StoredCustomer:
        row = self.must(
            self.conn,
            "customer",
            missing=NotFound(f"no customer {customer_id} in the catalog"),
            id=customer_id,
            client_id=client_id,
        )
        return customer_of(row)

    def customer_by_code(self, client_id: int, code: str) -> StoredCustomer:
        row = self.must(
            self.conn,
            "customer_by_code",
            missing=NotFound(f"no customer {code!r} in the catalog"),
            code=code,
            client_id=client_id,
        )
        return customer_of(row)

    # ------------------------------------------------------------------------ channel links

    def links(self, channel_id: int, kind: str, entity_ids: list[int]) -> dict[int, Link]:
        if not entity_ids:
            return {}
        rows = self.all(self.conn, "links", channel_id=channel_id, kind=kind, entity_ids=entity_ids)
        return {int(r["entity_id"]): Link(r["remote_id"], r["hash"]) for r in rows}

    def linked(self, channel_id: int, kind: str) -> dict[int, str]:
        """Every entity of one kind the channel holds: entity id -> remote id."""
        rows = self.all(self.conn, "linked", channel_id=channel_id, kind=kind)
        return {int(r["entity_id"]): r["remote_id"] for r in rows}

    def link(
        self, channel_id: int, kind: str, entity_id: int, remote_id: str, hash: str | None
    ) -> None:
        with self.db.write() as cur:
            self.execute(
                cur,
                "link",
                channel_id=channel_id,
                kind=kind,
                entity_id=entity_id,
                remote_id=remote_id,
                hash=hash,
                now=time.time(),
            )

    def unlink(self, channel_id: int, kind: str, entity_id: int) -> None:
        with self.db.write() as cur:
            self.execute(cur, "unlink", channel_id=channel_id, kind=kind, entity_id=entity_id)

    def clear_links(self, channel_id: int) -> int:
        with self.db.write() as cur:
            gone = self.all(cur, "clear_links", channel_id=channel_id)
        return len(gone)

    # ----------------------------------------------------------------------------- orders

    def upsert_order(self, client_id: int, channel_id: int, order: Order) -> tuple[int, bool]:
        """Store an order the channel reported; returns its id and whether it is new."""
        now = time.time()
        if order.customer is not None:
            customer = without_forged_mark(order.customer.model_dump(mode="json"))
            order = order.model_copy(update={"customer": Customer.model_validate(customer)})
        with self.db.write() as cur:
            row = self.one(cur, "order_report", channel_id=channel_id, remote_id=order.remote_id)
            if row is not None:
                order = _keep_erasure(order, json.loads(row["data"]))
            data = _json(order.model_dump(mode="json"))
            if row is not None:
                self.execute(
                    cur,
                    "update_order_report",
                    number=order.number,
                    total=str(order.total),
                    data=data,
                    now=now,
                    id=row["id"],
                )
                return int(row["id"]), False
            order_id = self.value(
                cur,
                "insert_order",
                client_id=client_id,
                channel_id=channel_id,
                remote_id=order.remote_id,
                number=order.number or order.remote_id,
                total=str(order.total),
                data=data,
                now=now,
            )
        return int(order_id), True

    def order(self, client_id: int, order_id: int) -> StoredOrder:
        row = self.must(
            self.conn,
            "order",
            missing=NotFound(f"no order {order_id} in the catalog"),
            id=order_id,
            client_id=client_id,
        )
        return _order(row)

    def order_id(self, channel_id: int, remote_id: str) -> int:
        row = self.must(
            self.conn,
            "order_id",
            missing=NotFound(f"no order {remote_id!r} of channel {channel_id} in the catalog"),
            channel_id=channel_id,
            remote_id=remote_id,
        )
        return int(row["id"])

    def update_order(self, order_id: int, **fields: Any) -> None:
        if not fields or set(fields) - _ORDER_FIELDS:
            raise ValueError(f"can only set {set(_ORDER_FIELDS)}")
        with self.db.write() as cur:
            self.execute(
                cur,
                "update_order",
                **{name: fields.get(name) for name in _ORDER_FIELDS},
                **{f"set_{name}": name in fields for name in _ORDER_FIELDS},
                now=time.time(),
                id=order_id,
            )

    # ----------------------------------------------------------------------- fulfillments

    def add_fulfillment(
        self, client_id: int, order_id: int, service_id: int, remote_id: str, state: str
    ) -> int:
        now = time.time()
        with self.db.write() as cur:
            row = self.one(cur, "fulfillment_id", service_id=service_id, remote_id=remote_id)
            if row is not None:
                return int(row["id"])
            fulfillment_id = self.value(
                cur,
                "insert_fulfillment",
                client_id=client_id,
                order_id=order_id,
                service_id=service_id,
                remote_id=remote_id,
                state=state,
                now=now,
            )
        return int(fulfillment_id)

    def fulfillment(self, client_id: int, fulfillment_id: int) -> StoredFulfillment:
        row = self.must(
            self.conn,
            "fulfillment",
            missing=NotFound(f"no such fulfillment ({fulfillment_id}, {client_id})"),
            id=fulfillment_id,
            client_id=client_id,
        )
        return _fulfillment(row)

    def fulfillment_by_remote(self, service_id: int, remote_id: str) -> StoredFulfillment:
        row = self.must(
            self.conn,
            "fulfillment_by_remote",
            missing=NotFound(f"no such fulfillment ({service_id}, {remote_id})"),
            service_id=service_id,
            remote_id=remote_id,
        )
        return _fulfillment(row)

    def fulfillments(self, order_id: int) -> list[StoredFulfillment]:
        rows = self.all(self.conn, "order_fulfillments", order_id=order_id)
        return [_fulfillment(r) for r in rows]

    def update_fulfillment(
        self, fulfillment_id: int, state: FulfillmentState, tracking: Tracking | None
    ) -> None:
        data = {"tracking": None if tracking is None else tracking.model_dump(mode="json")}
        with self.db.write() as cur:
            self.execute(
                cur,
                "update_fulfillment",
                state=state,
                data=_json(data),
                now=time.time(),
                id=fulfillment_id,
            )

    # ------------------------------------------------------------------- connection state

    def state(self, connection_id: int, key: str) -> ConnectionState | None:
        row = self.one(self.conn, "connection_state", connection_id=connection_id, key=key)
        if row is None:
            return None
        value = None if row["value"] is None else json.loads(row["value"])
        return ConnectionState(value, row["next_at"], row["item_id"])

    def set_state(
        self,
        connection_id: int,
        key: str,
        value: Any = None,
        next_at: float | None = None,
        item_id: int | None = None,
    ) -> None:
        with self.db.write() as cur:
            self.execute(
                cur,
                "set_connection_state",
                connection_id=connection_id,
                key=key,
                value=_json(value),
                next_at=next_at,
                item_id=item_id,
            )
