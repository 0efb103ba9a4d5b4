"""Findings of the security review that have no better home: what read-only users see of
notification items, and text the database cannot hold faithfully (lone surrogates, NUL)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


# ------------------------------------------------------- text the database cannot hold

# Raw JSON texts: json.dumps would escape them the same way, but spelled out they show what
# a caller sends. (Each body is otherwise valid for its route.)
NUL = "\\u0000"
SURROGATE = "\\ud800"


def _bodies(env: ApiEnv, bad: str) -> dict[str, tuple[str, str, str, str]]:
    """name -> (method, path, JSON body, the field the 422 must name)."""
    c = f"/v1/clients/{env.a.id}"
    item = '{"items": [{"instruction": "sync_order", %s}]}'
    return {
        "payload": (
            "POST",
            c + "/items",
            item % f'"payload": {{"a": "x{bad}"}}',
            "items.0.payload.a",
        ),
        "payload key": (
            "POST",
            c + "/items",
            item % f'"payload": {{"k{bad}": 1}}',
            "items.0.payload.k",
        ),
        "ref": ("POST", c + "/items", item % f'"refs": ["SKU{bad}"]', "items.0.refs.0"),
        "idempotency key": (
            "POST",
            c + "/items",
            item % f'"idempotency_key": "k{bad}"',
            "items.0.idempotency_key",
        ),
        "member email": (
            "PUT",
            c + "/members",
            f'{{"email": "a{bad}@x.example", "role": "operator"}}',
            "email",
        ),
        "key name": ("POST", c + "/keys", f'{{"name": "ci{bad}", "role": "operator"}}', "name"),
        "connection description": (
            "PATCH",
            f"{c}/connections/{env.a.source}",
            f'{{"description": "ERP{bad}"}}',
            "description",
        ),
        "connection settings": (
            "PATCH",
            f"{c}/connections/{env.a.source}",
            f'{{"settings": {{"base_url": "http://127.0.0.1:9/{bad}"}}}}',
            "settings.base_url",
        ),
    }


@pytest.mark.parametrize("bad", [NUL, SURROGATE], ids=["nul", "lone surrogate"])
def test_nul_and_lone_surrogates_are_refused_naming_the_field(new_url: Any, bad: str) -> None:
    env = ApiEnv(new_url())
    try:
        headers = env.headers(env.a.tokens["administrator"]) | {"content-type": "application/json"}
        for name, (method, path, body, field) in _bodies(env, bad).items():
            r = env.http.request(method, path, content=body.encode(), headers=headers)
            assert r.status_code == 422, (name, r.status_code, r.text)
            assert r.json()["errors"][0]["field"].startswith(field), (name, r.text)
        # Nothing of them was stored: no key collides with "k" later.
        ok = '{"items": [{"instruction": "sync_order", "idempotency_key": "k"}]}'
        r = env.http.post(f"/v1/clients/{env.a.id}/items", content=ok.encode(), headers=headers)
        assert r.status_code == 201, r.text
        # A surrogate pair is one character, not a lone surrogate: accepted.
        pair = '{"items": [{"instruction": "sync_order", "payload": {"a": "\\ud83d\\ude00"}}]}'
        r = env.http.post(f"/v1/clients/{env.a.id}/items", content=pair.encode(), headers=headers)
        assert r.status_code == 201, r.text
    finally:
        env.close()
