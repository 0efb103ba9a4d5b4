"""Named queries: the loader, and every query of every `.sql` file on both backends."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from systems.postgres import Databases

import stockyard
from stockyard.db import Database, connect, load_queries
from stockyard.db.queries import Queries, Query, QueryError, compile_sql, parse
from stockyard.db.store import Store
from stockyard.engine import ItemFilter, Limits, Outcome, Request
from stockyard.errors import NotFound
from stockyard.tenancy import Tenancy
from tests.support.queues import BACKENDS, UrlMaker, make_queue

# ------------------------------------------------------------------------------ the loader


def test_parse_reads_names_docs_and_statements() -> None:
    text = (
        "-- name: first\n-- The first one,\n-- on two lines.\nSELECT 1;\n\n"
        "-- name: second\n-- Another.\nSELECT 2\nFROM t\n"
    )
    assert parse(text, "x.sql") == {
        "first": ("The first one, on two lines.", "SELECT 1"),
        "second": ("Another.", "SELECT 2\nFROM t"),
    }


@pytest.mark.parametrize(
    "text",
    [
        "SELECT 1\n-- name: a\n-- doc\nSELECT 1",  # text before the first name
        "-- name: a\n-- doc\nSELECT 1\n-- name: a\n-- doc\nSELECT 2",  # twice
        "-- name: a\nSELECT 1",  # no doc comment
    ],
)
def test_parse_refuses_malformed_files(text: str) -> None:
    with pytest.raises(QueryError):
        parse(text, "x.sql")


def test_parameters_compile_to_each_paramstyle() -> None:
    sql = "SELECT a::int FROM t WHERE b = :b AND c LIKE 'x%' AND d = ':no' AND e ? 'k' AND f % 2"
    sqlite, names = compile_sql(sql, "sqlite")
    assert names == {"b"}
    assert sqlite == sql
    postgres, _ = compile_sql(sql, "postgresql")
    assert postgres == (
        "SELECT a::int FROM t WHERE b = %(b)s AND c LIKE 'x%%' AND d = ':no' AND e ? 'k' AND f %% 2"
    )


def test_literal_question_marks_and_percents_reach_the_server(new_url: UrlMaker) -> None:
    db = connect(new_url())

    class Probe(Store):
        queries = _probe_queries()

    probe = Probe(db)
    row = probe.must(probe.conn, "probe", missing=NotFound("none"), name="a?%")
    assert (row["q"], row["p"], row["name"]) == ("?", "100%", "a?%")
    if db.backend == "postgresql":  # jsonb's `?` operator, which `?` placeholders forbade
        assert probe.one(probe.conn, "has_key", key="k") is not None
    db.close()


def _probe_queries() -> Queries:
    compiled: dict[str, dict[str, Query]] = {}
    for backend in ("sqlite", "postgresql"):
        probe, params = compile_sql("SELECT '?' AS q, '100%' AS p, :name AS name", backend)
        key, key_params = compile_sql(
            """SELECT 1 WHERE CAST('{"k": 1}' AS jsonb) ? :key""", backend
        )
        compiled[backend] = {
            "probe": Query("probe", "", probe, params, (), "test"),
            "has_key": Query("has_key", "", key, key_params, (), "test"),
        }
    return Queries(compiled)


# ------------------------------------------------------------- every query, both backends

_SRC = Path(stockyard.__file__).parent


def _query_files() -> list[tuple[str, str]]:
    """(package, file name) of every common `.sql` file (overrides load with it)."""
    found = []
    for path in sorted(_SRC.rglob("*.sql")):
        if path.name.count(".") > 1:  # queries.sqlite.sql: an override
            continue
        package = ".".join(("stockyard", *path.parent.relative_to(_SRC).parts))
        found.append((package, path.name))
    return found


_QUERIES = [
    (package, filename, name)
    for package, filename in _query_files()
    for name in load_queries(package, filename).names()
]


def test_every_named_query_has_a_caller() -> None:
    """A query nobody runs is dead code the conformance suite would keep looking alive:
    each name must appear, quoted, in the Python source beside the stores."""
    source = "\n".join(p.read_text() for p in _SRC.rglob("*.py"))
    uncalled = [
        f"{package}/{filename}: {name}"
        for package, filename, name in _QUERIES
        if f'"{name}"' not in source and f"'{name}'" not in source
    ]
    assert not uncalled, uncalled


# Parameters where NULL is not a value of their type (SQLite refuses LIMIT NULL).
_SAMPLES: dict[str, object] = {"limit": 1, "newest": 1}


@pytest.fixture(scope="module", params=BACKENDS)
def migrated(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Database]:
    """One migrated database per backend for the whole module (queries change nothing)."""
    pg: Databases | None = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('queries')}/queries.db"
    else:
        pg = request.getfixturevalue("pg_databases")
        url = pg.create()
    db = connect(url)
    db.migrate()
    yield db
    db.close()
    if pg is not None:
        pg.drop(url)


def test_every_sql_file_is_found() -> None:
    assert {f"{p}/{f}" for p, f in _query_files()} >= {
        "stockyard/accounts.sql",
        "stockyard.catalog/queries.sql",
        "stockyard.engine/queries.sql",
        "stockyard.notify/subscriptions.sql",
    }


@pytest.mark.parametrize(("package", "filename", "name"), _QUERIES)
def test_every_query_runs_on_both_backends(
    migrated: Database, package: str, filename: str, name: str
) -> None:
    """Each statement is valid SQL of the backend against the migrated schema: a read runs
    (every parameter NULL but where NULL is no value of its type), a write is planned
    (EXPLAIN) inside a transaction that is rolled back."""
    query = load_queries(package, filename).for_backend(migrated.backend)[name]
    assert query.doc
    params = {p: _SAMPLES.get(p) for p in query.params}
    with migrated.read() as cur:
        if query.sql.lstrip().upper().startswith("SELECT"):
            cur.execute(query.sql, params).fetchall()
        else:
            explain = "EXPLAIN QUERY PLAN" if migrated.backend == "sqlite" else "EXPLAIN"
            cur.execute(f"{explain} {query.sql}", params).fetchall()


# ------------------------------------------------------------------ plans of the hot paths


class _Recording:
    """A connection (or cursor) that notes each statement it runs: (sql, params)."""

    def __init__(self, inner: Any, log: list[tuple[str, Any]]) -> None:
        self._inner = inner
        self._log = log

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def cursor(self) -> _Recording:
        return _Recording(self._inner.cursor(), self._log)

    def execute(self, sql: str, params: Any = (), /) -> Any:
        self._log.append((sql, params))
        result = self._inner.execute(sql, params)
        return self if result is self._inner else result

    def executemany(self, sql: str, params: Any, /) -> Any:
        params = list(params)
        if params:
            self._log.append((sql, params[0]))
        return self._inner.executemany(sql, params)


def _plans(db: Database, statements: list[tuple[str, Any]]) -> list[str]:
    """The plan of each statement that reads or writes rows. On PostgreSQL sequential scans
    are priced out, so a table read by one in a plan has no index the statement can use."""
    conn = db.connection()
    plans = []
    for sql, params in statements:
        if sql.lstrip().split(None, 1)[0].upper() not in {"SELECT", "UPDATE", "INSERT", "DELETE"}:
            continue
        if db.backend == "sqlite":
            rows = conn.execute(f"EXPLAIN QUERY PLAN {sql}", params).fetchall()
            plans.append("\n".join(str(r[3]) for r in rows))
        else:
            with db.read() as cur:
                cur.execute("SET LOCAL enable_seqscan = off")
                rows = cur.execute(f"EXPLAIN (COSTS OFF) {sql}", params).fetchall()
            plans.append("\n".join(str(r[0]) for r in rows))
    return plans


def _full_scans(db: Database, plan: str) -> list[str]:
    """Lines of a plan that read a whole table holding a row per item."""
    if db.backend == "sqlite":
        pattern = r"^SCAN (items|item_refs)\b(?!.*USING)"
    else:
        pattern = r"Seq Scan on (items|item_refs)\b"
    return [line for line in plan.splitlines() if re.search(pattern, line.strip())]


# The indexes each hot path must use: docs/postgres.md shows PostgreSQL's on 1,000,000
# items. SQLite settles by primary key (`{no_index}` keeps its planner off items_running,
# the batch drives) and pages failed items through items_failed (the status said literally).
_BOTH = {
    "enqueue": {"items_idempotency"},
    "claim": {
        "lanes_client_ready",
        "items_fair_ready",
        "items_running_connection",
    },
    "next due": {"lanes_ready", "items_fair_ready"},
    # An agent's claim: what its session holds already (items_running), then its
    # connection's due items, from items_fair_ready's range alone.
    "remote claim": {"items_running", "items_fair_ready"},
    # Each agent request's message id noted; those past the replay window pruned by time.
    "remote message": {"remote_messages_seen"},
    "reap": {"items_running"},
    # Exact per-state counts on every console page: indexes only, never the backlog.
    "queue summary": {"lanes_client", "items_fair_ready", "items_failed", "items_running"},
    # The queue page's waiting work in run order: each lane's and each connection's first.
    "next to run": {"items_lane_queued", "items_fair_ready"},
    # Failures by error: grouped in SQL from the failed items' partial index.
    "failure groups": {"items_failed"},
}
_HOT_INDEXES: dict[str, dict[str, set[str]]] = {
    "postgresql": {
        **_BOTH,
        "settle": {"items_running"},
        "failed items page": {"items_failed"},
        "items by SKU": {"item_refs_folded"},
        "items by SKU prefix": {"item_refs_folded"},
        "skip dependants": {"item_refs_pkey", "items_pkey"},
    },
    "sqlite": {
        **_BOTH,
        "settle": {"SEARCH items USING INTEGER PRIMARY KEY"},
        "failed items page": {"items_failed"},
        # The client's references only (item_refs_folded leads with the client: 0008).
        "items by SKU": {"item_refs_folded (client_id=? AND folded=?)"},
        "items by SKU prefix": {"item_refs_folded (client_id=? AND folded>? AND folded<?)"},
        # From the references' key to each item by id, never every item of the client.
        "skip dependants": {
            "SEARCH r USING PRIMARY KEY (ref=?)",
            "SEARCH i USING INTEGER PRIMARY KEY (rowid=?)",
        },
    },
}
# Sections whose plans must not walk a client's every item (items_client by client_id
# alone). SQLite's plans, without statistics, are the same on every database.
_NOT_CLIENT_WIDE = {"skip dependants", "failure groups", "items by short SKU"}


# Sections whose plans must take rows in the index's order, never sort them.
_NO_SORT = {"claim", "next due", "next to run", "failed items page", "remote claim"}


def test_hot_paths_use_their_indexes(new_url: UrlMaker) -> None:
    queue = make_queue(new_url())
    db = queue.db
    client = Tenancy(queue.db).client_id("default")
    lanes = [
        Tenancy(queue.db).add_connection(client, "channel", "demo", f"Shop {k}").id
        for k in range(5)
    ]
    queue.register_worker("filler", "test", 0)
    heads = queue.enqueue(client, [Request("add_product", {}, lane) for lane in lanes])
    jobs = queue.claim("filler", len(heads))
    queue.settle("filler", [Outcome(j, "permanent", time.time(), "bad") for j in jobs])
    queue.enqueue(
        client,
        [Request("update_variant", {"n": i}, lanes[i % 5], refs=(f"SKU-{i}",)) for i in range(50)],
    )
    queue.enqueue(client, [Request("add_order", {"n": i}) for i in range(5)])
    limited = Tenancy(queue.db).add_connection(client, "channel", "demo", "Limited").id
    queue.set_limits(client, limited, Limits(max_running=3, per_second=10.0))
    queue.enqueue(client, [Request("sync_order", {"n": i}, limited) for i in range(5)])
    queue.register_worker("w", "test", 0)
    agent = Tenancy(queue.db).add_connection(client, "source", "agent", "ERP", remote=True).id
    queue.enqueue(client, [Request("add_order", {"n": i}, agent) for i in range(5)])

    real = db.connection()
    statements: dict[str, list[tuple[str, Any]]] = {}

    def record(section: str, run: Callable[[], object]) -> None:
        log: list[tuple[str, Any]] = []
        db.connection = lambda: _Recording(real, log)  # type: ignore[method-assign]
        try:
            run()
        finally:
            del db.connection
        statements[section] = log

    record(
        "enqueue",
        lambda: queue.enqueue(
            client,
            [Request("update_variant", {}, lanes[0]) for _ in range(5)]
            + [Request("sync_order", {}, idempotency_key=f"k{i}") for i in range(5)],
        ),
    )
    claimed: list[Any] = []
    record("claim", lambda: claimed.extend(queue.claim("w", 10)))
    record(
        "settle",
        lambda: queue.settle(
            "w", [Outcome(j, "done", time.time()) for j in claimed], claim_limit=10
        ),
    )
    record(
        "failed items page",
        lambda: queue.list_items(ItemFilter(client, statuses=("failed",)), limit=50),
    )
    record("items by SKU", lambda: queue.list_items(ItemFilter(client, ref="SKU-12"), limit=50))
    record(
        "items by SKU prefix",
        lambda: queue.list_items(ItemFilter(client, ref_prefix="sku-1"), limit=50),
    )
    record(
        "items by short SKU",
        lambda: queue.count(ItemFilter(client, ref_prefix="s"), cap=10_000),
    )
    record("failure groups", lambda: queue.failure_groups(client, 1001))
    record(
        "skip dependants",
        lambda: queue.queued_sharing_refs(client, ["SKU-1", "SKU-2"], ["update_variant"], 5000),
    )
    record("queue summary", lambda: queue.summary(client))
    record("next to run", lambda: queue.next_to_run(client, lanes, 5, 20))
    record("next due", queue.next_due)
    record("lane overview", lambda: queue.lanes(client))
    record("reap", lambda: queue.reap(30.0))
    remote: list[Any] = []
    record("remote claim", lambda: remote.extend(queue.claim_remote("agent:s", agent, 3)))
    record(
        "remote settle",
        lambda: queue.settle_items(
            "agent:s",
            [
                Outcome(j, "done", time.time())
                for j in queue.held("agent:s", [j.id for j in remote])
            ],
        ),
    )
    record("remote heartbeat", lambda: queue.heartbeat_remote("agent:s"))
    record("remote message", lambda: queue.note_message(agent, "msg-1", 600.0))

    for section, log in statements.items():
        plans = _plans(db, log)
        assert plans, section
        text = "\n\n".join(plans)
        assert not [s for p in plans for s in _full_scans(db, p)], f"{section}:\n{text}"
        for index in _HOT_INDEXES[db.backend].get(section, ()):
            assert index in text, f"{section} does not use {index}:\n{text}"
        if section in _NOT_CLIENT_WIDE and db.backend == "sqlite":
            assert "items_client (client_id=?)" not in text, f"{section}:\n{text}"
        if section in _NO_SORT:  # a sort here would read every queued item of a group
            assert "TEMP B-TREE" not in text and "Sort Key: items" not in text, text
    db.close()
