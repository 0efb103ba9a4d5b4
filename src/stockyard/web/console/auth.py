"""Console sign-in: the API's sessions, carried in a cookie (HttpOnly, SameSite=Lax,
Secure over HTTPS), and a CSRF token on every change.

The CSRF token is an HMAC of the session token: a page of ours embeds it in its forms and
htmx sends it as a header; another site can neither read it nor forge it.

Passwords are checked as the API checks them (`stockyard.web.deps.hashing`): off the event
loop, a few at a time, throttled per account and per address. The page to change one's
own password is here too (`password_router`, mounted by `stockyard.web.console`).
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

from stockyard.accounts import MIN_PASSWORD, SESSION_TTL, Principal
from stockyard.errors import Forbidden, InvalidInput, RateLimited, Unauthenticated
from stockyard.service import Stockyard
from stockyard.web.deps import address, authenticated, hashing
from stockyard.web.deps import service as get_service

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
    """The signed-in user, rate-limited as the API limits its callers
    (`stockyard.web.deps.authenticated`): made-up cookies spend the address's tokens, and
    an address out of them is refused (429) before its cookie is looked at. The lookup
    uses the request's service, which is `service`."""
    token = request.cookies.get(COOKIE)
    try:
        return authenticated(request, token), token or ""
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


async def sign_in(request: Request, email: str, password: str) -> str:
    """A session token for the sign-in form: Unauthenticated, or RateLimited once the
    account or the address has failed too often."""
    service = get_service(request)
    return await hashing(request, service.login, email, password, address(request))


# ------------------------------------------------------------------ your own password

password_router = APIRouter()
_templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


def _password_page(
    request: Request, session: str, email: str, status: int = 200, **values: object
) -> HTMLResponse:
    context: dict[str, object] = {"page": None, "csrf": csrf_token(session), "email": email}
    context |= {"min_length": MIN_PASSWORD, "error": None, "changed": False, **values}
    return _templates.TemplateResponse(request, "password.html", context, status_code=status)


@password_router.get("/password")
def password_form(request: Request) -> HTMLResponse:
    who, session = principal(request, get_service(request))
    return _password_page(request, session, who.actor.removeprefix("user:"))


@password_router.post("/password")
async def change_password(request: Request) -> HTMLResponse:
    service = get_service(request)
    who, session = principal(request, service)
    await check_csrf(request, session)
    form = await request.form()
    current, new, confirm = (
        str(form.get(k, "")) for k in ("current_password", "new_password", "confirm")
    )
    email = who.actor.removeprefix("user:")
    if new != confirm:
        return _password_page(request, session, email, 422, error="The new passwords differ.")
    try:
        await hashing(request, service.change_password, who, current, new)
    except (InvalidInput, Forbidden) as exc:
        return _password_page(request, session, email, 422, error=str(exc))
    except RateLimited as exc:
        return _password_page(request, session, email, 429, error=str(exc))
    return _password_page(request, session, email, changed=True)
