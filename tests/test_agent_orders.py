"""Writing orders into the ERP: the profile's write step in one transaction, `find` first
so a re-run writes once; the command variant (a small Python script as the command);
failures classified transient / permanent; and the claim / heartbeat / settle calls of
the protocol (docs/remote-workers.md) against a stand-in that checks every signature."""

from __future__ import annotations

import json
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from stockyard.agent.client import Client
from stockyard.agent.orders import (
    CommandWriter,
    Failure,
    OrderCalls,
    SqlWriter,
    Writer,
    outcome,
    work_once,
)
from stockyard.agent.profile import Orders, load_profile
from stockyard.signing import verify
from tests.support.agent_env import SECRET, make_erp, write_setup
from tests.support.app_servers import serve_app

ORDER: dict[str, Any] = {
    "id": 41,
    "remote_id": "W-1001",
    "number": "1001",
    "currency": "ZAR",
    "customer": {"code": "ACME01", "email": "buyer@acme.example"},
    "lines": [
        {"sku": "TEE-S", "quantity": 2, "price": "10.00"},
        {"sku": "MUG", "quantity": 1, "price": "6.50"},
    ],
    "total": "26.50",
}


@pytest.fixture
def erp(tmp_path: Path) -> Iterator[sa.Engine]:
    engine = make_erp(f"sqlite:///{tmp_path}/erp.db")
    yield engine
    engine.dispose()


def sql_writer(tmp_path: Path, engine: sa.Engine) -> SqlWriter:
    write_setup(tmp_path, "sqlite:///x", "http://127.0.0.1:9", 1)
    profile = load_profile("tiny.toml", tmp_path)
    assert profile.orders is not None
    return SqlWriter(engine, profile.orders, profile.settings)


def erp_orders(engine: sa.Engine) -> tuple[list[Any], list[Any]]:
    with engine.connect() as conn:
        heads = conn.execute(
            sa.text("SELECT OrderNum, ExtOrderNum, Account, Total FROM InvNum")
        ).all()
        lines = conn.execute(
            sa.text("SELECT iInvoiceID, LineNo, Code, Qty, Price FROM InvLines")
        ).all()
    return [tuple(r) for r in heads], [tuple(r) for r in lines]


def test_the_write_step_writes_header_and_lines_once(tmp_path: Path, erp: sa.Engine) -> None:
    writer = sql_writer(tmp_path, erp)
    assert writer.create_order(ORDER, "item:41") == "SO41"
    assert writer.create_order(ORDER, "item:41") == "SO41"  # re-run: found, not written
    heads, lines = erp_orders(erp)
    assert heads == [("SO41", "1001", "ACME01", 26.5)]
    assert lines == [(1, 1, "TEE-S", 2, 10), (1, 2, "MUG", 1, 6.5)]


def test_a_failing_statement_leaves_nothing_and_is_permanent(
    tmp_path: Path, erp: sa.Engine
) -> None:
    writer = sql_writer(tmp_path, erp)
    broken = writer.orders.model_copy(update={"lines": ["INSERT INTO Nope VALUES (:sku)"]})
    writer.orders = broken
    with pytest.raises(Failure) as caught:
        writer.create_order(ORDER, "k")
    assert caught.value.kind == "permanent" and "no such table: Nope" in caught.value.message
    assert erp_orders(erp) == ([], [])  # the header went with the failed line
    # An ERP constraint refusing the order: permanent too.
    writer.orders = broken.model_copy(
        update={
            "lines": [],
            "write": [*broken.write, *broken.write],
            "find": None,
            "code": "SELECT 1",
        }
    )
    with pytest.raises(Failure) as caught:
        writer.create_order(ORDER, "k")
    assert caught.value.kind == "permanent" and "IntegrityError" in caught.value.message


