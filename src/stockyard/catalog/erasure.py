"""Erasing a customer on request: their personal fields (names, emails, phones, addresses,
contacts) are replaced wherever Stockyard holds them, in one transaction:

- the catalog's customer row (kept, with its code and trade terms, marked erased);
- the orders of that customer (by account code, or by one of their email addresses): the
  customer's personal fields and the addresses go, lines and totals stay;
- the client's queue items that provably are theirs, finished or not: by ref (their code,
  emails, their orders' ids and numbers) on a customer, order or notification item, or by
  a payload that names them (their customer or order record, their catalog ids). Those
  items' payloads, errors and attempts' errors lose the personal values. Nobody else's
  item is touched, even one that names the same company or building.
- a code that is an email address (a guest, coded by email) is replaced by a hash of it
  (store.erased_code) in rows, orders, refs, idempotency keys and the audit.

Ids, account codes, totals, the items' order and statuses and the audit trail stay: the
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

from stockyard.catalog.models import Customer, parse
from stockyard.catalog.store import (
    ERASED,
    CatalogStore,
    StoredCustomer,
    customer_of,
    erased_code,
    erased_customer,
    is_email_code,
    is_erased_record,
)
from stockyard.db import Cursor, Store, load_queries
from stockyard.errors import NotFound

__all__ = ["ERASED_TEXT", "Eraser", "Erasure", "erased_customer"]

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
# The instructions whose refs name a customer by its account number: a customer's own items.
# An order's ref "42" is an order number, not account 42.
_ACCOUNT_REF_INSTRUCTIONS = frozenset({"sync_customer", "sync_channel_customer"})
# The instructions whose refs name a customer or an order (their code, email, an order's
# id or number): an item of one of these carrying the customer's ref is theirs. A product's
# ref that happens to equal an account number or an order id proves nothing.
_REF_INSTRUCTIONS = frozenset(
    {
        "sync_customer",
        "sync_channel_customer",
        "sync_order",
        "add_order",
        "fulfill_order",
        "update_order_instruction",
        "sync_fulfillment",
        "sync_channel_fulfillments",
        "send_email",
        "send_webhook",
    }
)


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


def _email_of(code: str) -> str:
    """The email address a code names: a shop's guest is coded `guest:<email>` or by the
    email itself."""
    return code.strip().casefold().removeprefix("guest:")


def _marked_at(customer: Any, when: float) -> float:
    """When an erased record was erased (kept, so that erasing again changes nothing),
    or `when` for a record not erased yet. Only a blank record's mark counts."""
    if is_erased_record(customer):
        return float(customer["attributes"][ERASED])
    return when


