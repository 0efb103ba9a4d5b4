"""POST /v1/clients/{id}/items looks the caller up in the same worker thread as it
enqueues (one hop off the event loop, not two), after FastAPI has validated the body; what
a caller sees must be what every other route answers, in the same order: a body that is
not JSON is refused first (422, before any credentials are read), then the credentials
(401, or 429 for an empty bucket), then the path and the body (422), then the role (403).
Every request spends one token of its caller's bucket, whatever it is refused for."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from stockyard.web.settings import ApiSettings
from tests.support.api_env import ApiEnv

BAD_BODY = {"items": [{"instruction": "", "surprise": 1}]}
GOOD_BODY = {"items": [{"instruction": "sync_order", "payload": {"n": 1}}]}


@pytest.fixture
def env(tmp_path: Path) -> Iterator[ApiEnv]:
    e = ApiEnv(f"sqlite:///{tmp_path}/api.db")
    yield e
    e.close()


def items(env: ApiEnv, client_id: int | str | None = None) -> str:
    return f"/v1/clients/{env.a.id if client_id is None else client_id}/items"


def admin(env: ApiEnv) -> dict[str, str]:
    return env.headers(env.a.tokens["administrator"])


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer sy_key_made_up"}, {"Authorization": "Basic eDp5"}],
    ids=["none", "unknown key", "not bearer"],
)
@pytest.mark.parametrize(
    ("path", "body"),
    [(None, BAD_BODY), ("0", GOOD_BODY), ("0", BAD_BODY), (None, {}), (None, [1])],
    ids=["bad body", "bad client id", "both", "no items", "not an object"],
)
def test_credentials_are_refused_before_the_path_or_body_is_judged(
    env: ApiEnv, headers: dict[str, str], path: str | None, body: object
) -> None:
    r = env.http.post(items(env, path), headers=headers, json=body)
    assert r.status_code == 401, r.text
    assert r.headers["www-authenticate"] == "Bearer"
    assert r.headers["content-type"] == "application/problem+json"


def test_credentials_are_refused_when_the_body_is_missing_or_not_json_typed(env: ApiEnv) -> None:
    r = env.http.post(items(env))
    assert r.status_code == 401, r.text
    r = env.http.post(items(env), content=b"x=1", headers={"content-type": "text/plain"})
    assert r.status_code == 401, r.text


def test_a_body_that_is_not_json_is_refused_before_credentials_are_read(env: ApiEnv) -> None:
    for credentials in ({}, admin(env)):
        headers = {**credentials, "content-type": "application/json"}
        r = env.http.post(items(env), content=b'{"items": [', headers=headers)
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["message"] == "JSON decode error"


def test_an_authenticated_caller_hears_about_the_path_and_the_body(env: ApiEnv) -> None:
    r = env.http.post(items(env, "0"), headers=admin(env), json=BAD_BODY)
    assert r.status_code == 422
    fields = [e["field"] for e in r.json()["errors"]]
    assert fields == ["client_id", "items.0.instruction", "items.0.surprise"]
    r = env.http.post(items(env), headers=admin(env))
    assert r.status_code == 422 and r.json()["errors"] == [
        {"field": "body", "message": "Field required"}
    ]


def test_the_role_is_judged_after_the_body(env: ApiEnv) -> None:
    reader = env.headers(env.a.tokens["read-only"])
    assert env.http.post(items(env), headers=reader, json=BAD_BODY).status_code == 422
    r = env.http.post(items(env), headers=reader, json=GOOD_BODY)
    assert r.status_code == 403 and "administrator" in r.json()["detail"]
    r = env.http.post(items(env, env.b.id), headers=admin(env), json=GOOD_BODY)
    assert r.status_code == 404


def test_a_good_request_enqueues_and_answers_201_with_the_ids(env: ApiEnv) -> None:
    r = env.http.post(items(env), headers=admin(env), json=GOOD_BODY)
    assert r.status_code == 201 and r.headers["content-type"] == "application/json"
    (item_id,) = r.json()["ids"]
    assert r.json() == {"ids": [item_id]}
    detail = env.http.get(f"{items(env)}/{item_id}", headers=admin(env)).json()["item"]
    assert detail["payload"] == {"n": 1} and detail["refs"] == []


def test_every_refused_request_spends_its_callers_token(tmp_path: Path) -> None:
    env = ApiEnv(f"sqlite:///{tmp_path}/api.db", ApiSettings(rate_per_second=0.01, rate_burst=3))
    try:
        codes = [
            env.http.post(items(env), headers=admin(env), json=BAD_BODY).status_code
            for _ in range(4)
        ]
        assert codes == [422, 422, 422, 429]
        assert env.http.post(items(env), headers=admin(env), json=GOOD_BODY).status_code == 429
        # Without credentials, the address's bucket (this test client's) runs out the same way.
        codes = [env.http.post(items(env), json=BAD_BODY).status_code for _ in range(4)]
        assert codes == [401, 401, 401, 429]
    finally:
        env.close()
