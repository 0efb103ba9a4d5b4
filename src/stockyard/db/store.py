"""The base of every store: run a named query and read its rows by column name."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from stockyard.db.base import Database, Row
from stockyard.db.queries import LIST_PARAM, Queries, Query, compose


class Store:
    """A store's methods say which named query to run with which parameters:

        row = self.must(self.conn, "product", missing=NotFound("no product"), id=7)
        row["code"]

    `cur` is a cursor of a transaction (`with self.db.write() as cur`) or, for a single
    read, the connection (`self.conn`). Query names and `cur` are positional-only, so a
    parameter may be called `name` too.

    Rows are read by column name. A store on a hot path that reads its rows through its
    own column maps sets `named_rows = False` and gets plain tuples: building a by-name
    row per fetched row is measurable there (the queue engine's claims and settles)."""

    queries: ClassVar[Queries]
    named_rows: ClassVar[bool] = True

    def __init__(self, db: Database) -> None:
        self.db = db
        self._queries = self.queries.for_backend(db.backend)
        self._list_param = LIST_PARAM[db.backend]
        self._shape = db.named_rows if self.named_rows else db.plain_rows

    @property
    def conn(self) -> Any:
        """The thread's connection, for reads outside a transaction."""
        return self.db.connection()

    def query(self, name: str, /) -> Query:
        return self._queries[name]

    def compose(self, sql: str, /) -> Query:
        """A statement whose text is put together at run time (optional conditions), with
        `:name` parameters and the macros of `.sql` files; pass it where a name goes."""
        return compose(sql, self.db.backend)

    def _bind(self, query: Query, params: dict[str, Any]) -> dict[str, Any]:
        for name in query.lists:
            params[name] = self._list_param(params[name])
        return params

    def _run(self, cur: Any, name: str | Query, params: dict[str, Any]) -> Any:
        query = name if isinstance(name, Query) else self._queries[name]
        if query.lists:
            params = self._bind(query, params)
        result = cur.execute(query.sql, params)
        # The row shape is the store's, whoever used the cursor (or connection) before.
        self._shape(result)
        return result

    def run(self, cur: Any, name: str | Query, /, **params: Any) -> Any:
        """The cursor that ran the query, for a reader that fetches its rows itself."""
        return self._run(cur, name, params)

    def one(self, cur: Any, name: str | Query, /, **params: Any) -> Row | None:
        """The first row the query returns, or None."""
        row: Row | None = self._run(cur, name, params).fetchone()
        return row

    def must(self, cur: Any, name: str | Query, /, *, missing: Exception, **params: Any) -> Row:
        """The first row the query returns; raises `missing` when there is none."""
        row: Row | None = self._run(cur, name, params).fetchone()
        if row is None:
            raise missing
        return row

    def value(self, cur: Any, name: str | Query, /, **params: Any) -> Any:
        """The first column of the one row a statement always returns: a count, an id from
        INSERT ... RETURNING. No row is a bug in the statement."""
        row: Row | None = self._run(cur, name, params).fetchone()
        if row is None:
            raise LookupError(f"query {name} returned no row")
        return row[0]

    def all(self, cur: Any, name: str | Query, /, **params: Any) -> list[Row]:
        rows: list[Row] = self._run(cur, name, params).fetchall()
        return rows

    def execute(self, cur: Any, name: str | Query, /, **params: Any) -> int:
        """Runs a statement whose rows nobody reads; returns how many rows it changed."""
        count: int = self._run(cur, name, params).rowcount
        return count

    def execute_many(self, cur: Any, name: str, rows: Iterable[Mapping[str, Any]], /) -> None:
        """Runs one statement once per parameter set, in one round trip where the driver can."""
        query = self._queries[name]
        batch = [self._bind(query, dict(r)) if query.lists else r for r in rows]
        if batch:
            cur.executemany(query.sql, batch)
