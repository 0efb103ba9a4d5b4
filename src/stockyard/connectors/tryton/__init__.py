"""The `tryton` connector: Tryton ERP (trytond 8.2, modules product, stock and sale) over
its JSON-RPC API. As a source it reads products, prices and stock and creates sale orders;
as a fulfillment service it reports the state of the customer shipments of those sales.
docs/connectors.md lists its settings."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from stockyard.connectors.base import Connector, Page, parse_settings
from stockyard.connectors.tryton.client import TrytonClient
from stockyard.engine import Limits
from stockyard.errors import PermanentError, TransientError


class TrytonSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(pattern=r"^https?://")
    database: str = Field(min_length=1)
    username: str = "admin"
    password: str = Field(min_length=1, repr=False)
    timeout: float = Field(default=30.0, gt=0, le=600)
    # Codes of the warehouses whose stock counts; empty: every warehouse.
    warehouses: list[str] = []
    # Seconds each pull reads back before its cursor, for writes that committed late.
    overlap: float = Field(default=5.0, ge=0, le=3600)


# Tryton's customer shipment states -> Stockyard's fulfillment states.
SHIPMENT_STATES = {
    "draft": "pending",
    "waiting": "open",
    "assigned": "open",
    "picked": "open",
    "packed": "open",
    "shipped": "open",
    "done": "complete",
    "cancelled": "cancelled",
}


def _changed_since(since: dt.datetime) -> list[Any]:
    return ["OR", ("create_date", ">=", since), ("write_date", ">=", since)]


def _stamp(record: Mapping[str, Any]) -> dt.datetime:
    stamps: list[dt.datetime] = [
        d for d in (record.get("create_date"), record.get("write_date")) if d
    ]
    return max(stamps)


@dataclass(frozen=True)
class _Cursor:
    """Where a pull stands: changes from `since` on (None: everything), and the templates
    already delivered at their latest change inside the overlap window, so reading that
    window again (for writes that committed late) does not deliver them twice."""

    since: dt.datetime | None = None
    delivered: dict[int, dt.datetime] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str | None) -> _Cursor:
        if not text:
            return cls()
        try:
            data = json.loads(text)
            since = dt.datetime.fromisoformat(data["since"]) if data.get("since") else None
            delivered = {
                int(k): dt.datetime.fromisoformat(v) for k, v in data.get("delivered", {}).items()
            }
            return cls(since, delivered)
        except (ValueError, TypeError, KeyError, AttributeError):
            raise PermanentError(f"tryton: unreadable pull cursor {text[:100]!r}") from None

    def dump(self) -> str:
        return json.dumps(
            {
                "since": self.since.isoformat() if self.since else None,
                "delivered": {str(k): v.isoformat() for k, v in sorted(self.delivered.items())},
            }
        )


def _record(
    template: dict[str, Any],
    variants: list[dict[str, Any]],
    stock: dict[int, dict[str, int]],
    barcodes: dict[int, str],
    categories: dict[int, str],
) -> dict[str, Any]:
    """One template as a catalog product. Deactivated variants are left out; a template
    left with none, deactivated or no longer salable is withdrawn (active: false)."""
    live = [v for v in variants if v["active"]]
    return {
        "code": template.get("code") or variants[0]["code"],
        "title": template["name"],
        "description": variants[0].get("description") or "",
        "type": template.get("type") or "",
        "tags": sorted({categories[c] for c in template["categories"]}),
        "active": bool(live and template["active"] and template.get("salable", True)),
        "variants": [
            {
                "sku": v["code"],
                "barcode": next((barcodes[i] for i in v["identifiers"] if i in barcodes), None),
                "price": str(v.get("list_price_used") or Decimal(0)),
                "stock": stock.get(v["id"], {}),
            }
            for v in (live or variants)
        ],
    }


class TrytonConnector(Connector):
    roles = frozenset({"source", "fulfillment"})
    secret_settings = frozenset({"password"})
    # The ERP is the fragile side: its workers serve the office as well, and concurrent
    # writes to sales and stock moves end in lock conflicts that must be retried.
    default_limits = Limits(max_running=4)

    def __init__(self, settings: Mapping[str, Any]) -> None:
        super().__init__(settings)
        self.config = parse_settings(TrytonSettings, settings, "tryton")
        self.rpc = TrytonClient(
            self.config.url,
            self.config.database,
            self.config.username,
            self.config.password,
            self.config.timeout,
        )
        self._warehouses: list[dict[str, Any]] | None = None

    def close(self) -> None:
        self.rpc.close()

    # ------------------------------------------------------------------------ products

    def fetch_products(self, cursor: str | None) -> Page:
        at = _Cursor.parse(cursor)
        window = dt.timedelta(seconds=self.config.overlap)
        if at.since is None:  # everything; the window's stamps make the next pull exact
            newest = self._newest_change()
            changed = self._changed_templates(newest - window) if newest else {}
            todo = self.rpc.model(
                "product.template", "search", [("active", "in", [True, False])], 0, None, None
            )
            return Page(self._products(sorted(todo)), _Cursor(newest, changed).dump())
        changed = self._changed_templates(at.since - window)
        todo = sorted(t for t, stamp in changed.items() if at.delivered.get(t) != stamp)
        newest = max([*changed.values(), at.since])
        delivered = {t: stamp for t, stamp in changed.items() if stamp >= newest - window}
        return Page(self._products(todo), _Cursor(newest, delivered).dump())

    def _newest_change(self) -> dt.datetime | None:
        """The time of the latest change to a template, a variant or a stock move."""
        found: list[dt.datetime] = []
        for model in ("product.template", "product.product", "stock.move"):
            for stamp in ("create_date", "write_date"):
                rows = self.rpc.model(
                    model, "search_read", [(stamp, "!=", None)], 0, 1, [[stamp, "DESC"]], [stamp]
                )
                found += [r[stamp] for r in rows]
        return max(found, default=None)

    def _changed_templates(self, since: dt.datetime) -> dict[int, dt.datetime]:
        """The templates changed since `since` (their own fields, a variant's, a price or
        a stock move), each with the time of its latest change."""
        stamps = ["create_date", "write_date"]
        every = [("active", "in", [True, False])]
        when = _changed_since(since)
        templates = self.rpc.model(
            "product.template", "search_read", [*every, when], 0, None, None, stamps
        )
        changed = {t["id"]: _stamp(t) for t in templates}
        products = self.rpc.model(
            "product.product",
            "search_read",
            [*every, when],
            0,
            None,
            None,
            [*stamps, "template"],
        )
        moves = self.rpc.model(
            "stock.move", "search_read", [when], 0, None, None, [*stamps, "product"]
        )
        template_of = {p["id"]: p["template"] for p in products}
        unknown = sorted({m["product"] for m in moves} - set(template_of))
        if unknown:
            for p in self.rpc.model(
                "product.product",
                "search_read",
                [*every, ("id", "in", unknown)],
                0,
                None,
                None,
                ["template"],
            ):
                template_of[p["id"]] = p["template"]
        for record, template in [
            *((p, p["template"]) for p in products),
            *((m, template_of.get(m["product"])) for m in moves),
        ]:
            if template is not None:
                stamp = _stamp(record)
                changed[template] = max(stamp, changed.get(template, stamp))
        return changed

    def _products(self, template_ids: list[int]) -> list[dict[str, Any]]:
        if not template_ids:
            return []
        inactive_too = {"active_test": False}
        templates = self.rpc.model(
            "product.template",
            "read",
            template_ids,
            ["code", "name", "type", "active", "products", "categories", "salable"],
            context=inactive_too,
        )
        product_ids = [p for t in templates for p in t["products"]]
        variants = {
            v["id"]: v
            for v in self.rpc.model(
                "product.product",
                "read",
                product_ids,
                ["code", "active", "list_price_used", "description", "identifiers"],
                context=inactive_too,
            )
        }
        stock = self._stock(product_ids)
        barcodes = self._barcodes([i for v in variants.values() for i in v["identifiers"]])
        categories = self._category_names([c for t in templates for c in t["categories"]])
        records = []
        for template in templates:
            coded = [variants[p] for p in template["products"] if variants[p].get("code")]
            if coded:  # a template without a code (SKU) on any variant has nothing to sell
                records.append(_record(template, coded, stock, barcodes, categories))
        return records

    def _stock(self, product_ids: list[int]) -> dict[int, dict[str, int]]:
        """What can be promised per warehouse code, per product: the quantity on hand,
        less what confirmed sales and other planned moves will take, never more than is
        on hand (goods on order count once they arrive)."""
        result: dict[int, dict[str, int]] = {p: {} for p in product_ids}
        for warehouse in self.warehouses():
            context = {"locations": [warehouse["id"]], "with_childs": True, "active_test": False}
            rows = self.rpc.model(
                "product.product",
                "read",
                product_ids,
                ["quantity", "forecast_quantity"],
                context=context,
            )
            for row in rows:
                available = min(row["quantity"] or 0, row["forecast_quantity"] or 0)
                result[row["id"]][warehouse["code"] or str(warehouse["id"])] = int(available)
        return result

    def warehouses(self) -> list[dict[str, Any]]:
        if self._warehouses is None:
            found = self.rpc.model(
                "stock.location",
                "search_read",
                [("type", "=", "warehouse")],
                0,
                None,
                None,
                ["code", "name"],
            )
            wanted = self.config.warehouses
            unknown = set(wanted) - {w["code"] for w in found}
            if unknown:
                raise PermanentError(f"tryton: no warehouse with code {sorted(unknown)}")
            self._warehouses = [w for w in found if not wanted or w["code"] in wanted]
        return self._warehouses

    def _barcodes(self, identifier_ids: list[int]) -> dict[int, str]:
        if not identifier_ids:
            return {}
        rows = self.rpc.model("product.identifier", "read", identifier_ids, ["code"])
        return {r["id"]: r["code"] for r in rows}

    def _category_names(self, ids: list[int]) -> dict[int, str]:
        if not ids:
            return {}
        rows = self.rpc.model("product.category", "read", sorted(set(ids)), ["name"])
        return {r["id"]: r["name"] for r in rows}

    # -------------------------------------------------------------------------- orders

    def create_order(self, order: dict[str, Any], key: str) -> str:
        """A confirmed sale. Its description names Stockyard's order and the channel's, so a
        repeat finds the sale it made the first time instead of making a second one, and
        another Stockyard's order of the same id (a second deployment, or one set up
        afresh, against this Tryton) is never taken for it; its reference is the channel's
        order number, for people."""
        if not order.get("id"):
            raise PermanentError("tryton: the order has no Stockyard id")
        tag = f"Stockyard order {order['id']} ({order.get('remote_id') or '-'})"
        # Sales made before the tag named the channel's order: the same id and number.
        legacy = [
            ("description", "=", f"Stockyard order {order['id']}"),
            ("reference", "=", self._reference(order)),
        ]
        found = self.rpc.model(
            "sale.sale",
            "search_read",
            ["OR", [("description", "=", tag)], legacy],
            0,
            1,
            None,
            ["state", "number"],
        )
        if found:
            sale = found[0]
        else:
            sale_id = self.rpc.model("sale.sale", "create", [self._sale(order, tag)])[0]
            sale = {"id": sale_id, "state": "draft"}
        if sale["state"] == "draft":
            self.rpc.model("sale.sale", "quote", [sale["id"]])
            sale["state"] = "quotation"
        if sale["state"] == "quotation":
            self.rpc.model("sale.sale", "confirm", [sale["id"]])
        number = self.rpc.model("sale.sale", "read", [sale["id"]], ["number"])[0]["number"]
        return str(number)

    @staticmethod
    def _reference(order: dict[str, Any]) -> str:
        return str(order.get("number") or order["remote_id"])

    def _sale(self, order: dict[str, Any], tag: str) -> dict[str, Any]:
        party, address = self._customer(order)
        currency = self._currency(order.get("currency") or "EUR")
        lines = []
        for line in order["lines"]:
            product = self._product_by_sku(line["sku"])
            lines.append(
                {
                    "type": "line",
                    "product": product["id"],
                    "quantity": float(line["quantity"]),
                    "unit": product["sale_uom"],
                    "unit_price": Decimal(str(line["price"])),
                }
            )
        return {
            "party": party,
            "invoice_address": address,
            "shipment_address": address,
            "reference": self._reference(order),
            "description": tag,
            "currency": currency,
            "lines": [["create", lines]],
        }

    def _product_by_sku(self, sku: str) -> dict[str, Any]:
        found = self.rpc.model(
            "product.product", "search_read", [("code", "=", sku)], 0, 1, None, ["sale_uom"]
        )
        if not found:
            raise PermanentError(f"tryton: no product with code {sku!r}")
        return dict(found[0])

    def _currency(self, code: str) -> int:
        found = self.rpc.model("currency.currency", "search", [("code", "=", code)], 0, 1, None)
        if not found:
            raise PermanentError(f"tryton: no currency {code!r}")
        return int(found[0])

    def _customer(self, order: dict[str, Any]) -> tuple[int, int]:
        """The party (found by e-mail, else created) and an address: Tryton quotes a sale
        only with an invoice address."""
        customer = order.get("customer") or {}
        email = customer.get("email")
        shipping = order.get("shipping_address") or order.get("billing_address") or {}
        address = {
            "party_name": shipping.get("name") or None,
            "street_unstructured": "\n".join(
                x for x in (shipping.get("line1"), shipping.get("line2")) if x
            )
            or None,
            "postal_code": shipping.get("postcode") or None,
            "city": shipping.get("city") or None,
        }
        party_id: int | None = None
        if email:
            found = self.rpc.model(
                "party.contact_mechanism",
                "search_read",
                [("type", "=", "email"), ("value", "=", email)],
                0,
                1,
                None,
                ["party"],
            )
            party_id = found[0]["party"] if found else None
        if party_id is None:
            name = customer.get("name") or shipping.get("name") or email or "Web customer"
            mechanisms = [{"type": "email", "value": email}] if email else []
            party_id = self.rpc.model(
                "party.party",
                "create",
                [{"name": name, "contact_mechanisms": [["create", mechanisms]]}],
            )[0]
        same = [("party", "=", party_id), *((k, "=", v) for k, v in address.items())]
        known = self.rpc.model("party.address", "search", same, 0, 1, None)
        if known:
            return party_id, int(known[0])
        (address_id,) = self.rpc.model("party.address", "create", [{**address, "party": party_id}])
        return party_id, address_id

    # -------------------------------------------------------------------- fulfillment

    def create_fulfillment(self, order: dict[str, Any], key: str) -> str:
        """Tryton makes the customer shipment itself when the sale is confirmed: this
        links to it."""
        code = order.get("source_code")
        if not code:
            raise PermanentError("tryton: the order has no sale number yet")
        found = self.rpc.model(
            "sale.sale", "search_read", [("number", "=", code)], 0, 1, None, ["shipments", "state"]
        )
        if not found:
            raise PermanentError(f"tryton: no sale {code!r}")
        if not found[0]["shipments"]:
            raise TransientError(f"tryton: sale {code} has no shipment yet ({found[0]['state']})")
        return str(found[0]["shipments"][0])

    def fetch_fulfillments(self, cursor: str | None) -> Page:
        at = _Cursor.parse(cursor)
        since = at.since - dt.timedelta(seconds=self.config.overlap) if at.since else None
        domain: list[Any] = [_changed_since(since)] if since else []
        rows = self.rpc.model(
            "stock.shipment.out",
            "search_read",
            domain,
            0,
            None,
            None,
            ["state", "reference", "create_date", "write_date"],
        )
        records = [
            {
                "remote_id": str(r["id"]),
                "state": SHIPMENT_STATES.get(r["state"], "open"),
                "tracking": {"number": r.get("reference") or ""} if r.get("reference") else None,
            }
            for r in rows
        ]
        newest = max((_stamp(r) for r in rows), default=at.since)
        return Page(records, _Cursor(newest).dump())
