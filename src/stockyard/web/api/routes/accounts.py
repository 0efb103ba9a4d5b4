"""Sessions, clients, members, API keys and users."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from pydantic import Field

from stockyard.accounts import SESSION_TTL
from stockyard.web.api import schemas as s
from stockyard.web.api.routes import CLIENT, ERRORS, ClientId, Id
from stockyard.web.deps import Caller, Service, address, hashing, limit

router = APIRouter(tags=["accounts"], responses=ERRORS)
Password = Annotated[str, Field(min_length=8, max_length=1000)]


class PasswordChange(s.In):
    current_password: Annotated[str, Field(min_length=1, max_length=1000)]
    new_password: Password


class PasswordSet(s.In):
    email: Annotated[str, Field(min_length=3, max_length=320)]
    password: Password


@router.post("/v1/sessions", status_code=201, response_model=s.Session)
async def login(body: s.Login, request: Request, service: Service) -> s.Session:
    """Log in with email and password; send the token as `Authorization: Bearer …`.

    Failed attempts are throttled per account and per address (429 with Retry-After)."""
    at = address(request)
    limit(request, f"login:{at}")
    token = await hashing(request, service.login, body.email, body.password, at)
    return s.Session(token=token, expires_in=int(SESSION_TTL))


@router.delete("/v1/sessions/current", status_code=204)
def logout(request: Request, who: Caller, service: Service) -> Response:
    header = request.headers.get("authorization", "")
    service.logout(header.removeprefix("Bearer ").strip())
    return Response(status_code=204)


@router.put("/v1/me/password", status_code=204)
async def change_password(
    body: PasswordChange, request: Request, who: Caller, service: Service
) -> Response:
    """Change your own password (a session's user, not an API key): give the current one.
    Ends your other sessions; this one stays."""
    await hashing(request, service.change_password, who, body.current_password, body.new_password)
    return Response(status_code=204)


@router.put("/v1/users/password", status_code=204)
async def set_password(
    body: PasswordSet, request: Request, who: Caller, service: Service
) -> Response:
    """Platform administrators only: set a user's password (the first one of an account a
    client added, or a forgotten one). Ends every session of that user."""
    await hashing(request, service.set_password, who, body.email, body.password)
    return Response(status_code=204)


@router.get("/v1/me", response_model=s.Me)
def me(who: Caller, service: Service) -> s.Me:
    """Who you are and the clients you may see, with your role on each."""
    clients = [s.ClientOut.model_validate(c) for c in service.clients(who)]
    return s.Me(actor=who.actor, platform_admin=who.platform_admin, clients=clients)


@router.post("/v1/clients", status_code=201, response_model=s.ClientOut)
def create_client(body: s.NewClient, who: Caller, service: Service) -> s.ClientOut:
    """Platform administrators only."""
    return s.ClientOut.model_validate(service.create_client(who, body.name))


@router.post("/v1/users", status_code=201, response_model=s.UserOut)
def create_user(body: s.NewUser, who: Caller, service: Service) -> s.UserOut:
    """Platform administrators only."""
    return s.UserOut.model_validate(
        service.create_user(who, body.email, body.password, body.platform_admin)
    )


@router.get(CLIENT + "/members", response_model=list[s.MemberOut])
def list_members(client_id: ClientId, who: Caller, service: Service) -> list[s.MemberOut]:
    return [s.MemberOut.model_validate(m) for m in service.members(who, client_id)]


@router.put(CLIENT + "/members", response_model=s.MemberOut)
def set_member(
    client_id: ClientId, body: s.SetMember, who: Caller, service: Service
) -> s.MemberOut:
    """Give a user a role on this client; an email without an account gets one, with no
    password until a platform administrator sets it. The answer is the same whether the
    account existed. Only a platform administrator may send `password`, for a new account."""
    return s.MemberOut.model_validate(
        service.set_member(who, client_id, body.email, body.role, body.password)
    )


@router.delete(CLIENT + "/members/{user_id}", status_code=204)
def remove_member(client_id: ClientId, user_id: Id, who: Caller, service: Service) -> Response:
    service.remove_member(who, client_id, user_id)
    return Response(status_code=204)


@router.get(CLIENT + "/keys", response_model=list[s.KeyOut])
def list_keys(client_id: ClientId, who: Caller, service: Service) -> list[s.KeyOut]:
    return [s.KeyOut.model_validate(k) for k in service.keys(who, client_id)]


@router.post(CLIENT + "/keys", status_code=201, response_model=s.CreatedKey)
def create_key(client_id: ClientId, body: s.NewKey, who: Caller, service: Service) -> s.CreatedKey:
    """The token is in this answer only; Stockyard keeps a hash of it."""
    k, secret = service.create_key(who, client_id, body.name, body.role)
    return s.CreatedKey(**s.KeyOut.model_validate(k).model_dump(), token=secret)


@router.delete(CLIENT + "/keys/{key_id}", response_model=s.KeyOut)
def revoke_key(client_id: ClientId, key_id: Id, who: Caller, service: Service) -> s.KeyOut:
    """Revoked at once; the key stays listed, with its revocation time."""
    return s.KeyOut.model_validate(service.revoke_key(who, client_id, key_id))


@router.get(CLIENT + "/audit", response_model=s.AuditPage)
def audit(
    client_id: ClientId,
    who: Caller,
    service: Service,
    cursor: Annotated[str | None, Query(pattern=r"^[0-9]{1,16}$")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> s.AuditPage:
    """Who did what, newest first: retries, skips, pauses, and changes to connections,
    keys and members (secrets by name only)."""
    entries = service.audit(who, client_id, int(cursor) if cursor else None, limit)
    return s.AuditPage(
        entries=[s.AuditEntryOut.model_validate(e) for e in entries],
        next_cursor=str(entries[-1].id) if len(entries) == limit else None,
    )
