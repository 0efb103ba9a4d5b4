"""The CLI as a user runs it: `run`, a real subprocess on a SQLite file; `invoke`, the same
command in-process through Typer's CliRunner (no interpreter start-up: most CLI tests use it,
a few keep the real process)."""

from __future__ import annotations

import os
import subprocess
import sys
import traceback
from pathlib import Path

from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]  # the repository


def run(
    db: Path, *args: str, stdin: str = "", extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        **(extra_env or {}),
        "STOCKYARD_DATABASE_URL": f"sqlite:///{db}",
        "COLUMNS": "200",
        "PYTHONPATH": str(ROOT / "src"),
    }
    return subprocess.run(
        [sys.executable, "-m", "stockyard", *args],
        env=env,
        input=stdin,
        text=True,
        capture_output=True,
        timeout=60,
    )


def invoke(
    db: Path | str, *args: str, stdin: str = "", extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`run`'s result from an in-process call. `db` is a SQLite file or a database URL. An
    exception that escapes the CLI is printed to stderr as the interpreter would, so a test
    that asserts "no Traceback" still catches it."""
    from stockyard.cli import cli  # the CLI's import is the cost `run` pays at every call

    url = str(db) if "://" in str(db) else f"sqlite:///{db}"
    env = {**(extra_env or {}), "STOCKYARD_DATABASE_URL": url, "COLUMNS": "200"}
    result = CliRunner().invoke(cli, list(args), input=stdin, env=env)
    stderr = result.stderr
    if result.exc_info and not isinstance(result.exception, SystemExit):
        stderr += "".join(traceback.format_exception(*result.exc_info))
    return subprocess.CompletedProcess(
        ["stockyard", *args], result.exit_code, result.stdout, stderr
    )
