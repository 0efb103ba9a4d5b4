"""The README's "Using it" commands, run as written, in order, in a fresh folder on a fresh
SQLite file: what a new user types in their first hour must work."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from stockyard.accounts import Principal
from stockyard.application import DEFAULT_CLIENT, Application
from stockyard.engine import ItemFilter

ROOT = Path(__file__).resolve().parent.parent
# Lines not run, and why: the test puts the virtualenv's bin on PATH itself, and `serve`
# runs until stopped (tests/test_serve.py runs it).
SKIPPED = {
    ". .venv/bin/activate": "the test puts the virtualenv's bin on PATH",
    "stockyard serve --port 8001": "runs until stopped; tests/test_serve.py covers it",
}
WORKER = "stockyard worker"
ROOT_CALLER = Principal("test", platform_admin=True)


def readme_commands() -> list[str]:
    """The shell block of "Using it", one command per entry (continuations joined,
    comments dropped)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Using it\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block is not None, "README's Using it has no sh block"
    joined = block.group(1).replace("\\\n", " ")
    commands = []
    for line in joined.splitlines():
        words = shlex.split(line, comments=True)
        if words:
            commands.append(shlex.join(words))
    return commands


def test_the_commands_of_using_it_work_as_written(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(ROOT / "src"),
        "COLUMNS": "200",
        # What a script sets instead of answering the password prompt (the README says so).
        "STOCKYARD_PASSWORD": "correct horse battery staple",
    }
    env.pop("STOCKYARD_DATABASE_URL", None)
    commands = readme_commands()
    assert WORKER in commands and "stockyard init" in commands
    for skipped in SKIPPED:
        assert skipped in commands, f"SKIPPED names a line the README no longer has: {skipped}"
    printed: dict[str, str] = {}
    for command in commands:
        if command in SKIPPED:
            continue
        if command.startswith("export "):
            name, _, value = command.removeprefix("export ").partition("=")
            env[name] = shlex.split(value)[0]
            continue
        if command == WORKER:
            _run_worker(command, env, tmp_path)
            continue
        done = subprocess.run(
            command, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, f"$ {command}\n{done.stdout}{done.stderr}"
        printed[command] = done.stdout

    assert "\n5\tfailed\tsync_product" in printed["stockyard items list --status failed --sku A-1"]
    assert printed["stockyard retry 5"] == "retried 1 item\n"
    assert printed["stockyard skip --sku A-1 --status queued --yes"] == "skipped 1 item\n"
    # The products the ERP sent are in the catalog: a sync_product writes it.
    app = Application.open(f"sqlite:///{tmp_path / 'mine.db'}")
    client = app.service.client_named(ROOT_CALLER, DEFAULT_CLIENT).id
    codes = [p.code for p in app.catalog.list_products(client, "", 10)]
    assert codes == ["CAP", "MUG", "TEE"]
    app.close()


def _run_worker(command: str, env: dict[str, str], folder: Path) -> None:
    """The worker runs until SIGTERM: stopped once the ERP's lane has run what it can
    (it stops at the item the README goes on to retry), then it must drain and exit 0."""
    worker = subprocess.Popen(
        shlex.split(command),
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        app = Application.open(f"sqlite:///{folder / 'mine.db'}")
        client = app.service.client_named(ROOT_CALLER, DEFAULT_CLIENT).id
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if app.queue.count(ItemFilter(client, statuses=("failed",))) >= 1:
                break
            time.sleep(0.2)
        app.close()
        worker.send_signal(signal.SIGTERM)
        output, _ = worker.communicate(timeout=60)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert worker.returncode == 0, output
    assert "worker stopped:" in output, output
