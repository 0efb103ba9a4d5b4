"""`stockyard serve` as the README runs it: one process with the API and the workers on
the embedded SQLite file; and the CLI's accounts commands."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from systems.net import free_port

from tests.support.cli import ROOT, invoke


def wait_ready(base: str, process: subprocess.Popen[str], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        try:
            if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError("stockyard serve did not become ready")


@pytest.mark.chaos  # the real `stockyard serve` process, stopped by a signal
def test_serve_demo_runs_api_and_workers_then_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "COLUMNS": "200"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "stockyard",
            "serve",
            "--demo",
            "--port",
            str(port),
            "--db",
            f"sqlite:///{tmp_path}/serve.db",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, process)
        login = httpx.post(
            base + "/v1/sessions", json={"email": "admin@example.com", "password": "stockyard-demo"}
        )
        headers = {"Authorization": f"Bearer {login.json()['token']}"}
        client = httpx.get(base + "/v1/me", headers=headers).json()["clients"][0]["id"]
        # The in-process worker drains the demo until only the blocked trade lane waits.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            lanes = httpx.get(f"{base}/v1/clients/{client}/lanes", headers=headers).json()
            if [lane["state"] for lane in lanes] == ["blocked", "idle", "idle"]:
                break
            time.sleep(0.3)
        assert lanes[0]["description"] == "Trade store (B2B)"
        assert lanes[0]["head_error"] == "price tier 'trade' missing"
        assert "stockyard_workers 1.0" in httpx.get(base + "/metrics").text
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    # Uvicorn shuts down gracefully (workers finish what runs), then re-raises SIGTERM so
    # a supervisor sees why it ended.
    assert process.returncode in (0, -signal.SIGTERM), output
    assert "Application shutdown complete" in output
    assert "demo login: admin@example.com" in output


def test_cli_users_and_keys(tmp_path: Path) -> None:
    db = tmp_path / "cli.db"
    assert invoke(db, "init").returncode == 0
    env_password = {"STOCKYARD_PASSWORD": "long enough pw"}
    added = invoke(
        db,
        "users",
        "add",
        "ops@example.com",
        "--client",
        "default",
        "--role",
        "operator",
        extra_env=env_password,
    )
    assert added.returncode == 0 and "added: ops@example.com, operator of default" in added.stdout
    again = invoke(db, "users", "add", "ops@example.com", extra_env=env_password)
    assert again.returncode == 2 and "exists" in again.stderr
    short = invoke(db, "users", "add", "x@example.com", extra_env={"STOCKYARD_PASSWORD": "short"})
    assert short.returncode == 2 and "at least 8 characters" in short.stderr
    made = invoke(db, "keys", "create", "--name", "ERP push", "--role", "administrator")
    assert made.returncode == 0
    token = made.stdout.strip().splitlines()[-1]
    assert token.startswith("sy_key_")
    listed = invoke(db, "keys", "list")
    assert "ERP push" in listed.stdout and token not in listed.stdout
    bad_role = invoke(db, "keys", "create", "--name", "x", "--role", "owner")
    assert bad_role.returncode == 2 and "role must be one of" in bad_role.stderr
    assert invoke(db, "keys", "revoke", "1").returncode == 0
    missing = invoke(db, "keys", "revoke", "99")
    assert missing.returncode == 2 and "no API key 99" in missing.stderr
