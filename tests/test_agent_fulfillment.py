"""Fulfilment through the agent, over HTTP with the real application (docs/remote-workers.md):
the same ERP behind a firewall is the client's warehouse through a SECOND agent
connection, kind `fulfillment`, with its own webhook_secret. Its `fulfill_order` items are
the agent's (`create_fulfillment`, a remote call like `create_order`); the fulfilments'
state and tracking come back as signed pushes to /v1/inbound/{id}/fulfillments, and reach
the channel. Each credential reaches its own connection only. Both backends."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from stockyard.engine import ItemFilter, Request
from stockyard.signing import sign
from tests.support.api_env import ApiEnv, product
from tests.support.queues import UrlMaker

SOURCE_SECRET = "whsec_" + "c291cmNlLXNlY3JldC1zb3VyY2Utc2VjcmV0LTAx"
FULFIL_SECRET = "whsec_" + "ZnVsZmlsLXNlY3JldC1mdWxmaWwtc2VjcmV0LTAy"
_ids = itertools.count(1)


class Agent:
    """Client A's two agent connections and the channel that ships through the second."""

    def __init__(self, env: ApiEnv) -> None:
        svc, root, a = env.service, env.root, env.a
        self.env = env
        self.source = svc.create_connection(
            root, a.id, "source", "agent", "Evolution", {}, {"webhook_secret": SOURCE_SECRET}
        ).id
        self.fulfillment = svc.create_connection(
            root,
            a.id,
            "fulfillment",
            "agent",
            "Evolution dispatch",
            {},
            {"webhook_secret": FULFIL_SECRET},
        ).id
        # The client has another warehouse too: the channel names the agent's.
        svc.update_connection(
            root,
            a.id,
            a.channel,
            settings={"base_url": "http://127.0.0.1:9", "fulfillment": self.fulfillment},
        )

    def post(self, path: str, body: dict[str, Any], secret: str) -> httpx.Response:
        raw = json.dumps(body).encode()
        headers = {"content-type": "application/json", **sign(secret, f"m{next(_ids)}", raw)}
        answer: httpx.Response = self.env.http.post(path, content=raw, headers=headers)
        return answer

    def claim(self, connection: int, secret: str, session: str = "s1") -> list[dict[str, Any]]:
        answer = self.post(f"/v1/agent/{connection}/claim", {"session": session}, secret)
        assert answer.status_code == 200, answer.text
        items: list[dict[str, Any]] = answer.json()["items"]
        return items

    def settle(
        self, connection: int, secret: str, work: dict[str, Any], result: str
    ) -> httpx.Response:
        done = {"id": work["id"], "attempt": work["attempt"], "outcome": "done", "result": result}
        return self.post(
            f"/v1/agent/{connection}/settle", {"session": "s1", "outcomes": [done]}, secret
        )

    def items(self, instruction: str, connection: int) -> list[Any]:
        flt = ItemFilter(self.env.a.id, instructions=(instruction,), connection_id=connection)
        return self.env.queue.list_items(flt, limit=100)


@pytest.fixture
def agent(new_url: UrlMaker) -> Iterator[Agent]:
    env = ApiEnv(new_url())
    yield Agent(env)
    env.close()


def booked(agent: Agent) -> int:
    """The client's order, written into the ERP through the agent's source connection: its
    fulfill_order item, on the agent's fulfillment connection."""
    env = agent.env
    env.queue.enqueue(
        env.a.id, [Request("add_order", {"order_id": env.a.order}, agent.source, ("O-a",))]
    )
    (work,) = agent.claim(agent.source, SOURCE_SECRET)
    assert work["call"] == "create_order"
    assert agent.settle(agent.source, SOURCE_SECRET, work, "SO-77").json()["refused"] == []
    (item,) = agent.items("fulfill_order", agent.fulfillment)
    assert item.status == "queued"
    return int(item.id)


