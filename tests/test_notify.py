"""Notifications against a real SMTP server (aiosmtpd) and a real HTTP receiver, both on
127.0.0.1: who gets what, with what content; signatures checked by an independent
implementation (the `standardwebhooks` package); grouping; an SMTP server that is down."""

from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
import json
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from standardwebhooks import Webhook
from systems.net import free_port

from stockyard.engine import ItemFilter, Request
from stockyard.engine.handlers import HandlerRegistry
from stockyard.engine.instructions import RetryPolicy
from stockyard.notify import events, runner
from tests.support.notify import Env, Mailbox, Receiver
from tests.support.queues import UrlMaker, drain, fast_instructions, make_queue


@pytest.fixture
def backend() -> str:
    # SQLite only: notifications hold no backend-specific SQL; the engine's and the
    # named queries' tests run on both.
    return "sqlite"


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox().start()
    yield box
    box.stop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


@pytest.fixture
def env(new_url: UrlMaker, mailbox: Mailbox, receiver: Receiver) -> Iterator[Env]:
    queue = make_queue(new_url())
    yield Env(queue, mailbox, receiver)
    queue.db.close()


def test_a_stopped_lane_reaches_the_right_people_once(env: Env) -> None:
    secret = env.subscribe("webhook", env.receiver.url, ["lane.stopped", "lane.resumed"])
    assert secret is not None
    env.subscribe("email", "ops@example.com")
    env.subscribe("email", "Alice@example.com")  # everything ...
    env.subscribe("email", "alice@example.com", ["lane.stopped"], [env.trade])  # ... and this
    env.subscribe("email", "carol@example.com", [], [env.shop])  # another channel only
    env.subscribe("email", "bob@example.com", ["item.failed"])  # another event only
    ids = env.queue.enqueue(
        env.client,
        [Request("update_product", {"product_id": n}, env.trade, (f"SKU-{n}",)) for n in range(4)],
    )
    drain(env.queue, env.handlers)
    assert env.queue.get(env.client, ids[0]).status == "failed"

    sent = env.notify()
    assert len(sent) == 3  # ops, alice (once), the webhook
    assert sorted(m["To"] for m in env.mailbox.messages) == ["alice@example.com", "ops@example.com"]
    message = env.mailbox.to("alice@example.com")[0]
    assert message["Subject"] == "[Stockyard] Trade store stopped: update_product failed (SKU-0)"
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    for expected in (
        f"Queue id:     {ids[0]}",
        "Instruction:  update_product",
        "Description:  Update product on Trade store",
        "Connection:   Trade store",
        "SKU / entity: SKU-0",
        "Error:        price tier <trade> missing",
        "Waiting:      3 items behind it",
        f"https://stockyard.test/console/clients/{env.client}/items/{ids[0]}",
    ):
        assert expected in text, (expected, text)
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "price tier &lt;trade&gt; missing" in html and "<table" in html

    [(headers, body)] = env.receiver.received
    payload = Webhook(secret).verify(body, headers)  # an independent implementation
    assert payload["type"] == "lane.stopped"
    assert payload["data"]["item_id"] == ids[0] and payload["data"]["waiting"] == 3

    # Scanning again, or retrying the item into the same failure, notices nothing new.
    assert env.notify() == []
    env.queue.retry(env.client, [ids[0]], "test")
    drain(env.queue, env.handlers)
    assert env.notify() == []
    assert len(env.mailbox.messages) == 2

    # Skipping the head moves the lane on: a "resumed" notice, to those who want it.
    env.queue.skip(env.client, [ids[0]], "test")
    env.notify()  # "resumed"; then the next head runs, and fails the same way
    env.notify()  # a new stop, a new notice
    subjects = [m["Subject"] for m in env.mailbox.to("ops@example.com")]
    assert "[Stockyard] Trade store is moving again" in subjects
    assert len(env.receiver.received) == 3  # stopped, resumed, stopped again
    types = [Webhook(secret).verify(b, h)["type"] for h, b in env.receiver.received]
    assert sorted(types) == ["lane.resumed", "lane.stopped", "lane.stopped"]
    assert env.mailbox.to("carol@example.com") == [] and env.mailbox.to("bob@example.com") == []


