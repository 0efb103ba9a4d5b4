"""Rows -> Stockyard records. A products row is one VARIANT (Stockyard's column names:
product, title, sku, price, option_<Name>, ...); rows with the same `product` make one
Product, with the tier prices and stock per warehouse of its SKUs attached. A customers
row is one Customer. Validation is stockyard.catalog.models', so a record the agent
accepts is one Stockyard accepts.

Column names are matched ignoring case (PostgreSQL folds unquoted aliases to lower case),
except what follows `option_`: it is the option's name as shoppers see it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import BaseModel

from stockyard.agent import AgentError
from stockyard.catalog.models import Customer, FulfillmentUpdate, Product, parse
from stockyard.errors import InvalidInput

Row = Mapping[str, Any]

PRODUCT_COLUMNS = frozenset(
    {"product", "title", "description", "sku", "barcode", "price", "weight", "active",
     "vendor", "type", "quantity"}
)  # fmt: skip
PRICE_COLUMNS = frozenset({"sku", "tier", "price"})
STOCK_COLUMNS = frozenset({"sku", "warehouse", "quantity"})
ADDRESS_FIELDS = ("name", "company", "line1", "line2", "city", "region", "postcode", "country",
                  "phone")  # fmt: skip
CUSTOMER_COLUMNS = frozenset(
    {"code", "name", "company", "email", "phone", "price_tier", "credit_limit",
     "payment_terms", "active"} | {f"address_{f}" for f in ADDRESS_FIELDS}
)  # fmt: skip
FULFILLMENT_COLUMNS = frozenset({"remote_id", "state", "carrier", "number", "url"})
REQUIRED = {
    "products": {"sku", "title", "price"},
    "prices": {"sku", "tier", "price"},
    "stock": {"sku", "warehouse", "quantity"},
    "customers": {"code"},
    "fulfillments": {"remote_id", "state"},
}
KNOWN = {
    "products": PRODUCT_COLUMNS,
    "prices": PRICE_COLUMNS,
    "stock": STOCK_COLUMNS,
    "customers": CUSTOMER_COLUMNS,
    "fulfillments": FULFILLMENT_COLUMNS,
}


def normalise_columns(section: str, columns: Iterable[str], cursor: str | None) -> dict[str, str]:
    """column as returned -> Stockyard's name; AgentError for an unknown or missing one."""
    known = KNOWN[section]
    mapped: dict[str, str] = {}
    for column in columns:
        lower = column.lower()
        if cursor is not None and lower == cursor.lower():
            mapped[column] = "changed"
        elif section == "products" and lower.startswith("option_") and len(column) > 7:
            mapped[column] = "option_" + column[7:]
        elif lower in known:
            mapped[column] = lower
        else:
            raise AgentError(
                f"[{section}] returns column {column!r}, which is not one of Stockyard's:"
                f" {', '.join(sorted(known))}"
                + (", option_<Name>" if section == "products" else "")
                + (f" (or the cursor column {cursor!r})" if cursor else "")
            )
    missing = REQUIRED[section] - set(mapped.values())
    if missing:
        raise AgentError(f"[{section}] must return the column(s) {', '.join(sorted(missing))}")
    if cursor is not None and "changed" not in mapped.values():
        raise AgentError(f"[{section}] cursor = {cursor!r}, but the query returns no such column")
    return mapped


# ------------------------------------------------------------------------------- values


def text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace").strip()
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def money(value: Any) -> Decimal | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise InvalidInput(f"{value!r} is not an amount") from None
    if not amount.is_finite():
        raise InvalidInput(f"{value!r} is not an amount")
    # Floats (SQLite's REAL, SQL Server's float) carry binary noise: 4 places, as Stockyard,
    # written without an exponent (10, not 1E+1).
    amount = amount.quantize(Decimal("0.0001")).normalize()
    return amount.quantize(Decimal(1)) if amount.as_tuple().exponent > 0 else amount  # type: ignore[operator]


