"""What guards every console page in the browser, outside the handlers:

- security headers on every answer: a Content-Security-Policy that allows only the
  console's own scripts and styles (no inline script or style, no eval), no framing, no
  MIME sniffing, and no referrer sent to other sites;
- one-time messages ("Item 5 retried."): a handler redirects with `?msg=…` as before, and
  the message leaves the URL for a cookie signed with the session, shown once by the next
  page. A `msg` in a link someone else made is never shown, so no one can put their words
  on a console page;
- a CSRF token for the sign-in form, before any session exists (login CSRF: another site
  signing the browser in to the attacker's account): a random value in a SameSite=Strict
  cookie that the form must repeat, and a browser's cross-site POST refused outright.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stockyard.errors import Forbidden

SESSION_COOKIE = "stockyard_session"  # console.auth.COOKIE, read here without importing it
FLASH_COOKIE = "stockyard_flash"
LOGIN_COOKIE = "stockyard_login"
LOGIN_PATH = "/console/login"
MAX_MESSAGE = 300

CSP = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "object-src 'none'",
    )
)
HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",  # frame-ancestors for browsers that predate it
    "referrer-policy": "same-origin",  # console URLs hold filters (SKUs, error text)
}


class Guard:
    """ASGI middleware of the console application: headers and one-time messages."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        session = request.cookies.get(SESSION_COOKIE)
        secure = request.url.scheme == "https"

        async def guarded(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    headers[name] = value
                if 300 <= message["status"] < 400 and "location" in headers:
                    _flash_from_location(headers, session, secure)
            await send(message)

        await self.app(scope, receive, guarded)


# ---------------------------------------------------------------------------- messages


def _sign(session: str, text: str) -> str:
    key = hashlib.sha256(b"stockyard-flash:" + session.encode()).digest()
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()[:32]


def _flash_from_location(headers: MutableHeaders, session: str | None, secure: bool) -> None:
    parts = urlsplit(headers["location"])
    query = parse_qsl(parts.query, keep_blank_values=True)
    messages = [v for k, v in query if k == "msg"]
    if not messages:
        return
    rest = [(k, v) for k, v in query if k != "msg"]
    headers["location"] = urlunsplit(parts._replace(query=urlencode(rest)))
    if session is None:
        return
    text = messages[-1][:MAX_MESSAGE]
    value = base64.urlsafe_b64encode(text.encode()).decode() + "." + _sign(session, text)
    headers.append("set-cookie", _cookie(FLASH_COOKIE, value, 60, secure))


def take_message(request: Request, session: str) -> str | None:
    """The message a redirect of this console left for this session, if any."""
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw or "." not in raw:
        return None
    encoded, signature = raw.rsplit(".", 1)
    try:
        text = base64.urlsafe_b64decode(encoded.encode()).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    return text if hmac.compare_digest(signature, _sign(session, text)) else None


def forget_message(request: Request, response: Response) -> None:
    if FLASH_COOKIE in request.cookies:
        response.delete_cookie(FLASH_COOKIE, path="/console")


def _cookie(name: str, value: str, max_age: int, secure: bool) -> str:
    # `value` is base64url and hex: nothing in it needs quoting.
    attributes = [f"{name}={value}", "Path=/console", f"Max-Age={max_age}", "HttpOnly"]
    return "; ".join([*attributes, "SameSite=Lax", *(["Secure"] if secure else [])])


# ----------------------------------------------------------------------- sign-in CSRF


def login_token(request: Request) -> str:
    """The token the sign-in form carries: the browser's login cookie, or a new one that
    `keep_login_token` sets on the answer."""
    token = request.cookies.get(LOGIN_COOKIE)
    if not token:
        token = getattr(request.state, "login_token", None) or secrets.token_urlsafe(24)
        request.state.login_token = token
    return token


def keep_login_token(request: Request, response: Response) -> None:
    token = getattr(request.state, "login_token", None)
    if token:
        response.set_cookie(
            LOGIN_COOKIE,
            token,
            max_age=3600,
            httponly=True,
            samesite="strict",  # never sent with another site's POST
            secure=request.url.scheme == "https",
            path=LOGIN_PATH,
        )


def check_login_token(request: Request, given: object) -> None:
    """Refuse a sign-in the console's own form did not send."""
    cookie = request.cookies.get(LOGIN_COOKIE)
    cross_site = request.headers.get("sec-fetch-site") in ("cross-site", "same-site")
    if (
        cross_site
        or not cookie
        or not isinstance(given, str)
        or not hmac.compare_digest(given.encode(), cookie.encode())
    ):
        raise Forbidden("the sign-in form has expired or did not come from this console: reload it")
