"""Console sign-in: the API's sessions, carried in a cookie (HttpOnly, SameSite=Lax,
Secure over HTTPS), and a CSRF token on every change.

The CSRF token is an HMAC of the session token: a page of ours embeds it in its forms and
htmx sends it as a header; another site can neither read it nor forge it.
"""

from __future__ import annotations

import hashlib
import hmac

from fastapi import Request
from starlette.responses import Response

from stockyard.accounts import SESSION_TTL, Principal
from stockyard.errors import Forbidden, Unauthenticated
from stockyard.service import Stockyard

COOKIE = "stockyard_session"
CSRF_HEADER = "x-csrf-token"


class SignInNeeded(Exception):
    """Send the browser to the sign-in page."""


def csrf_token(session: str) -> str:
    return hmac.new(session.encode(), b"stockyard-csrf", hashlib.sha256).hexdigest()[:32]


def set_session(response: Response, request: Request, token: str) -> None:
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(SESSION_TTL),
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/console",
    )


def principal(request: Request, service: Stockyard) -> tuple[Principal, str]:
    token = request.cookies.get(COOKIE)
    if not token:
        raise SignInNeeded
    try:
        return service.authenticate(token), token
    except Unauthenticated:
        raise SignInNeeded from None


async def check_csrf(request: Request, session: str) -> None:
    given = request.headers.get(CSRF_HEADER)
    if given is None:
        form = await request.form()
        value = form.get("csrf")
        given = value if isinstance(value, str) else None
    if not given or not hmac.compare_digest(given, csrf_token(session)):
        raise Forbidden("the form has expired or did not come from this console: reload the page")