def test_a_locked_or_unreachable_database_is_transient(tmp_path: Path, erp: sa.Engine) -> None:
    locker = sqlite3.connect(tmp_path / "erp.db", isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    impatient = sa.create_engine(f"sqlite:///{tmp_path}/erp.db", connect_args={"timeout": 0.05})
    writer = sql_writer(tmp_path, impatient)
    with pytest.raises(Failure) as caught:
        writer.create_order(ORDER, "k")
    assert caught.value.kind == "transient" and "database is locked" in caught.value.message
    assert caught.value.retry_after
    locker.execute("ROLLBACK")
    assert writer.create_order(ORDER, "k") == "SO41"  # the retry, once the ERP is back
    locker.close()
    impatient.dispose()


def test_an_unknown_parameter_is_a_permanent_failure_naming_it(
    tmp_path: Path, erp: sa.Engine
) -> None:
    writer = sql_writer(tmp_path, erp)
    writer.orders = writer.orders.model_copy(update={"find": "SELECT 1 WHERE :nummer IS NULL"})
    with pytest.raises(Failure, match=r"find uses :nummer, which is no order parameter"):
        writer.create_order(ORDER, "k")


# ------------------------------------------------------------------------------ command

SCRIPT = """
import json, pathlib, sys
feed = json.load(sys.stdin)
out = pathlib.Path(feed["settings"]["out"])
exit_code = int(feed["settings"]["exit"])
if exit_code:
    print("the ERP said no", file=sys.stderr)
    sys.exit(exit_code)
out.write_text(json.dumps(feed))
print("importing...")
print("SO-" + feed["order"]["number"])
"""


def command_writer(tmp_path: Path, exit_code: int) -> CommandWriter:
    script = tmp_path / "import_order.py"
    script.write_text(SCRIPT)
    orders = Orders(command=[sys.executable, str(script)], timeout_seconds=60)
    return CommandWriter(orders, {"out": str(tmp_path / "fed.json"), "exit": exit_code})


def test_the_command_gets_the_order_as_json_and_prints_the_code(tmp_path: Path) -> None:
    assert command_writer(tmp_path, 0).create_order(ORDER, "item:41") == "SO-1001"
    fed = json.loads((tmp_path / "fed.json").read_text())
    assert fed["order"] == ORDER and fed["key"] == "item:41"
    assert fed["marker"] == "1001"  # the profile declares no order_marker_prefix


def test_the_order_marker_is_the_profiles_prefix_and_the_number(tmp_path: Path) -> None:
    from stockyard.agent.orders import order_params
    from stockyard.agent.profile import load_profile, settings

    evolution = settings(load_profile("sage200-evolution"), {}, "t")
    assert order_params(ORDER, "k", evolution)["marker"] == "WEB-1001"
    mine = settings(load_profile("syspro"), {"order_marker_prefix": "SHOP_1%"}, "t")
    assert order_params(ORDER, "k", mine)["marker"] == "SHOP_1%1001"
    # Read queries match the prefix with LIKE: its wildcards taken literally.
    assert mine["order_marker_like"] == "SHOP!_1!%%"
    assert order_params(ORDER, "k", {})["marker"] == "1001"


@pytest.mark.parametrize(("code", "kind"), [(75, "transient"), (3, "permanent")])
def test_the_commands_exit_status_classifies_its_failure(
    tmp_path: Path, code: int, kind: str
) -> None:
    with pytest.raises(Failure) as caught:
        command_writer(tmp_path, code).create_order(ORDER, "k")
    assert caught.value.kind == kind
    assert "the ERP said no" in caught.value.message and f"exit {code}" in caught.value.message


def test_a_command_that_cannot_run_is_permanent(tmp_path: Path) -> None:
    writer = CommandWriter(Orders(command=[str(tmp_path / "nope")]), {})
    with pytest.raises(Failure) as caught:
        writer.create_order(ORDER, "k")
    assert caught.value.kind == "permanent" and "cannot run" in caught.value.message


def test_outcomes_of_works() -> None:
    writer = Writer(lambda order, key: f"code-{key}")
    base = {"id": 7, "attempt": 2}
    done = outcome(writer, {**base, "call": "create_order", "args": {"order": ORDER, "key": "k"}})
    assert done == {**base, "outcome": "done", "result": "code-k"}
    unknown = outcome(writer, {**base, "call": "create_invoice", "args": {}})
    assert unknown["outcome"] == "permanent"
    assert unknown["error"] == "this agent cannot run create_invoice"
    assert outcome(writer, {**base, "call": "create_order", "args": {}})["outcome"] == "permanent"


@pytest.mark.parametrize(
    ("code", "problem"), [("SO-1 " + "x" * 300, "305 characters"), ("  ", "empty")]
)
def test_an_erp_code_stockyard_cannot_keep_is_a_permanent_failure(code: str, problem: str) -> None:
    """Stockyard keeps an ERP code of 1..255 characters and refuses the WHOLE settle (422)
    with one longer: the agent says so for that item alone, naming the problem."""
    writer = Writer(lambda order, key: code)
    work = {"id": 7, "attempt": 1, "call": "create_order", "args": {"order": ORDER, "key": "k"}}
    failed = outcome(writer, work)
    assert failed["outcome"] == "permanent"
    assert problem in failed["error"] and "ERP code" in failed["error"]


@pytest.mark.parametrize(("code", "problem"), [("SO\x001", "NUL"), ("SO-\ud800", "surrogate")])
def test_an_erp_code_with_nul_or_a_lone_surrogate_is_a_permanent_failure(
    code: str, problem: str
) -> None:
    """Stockyard's JSON guard refuses a NUL or a lone surrogate anywhere in a request (422
    for the whole settle): the agent fails that item alone, naming the problem, and its
    settle body carries neither."""
    writer = Writer(lambda order, key: code)
    work = {"id": 7, "attempt": 1, "call": "create_order", "args": {"order": ORDER, "key": "k"}}
    failed = outcome(writer, work)
    assert failed["outcome"] == "permanent"
    assert problem in failed["error"] and "ERP code" in failed["error"]
    assert "\x00" not in failed["error"]
    failed["error"].encode()  # no lone surrogate: UTF-8 encodes it


def test_an_erp_error_with_nul_or_a_lone_surrogate_is_settled_readable() -> None:
    def refuse(order: Any, key: str) -> str:
        raise Failure("permanent", "ERP says \x00 bad \udcff byte")

    failed = outcome(Writer(refuse), {"id": 7, "attempt": 1, "call": "create_order",
                                      "args": {"order": ORDER, "key": "k"}})  # fmt: skip
    assert "\x00" not in failed["error"] and failed["error"].startswith("ERP says ")
    failed["error"].encode()  # no lone surrogate: UTF-8 encodes it


# ------------------------------------------------------------------------------ protocol


class StandIn:
    """D5's routes as the agent sees them: signed POSTs, items handed out once, a session
    that can be ended, settles refused for a lease lost."""

    def __init__(self, connection: int) -> None:
        self.connection = connection
        self.queue: list[dict[str, Any]] = []
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.ended: set[str] = set()
        self.refuse: set[int] = set()
        self.disabled = False  # the operator disabled the connection: claims refused
        self.lease = 0.6
        self.app = Starlette(
            routes=[Route("/v1/agent/{conn:int}/{verb}", self.route, methods=["POST"])]
        )

    def sent(self, verb: str) -> list[dict[str, Any]]:
        """The bodies of the agent's `verb` requests, in order."""
        return [d for v, d in self.calls if v == verb]

    async def route(self, request: Request) -> JSONResponse:
        body = await request.body()
        try:
            verify(SECRET, request.headers, body)
        except Exception:
            return JSONResponse({"detail": "refused"}, 401)
        if request.path_params["conn"] != self.connection:
            return JSONResponse({"detail": "refused"}, 401)
        verb, data = request.path_params["verb"], json.loads(body)
        self.calls.append((verb, data))
        if data.get("session") in self.ended:
            return JSONResponse({"detail": "session ended: start a new one"}, 409)
        if self.disabled and verb in ("claim", "heartbeat"):
            return JSONResponse({"detail": f"connection {self.connection} is disabled"}, 409)
        if verb == "claim":
            items, self.queue = self.queue[: data["limit"]], self.queue[data["limit"] :]
            return JSONResponse({"items": items, "lease_seconds": self.lease})
        if verb == "heartbeat":
            return JSONResponse({"alive": True})
        if verb == "settle":
            ids = [o["id"] for o in data["outcomes"]]
            return JSONResponse(
                {
                    "settled": [i for i in ids if i not in self.refuse],
                    "refused": sorted(self.refuse & set(ids)),
                }
            )
        return JSONResponse({"detail": "no"}, 404)


def work(item_id: int, order: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "id": item_id,
        "attempt": 1,
        "instruction": "add_order",
        "call": "create_order",
        "args": {"order": order or ORDER, "key": f"item:{item_id}"},
    }


@pytest.fixture
def stand_in() -> Iterator[tuple[StandIn, OrderCalls]]:
    """The stand-in served, and the agent's calls to it (connection 5)."""
    s = StandIn(5)
    with serve_app(s.app) as url:
        client = Client(url, 5, SECRET)
        yield s, OrderCalls(client)
        client.close()


def wait_until(condition: Callable[[], bool], seconds: float = 30) -> None:
    """A write step holding on until the agent's other thread has done something."""
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)


