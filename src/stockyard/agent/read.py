"""Reading the ERP's database: any SQLAlchemy URL, the profile's queries with named
parameters (the profile's settings, :cursor, and :limit / :offset when a query pages).

A source hands out rows already renamed to Stockyard's columns (records.normalise_columns);
the cursor column, if any, comes back as `changed`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from stockyard.agent import AgentError
from stockyard.agent.profile import Extra, Fulfillments, Profile, Reading
from stockyard.agent.records import normalise_columns

SECTIONS = ("products", "prices", "stock", "customers", "fulfillments")


class Source(Protocol):
    def rows(self, section: str, cursor: Any) -> list[dict[str, Any]]: ...

    def uses_cursor(self, section: str) -> bool:
        """Whether the section's rows depend on :cursor."""
        ...

    def snapshot(self) -> AbstractContextManager[None]:
        """The reads inside see the source as it was when the first one began."""
        ...

    def close(self) -> None: ...


def safe_url(url: str) -> str:
    """The URL as it may be logged: the password masked."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):  # ValueError: a port that is no number
        return "<an unreadable URL>"


def engine(url: str) -> sa.Engine:
    try:
        return sa.create_engine(url, pool_pre_ping=True)
    except (ArgumentError, NoSuchModuleError, ValueError) as exc:
        # The message may quote the URL: say what is wrong without it. ValueError: a port
        # that is no number, a query value the dialect cannot take.
        kind = "no driver for it" if isinstance(exc, NoSuchModuleError) else "not a database URL"
        raise AgentError(f"[erp] url {safe_url(url)}: {kind}") from None
    except ImportError as exc:
        raise AgentError(f"[erp] url: its driver is not installed ({exc.name})") from None


def db_error(exc: SQLAlchemyError) -> str:
    """A database error in one line, without the statement's parameters or the URL."""
    orig = getattr(exc, "orig", None)
    reason = str(orig if orig is not None else exc).strip().splitlines()
    return f"{type(exc).__name__}: {reason[0] if reason else 'no message'}"[:500]


class SqlSource:
    """A poll's reads go through one connection in one read transaction (`snapshot`), so
    paging with LIMIT/OFFSET sees one state of the tables: a row inserted, deleted or
    moved between two pages would otherwise shift the rows and one would be skipped or
    read twice. SQLite: one transaction (in WAL mode readers do not block the ERP's
    writers); PostgreSQL: REPEATABLE READ; others: `[erp] read_isolation` (SQL Server:
    "SNAPSHOT" once the database allows it), else the driver's default (READ COMMITTED:
    there, prefer keyset paging, docs/agent-profiles.md)."""

    def __init__(
        self,
        url: str,
        profile: Profile,
        settings: Mapping[str, Any],
        isolation: str | None = None,
    ) -> None:
        self.profile = profile
        self.settings = dict(settings)
        self.engine = engine(url)
        self.isolation = isolation
        self._conn: sa.Connection | None = None

    def close(self) -> None:
        self.engine.dispose()

    def uses_cursor(self, section: str) -> bool:
        spec = self.section(section)
        return (
            spec is not None
            and spec.query is not None
            and "cursor" in sa.text(spec.query).compile().params
        )

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        if self._conn is not None:  # already inside one
            yield
            return
        try:
            conn = self.engine.connect()
        except SQLAlchemyError as exc:
            raise AgentError(f"cannot reach the ERP database: {db_error(exc)}") from None
        try:
            level = self.isolation or (
                "REPEATABLE READ" if self.engine.dialect.name == "postgresql" else None
            )
            if level is not None:
                conn.execution_options(isolation_level=level)
            if self.engine.dialect.name == "sqlite":
                # pysqlite starts no transaction before a SELECT: start one, or each page
                # would see the table as it is then.
                conn.exec_driver_sql("BEGIN")
            self._conn = conn
            yield
        except SQLAlchemyError as exc:
            raise AgentError(f"reading the ERP: {db_error(exc)}") from None
        finally:
            self._conn = None
            try:
                conn.rollback()  # read only: nothing to keep
            finally:
                conn.close()

    def section(self, section: str) -> Reading | Extra | Fulfillments | None:
        found: Reading | Extra | Fulfillments | None = getattr(self.profile, section)
        return found

    @contextmanager
    def _connection(self) -> Iterator[sa.Connection]:
        """The snapshot's connection, or one for this read alone."""
        if self._conn is not None:
            yield self._conn
        else:
            with self.engine.connect() as conn:
                yield conn

    def rows(self, section: str, cursor: Any) -> list[dict[str, Any]]:
        spec = self.section(section)
        if spec is None or spec.query is None:
            return []
        return list(self._pages(section, spec.query, spec, cursor))

    def _pages(
        self, section: str, query: str, spec: Reading | Extra | Fulfillments, cursor: Any
    ) -> Iterator[dict[str, Any]]:
        statement = sa.text(query)
        wanted = set(statement.compile().params)
        cursor_column = spec.cursor if isinstance(spec, Reading) else None
        params = {**self.settings, "cursor": cursor}
        unknown = wanted - set(params) - {"limit", "offset"}
        if unknown:
            raise AgentError(
                f"[{section}] query uses :{', :'.join(sorted(unknown))}: not a setting of"
                f" the profile nor :cursor, :limit, :offset"
            )
        paged = "limit" in wanted
        offset = 0
        mapping: dict[str, str] | None = None
        try:
            with self._connection() as conn:
                while True:
                    page = {**params, "limit": spec.page_size, "offset": offset}
                    result = conn.execute(statement, {k: v for k, v in page.items() if k in wanted})
                    if mapping is None:
                        mapping = normalise_columns(section, list(result.keys()), cursor_column)
                    count = 0
                    for row in result.mappings():
                        count += 1
                        yield {mapping[k]: v for k, v in row.items()}
                    if not paged or count < spec.page_size:
                        return
                    offset += count
        except SQLAlchemyError as exc:
            raise AgentError(f"[{section}] query failed: {db_error(exc)}") from None
