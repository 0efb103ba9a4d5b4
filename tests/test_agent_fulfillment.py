"""Fulfilment through the agent, over HTTP with the real application (docs/remote-workers.md):
the same ERP behind a firewall is the client's warehouse through a SECOND agent
connection, kind `fulfillment`, with its own webhook_secret. Its `fulfill_order` items are
the agent's (`create_fulfillment`, a remote call like `create_order`); the fulfilments'
state and tracking come back as signed pushes to /v1/inbound/{id}/fulfillments, and reach
the channel. Each credential reaches its own connection only. Both backends."""

from __future__ import annotations

import itertools
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from stockyard.agent.orders import Failure, FulfillmentWriter, Writer
from stockyard.agent.run import Agent as AgentProcess
from stockyard.engine import ItemFilter, Request
from stockyard.outbound import ALLOW_ENV
from stockyard.signing import sign
from tests.support.agent_env import SECRET, Served, make_erp, profile_text, write_setup
from tests.support.api_env import ApiEnv, product
from tests.support.queues import UrlMaker, drain

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

    def made(self) -> list[Any]:
        """The client's order's fulfilments made through the agent's fulfillment connection."""
        store = self.env.service.store
        return [f for f in store.fulfillments(self.env.a.order) if f.service_id == self.fulfillment]

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
    (made,) = agent.made()
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
    (made,) = agent.made()
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
    made = agent.made()
    assert [f.remote_id for f in made] == ["SO-77"]


def due_now(env: ApiEnv, item: int) -> None:
    """As if the item's retry delay had passed."""
    env.queue.db.run("UPDATE items SET run_after = run_after - 86400 WHERE id = :id", id=item)


def test_a_shipment_pushed_before_its_fulfilment_is_recorded_waits_for_it(agent: Agent) -> None:
    """The agent made the fulfilment and read it shipped before its answer reached
    Stockyard (killed before its settle, or a settle that got no answer): the pushed
    shipment waits, tried again, until the answer lands; then it is recorded."""
    env = agent.env
    booked(agent)
    (work,) = agent.claim(agent.fulfillment, FULFIL_SECRET, session="s1")
    shipped = {"remote_id": "SO-77", "state": "complete",
               "tracking": {"carrier": "TCG", "number": "W1", "url": ""}}  # fmt: skip
    path = f"/v1/inbound/{agent.fulfillment}/fulfillments"
    assert agent.post(path, {"fulfillments": [shipped]}, FULFIL_SECRET).status_code == 202
    (sync,) = agent.items("sync_fulfillment", agent.fulfillment)
    assert agent.claim(agent.fulfillment, FULFIL_SECRET, session="s2") == []  # ran here
    waiting = env.queue.get(env.a.id, sync.id)
    assert waiting.status == "queued" and waiting.attempts == 1
    (tried,) = env.queue.detail(env.a.id, sync.id).attempts
    assert "SO-77" in (tried.error or "") and "not recorded yet" in (tried.error or "")
    # The answer lands: the next try records the shipment.
    assert agent.settle(agent.fulfillment, FULFIL_SECRET, work, "SO-77").json()["refused"] == []
    due_now(env, sync.id)
    assert agent.claim(agent.fulfillment, FULFIL_SECRET, session="s2") == []
    assert env.queue.get(env.a.id, sync.id).status == "done"
    (made,) = agent.made()
    assert made.state == "complete" and made.tracking is not None
    assert made.tracking.number == "W1"
    assert env.service.store.order(env.a.id, env.a.order).state == "fulfilled"