def test_claim_run_settle_and_a_refused_settle_is_dropped(
    stand_in: tuple[StandIn, OrderCalls], tmp_path: Path, erp: sa.Engine
) -> None:
    s, calls = stand_in
    writer = Writer(sql_writer(tmp_path, erp).create_order)
    s.queue = [work(1), work(2, {**ORDER, "number": "1002"})]
    s.refuse = {2}
    assert work_once(calls, writer, wait=0) == 1
    settles = s.sent("settle")
    assert [o["outcome"] for o in settles[0]["outcomes"]] == ["done", "done"]
    assert [o.get("result") for o in settles[0]["outcomes"]] == ["SO41", "SO41"]
    claim = s.sent("claim")[0]
    assert claim == {"session": calls.session, "limit": 10, "wait": 0}
    # Refused (lease lost): dropped; claimed again later, the write step finds it.
    s.queue = [work(2, {**ORDER, "number": "1002"})]
    s.refuse = set()
    assert work_once(calls, writer, wait=0) == 1
    assert len(erp_orders(erp)[0]) == 2


def test_an_ended_session_starts_a_new_one(stand_in: tuple[StandIn, OrderCalls]) -> None:
    s, calls = stand_in
    old = calls.session
    s.ended.add(old)
    assert work_once(calls, Writer(None), wait=0) == 0
    assert calls.session != old
    s.queue = [work(3)]
    assert work_once(calls, Writer(None), wait=0) == 1  # settled as permanent: no [orders]
    settle = s.sent("settle")[-1]
    assert settle["session"] == calls.session
    assert settle["outcomes"][0]["outcome"] == "permanent"


