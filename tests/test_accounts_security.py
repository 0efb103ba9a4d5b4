"""Accounts are shared between the clients they are members of: one client's administrator
must neither set nor learn a password (account pre-hijack), nor find out which emails have
an account elsewhere; users change their own password, which ends their other sessions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stockyard.accounts import Principal
from stockyard.errors import Forbidden, NotFound
from tests.support.api_env import PASSWORD, ApiEnv
from tests.support.console import csrf, sign_in

A_KNOWS = "chosen by client A"
B_KNOWS = "chosen by client B"


@pytest.fixture
def env(tmp_path: Path) -> Iterator[ApiEnv]:
    e = ApiEnv(f"sqlite:///{tmp_path}/accounts.db")
    yield e
    e.close()


def put_member(env: ApiEnv, client_id: int, token: str, **body: Any) -> Any:
    return env.http.put(f"/v1/clients/{client_id}/members", headers=env.headers(token), json=body)


def login(env: ApiEnv, email: str, password: str) -> Any:
    return env.http.post("/v1/sessions", json={"email": email, "password": password})


def test_a_client_admin_cannot_pre_hijack_an_account(env: ApiEnv) -> None:
    a_admin, b_admin = env.a.tokens["administrator"], env.b.tokens["administrator"]
    # A creates carol with a password it knows, then removes her.
    r = put_member(
        env, env.a.id, a_admin, email="carol@b.example", role="read-only", password=A_KNOWS
    )
    assert r.status_code == 422 and "password" in r.json()["detail"]
    r = put_member(env, env.a.id, a_admin, email="carol@b.example", role="read-only")
    assert r.status_code == 200
    assert (
        env.http.delete(
            f"/v1/clients/{env.a.id}/members/{r.json()['user_id']}", headers=env.headers(a_admin)
        ).status_code
        == 204
    )
    # B adds carol with its own password: refused, never silently ignored.
    r = put_member(
        env, env.b.id, b_admin, email="carol@b.example", role="administrator", password=B_KNOWS
    )
    assert r.status_code == 422 and "password" in r.json()["detail"]
    r = put_member(env, env.b.id, b_admin, email="carol@b.example", role="administrator")
    assert r.status_code == 200
    # Nobody but carol's platform administrator can give her a password.
    for guess in (A_KNOWS, B_KNOWS, ""):
        assert login(env, "carol@b.example", guess or "x").status_code == 401
    env.service.set_password(env.root, "carol@b.example", "carol's very own")
    token = login(env, "carol@b.example", "carol's very own").json()["token"]
    me = env.http.get("/v1/me", headers=env.headers(token)).json()
    assert [c["name"] for c in me["clients"]] == ["merchant-b"]


def test_the_answer_does_not_tell_whether_an_account_exists(env: ApiEnv) -> None:
    a_admin = env.a.tokens["administrator"]
    elsewhere = "someone@merchant-b.example"  # a member of client B only
    nowhere = "nobody@nowhere.example"
    answers = []
    for email in (elsewhere, nowhere):
        with_password = put_member(
            env, env.a.id, a_admin, email=email, role="operator", password=PASSWORD
        )
        plain = put_member(env, env.a.id, a_admin, email=email, role="operator")
        answers.append(
            (
                with_password.status_code,
                with_password.json()["detail"].replace(email, "EMAIL"),
                plain.status_code,
                sorted(plain.json()),
                plain.json()["email"] == email,
            )
        )
        # Ids are drawn at random: one made now is not told apart from an old one by size.
        assert plain.json()["user_id"] >= 2**32 or email == elsewhere
    assert answers[0] == answers[1]
    # The audit trail A reads is the same either way too.
    audit = env.http.get(f"/v1/clients/{env.a.id}/audit", headers=env.headers(a_admin)).json()
    details = [e["detail"] for e in audit["entries"] if e["action"] == "member.set"]
    assert [sorted(d) for d in details[:2]] == [["email", "role", "user"]] * 2
    # The existing account's password was not touched.
    assert login(env, elsewhere, PASSWORD).status_code == 201


def test_a_platform_admin_sets_a_first_password_but_never_overwrites_one(env: ApiEnv) -> None:
    root = env.admin_session
    r = put_member(
        env, env.a.id, root, email="new@example.com", role="operator", password="long enough pw"
    )
    assert r.status_code == 200
    assert login(env, "new@example.com", "long enough pw").status_code == 201
    r = put_member(
        env,
        env.a.id,
        root,
        email="someone@merchant-b.example",
        role="operator",
        password="long enough pw",
    )
    assert r.status_code == 422 and "keeps its password" in r.json()["detail"]
    assert login(env, "someone@merchant-b.example", PASSWORD).status_code == 201


def test_set_password_is_for_platform_admins_and_ends_every_session(env: ApiEnv) -> None:
    email = "someone@merchant-a.example"
    token = login(env, email, PASSWORD).json()["token"]
    client_admin = env.service.authenticate(env.a.tokens["administrator"])
    with pytest.raises(Forbidden):
        env.service.set_password(client_admin, email, "taken over now")
    with pytest.raises(NotFound):
        env.service.set_password(env.root, "ghost@example.com", "long enough pw")
    r = env.http.put(
        "/v1/users/password",
        headers=env.headers(env.a.tokens["administrator"]),
        json={"email": email, "password": "taken over now"},
    )
    assert r.status_code == 403
    r = env.http.put(
        "/v1/users/password",
        headers=env.headers(env.admin_session),
        json={"email": email, "password": "reset by root"},
    )
    assert r.status_code == 204
    assert env.http.get("/v1/me", headers=env.headers(token)).status_code == 401
    assert login(env, email, "reset by root").status_code == 201


def test_users_change_their_own_password_and_other_sessions_end(env: ApiEnv) -> None:
    email = "someone@merchant-a.example"
    this, other = (login(env, email, PASSWORD).json()["token"] for _ in range(2))
    change = {"current_password": "not it", "new_password": "a new secret"}
    r = env.http.put("/v1/me/password", headers=env.headers(this), json=change)
    assert r.status_code == 422 and "current_password" in r.json()["detail"]
    r = env.http.put(
        "/v1/me/password", headers=env.headers(this), json={**change, "new_password": "short"}
    )
    assert r.status_code == 422
    change["current_password"] = PASSWORD
    r = env.http.put("/v1/me/password", headers=env.headers(this), json=change)
    assert r.status_code == 204, r.text
    assert env.http.get("/v1/me", headers=env.headers(this)).status_code == 200
    assert env.http.get("/v1/me", headers=env.headers(other)).status_code == 401
    assert login(env, email, PASSWORD).status_code == 401
    assert login(env, email, "a new secret").status_code == 201
    # An API key has no password to change.
    r = env.http.put(
        "/v1/me/password", headers=env.headers(env.a.tokens["administrator"]), json=change
    )
    assert r.status_code == 403


def test_the_service_method_the_cli_calls(env: ApiEnv) -> None:
    email = "someone@merchant-a.example"
    token = login(env, email, PASSWORD).json()["token"]
    who = env.service.authenticate(token)
    env.service.change_password(who, PASSWORD, "changed by me")
    assert env.http.get("/v1/me", headers=env.headers(token)).status_code == 200
    with pytest.raises(Forbidden):  # the CLI's operator is no user
        env.service.change_password(Principal("cli:x", platform_admin=True), "a", "b" * 8)


def test_the_console_page_changes_the_password(env: ApiEnv) -> None:
    email = "someone@merchant-a.example"
    other = login(env, email, PASSWORD).json()["token"]
    sign_in(env, email)
    queue = env.http.get(f"/console/clients/{env.a.id}/items").text
    assert 'href="/console/password"' in queue  # reachable from every page's header
    page = env.http.get("/console/password")
    assert page.status_code == 200 and "Change your password" in page.text
    token = csrf(page.text)
    form = {"current_password": PASSWORD, "new_password": "console pw 1", "confirm": "x"}
    r = env.http.post("/console/password", data={**form, "csrf": token})
    assert r.status_code == 422 and "differ" in r.text
    r = env.http.post("/console/password", data={**form, "confirm": form["new_password"]})
    assert r.status_code == 403  # no CSRF token
    form["confirm"] = form["new_password"]
    r = env.http.post("/console/password", data={**form, "csrf": token})
    assert r.status_code == 200 and "Password changed" in r.text
    assert env.http.get("/v1/me", headers=env.headers(other)).status_code == 401
    assert env.http.get("/console/password").status_code == 200  # this session goes on
    assert login(env, email, "console pw 1").status_code == 201


def test_no_password_reaches_the_audit_trail_or_an_answer(env: ApiEnv) -> None:
    root = env.admin_session
    put_member(
        env, env.a.id, root, email="fresh@example.com", role="operator", password="very secret pw"
    )
    token = login(env, "fresh@example.com", "very secret pw").json()["token"]
    env.http.put(
        "/v1/me/password",
        headers=env.headers(token),
        json={"current_password": "very secret pw", "new_password": "even more secret"},
    )
    audit = env.http.get(f"/v1/clients/{env.a.id}/audit", headers=env.headers(root)).text
    stored = env.queue.db.connection().execute("SELECT password_hash FROM users").fetchall()
    for secret in ("very secret pw", "even more secret"):
        assert secret not in audit
        assert all(secret not in row[0] for row in stored)
