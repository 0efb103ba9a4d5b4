"""Erasing a customer on request: their personal fields (names, emails, phones, addresses,
contacts) are replaced wherever Stockyard holds them, in one transaction:

- the catalog's customer row (kept, with its code and trade terms, marked erased);
- the orders of that customer (by account code, or by one of their email addresses): the
  customer's personal fields and the addresses go, lines and totals stay;
- the payloads and errors of the client's queue items, finished or not, and the errors of
  their attempts: the known shapes (a customer, an order) are erased field by field, and
  every other occurrence of one of the values in any text is replaced by "[erased]".

Ids, codes, totals, refs, the items' order and statuses and the audit trail stay: the
queue's history still says what happened, without saying to whom. What Stockyard cannot
reach (the ERP, the channels' accounts, the logs, the notifications already sent) is
listed in docs/privacy.md.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from stockyard.catalog.models import Customer
from stockyard.catalog.store import ERASED, CatalogStore, StoredCustomer, customer_of
from stockyard.db import Cursor, Store, load_queries
from stockyard.errors import NotFound

ERASED_TEXT = "[erased]"
PAGE = 1000  # orders read per statement while looking for the customer's
# Values shorter than this are not searched for in free text: "GB" or "1" would match
# everywhere and say nothing about anyone.
_SHORTEST = 3
# The fields of a customer, a contact and an address that are personal data.
_CUSTOMER_FIELDS = ("email", "name", "company", "phone")
_CONTACT_FIELDS = ("name", "email", "phone")
_ADDRESS_FIELDS = ("name", "company", "line1", "line2", "postcode", "phone")
_CUSTOMER_KEYS = frozenset(Customer.model_fields)


@dataclass(frozen=True, slots=True)
class Erasure:
    """What an erasure changed (ids only: nothing personal)."""

    code: str
    customer_id: int | None  # None: the catalog holds no such customer, only orders
    orders: list[int]  # the orders rewritten (ids)
    items: list[int]  # the queue items rewritten (ids)
    attempts: int  # attempts' errors rewritten
    already_erased: bool  # the customer row was erased before this run
    # The channels holding an account of the customer (connection id -> their id for it):
    # Stockyard does not delete accounts; they are erased there (docs/privacy.md).
    accounts: dict[int, str]


def erased_customer(data: dict[str, Any], when: float) -> dict[str, Any]:
    """A customer dict (as models.Customer dumps it) without its personal fields, marked
    erased; its code and trade terms stay."""
    kept = {k: v for k, v in data.items() if k in ("code", "price_tier", "credit_limit")}
    kept.update({"payment_terms": data.get("payment_terms", "")})
    kept["attributes"] = {ERASED: when}
    return Customer.model_validate(kept).model_dump(mode="json")


def _is_erased(data: Any) -> bool:
    attributes = data.get("attributes") if isinstance(data, dict) else None
    return isinstance(attributes, dict) and ERASED in attributes


class Eraser(Store):
    queries = load_queries(__package__, "erasure.sql")

    def __init__(self, store: CatalogStore) -> None:
        super().__init__(store.db)
        self.store = store

    def erase(self, client_id: int, code: str, actor: str, now: float | None = None) -> Erasure:
        """Erase the customer `code` of the client, and record who did it in the audit
        trail (the code and counts only), all or nothing."""
        now = time.time() if now is None else now
        with self.db.write() as cur:
            stored = self._customer(cur, client_id, code)
            terms = _Terms(code)
            if stored is not None:
                terms.add_customer(stored.fields)
            orders = self._orders(cur, client_id, code, terms)
            if stored is None and not orders:
                raise NotFound(f"no customer {code!r} in the catalog, and no order of theirs")
            already = stored is not None and stored.erased
            # Rows already erased are left as they are (their updated_at too): erasing
            # again changes nothing but the audit.
            if stored is not None and not already:
                self.execute(
                    cur,
                    "erase_customer_row",
                    data=_json(erased_customer(stored.fields, now)),
                    now=now,
                    id=stored.id,
                    client_id=client_id,
                )
            rewritten = [i for i, d in orders.items() if not _is_erased(d.get("customer"))]
            for order_id in rewritten:
                self.execute(
                    cur,
                    "erase_order_row",
                    data=_json(_erase_order(orders[order_id], terms, now)),
                    now=now,
                    id=order_id,
                    client_id=client_id,
                )
            refs = [code, *(str(d.get("remote_id")) for d in orders.values())]
            items, attempts = self._items(cur, client_id, refs, terms, now)
            accounts: dict[int, str] = {}
            if stored is not None:
                rows = self.all(cur, "customer_accounts", id=stored.id, client_id=client_id)
                accounts = {int(r["channel_id"]): r["remote_id"] for r in rows}
            erasure = Erasure(
                code,
                None if stored is None else stored.id,
                sorted(rewritten),
                items,
                attempts,
                already,
                accounts,
            )
            detail = {
                "code": code,
                "customer": erasure.customer_id,
                "orders": len(erasure.orders),
                "items": len(erasure.items),
                "attempts": attempts,
            }
            self.execute(
                cur,
                "record_erasure",
                at=now,
                client_id=client_id,
                actor=actor,
                detail=_json(detail),
            )
        return erasure

    def _customer(self, cur: Cursor, client_id: int, code: str) -> StoredCustomer | None:
        row = self.store.one(cur, "customer_by_code", client_id=client_id, code=code)
        return None if row is None else customer_of(row)

    def _orders(
        self, cur: Cursor, client_id: int, code: str, terms: _Terms
    ) -> dict[int, dict[str, Any]]:
        """The client's orders of this customer: their account code, or one of their
        email addresses on a guest order. Their personal values join `terms`."""
        found: dict[int, dict[str, Any]] = {}
        before = 2**62
        while True:
            rows = self.all(
                cur, "client_orders_page", client_id=client_id, before=before, limit=PAGE
            )
            for row in rows:
                data = json.loads(row["data"])
                if terms.owns_order(data):
                    found[int(row["id"])] = data
            if len(rows) < PAGE:
                break
            before = int(rows[-1]["id"])
        for data in found.values():
            terms.add_order(data)
        return found

    def _items(
        self, cur: Cursor, client_id: int, refs: list[str], terms: _Terms, now: float
    ) -> tuple[list[int], int]:
        """Rewrite the client's items that hold the customer; returns their ids and how
        many attempts' errors were rewritten."""
        ids = {
            int(r["id"]) for r in self.all(cur, "items_with_ref", client_id=client_id, refs=refs)
        }
        for text in terms.searchable():
            rows = self.all(cur, "items_containing", client_id=client_id, text=text)
            ids.update(int(r["id"]) for r in rows)
        if not ids:
            return [], 0
        changed: list[int] = []
        for row in self.all(cur, "items_to_erase", client_id=client_id, ids=sorted(ids)):
            payload = json.loads(row["payload"])
            new_payload = terms.scrub(_erase_shapes(payload, terms, now))
            new_error = None if row["error"] is None else terms.scrub(row["error"])
            if new_payload != payload or new_error != row["error"]:
                self.execute(
                    cur,
                    "erase_item",
                    payload=_json(new_payload),
                    error=new_error,
                    id=row["id"],
                    client_id=client_id,
                )
                changed.append(int(row["id"]))
        attempts = 0
        for row in self.all(cur, "item_attempt_errors", ids=sorted(ids)):
            error = terms.scrub(row["error"])
            if error != row["error"]:
                self.execute(cur, "erase_attempt_error", error=error, id=row["id"])
                attempts += 1
        return changed, attempts


