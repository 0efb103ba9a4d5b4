"""A real PostgreSQL server for the tests and benchmarks: Debian's binaries, a throwaway data
folder, 127.0.0.1 on a free port; or the server of STOCKYARD_TEST_POSTGRES_URL when given.

Each test gets its own database, cloned from a migrated template (a copy takes ~20 ms,
a migration ~300 ms).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

from stockyard.db import connect
from systems.net import free_port

TEMPLATE = "stockyard_template"


def pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


class LocalServer:
    """initdb + pg_ctl on a temporary folder. As root, the server runs as `postgres`
    (PostgreSQL refuses to run as root)."""

    def __init__(self, durable: bool = False, settings: tuple[str, ...] = ()) -> None:
        self.durable = durable
        # Extra `name=value` server settings, e.g. a benchmark's
        # shared_preload_libraries=pg_stat_statements.
        self.settings = settings
        bindir = pg_bin()
        if bindir is None:
            raise RuntimeError(
                "PostgreSQL is not installed: run `make test` (it installs Debian's package)"
                " or set STOCKYARD_TEST_POSTGRES_URL"
            )
        self.bin = bindir
        self.root = Path(tempfile.mkdtemp(prefix="stockyard-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self._as: list[str] = []
        if os.geteuid() == 0:
            self._as = ["runuser", "-u", "postgres", "--"]
            user = pwd.getpwnam("postgres")
            os.chown(self.root, user.pw_uid, user.pw_gid)
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run(
            [*self._as, str(self.bin / tool), *args],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def start(self) -> None:
        options = " ".join(
            [
                f"-p {self.port}",
                "-c listen_addresses=127.0.0.1",
                f"-c unix_socket_directories={self.root}",
                "-c max_connections=300",
                "-c shared_buffers=256MB",
                *(f"-c {setting}" for setting in self.settings),
            ]
        )
        if not self.durable:  # tests: durability is not under test, the server's own is
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.root / "log"),
            "-o",
            options,
            "-w",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


class Databases:
    """Fresh databases on one server, each a copy of a migrated template."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self._execute(f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)")
        self._execute(f"CREATE DATABASE {TEMPLATE}")
        db = connect(self.url(TEMPLATE))
        db.migrate()
        db.close()

    def url(self, name: str) -> str:
        return make_url(self.admin_url).set(database=name).render_as_string(hide_password=False)

    def _execute(self, sql: str) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(sql.encode())

    def create(self, migrated: bool = True) -> str:
        name = f"stockyard_test_{secrets.token_hex(4)}"
        template = f" TEMPLATE {TEMPLATE}" if migrated else ""
        self._execute(f"CREATE DATABASE {name}{template}")
        return self.url(name)

    def drop(self, url: str) -> None:
        name = make_url(url).database
        self._execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
