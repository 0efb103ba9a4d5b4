"""Inbound pushes tell an unauthenticated caller nothing (issue 15, point 11): no such
connection, another client's connection and a bad or missing signature get the same
status and body, after the same work (a signature checked against a dummy secret when
the connection is unknown). A sender that proves it holds the secret still learns why a
push is refused (a replay, a clock that is off)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from stockyard.service import inbound
from stockyard.signing import sign
from stockyard.web.settings import ApiSettings
from tests.support.api_env import ApiEnv, product

SECRET = "whsec_" + "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0IQ=="
OTHER = "whsec_b3RoZXItc2VjcmV0LXRoYXQtaXMtbG9uZw=="
UNKNOWN = 987_654


@pytest.fixture
def env(tmp_path: Path) -> Iterator[ApiEnv]:
    e = ApiEnv(f"sqlite:///{tmp_path}/inbound.db")
    e.service.update_connection(e.root, e.a.id, e.a.source, secrets={"webhook_secret": SECRET})
    yield e
    e.close()


BODY = json.dumps({"products": [product("P-1", "SKU-1")]}).encode()
JSON = {"content-type": "application/json"}


def push(env: ApiEnv, connection: int, headers: dict[str, str]) -> Any:
    return env.http.post(f"/v1/inbound/{connection}/products", content=BODY, headers=JSON | headers)


def refusals(env: ApiEnv) -> dict[str, tuple[int, dict[str, str]]]:
    a_admin = env.headers(env.a.tokens["administrator"])
    return {
        "no such connection, signed": (UNKNOWN, sign(OTHER, "m1", BODY)),
        "no such connection, a key": (UNKNOWN, a_admin),
        "no such connection, nothing": (UNKNOWN, {}),
        "another client's connection, A's key": (env.b.source, a_admin),
        "another client's connection, signed": (env.b.source, sign(OTHER, "m2", BODY)),
        "another client's connection, nothing": (env.b.source, {}),
        "bad signature": (env.a.source, sign(OTHER, "m3", BODY)),
        "no signature": (env.a.source, {}),
        "a key instead of a signature": (env.a.source, a_admin),
        "a bogus key": (env.b.source, env.headers("sy_key_not-a-key")),
    }


def test_refusals_cannot_be_told_apart(env: ApiEnv) -> None:
    answers = {}
    for case, (connection, headers) in refusals(env).items():
        r = push(env, connection, headers)
        answers[case] = (r.status_code, r.json(), r.headers.get("www-authenticate"))
    first = next(iter(answers.values()))
    assert first[0] == 401
    different = {case: a for case, a in answers.items() if a != first}
    assert not different, (first, different)
    assert str(UNKNOWN) not in json.dumps(first[1])
    # Nothing was enqueued by any of them.
    refs = [i.refs for i in env.queue.list_items(_all(env, env.a.id), 100)]
    refs += [i.refs for i in env.queue.list_items(_all(env, env.b.id), 100)]
    assert ["P-1", "SKU-1"] not in refs


def _all(env: ApiEnv, client: int) -> Any:
    from stockyard.engine import ItemFilter

    return ItemFilter(client_id=client)


def _counting(monkeypatch: pytest.MonkeyPatch, name: str) -> list[str]:
    calls: list[str] = []
    real: Callable[..., Any] = getattr(inbound, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(name)
        return real(*args, **kwargs)

    monkeypatch.setattr(inbound, name, counted)
    return calls


def test_an_unknown_connection_costs_a_signature_check_too(
    env: ApiEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _counting(monkeypatch, "verify")
    push(env, env.a.source, sign(OTHER, "m1", BODY))
    known = len(calls)
    calls.clear()
    push(env, UNKNOWN, sign(OTHER, "m1", BODY))
    assert known >= 1 and len(calls) == known


def test_a_sender_with_the_secret_is_told_why(env: ApiEnv) -> None:
    r = push(env, env.a.source, sign(SECRET, "m1", BODY))
    assert r.status_code == 202, r.text
    stale = push(env, env.a.source, sign(SECRET, "m2", BODY, now=time.time() - 3600))
    assert stale.status_code == 401 and "timestamp" in stale.json()["detail"]
    # A known sender pushing the wrong topic learns that too.
    wrong = env.http.post(
        f"/v1/inbound/{env.a.source}/orders",
        content=b'{"remote_ids": ["1"]}',
        headers=JSON | sign(SECRET, "m3", b'{"remote_ids": ["1"]}'),
    )
    assert wrong.status_code == 422 and "come from a channel" in wrong.json()["detail"]
    # An administrator of the connection's own client pushing where no secret is set.
    r = push(env, env.b.source, env.headers(env.b.tokens["administrator"]))
    assert r.status_code == 202, r.text


def test_guessing_connections_spends_the_address_budget(tmp_path: Path) -> None:
    """Each connection id has its own push budget; refused pushes also spend the caller's
    address budget, so guessing ids or secrets does not get a fresh allowance per id."""
    env = ApiEnv(f"sqlite:///{tmp_path}/guess.db", ApiSettings(rate_per_second=0.01, rate_burst=5))
    try:
        statuses = [push(env, UNKNOWN + n, {}).status_code for n in range(8)]
        assert statuses[:5] == [401] * 5
        assert set(statuses[5:]) == {429}
    finally:
        env.close()


def test_unsigned_pushes_do_not_starve_the_real_sender(tmp_path: Path) -> None:
    """A connection's push budget is spent only by pushes it authenticated: anyone can
    send unsigned pushes to a connection id, and they must not use up the real sender's
    allowance (they spend their own address's budget instead)."""
    from fastapi.testclient import TestClient

    settings = ApiSettings(rate_per_second=0.01, rate_burst=3)
    env = ApiEnv(f"sqlite:///{tmp_path}/starve.db", settings)
    env.service.update_connection(
        env.root, env.a.id, env.a.source, secrets={"webhook_secret": SECRET}
    )
    stranger = TestClient(env.app, raise_server_exceptions=False, client=("203.0.113.9", 50000))
    sender = TestClient(env.app, raise_server_exceptions=False, client=("198.51.100.7", 50000))
    try:
        url = f"/v1/inbound/{env.a.source}/products"
        refused = [stranger.post(url, content=BODY, headers=JSON).status_code for _ in range(6)]
        assert refused[:3] == [401] * 3 and set(refused[3:]) == {429}
        accepted = [
            sender.post(url, content=BODY, headers=JSON | sign(SECRET, f"m{n}", BODY)).status_code
            for n in range(4)
        ]
        # The sender's own three, then the connection's budget is spent by the sender.
        assert accepted == [202, 202, 202, 429]
    finally:
        stranger.close()
        sender.close()
        env.close()
