"""Writing Stockyard's orders into the ERP: the claim / write / heartbeat / settle loop.

The agent long-polls its connection's work (POST /v1/agent/{id}/claim), runs each item's
call (`create_order` -> the profile's [orders] write step), heartbeats while it works and
settles each item with its outcome. The write step is idempotent: `find` runs first, in
the same transaction as the writes, so an order claimed again after a crash (the lease
expired) is found, not written twice.

Failures: a database that cannot be reached, a deadlock or a lock timeout (by SQLSTATE or
the server's error number, whatever class the driver raised; OperationalError and the
like) is transient, Stockyard retries it; a statement the ERP refuses (IntegrityError,
ProgrammingError, bad data, SQLite's wordings for a profile's mistake) is permanent.
Messages never carry the URL or a password.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.exc import (
    DBAPIError,
    DisconnectionError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout

from stockyard.agent import AgentError
from stockyard.agent.client import Client, Unreachable, detail
from stockyard.agent.outbox import Unsettled
from stockyard.agent.profile import MARKER_PREFIX, Orders
from stockyard.agent.read import db_error
from stockyard.errors import encodes, storable

log = logging.getLogger("stockyard.agent")

EX_TEMPFAIL = 75
SETTLE_MAX = 50  # outcomes per settle (the protocol's limit)
MAX_CODE = 255  # the longest ERP code Stockyard's settle takes (web/api/schemas.py)
TRANSIENT_DB = (OperationalError, InterfaceError, DisconnectionError, PoolTimeout)


class Failure(Exception):
    def __init__(self, kind: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.kind = kind  # "transient" | "permanent"
        self.message = message
        self.retry_after = retry_after


# ------------------------------------------------------------------------ parameters

ADDRESS = ("name", "company", "line1", "line2", "city", "region", "postcode", "country", "phone")


def _money(value: Any, floats: bool) -> Any:
    if value is None:
        return None
    amount = Decimal(str(value))
    return float(amount) if floats else amount


def marker(order: Mapping[str, Any], settings: Mapping[str, Any]) -> str:
    """The profile's order marker prefix (none: empty) followed by the web order's number."""
    number = order.get("number") or order.get("remote_id") or ""
    return f"{settings.get(MARKER_PREFIX) or ''}{number}"


def order_params(
    order: Mapping[str, Any], key: str, settings: Mapping[str, Any], floats: bool = False
) -> dict[str, Any]:
    """The order flattened into named parameters (docs/agent-profiles.md). `floats`: money
    as float, for drivers without Decimal (SQLite)."""
    customer = order.get("customer") or {}
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    params: dict[str, Any] = {
        **settings,
        "key": key,
        "stockyard_id": order.get("id"),
        "remote_id": order.get("remote_id"),
        "number": order.get("number") or order.get("remote_id"),
        # What marks the order as Stockyard's in the ERP (profile.MARKER_PREFIX).
        "marker": marker(order, settings),
        "currency": order.get("currency"),
        "total": _money(order.get("total"), floats),
        "shipping": _money(order.get("shipping"), floats),
        "tax": _money(order.get("tax"), floats),
        "paid": _money(order.get("paid"), floats),
        "line_count": len(order.get("lines") or []),
        "customer_code": customer.get("code"),
        # An order is on account only when Stockyard says so (a price tier, which only a
        # channel's rules give: flows.orders._on_account); a web shop's own customer ids
        # ("1", "2"...) may well be some ERP account's code, and must not bill it.
        "account_code": customer.get("code") if customer.get("price_tier") else None,
        "account_id": None,
        "customer_email": customer.get("email"),
        "customer_name": customer.get("name"),
        "customer_company": customer.get("company"),
        "customer_phone": customer.get("phone"),
        "today": now.date().isoformat(),
        "now": now,
    }
    for kind in ("shipping", "billing"):
        address = order.get(f"{kind}_address") or {}
        for f in ADDRESS:
            params[f"{kind}_{f}"] = address.get(f)
    return params


def line_params(line: Mapping[str, Any], n: int, floats: bool) -> dict[str, Any]:
    price = Decimal(str(line.get("price", "0")))
    quantity = int(line.get("quantity", 0))
    return {
        "sku": line.get("sku"),
        "quantity": quantity,
        "price": _money(price, floats),
        "title": line.get("title") or "",
        "line_no": n,
        "line_total": _money(price * quantity, floats),
    }


def _bind(statement: sa.TextClause, params: Mapping[str, Any], where: str) -> dict[str, Any]:
    wanted = set(statement.compile().params)
    unknown = wanted - set(params)
    if unknown:
        label = where if where.startswith("[") else f"[orders] {where}"
        raise Failure("permanent", f"{label} uses :{', :'.join(sorted(unknown))}, "
                      "which is no order parameter nor setting")  # fmt: skip
    return {k: params[k] for k in wanted}


# SQLite reports a statement naming what does not exist, or not matching its table, as an
# OperationalError, like a locked database: these are the profile's mistakes, which no
# retry mends.
_PERMANENT_WORDING = (
    "no such table",
    "no such column",
    "no such function",
    "syntax error",
    "has no column",
    "ambiguous column name",
    "columns but",  # table t has 3 columns but 2 values were supplied
    "values for",  # 2 values for 3 columns
    "wrong number of arguments",
    "unrecognized token",
)
# What a retry mends, by SQLSTATE: serialization failure / deadlock victim (40001: SQL
# Server's 1205, MySQL's 1213), PostgreSQL's deadlock (40P01), ODBC's timeouts (HYT00,
# HYT01), connection exceptions (08xxx), PostgreSQL's shutdown / cannot connect now.
_TRANSIENT_STATES = ("40001", "40P01", "HYT00", "HYT01", "57P01", "57P02", "57P03")
# ... and by the server's error number, when the driver reports only that (pyodbc gives
# SQL Server's lock timeout 1222 as HY000 with "(1222)" in the text; pymssql and the MySQL
# drivers give the number as the first argument): SQL Server deadlock victim 1205, lock
# timeout 1222; MySQL lock wait timeout 1205, deadlock 1213.
_TRANSIENT_NUMBERS = frozenset({1205, 1222, 1213})
_STATE = re.compile(r"^[0-9A-Z]{5}$")
# pyodbc ends SQL Server's message with "(<number>) (SQLExecDirectW)": only that number is
# the error's (a duplicate key's value "(1222)" elsewhere in the text is not).
_NUMBER = re.compile(r"\((\d{3,5})\)\s*\(SQL\w+\)")


def _codes(orig: object) -> tuple[set[str], set[int]]:
    """The SQLSTATEs and server error numbers a driver's exception carries."""
    states: set[str] = set()
    numbers: set[int] = set()
    for name in ("sqlstate", "pgcode"):  # psycopg 3, psycopg2
        value = getattr(orig, name, None)
        if isinstance(value, str):
            states.add(value.upper())
    for arg in getattr(orig, "args", ())[:2]:
        if isinstance(arg, str) and _STATE.match(arg.upper()):
            states.add(arg.upper())  # pyodbc: (SQLSTATE, message)
        elif isinstance(arg, int) and not isinstance(arg, bool):
            numbers.add(arg)  # pymssql, pymysql: (number, message)
    numbers.update(int(n) for n in _NUMBER.findall(str(orig)))
    return states, numbers


