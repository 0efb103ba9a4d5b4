"""The CLI as an operator meets it: clear one-line errors, exit codes. The session of
commands and the PostgreSQL run are real subprocesses; the rest runs the same commands
in-process (tests/support/cli.py), which checks the same output without an interpreter's
start-up per command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from systems.postgres import Databases

from tests.support.cli import ROOT, invoke, run


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "cli.db"
    assert invoke(path, "init").returncode == 0
    assert (
        invoke(path, "connections", "add", "--kind", "channel", "--description", "Shop").returncode
        == 0
    )
    return path


def test_enqueue_list_skip_and_lanes(db: Path, tmp_path: Path) -> None:
    items = tmp_path / "items.jsonl"
    items.write_text(
        "\n".join(
            json.dumps({"instruction": "update_variant", "connection": 1, "refs": [f"SKU-{n % 2}"]})
            for n in range(10)
        )
    )
    result = run(db, "enqueue", "--file", str(items))
    assert result.returncode == 0 and "queued 10 items" in result.stdout
    listed = run(db, "items", "list", "--sku", "SKU-1")
    assert listed.returncode == 0 and listed.stdout.count("update_variant") == 5
    untouched = run(db, "skip", "--sku", "SKU-1", "--yes")  # failed items only: none
    assert untouched.returncode == 0 and "no items to skip" in untouched.stdout
    refused = run(db, "skip", "--sku", "SKU-1", "--status", "queued")
    assert refused.returncode == 2 and "add --yes" in refused.stderr
    assert "5 update_variant in lane 1 (Shop)" in refused.stderr
    skipped = run(db, "skip", "--sku", "SKU-1", "--status", "queued", "--yes")
    assert "skipped 5 items" in skipped.stdout
    lanes = run(db, "lanes")
    assert "Shop" in lanes.stdout and "ready" in lanes.stdout
    shown = run(db, "items", "show", "2")
    assert "skipped" in shown.stdout and "cli:" in shown.stdout  # the audit names the actor


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("enqueue", "no_such_instruction"), "unknown instruction"),
        (("enqueue", "add_product"), "needs the channel connection"),
        (("enqueue", "send_email", "--payload", "{oops"), "not valid JSON"),
        (("enqueue", "send_email", "--payload", "[1]"), "must be a JSON object"),
        (("enqueue", "--file", "/no/such/file"), "no such file"),
        (("items", "show", "999"), "no queue item 999"),
        (("retry", "999"), "no queue item 999"),
        (("retry",), "say which items"),
        (("lanes", "pause", "77"), "no lane 77"),
        (("items", "list", "--status", "lost"), "unknown status"),
        (("prune", "--older-than", "soon"), "cannot read duration"),
        (("connections", "add", "--kind", "shop", "--description", "x"), "kind must be"),
    ],
)
def test_bad_input_gets_one_clear_line(db: Path, args: tuple[str, ...], message: str) -> None:
    result = invoke(db, *args)
    assert result.returncode == 2
    assert message in result.stderr and result.stderr.count("\n") == 1
    assert "Traceback" not in result.stdout + result.stderr


def test_uninitialised_database_is_a_clear_error(tmp_path: Path) -> None:
    result = invoke(tmp_path / "missing.db", "lanes")
    assert result.returncode == 2 and "stockyard init" in result.stderr
    assert not (tmp_path / "missing.db").exists()


def run_url(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stockyard", "--help" if not args else args[0], *args[1:]],
        env={**os.environ, "STOCKYARD_DATABASE_URL": url, "PYTHONPATH": str(ROOT / "src")},
        text=True,
        capture_output=True,
        timeout=60,
    )


def test_the_cli_on_postgresql(pg_databases: Databases) -> None:
    url = pg_databases.create(migrated=False)
    try:
        assert "not initialised" in run_url(url, "lanes").stderr
        assert run_url(url, "init").returncode == 0
        assert run_url(url, "init").returncode == 0, "init must be idempotent"
        add = run_url(url, "connections", "add", "--kind", "channel", "--description", "Shop")
        assert add.returncode == 0
        assert run_url(url, "enqueue", "add_product", "--connection", "1").returncode == 0
        listed = run_url(url, "items", "list")
        assert listed.returncode == 0 and "add_product" in listed.stdout
        assert "postgres@" in run_url(url, "init").stdout, "says where the data lives"
    finally:
        pg_databases.drop(url)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql://nobody@127.0.0.1:1/none", "cannot connect to postgresql://nobody@"),
        ("postgresql://u:secret@127.0.0.1:1/none", "cannot connect to postgresql://u:***@"),
        ("mysql://localhost/x", "unsupported database 'mysql'"),
        ("postgresql://h/x?prepare=maybe", "prepare must be on or off"),
    ],
)
def test_bad_database_urls_get_one_clear_line(url: str, message: str) -> None:
    result = invoke(url, "lanes")
    assert result.returncode == 2
    assert message in result.stderr
    assert "secret" not in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