class Eraser(Store):
    queries = load_queries(__package__, "erasure.sql")

    def __init__(self, store: CatalogStore) -> None:
        super().__init__(store.db)
        self.store = store

    def erase(self, client_id: int, code: str, actor: str, now: float | None = None) -> Erasure:
        """Erase the customer `code` of the client, and record who did it in the audit
        trail (the code, hashed if it is an email, and counts only), all or nothing."""
        now = time.time() if now is None else now
        with self.db.write() as cur:
            stored = self._customer(cur, client_id, code)
            terms = _Terms(client_id, code, self._account_connections(cur, client_id))
            if stored is not None:
                terms.known_codes.add(stored.code)
                terms.add_customer(stored.fields, own=True)
            orders = self._orders(cur, client_id, terms)
            if stored is None and not orders:
                raise NotFound(f"no customer {code!r} in the catalog, and no order of theirs")
            # Erased already only when the row is blank: a mark on a row that still holds
            # personal data (a record that arrived marked) is no erasure.
            already = stored is not None and stored.erased
            # Rows already erased are left as they are (their updated_at too): erasing
            # again changes nothing but the audit.
            if stored is not None and not already:
                new_code = terms.code_of(stored.code)
                self.execute(
                    cur,
                    "erase_customer_row",
                    code=new_code,
                    folded=new_code.casefold(),
                    data=_json(erased_customer(stored.fields | {"code": new_code}, now)),
                    now=now,
                    id=stored.id,
                    client_id=client_id,
                )
            rewritten: list[int] = []
            for order_id, (_, data) in orders.items():
                erased = _erase_order(data, terms, now)
                if erased == data:
                    continue  # erased before: left as it is
                rewritten.append(order_id)
                self.execute(
                    cur,
                    "erase_order_row",
                    data=_json(erased),
                    now=now,
                    id=order_id,
                    client_id=client_id,
                )
            order_refs: dict[str, set[int]] = {}
            for channel_id, data in orders.values():
                for key in ("remote_id", "number"):
                    if isinstance(data.get(key), str) and data[key]:
                        order_refs.setdefault(data[key], set()).add(channel_id)
            owner = _Owner(terms, None if stored is None else stored.id, set(orders), order_refs)
            items, attempts = self._items(cur, client_id, owner, now)
            accounts: dict[int, str] = {}
            if stored is not None:
                rows = self.all(cur, "customer_accounts", id=stored.id, client_id=client_id)
                accounts = {int(r["channel_id"]): r["remote_id"] for r in rows}
            erasure = Erasure(
                terms.code_of(code if stored is None else stored.code),
                None if stored is None else stored.id,
                sorted(rewritten),
                items,
                attempts,
                already,
                accounts,
            )
            detail = {
                "code": erasure.code,
                "customer": erasure.customer_id,
                "orders": len(erasure.orders),
                "items": len(erasure.items),
                "attempts": attempts,
            }
            self._audit(cur, client_id, actor, "customer.erase", detail, now)
        return erasure

    def unerase(self, client_id: int, code: str, actor: str, now: float | None = None) -> int:
        """Lift the erased mark of the client's customer `code`, so that the source's next
        record of them is stored whole (the customer came back and asked to). Nothing
        erased comes back: the row stays blank until then. Returns the row's id."""
        now = time.time() if now is None else now
        with self.db.write() as cur:
            stored = self._customer(cur, client_id, code)
            if stored is None or not stored.erased:
                raise NotFound(f"no erased customer {code!r} in the catalog")
            data = dict(stored.fields)
            data["attributes"] = {
                k: v for k, v in (data.get("attributes") or {}).items() if k != ERASED
            }
            # An email code renamed by the erasure gets the code the source sends again.
            data["code"] = code
            self.execute(
                cur,
                "unerase_customer_row",
                code=data["code"],
                folded=data["code"].casefold(),
                data=_json(data),
                now=now,
                id=stored.id,
                client_id=client_id,
            )
            detail = {"code": stored.code, "customer": stored.id}
            self._audit(cur, client_id, actor, "customer.unerase", detail, now)
        return stored.id

    def _audit(
        self, cur: Cursor, client_id: int, actor: str, action: str, detail: Any, now: float
    ) -> None:
        self.execute(
            cur,
            "record_erasure",
            at=now,
            client_id=client_id,
            actor=actor,
            action=action,
            detail=_json(detail),
        )

    def _account_connections(self, cur: Cursor, client_id: int) -> set[int]:
        """The client's connections whose customer codes are the ERP's account numbers:
        the sources, and the channels whose rules take customers (Stockyard made their
        accounts, by the ERP's code). Another shop's customer 42 is somebody else."""
        # Late import: the rules are the flows' (which import the catalog).
        from stockyard.flows.rules import ChannelRules

        found: set[int] = set()
        for row in self.all(cur, "client_connections_settings", client_id=client_id):
            if row["kind"] == "source":
                found.add(int(row["id"]))
                continue
            settings = json.loads(row["settings"] or "{}")
            try:
                rules = parse(ChannelRules, settings.get("rules") or {}, "channel rules")
            except ValueError:
                continue  # rules it cannot read take no customers (its items say why)
            if row["kind"] == "channel" and rules.takes_customers:
                found.add(int(row["id"]))
        return found

    def _customer(self, cur: Cursor, client_id: int, code: str) -> StoredCustomer | None:
        """The customer of that code, or for an email code the row its erasure renamed."""
        codes = [code, erased_code(client_id, code)] if is_email_code(code) else [code]
        for each in codes:
            row = self.store.one(cur, "customer_by_code", client_id=client_id, code=each)
            if row is not None:
                return customer_of(row)
        return None

    def _orders(
        self, cur: Cursor, client_id: int, terms: _Terms
    ) -> dict[int, tuple[int, dict[str, Any]]]:
        """The client's orders of this customer (id -> channel, data): their account code
        on an order on account or from a channel that takes customers, or their own
        email address on a guest's order. Their personal values join `terms`."""
        found: dict[int, tuple[int, dict[str, Any]]] = {}
        before = 2**62
        while True:
            rows = self.all(
                cur, "client_orders_page", client_id=client_id, before=before, limit=PAGE
            )
            for row in rows:
                data = json.loads(row["data"])
                # A stored order's price tier was set by its channel's rules (flows.orders).
                if terms.owns_order(data, int(row["channel_id"]), trust_tier=True):
                    found[int(row["id"])] = (int(row["channel_id"]), data)
            if len(rows) < PAGE:
                break
            before = int(rows[-1]["id"])
        for _, data in found.values():
            terms.add_order(data)
        return found

    def _items(
        self, cur: Cursor, client_id: int, owner: _Owner, now: float
    ) -> tuple[list[int], int]:
        """Rewrite the client's items that are provably the customer's; returns their
        ids and how many attempts' errors were rewritten."""
        terms = owner.terms
        folded = sorted({r.casefold() for r in owner.refs()})
        ids = {
            int(r["id"])
            for r in self.all(cur, "items_with_ref", client_id=client_id, folded=folded)
            if owner.ref_names(r["ref"], r["instruction"], r["connection_id"])
        }
        # Candidates by payload text (as the queue writes JSON), kept only when their
        # parsed payload names the customer, their orders or their catalog ids.
        candidates: set[int] = set()
        for text in owner.payload_texts():
            rows = self.all(cur, "items_with_payload_text", client_id=client_id, text=text)
            candidates.update(int(r["id"]) for r in rows)
        candidates -= ids
        if candidates:
            for row in self.all(cur, "items_to_erase", client_id=client_id, ids=sorted(candidates)):
                if owner.named_in(json.loads(row["payload"]), row["connection_id"]):
                    ids.add(int(row["id"]))
        if not ids:
            return [], 0
        changed: list[int] = []
        for row in self.all(cur, "items_to_erase", client_id=client_id, ids=sorted(ids)):
            payload = json.loads(row["payload"])
            shapes = _erase_shapes(payload, terms, now, row["connection_id"])
            new_payload = terms.scrub(shapes)
            new_error = None if row["error"] is None else terms.scrub(row["error"])
            old_refs = json.loads(row["refs"])
            new_refs = [terms.code_of(r) if isinstance(r, str) else r for r in old_refs]
            keys = (row["idempotency_key"], row["coalesce_key"])
            new_keys = tuple(None if k is None else terms.rekey(k) for k in keys)
            if (new_payload, new_error, new_refs, new_keys) != (
                payload,
                row["error"],
                old_refs,
                keys,
            ):
                self.execute(
                    cur,
                    "erase_item",
                    payload=_json(new_payload),
                    error=new_error,
                    refs=_json(new_refs),
                    key=new_keys[0],
                    coalesce=new_keys[1],
                    id=row["id"],
                    client_id=client_id,
                )
                changed.append(int(row["id"]))
            for old, new in zip(old_refs, new_refs, strict=True):
                if old != new:
                    self.execute(
                        cur,
                        "rename_item_ref",
                        ref=new,
                        folded=new.casefold(),
                        old=old,
                        id=row["id"],
                        client_id=client_id,
                    )
        attempts = 0
        for row in self.all(cur, "item_attempt_errors", ids=sorted(ids)):
            error = terms.scrub(row["error"])
            if error != row["error"]:
                self.execute(cur, "erase_attempt_error", error=error, id=row["id"])
                attempts += 1
        return changed, attempts