def _transient_code(orig: object) -> bool:
    states, numbers = _codes(orig)
    by_state = any(s in _TRANSIENT_STATES or s.startswith("08") for s in states)
    return by_state or bool(numbers & _TRANSIENT_NUMBERS)


def _classify(exc: SQLAlchemyError) -> Failure:
    orig = getattr(exc, "orig", None)
    wording = str(orig if orig is not None else exc).lower()
    if orig is not None and _transient_code(orig):
        return Failure("transient", f"the ERP database: {db_error(exc)}", 30.0)
    if any(w in wording for w in _PERMANENT_WORDING):
        return Failure("permanent", f"the ERP refused the order: {db_error(exc)}")
    if isinstance(exc, TRANSIENT_DB) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated
    ):
        return Failure("transient", f"the ERP database: {db_error(exc)}", 30.0)
    return Failure("permanent", f"the ERP refused the order: {db_error(exc)}")


# ------------------------------------------------------------------------ write steps


class SqlWriter:
    """The SQL variant: find, write, id, lines, code in one transaction."""

    def __init__(self, engine: sa.Engine, orders: Orders, settings: Mapping[str, Any]) -> None:
        self.engine = engine
        self.orders = orders
        self.settings = dict(settings)
        self.floats = engine.dialect.name == "sqlite"

    def _first(self, conn: sa.Connection, sql: str, params: Mapping[str, Any], where: str) -> Any:
        statement = sa.text(sql)
        row = conn.execute(statement, _bind(statement, params, where)).first()
        return None if row is None else row[0]

    def _account(self, conn: sa.Connection, sql: str, params: Mapping[str, Any]) -> Any:
        found = self._first(conn, sql, params, "account")
        if found is None:
            raise Failure(
                "permanent",
                f"order {params['number']}: no account {params['account_code']!r} in the ERP"
                " ([orders] account found none): create it there, or fix the customer's"
                " account code, then retry",
            )
        return found

    def create_order(self, order: Mapping[str, Any], key: str) -> str:
        o = self.orders
        params = order_params(order, key, self.settings, self.floats)
        try:
            with self.engine.begin() as conn:
                if o.find is not None:
                    found = self._first(conn, o.find, params, "find")
                    if found is not None:
                        log.info("order %s is already in the ERP as %s", params["number"], found)
                        return str(found)
                if o.account is not None and params["account_code"] is not None:
                    params["account_id"] = self._account(conn, o.account, params)
                for n, sql in enumerate(o.write, 1):
                    statement = sa.text(sql)
                    conn.execute(statement, _bind(statement, params, f"write[{n}]"))
                if o.id is not None:
                    params["order_id"] = self._first(conn, o.id, params, "id")
                for n, line in enumerate(order.get("lines") or [], 1):
                    per_line = {**params, **line_params(line, n, self.floats)}
                    for m, sql in enumerate(o.lines, 1):
                        statement = sa.text(sql)
                        conn.execute(statement, _bind(statement, per_line, f"lines[{m}]"))
                code = self._first(conn, o.code or o.find or "", params, "code")
                if code is None:
                    # Raised inside the transaction: nothing written stays.
                    raise Failure(
                        "permanent", "the order was written but [orders] code/find found no code"
                    )
                return str(code)
        except SQLAlchemyError as exc:
            raise _classify(exc) from None


