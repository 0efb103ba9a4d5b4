"""The remote-worker protocol of `stockyard agent` (docs/remote-workers.md): the agent
beside an ERP behind a firewall claims its connection's orders, runs them and settles
them. Every request is a POST whose body is signed with the agent connection's
webhook_secret (Standard Webhooks); a request that is not gets the same 401 whatever the
reason, before its body is looked at. Pushes go through the inbound routes, signed the
same way."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from stockyard.errors import Unauthenticated
from stockyard.service.agent import AgentOutcome
from stockyard.web.api import schemas as s
from stockyard.web.api.routes import ERRORS, Id
from stockyard.web.deps import Service, address, ensure_tokens, state

router = APIRouter(prefix="/v1/agent/{connection_id}", tags=["agent"], responses=ERRORS)


async def signed_agent(connection_id: Id, request: Request, service: Service) -> Any:
    """The agent connection the request is signed for. Refusals spend their address's
    tokens (guessing ids or secrets gets no fresh allowance per id); accepted requests
    the connection's."""
    body = await request.body()
    at, own = f"addr:{address(request)}", f"agent:{connection_id}"
    ensure_tokens(request, at, own)
    limiter = state(request).limiter
    try:
        conn = await run_in_threadpool(
            service.agent_connection, connection_id, body, request.headers
        )
    except Unauthenticated:
        limiter.take(at)
        raise
    limiter.take(own)
    return conn


Agent = Annotated[Any, Depends(signed_agent)]


@router.post("/hello", response_model=s.AgentHelloOut)
async def hello(body: s.AgentHello, agent: Agent, service: Service) -> s.AgentHelloOut:
    """Whether the address and the credential work; changes nothing."""
    return s.AgentHelloOut(**service.agent_hello(agent))


@router.post("/claim", response_model=s.AgentClaimed)
async def claim(body: s.AgentClaim, agent: Agent, service: Service) -> s.AgentClaimed:
    """Up to `limit` of the connection's items for this session, each with the call to
    run: first those the session already holds but for the ones it is `holding` (the
    answer to a claim or a settle was lost), then new ones; waits up to `wait` seconds
    for work and answers as soon as there is some (none: an empty list). 409 once the
    session ended (reaped): start a new one."""
    claimed = await service.agent_claim(
        agent, body.session, body.limit, body.wait, holding=body.holding
    )
    return s.AgentClaimed.model_validate(claimed)


@router.post("/heartbeat", response_model=s.AgentAlive)
async def heartbeat(body: s.AgentHeartbeat, agent: Agent, service: Service) -> s.AgentAlive:
    """Keep this session's items (every lease_seconds / 3 while holding some). 409 once
    the session ended."""
    await run_in_threadpool(service.agent_heartbeat, agent, body.session)
    return s.AgentAlive()


@router.post("/settle", response_model=s.AgentSettled)
async def settle(body: s.AgentSettle, agent: Agent, service: Service) -> s.AgentSettled:
    """Each item's outcome: `done` with the call's result, or `transient` / `permanent`
    with the error. Items this session no longer holds are `refused`: drop them."""
    outcomes = [
        AgentOutcome(
            o.id,
            o.attempt,
            o.outcome,
            result=getattr(o, "result", None),
            error=getattr(o, "error", None),
            retry_after=getattr(o, "retry_after", None),
        )
        for o in body.outcomes
    ]
    settled = await run_in_threadpool(service.agent_settle, agent, body.session, outcomes)
    return s.AgentSettled.model_validate(settled)