@dataclass
class _Owner:
    """What proves an item is the customer's: their terms, their catalog ids, their
    orders' ids and numbers."""

    terms: _Terms
    customer_id: int | None
    order_ids: set[int]
    order_refs: dict[str, set[int]]  # an order's id or number -> the channels it is on

    def refs(self) -> set[str]:
        return self.terms.account_codes() | self.terms.email_refs() | set(self.order_refs)

    def ref_names(self, ref: str, instruction: str, connection_id: int | None) -> bool:
        """Whether an item's ref names this customer: their account number on one of
        their customer items; an email code of theirs (any case) on a customer, order or
        notification item; an order's id or number on that order's channel only."""
        if instruction in _ACCOUNT_REF_INSTRUCTIONS and ref in self.terms.account_codes():
            return True
        if instruction not in _REF_INSTRUCTIONS:
            return False
        if ref.casefold() in self.terms.email_refs():
            return True
        return connection_id in self.order_refs.get(ref, set())

    def payload_texts(self) -> list[str]:
        """What to look for in payloads, as the queue writes JSON (compact, not ASCII
        escaped): a quote or backslash in a value is searched escaped, as it is stored."""
        texts = {json.dumps(v, ensure_ascii=False)[1:-1] for v in self.refs() if v}
        texts.update(f'"order_id":{i}' for i in self.order_ids)
        if self.customer_id is not None:
            texts.add(f'"customer_id":{self.customer_id}')
        return sorted(t for t in texts if len(t) >= _SHORTEST)

    def named_in(self, value: Any, connection_id: int | None) -> bool:
        """Whether a payload (of an item of that connection) holds the customer's record,
        one of their orders, or their customer or order id (by its key). An order that
        is somebody else's is not looked into: its customer's code is the channel's."""
        if isinstance(value, list):
            return any(self.named_in(v, connection_id) for v in value)
        if not isinstance(value, dict):
            return False
        if "lines" in value:
            return self.terms.owns_order(value, connection_id)
        if _customer_like(value) and self.terms.owns_customer(
            value, connection_id in self.terms.account_connections
        ):
            return True
        if self.customer_id is not None and value.get("customer_id") == self.customer_id:
            return True
        if value.get("order_id") in self.order_ids:
            return True
        return any(self.named_in(v, connection_id) for v in value.values())


