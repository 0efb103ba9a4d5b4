"""The CLI as a user runs it: a subprocess on a SQLite file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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
