"""The console in a hostile browser world: security headers on every
answer, no inline script or style for the CSP to allow, a sign-in form that another site
cannot post (login CSRF), messages that a link cannot inject, and Swagger UI served from
this server, not a CDN."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import stockyard.web.console
from tests.support.api_env import PASSWORD, ApiEnv

TEMPLATES = Path(stockyard.web.console.__file__).parent / "templates"
OPERATOR = "someone@merchant-a.example"


@pytest.fixture
def env(tmp_path: Path) -> Iterator[ApiEnv]:
    e = ApiEnv(f"sqlite:///{tmp_path}/console.db")
    yield e
    e.close()


def login_form_token(env: ApiEnv) -> str:
    form = env.http.get("/console/login")
    assert form.status_code == 200
    found = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert found, "the sign-in form carries no CSRF token"
    return found.group(1)


def sign_in(env: ApiEnv) -> str:
    env.http.cookies.clear()
    token = login_form_token(env)
    r = env.http.post(
        "/console/login",
        data={"email": OPERATOR, "password": PASSWORD, "csrf": token},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    page = env.http.get(f"/console/clients/{env.a.id}/items").text
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
    assert found
    return found.group(1)


def _check_headers(r: Any, where: str) -> None:
    csp = r.headers.get("content-security-policy", "")
    directives = {d.split()[0]: d.split()[1:] for d in csp.split(";") if d.strip()}
    assert directives.get("frame-ancestors") == ["'none'"], (where, csp)
    for kind in ("script-src", "style-src"):
        allowed = directives.get(kind, directives.get("default-src", []))
        assert allowed and "'unsafe-inline'" not in allowed, (where, kind, csp)
        assert "'unsafe-eval'" not in allowed, (where, kind, csp)
    assert r.headers.get("x-content-type-options") == "nosniff", where
    assert r.headers.get("referrer-policy") in ("same-origin", "no-referrer", "strict-origin"), (
        where
    )


def test_every_console_answer_has_the_security_headers(env: ApiEnv) -> None:
    env.http.cookies.clear()
    _check_headers(env.http.get("/console/login"), "login")
    _check_headers(env.http.get("/console/", follow_redirects=False), "redirect")
    _check_headers(env.http.get("/console/static/htmx.min.js"), "static")
    sign_in(env)
    base = f"/console/clients/{env.a.id}"
    for path in (
        "/items",
        f"/items/{env.a.failed_item}",
        "/lanes",
        "/dashboard",
        "/connections",
        "/notifications",
        "/items/987654",
    ):
        r = env.http.get(base + path)
        _check_headers(r, path)
        # What the CSP forbids must not be needed: no inline script, handler or style.
        html = r.text
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), path
        assert not re.search(r"\son[a-z]+\s*=", html), path
        assert not re.search(r"<style|\sstyle\s*=", html), path


def test_templates_hold_no_inline_script_style_or_handler() -> None:
    templates = sorted(TEMPLATES.glob("*.html"))
    assert len(templates) >= 5, f"no console templates found in {TEMPLATES}"
    for template in templates:
        text = template.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), template.name
        assert not re.search(r"\son[a-z]+\s*=", text), template.name
        assert not re.search(r"<style|\sstyle\s*=", text), template.name


def test_the_sign_in_form_cannot_be_posted_from_another_site(env: ApiEnv) -> None:
    credentials = {"email": OPERATOR, "password": PASSWORD}
    # Another site's form: no token, no login cookie (SameSite=Strict keeps it home).
    env.http.cookies.clear()
    r = env.http.post("/console/login", data=credentials, follow_redirects=False)
    assert r.status_code == 403 and "stockyard_session" not in r.headers.get("set-cookie", "")
    # A token copied from the attacker's own visit does not match this browser's cookie.
    stolen = login_form_token(env)
    env.http.cookies.clear()
    login_form_token(env)
    r = env.http.post("/console/login", data=credentials | {"csrf": stolen}, follow_redirects=False)
    assert r.status_code == 403 and "stockyard_session" not in r.headers.get("set-cookie", "")
    # A browser that says the post is cross-site is refused even with a token.
    token = login_form_token(env)
    r = env.http.post(
        "/console/login",
        data=credentials | {"csrf": token},
        headers={"sec-fetch-site": "cross-site"},
        follow_redirects=False,
    )
    assert r.status_code == 403
    # The console's own form signs in; a wrong password shows the form again, usable.
    r = env.http.post("/console/login", data=credentials | {"password": "nope", "csrf": token})
    assert r.status_code == 401 and f'value="{token}"' in r.text
    r = env.http.post("/console/login", data=credentials | {"csrf": token}, follow_redirects=False)
    assert r.status_code == 303 and "stockyard_session" in r.headers["set-cookie"]


def test_a_message_in_a_link_is_never_shown(env: ApiEnv) -> None:
    token = sign_in(env)
    base = f"/console/clients/{env.a.id}"
    lie = "Your session expired: call +1 555 0100 with your password"
    for path in ("/items", "/lanes", f"/items/{env.a.failed_item}"):
        assert "555 0100" not in env.http.get(base + path, params={"msg": lie}).text
    # The console's own messages are shown once, after the action, and gone on reload.
    r = env.http.post(
        f"{base}/items/{env.a.failed_item}/retry",
        data={"csrf": token, "confirmed": "yes"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and "msg=" not in r.headers["location"]
    shown = env.http.get(r.headers["location"])
    assert f"Item {env.a.failed_item} retried." in shown.text
    assert f"Item {env.a.failed_item} retried." not in env.http.get(r.headers["location"]).text


def test_swagger_ui_is_served_from_this_server(env: ApiEnv) -> None:
    page = env.http.get("/docs")
    assert page.status_code == 200
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources and all(s.startswith("/") for s in sources), sources
    for url in sources:
        r = env.http.get(url)
        assert r.status_code == 200 and len(r.content) > 500, url
    assert "cdn." not in page.text
    csp = page.headers.get("content-security-policy", "")
    assert "frame-ancestors 'none'" in csp and "script-src 'self' 'sha256-" in csp