def test_the_agent_creates_the_fulfilment_and_pushes_its_tracking(agent: Agent) -> None:
    env = agent.env
    item = booked(agent)
    # Not for Stockyard's own workers: the agent's fulfillment connection is a remote one.
    env.queue.register_worker("in-process", "test", 0)
    assert item not in {j.id for j in env.queue.claim("in-process", 100)}
    # Not for the source connection's session either.
    assert agent.claim(agent.source, SOURCE_SECRET) == []

    (work,) = agent.claim(agent.fulfillment, FULFIL_SECRET)
    assert (work["id"], work["instruction"], work["call"]) == (item, "fulfill_order",
                                                               "create_fulfillment")  # fmt: skip
    assert work["args"]["order"]["source_code"] == "SO-77"
    assert work["args"]["order"]["remote_id"] == "O-merchant-a"
    assert work["args"]["key"] == f"stockyard-item-{item}"
    answer = agent.settle(agent.fulfillment, FULFIL_SECRET, work, "SO-77")
    assert answer.json() == {"settled": [item], "refused": []}
    (made,) = [
        f for f in env.service.store.fulfillments(env.a.order) if f.service_id == agent.fulfillment
    ]
    assert (made.remote_id, made.state) == ("SO-77", "open")

    # The ERP ships it: the agent pushes its state and tracking, signed with the
    # fulfillment connection's own secret.
    shipped = {
        "remote_id": "SO-77",
        "state": "complete",
        "tracking": {"carrier": "The Courier Guy", "number": "TCG123", "url": ""},
    }
    pushed = agent.post(
        f"/v1/inbound/{agent.fulfillment}/fulfillments", {"fulfillments": [shipped]}, FULFIL_SECRET
    )
    assert pushed.status_code == 202, pushed.text
    (sync,) = agent.items("sync_fulfillment", agent.fulfillment)
    # A non-blocking item of the remote connection: the agent's next claim runs it here,
    # in Stockyard (no remote call), and hands the agent nothing.
    assert sync.id not in {j.id for j in env.queue.claim("in-process", 100)}
    assert agent.claim(agent.fulfillment, FULFIL_SECRET) == []
    assert env.queue.get(env.a.id, sync.id).status == "done"
    (made,) = [
        f for f in env.service.store.fulfillments(env.a.order) if f.service_id == agent.fulfillment
    ]
    assert made.state == "complete"
    assert made.tracking is not None and made.tracking.number == "TCG123"
    assert env.service.store.order(env.a.id, env.a.order).state == "fulfilled"
    (to_shop,) = agent.items("sync_channel_fulfillments", env.a.channel)
    assert to_shop.payload == {"fulfillment_id": made.id}


def test_a_fulfilment_already_made_is_not_asked_again(agent: Agent) -> None:
    """The agent's answer was lost and the item handed out again meanwhile settled: a
    replay finds the fulfilment and asks for nothing."""
    env = agent.env
    item = booked(agent)
    (work,) = agent.claim(agent.fulfillment, FULFIL_SECRET)
    env.service.store.add_fulfillment(env.a.id, env.a.order, agent.fulfillment, "SO-77", "open")
    answer = agent.settle(agent.fulfillment, FULFIL_SECRET, work, "SO-77-other")
    assert answer.json() == {"settled": [item], "refused": []}
    made = [
        f for f in env.service.store.fulfillments(env.a.order) if f.service_id == agent.fulfillment
    ]
    assert [f.remote_id for f in made] == ["SO-77"]


def test_each_credential_reaches_its_own_connection_only(agent: Agent) -> None:
    booked(agent)
    update = {"fulfillments": [{"remote_id": "SO-77", "state": "complete"}]}
    # The source's secret cannot push fulfilments to the fulfillment connection, nor claim
    # its work; and the other way round.
    for path, body, secret in (
        (f"/v1/inbound/{agent.fulfillment}/fulfillments", update, SOURCE_SECRET),
        (f"/v1/agent/{agent.fulfillment}/claim", {"session": "s9"}, SOURCE_SECRET),
        (f"/v1/agent/{agent.source}/claim", {"session": "s9"}, FULFIL_SECRET),
        (f"/v1/inbound/{agent.source}/products", {"products": [product("P", "P-1")]},
         FULFIL_SECRET),
    ):  # fmt: skip
        answer = agent.post(path, body, secret)
        assert answer.status_code == 401, (path, answer.text)
    # A source does not report fulfilments, even signed with its own secret.
    answer = agent.post(f"/v1/inbound/{agent.source}/fulfillments", update, SOURCE_SECRET)
    assert answer.status_code == 422
    assert agent.items("fulfill_order", agent.fulfillment)[0].status == "queued"
    assert not agent.items("sync_fulfillment", agent.fulfillment)


def test_a_fulfillment_agent_connection_needs_its_own_secret(agent: Agent) -> None:
    env = agent.env
    answer = env.http.post(
        f"/v1/clients/{env.a.id}/connections",
        headers=env.headers(env.a.tokens["administrator"]),
        json={"kind": "fulfillment", "connector": "agent", "description": "no secret"},
    )
    assert answer.status_code == 422, answer.text
    assert "webhook_secret" in answer.text
