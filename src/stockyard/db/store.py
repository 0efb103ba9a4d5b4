"""The base of every store: run a named query and read its rows by column name."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from stockyard.db.base import Database, Row
from stockyard.db.queries import LIST_PARAM, Queries, Query


class Store:
    """A store's methods say which named query to run with which parameters:

        row = self.must(self.conn, "product", missing=NotFound("no product"), id=7)
        row["code"]

    `cur` is a cursor of a transaction (`with self.db.write() as cur`) or, for a single
    read, the connection (`self.conn`). Query names and `cur` are positional-only, so a
    parameter may be called `name` too."""

    queries: ClassVar[Queries]

    def __init__(self, db: Database) -> None:
        self.db = db
        self._queries = self.queries.for_backend(db.backend)
        self._list_param = LIST_PARAM[db.backend]

    @property
    def conn(self) -> Any:
        """The thread's connection, for reads outside a transaction."""
        return self.db.connection()

    def query(self, name: str, /) -> Query:
        return self._queries[name]

    def _bind(self, query: Query, params: dict[str, Any]) -> dict[str, Any]:
        for name in query.lists:
            params[name] = self._list_param(params[name])
        return params

    def _run(self, cur: Any, name: str, params: dict[str, Any]) -> Any:
        query = self._queries[name]
        if query.lists:
            params = self._bind(query, params)
        return cur.execute(query.sql, params)

    def one(self, cur: Any, name: str, /, **params: Any) -> Row | None:
        """The first row the query returns, or None."""
        row: Row | None = self._run(cur, name, params).fetchone()
        return row

    def must(self, cur: Any, name: str, /, *, missing: Exception, **params: Any) -> Row:
        """The first row the query returns; raises `missing` when there is none."""
        row: Row | None = self._run(cur, name, params).fetchone()
        if row is None:
            raise missing
        return row

    def value(self, cur: Any, name: str, /, **params: Any) -> Any:
        """The first column of the one row a statement always returns: a count, an id from
        INSERT ... RETURNING. No row is a bug in the statement."""
        row: Row | None = self._run(cur, name, params).fetchone()
        if row is None:
            raise LookupError(f"query {name} returned no row")
        return row[0]

    def all(self, cur: Any, name: str, /, **params: Any) -> list[Row]:
        rows: list[Row] = self._run(cur, name, params).fetchall()
        return rows

    def execute(self, cur: Any, name: str, /, **params: Any) -> int:
        """Runs a statement whose rows nobody reads; returns how many rows it changed."""
        count: int = self._run(cur, name, params).rowcount
        return count

    def execute_many(self, cur: Any, name: str, rows: Iterable[Mapping[str, Any]], /) -> None:
        """Runs one statement once per parameter set, in one round trip where the driver can."""
        query = self._queries[name]
        batch = [self._bind(query, dict(r)) if query.lists else r for r in rows]
        if batch:
            cur.executemany(query.sql, batch)