def test_a_fulfilment_never_recorded_fails_for_good_naming_it(agent: Agent) -> None:
    env = agent.env
    never = {"remote_id": "SO-NEVER", "state": "complete"}
    path = f"/v1/inbound/{agent.fulfillment}/fulfillments"
    assert agent.post(path, {"fulfillments": [never]}, FULFIL_SECRET).status_code == 202
    (sync,) = agent.items("sync_fulfillment", agent.fulfillment)
    for _ in range(30):
        if env.queue.get(env.a.id, sync.id).status != "queued":
            break
        due_now(env, sync.id)
        agent.claim(agent.fulfillment, FULFIL_SECRET, session="s1")
    failed = env.queue.get(env.a.id, sync.id)
    assert failed.status == "failed" and 1 < failed.attempts < 30
    assert "SO-NEVER" in (env.queue.detail(env.a.id, sync.id).attempts[-1].error or "")


def test_an_unknown_fulfilment_elsewhere_fails_at_once_without_building_its_connector(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only an agent's fulfilment waits for its answer: another service's unknown one fails
    at once, saying so, even where its connector could not be built (its outbound policy
    refuses the address): the flow never calls it."""
    env = ApiEnv(f"sqlite:///{tmp_path}/s.db")
    try:
        update = {"remote_id": "NOPE", "state": "complete"}
        (item,) = env.queue.enqueue(
            env.a.id, [Request("sync_fulfillment", update, env.a.warehouse, ("NOPE",))]
        )
        monkeypatch.delenv(ALLOW_ENV, raising=False)  # this worker may reach no loopback
        drain(env.queue, env.application.handlers)
        failed = env.queue.get(env.a.id, item)
        assert (failed.status, failed.attempts) == ("failed", 1)
        assert "no such fulfillment" in (failed.error or "")
    finally:
        env.close()


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


# ------------------------------------------------------------------- the agent's side

SHIPPING = """
CREATE TABLE Dispatch (OrderNum VARCHAR(20), Status VARCHAR(1), Carrier VARCHAR(40),
                       Waybill VARCHAR(40))
"""
FULFILLMENTS = """
[fulfillments]
query = '''
SELECT i.OrderNum AS remote_id,
       CASE d.Status WHEN 'S' THEN 'complete' WHEN 'X' THEN 'cancelled' ELSE 'open' END AS state,
       d.Carrier AS carrier, d.Waybill AS number
FROM InvNum i LEFT JOIN Dispatch d ON d.OrderNum = i.OrderNum
ORDER BY i.OrderNum
'''
"""


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Served, Agent]]:
    env = ApiEnv(f"sqlite:///{tmp_path}/stockyard.db")
    made = Agent(env)
    s = Served(env)
    s.start()
    yield s, made
    s.stop()
    env.close()


def setup(tmp_path: Path, s: Served, ids: Agent) -> tuple[sa.Engine, Path]:
    erp = make_erp(f"sqlite:///{tmp_path}/erp.db")
    with erp.begin() as db:
        db.execute(sa.text(SHIPPING))
        # An order taken by phone, shipped: no fulfilment of Stockyard's.
        db.execute(sa.text("INSERT INTO InvNum (OrderNum, ExtOrderNum) VALUES ('SO-PHONE', NULL)"))
        db.execute(sa.text("INSERT INTO Dispatch VALUES ('SO-PHONE', 'S', 'DHL', 'PH-1')"))
    (tmp_path / "fulfil-secret").write_text(FULFIL_SECRET)
    config = write_setup(
        tmp_path,
        f"sqlite:///{tmp_path}/erp.db",
        s.url,
        ids.source,
        profile=profile_text() + FULFILLMENTS,
        extra=f'[fulfillment]\nconnection = {ids.fulfillment}\nsecret_file = "fulfil-secret"\n',
    )
    config.write_text(config.read_text().replace(SECRET, SOURCE_SECRET))
    (tmp_path / "secret").write_text(SOURCE_SECRET)
    return erp, config


def test_the_agent_makes_the_fulfilment_and_pushes_the_erps_shipment(
    tmp_path: Path, served: tuple[Served, Agent]
) -> None:
    s, ids = served
    env = s.env
    erp, config = setup(tmp_path, s, ids)
    agent = AgentProcess.from_file(config)
    assert "fulfilments connection" in agent.describe()
    env.queue.enqueue(
        env.a.id, [Request("add_order", {"order_id": env.a.order}, ids.source, ("O-a",))]
    )
    # The order is written, then (next round) its fulfilment made: the order's ERP code.
    agent.cycle()
    agent.work(0)
    code = f"SO{env.a.order}"
    assert env.service.store.order(env.a.id, env.a.order).source_code == code
    (item,) = ids.items("fulfill_order", ids.fulfillment)
    assert env.queue.get(env.a.id, item.id).status == "done"
    (made,) = ids.made()
    assert (made.remote_id, made.state, made.tracking) == (code, "open", None)
    # Read as open, as Stockyard holds it: nothing to push; the phone order is not ours.
    reading, _ = agent.read()
    assert reading.change.records["fulfillments"] == []
    assert reading.read["fulfillments"] == 2
    checked = agent.check()
    assert checked["would_push"]["fulfillments"] == 0
    assert checked["fulfillments_made"] == 1
    assert checked["stockyard_fulfillment"].startswith("Stockyard reachable: connection")

    # Shipped in the ERP: pushed to the fulfillment connection, signed with its secret.
    with erp.begin() as db:
        db.execute(
            sa.text("INSERT INTO Dispatch VALUES (:o, 'S', 'The Courier Guy', 'TCG-9')"),
            {"o": code},
        )
    reading, _ = agent.read()
    assert reading.change.records["fulfillments"] == [
        {"remote_id": code, "state": "complete",
         "tracking": {"carrier": "The Courier Guy", "number": "TCG-9"}}
    ]  # fmt: skip
    delivery = agent.send()
    assert delivery is not None and delivery.records == 1
    (sync,) = ids.items("sync_fulfillment", ids.fulfillment)
    agent.work(0)  # the agent's claim runs it in Stockyard
    assert env.queue.get(env.a.id, sync.id).status == "done"
    (made,) = ids.made()
    assert made.state == "complete" and made.tracking is not None
    assert made.tracking.number == "TCG-9"
    assert env.service.store.order(env.a.id, env.a.order).state == "fulfilled"
    assert ids.items("sync_channel_fulfillments", env.a.channel)
    # Read again: unchanged, nothing more.
    assert agent.read()[0].change.records["fulfillments"] == []
    agent.close()
    erp.dispose()


def test_a_disabled_fulfillment_connection_holds_only_its_own_pushes(
    tmp_path: Path, served: tuple[Served, Agent]
) -> None:
    s, ids = served
    env = s.env
    erp, config = setup(tmp_path, s, ids)
    agent = AgentProcess.from_file(config)
    code = "SO-PHONE"
    agent.state.made(code, "seeded", "{}")  # as if the agent had made it
    env.service.set_connection_enabled(env.root, env.a.id, ids.fulfillment, False)
    agent.read()  # the catalogue and the phone order's shipment
    delivery = agent.send()
    assert delivery is not None and delivery.records == 5 and delivery.disabled
    assert agent.state.head(10, "fulfillment")[0].topic == "fulfillments"  # kept
    assert agent.state.head(10, "source") == []
    env.service.set_connection_enabled(env.root, env.a.id, ids.fulfillment, True)
    agent.line("fulfillment").backoff.reset()  # type: ignore[union-attr]
    delivery = agent.send()
    assert delivery is not None and delivery.records == 1
    assert ids.items("sync_fulfillment", ids.fulfillment)
    agent.close()
    erp.dispose()


def test_the_profiles_create_query_names_the_fulfilment() -> None:
    engine = sa.create_engine("sqlite://")
    made: list[str] = []
    writer = FulfillmentWriter(
        "SELECT 'DN-' || :source_code || '-' || :number", {}, engine, made.append
    )
    order = {"remote_id": "W-1", "number": "1001", "source_code": "SO7", "lines": []}
    assert writer.create_fulfillment(order, "k") == "DN-SO7-1001"
    assert made == ["DN-SO7-1001"]
    nothing = FulfillmentWriter("SELECT 1 WHERE 0 = 1", {}, engine, made.append)
    with pytest.raises(Failure, match="found no fulfilment id"):
        nothing.create_fulfillment(order, "k")
    with pytest.raises(Failure, match="no ERP code"):
        writer.create_fulfillment({**order, "source_code": None}, "k")
    # An agent without [fulfillment] refuses the call.
    with pytest.raises(Failure, match="no \\[fulfillment\\] connection"):
        Writer(None).run("create_fulfillment", {"order": order, "key": "k"})
    engine.dispose()


def test_a_state_database_from_before_keeps_its_pushes_for_the_source(tmp_path: Path) -> None:
    from stockyard.agent.outbox import State

    old = sqlite3.connect(tmp_path / "state.db")
    old.executescript(
        """
        CREATE TABLE outbox (seq INTEGER NOT NULL, part INTEGER NOT NULL DEFAULT 0,
            topic TEXT NOT NULL, message_id TEXT NOT NULL UNIQUE, body TEXT NOT NULL,
            records INTEGER NOT NULL, created_at REAL NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT, PRIMARY KEY (seq, part));
        INSERT INTO outbox (seq, topic, message_id, body, records, created_at)
            VALUES (1, 'products', 'm1', '{"products":[]}', 1, 0);
        CREATE TABLE unsettled (item INTEGER PRIMARY KEY, session TEXT NOT NULL,
            outcome TEXT NOT NULL, tries INTEGER NOT NULL DEFAULT 0, kept_at REAL NOT NULL);
        INSERT INTO unsettled VALUES (4, 's-1', '{"id": 4}', 0, 0);
        """
    )
    old.close()
    state = State(tmp_path / "state.db")
    assert [(b.message_id, b.role) for b in state.head(10, "source")] == [("m1", "source")]
    assert state.head(10, "fulfillment") == []
    assert [u.outcome for u in state.unsettled("source")] == [{"id": 4}]
    assert state.unsettled("fulfillment") == []
    state.close()


# --------------------------------------------- a config and a state that do not agree


def offline_setup(tmp_path: Path, fulfillment: bool = True, profile: str | None = None) -> Path:
    """The agent's files with a [fulfillment] connection (8) and Stockyard nowhere."""
    if not (tmp_path / "erp.db").exists():
        make_erp(f"sqlite:///{tmp_path}/erp.db").dispose()
    (tmp_path / "fulfil-secret").write_text(FULFIL_SECRET)
    extra = '[fulfillment]\nconnection = 8\nsecret_file = "fulfil-secret"\n' if fulfillment else ""
    return write_setup(
        tmp_path,
        f"sqlite:///{tmp_path}/erp.db",
        "http://127.0.0.1:9",
        7,
        profile=profile_text() + FULFILLMENTS if profile is None else profile,
        extra=extra,
    )


def test_fulfilment_pushes_left_without_their_connection_stop_the_start(tmp_path: Path) -> None:
    from stockyard.agent import AgentError
    from stockyard.agent.outbox import Change
    from tests.support.cli import invoke

    config = offline_setup(tmp_path)
    agent = AgentProcess.from_file(config)
    shipped = {"remote_id": "SO1", "state": "complete"}
    agent.state.put(Change({"fulfillments": [shipped], "customers": [{"code": "C"}]}, {}, {}), 100)
    agent.state.keep_outcomes("s-f", [{"id": 9, "outcome": "done"}], "fulfillment")
    agent.close()
    # [fulfillment] removed from the config: the agent neither starts nor spins on them.
    offline_setup(tmp_path, fulfillment=False)
    with pytest.raises(AgentError) as refused:
        AgentProcess.from_file(config)
    said = str(refused.value)
    assert "1 fulfilment push(es)" in said and "1 fulfilment outcome(s)" in said
    assert "restore [fulfillment]" in said and "stockyard agent drop-fulfillments" in said
    assert FULFIL_SECRET not in said
    # `check` shows it as a problem (exit 1) and still says what it would push.
    checked = invoke(tmp_path / "x.db", "agent", "check", "--config", str(config))
    assert checked.returncode == 1, checked.stderr
    found = json.loads(checked.stdout)
    assert any("drop-fulfillments" in p for p in found["problems"])
    assert found["would_push"]["products"] == 3
    # Dropped on purpose: the source's pushes stay; the agent starts.
    dropped = invoke(tmp_path / "x.db", "agent", "drop-fulfillments", "--config", str(config))
    assert dropped.returncode == 0, dropped.stderr
    assert "dropped 1 fulfilment push(es) (1 record(s)) and 1 fulfilment outcome(s)" in (
        dropped.stdout
    )
    agent = AgentProcess.from_file(config)
    assert [b.topic for b in agent.state.head(10, "source")] == ["customers"]
    assert agent.state.pending_roles() == ["source"]
    assert agent.state.unsettled("fulfillment") == []
    agent.close()


def test_drop_fulfillments_refuses_while_the_connection_is_configured(tmp_path: Path) -> None:
    from stockyard.agent.outbox import Change
    from tests.support.cli import invoke

    config = offline_setup(tmp_path)
    agent = AgentProcess.from_file(config)
    agent.state.put(Change({"fulfillments": [{"remote_id": "SO1", "state": "open"}]}, {}, {}), 9)
    agent.close()
    dropped = invoke(tmp_path / "x.db", "agent", "drop-fulfillments", "--config", str(config))
    assert dropped.returncode != 0
    assert "[fulfillment]" in dropped.stdout + dropped.stderr
    agent = AgentProcess.from_file(config)
    assert agent.state.pending_roles() == ["fulfillment"]
    agent.close()


def test_pushes_for_a_connection_gone_meanwhile_make_no_hot_loop(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import logging
    import math

    from stockyard.agent import AgentError
    from stockyard.agent.outbox import Change

    config = offline_setup(tmp_path, fulfillment=False)
    agent = AgentProcess.from_file(config)
    # Fulfilment pushes appear after the start (another state file swapped in, say).
    agent.state.put(Change({"fulfillments": [{"remote_id": "SO1", "state": "open"}]}, {}, {}), 9)
    caplog.set_level(logging.ERROR, "stockyard.agent")
    assert agent.send() is None and agent.send() is None
    said = [r for r in caplog.records if "drop-fulfillments" in r.getMessage()]
    assert len(said) == 1  # said once, not at every round
    # No connection of the agent's waits to push: nothing shortens the long poll.
    assert agent.next_send() == math.inf
    with pytest.raises(AgentError, match="drop-fulfillments"):
        agent.run()  # refuses to start its loop
    agent.close()


def test_a_fulfillment_connection_needs_a_profile_that_reads_fulfilments(tmp_path: Path) -> None:
    from stockyard.agent import AgentError
    from tests.support.cli import invoke

    config = offline_setup(tmp_path, profile=profile_text())  # no [fulfillments]
    with pytest.raises(AgentError) as refused:
        AgentProcess.from_file(config)
    said = str(refused.value)
    assert "[fulfillment]" in said and "no [fulfillments]" in said and "tiny-sage" in said
    checked = invoke(tmp_path / "x.db", "agent", "check", "--config", str(config))
    assert checked.returncode == 1, checked.stderr
    assert any("no [fulfillments]" in p for p in json.loads(checked.stdout)["problems"])


def test_drop_fulfillments_refuses_a_state_file_that_does_not_exist(tmp_path: Path) -> None:
    """A mistyped state path must not make an empty state file and report success."""
    from tests.support.cli import invoke

    config = offline_setup(tmp_path, fulfillment=False)
    config.write_text(config.read_text().replace('state = "state.db"', 'state = "typo.db"'))
    dropped = invoke(tmp_path / "x.db", "agent", "drop-fulfillments", "--config", str(config))
    assert dropped.returncode != 0
    assert "does not exist" in dropped.stdout + dropped.stderr
    assert not (tmp_path / "typo.db").exists()
