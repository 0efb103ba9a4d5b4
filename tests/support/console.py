"""Signing in to the console as a browser would, and reading its forms' CSRF tokens."""

from __future__ import annotations

import re

from tests.support.api_env import PASSWORD, ApiEnv


def sign_in(env: ApiEnv, email: str = "someone@merchant-a.example") -> str:
    env.http.cookies.clear()
    # The sign-in form carries a token matching a cookie of this browser (login CSRF).
    form = re.search(r'name="csrf" value="([^"]+)"', env.http.get("/console/login").text)
    assert form
    r = env.http.post(
        "/console/login",
        data={"email": email, "password": PASSWORD, "csrf": form.group(1)},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/console" in cookie
    return csrf(env.http.get(r.headers["location"]).text)


def csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert found, html
    return found.group(1)