class _Terms:
    """The customer's personal values, gathered from every place they are found, and how
    to take them out of any JSON value or text."""

    def __init__(self, code: str) -> None:
        self.code = code
        self.emails: set[str] = set()  # case-folded
        self.values: set[str] = set()

    def _take(self, data: Any, names: Iterable[str]) -> None:
        if not isinstance(data, dict):
            return
        for name in names:
            value = data.get(name)
            if isinstance(value, str) and value.strip():
                self.values.add(value.strip())
                if name == "email":
                    self.emails.add(value.strip().casefold())

    def add_customer(self, data: Any) -> None:
        if not isinstance(data, dict):
            return
        self._take(data, _CUSTOMER_FIELDS)
        for contact in data.get("contacts") or ():
            self._take(contact, _CONTACT_FIELDS)
        for address in data.get("addresses") or ():
            self._take(address, _ADDRESS_FIELDS)

    def add_order(self, data: dict[str, Any]) -> None:
        self.add_customer(data.get("customer"))
        for name in ("shipping_address", "billing_address"):
            self._take(data.get(name), _ADDRESS_FIELDS)

    def owns_customer(self, data: Any) -> bool:
        if not isinstance(data, dict):
            return False
        email = data.get("email")
        return data.get("code") == self.code or (
            isinstance(email, str) and email.strip().casefold() in self.emails
        )

    def owns_order(self, data: Any) -> bool:
        return isinstance(data, dict) and self.owns_customer(data.get("customer"))

    def searchable(self) -> list[str]:
        """The values worth a search of the queue's texts, as JSON writes them."""
        found = {json.dumps(v, ensure_ascii=False)[1:-1] for v in self.values}
        return sorted(v for v in found if len(v) >= _SHORTEST)

    def scrub(self, value: Any) -> Any:
        """`value` with every occurrence of a personal value, in any case, replaced."""
        terms = sorted((v for v in self.values if len(v) >= _SHORTEST), key=len, reverse=True)
        if not terms:
            return value
        # Whole values only: the name "Ann" must not turn "Annual" into "[erased]ual".
        alternatives = "|".join(re.escape(t) for t in terms)
        pattern = re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)
        return _map_strings(value, lambda text: pattern.sub(ERASED_TEXT, text))


def _map_strings(value: Any, fn: Any) -> Any:
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, list):
        return [_map_strings(v, fn) for v in value]
    if isinstance(value, dict):
        return {k: _map_strings(v, fn) for k, v in value.items()}
    return value


def _erase_order(data: dict[str, Any], terms: _Terms, when: float) -> dict[str, Any]:
    erased = dict(data)
    customer = data.get("customer")
    if isinstance(customer, dict):
        erased["customer"] = erased_customer(
            customer | {"code": customer.get("code") or terms.code}, when
        )
    erased["shipping_address"] = None
    erased["billing_address"] = None
    return erased


def _erase_shapes(value: Any, terms: _Terms, when: float) -> Any:
    """The known shapes of the customer inside a payload, erased field by field: a
    customer record (sync_customer) keeps its code and is marked erased, so that running
    it stores nothing personal; an order record (sync_order) loses its customer's personal
    fields and its addresses."""
    if isinstance(value, dict):
        if terms.owns_order(value) and "lines" in value:
            if _is_erased(value.get("customer")):
                return value
            return _erase_order(value, terms, when)
        # A customer record has only a customer's keys: a product whose code happens to
        # be the account number is no customer.
        customer_like = "code" in value and set(value) <= _CUSTOMER_KEYS
        if customer_like and terms.owns_customer(value) and not _is_erased(value):
            try:
                return erased_customer(value, when)
            except ValueError:
                pass  # not a customer after all: its values are scrubbed as text
        return {k: _erase_shapes(v, terms, when) for k, v in value.items()}
    if isinstance(value, list):
        return [_erase_shapes(v, terms, when) for v in value]
    return value


def _json(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
