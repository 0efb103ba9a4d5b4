"""The `tryton` connector: Tryton ERP (trytond 8.2, modules product, stock and sale, with
sale_price_list and account_credit_limit for trade customers) over its JSON-RPC API. As a
source it reads products, prices (tier prices from its price lists) and stock, reads its
trade customers, and creates sale orders (a trade customer's own on account); as a
fulfillment service it reports the state of the customer shipments of those sales.
docs/connectors.md lists its settings."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Annotated, Any

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
    # Price tiers: tier name -> the name of a Tryton price list; each variant's
    # prices[tier] is that list's price for it, and a trade customer whose sale price
    # list it is sees that tier. Empty: no tier prices (records as before).
    price_lists: dict[
        Annotated[str, Field(min_length=1, max_length=100)],
        Annotated[str, Field(min_length=1, max_length=200)],
    ] = Field(default={}, max_length=50)


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


def _money(value: Decimal) -> str:
    """A price as the catalog writes it: two decimals unless Tryton's has more (its
    prices carry four digits, "8.0000")."""
    cents = value.quantize(Decimal("0.01"))
    return str(cents if cents == value else value.normalize())


# What a party's customer record is read from: a change to any of them is the party's.
_PARTY_MODELS = ("party.party", "party.address", "party.contact_mechanism")
_PHONES = ("phone", "mobile")
# The party category of the parties made for web guests: the only parties a web order is
# matched to by e-mail.
GUEST_CATEGORY = "Stockyard web guests"


def _is_trade(party: Mapping[str, Any]) -> bool:
    """A trade customer: a party with a sale price list or a credit limit."""
    return bool(party.get("sale_price_list") or party.get("credit_limit_amount") is not None)


def _like_literal(text: str) -> str:
    """`text` as a LIKE pattern that matches only itself: Tryton's like/ilike escape with a
    backslash (trytond/model/fields/field.py), and `%`/`_` in an e-mail a shopper typed
    must not match other addresses."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _first(mechanisms: list[dict[str, Any]], kinds: tuple[str, ...]) -> str | None:
    """The party's own (unnamed) contact of one of `kinds`, else anyone's."""
    of_kind = [m for m in mechanisms if m["type"] in kinds and m["value"]]
    own = [m for m in of_kind if not m.get("name")]
    return str((own or of_kind)[0]["value"]) if of_kind else None