def quantity(value: Any) -> int | None:
    amount = money(value)
    return None if amount is None else int(amount)


TRUE = {"1", "true", "t", "yes", "y", "active"}
FALSE = {"0", "false", "f", "no", "n", "inactive", ""}


def flag(value: Any, default: bool = True) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    word = text(value).lower()
    if word in TRUE:
        return True
    if word in FALSE:
        return False
    raise InvalidInput(f"{value!r} is not a yes/no value")


# ------------------------------------------------------------------------------ records


@dataclass
class Problem:
    topic: str
    key: str
    message: str


@dataclass
class Assembled:
    products: list[Product] = field(default_factory=list)
    customers: list[Customer] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def _variant(row: Row, prices: Mapping[str, Any], stock: Mapping[str, Any]) -> dict[str, Any]:
    sku = text(row.get("sku"))
    variant: dict[str, Any] = {"sku": sku, "price": money(row.get("price"))}
    if text(row.get("barcode")):
        variant["barcode"] = text(row.get("barcode"))
    if row.get("weight") is not None:
        variant["weight"] = money(row.get("weight"))
    if row.get("quantity") is not None:
        variant["quantity"] = quantity(row.get("quantity"))
    options = {k[7:]: text(v) for k, v in row.items() if k.startswith("option_") and text(v)}
    if options:
        variant["options"] = options
    if sku in prices:
        variant["prices"] = prices[sku]
    if sku in stock:
        variant["stock"] = stock[sku]
    return variant


def products(
    rows: Iterable[Row], price_rows: Iterable[Row], stock_rows: Iterable[Row]
) -> tuple[list[Product], list[Problem]]:
    """Products from variant rows (already renamed to Stockyard's columns), in the order
    their first row came."""
    problems: list[Problem] = []
    prices: dict[str, dict[str, Decimal | None]] = {}
    for r in price_rows:
        try:
            prices.setdefault(text(r.get("sku")), {})[text(r.get("tier"))] = money(r.get("price"))
        except InvalidInput as exc:
            problems.append(Problem("products", text(r.get("sku")), f"price: {exc}"))
    stock: dict[str, dict[str, int | None]] = {}
    for r in stock_rows:
        try:
            where = text(r.get("warehouse"))
            stock.setdefault(text(r.get("sku")), {})[where] = quantity(r.get("quantity"))
        except InvalidInput as exc:
            problems.append(Problem("products", text(r.get("sku")), f"stock: {exc}"))
    grouped: dict[str, list[Row]] = {}
    for row in rows:
        key = text(row.get("product")) or text(row.get("sku"))
        grouped.setdefault(key, []).append(row)
    out = []
    for key, group in grouped.items():
        try:
            out.append(_product(key, group, prices, stock))
        except InvalidInput as exc:
            problems.append(Problem("products", key, str(exc)))
    return out, problems


def _product(
    key: str, group: list[Row], prices: Mapping[str, Any], stock: Mapping[str, Any]
) -> Product:
    first = group[0]
    options: list[str] = []
    for row in group:
        for k, v in row.items():
            if k.startswith("option_") and text(v) and k[7:] not in options:
                options.append(k[7:])
    data: dict[str, Any] = {
        "code": text(first.get("product")),
        "title": text(first.get("title")),
        "variants": [_variant(r, prices, stock) for r in group],
        "active": flag(first.get("active")),
    }
    for name in ("description", "vendor", "type"):
        if text(first.get(name)):
            data[name] = text(first.get(name))
    if options:
        data["options"] = options
    return parse(Product, data, f"product {key}")


def customers(rows: Iterable[Row]) -> tuple[list[Customer], list[Problem]]:
    out, problems = [], []
    for row in rows:
        code = text(row.get("code"))
        try:
            out.append(_customer(row))
        except InvalidInput as exc:
            problems.append(Problem("customers", code, str(exc)))
    return out, problems


