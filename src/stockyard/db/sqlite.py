"""The embedded backend: one SQLite file in WAL mode, one writer at a time."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL

from stockyard.db.base import Database
from stockyard.errors import InvalidInput

_FULL = frozenset({sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR})
# Conditions of the file or of other connections, never of one statement's data.
_AWAY = _FULL | {
    sqlite3.SQLITE_BUSY,
    sqlite3.SQLITE_LOCKED,
    sqlite3.SQLITE_NOMEM,
    sqlite3.SQLITE_CANTOPEN,
    sqlite3.SQLITE_PROTOCOL,
    sqlite3.SQLITE_READONLY,
}
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


@dataclass(frozen=True, slots=True)
class SqliteOptions:
    path: str
    busy_timeout: float = 30.0
    # NORMAL in WAL mode survives any process crash; only a power loss can roll back the
    # last commits (items then run again: at-least-once still holds). FULL trades speed.
    synchronous: str = "NORMAL"


def sqlite_options(parsed: URL) -> SqliteOptions:
    if not parsed.database or parsed.database == ":memory:":
        raise InvalidInput("the SQLite database must be a file: sqlite:///path/to/stockyard.db")
    sync = str(parsed.query.get("synchronous", "NORMAL")).upper()
    if sync not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
        raise InvalidInput(f"synchronous must be OFF, NORMAL, FULL or EXTRA, not {sync!r}")
    return SqliteOptions(path=parsed.database, synchronous=sync)


class SqliteDatabase(Database):
    backend = "sqlite"
    # A writer takes the lock up front instead of failing on a read-to-write upgrade.
    begin_write = "BEGIN IMMEDIATE"

    def __init__(self, url: str, options: SqliteOptions) -> None:
        super().__init__(url)
        self.options = options

    def _create_private(self) -> None:
        """Creates the file readable by its owner only, as SQLite would not (it holds
        password hashes and every client's data). SQLite gives the -wal and -shm files the
        mode of the database file. An existing file keeps the mode its owner chose."""
        path = Path(self.options.path)
        if not path.parent.exists():
            raise InvalidInput(f"folder {path.parent} does not exist")
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))

    def _open(self) -> sqlite3.Connection:
        path = Path(self.options.path)
        self._create_private()
        # isolation_level=None: transactions are exactly the BEGIN ... COMMIT we issue.
        conn = sqlite3.connect(
            path,
            isolation_level=None,
            timeout=self.options.busy_timeout,
            check_same_thread=False,
        )
        conn.row_factory = sqlite3.Row  # by column name, in C
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self.options.synchronous}")
        conn.execute("PRAGMA cache_size=-65536")
        conn.execute("PRAGMA temp_store=MEMORY")
        return conn

    def unavailable(self, exc: BaseException) -> bool:
        code = getattr(exc, "sqlite_errorcode", None)
        return super().unavailable(exc) or (
            isinstance(exc, sqlite3.Error) and code is not None and code & 0xFF in _AWAY
        )

    def storage_full(self, exc: BaseException) -> bool:
        # The primary result code (low byte) covers every SQLITE_IOERR_* variant, e.g. the
        # IOERR_WRITE of a file-size limit and the FULL of a full disk.
        code = getattr(exc, "sqlite_errorcode", None)
        return isinstance(exc, sqlite3.Error) and code is not None and code & 0xFF in _FULL

    # The cursor reads its row_factory at each fetch, so setting it after execute works.
    def named_rows(self, cursor: Any) -> None:
        cursor.row_factory = sqlite3.Row

    def plain_rows(self, cursor: Any) -> None:
        cursor.row_factory = None

    def sqlalchemy_url(self) -> str:
        return f"sqlite:///{self.options.path}"

    def migrate(self) -> None:
        self._create_private()  # before alembic's own connection would create it
        super().migrate()
        with self.write() as cur:  # WAL is a property of the file: set it once here too
            cur.execute("SELECT 1")

    def schema_ready(self) -> bool:
        if not Path(self.options.path).exists():
            return False
        row = (
            self.connection()
            .execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='alembic_version'")
            .fetchone()
        )
        return row is not None

    def describe(self) -> str:
        return f"SQLite file {self.options.path}"
