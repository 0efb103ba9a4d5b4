"""What every route of the API and the console needs: the service, the caller's address,
the authenticated and rate-limited caller, and the slots for hashing passwords."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, TypeVar

import anyio
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from stockyard.accounts import HASH_SLOTS, Principal
from stockyard.errors import RateLimited, Unauthenticated
from stockyard.metrics import Metrics
from stockyard.service import Stockyard
from stockyard.web.limits import RateLimiter

T = TypeVar("T")
# Sign-ins waiting for a hashing slot beyond this are turned away at once (429): a burst
# then costs a little memory per request, not 64 MiB per hash or a thread each.
MAX_WAITING_LOGINS = 64

bearer = HTTPBearer(auto_error=False, description="an API key (sy_key_…) or a session token")


@dataclass(slots=True)
class AppState:
    service: Stockyard
    limiter: RateLimiter
    metrics: Metrics
    # Password hashing runs in worker threads, this many at a time; requests waiting for
    # a slot wait on the event loop and hold no thread, so other requests keep theirs.
    hashing: anyio.CapacityLimiter = field(
        default_factory=lambda: anyio.CapacityLimiter(HASH_SLOTS)
    )


def state(request: Request) -> AppState:
    found: AppState = request.app.state.stockyard
    return found


def service(request: Request) -> Stockyard:
    return state(request).service


def token(credentials: HTTPAuthorizationCredentials | None) -> str | None:
    return credentials.credentials if credentials is not None else None


def limit(request: Request, key: str) -> None:
    wait = state(request).limiter.take(key)
    if wait is not None:
        raise RateLimited(wait)


# The one per-address key of callers that are not IP addresses (a test client, a Unix
# socket, a forged forwarding header); no address renders as it.
NOT_AN_ADDRESS = "not-an-ip-address"


def address(request: Request) -> str:
    """The key of the caller's per-address buckets: an IPv6 caller by its /64 (one host or
    site is commonly given a whole /64, so its 2^64 addresses would each be a fresh bucket),
    an IPv4 caller (or IPv4-mapped IPv6) as is. Every caller that is not an IP address
    shares one bucket: behind a proxy passing X-Forwarded-For through, the client string is
    whatever the sender wrote, and each made-up value would be a fresh allowance."""
    host = request.client.host if request.client else ""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return NOT_AN_ADDRESS
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


async def hashing(request: Request, work: Callable[..., T], *args: object) -> T:
    """Runs `work` (which hashes a password) off the event loop, at most HASH_SLOTS at a
    time; more than MAX_WAITING_LOGINS waiting are refused with a 429."""
    slots = state(request).hashing
    if slots.statistics().tasks_waiting >= MAX_WAITING_LOGINS:
        raise RateLimited(1.0, "too many sign-ins at once")
    return await anyio.to_thread.run_sync(lambda: work(*args), limiter=slots)


def ensure_tokens(request: Request, *keys: str) -> None:
    """Refuses (429) when any of these buckets is empty, spending nothing: for budgets
    that are spent only once the request's outcome says whose it was."""
    limiter = state(request).limiter
    for key in keys:
        wait = limiter.wait(key)
        if wait is not None:
            raise RateLimited(wait)


def authenticated(request: Request, given: str | None) -> Principal:
    """The principal behind `given` (a bearer token or the console's session cookie),
    rate-limited per API key or user; the API (`caller`) and the console share it.

    Requests without credentials, and every failed authentication, spend the tokens of
    the caller's address, and an address without tokens left is refused before its token
    is looked at: made-up tokens do not each get a fresh bucket.
    """
    at = f"addr:{address(request)}"
    if not given:
        limit(request, at)
        return service(request).authenticate(given)
    ensure_tokens(request, at)
    try:
        who = service(request).authenticate(given)
    except Unauthenticated:
        limit(request, at)
        raise
    limit(request, f"key:{who.key_id}" if who.key_id is not None else f"user:{who.user_id}")
    return who


# FastAPI sends a plain `def` dependency to a worker thread, about 80 µs a hop on a loaded
# 2-core machine: the dependencies below are coroutines, and only the database lookup
# of a caller's token leaves the event loop (the workers' loop must never wait on it).


async def caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """The authenticated API caller (see `authenticated`)."""
    return await anyio.to_thread.run_sync(authenticated, request, token(credentials))


async def the_service(request: Request) -> Stockyard:
    return service(request)


Service = Annotated[Stockyard, Depends(the_service)]
Caller = Annotated[Principal, Depends(caller)]