def test_a_long_write_step_heartbeats(stand_in: tuple[StandIn, OrderCalls]) -> None:
    s, calls = stand_in
    started = threading.Event()

    def slow(order: Any, key: str) -> str:
        started.set()
        wait_until(lambda: bool(s.sent("heartbeat")))
        return "SLOW-1"

    s.queue = [work(4)]
    assert work_once(calls, Writer(slow), wait=0) == 1
    beats = s.sent("heartbeat")
    assert beats and beats[0] == {"session": calls.session}


def test_disabled_while_working_settles_what_was_written_and_starts_nothing_more(
    stand_in: tuple[StandIn, OrderCalls],
) -> None:
    """The connection is disabled while the agent writes an order: the heartbeat's 409 is
    no session end. The order written is settled (Stockyard records what the ERP did), the
    claim's next item is not started (it is released to the queue), the session is kept."""
    from stockyard.agent.orders import ConnectionDisabled

    s, calls = stand_in
    session = calls.session
    written: list[str] = []

    def slow(order: Any, key: str) -> str:
        s.disabled = True
        # The heartbeat told of it stops beating: its thread ends.
        wait_until(lambda: all(t.name != "agent-heartbeat" for t in threading.enumerate()))
        written.append(key)
        return f"SO-{key}"

    s.queue = [work(4), work(5)]
    with pytest.raises(ConnectionDisabled):
        work_once(calls, Writer(slow), wait=0)
    assert written == ["item:4"]
    (settle,) = s.sent("settle")
    assert settle["session"] == session == calls.session
    assert settle["outcomes"] == [{"id": 4, "attempt": 1, "outcome": "done", "result": "SO-item:4"}]


