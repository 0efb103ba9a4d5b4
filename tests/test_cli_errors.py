"""The CLI as a script reads it: every error one line on stderr with exit 2, `enqueue
--file` errors by line with nothing half-done, clients and passwords from the CLI, tables
one row per line on a pipe. In-process through Typer's CliRunner where it can be, real
subprocesses (stdin not a terminal) for the one-line checks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from systems.net import free_port
from typer.testing import CliRunner, Result

from stockyard.accounts import Accounts
from stockyard.application import DEFAULT_CLIENT, Application
from stockyard.cli import cli
from stockyard.engine import ItemFilter
from stockyard.tenancy import Tenancy

ROOT = Path(__file__).resolve().parent.parent
LONG = "Shopify store of the northern warehouse, trade customers only, EUR prices"


def run(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The real CLI with stdin a pipe (not a terminal) and no COLUMNS: what cron sees."""
    base = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "STOCKYARD_PASSWORD")}
    return subprocess.run(
        [sys.executable, "-m", "stockyard", *args],
        env={**base, "PYTHONPATH": str(ROOT / "src"), **(env or {})},
        cwd=cwd,
        input="",
        text=True,
        capture_output=True,
        timeout=60,
    )


def one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stdout == "", result.stdout
    assert result.stderr.count("\n") == 1 and result.stderr.endswith("\n"), result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr
    return result.stderr


