"""The shared backend: PostgreSQL through psycopg 3, for many workers on many machines.

Concurrency rules (docs/queue.md has the reasoning):
- A transaction that changes a lane's items first locks the lane rows, in id order; only
  then does it touch items. Claims take lanes and free items with SKIP LOCKED, so a claim
  never waits and never deadlocks with a writer.
- Item ids come from a sequence, drawn while the lanes are locked: within one lane, ids
  increase in commit order, so the lowest queued id is always the oldest request.
- New work is announced with NOTIFY inside the committing transaction; workers LISTEN.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import psycopg
from psycopg.rows import tuple_row
from sqlalchemy.engine import URL

from stockyard.db.base import CHANNEL, Cursor, Database
from stockyard.errors import InvalidInput, StockyardError

log = logging.getLogger("stockyard.db")


class _Row(tuple[Any, ...]):
    """A row readable by column name as well as by position, like SQLite's `sqlite3.Row`."""

    __slots__ = ()
    _index: ClassVar[dict[str, int]] = {}

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return tuple.__getitem__(self, self._index[key])
        return tuple.__getitem__(self, key)


@functools.lru_cache(maxsize=1024)
def _row_class(names: tuple[str, ...]) -> type[_Row]:
    index = {name: n for n, name in enumerate(names)}
    return type("Row", (_Row,), {"__slots__": (), "_index": index})


def _named_rows(cursor: psycopg.Cursor[Any]) -> Callable[[Sequence[Any]], Any]:
    """psycopg's row factory: one row class per column list, made once and cached."""
    description = cursor.description
    if description is None:
        return tuple
    return _row_class(tuple(column.name for column in description))


class PostgresDatabase(Database):
    backend = "postgresql"
    unique_violation = (psycopg.errors.UniqueViolation,)
    row_locks = True

    def __init__(self, url: str, parsed: URL) -> None:
        super().__init__(url)
        query = dict(parsed.query)
        # pgbouncer in transaction mode before 1.21 cannot keep prepared statements.
        prepare = str(query.pop("prepare", "on")).lower()
        if prepare not in {"on", "off"}:
            raise InvalidInput(f"prepare must be on or off, not {prepare!r}")
        self._prepare_threshold: int | None = 5 if prepare == "on" else None
        clean = parsed.set(drivername="postgresql", query=query)
        self.conninfo = clean.render_as_string(hide_password=False)
        self._where = clean.render_as_string(hide_password=True)
        self._sa_url = clean.set(drivername="postgresql+psycopg").render_as_string(
            hide_password=False
        )

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            return psycopg.connect(
                self.conninfo,
                autocommit=True,  # transactions are exactly the BEGIN ... COMMIT we issue
                row_factory=_named_rows,
                prepare_threshold=self._prepare_threshold,
                application_name="stockyard",
                connect_timeout=10,
            )
        except psycopg.OperationalError as exc:
            reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else "no answer"
            raise DatabaseUnavailable(f"cannot connect to {self._where}: {reason}") from None

    def _open(self) -> psycopg.Connection[Any]:
        conn = self._connect()
        if self._prepare_threshold is not None:
            # Prepared statements save parsing, but a cached generic plan is made once,
            # often while the table is small, and then kept: a claim planned on an empty
            # table seq-scans it forever after. Plan every execution with its values.
            conn.execute("SET plan_cache_mode = force_custom_plan")
        return conn

    def _is_broken(self, conn: Any) -> bool:
        return bool(conn.closed or conn.broken)

    def unavailable(self, exc: BaseException) -> bool:
        # OperationalError: the connection, a restart, a cancel, a deadlock or serialization
        # failure; DataError or IntegrityError would be what a statement carried.
        away = (psycopg.OperationalError, psycopg.InterfaceError, DatabaseUnavailable)
        return super().unavailable(exc) or isinstance(exc, away)

    def storage_full(self, exc: BaseException) -> bool:
        # 53100 disk_full; 58030 io_error (the server could not write its files).
        return isinstance(exc, psycopg.errors.DiskFull | psycopg.errors.IoError)

    # psycopg remakes the row maker of the current result when the factory changes.
    def named_rows(self, cursor: Any) -> None:
        cursor.row_factory = _named_rows

    def plain_rows(self, cursor: Any) -> None:
        cursor.row_factory = tuple_row

    def notify(self, cur: Cursor) -> None:
        if getattr(self._local, "writing", False):
            # Sent with the COMMIT, one round trip for both: a NOTIFY is delivered at
            # commit whenever it was issued in the transaction.
            self._local.notify = True
        else:
            cur.execute(f"NOTIFY {CHANNEL}")

    def _commit(self) -> str:
        # Statements without parameters: psycopg sends them as one simple query. A lease's
        # commit does not wait for the WAL to reach the disk (Database.lease_only), so a
        # claim is not held up behind a big settle's flush.
        lazy = "SET LOCAL synchronous_commit TO OFF; " if self._local.lease_only else ""
        notify = f"NOTIFY {CHANNEL}; " if self._local.notify else ""
        return f"{lazy}{notify}COMMIT"

    def listen(self, callback: Callable[[], None]) -> Callable[[], None]:
        stop = threading.Event()

        def run() -> None:
            while not stop.is_set():
                try:
                    with self._connect() as conn:
                        conn.execute(f"LISTEN {CHANNEL}")
                        callback()  # work committed while we were not listening
                        while not stop.is_set():
                            for _ in conn.notifies(timeout=0.5):
                                callback()
                except (psycopg.Error, DatabaseUnavailable) as exc:
                    log.warning("LISTEN connection lost (%s); reconnecting", exc)
                    stop.wait(0.5)

        thread = threading.Thread(target=run, name="stockyard-listen", daemon=True)
        thread.start()

        def stopper() -> None:
            stop.set()
            thread.join(timeout=2.0)

        return stopper

    def sqlalchemy_url(self) -> str:
        return self._sa_url

    def _migration_lock(self, conn: Any) -> None:
        conn.exec_driver_sql("SELECT pg_advisory_xact_lock(hashtext('stockyard-migrate'))")

    def schema_ready(self) -> bool:
        row = self.connection().execute("SELECT to_regclass('alembic_version')").fetchone()
        return row is not None and row[0] is not None

    def describe(self) -> str:
        return f"PostgreSQL {self._where}"


class DatabaseUnavailable(StockyardError):
    """The database server cannot be reached (yet)."""
