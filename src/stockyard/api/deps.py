"""What every route needs: the service and the authenticated, rate-limited caller."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from stockyard.accounts import Principal
from stockyard.api.limits import RateLimited, RateLimiter
from stockyard.metrics import Metrics
from stockyard.service import Stockyard

bearer = HTTPBearer(auto_error=False, description="an API key (sy_key_…) or a session token")


@dataclass(frozen=True, slots=True)
class ApiSettings:
    max_body: int = 5 * 1024 * 1024
    rate_per_second: float = 50.0  # per caller; 0 turns the limit off
    rate_burst: int = 200


@dataclass(slots=True)
class AppState:
    service: Stockyard
    limiter: RateLimiter
    metrics: Metrics


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


def caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    address = request.client.host if request.client else "?"
    given = token(credentials)
    # Unauthenticated attempts are limited by address, so guessing keys is slow too.
    limit(request, f"token:{given[:24]}" if given else f"addr:{address}")
    return service(request).authenticate(given)


Service = Annotated[Stockyard, Depends(service)]
Caller = Annotated[Principal, Depends(caller)]
