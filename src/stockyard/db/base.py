"""What the stores need from a database: connections, transactions, row shapes, the
conditions that pass (unavailable, storage full), notifications and the schema.

SQL lives in `.sql` files of named queries (`stockyard.db.queries`), with `:name`
parameters compiled for each backend's driver; where the backends differ, the queries
say so (macros, per-backend override files), not this class.
"""

from __future__ import annotations

import contextlib
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from stockyard.db.queries import LIST_PARAM, compose
from stockyard.errors import StorageFull

CHANNEL = "stockyard"  # the LISTEN/NOTIFY channel of new work


class Row(Protocol):
    """A result row: read by column name (`row["id"]`), or unpacked."""

    def __getitem__(self, key: int | str, /) -> Any: ...

    def __iter__(self) -> Iterator[Any]: ...

    def __len__(self) -> int: ...


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def execute(self, sql: str, params: Any = ..., /) -> Any: ...

    def executemany(self, sql: str, params: Any, /) -> Any: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Connection(Protocol):
    def cursor(self) -> Any: ...

    def execute(self, sql: str, params: Any = ..., /) -> Any: ...

    def close(self) -> None: ...


class Database(ABC):
    """A database URL and a connection per thread, opened on first use."""

    backend: str
    # Whether a transaction must take row locks (PostgreSQL); SQLite has one writer.
    row_locks: bool = False
    # What a unique index raises when a concurrent transaction committed the same key.
    unique_violation: tuple[type[Exception], ...] = ()

    def __init__(self, url: str) -> None:
        self.url = url
        self._local = threading.local()

    # ------------------------------------------------------------------- connections

    def connection(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None or self._is_broken(conn):
            if conn is not None:
                self._discard(conn)
            conn = self._open()
            self._local.conn = conn
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            self._discard(conn)
            self._local.conn = None

    @abstractmethod
    def _open(self) -> Any: ...

    def _is_broken(self, conn: Any) -> bool:
        return False

    def _discard(self, conn: Any) -> None:
        # Closing a dead connection may fail; it is gone either way.
        with contextlib.suppress(Exception):
            conn.close()

    # ------------------------------------------------------------------ transactions

    begin_write = "BEGIN"
    begin_read = "BEGIN"

    @contextmanager
    def write(self) -> Iterator[Cursor]:
        """A write transaction, committed at the end and rolled back on any error."""
        conn = self.connection()
        cur = conn.cursor()
        self._local.notify = False
        self._local.lease_only = False
        try:
            cur.execute(self.begin_write)
            try:
                self._local.writing = True
                try:
                    yield cur
                finally:
                    self._local.writing = False
                cur.execute(self._commit())
            except BaseException:
                self._rollback(conn)
                raise
        except Exception as exc:
            if self.storage_full(exc):
                raise StorageFull(
                    f"{self.describe()} cannot be written (disk full or I/O error): {exc}"
                ) from exc
            raise

    @contextmanager
    def read(self) -> Iterator[Cursor]:
        """A consistent snapshot for several reads."""
        conn = self.connection()
        cur = conn.cursor()
        cur.execute(self.begin_read)
        try:
            yield cur
        finally:
            self._rollback(conn)

    def unavailable(self, exc: BaseException) -> bool:
        """Whether `exc` says the database cannot serve anyone right now (unreachable,
        restarting, locked, storage full), as opposed to refusing what one statement
        carries. The first is waited out; the second is one item's problem."""
        return isinstance(exc, StorageFull)

    def storage_full(self, exc: BaseException) -> bool:
        """Whether `exc` says the storage cannot take writes (disk full, a file-size limit,
        an I/O error): a condition that passes, unlike a bug in a statement."""
        return False

    def _commit(self) -> str:
        """The statement that ends a write transaction (with a NOTIFY asked for in it)."""
        return "COMMIT"

    def _rollback(self, conn: Any) -> None:
        try:
            conn.execute("ROLLBACK")
        except Exception:  # the connection died mid-transaction: the server rolled back
            self.close()

    # -------------------------------------------------------------------- row shapes

    @abstractmethod
    def named_rows(self, cursor: Any) -> None:
        """Make the rows `cursor` fetches next readable by column name."""

    @abstractmethod
    def plain_rows(self, cursor: Any) -> None:
        """Make the rows `cursor` fetches next plain tuples (cheapest to build)."""

    # ---------------------------------------------------------------- ad hoc statements

    def run(self, sql: str, /, **params: Any) -> Any:
        """One statement not worth naming (tests, tools, benchmarks), written like a
        `.sql` file's (`:name` parameters, macros), on the thread's connection; returns
        the cursor, rows readable by column name. The application's own SQL is named."""
        query = compose(sql, self.backend)
        for name in query.lists:
            params[name] = LIST_PARAM[self.backend](params[name])
        cursor = self.connection().execute(query.sql, params)
        self.named_rows(cursor)
        return cursor

    # ------------------------------------------------------------------- notifications

    def notify(self, cur: Cursor) -> None:
        """Tell workers elsewhere that new work commits with this transaction."""
        return None  # SQLite: workers in other processes poll

    def lease_only(self) -> None:
        """This write transaction only hands out leases (a claim): losing it in a crash of
        the database is a lease lost, which the queue already survives (the items run
        again), so its commit need not wait for the disk. A lease is short-lived anyway;
        what waits for the disk is every result and every enqueue."""
        self._local.lease_only = True

    def listen(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call `callback` when another process commits new work; returns a stopper."""
        return lambda: None

    # -------------------------------------------------------------------- the schema

    def migrate(self) -> None:
        """Bring the schema to the newest revision (idempotent)."""
        from alembic import command
        from alembic.config import Config
        from sqlalchemy import create_engine

        cfg = Config()
        cfg.set_main_option("script_location", str(Path(__file__).parent.parent / "migrations"))
        engine = create_engine(self.sqlalchemy_url())
        try:
            with engine.begin() as conn:
                self._migration_lock(conn)
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
        finally:
            engine.dispose()

    def _migration_lock(self, conn: Any) -> None:
        """Keep two processes from migrating at once."""
        return None  # SQLite: the migration's write transaction does

    @abstractmethod
    def sqlalchemy_url(self) -> str: ...

    @abstractmethod
    def schema_ready(self) -> bool: ...

    @abstractmethod
    def describe(self) -> str:
        """Where the data lives, for messages (never with a password)."""
