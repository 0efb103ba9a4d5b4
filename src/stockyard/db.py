"""Database URLs, connections and migrations.

Migrations run through Alembic (on SQLAlchemy); the queue's hot path talks to the DB-API
connection directly with explicit SQL, so every statement is visible and reviewed.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from stockyard.errors import InvalidInput

DEFAULT_URL = "sqlite:///stockyard.db"


@dataclass(frozen=True, slots=True)
class SqliteOptions:
    path: str
    busy_timeout: float = 30.0
    # NORMAL in WAL mode survives any process crash; only a power loss can roll back the
    # last commits (items then run again: at-least-once still holds). FULL trades speed.
    synchronous: str = "NORMAL"


def parse_url(url: str) -> SqliteOptions:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise InvalidInput(f"cannot parse database URL {url!r}") from None
    if parsed.get_backend_name() != "sqlite":
        raise InvalidInput(
            f"unsupported database {parsed.get_backend_name()!r}: use sqlite:///path.db"
        )
    if not parsed.database or parsed.database == ":memory:":
        raise InvalidInput("the SQLite database must be a file: sqlite:///path/to/stockyard.db")
    sync = str(parsed.query.get("synchronous", "NORMAL")).upper()
    if sync not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
        raise InvalidInput(f"synchronous must be OFF, NORMAL, FULL or EXTRA, not {sync!r}")
    return SqliteOptions(path=parsed.database, synchronous=sync)


class Database:
    """One SQLite file; a connection per thread, opened on first use."""

    def __init__(self, url: str = DEFAULT_URL) -> None:
        self.url = url
        self.options = parse_url(url)
        self._local = threading.local()

    def connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._open()
            self._local.conn = conn
        return conn

    def _open(self) -> sqlite3.Connection:
        path = Path(self.options.path)
        if not path.parent.exists():
            raise InvalidInput(f"folder {path.parent} does not exist")
        # isolation_level=None: we issue BEGIN IMMEDIATE ourselves, so a writer takes the
        # lock up front instead of failing on a read-to-write upgrade under contention.
        conn = sqlite3.connect(
            path,
            isolation_level=None,
            timeout=self.options.busy_timeout,
            check_same_thread=False,
        )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self.options.synchronous}")
        conn.execute("PRAGMA cache_size=-65536")
        conn.execute("PRAGMA temp_store=MEMORY")
        return conn

    @contextmanager
    def write(self) -> Iterator[sqlite3.Cursor]:
        """A write transaction: BEGIN IMMEDIATE ... COMMIT, rolled back on any error."""
        conn = self.connection()
        cur = conn.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            yield cur
        except BaseException:
            conn.rollback()
            raise
        conn.commit()

    @contextmanager
    def read(self) -> Iterator[sqlite3.Cursor]:
        """A consistent snapshot for several reads."""
        conn = self.connection()
        cur = conn.cursor()
        cur.execute("BEGIN")
        try:
            yield cur
        finally:
            conn.rollback()

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def migrate(self) -> None:
        """Bring the schema to the newest revision (idempotent)."""
        from alembic import command
        from alembic.config import Config
        from sqlalchemy import create_engine

        cfg = Config()
        cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
        engine = create_engine(f"sqlite:///{self.options.path}")
        try:
            with engine.begin() as conn:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
        finally:
            engine.dispose()
        with self.write() as cur:  # WAL is a property of the file: set it once here too
            cur.execute("SELECT 1")

    def schema_ready(self) -> bool:
        row = (
            self.connection()
            .execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='alembic_version'")
            .fetchone()
        )
        return row is not None
