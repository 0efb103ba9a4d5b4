"""Findings of the security review that have no better home: what read-only users see of
notification items, and text the database cannot hold faithfully (lone surrogates, NUL)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stockyard.notify import messages
from stockyard.notify.events import Event
from stockyard.notify.settings import NotifySettings
from tests.support.api_env import ApiEnv

TOKEN = "T0KEN-in-the-path-9f2c"


@pytest.fixture
def env(tmp_path: Path) -> Iterator[ApiEnv]:
    e = ApiEnv(f"sqlite:///{tmp_path}/review.db")
    yield e
    e.close()


def test_read_only_users_do_not_see_webhook_urls(env: ApiEnv) -> None:
    """Subscriptions are for administrators; their targets often carry a token. The
    delivery items read-only users can list must not repeat them (payload nor key)."""
    hook, _ = env.service.subscribe(
        env.root, env.a.id, "webhook", f"https://hooks.example/{TOKEN}?t={TOKEN}", [], []
    )
    mail, _ = env.service.subscribe(env.root, env.a.id, "email", "secret-ops@example.com", [], [])
    event = Event(
        "lane.resumed",
        "review-1",
        env.a.id,
        env.a.channel,
        {"item_id": env.a.failed_item, "connection": "Shop", "outcome": "done"},
    )
    requests = messages.deliveries(event, [hook, mail], NotifySettings(), time.time())
    assert {r.instruction for r in requests} == {"send_webhook", "send_email"}
    ids = env.queue.enqueue_internal(env.a.id, requests)
    reader = env.headers(env.a.tokens["read-only"])
    for item_id in ids:
        r = env.http.get(f"/v1/clients/{env.a.id}/items/{item_id}", headers=reader)
        assert r.status_code == 200, r.text
        assert TOKEN not in r.text and "secret-ops" not in r.text
    listed = env.http.get(f"/v1/clients/{env.a.id}/items", headers=reader)
    assert listed.status_code == 200 and TOKEN not in listed.text
