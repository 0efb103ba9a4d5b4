"""Named queries: the loader, and every query of every `.sql` file on both backends."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from systems.postgres import Databases

import stockyard
from stockyard.db import Database, connect, load_queries
from stockyard.db.queries import Queries, Query, QueryError, compile_sql, parse
from stockyard.db.store import Store
from stockyard.errors import NotFound
from tests.conftest import BACKENDS
from tests.support.queues import UrlMaker

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


# Parameters where NULL is not a value of their type (SQLite refuses LIMIT NULL).
_SAMPLES: dict[str, object] = {"limit": 1}


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
        "stockyard.notify/subscriptions.sql",
    }


@pytest.mark.parametrize(("package", "filename", "name"), _QUERIES)
def test_every_query_runs_on_both_backends(
    migrated: Database, package: str, filename: str, name: str
) -> None:
    """Each statement is valid SQL of the backend against the migrated schema: a read runs
    (with every parameter NULL but those NULL cannot stand for), a write is planned (EXPLAIN) inside a transaction that is
    rolled back."""
    query = load_queries(package, filename).for_backend(migrated.backend)[name]
    assert query.doc
    params = {p: _SAMPLES.get(p) for p in query.params}
    with migrated.read() as cur:
        if query.sql.lstrip().upper().startswith("SELECT"):
            cur.execute(query.sql, params).fetchall()
        else:
            explain = "EXPLAIN QUERY PLAN" if migrated.backend == "sqlite" else "EXPLAIN"
            cur.execute(f"{explain} {query.sql}", params).fetchall()
