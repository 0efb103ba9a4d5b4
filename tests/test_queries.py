"""Named queries: the loader, and every query of every `.sql` file on both backends."""

from __future__ import annotations

import pytest

from stockyard.db import connect
from stockyard.db.queries import Queries, Query, QueryError, compile_sql, parse
from stockyard.db.store import Store
from stockyard.errors import NotFound
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
