"""Issue 15.1: notification items (send_email, send_webhook) are made by Stockyard only.

A tenant cannot enqueue one (API, CLI, engine), nor have a handler's follow-up create one;
and the senders deliver only to the subscription of the item's own client, at the address
the subscription holds, whatever the payload says."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stockyard.application import Application
from stockyard.engine import ItemFilter, Job, Queue, Request
from stockyard.engine.handlers import Context
from stockyard.errors import InvalidInput, PermanentError
from stockyard.flows.catalog import default_instructions
from stockyard.notify import send
from stockyard.tenancy import Tenancy
from tests.support.api_env import ApiEnv
from tests.support.notify import Env, Mailbox, Receiver
from tests.support.queues import UrlMaker, drain

INTERNAL = ("send_email", "send_webhook")


def _webhook_payload(subscription_id: int, url: str) -> dict[str, Any]:
    return {
        "subscription_id": subscription_id,
        "url": url,
        "message_id": "msg_forged",
        "body": {"type": "forged"},
    }


def _email_payload(to: str) -> dict[str, Any]:
    return {"to": to, "subject": "cheap pills", "text": "buy", "html": "<b>buy</b>"}


def test_the_catalog_marks_the_notification_instructions_internal() -> None:
    assert {i.name for i in default_instructions() if i.internal} == set(INTERNAL)


def test_the_engine_refuses_internal_instructions(queue: Queue, client_id: int) -> None:
    for request in (
        Request("send_webhook", _webhook_payload(1, "http://127.0.0.1:9/")),
        Request("send_email", _email_payload("victim@example.com")),
    ):
        with pytest.raises(InvalidInput, match="internal"):
            queue.enqueue(client_id, [Request("update_order_instruction", {}), request])
    assert queue.count(ItemFilter(client_id)) == 0
    # Stockyard's own path (the notification runner) may.
    [item] = queue.enqueue_internal(client_id, [Request("send_email", _email_payload("x@y.z"))])
    assert queue.get(client_id, item).instruction == "send_email"


@pytest.fixture
def api(tmp_path: Path) -> Iterator[ApiEnv]:
    env = ApiEnv(f"sqlite:///{tmp_path}/api.db")
    yield env
    env.close()


def test_a_client_admin_cannot_enqueue_notifications_over_the_api(api: ApiEnv) -> None:
    h = api.headers(api.a.tokens["administrator"])
    path = f"/v1/clients/{api.a.id}/items"
    before = api.queue.count(ItemFilter(api.a.id))
    forged = [
        {"instruction": "send_webhook", "payload": _webhook_payload(api.b.subscription_id, "x")},
        {"instruction": "send_email", "payload": _email_payload("victim@example.com")},
    ]
    for item in forged:
        r = api.http.post(path, headers=h, json={"items": [item]})
        assert r.status_code == 422, r.text
        assert "internal" in r.json()["detail"]
    assert api.queue.count(ItemFilter(api.a.id)) == before


def test_the_service_refuses_them_for_the_cli_too(api: ApiEnv) -> None:
    """The CLI's `enqueue` goes through Stockyard.enqueue, like the API."""
    with pytest.raises(InvalidInput, match="internal"):
        api.service.enqueue(
            api.root, api.a.id, [Request("send_webhook", _webhook_payload(1, "http://x/"))]
        )


def test_a_follow_up_cannot_create_a_notification(queue: Queue, client_id: int) -> None:
    demo = Tenancy(queue.db).add_connection(client_id, "fulfillment", "demo", "Demo warehouse").id
    then = [{"instruction": "send_email", "payload": _email_payload("victim@example.com")}]
    [item] = queue.enqueue(client_id, [Request("sync_fulfillment", {"then": then}, demo)])
    drain(queue, Application(queue.db, queue=queue).handlers)
    got = queue.get(client_id, item)
    assert got.status == "failed" and got.error_kind == "permanent"
    assert "internal" in (got.error or "")
    assert queue.count(ItemFilter(client_id, instructions=INTERNAL)) == 0


# ------------------------------------------------------------------ the senders themselves


@pytest.fixture
def notify_env(new_url: UrlMaker) -> Iterator[Env]:
    box, receiver = Mailbox().start(), Receiver()
    from tests.support.queues import make_queue

    queue = make_queue(new_url())
    try:
        yield Env(queue, box, receiver)
    finally:
        queue.db.close()
        receiver.stop()
        box.stop()


def _context(env: Env, client_id: int, instruction: str, payload: dict[str, Any]) -> Context:
    import json

    job = Job(1, client_id, instruction, None, None, json.dumps(payload), 1, 0, None, time.time())
    return Context(job, None)


def test_a_webhook_goes_only_to_its_own_clients_subscription(notify_env: Env) -> None:
    env = notify_env
    other = Tenancy(env.queue.db).ensure_client("other")
    elsewhere = Receiver()
    try:
        theirs = env.subs.add(other, "webhook", elsewhere.url, [], [])[0]
        ours = env.subs.add(env.client, "webhook", env.receiver.url, [], [])[0]
        # Another client's subscription: refused, nothing signed or sent.
        ctx = _context(env, env.client, "send_webhook", _webhook_payload(theirs.id, elsewhere.url))
        with pytest.raises(PermanentError):
            send.send_webhook(env.settings, env.subs, ctx)
        # Our subscription with a payload naming another address: sent to ours only.
        ctx = _context(env, env.client, "send_webhook", _webhook_payload(ours.id, elsewhere.url))
        send.send_webhook(env.settings, env.subs, ctx)
        assert elsewhere.received == []
        assert len(env.receiver.received) == 1
    finally:
        elsewhere.stop()


def test_an_email_goes_only_to_its_own_clients_subscriber(notify_env: Env) -> None:
    env = notify_env
    other = Tenancy(env.queue.db).ensure_client("other")
    theirs = env.subs.add(other, "email", "them@other.example", [], [])[0]
    ours = env.subs.add(env.client, "email", "ops@ours.example", [], [])[0]
    # No subscription at all (an open relay): refused.
    ctx = _context(env, env.client, "send_email", _email_payload("victim@example.com"))
    with pytest.raises(PermanentError):
        send.send_email(env.settings, env.subs, ctx)
    # Another client's subscriber: refused.
    payload = {**_email_payload("them@other.example"), "subscription_id": theirs.id}
    with pytest.raises(PermanentError):
        send.send_email(env.settings, env.subs, _context(env, env.client, "send_email", payload))
    # Our subscriber, with a payload naming someone else: only our subscriber gets it.
    payload = {**_email_payload("victim@example.com"), "subscription_id": ours.id}
    send.send_email(env.settings, env.subs, _context(env, env.client, "send_email", payload))
    assert [m["To"] for m in env.mailbox.messages] == ["ops@ours.example"]
