"""The `sapb1` connector (issue 20): SAP Business One through its Service Layer (`/b1s/v1`).
As a source it reads items (prices per price list, stock per warehouse) and customers
(business partners), and creates sales orders, de-duplicated by their NumAtCard (the
customer's reference: the web order number); as a fulfillment service it reports the
delivery notes made from those orders. docs/connectors.md lists its settings;
docs/sapb1-notes.md the Service Layer shapes it relies on, with their sources.

B1 has no variants: an item is one variant. Items that share the value of a UDF named by
`parent_field` (e.g. U_ParentCode) are one product, that value its code, with the item
whose ItemCode it is (a "template" item) if there is one; any other item is a product of
its own, its ItemCode the code.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from stockyard.connectors.base import Connector, Page, parse_settings
from stockyard.connectors.sapb1.client import SapB1Client, literal, rows_of
from stockyard.connectors.urls import secret_bearing_url
from stockyard.engine import Limits
from stockyard.errors import PermanentError

Obj = dict[str, Any]
UDF = Annotated[str, Field(pattern=r"^U_[A-Za-z0-9_]{1,50}$")]
Name = Annotated[str, Field(min_length=1, max_length=100)]
ORDER = 17  # ObjType of a sales order: a delivery line's BaseType when copied from one
FILTER_CHUNK = 20  # codes per `or` filter / requests per $batch
NUM_AT_CARD = 100  # characters B1 keeps of NumAtCard (ORDR.NumAtCard nvarchar(100))
MOST_SEEN = 5000  # rows of the overlap window remembered in a cursor (others: re-delivered)
DELIVERY_NOTE = 15  # ObjType of a delivery note
LATEST = 253402214400.0 - 400 * 86400  # our clock, as far as a datetime goes (9998)
_ITEM_FIELDS = (
    "ItemCode",
    "ItemName",
    "BarCode",
    "SalesItem",
    "Valid",
    "Frozen",
    "ItemPrices",
    "ItemWarehouseInfoCollection",
    "UpdateDate",
    "UpdateTime",
)
_TIME = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?")


def _url(value: str) -> str:
    # The Login body carries the password: never over plain http but to this machine.
    return secret_bearing_url(
        value,
        "must be https:// (the Login request carries the password; http:// only to a"
        " loopback address, for tests)",
    )


class SapB1Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # The Service Layer's address, e.g. https://b1.example.com:50000 (requests go to
    # <url>/b1s/v1/...).
    url: Annotated[str, AfterValidator(_url)]
    company_db: str = Field(min_length=1, max_length=100)
    username: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, repr=False)
    timeout: float = Field(default=30.0, gt=0, le=600)
    # Rows asked per page (Prefer: odata.maxpagesize); every page is read either way.
    page_size: int = Field(default=100, ge=1, le=1000)
    # The price list (its number) whose price is a variant's `price`, and the tiers:
    # tier name -> price list number.
    price_list: int = Field(default=1, ge=1)
    price_lists: dict[Name, Annotated[int, Field(ge=1)]] = Field(default={}, max_length=50)
    # B1 warehouse code -> the warehouse's name in Stockyard; empty: every warehouse
    # under its own code.
    warehouses: dict[Name, Name] = Field(default={}, max_length=200)
    # What counts as stock: InStock, or InStock less Committed (on open sales orders).
    stock: Literal["in_stock", "available"] = "in_stock"
    # The UDF whose value groups items into one product (None: one item, one product),
    # and the UDFs holding option values: option name -> UDF.
    parent_field: UDF | None = None
    option_fields: dict[Name, UDF] = Field(default={}, max_length=10)
    # The business partner (CardCode) web orders are booked to when they are not on an
    # account; None: such orders fail, naming this setting.
    web_customer: Name | None = None
    # The warehouse order lines draw from (None: each item's default warehouse).
    order_warehouse: Name | None = None
    # Seconds each pull reads back before its cursor: for changes committed late, and for
    # the hour B1's clock repeats when summer time ends (its stamps are local time). Rows
    # read again unchanged are not delivered again.
    overlap: float = Field(default=3600.0, ge=0, le=86400)
    # Seconds between pulls that read every row, not only those B1 stamped as changed
    # (stock moved by documents and prices edited in a price list may not stamp the
    # item: docs/sapb1-notes.md); items and customers: all of them; delivery notes and
    # orders: those of the last `fulfillment_days`. 0: never.
    full_pull_every: float = Field(default=3600.0, ge=0, le=7 * 86400)
    # Days back the first (and every full) fulfilment pull reads delivery notes and
    # closed orders from, not the whole history.
    fulfillment_days: int = Field(default=30, ge=1, le=3650)
    # Pages one pull reads of a long list at most; the next pull goes on where it stopped.
    # While it goes on, each pull also reads up to as many pages of what B1 stamped since
    # the cursor, so a change does not wait for the long read's end.
    pages_per_pull: int = Field(default=50, ge=1, le=2000)


@dataclass(frozen=True)
class _Scan:
    """A pull that goes on over several calls (a long list is read `pages_per_pull` pages
    a call): the rows stamped from `start` on (None: every row), whether that is a full
    pull, the key of the last row read (rows come in key order), and the newest stamp
    its first call saw (where the next pull's cursor will stand)."""

    start: dt.datetime | None
    full: bool
    after: str | int | None = None
    newest: dt.datetime | None = None

    def dump(self) -> Obj:
        return {
            "start": _iso(self.start) or None,
            "full": self.full,
            "after": self.after,
            "newest": _iso(self.newest) or None,
        }

    @classmethod
    def parse(cls, data: Any) -> _Scan | None:
        if data is None:
            return None
        after = data.get("after")
        if after is not None and (isinstance(after, bool) or not isinstance(after, str | int)):
            raise ValueError("after")
        return cls(_time(data.get("start")), bool(data["full"]), after, _time(data.get("newest")))


@dataclass(frozen=True)
class _Cursor:
    """Where a pull stands: changes stamped from `since` on (None: everything); what the
    rows stamped inside the overlap window looked like when delivered (key -> [stamp,
    content hash]: a row read again unchanged is left out, one changed again within the
    same second is not); when every row was last read (a full pull; our clock, only ever
    compared with itself); and a pull under way over several calls."""

    since: dt.datetime | None = None
    seen: dict[str, list[str]] = field(default_factory=dict)
    full_at: float | None = None
    scan: _Scan | None = None

    @classmethod
    def parse(cls, text: str | None) -> _Cursor:
        if not text:
            return cls()
        try:
            data = json.loads(text)
            seen = {
                str(k): [str(v[0]), str(v[1])]
                for k, v in data.get("seen", {}).items()
                if isinstance(v, list) and len(v) == 2
            }
            full_at = float(data["full_at"]) if data.get("full_at") is not None else None
            return cls(_time(data.get("since")), seen, full_at, _Scan.parse(data.get("scan")))
        except (ValueError, TypeError, KeyError, AttributeError):
            raise PermanentError(f"sapb1: unreadable pull cursor {text[:100]!r}") from None

    def dump(self) -> str:
        return json.dumps(self.data())

    def data(self) -> Obj:
        return {
            "since": _iso(self.since) or None,
            "seen": dict(sorted(self.seen.items())),
            "full_at": self.full_at,
            "scan": self.scan.dump() if self.scan else None,
        }


def _time(value: Any) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


def _hash(row: Obj) -> str:
    text = json.dumps(row, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def stamp(row: Mapping[str, Any]) -> dt.datetime | None:
    """A row's UpdateDate + UpdateTime as one time (the B1 server's local time). The date
    comes as "2026-03-02" or "2026-03-02T00:00:00"; the time as "14:05:09", "14:05" or
    digits "140509" (OITM.UpdateTS)."""
    date = str(row.get("UpdateDate") or "")[:10]
    try:
        day = dt.date.fromisoformat(date)
    except ValueError:
        return None
    text = str(row.get("UpdateTime") or "")
    m = _TIME.search(text)
    if m:
        h, mi, s = int(m[1]), int(m[2]), int(m[3] or 0)
    elif text.isascii() and text.isdigit() and len(text) <= 6:
        padded = text.zfill(6)
        h, mi, s = int(padded[:2]), int(padded[2:4]), int(padded[4:])
    else:
        h = mi = s = 0
    try:
        return dt.datetime.combine(day, dt.time(h, mi, s))
    except ValueError:
        return dt.datetime.combine(day, dt.time())


def since_filter(start: dt.datetime) -> str:
    """Rows stamped at `start` or later, as a $filter on UpdateDate and UpdateTime."""
    day, at = literal(start.date().isoformat()), literal(start.strftime("%H:%M:%S"))
    return f"(UpdateDate gt {day} or (UpdateDate eq {day} and UpdateTime ge {at}))"


def _yes(value: Any, default: bool) -> bool:
    if value is None:
        return default
    return str(value).lower() in ("tyes", "y", "yes", "true", "1")


def _money(value: Any) -> str:
    """A B1 amount (a JSON number) as the catalog writes it."""
    try:
        amount = Decimal(str(value if value is not None else 0))
    except InvalidOperation:
        raise PermanentError(f"sapb1: {value!r} is not an amount") from None
    if not amount.is_finite() or amount < 0:
        raise PermanentError(f"sapb1: {value!r} is not an amount a catalog can hold")
    # The catalog keeps 4 decimals; B1 up to 6 (General Settings -> Display -> Prices).
    amount = amount.quantize(Decimal("0.0001"), ROUND_HALF_UP)
    cents = amount.quantize(Decimal("0.01"))
    return str(cents if cents == amount else amount.normalize())


def _quantity(value: Any) -> int:
    try:
        return int(Decimal(str(value or 0)))  # truncated: half a unit cannot be sold
    except (InvalidOperation, ValueError):
        return 0


def _common_title(names: list[str]) -> str:
    """A grouped product's title: what its items' names share ("Tee - S", "Tee - M" ->
    "Tee"), else the first name."""
    shared = names[0]
    for name in names[1:]:
        size = 0
        while size < min(len(shared), len(name)) and shared[size] == name[size]:
            size += 1
        shared = shared[:size]
    prefix = shared.rstrip(" -/,(\u2013")  # \u2013: an en dash, as in "Tee \u2013 S"
    return prefix if len(prefix) >= 3 else names[0]


class SapB1Connector(Connector):
    roles = frozenset({"source", "fulfillment"})
    secret_settings = frozenset({"password"})
    # Each worker's connector holds a Service Layer session (a license seat): a few at once.
    default_limits = Limits(max_running=4)

    def __init__(self, settings: Mapping[str, Any]) -> None:
        super().__init__(settings)
        self.config = parse_settings(SapB1Settings, settings, "sapb1")
        self.api = SapB1Client(
            self.config.url,
            self.config.company_db,
            self.config.username,
            self.config.password,
            timeout=self.config.timeout,
            secrets=self._secret_values,
        )
        self._checked = False
        self.clock: Callable[[], float] = time.time

    def close(self) -> None:
        self.api.close()

    # ------------------------------------------------------------------- the pulls

    def _pull(
        self,
        cursor: str | None,
        read: Callable[[str | None, int], tuple[list[Obj], bool]],
        key_field: str,
        floor: dt.datetime | None = None,
    ) -> tuple[list[Obj], _Cursor]:
        """The rows changed since `cursor` (all of them, from `floor` on, on a first or a
        full pull) and the cursor after them. `read(where, pages)` reads up to `pages`
        pages of rows matching `where`, in `key_field` order, and says if there are more:
        then the pull stops there and the next call goes on after the last key. Rows are
        re-read `overlap` seconds back; those delivered before with the same content are
        left out (but on a full pull, which delivers every row it reads).

        While a pull goes on over several calls (a full one, or one whose overlap window
        holds more than `pages_per_pull` pages), each call also reads the rows stamped
        from the cursor on (no overlap: a few, where a change of the last poll is), so a
        change on a row the pull has passed arrives with the next call, not at its end."""
        at = _Cursor.parse(cursor)
        now = self.clock()
        window = dt.timedelta(seconds=self.config.overlap)
        scan, first = at.scan, at.scan is None
        if scan is None:
            every = self.config.full_pull_every
            full = at.since is None or (
                every > 0 and (at.full_at is None or now - at.full_at >= every)
            )
            since = at.since - window if at.since is not None else None
            scan = _Scan(floor if full else since, full)
        parts = [since_filter(scan.start)] if scan.start else []
        if scan.after is not None:
            value = scan.after if isinstance(scan.after, int) else literal(scan.after)
            parts.append(f"{key_field} gt {value}")
        rows, more = read(" and ".join(parts) or None, self.config.pages_per_pull)
        seen = dict(at.seen)
        fresh: dict[str, Obj] = {}  # by key: a row read twice in one call is one row

        def take(rows: list[Obj], every_row: bool) -> None:
            for row in rows:
                key, content = str(row.get(key_field)), _hash(row)
                if every_row or seen.get(key, ["", ""])[1] != content:
                    fresh[key] = row
                seen[key] = [_iso(stamp(row)), content]

        take(rows, scan.full)
        newest = scan.newest
        if first:  # later changes are stamped after what the first call saw
            known = [s for s in (stamp(r) for r in rows) if s is not None]
            newest = max([*known, *([at.since] if at.since else [])], default=None)
        if more and at.since is not None:
            # The pull is not done: what B1 stamped since the cursor now, as well. It
            # moves nothing (the pull under way will read those rows again, or its
            # successor will), so reading only the first pages of a flood loses none.
            take(read(since_filter(at.since), self.config.pages_per_pull)[0], False)
        if more and rows:
            last = rows[-1].get(key_field)
            after = last if isinstance(last, int) and not isinstance(last, bool) else str(last)
            going = _Scan(scan.start, scan.full, after, newest)
            keep = _recent(seen, newest, window)
            return list(fresh.values()), _Cursor(at.since, keep, at.full_at, going)
        full_at = now if scan.full else at.full_at
        return list(fresh.values()), _Cursor(newest, _recent(seen, newest, window), full_at)

    def _floor(self) -> dt.datetime:
        """Where the first fulfilment pull starts: `fulfillment_days` before now (B1's
        stamps are its local time; ours is near enough for days)."""
        now = dt.datetime.fromtimestamp(min(self.clock(), LATEST))
        return now.replace(microsecond=0) - dt.timedelta(days=self.config.fulfillment_days)

    # ---------------------------------------------------------------------- products

    def fetch_products(self, cursor: str | None) -> Page:
        self._check()
        select = ",".join(self._item_fields())

        def read(where: str | None, pages: int) -> tuple[list[Obj], bool]:
            params = {"$select": select, "$orderby": "ItemCode"}
            if where:
                params["$filter"] = where
            return self.api.read_pages("Items", "read items", params, self.config.page_size, pages)

        rows, after = self._pull(cursor, read, "ItemCode")
        return Page(self._products(rows, select), after.dump())

    def _item_fields(self) -> list[str]:
        extra = [self.config.parent_field, *self.config.option_fields.values()]
        return list(dict.fromkeys([*_ITEM_FIELDS, *(f for f in extra if f)]))

    def _items(self, select: str, where: str | None) -> list[Obj]:
        params = {"$select": select, "$orderby": "ItemCode"}
        if where:
            params["$filter"] = where
        return self.api.read_all("Items", "read items", params, self.config.page_size)

    def _products(self, changed: list[Obj], select: str) -> list[Obj]:
        """The products `changed` items belong to, each with all its items: a grouped
        product's other items are read too (one request per FILTER_CHUNK codes). An item
        whose ItemCode is its group's code (B1's usual "template" item of a product) is
        that group's, one of its variants if it is a sales item: never a product of its
        own under the same code, which would replace the group in the catalog."""
        parent = self.config.parent_field
        if not parent:
            return [self._record(str(r["ItemCode"]), [r], True) for r in _by_code(changed)]
        groups: dict[str, dict[str, Obj]] = {}
        alone: dict[str, Obj] = {}
        for row in changed:
            code = str(row.get(parent) or "").strip()
            if code:
                groups.setdefault(code, {})[str(row["ItemCode"])] = row
            else:
                alone[str(row["ItemCode"])] = row
        # Each group's items and template, and whether an item alone is a template.
        single = dict(alone)
        wanted = sorted({*groups, *alone})
        for n in range(0, len(wanted), FILTER_CHUNK):
            chunk = wanted[n : n + FILTER_CHUNK]
            where = " or ".join(
                f"{field} eq {literal(c)}" for c in chunk for field in (parent, "ItemCode")
            )
            for row in self._items(select, where):
                code = str(row.get(parent) or "").strip()
                if code:
                    groups.setdefault(code, {}).setdefault(str(row["ItemCode"]), row)
                else:
                    single.setdefault(str(row["ItemCode"]), row)
        for code, row in single.items():
            if code in groups:
                groups[code].setdefault(code, row)
        records = []
        for code in sorted({*groups, *alone}):
            if code not in groups:
                records.append(self._record(code, [alone[code]], True))
                continue
            rows = list(groups[code].values())
            template = groups[code].get(code)
            if template is not None and not _yes(template.get("SalesItem"), True):
                # a template only: withdrawn with its group when nothing else is left
                rows = [r for r in rows if r is not template] or [template]
            records.append(self._record(code, rows, False))
        return records

    def _record(self, code: str, rows: list[Obj], alone: bool) -> Obj:
        """One product: its items as variants (active ones; all, withdrawn, when none is)."""
        rows = sorted(rows, key=lambda r: str(r["ItemCode"]))
        live = [r for r in rows if self._active(r)]
        shown = live or rows
        options = [
            name
            for name, udf in self.config.option_fields.items()
            if any(r.get(udf) not in (None, "") for r in shown)
        ]
        names = [str(r.get("ItemName") or r["ItemCode"]) for r in shown]
        return {
            "code": code,
            "title": names[0] if alone else _common_title(names),
            "active": bool(live),
            **({"options": options} if options else {}),
            "variants": [self._variant(r, options) for r in shown],
        }

    @staticmethod
    def _active(row: Obj) -> bool:
        return (
            _yes(row.get("SalesItem"), True)
            and _yes(row.get("Valid"), True)
            and not _yes(row.get("Frozen"), False)
        )

    def _variant(self, row: Obj, options: list[str]) -> Obj:
        prices = {
            p.get("PriceList"): p.get("Price")
            for p in row.get("ItemPrices") or []
            if isinstance(p, dict)
        }
        variant: Obj = {
            "sku": str(row["ItemCode"]),
            "price": _money(prices.get(self.config.price_list)),
            "stock": self._stock(row),
        }
        if row.get("BarCode"):
            variant["barcode"] = str(row["BarCode"])
        tiers = {
            tier: _money(prices[number])
            for tier, number in self.config.price_lists.items()
            if prices.get(number) is not None
        }
        if tiers:
            variant["prices"] = tiers
        chosen = {
            name: str(row[self.config.option_fields[name]])
            for name in options
            if row.get(self.config.option_fields[name]) not in (None, "")
        }
        if chosen:
            variant["options"] = chosen
        return variant

    def _stock(self, row: Obj) -> dict[str, int]:
        wanted = self.config.warehouses
        stock: dict[str, int] = {}
        for line in row.get("ItemWarehouseInfoCollection") or []:
            code = str(line.get("WarehouseCode") or "")
            if not code or (wanted and code not in wanted):
                continue
            quantity = Decimal(str(line.get("InStock") or 0))
            if self.config.stock == "available":
                quantity -= Decimal(str(line.get("Committed") or 0))
            name = wanted.get(code, code)
            stock[name] = stock.get(name, 0) + _quantity(quantity)
        return stock

    def _check(self) -> None:
        """The price lists and warehouses the settings name exist (once a connector)."""
        if self._checked:
            return
        numbers = {self.config.price_list, *self.config.price_lists.values()}
        lists = self.api.read_all(
            "PriceLists", "read price lists", {"$select": "PriceListNo"}, self.config.page_size
        )
        missing = sorted(numbers - {r.get("PriceListNo") for r in lists})
        if missing:
            raise PermanentError(f"sapb1: no price list number {missing} in B1 (price_lists)")
        if self.config.warehouses:
            found = self.api.read_all(
                "Warehouses",
                "read warehouses",
                {"$select": "WarehouseCode"},
                self.config.page_size,
            )
            unknown = sorted(set(self.config.warehouses) - {r.get("WarehouseCode") for r in found})
            if unknown:
                raise PermanentError(f"sapb1: no warehouse {unknown} in B1 (warehouses)")
        self._checked = True

    # --------------------------------------------------------------------- customers

    def fetch_customers(self, cursor: str | None) -> Page:
        """Business partners of type customer, but the web customer: their account
        number (CardCode), name, e-mail, phone, credit limit, and the price tier whose
        price list is theirs. A partner made inactive or frozen is delivered closed."""
        select = (
            "CardCode,CardName,EmailAddress,Phone1,PriceListNum,CreditLimit,Valid,Frozen,"
            "UpdateDate,UpdateTime"
        )

        def read(where: str | None, pages: int) -> tuple[list[Obj], bool]:
            where = "CardType eq 'cCustomer'" + (f" and {where}" if where else "")
            params = {"$select": select, "$filter": where, "$orderby": "CardCode"}
            return self.api.read_pages(
                "BusinessPartners", "read customers", params, self.config.page_size, pages
            )

        rows, after = self._pull(cursor, read, "CardCode")
        tier_of = {number: tier for tier, number in reversed(self.config.price_lists.items())}
        records = []
        for row in rows:
            if not row.get("CardCode") or row["CardCode"] == self.config.web_customer:
                continue
            limit = row.get("CreditLimit")
            active = _yes(row.get("Valid"), True) and not _yes(row.get("Frozen"), False)
            records.append(
                {
                    "code": str(row["CardCode"]),
                    "name": str(row.get("CardName") or ""),
                    "company": str(row.get("CardName") or ""),
                    "email": row.get("EmailAddress") or None,
                    "phone": str(row.get("Phone1") or ""),
                    "price_tier": tier_of.get(_int(row.get("PriceListNum"))),
                    "credit_limit": _money(limit) if limit else None,
                    **({} if active else {"active": False}),
                }
            )
        return Page(records, after.dump())

    # ------------------------------------------------------------------------ orders

    @staticmethod
    def _number(order: Obj) -> str:
        number = str(order.get("number") or order.get("remote_id") or "")
        if not number:
            raise PermanentError("sapb1: the order has no number")
        return number[:NUM_AT_CARD]

    @staticmethod
    def _tag(order: Obj) -> str:
        return f"Stockyard order {order.get('id')} ({order.get('remote_id') or '-'})"

    def _find_order(self, order: Obj) -> Obj | None:
        """The sales order made for `order` before: NumAtCard is the web order number.
        One whose Comments name another Stockyard order (another shop's order of the same
        number) is not it."""
        params = {
            "$select": "DocEntry,DocNum,Comments",
            "$filter": f"NumAtCard eq {literal(self._number(order))}",
            "$orderby": "DocEntry",
        }
        rows = self.api.read_all("Orders", "find the order", params, self.config.page_size)
        tag = self._tag(order)
        for row in rows:
            comments = str(row.get("Comments") or "")
            if "Stockyard order " in comments and tag not in comments:
                continue
            return row
        return None

    def create_order(self, order: Obj, key: str) -> str:
        """A sales order; its DocNum is the code. Looked up by NumAtCard first, so a repeat
        (a retry after a lost answer) finds the order instead of making a second."""
        found = self._find_order(order)
        if found is None:
            found = self.api.call("POST", "Orders", "create the order", body=self._document(order))
        if not isinstance(found, dict) or found.get("DocNum") is None:
            raise PermanentError("sapb1: create the order: the answer has no DocNum")
        return str(found["DocNum"])

    def _document(self, order: Obj) -> Obj:
        customer = order.get("customer") or {}
        if customer.get("price_tier") and customer.get("code"):
            card = str(customer["code"])  # an order on account: that customer's own
        elif self.config.web_customer:
            card = self.config.web_customer
        else:
            raise PermanentError(
                "sapb1: the order is not on an account and the connection has no"
                " web_customer (the CardCode web orders are booked to)"
            )
        today = dt.date.today().isoformat()
        lines = []
        for line in order.get("lines") or []:
            doc_line: Obj = {
                "ItemCode": str(line["sku"]),
                "Quantity": float(line["quantity"]),
                "UnitPrice": float(Decimal(str(line["price"]))),
            }
            if self.config.order_warehouse:
                doc_line["WarehouseCode"] = self.config.order_warehouse
            lines.append(doc_line)
        if not lines:
            raise PermanentError("sapb1: the order has no lines")
        document: Obj = {
            "CardCode": card,
            "NumAtCard": self._number(order),
            "DocDate": today,
            "DocDueDate": today,
            "Comments": self._tag(order),
            "DocumentLines": lines,
        }
        if order.get("currency"):
            document["DocCurrency"] = str(order["currency"])
        ship = order.get("shipping_address") or {}
        text = "\n".join(
            str(ship[k])
            for k in ("name", "company", "line1", "line2", "postcode", "city", "country")
            if ship.get(k)
        )
        if text:
            document["Address2"] = text[:254]
        return document

    # ------------------------------------------------------------------ fulfillment

    def create_fulfillment(self, order: Obj, key: str) -> str:
        """B1's delivery notes are made from the sales order in B1 (Copy To): this links
        to the order, whose DocEntry the deliveries name as their base."""
        found = self._find_order(order)
        if found is None:
            raise PermanentError(
                f"sapb1: no sales order with NumAtCard {self._number(order)!r}: add_order"
                " must make it first"
            )
        return str(found["DocEntry"])

    def fetch_fulfillments(self, cursor: str | None) -> Page:
        """The orders whose delivery notes changed since `cursor`, and Stockyard's orders
        B1 cancelled or closed since, each with its state: complete once B1 closed the
        order (all delivered, or the rest will not be), cancelled if the order was, open
        while partly delivered; the tracking number of its latest delivery. The first pull
        (and each full one) reads those of the last `fulfillment_days` only."""
        at = _parts(cursor)
        floor = self._floor()

        def read_notes(where: str | None, pages: int) -> tuple[list[Obj], bool]:
            params = {"$select": _NOTE_FIELDS, "$orderby": "DocEntry"}
            if where:
                params["$filter"] = where
            return self.api.read_pages(
                "DeliveryNotes", "read delivery notes", params, self.config.page_size, pages
            )

        def read_orders(where: str | None, pages: int) -> tuple[list[Obj], bool]:
            ended = "(Cancelled eq 'tYES' or DocumentStatus eq 'bost_Close')"
            params = {
                "$select": "DocEntry,NumAtCard,Comments,Cancelled,DocumentStatus,"
                "UpdateDate,UpdateTime",
                "$filter": ended + (f" and {where}" if where else ""),
                "$orderby": "DocEntry",
            }
            return self.api.read_pages(
                "Orders", "read closed orders", params, self.config.page_size, pages
            )

        notes, notes_at = self._pull(at.get("notes"), read_notes, "DocEntry", floor)
        ended, orders_at = self._pull(at.get("orders"), read_orders, "DocEntry", floor)
        tracking = _tracking(notes)
        # Orders closed or cancelled in B1, Stockyard's only (their Comments name it).
        known = {
            int(row["DocEntry"]): row
            for row in ended
            if isinstance(row.get("DocEntry"), int)
            and "Stockyard order " in str(row.get("Comments") or "")
        }
        unknown = sorted(set(tracking) - set(known))
        states = dict(self._orders_state(unknown))
        states.update(known)
        # A closed order's deliveries made before this pull: their tracking is kept.
        closed = [
            row
            for e, row in known.items()
            if e not in tracking and not _yes(row.get("Cancelled"), False)
        ]
        tracking.update(self._earlier_tracking(closed))
        records = []
        for entry in sorted(states):
            row = states[entry]
            state = "open"
            if _yes(row.get("Cancelled"), False):
                state = "cancelled"
            elif row.get("DocumentStatus") == "bost_Close":
                state = "complete"
            number = tracking.get(entry, "")
            records.append(
                {
                    "remote_id": str(entry),
                    "state": state,
                    "tracking": {"number": number} if number else None,
                }
            )
        after = {"notes": notes_at.data(), "orders": orders_at.data()}
        return Page(records, json.dumps(after))

    def _earlier_tracking(self, orders: list[Obj]) -> dict[int, str]:
        """The tracking of the latest delivery of each of `orders`: Copy To gives a
        delivery note its order's NumAtCard, and its lines name the order (BaseEntry)."""
        by_number: dict[str, set[int]] = {}
        for row in orders:
            if row.get("NumAtCard"):
                by_number.setdefault(str(row["NumAtCard"]), set()).add(int(row["DocEntry"]))
        numbers = sorted(by_number)
        found: dict[int, str] = {}
        for n in range(0, len(numbers), FILTER_CHUNK):
            chunk = numbers[n : n + FILTER_CHUNK]
            params = {
                "$select": _NOTE_FIELDS,
                "$filter": " or ".join(f"NumAtCard eq {literal(c)}" for c in chunk),
                "$orderby": "DocEntry",
            }
            notes = self.api.read_all(
                "DeliveryNotes", "read delivery notes", params, self.config.page_size
            )
            wanted = set().union(*(by_number[c] for c in chunk))
            found.update({e: t for e, t in _tracking(notes).items() if e in wanted and t})
        return found

    def _orders_state(self, entries: list[int]) -> Iterable[tuple[int, Obj]]:
        """Each order's DocumentStatus and Cancelled, FILTER_CHUNK orders a $batch
        request. An order a delivery note names is never gone in B1 (it cannot delete a
        document copied on): a 404 is an error, not an order to leave out."""
        for n in range(0, len(entries), FILTER_CHUNK):
            chunk = entries[n : n + FILTER_CHUNK]
            paths = [f"Orders({e})?$select=DocEntry,DocumentStatus,Cancelled" for e in chunk]
            for entry, (status, body) in zip(
                chunk, self.api.batch_get(paths, "read orders"), strict=True
            ):
                if status >= 400 or not isinstance(body, dict):
                    said = ""
                    if isinstance(body, dict):
                        said = f": {self.api.quote(_said(body))}"
                    raise PermanentError(
                        f"sapb1: read order {entry}: HTTP {status} in $batch{said}"
                    )
                yield entry, body


_NOTE_FIELDS = "DocEntry,TrackingNumber,Cancelled,UpdateDate,UpdateTime,DocumentLines"


def _parts(cursor: str | None) -> dict[str, str | None]:
    """A fulfilment cursor: the delivery notes' pull and the closed orders' pull."""
    if not cursor:
        return {}
    try:
        data = json.loads(cursor)
    except ValueError:
        raise PermanentError(f"sapb1: unreadable pull cursor {cursor[:100]!r}") from None
    if not isinstance(data, dict):
        raise PermanentError(f"sapb1: unreadable pull cursor {cursor[:100]!r}")
    if "notes" not in data:  # a cursor from before the closed orders were read
        return {"notes": cursor}
    return {k: json.dumps(data[k]) if data.get(k) else None for k in ("notes", "orders")}


def _tracking(notes: list[Obj]) -> dict[int, str]:
    """Order (DocEntry) -> the tracking number of its latest delivery ("" if none)."""
    tracking: dict[int, str] = {}
    for note in sorted(notes, key=lambda n: (stamp(n) or dt.datetime.min, n["DocEntry"])):
        if _yes(note.get("Cancelled"), False):
            continue
        for entry in _base_orders(note.get("DocumentLines")):
            tracking[entry] = str(note.get("TrackingNumber") or "") or tracking.get(entry, "")
    return tracking


def _said(body: Obj) -> str:
    error = body.get("error")
    message = error.get("message") if isinstance(error, dict) else None
    if isinstance(message, dict):
        message = message.get("value")
    return str(message or "")


def _base_orders(lines: Any) -> list[int]:
    """The sales orders (DocEntry) a delivery's lines were copied from."""
    found: list[int] = []
    for line in rows_of({"value": lines or []}, "read delivery lines"):
        entry = line.get("BaseEntry")
        if line.get("BaseType") == ORDER and isinstance(entry, int) and entry not in found:
            found.append(entry)
    return found


def _by_code(rows: list[Obj]) -> list[Obj]:
    return sorted({str(r["ItemCode"]): r for r in rows}.values(), key=lambda r: str(r["ItemCode"]))


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else -1


def _iso(value: dt.datetime | None) -> str:
    return value.isoformat() if value else ""


def _recent(
    seen: dict[str, list[str]], newest: dt.datetime | None, window: dt.timedelta
) -> dict[str, list[str]]:
    """The rows stamped inside the overlap window before `newest`: the only ones a pull
    reads again. At most MOST_SEEN, the newest (one forgotten is delivered again)."""
    if newest is None:
        return {}
    edge = _iso(newest - window)
    kept = sorted(((v[0], k) for k, v in seen.items() if v[0] and v[0] >= edge), reverse=True)[
        :MOST_SEEN
    ]
    return {k: seen[k] for _, k in kept}
