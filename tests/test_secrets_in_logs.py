"""No secret reaches a log, an item's error, an audit entry or an API answer.

The suite's noisy paths run with known secret values: a failing periodic job (whose log
line once held the repr of the notification settings, SMTP password included), a refused
SMTP login, a failing webhook, failing connector calls that carry auth headers (against a
remote that echoes them back), and API errors on requests that hold secrets. Then every
log record (caplog at DEBUG, and a worker subprocess's stderr), every stored item error,
attempt and audit entry, and every API answer is searched for the values."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from systems.net import free_port

from stockyard.application import Application
from stockyard.catalog.store import CatalogStore
from stockyard.connectors.http import HttpSettings
from stockyard.engine import ItemFilter, Request
from stockyard.engine.handlers import HandlerRegistry
from stockyard.engine.worker import Worker, WorkerSettings
from stockyard.flows.base import Services
from stockyard.flows.handlers import install
from stockyard.notify import runner
from stockyard.notify.settings import NotifySettings
from tests.support.api_env import ApiEnv
from tests.support.notify import Mailbox, Receiver
from tests.support.queues import drain
from tests.support.remote import Remote

SMTP_PASSWORD = "smtp-pw-Q7x9Z2"
BEARER = "bearer-tok-K4m8W1"
API_KEY = "api-key-R3t6Y9"
HMAC = "hmac-key-P2s5V8"
TRYTON_PASSWORD = "tryton-pw-L1n4B7"
LOGIN_PASSWORD = "login-pw-H6j9D3"
SECRETS = (SMTP_PASSWORD, BEARER, API_KEY, HMAC, TRYTON_PASSWORD, LOGIN_PASSWORD)


def leaks(text: str) -> list[str]:
    return [s for s in SECRETS if s in text]


def logged(records: list[logging.LogRecord]) -> str:
    """Every record as a handler would write it: message, arguments, traceback."""
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    return "\n".join(formatter.format(r) for r in records)


def test_settings_objects_do_not_show_their_secrets() -> None:
    notify = NotifySettings(smtp_host="mail.example", smtp_user="ops", smtp_password=SMTP_PASSWORD)
    http = HttpSettings(
        base_url="https://shop.example",
        authorization=f"Bearer {BEARER}",
        auth_headers={"X-Api-Key": API_KEY},
        hmac_secret=HMAC,
    )
    for shown in (repr(notify), str(notify), repr(http), str(http), f"{notify!r} {http}"):
        assert leaks(shown) == [], shown
    assert notify.smtp_password == SMTP_PASSWORD  # still there for the login itself
    assert "smtp_host='mail.example'" in repr(notify)


@pytest.fixture
def refusing_mailbox() -> Iterator[Mailbox]:
    """An SMTP server that refuses every login."""

    def refuse(server: Any, session: Any, envelope: Any, mechanism: str, auth: Any) -> AuthResult:
        return AuthResult(success=False, handled=False)

    box = Mailbox()
    box.controller = Controller(
        box,
        hostname="127.0.0.1",
        port=box.port,
        auth_required=True,
        auth_require_tls=False,
        authenticator=refuse,
    )
    box.start()
    yield box
    box.stop()


@pytest.fixture
def failing_receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.status = 500
    yield r
    r.stop()


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_noisy_paths_leak_no_secret(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    refusing_mailbox: Mailbox,
    failing_receiver: Receiver,
) -> None:
    caplog.set_level(logging.DEBUG)
    api = ApiEnv(f"sqlite:///{tmp_path}/noisy.db")
    remote = Remote()
    answers: list[str] = []
    try:
        h = api.headers(api.a.tokens["administrator"])
        client = api.a.id
        connections = f"/v1/clients/{client}/connections"

        def call(method: str, url: str, **kwargs: Any) -> Any:
            r = api.http.request(method, url, **kwargs)
            answers.append(f"{method} {url} -> {r.status_code} {r.text}")
            return r

        # Connections holding secrets, and API errors on requests that hold some.
        erp = call(
            "POST",
            connections,
            headers=h,
            json={
                "kind": "source",
                "connector": "http",
                "description": "ERP",
                "settings": {"base_url": remote.url},
                "secrets": {
                    "authorization": f"Bearer {BEARER}",
                    "auth_headers": {"X-Api-Key": API_KEY},
                    "hmac_secret": HMAC,
                },
            },
        )
        assert erp.status_code == 201, erp.text
        tryton_settings = {"url": f"http://127.0.0.1:{free_port()}", "database": "shop"}
        tryton = call(
            "POST",
            connections,
            headers=h,
            json={
                "kind": "source",
                "connector": "tryton",
                "description": "Tryton",
                "settings": tryton_settings,
                "secrets": {"password": TRYTON_PASSWORD},
            },
        )
        assert tryton.status_code == 201, tryton.text
        for bad in (
            {"kind": "nope", "secrets": {"password": TRYTON_PASSWORD}},
            {"settings": {"url": "http://x"}, "secrets": {"password": TRYTON_PASSWORD}},
            {"secrets": {"password": [TRYTON_PASSWORD]}},
            {"secrets": {"password": {"a": 1, "b": TRYTON_PASSWORD}}},
            {"secrets": TRYTON_PASSWORD},
            {"settings": {**tryton_settings, "password": TRYTON_PASSWORD}},
        ):
            body: dict[str, Any] = {
                "kind": "source",
                "connector": "tryton",
                "description": "x",
                "settings": tryton_settings,
            } | bad
            assert call("POST", connections, headers=h, json=body).status_code == 422
        patch = {"secrets": {"hmac_secret": HMAC}, "settings": {"base_url": 5}}
        assert call("PATCH", f"{connections}/{api.a.channel}", headers=h, json=patch).status_code
        for login in (
            {"email": "someone@merchant-a.example", "password": LOGIN_PASSWORD},
            {"email": "nobody@example.com", "password": LOGIN_PASSWORD},
            {"password": LOGIN_PASSWORD},
            {"email": 5, "password": LOGIN_PASSWORD},
        ):
            assert call("POST", "/v1/sessions", json=login).status_code in (401, 422, 429)
        call("GET", connections, headers=api.headers(api.a.tokens["read-only"]))

        # Failing connector calls: the remote refuses them and echoes the auth headers.
        remote.state.echo_headers = ["Authorization", "X-Api-Key", "X-Stockyard-Signature"]
        remote.fail(400)
        settings = NotifySettings(
            smtp_host="127.0.0.1",
            smtp_port=refusing_mailbox.port,
            smtp_user="ops",
            smtp_password=SMTP_PASSWORD,
            digest_window=60.0,
            summary_hour=None,
        )
        handlers = HandlerRegistry()
        install(handlers, Services(api.queue, CatalogStore(api.queue.db), api.service.connectors))
        runner.install(handlers, api.service.subscriptions, settings)
        api.queue.enqueue(
            client,
            [
                Request("pull_products", {}, erp.json()["id"]),
                Request("pull_products", {}, tryton.json()["id"]),
            ],
        )
        drain(api.queue, handlers)

        # A refused SMTP login and a failing webhook, about those failures.
        api.service.subscribe(api.root, client, "email", "ops@example.com", [], [])
        api.service.subscribe(api.root, client, "webhook", failing_receiver.url, [], [])
        sent = runner.notify_due(api.queue, api.service.subscriptions, settings, time.time() + 61)
        assert sent
        drain(api.queue, handlers)
        assert failing_receiver.received  # the webhook was tried and failed

        # A failing periodic job: the notification scan, its table gone.
        with api.queue.db.write() as cur:
            cur.execute("DROP TABLE failure_notices")
        worker = Worker(
            api.queue,
            handlers,
            WorkerSettings(poll_interval=0.05),
            Application(
                api.queue.db, queue=api.queue, connectors=api.service.connectors, notify=settings
            ).periodic_jobs(),
        )
        thread = threading.Thread(target=lambda: asyncio.run(worker.run()))
        thread.start()
        try:
            deadline = time.monotonic() + 120
            while "periodic job" not in caplog.text and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            worker.stop()
            thread.join(120)
        assert "periodic job" in caplog.text

        # What was kept: items' errors and attempts, audit entries.
        stored: list[str] = []
        items = api.queue.list_items(ItemFilter(client), limit=1000)
        errors = [i.error or "" for i in items]
        assert any("[redacted]" in e for e in errors), errors
        assert any("login refused" in e for e in errors), errors
        for item in items:
            detail = api.queue.detail(client, item.id)
            stored.append(json.dumps(dataclasses.asdict(detail), default=str))
        trail = api.service.audit(api.root, client, None, 1000)
        assert trail
        stored.append(json.dumps([dataclasses.asdict(e) for e in trail], default=str))
    finally:
        remote.stop()
        api.close()

    assert leaks(logged(caplog.records)) == []
    assert leaks("\n".join(stored)) == []
    assert leaks("\n".join(answers)) == []


@pytest.mark.chaos  # a real worker process
def test_a_worker_process_logs_no_secret(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/worker.db"
    queue = Application.init(url).queue
    with queue.db.write() as cur:
        cur.execute("DROP TABLE failure_notices")  # the notification scan fails each time
    queue.db.close()
    env = os.environ | {
        "STOCKYARD_SMTP_HOST": "127.0.0.1",
        "STOCKYARD_SMTP_PORT": str(free_port()),
        "STOCKYARD_SMTP_USER": "ops",
        "STOCKYARD_SMTP_PASSWORD": SMTP_PASSWORD,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "stockyard", "worker", "--db", url, "--poll", "0.05"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stderr or []), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 120
        while not any("periodic job" in line for line in lines) and time.monotonic() < deadline:
            if process.poll() is not None:
                break
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=120)
        reader.join(30)
    stderr = "".join(lines)
    assert "periodic job" in stderr, stderr
    assert leaks(stderr + out) == []