def test_a_flood_of_failures_is_one_digest(env: Env) -> None:
    env.subscribe("email", "bob@example.com", ["item.failed"])
    env.subscribe("email", "ops@example.com", ["daily.summary"])
    env.queue.enqueue(
        env.client,
        [
            Request("sync_fulfillment", {"remote_id": f"F-{n}"}, env.warehouse, (f"F-{n}",))
            for n in range(500)
        ],
    )
    drain(env.queue, env.handlers)
    now = time.time()
    assert env.notify(now) == []  # within the window: held back
    assert len(env.notify(now + 61)) == 1
    [digest] = env.mailbox.messages
    assert digest["To"] == "bob@example.com"
    assert digest["Subject"] == "[Stockyard] 500 x sync_fulfillment failed on Warehouse"
    text = digest.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "500 items failed (sync_fulfillment, Warehouse)" in text
    assert env.notify(now + 200) == []

    # The daily summary, once a day, from the configured hour (07:00 UTC by default).
    env.settings = dataclasses.replace(env.settings, summary_hour=7)
    morning = dt.datetime.now(dt.UTC).replace(hour=8, minute=0).timestamp()
    assert len(env.notify(morning)) == 1 and env.notify(morning + 60) == []
    summary = env.mailbox.to("ops@example.com")[0]
    assert summary["Subject"] == "[Stockyard] Daily summary: 500 items still failed"

    # Pruning keeps what still-failed items were notified of: no second digest.
    events.prune(env.queue.db, 0, time.time() + 120)
    assert env.notify(morning + 400) == []
    env.queue.skip_where(ItemFilter(env.client, statuses=("failed",)), "test")
    assert events.prune(env.queue.db, 0, time.time() + 240) == 500


def test_notifications_never_notify_about_themselves(env: Env) -> None:
    env.subscribe("webhook", env.receiver.url)
    env.subscribe("email", "ops@example.com")
    env.receiver.status = 410  # the receiver has given up on us: a permanent failure
    env.settings = dataclasses.replace(env.settings, smtp_host=None)  # mail cannot go out
    env.handlers = HandlerRegistry()
    env.handlers.register("sync_fulfillment", env.fail_warehouse)
    runner.install(env.handlers, env.subs, env.settings)
    env.queue.enqueue(
        env.client, [Request("sync_fulfillment", {"remote_id": "F-1"}, env.warehouse)]
    )
    drain(env.queue, env.handlers)
    assert len(env.notify(time.time() + 61)) == 2
    failed = env.queue.list_items(ItemFilter(env.client, statuses=("failed",)), 10)
    assert sorted(i.instruction for i in failed) == [
        "send_email",
        "send_webhook",
        "sync_fulfillment",
    ]
    assert "STOCKYARD_SMTP_HOST" in next(
        i.error or "" for i in failed if i.instruction == "send_email"
    )
    assert env.notify(time.time() + 500) == []


def test_smtp_down_retries_until_it_is_back(new_url: UrlMaker, receiver: Receiver) -> None:
    port = free_port()
    patient = RetryPolicy(max_attempts=50, base_delay=0.1, max_delay=0.3, timeout=5.0)
    queue = make_queue(new_url(), fast_instructions().with_retry("send_email", patient))
    box = Mailbox(port)
    env = Env(queue, box, receiver)
    try:
        env.subscribe("email", "ops@example.com")
        [item] = queue.enqueue(
            env.client, [Request("sync_fulfillment", {"remote_id": "F-9"}, env.warehouse)]
        )
        drain(queue, env.handlers)
        [send] = runner.notify_due(queue, env.subs, env.settings, time.time() + 61)
        worker = threading.Thread(target=drain, args=(queue, env.handlers))
        worker.start()
        deadline = time.monotonic() + 120
        while queue.get(env.client, send).attempts < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        retrying = queue.get(env.client, send)
        assert retrying.status in ("queued", "running") and retrying.attempts >= 3
        assert "unreachable" in (queue.detail(env.client, send).attempts[0].error or "")
        box.start()
        worker.join(120)
        assert queue.get(env.client, send).status == "done"
        [message] = box.messages
        assert str(item) in message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    finally:
        box.stop()
        queue.db.close()


