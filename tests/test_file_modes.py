"""A SQLite database holds password hashes, sealed secrets and every client's data: its
files (and the -wal and -shm beside it) are readable by their owner only, like the key."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from stockyard.db import connect


@pytest.fixture
def loose_umask() -> Iterator[None]:
    # The usual 022 would let a file created with default modes be world-readable.
    before = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(before)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("loose_umask")
def test_a_new_database_and_its_wal_files_are_private(tmp_path: Path) -> None:
    path = tmp_path / "stockyard.db"
    db = connect(f"sqlite:///{path}")
    try:
        db.migrate()  # alembic opens the file first, through SQLAlchemy
        with db.write() as cur:
            cur.execute("CREATE TABLE scratch (x INTEGER)")
        files = [path, Path(f"{path}-wal"), Path(f"{path}-shm")]
        assert all(f.exists() for f in files)
        assert {f.name: oct(_mode(f)) for f in files} == {f.name: oct(0o600) for f in files}
    finally:
        db.close()


@pytest.mark.usefixtures("loose_umask")
def test_a_database_first_opened_by_a_connection_is_private(tmp_path: Path) -> None:
    path = tmp_path / "fresh.db"
    db = connect(f"sqlite:///{path}")
    try:
        db.connection().execute("CREATE TABLE t (x INTEGER)")
        assert _mode(path) == 0o600
        assert _mode(Path(f"{path}-wal")) == 0o600
    finally:
        db.close()


@pytest.mark.usefixtures("loose_umask")
def test_an_existing_database_keeps_the_mode_its_owner_chose(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    path.touch(mode=0o640)
    path.chmod(0o640)  # a deliberate choice, e.g. a backup group: left alone
    db = connect(f"sqlite:///{path}")
    try:
        db.connection().execute("CREATE TABLE t (x INTEGER)")
        assert _mode(path) == 0o640
    finally:
        db.close()
