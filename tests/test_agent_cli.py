"""`stockyard agent check | once | reconcile | run`: what an operator sees. Errors are one
line and a non-zero exit, never a traceback or the secret; `run` stops on SIGTERM and
logs to its rotating file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa

from tests.support.agent_env import SECRET, make_erp, pushed, stockyard, write_setup
from tests.support.cli import ROOT, invoke


def test_check_prints_what_it_would_push_and_pushes_nothing(tmp_path: Path) -> None:
    make_erp(f"sqlite:///{tmp_path}/erp.db").dispose()
    with stockyard(tmp_path) as served:
        config = write_setup(
            tmp_path, f"sqlite:///{tmp_path}/erp.db", served.url, served.env.a.source
        )
        result = invoke(tmp_path / "x.db", "agent", "check", "--config", str(config))
        assert result.returncode == 0, result.stderr
        found = json.loads(result.stdout)
        assert found["would_push"] == {"products": 3, "customers": 2}
        assert found["samples"]["products"][0]["code"] == "TEE"
        assert found["outbox"] == {"batches": 0, "records": 0}
        assert found["orders"] == "[orders] find runs"
        assert found["stockyard"].startswith(("Stockyard reachable", "Stockyard answered hello"))
        assert pushed(served.env) == []
        assert SECRET not in result.stdout + result.stderr


def test_once_pushes_and_reconcile_pushes_everything_once_more(tmp_path: Path) -> None:
    make_erp(f"sqlite:///{tmp_path}/erp.db").dispose()
    with stockyard(tmp_path) as served:
        config = write_setup(
            tmp_path, f"sqlite:///{tmp_path}/erp.db", served.url, served.env.a.source
        )
        args = ("--config", str(config))
        first = invoke(tmp_path / "x.db", "agent", "once", *args)
        assert first.returncode == 0, first.stderr
        assert json.loads(first.stdout)["delivered_records"] == 5
        assert (
            json.loads(invoke(tmp_path / "x.db", "agent", "once", *args).stdout)[
                "delivered_records"
            ]
            == 0
        )
        assert invoke(tmp_path / "x.db", "agent", "reconcile", *args).returncode == 0
        again = json.loads(invoke(tmp_path / "x.db", "agent", "once", *args).stdout)
        assert again["delivered_records"] == 5
        assert len(pushed(served.env)) == 6  # 3 + 3: the same products, pushed once more


def test_errors_are_one_line_without_traceback_or_secret(tmp_path: Path) -> None:
    config = write_setup(
        tmp_path, "postgresql+psycopg://sa:hunter2@127.0.0.1:9/erp", "http://127.0.0.1:9", 1
    )
    result = invoke(tmp_path / "x.db", "agent", "check", "--config", str(config))
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "hunter2" not in result.stderr + result.stdout and SECRET not in result.stderr
    assert "cannot reach the ERP database" in result.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text(config.read_text().replace("connection = 1", "connection = 'one'"))
    result = invoke(tmp_path / "x.db", "agent", "once", "--config", str(bad))
    assert result.returncode == 2 and "[stockyard] connection" in result.stderr
    assert "Traceback" not in result.stderr


def test_run_delivers_stops_on_sigterm_and_logs_to_its_file(tmp_path: Path) -> None:
    erp = make_erp(f"sqlite:///{tmp_path}/erp.db")
    with stockyard(tmp_path) as served:
        config = write_setup(
            tmp_path,
            f"sqlite:///{tmp_path}/erp.db",
            served.url,
            served.env.a.source,
            extra="",
        )
        config.write_text(config.read_text().replace("[erp]", 'log_file = "agent.log"\n\n[erp]'))
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        process = subprocess.Popen(
            [sys.executable, "-m", "stockyard", "agent", "run", "--config", str(config)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for(lambda: len(pushed(served.env)) == 3)
            with erp.begin() as conn:
                conn.execute(
                    sa.text("UPDATE PriceList SET Price = 9 WHERE StockID = 4 AND List = 'Retail'")
                )
            wait_for(lambda: len(pushed(served.env)) == 4)  # within a poll
            process.send_signal(signal.SIGTERM)
            assert process.wait(60) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(30)
        log = (tmp_path / "agent.log").read_text()
        assert "agent started" in log and "agent stopped" in log
        assert SECRET not in log
        assert pushed(served.env)[-1]["variants"][0]["price"] == "9"
    erp.dispose()


def wait_for(condition: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")