def _customer(row: Row) -> Customer:
    data: dict[str, Any] = {"code": text(row.get("code")), "active": flag(row.get("active"))}
    for name in ("name", "company", "phone", "payment_terms"):
        if text(row.get(name)):
            data[name] = text(row.get(name))
    if text(row.get("email")):
        data["email"] = text(row.get("email"))
    if text(row.get("price_tier")):
        data["price_tier"] = text(row.get("price_tier"))
    if row.get("credit_limit") is not None:
        data["credit_limit"] = money(row.get("credit_limit"))
    address = {f: text(row.get(f"address_{f}")) for f in ADDRESS_FIELDS}
    if any(address.values()):
        data["addresses"] = [{k: v for k, v in address.items() if v}]
    return parse(Customer, data, f"customer {data['code']}")


def fulfillments(rows: Iterable[Row]) -> tuple[list[FulfillmentUpdate], list[Problem]]:
    """One FulfillmentUpdate per remote_id (the last row of an id wins: a query joining
    several dispatch notes lists the latest last)."""
    found: dict[str, FulfillmentUpdate] = {}
    problems = []
    for row in rows:
        remote_id = text(row.get("remote_id"))
        data: dict[str, Any] = {"remote_id": remote_id, "state": text(row.get("state")).lower()}
        tracking = {k: text(row.get(k)) for k in ("carrier", "number", "url")}
        if any(tracking.values()):
            data["tracking"] = tracking
        try:
            found[remote_id] = parse(FulfillmentUpdate, data, f"fulfillment {remote_id}")
        except InvalidInput as exc:
            problems.append(Problem("fulfillments", remote_id, str(exc)))
    return list(found.values()), problems


def opened(remote_id: str) -> FulfillmentUpdate:
    """A fulfilment as Stockyard holds it once the agent made it: open, no tracking."""
    return FulfillmentUpdate(remote_id=remote_id, state="open")


def digest(record: BaseModel) -> str:
    """The content hash a record is compared by: its JSON, keys sorted."""
    body = json.dumps(record.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


# ------------------------------------------------------------------------------ cursors


def dump_cursor(value: Any, seen: Iterable[str] = ()) -> str:
    """A cursor value as stored between polls, its type kept (a rowversion is bytes), with
    the digests of the rows already read at exactly that value (`seen`): the queries
    compare with `>=`, so those come back and are not news."""
    data: dict[str, Any]
    if isinstance(value, bytes):
        data = {"bytes": value.hex()}
    elif isinstance(value, dt.datetime):
        data = {"datetime": value.isoformat()}
    elif isinstance(value, dt.date):
        data = {"date": value.isoformat()}
    elif isinstance(value, Decimal):
        data = {"decimal": str(value)}
    elif isinstance(value, bool) or not isinstance(value, int | float | str):
        raise AgentError(f"cannot keep a cursor value of type {type(value).__name__}")
    else:
        data = {"value": value}
    seen = sorted(set(seen))
    if seen:
        data["seen"] = seen
    return json.dumps(data)


def load_seen(stored: str | None) -> set[str]:
    """The digests of the rows read at exactly the stored cursor value."""
    return set(json.loads(stored).get("seen", [])) if stored is not None else set()


def row_digest(section: str, row: Row) -> str:
    """A short digest of one row as a query returned it (its cursor value included)."""
    body = json.dumps([section, sorted(row.items())], default=str, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()[:24]


def load_cursor(stored: str | None) -> Any:
    if stored is None:
        return None
    data = json.loads(stored)
    if "bytes" in data:
        return bytes.fromhex(data["bytes"])
    if "datetime" in data:
        return dt.datetime.fromisoformat(data["datetime"])
    if "date" in data:
        return dt.date.fromisoformat(data["date"])
    if "decimal" in data:
        return Decimal(data["decimal"])
    return data["value"]


def newest(values: Iterable[Any], current: Any) -> Any:
    best = current
    for v in values:
        if v is not None and (best is None or v > best):
            best = v
    return best