def test_subscriptions_over_the_api(tmp_path: Any) -> None:
    from tests.support.api_env import ApiEnv

    api = ApiEnv(f"sqlite:///{tmp_path}/api.db")
    try:
        h = api.headers(api.a.tokens["administrator"])
        url = f"/v1/clients/{api.a.id}/subscriptions"
        r = api.http.post(
            url,
            headers=h,
            json={"kind": "webhook", "target": "https://x.test/h", "events": ["lane.stopped"]},
        )
        assert r.status_code == 201 and r.json()["secret"].startswith("whsec_")
        listed = api.http.get(url, headers=h)
        assert r.json()["secret"] not in listed.text
        bad = api.http.post(url, headers=h, json={"kind": "email", "target": "not an address"})
        assert bad.status_code == 422 and "email address" in bad.json()["detail"]
        bad = api.http.post(
            url,
            headers=h,
            json={"kind": "email", "target": "a@b.test", "events": ["lane.exploded"]},
        )
        assert bad.status_code == 422
        other = api.http.post(
            url,
            headers=h,
            json={"kind": "email", "target": "a@b.test", "connections": [api.b.channel]},
        )
        assert other.status_code == 404
    finally:
        api.close()


def test_webhook_body_is_json(env: Env) -> None:
    secret = env.subscribe("webhook", env.receiver.url, ["item.failed"])
    env.queue.enqueue(
        env.client, [Request("sync_fulfillment", {"remote_id": "F-7"}, env.warehouse, ("F-7",))]
    )
    drain(env.queue, env.handlers)
    env.notify(time.time() + 61)
    [(headers, body)] = env.receiver.received
    assert headers["content-type"] == "application/json"
    data = json.loads(body)["data"]
    assert data["count"] == 1 and data["refs"] == ["F-7"]
    assert Webhook(secret or "").verify(body, headers)["type"] == "item.failed"


def test_a_failing_webhook_error_hides_the_receivers_token(env: Env) -> None:
    """Receivers put their token in the URL; item errors are shown to read-only users,
    who may not see the subscription: the error names its host only."""
    token = "hook-token-Z8c2"
    env.subscribe("webhook", f"{env.receiver.url}/{token}?key={token}", ["item.failed"])
    env.receiver.status = 500
    env.queue.enqueue(
        env.client, [Request("sync_fulfillment", {"remote_id": "F-8"}, env.warehouse, ("F-8",))]
    )
    drain(env.queue, env.handlers)
    env.notify(time.time() + 61)
    assert env.receiver.received  # it was tried, and failed
    [hook] = env.queue.list_items(ItemFilter(env.client, instructions=("send_webhook",)), 10)
    assert hook.error and "127.0.0.1" in hook.error and "500" in hook.error
    assert token not in hook.error


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, as a private CA would issue one."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "smtp.pem", folder / "smtp.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_starttls_and_login(tmp_path: Path, receiver: Receiver) -> None:
    cert, key = self_signed(tmp_path)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)

    def login(server: Any, session: Any, envelope: Any, mechanism: str, auth: Any) -> AuthResult:
        ok = auth.login == b"stockyard" and auth.password == b"s3cret"
        return AuthResult(success=ok, handled=False)

    box = Mailbox()
    box.controller = Controller(
        box,
        hostname="127.0.0.1",
        port=box.port,
        tls_context=tls,
        require_starttls=True,
        auth_required=True,
        authenticator=login,
    )
    box.start()
    queue = make_queue(f"sqlite:///{tmp_path}/tls.db")
    env = Env(queue, box, receiver)
    try:
        good = dataclasses.replace(
            env.settings,
            smtp_security="starttls",
            smtp_ca_file=str(cert),
            smtp_user="stockyard",
            smtp_password="s3cret",
        )
        env.subscribe("email", "ops@example.com")
        payload = {"to": "ops@example.com", "subject": "Hello", "text": "over TLS"}
        for settings, expected in (
            (good, "done"),
            (dataclasses.replace(good, smtp_password="wrong"), "login refused"),
            (dataclasses.replace(good, smtp_ca_file=None), "TLS failed"),
        ):
            handlers = HandlerRegistry()
            runner.install(handlers, env.subs, settings)
            [item] = queue.enqueue_internal(env.client, [Request("send_email", payload)])
            drain(queue, handlers)
            done = queue.get(env.client, item)
            assert (done.status if expected == "done" else done.error or "").count(expected), done
        [message] = box.messages
        assert message.get_content().strip() == "over TLS"
    finally:
        box.stop()
        queue.db.close()