def _contacts(mechanisms: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The people at a party: its named contact mechanisms grouped by name, the role
    taken from their comment (Tryton has no contact person without party_relationship)."""
    people: dict[str, dict[str, Any]] = {}
    for m in mechanisms:
        name = (m.get("name") or "").strip()
        if not name or not m["value"]:
            continue
        person = people.setdefault(name, {"name": name, "email": None, "phone": "", "role": ""})
        if m["type"] == "email" and person["email"] is None:
            person["email"] = m["value"]
        elif m["type"] in _PHONES and not person["phone"]:
            person["phone"] = m["value"]
        if not person["role"] and m.get("comment"):
            person["role"] = str(m["comment"]).strip()
    return list(people.values())


def _address(row: dict[str, Any], party: str, countries: dict[int, str]) -> dict[str, Any]:
    lines = (row.get("street_unstructured") or "").splitlines()
    return {
        "name": row.get("party_name") or party,
        "company": party,
        "line1": lines[0] if lines else "",
        "line2": ", ".join(lines[1:]),
        "city": row.get("city") or "",
        "postcode": row.get("postal_code") or "",
        "country": countries.get(row["country"], "") if row.get("country") else "",
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
    tiers: dict[int, dict[str, str]],
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
                # Only when the connection names price lists: a record without tiers
                # stays exactly as it was before they existed (its hash too).
                **({"prices": tiers[v["id"]]} if tiers.get(v["id"]) else {}),
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
        self._lists: dict[str, int] | None = None
        self._guests: int | None = None  # the guests' party category

    def close(self) -> None:
        self.rpc.close()

    # ------------------------------------------------------------------------ products

    def fetch_products(self, cursor: str | None) -> Page:
        return self._pull(
            cursor,
            self._newest_change,
            self._changes,
            lambda: self.rpc.model(
                "product.template", "search", [("active", "in", [True, False])], 0, None, None
            ),
            self._products,
        )

    def _pull(
        self,
        cursor: str | None,
        newest_change: Callable[[], dt.datetime | None],
        changes: Callable[[dt.datetime], dict[int, dt.datetime]],
        everything: Callable[[], list[int]],
        records: Callable[[list[int]], list[dict[str, Any]]],
    ) -> Page:
        """A pull since `cursor` of the records `changes` names by id (a negative id: a
        change that concerns every record, as a price list's new formula does)."""
        at = _Cursor.parse(cursor)
        window = dt.timedelta(seconds=self.config.overlap)
        if at.since is None:  # everything; the window's stamps make the next pull exact
            newest = newest_change()
            changed = changes(newest - window) if newest else {}
            return Page(records(sorted(everything())), _Cursor(newest, changed).dump())
        changed = changes(at.since - window)
        fresh = [k for k, stamp in changed.items() if at.delivered.get(k) != stamp]
        todo = sorted(everything()) if any(k < 0 for k in fresh) else sorted(fresh)
        newest = max([*changed.values(), at.since])
        delivered = {k: stamp for k, stamp in changed.items() if stamp >= newest - window}
        return Page(records(todo), _Cursor(newest, delivered).dump())

    def _newest_change(self) -> dt.datetime | None:
        """The time of the latest change to a template, a variant or a stock move (or a
        tier's price list)."""
        models = ["product.template", "product.product", "stock.move"]
        if self.config.price_lists:
            models += ["product.price_list", "product.price_list.line"]
        return self._newest(models)

    def _newest(self, models: list[str]) -> dt.datetime | None:
        found: list[dt.datetime] = []
        for model in models:
            for stamp in ("create_date", "write_date"):
                rows = self.rpc.model(
                    model,
                    "search_read",
                    [(stamp, "!=", None)],
                    0,
                    1,
                    [[stamp, "DESC"]],
                    [stamp],
                )
                found += [r[stamp] for r in rows]
        return max(found, default=None)

    def _changes(self, since: dt.datetime) -> dict[int, dt.datetime]:
        """The templates changed since `since`, and each tier's price list changed since
        (under its id negated: a new formula changes every product's tier price)."""
        changed = self._changed_templates(since)
        for list_id, stamp in self._changed_lists(since).items():
            changed[-list_id] = stamp
        return changed

    def _changed_lists(self, since: dt.datetime) -> dict[int, dt.datetime]:
        ids = sorted(set(self._price_lists().values()))
        if not ids:
            return {}
        stamps = ["create_date", "write_date"]
        when = _changed_since(since)
        changed: dict[int, dt.datetime] = {}
        lists = self.rpc.model(
            "product.price_list", "search_read", [("id", "in", ids), when], 0, None, None, stamps
        )
        lines = self.rpc.model(
            "product.price_list.line",
            "search_read",
            [("price_list", "in", ids), when],
            0,
            None,
            None,
            [*stamps, "price_list"],
        )
        for record, list_id in [
            *((r, r["id"]) for r in lists),
            *((r, r["price_list"]) for r in lines),
        ]:
            stamp = _stamp(record)
            changed[list_id] = max(stamp, changed.get(list_id, stamp))
        return changed

    def _price_lists(self) -> dict[str, int]:
        """Each tier's Tryton price list id, found by name once per connector."""
        if self._lists is None:
            wanted = self.config.price_lists
            found = (
                self.rpc.model(
                    "product.price_list",
                    "search_read",
                    [("name", "in", sorted(set(wanted.values())))],
                    0,
                    None,
                    None,
                    ["name"],
                )
                if wanted
                else []
            )
            ids: dict[str, list[int]] = {}
            for row in found:
                ids.setdefault(row["name"], []).append(row["id"])
            for tier, name in sorted(wanted.items()):
                if not ids.get(name):
                    raise PermanentError(f"tryton: no price list named {name!r} (tier {tier!r})")
                if len(ids[name]) > 1:  # which one a customer is on would be a guess
                    raise PermanentError(f"tryton: {len(ids[name])} price lists named {name!r}")
            self._lists = {tier: ids[name][0] for tier, name in wanted.items()}
        return self._lists

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
        tiers = self._tier_prices(product_ids)
        records = []
        for template in templates:
            coded = [variants[p] for p in template["products"] if variants[p].get("code")]
            if coded:  # a template without a code (SKU) on any variant has nothing to sell
                records.append(_record(template, coded, stock, barcodes, categories, tiers))
        return records

    def _tier_prices(self, product_ids: list[int]) -> dict[int, dict[str, str]]:
        """{product: {tier: price}}, computed by Tryton: the product's sale price read in
        the context of the tier's price list (sale_price_list), one call per tier for the
        whole page. A list with no line for a product gives it no price in that tier."""
        result: dict[int, dict[str, str]] = {p: {} for p in product_ids}
        for tier, list_id in self._price_lists().items():
            rows = self.rpc.model(
                "product.product",
                "read",
                product_ids,
                ["sale_price_uom"],
                context={"price_list": list_id, "active_test": False},
            )
            for row in rows:
                if row["sale_price_uom"] is not None:
                    result[row["id"]][tier] = _money(row["sale_price_uom"])
        return result

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

    # ----------------------------------------------------------------------- customers

    def fetch_customers(self, cursor: str | None) -> Page:
        """The trade customers changed since `cursor`: parties with a sale price list or
        a credit limit, the terms only a trade customer has. Every other party (the web
        guests create_order makes, suppliers, the company itself) stays in Tryton: a
        trade store needs none of them, and personal data not needed is not copied.

        A party delivered as a trade customer that is no longer one (archived, or its
        price list and credit limit removed) is delivered once more, without a tier or
        terms and `active: false`, so the store's account is closed. Tryton keeps no
        history of those company-dependent fields (their tables are not readable over
        RPC), so the cursor remembers which parties were delivered as trade customers."""
        text = cursor
        known: set[int] | None = None
        if cursor:
            try:
                data = json.loads(cursor)
                if "trade" in data:
                    known = {int(i) for i in data["trade"]}
                    text = json.dumps({k: v for k, v in data.items() if k != "trade"})
            except (ValueError, TypeError, AttributeError):
                raise PermanentError(f"tryton: unreadable pull cursor {cursor[:100]!r}") from None
        if cursor is None:
            known = set()  # everything is read: the trade customers among it are known
        elif known is None:
            # A cursor from before the cursor remembered them: the parties that
            # are trade customers now are the ones to watch.
            known = {p["id"] for p in self._parties([], everyone=True) if _is_trade(p)}
        page = self._pull(
            text,
            lambda: self._newest(list(_PARTY_MODELS)),
            self._changed_parties,
            lambda: self.rpc.model("party.party", "search", [], 0, None, None),
            lambda ids: self._customers(ids, known),
        )
        position = json.loads(page.cursor or "{}")
        position["trade"] = sorted(known)
        return Page(page.records, json.dumps(position))

    def _changed_parties(self, since: dt.datetime) -> dict[int, dt.datetime]:
        """The parties changed since `since` (their own fields, an address or a contact
        mechanism), each with the time of its latest change. Company-dependent values
        (price list, credit limit, payment term) are written through the party, which
        stamps it."""
        changed: dict[int, dt.datetime] = {}
        stamps = ["create_date", "write_date"]
        for model in _PARTY_MODELS:
            owner = "id" if model == "party.party" else "party"
            rows = self.rpc.model(
                model,
                "search_read",
                [_changed_since(since)],
                0,
                None,
                None,
                [*stamps, *([owner] if owner != "id" else [])],
                context={"active_test": False},
            )
            for row in rows:
                stamp = _stamp(row)
                changed[row[owner]] = max(stamp, changed.get(row[owner], stamp))
        return changed

    def _parties(self, domain: list[Any], everyone: bool = False) -> list[dict[str, Any]]:
        """The parties in `domain` with a code (the account number), with their terms;
        archived ones too when `everyone`. (The terms are company-dependent fields
        Tryton cannot search on: read, then kept.)"""
        rows = self.rpc.model(
            "party.party",
            "search_read",
            domain,
            0,
            None,
            None,
            [
                "code",
                "name",
                "active",
                "sale_price_list",
                "credit_limit_amount",
                "customer_payment_term",
                "addresses",
                "contact_mechanisms",
            ],
            context={"active_test": not everyone},
        )
        return [r for r in rows if r.get("code")]

    def _trade_parties(self, domain: list[Any]) -> list[dict[str, Any]]:
        """The active parties in `domain` that are trade customers, with their terms."""
        return [p for p in self._parties(domain) if _is_trade(p)]

    def _customers(self, party_ids: list[int], known: set[int]) -> list[dict[str, Any]]:
        """The records of the trade customers among `party_ids`, and of those in `known`
        (delivered as trade customers) that are no longer: `known` is updated to match."""
        if not party_ids:
            return []
        parties = []
        for party in self._parties([("id", "in", party_ids)], everyone=True):
            trade = bool(party["active"]) and _is_trade(party)
            if trade:
                known.add(party["id"])
            elif party["id"] in known:
                known.discard(party["id"])
                party = {**party, "sale_price_list": None, "credit_limit_amount": None}
                party.update(customer_payment_term=None, closed=True)
            else:
                continue
            parties.append(party)
        addresses = self._read(
            "party.address",
            [a for p in parties for a in p["addresses"]],
            ["party_name", "street_unstructured", "postal_code", "city", "country"],
        )
        mechanisms = self._read(
            "party.contact_mechanism",
            [m for p in parties for m in p["contact_mechanisms"]],
            ["type", "value", "name", "comment"],
        )
        countries = {
            r["id"]: r["code"] or ""
            for r in self._read(
                "country.country",
                [a["country"] for a in addresses.values() if a["country"]],
                ["code"],
            ).values()
        }
        terms = {
            r["id"]: r["name"]
            for r in self._read(
                "account.invoice.payment_term",
                [p["customer_payment_term"] for p in parties if p["customer_payment_term"]],
                ["name"],
            ).values()
        }
        tier_of = {list_id: tier for tier, list_id in reversed(self._price_lists().items())}
        records = []
        for party in parties:
            own = [mechanisms[m] for m in party["contact_mechanisms"] if m in mechanisms]
            limit = party["credit_limit_amount"]
            records.append(
                {
                    "code": party["code"],
                    "name": party["name"],
                    "company": party["name"],
                    "email": _first(own, ("email",)),
                    "phone": _first(own, _PHONES) or "",
                    "addresses": [
                        _address(addresses[a], party["name"], countries)
                        for a in party["addresses"]
                        if a in addresses
                    ],
                    "price_tier": tier_of.get(party["sale_price_list"]),
                    "credit_limit": _money(limit) if limit is not None else None,
                    "payment_terms": terms.get(party["customer_payment_term"], ""),
                    "contacts": _contacts(own),
                    # Only on a closed account: an open one's record (and its hash) stays
                    # as it was before accounts could close.
                    **({"active": False} if party.get("closed") else {}),
                }
            )
        return records

    def _read(self, model: str, ids: list[int], fields: list[str]) -> dict[int, dict[str, Any]]:
        """`fields` of the records `ids`, by id, in one call (none for no ids)."""
        if not ids:
            return {}
        rows = self.rpc.model(model, "read", sorted(set(ids)), fields)
        return {r["id"]: r for r in rows}

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
        terms: dict[str, Any] = {}
        account = self._account(order)
        if account is None:
            party, address = self._customer(order)
            invoice = shipment = address
        else:
            party, invoice, shipment, terms = account
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
            "invoice_address": invoice,
            "shipment_address": shipment,
            **terms,
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

    def _account(self, order: dict[str, Any]) -> tuple[int, int, int, dict[str, Any]] | None:
        """For an order on account, the trade customer's party, its invoice address, the
        shipment address, and the sale's terms from the party (its price list and payment
        term: a sale made through RPC gets neither from the party by itself). None for a
        web order.

        An order is on account when its customer has a price tier: a trade store sends
        the account number as `customer.code` then. Other shops send their own customer
        id as the code ("1", "2"...), which may well be some party's code in Tryton (the
        company's is "1"): taking it for an account would bill the wrong customer."""
        customer = order.get("customer") or {}
        if not customer.get("price_tier"):
            return None
        code = str(customer.get("code") or "")
        found = self._trade_parties([("code", "=", code)]) if code else []
        if not found:
            raise PermanentError(
                f"tryton: no trade account {code!r} in Tryton (a party with that code and a"
                " sale price list or credit limit): create it there, or fix the account"
                " number in the store"
            )
        party = found[0]
        addresses = self._read(
            "party.address",
            party["addresses"],
            ["invoice", "street_unstructured", "postal_code", "city", "country"],
        )
        if not addresses:
            raise PermanentError(f"tryton: trade account {code!r} has no address in Tryton")
        invoice = next((a for a in addresses if addresses[a]["invoice"]), min(addresses))
        shipping = order.get("shipping_address")
        shipment = self._account_address(code, party["id"], addresses, shipping) or invoice
        terms = {
            "price_list": party["sale_price_list"],
            "payment_term": party["customer_payment_term"],
        }
        return party["id"], invoice, shipment, {k: v for k, v in terms.items() if v}

    def _account_address(
        self,
        code: str,
        party_id: int,
        addresses: dict[int, dict[str, Any]],
        shipping: dict[str, Any] | None,
    ) -> int | None:
        """Where an order on account ships: the party's own address that `shipping` is
        (street, postcode and city alike, ignoring case and spacing; the country too when
        both have one), else a new address of the party's, made only from a complete one.
        What a store sends is what a signed-in buyer typed: a half-filled form must not
        become a delivery address of the account's. None: no shipping address sent."""
        if not shipping:
            return None

        def norm(value: Any) -> str:
            return " ".join(str(value or "").split()).casefold()

        street = norm("\n".join(x for x in (shipping.get("line1"), shipping.get("line2")) if x))
        wanted = (street, norm(shipping.get("postcode")), norm(shipping.get("city")))
        country = str(shipping.get("country") or "").strip().upper()
        # Looked up only when needed: an address of the party's without a country matches
        # whatever country the store adds (Tryton may well have no countries loaded).
        countries: dict[str, int | None] = {}

        def country_id() -> int | None:
            if country and country not in countries:
                countries[country] = self._country(country)
            return countries.get(country)

        for address_id, row in sorted(addresses.items()):
            mine = (
                norm(row.get("street_unstructured")),
                norm(row.get("postal_code")),
                norm(row.get("city")),
            )
            if mine == wanted and (
                not row.get("country") or (country and row["country"] == country_id())
            ):
                return address_id
        missing = [
            name
            for name, value in (
                ("line1", shipping.get("line1")),
                ("city", shipping.get("city")),
                ("postcode", shipping.get("postcode")),
                ("country", country),
            )
            if not str(value or "").strip()
        ]
        if missing:
            raise PermanentError(
                f"tryton: the order ships to an address trade account {code!r} does not have"
                f" and it is incomplete (no {', '.join(missing)}): a new delivery address of"
                " an account is added only when complete"
            )
        fields = {
            "party": party_id,
            "party_name": shipping.get("name") or None,
            "street_unstructured": "\n".join(
                x for x in (shipping.get("line1"), shipping.get("line2")) if x
            ),
            "postal_code": shipping.get("postcode"),
            "city": shipping.get("city"),
            "country": country_id(),
        }
        if fields["country"] is None:
            raise PermanentError(f"tryton: no country {country!r} in Tryton")
        (made,) = self.rpc.model("party.address", "create", [fields])
        return int(made)

    def _country(self, code: str) -> int | None:
        found = self.rpc.model("country.country", "search", [("code", "=", code)], 0, 1, None)
        return int(found[0]) if found else None

    def _customer(self, order: dict[str, Any]) -> tuple[int, int]:
        """The web guest's party (found by e-mail among the parties made for guests, else
        created as one) and an address: Tryton quotes a sale only with an invoice address.

        An e-mail from a store is whatever the shopper typed, unverified: matched against
        every party it would put a stranger's sale (and address) on a trade customer whose
        e-mail they know. So only parties in the guests' category are matched, and never
        one that has since become a trade customer."""
        customer = order.get("customer") or {}
        email = customer.get("email")
        shipping = order.get("shipping_address") or order.get("billing_address") or {}
        guests = self._guest_category()
        party_id: int | None = None
        if email:
            mechanisms = self.rpc.model(
                "party.contact_mechanism",
                "search_read",
                [("type", "=", "email"), ("value", "ilike", _like_literal(email))],
                0,
                None,
                None,
                ["party", "value"],
            )
            # The case of what a shopper types means nothing (Ann@X and ann@x are one
            # guest): ilike finds the case variants, the casefold comparison keeps only the
            # same address (SQLite's LIKE folds ASCII only; this also folds the rest that
            # the database returned).
            wanted = email.casefold()
            owners = sorted(
                {m["party"] for m in mechanisms if str(m["value"]).casefold() == wanted}
            )
            found = (
                self.rpc.model(
                    "party.party",
                    "search_read",
                    [("id", "in", owners), ("categories", "in", [guests])],
                    0,
                    None,
                    [["id", "ASC"]],
                    ["sale_price_list", "credit_limit_amount"],
                )
                if owners
                else []
            )
            party_id = next((p["id"] for p in found if not _is_trade(p)), None)
        if party_id is None:
            name = customer.get("name") or shipping.get("name") or email or "Web customer"
            mechanisms = [{"type": "email", "value": email}] if email else []
            party_id = self.rpc.model(
                "party.party",
                "create",
                [
                    {
                        "name": name,
                        "categories": [["add", [guests]]],
                        "contact_mechanisms": [["create", mechanisms]],
                    }
                ],
            )[0]
        return int(party_id), self._address(party_id, shipping)

    def _guest_category(self) -> int:
        """The party category of the parties create_order makes for web guests (made on
        first use; the oldest when a race made two)."""
        if self._guests is None:
            found = self.rpc.model(
                "party.category",
                "search",
                [("name", "=", GUEST_CATEGORY), ("parent", "=", None)],
                0,
                1,
                [["id", "ASC"]],
            )
            if not found:
                found = self.rpc.model("party.category", "create", [{"name": GUEST_CATEGORY}])
            self._guests = int(found[0])
        return self._guests

    def _address(self, party_id: int, shipping: dict[str, Any]) -> int:
        """The party's address equal to `shipping`, made when it has none."""
        address = {
            "party_name": shipping.get("name") or None,
            "street_unstructured": "\n".join(
                x for x in (shipping.get("line1"), shipping.get("line2")) if x
            )
            or None,
            "postal_code": shipping.get("postcode") or None,
            "city": shipping.get("city") or None,
        }
        same = [("party", "=", party_id), *((k, "=", v) for k, v in address.items())]
        known = self.rpc.model("party.address", "search", same, 0, 1, None)
        if known:
            return int(known[0])
        (address_id,) = self.rpc.model("party.address", "create", [{**address, "party": party_id}])
        return int(address_id)

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