class CommandWriter:
    """The command variant: the order as JSON on stdin, the code on stdout's last line."""

    def __init__(
        self, orders: Orders, settings: Mapping[str, Any], find: SqlWriter | None = None
    ) -> None:
        assert orders.command is not None
        self.command = orders.command
        self.timeout = orders.timeout_seconds
        self.settings = dict(settings)
        self.find = find

    def create_order(self, order: Mapping[str, Any], key: str) -> str:
        if self.find is not None and self.find.orders.find is not None:
            params = order_params(order, key, self.settings, self.find.floats)
            try:
                with self.find.engine.connect() as conn:
                    found = self.find._first(conn, self.find.orders.find, params, "find")
            except SQLAlchemyError as exc:
                raise _classify(exc) from None
            if found is not None:
                return str(found)
        feed = json.dumps(
            {"order": order, "key": key, "marker": marker(order, self.settings),
             "settings": self.settings}
        )  # fmt: skip
        name = self.command[0]
        try:
            done = subprocess.run(
                self.command,
                input=feed.encode(),
                capture_output=True,
                timeout=self.timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise Failure(
                "transient", f"{name} did not finish in {self.timeout:g} s", 60.0
            ) from None
        except OSError as exc:
            raise Failure("permanent", f"cannot run {name}: {exc.strerror}") from None
        err = done.stderr.decode("utf-8", "replace").strip().splitlines()[-3:]
        said = " / ".join(err) or "no message"
        if done.returncode == EX_TEMPFAIL:
            raise Failure("transient", f"{name} failed for now (exit 75): {said}", 60.0)
        if done.returncode != 0:
            raise Failure("permanent", f"{name} failed (exit {done.returncode}): {said}")
        lines = [
            x.strip() for x in done.stdout.decode("utf-8", "replace").splitlines() if x.strip()
        ]
        if not lines:
            raise Failure("permanent", f"{name} printed no order code")
        return lines[-1]


class FulfillmentWriter:
    """create_fulfillment: the fulfilment's id in the ERP for an order written there, by
    the profile's [fulfillments] create query, else the order's ERP code. Nothing is
    written: the ERP ships the order it holds. `made` records the id (before the item is
    settled), so the agent pushes that fulfilment's state and tracking from then on."""

    def __init__(
        self,
        create: str | None,
        settings: Mapping[str, Any],
        engine: sa.Engine | None,
        made: Callable[[str], None],
    ) -> None:
        self.create = create
        self.settings = dict(settings)
        self.engine = engine
        self.made = made

    def create_fulfillment(self, order: Mapping[str, Any], key: str) -> str:
        code = order.get("source_code")
        number = order.get("number") or order.get("remote_id")
        if not isinstance(code, str) or not code:
            raise Failure("permanent", f"order {number} has no ERP code: add_order must run first")
        found: Any = code
        if self.create is not None and self.engine is not None:
            floats = self.engine.dialect.name == "sqlite"
            params = {**order_params(order, key, self.settings, floats), "source_code": code}
            statement = sa.text(self.create)
            try:
                with self.engine.connect() as conn:
                    row = conn.execute(
                        statement, _bind(statement, params, "[fulfillments] create")
                    ).first()
            except SQLAlchemyError as exc:
                raise _classify(exc) from None
            found = None if row is None else row[0]
            if found is None or not str(found).strip():
                raise Failure(
                    "permanent",
                    f"order {number} ({code}): [fulfillments] create found no fulfilment id",
                )
        remote_id = str(found).strip()
        self.made(remote_id)
        return remote_id


class Writer:
    """What runs a Work's call."""

    def __init__(
        self,
        create_order: Callable[[Mapping[str, Any], str], str] | None,
        create_fulfillment: Callable[[Mapping[str, Any], str], str] | None = None,
    ) -> None:
        self._calls = {"create_order": create_order, "create_fulfillment": create_fulfillment}

    def run(self, call: str, args: Mapping[str, Any]) -> str:
        run = self._calls.get(call)
        if run is None:
            why = {
                "create_order": " (its profile has no [orders])",
                "create_fulfillment": " (it has no [fulfillment] connection)",
            }.get(call, "")
            raise Failure("permanent", f"this agent cannot run {call}{why}")
        order, key = args.get("order"), args.get("key")
        if not isinstance(order, Mapping) or not isinstance(key, str):
            raise Failure("permanent", f"{call} needs an order and a key")
        return run(order, key)


def _unkeepable(code: str) -> str | None:
    """What makes an ERP code one Stockyard cannot take, or None. A NUL or a lone
    surrogate anywhere in a request body has Stockyard's JSON guard refuse it whole."""
    if not code:
        return "empty"
    if len(code) > MAX_CODE:
        return f"{len(code)} characters (Stockyard keeps {MAX_CODE})"
    if "\x00" in code:
        return "holding a NUL character"
    if not encodes(code):
        return "holding a lone surrogate (no UTF-8 text)"
    return None


def outcome(writer: Writer, work: Mapping[str, Any]) -> dict[str, Any]:
    """The settle outcome of one Work."""
    base = {"id": work["id"], "attempt": work["attempt"]}
    try:
        code = writer.run(str(work.get("call")), work.get("args") or {})
    except Failure as f:
        log.warning("item %s (%s) failed, %s: %s", work["id"], work.get("call"), f.kind, f.message)
        error = storable(f.message[:2000])  # the driver's message may hold a NUL
        return {**base, "outcome": f.kind, "error": error, "retry_after": f.retry_after}
    except Exception as exc:  # a bug or the unexpected: never lose the item, say what
        log.exception("item %s (%s) failed", work["id"], work.get("call"))
        return {
            **base,
            "outcome": "transient",
            "error": f"{type(exc).__name__}",
            "retry_after": 60.0,
        }
    code = code.strip()
    what = _unkeepable(code)
    if what is not None:
        # Stockyard would refuse the whole settle (422), every outcome of the claim with it.
        message = f"the write step ran but its ERP code is {what}: {code[:80]!r}"
        log.warning("item %s (%s) failed, permanent: %s", work["id"], work.get("call"), message)
        return {**base, "outcome": "permanent", "error": message, "retry_after": None}
    log.info("item %s: %s -> %s", work["id"], work.get("call"), code)
    return {**base, "outcome": "done", "result": code}


# ------------------------------------------------------------------------ the protocol

SESSION = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class SessionEnded(Exception):
    """Stockyard reaped this session (409): its items went back to the queue."""


class NotOffered(Exception):
    """Stockyard has no agent routes for this connection (404)."""


class ConnectionDisabled(Exception):
    """The operator disabled this connection (409 `connection N is disabled` to a claim or
    a heartbeat): Stockyard hands out nothing until it is enabled again. No session end:
    the session is kept, and what it already wrote is still settled."""


def disabled_answer(response: Any) -> str | None:
    """Stockyard's word that the connection is disabled (a 409 to a claim, a heartbeat or
    a push), or None for any other answer."""
    if response.status_code != 409:
        return None
    said = detail(response)
    return said if DISABLED.match(said) else None


DISABLED = re.compile(r"^connection \d+ is disabled$")


@dataclass
class Claimed:
    items: list[dict[str, Any]]
    lease_seconds: float


class OutcomeStore(Protocol):
    """Where outcomes wait until Stockyard takes them (the agent's state database)."""

    def keep_outcomes(self, session: str, outcomes: Sequence[Mapping[str, Any]]) -> None: ...
    def unsettled(self) -> list[Unsettled]: ...
    def settle_tried(self, items: Sequence[int]) -> None: ...
    def drop_outcomes(self, items: Sequence[int]) -> None: ...


class MemoryStore:
    """An OutcomeStore in memory (for a caller without a state database)."""

    def __init__(self) -> None:
        self.kept: dict[int, Unsettled] = {}

    def keep_outcomes(self, session: str, outcomes: Sequence[Mapping[str, Any]]) -> None:
        for o in outcomes:
            self.kept[o["id"]] = Unsettled(session, dict(o), 0, time.time())

    def unsettled(self) -> list[Unsettled]:
        return sorted(self.kept.values(), key=lambda u: u.kept_at)

    def settle_tried(self, items: Sequence[int]) -> None:
        for i in items:
            if i in self.kept:
                u = self.kept[i]
                self.kept[i] = Unsettled(u.session, u.outcome, u.tries + 1, u.kept_at)

    def drop_outcomes(self, items: Sequence[int]) -> None:
        for i in items:
            self.kept.pop(i, None)


class OrderCalls:
    """The claim / heartbeat / settle calls of one agent session, and the outcomes it has
    not got through yet."""

    def __init__(
        self, client: Client, store: OutcomeStore | None = None, connection: int | None = None
    ) -> None:
        self.client = client
        self.connection = connection  # None: the client's own ([stockyard] connection)
        self.session = self.new_session()
        self.store: OutcomeStore = store if store is not None else MemoryStore()
        self.settle_at = 0.0  # monotonic: when kept outcomes may be settled again

    @staticmethod
    def new_session() -> str:
        return f"s-{uuid.uuid4().hex[:16]}"

    def abandon(self, why: str) -> None:
        """Leave the session to Stockyard's reaper: its items go back to the queue after the
        lease and are claimed again under the new session (the write step's `find` keeps
        that from writing an order twice)."""
        old, self.session = self.session, self.new_session()
        log.warning("%s: leaving session %s to expire, now %s", why, old, self.session)

    def _call(
        self,
        verb: str,
        payload: dict[str, Any],
        timeout: float | None = None,
        session: str | None = None,
    ) -> Any:
        used = session or self.session
        body = {"session": used, **payload}
        response = (
            self.client.agent(verb, body, timeout)
            if self.connection is None
            else self.client.agent(verb, body, timeout, connection=self.connection)
        )
        disabled = disabled_answer(response)
        if disabled is not None:
            raise ConnectionDisabled(disabled)
        if response.status_code == 409:
            if used == self.session:
                self.session = self.new_session()
            raise SessionEnded(f"session {used} ended: {detail(response)}")
        if response.status_code == 404:
            raise NotOffered(f"{verb}: 404 {detail(response)}")
        if response.status_code == 429 or response.status_code >= 500:
            raise Unreachable(f"{verb}: Stockyard answered {response.status_code}")
        if response.status_code != 200:
            raise AgentError(
                f"{verb} refused by Stockyard ({response.status_code}): {detail(response)}"
            )
        return response.json()

    def claim(self, limit: int, wait: float) -> Claimed:
        data = self._call("claim", {"limit": limit, "wait": wait}, timeout=wait + 30)
        return Claimed(list(data.get("items", [])), float(data.get("lease_seconds", 60)))

    def heartbeat(self) -> bool:
        data = self._call("heartbeat", {})
        return bool(data.get("alive"))

    def settle(
        self, outcomes: list[dict[str, Any]], session: str | None = None
    ) -> tuple[list[int], list[int]]:
        data = self._call("settle", {"outcomes": outcomes}, session=session)
        return list(data.get("settled", [])), list(data.get("refused", []))


class Heartbeat:
    """Heartbeats every lease/3 in a thread while the items of a claim run."""

    def __init__(self, calls: OrderCalls, lease_seconds: float) -> None:
        self.calls = calls
        self.every = max(lease_seconds / 3, 0.2)
        self.stop = threading.Event()
        self.lost = False
        self.disabled: ConnectionDisabled | None = None
        self.thread = threading.Thread(target=self._beat, daemon=True, name="agent-heartbeat")

    def __enter__(self) -> Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(30)

    def _beat(self) -> None:
        while not self.stop.wait(self.every):
            try:
                self.calls.heartbeat()
            except SessionEnded:
                self.lost = True
                return
            except ConnectionDisabled as exc:
                # The lease is no longer extended: the items not started yet go back to
                # the queue, the one being written is finished and settled.
                self.disabled = exc
                return
            except Exception as exc:  # keep beating: the lease may still hold
                log.warning("heartbeat failed: %s", exc)


# A settle that gets no answer is tried again with back-off (up to SETTLE_BACKOFF s) for
# as long as Stockyard does not answer at all: when it does, it either takes the outcomes
# or says the session ended (409). One that gets an answer other than those is given up
# after GIVE_UP_AFTER s: the items come back to the queue once their session expires.
SETTLE_BACKOFF = 60.0
GIVE_UP_AFTER = 600.0


def settle_kept(calls: OrderCalls, now: float | None = None) -> int:
    """Settle the outcomes kept from before, each batch with its own session. The number
    settled. Raises Unreachable when Stockyard did not answer (they stay kept)."""
    now = time.monotonic() if now is None else now
    kept = calls.store.unsettled()
    if not kept or now < calls.settle_at:
        return 0
    by_session: dict[str, list[Unsettled]] = {}
    for u in kept:
        by_session.setdefault(u.session, []).append(u)
    count = 0
    for session, group in by_session.items():
        outcomes = [u.outcome for u in group]
        ids = [int(o["id"]) for o in outcomes]
        for start in range(0, len(outcomes), SETTLE_MAX):
            part, part_ids = outcomes[start : start + SETTLE_MAX], ids[start : start + SETTLE_MAX]
            try:
                settled, refused = calls.settle(part, session=session)
            except SessionEnded as exc:
                log.warning("%s: its outcomes are dropped, the items will be claimed again", exc)
                calls.store.drop_outcomes(part_ids)
                continue
            except (Unreachable, AgentError) as exc:
                calls.store.settle_tried(part_ids)
                tries = max(u.tries for u in group) + 1
                answered = not isinstance(exc, Unreachable) or "answered" in str(exc)
                if isinstance(exc, AgentError) or (
                    answered and time.time() - group[0].kept_at > GIVE_UP_AFTER
                ):
                    calls.store.drop_outcomes(part_ids)
                    if session == calls.session:
                        calls.abandon(f"settling items {part_ids} given up ({exc})")
                    else:
                        log.warning("settling items %s given up (%s)", part_ids, exc)
                    continue
                calls.settle_at = now + min(SETTLE_BACKOFF, 2.0 ** (tries - 1))
                raise
            for item in refused:
                log.warning("Stockyard refused the outcome of item %s (lease lost): dropped", item)
            calls.store.drop_outcomes(part_ids)
            count += len(settled)
    calls.settle_at = 0.0
    return count


def work_once(calls: OrderCalls, writer: Writer, wait: float, limit: int = 10) -> int:
    """The outcomes kept from before settled, then one claim (waiting up to `wait` s for
    work), its items run and settled. The number of items settled."""
    count = settle_kept(calls)  # Unreachable: nothing more to do until Stockyard answers
    if calls.store.unsettled():
        return count  # still backing off: claiming more would only add to them
    try:
        claimed = calls.claim(limit, wait)
    except SessionEnded as exc:
        log.info("%s; starting %s", exc, calls.session)
        return count
    except Unreachable:
        # The claim may have started items under this session although its answer was
        # lost; claiming on with it would keep them running for ever.
        calls.abandon("a claim got no answer")
        raise
    if not claimed.items:
        return count
    outcomes = []
    with Heartbeat(calls, claimed.lease_seconds) as beat:
        for work in claimed.items:
            if beat.lost or beat.disabled:
                break
            outcomes.append(outcome(writer, work))
    if beat.lost:
        log.warning("the session ended while working; its items will be claimed again")
        calls.session = calls.new_session()
        return count
    # Kept before settling: an answer lost or the agent stopped, they are settled later
    # with this session (if it has expired meanwhile, the items are claimed again).
    calls.store.keep_outcomes(calls.session, outcomes)
    try:
        count += settle_kept(calls)
    except Unreachable as exc:
        log.warning("settling: %s; the outcomes are kept and sent again", exc)
    if beat.disabled is not None:
        raise beat.disabled
    return count
