"""Database URLs, connections and migrations, for SQLite and PostgreSQL.

Migrations run through Alembic (on SQLAlchemy); the queue's hot path talks to the DB-API
connection directly with explicit SQL, so every statement is visible and reviewed.
"""

from __future__ import annotations

import sqlite3

from stockyard.db.base import Cursor, Database, Row
from stockyard.db.queries import Queries, Query, load_queries
from stockyard.db.store import Store
from stockyard.errors import InvalidInput

DEFAULT_URL = "sqlite:///stockyard.db"

# What a broken database raises (as opposed to the engine's own errors). Made when first
# asked for (`__getattr__`): psycopg and SQLAlchemy take a tenth of a second each to
# import, which a command line on SQLite must not pay before it starts.
DATABASE_ERRORS: tuple[type[Exception], ...]


def __getattr__(name: str) -> object:
    if name == "DATABASE_ERRORS":
        import psycopg

        from stockyard.db.postgres import DatabaseUnavailable

        # DatabaseUnavailable stands for psycopg's connection errors (with the password
        # masked): the database is away, like any driver error here, not the caller's fault.
        errors = (sqlite3.Error, psycopg.Error, DatabaseUnavailable)
        globals()[name] = errors
        return errors
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DATABASE_ERRORS",
    "DEFAULT_URL",
    "Cursor",
    "Database",
    "Queries",
    "Query",
    "Row",
    "Store",
    "connect",
    "load_queries",
]


def connect(url: str = DEFAULT_URL) -> Database:
    """The database of a URL: sqlite:///path.db or postgresql://user:password@host/name."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        raise InvalidInput(f"cannot parse database URL {url!r}") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        from stockyard.db.sqlite import SqliteDatabase, sqlite_options

        return SqliteDatabase(url, sqlite_options(parsed))
    if backend in ("postgresql", "postgres"):
        from stockyard.db.postgres import PostgresDatabase

        return PostgresDatabase(url, parsed)
    raise InvalidInput(
        f"unsupported database {backend!r}: use sqlite:///path.db or postgresql://host/name"
    )