class _Terms:
    """The customer's personal values, gathered from every place they are found, and how
    to take them out of any JSON value or text."""

    def __init__(self, client_id: int, code: str, account_connections: set[int]) -> None:
        self.client_id = client_id
        self.code = code
        self.account_connections = account_connections  # whose codes are accounts
        self.known_codes: set[str] = {code}  # the code given, the row's
        # Case-folded: every email of theirs or their contacts' (replaced in their items'
        # texts and keys), and the customer's own (what proves a record is theirs: a
        # contact's address, a shared accounts mailbox, may be a colleague's too).
        self.emails: set[str] = set()
        self.own_emails: set[str] = set()
        self.values: set[str] = set()
        if is_email_code(code):
            self.emails.add(_email_of(code))
            self.own_emails.add(_email_of(code))
            self.values.add(code)

    def _take(self, data: Any, names: Iterable[str], own: bool = False) -> None:
        if not isinstance(data, dict):
            return
        for name in names:
            value = data.get(name)
            if isinstance(value, str) and value.strip():
                self.values.add(value.strip())
                if name == "email":
                    self.emails.add(value.strip().casefold())
                    if own:
                        self.own_emails.add(value.strip().casefold())

    def add_customer(self, data: Any, own: bool = False) -> None:
        """Take the personal values of a record of theirs; `own`: the catalog's row,
        whose email is the customer's own (an order's may be a shared mailbox)."""
        if not isinstance(data, dict):
            return
        self._take(data, _CUSTOMER_FIELDS, own=own)
        for contact in data.get("contacts") or ():
            self._take(contact, _CONTACT_FIELDS)
        for address in data.get("addresses") or ():
            self._take(address, _ADDRESS_FIELDS)

    def add_order(self, data: dict[str, Any]) -> None:
        self.add_customer(data.get("customer"))
        for name in ("shipping_address", "billing_address"):
            self._take(data.get(name), _ADDRESS_FIELDS)

    def account_codes(self) -> set[str]:
        """Their account numbers (the codes that are no email address)."""
        return {c for c in self.known_codes if not is_email_code(c)}

    def email_refs(self) -> set[str]:
        """Case-folded: the codes that name them by their own email (the email as a code,
        `guest:<email>`, and the hashes their erasure gives those), and the bare email
        when their own code is one (a guest): an account's email may be a mailbox
        another account shares, which proves nothing."""
        codes = {f"guest:{e}" for e in self.own_emails}
        if is_email_code(self.code):
            codes.update(self.own_emails)
        codes.update(c.casefold() for c in self.known_codes if is_email_code(c))
        codes.update(erased_code(self.client_id, c) for c in list(codes))
        return codes | {c.casefold() for c in self.known_codes if c.startswith("erased-")}

    def code_of(self, code: str) -> str:
        """The code an erased record keeps: an account number stays; a code that is an
        email address of theirs (or `guest:` one) becomes its hash. Another person's
        email code, on an item of theirs, is not theirs to hash."""
        if code.startswith("erased-") or not is_email_code(code):
            return code
        if _email_of(code) in self.emails:
            return erased_code(self.client_id, code)
        return code

    def rekey(self, key: str) -> str:
        """An idempotency key with each of the customer's email addresses in it replaced
        by its hash: the key stays as unique as it was."""
        for email in sorted(self.emails, key=len, reverse=True):
            pattern = re.compile(re.escape(email), re.IGNORECASE)
            key = pattern.sub(erased_code(self.client_id, email), key)
        return key

    def owns_customer(self, data: Any, codes_are_accounts: bool) -> bool:
        """Whether a customer record is theirs: by their account number where codes
        are accounts (`codes_are_accounts`); by their own email only on a record that
        carries no account code (none, an email, `guest:<email>`): a mailbox shared by
        two accounts belongs to neither's records."""
        if not isinstance(data, dict):
            return False
        code = data.get("code")
        code = code.strip() if isinstance(code, str) else ""
        if code.startswith("erased-"):
            return code.casefold() in self.email_refs()
        if code and not is_email_code(code):
            return codes_are_accounts and code in self.known_codes
        email = _email_of(code) if code else data.get("email")
        return isinstance(email, str) and email.strip().casefold() in self.own_emails

    def owns_order(self, data: Any, channel_id: int | None, trust_tier: bool = False) -> bool:
        """Whether an order (reported by that channel) is theirs: an account number names
        them on an order on account (a stored order's price tier: `trust_tier`; the
        channel's rules set it) or from a channel that takes customers; otherwise only
        their own email does."""
        if not isinstance(data, dict):
            return False
        customer = data.get("customer")
        if not isinstance(customer, dict):
            return False
        on_account = channel_id in self.account_connections or (
            trust_tier and bool(customer.get("price_tier"))
        )
        return self.owns_customer(customer, on_account)

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