def test_a_disabled_connection_is_no_session_end(stand_in: tuple[StandIn, OrderCalls]) -> None:
    from stockyard.agent.orders import ConnectionDisabled

    s, calls = stand_in
    session = calls.session
    s.disabled = True
    with pytest.raises(ConnectionDisabled, match="connection 5 is disabled"):
        work_once(calls, Writer(None), wait=0)
    assert calls.session == session


# ------------------------------------------------------------ classifying driver errors


class _DbApiError(Exception): ...


class _DatabaseError(_DbApiError): ...  # pyodbc raises this for SQLSTATEs it has no class for


def _pyodbc(state: str, text: str) -> sa.exc.StatementError:
    """A driver error as SQLAlchemy wraps pyodbc's: args = (SQLSTATE, message)."""
    return sa.exc.DBAPIError.instance("INSERT ...", {}, _DatabaseError(state, text), _DbApiError)


@pytest.mark.parametrize(
    ("state", "text"),
    [
        ("40001", "[40001] [SQL Server]Transaction (Process ID 57) was deadlocked on lock"
         " resources with another process and has been chosen as the deadlock victim."
         " Rerun the transaction. (1205) (SQLExecDirectW)"),
        ("HY000", "[HY000] [SQL Server]Lock request time out period exceeded. (1222)"
         " (SQLExecDirectW)"),
        ("HYT00", "[HYT00] [Microsoft][ODBC Driver 18 for SQL Server]Query timeout expired"),
        ("40P01", "deadlock detected"),
        ("08S01", "[08S01] Communication link failure"),
    ],
)  # fmt: skip
def test_a_deadlock_or_lock_timeout_from_sql_server_is_transient(state: str, text: str) -> None:
    """pyodbc raises a deadlock victim (40001 / 1205) and a lock timeout (1222) as a plain
    DatabaseError: the SQLSTATE or the error number says what it is."""
    from stockyard.agent.orders import _classify

    failure = _classify(_pyodbc(state, text))
    assert failure.kind == "transient", failure.message
    assert failure.retry_after


def test_a_number_in_a_refusals_text_is_not_its_error_number() -> None:
    from stockyard.agent.orders import _classify

    duplicate = _pyodbc(
        "23000",
        "[23000] [SQL Server]Violation of PRIMARY KEY constraint 'PK_InvNum'. Cannot insert"
        " duplicate key in object 'dbo.InvNum'. The duplicate key value is (1222). (2627)"
        " (SQLExecDirectW)",
    )
    assert _classify(duplicate).kind == "permanent"


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO t VALUES (1, 2)",  # table t has 3 columns but 2 values were supplied
        "INSERT INTO t (a) SELECT nosuchfn(1)",  # no such function
        "SELECT a FROM t x JOIN t y ON 1=1 WHERE a = 1",  # ambiguous column name
    ],
)
def test_a_profile_mistake_on_sqlite_is_permanent(sql: str) -> None:
    """SQLite reports these as OperationalError, like a locked database: the wording says
    they are the profile's mistakes, which no retry mends."""
    from stockyard.agent.orders import _classify

    engine = sa.create_engine("sqlite://")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (a, b, c)"))
    with pytest.raises(sa.exc.SQLAlchemyError) as caught, engine.begin() as conn:
        conn.execute(sa.text(sql))
    engine.dispose()
    assert _classify(caught.value).kind == "permanent"