@pytest.mark.parametrize("command", [["init"], ["serve", "--no-workers"]])
def test_a_missing_sqlite_folder_is_one_line(command: list[str], tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/nowhere/x.db"
    port = ["--port", str(free_port())] if command[0] == "serve" else []
    one_line_error(run(*command, *port, "--db", url), f"{tmp_path}/nowhere")
    assert not (tmp_path / "nowhere").exists()


def test_a_relative_sqlite_path_says_how_to_write_an_absolute_one(tmp_path: Path) -> None:
    line = one_line_error(run("init", "--db", "sqlite:///tmp/x.db", cwd=tmp_path))
    assert "relative" in line and "sqlite:////tmp/x.db" in line


@pytest.mark.parametrize("command", [["init"], ["serve", "--no-workers"]])
def test_a_postgresql_server_that_does_not_answer_is_one_line(command: list[str]) -> None:
    url = f"postgresql://nobody:hunter2@127.0.0.1:{free_port()}/none"
    port = ["--port", str(free_port())] if command[0] == "serve" else []
    line = one_line_error(run(*command, *port, "--db", url), "cannot connect")
    assert "hunter2" not in line


@pytest.fixture
def db(tmp_path: Path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path}/cli.db"
    Application.init(url).close()
    yield url


def test_a_long_message_is_not_wrapped(db: str) -> None:
    line = one_line_error(
        run("enqueue", "no_such_instruction", env={"STOCKYARD_DATABASE_URL": db}),
        "unknown instruction",
    )
    assert len(line) > 100  # it lists the known ones: far past 80 columns, on one line


@pytest.mark.parametrize(
    "args",
    [["items", "list", "--bogus"], ["no-such-command"], ["retry", "x"], ["users", "add"]],
)
def test_usage_errors_are_one_line(db: str, args: list[str]) -> None:
    line = one_line_error(run(*args, env={"STOCKYARD_DATABASE_URL": db}), "--help")
    assert line.startswith("error: ")  # a usage error, not reported as a bug


def test_no_password_and_no_terminal_is_one_line(db: str) -> None:
    env = {"STOCKYARD_DATABASE_URL": db}
    one_line_error(run("users", "add", "ops@example.com", env=env), "STOCKYARD_PASSWORD")
    assert Accounts(Application.open(db).db).user_by_email("ops@example.com") is None
    made = invoke(db, "users", "add", "ops@example.com", env={"STOCKYARD_PASSWORD": "long enough"})
    assert made.exit_code == 0, made.stderr
    one_line_error(run("users", "passwd", "ops@example.com", env=env), "STOCKYARD_PASSWORD")


# ----------------------------------------------------------------------------- in-process


def invoke(db: str, *args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env={"STOCKYARD_DATABASE_URL": db, **(env or {})})


def assert_error(result: Result, *needles: str) -> None:
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert result.stderr.count("\n") == 1, result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr


def _count(db: str) -> int:
    queue = Application.open(db).queue
    return queue.count(ItemFilter(Tenancy(queue.db).client_id(DEFAULT_CLIENT)))


@pytest.fixture
def shop(db: str) -> str:
    assert (
        invoke(db, "connections", "add", "--kind", "channel", "--description", LONG).exit_code == 0
    )
    return db


def _lines(n: int, bad_at: int, bad: str) -> str:
    good = json.dumps({"instruction": "update_variant", "connection": 1, "refs": ["A-1"]})
    return "\n".join(bad if i == bad_at else good for i in range(1, n + 1)) + "\n"


@pytest.mark.parametrize(
    ("bad", "needle"),
    [
        ('{"instruction": "update_variant", "connection": 1 "refs": []}', "not valid JSON"),
        ('{"instruction": "no_such_thing", "connection": 1}', "unknown instruction"),
        ('{"instruction": "update_variant", "connection": 99}', "no connection 99"),
        ('{"instruction": "update_variant"}', "needs the channel connection"),
        ('{"instruction": "update_variant", "connection": 1, "colour": "red"}', "unknown fields"),
        ("[1, 2]", "must be an object"),
    ],
)
def test_enqueue_file_errors_name_the_line_and_enqueue_nothing(
    shop: str, tmp_path: Path, bad: str, needle: str
) -> None:
    path = tmp_path / "items.jsonl"
    path.write_text(_lines(9, 7, bad))
    result = invoke(shop, "enqueue", "--file", str(path), "--batch", "2")
    assert_error(result, f"{path} line 7", needle, "nothing was enqueued")
    assert _count(shop) == 0


def test_enqueue_json_array_errors_name_the_line(shop: str, tmp_path: Path) -> None:
    path = tmp_path / "items.json"
    good = '  {"instruction": "update_variant", "connection": 1},'
    path.write_text("[\n" + good + "\n" + good + '\n  {"instruction": "nope"}\n]\n')
    assert_error(invoke(shop, "enqueue", "--file", str(path)), "line 4", "unknown instruction")
    path.write_text("[\n" + good + '\n  {"instruction": "update_variant" "connection": 1}\n]\n')
    assert_error(invoke(shop, "enqueue", "--file", str(path)), "line 3", "not valid JSON")
    assert _count(shop) == 0
    path.write_text("[\n" + good + "\n" + good[:-1] + "\n]\n")
    done = invoke(shop, "enqueue", "--file", str(path), "--batch", "1")
    assert done.exit_code == 0 and "queued 2 items" in done.stdout
    assert _count(shop) == 2


def test_users_add_for_a_missing_client_creates_no_user(db: str) -> None:
    env = {"STOCKYARD_PASSWORD": "long enough pw"}
    result = invoke(db, "users", "add", "ops@example.com", "--client", "nope", env=env)
    assert_error(result, "no client", "nope")
    assert Accounts(Application.open(db).db).user_by_email("ops@example.com") is None


def test_clients_add_and_list(db: str) -> None:
    added = invoke(db, "clients", "add", "Acme Trading")
    assert added.exit_code == 0 and "client 2 added: Acme Trading" in added.stdout
    assert_error(invoke(db, "clients", "add", "Acme Trading"), "exists")
    assert_error(invoke(db, "clients", "add", "  "), "name")
    assert_error(invoke(db, "clients", "add", "Acme\nTrading"), "printable")
    listed = invoke(db, "clients", "list")
    assert listed.stdout.splitlines() == ["id\tname", "1\tdefault", "2\tAcme Trading"]
    env = {"STOCKYARD_PASSWORD": "long enough pw"}
    made = invoke(db, "users", "add", "ops@acme.example", "--client", "Acme Trading", env=env)
    assert made.exit_code == 0, made.stderr


def test_users_passwd_sets_the_password(db: str) -> None:
    first = {"STOCKYARD_PASSWORD": "long enough pw"}
    assert invoke(db, "users", "add", "ops@example.com", env=first).exit_code == 0
    changed = invoke(
        db, "users", "passwd", "ops@example.com", env={"STOCKYARD_PASSWORD": "a new one!"}
    )
    assert changed.exit_code == 0, changed.stderr
    accounts = Accounts(Application.open(db).db)
    assert accounts.login("ops@example.com", "a new one!").startswith("sy_session_")
    missing = invoke(db, "users", "passwd", "who@example.com", env=first)
    assert_error(missing, "no user")


def test_tables_on_a_pipe_are_one_row_per_line(shop: str) -> None:
    for sku in ("A-1", "A-2", "A-3"):
        assert (
            invoke(shop, "enqueue", "update_variant", "--connection", "1", "--ref", sku).exit_code
            == 0
        )
    listed = invoke(shop, "items", "list")
    lines = listed.stdout.splitlines()
    assert lines[0].split("\t")[:3] == ["id", "status", "instruction"]
    assert len(lines) == 4 and all(LONG in line for line in lines[1:])
    conns = invoke(shop, "connections", "list").stdout.splitlines()
    assert len(conns) == 2 and LONG in conns[1]


def test_tables_in_a_wide_terminal_are_drawn(shop: str) -> None:
    assert invoke(shop, "enqueue", "update_variant", "--connection", "1").exit_code == 0
    wide = {"TTY_COMPATIBLE": "1", "COLUMNS": "250"}
    listed = invoke(shop, "items", "list", env=wide)
    assert listed.exit_code == 0
    row = next(line for line in listed.stdout.splitlines() if "update_variant" in line)
    assert LONG in row and "│" in row  # a drawn table, the row not wrapped