def _customer_like(value: dict[str, Any]) -> bool:
    # A customer record has only a customer's keys: a product whose code happens to be
    # the account number is no customer.
    return "code" in value and set(value) <= _CUSTOMER_KEYS


def _erase_order(data: dict[str, Any], terms: _Terms, when: float) -> dict[str, Any]:
    """The order without its customer's personal fields and addresses; an order erased
    before comes back equal (its erasure's time kept)."""
    erased = dict(data)
    customer = data.get("customer")
    if isinstance(customer, dict):
        code = customer.get("code") or terms.code
        at = _marked_at(customer, when)
        erased["customer"] = erased_customer(customer | {"code": terms.code_of(code)}, at)
    erased["shipping_address"] = None
    erased["billing_address"] = None
    return erased


def _erase_shapes(value: Any, terms: _Terms, when: float, connection_id: int | None) -> Any:
    """The known shapes of the customer inside a payload (of an item of that connection),
    erased field by field: a customer record (sync_customer) keeps its code and is marked
    erased, so that running it stores nothing personal; an order record (sync_order) loses
    its customer's personal fields and its addresses. Somebody else's order is left as it
    is (its customer's code is not an account's). A record erased before comes back
    equal; one that only carries the mark is erased like any."""
    if isinstance(value, dict):
        if "lines" in value:
            if terms.owns_order(value, connection_id):
                return _erase_order(value, terms, when)
            return value
        codes_are_accounts = connection_id in terms.account_connections
        if _customer_like(value) and terms.owns_customer(value, codes_are_accounts):
            try:
                code = terms.code_of(str(value["code"]))
                return erased_customer(value | {"code": code}, _marked_at(value, when))
            except ValueError:
                pass  # not a customer after all: its values are scrubbed as text
        return {k: _erase_shapes(v, terms, when, connection_id) for k, v in value.items()}
    if isinstance(value, list):
        return [_erase_shapes(v, terms, when, connection_id) for v in value]
    return value


def _json(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
