"""The agent against the real Stockyard application and an `agent` connection: its
pushes go through the connection's signed inbound route, its orders come from the
protocol's claim and are settled back; killed between writing an order and settling it,
the order is claimed again after the lease and found in the ERP, not written twice."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from stockyard.agent.client import Unreachable
from stockyard.agent.run import Agent
from stockyard.engine import ItemFilter, Request
from tests.support.agent_env import SECRET, Served, make_erp, profile_text, write_setup
from tests.support.api_env import ApiEnv


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Served, int]]:
    env = ApiEnv(f"sqlite:///{tmp_path}/stockyard.db")
    connection = env.service.create_connection(
        env.root, env.a.id, "source", "agent", "Sage", {}, {"webhook_secret": SECRET}
    ).id
    s = Served(env)
    s.start()
    yield s, connection
    s.stop()
    env.close()


@pytest.fixture
def setup(tmp_path: Path, served: tuple[Served, int]) -> Iterator[tuple[sa.Engine, Path]]:
    """A Sage-shaped ERP database and an agent's config for it and the served Stockyard."""
    s, connection = served
    erp = make_erp(f"sqlite:///{tmp_path}/erp.db")
    yield erp, write_setup(tmp_path, f"sqlite:///{tmp_path}/erp.db", s.url, connection)
    erp.dispose()


def add_order(env: ApiEnv, connection: int) -> int:
    (item,) = env.queue.enqueue(
        env.a.id,
        [Request("add_order", {"order_id": env.a.order}, connection, idempotency_key="order-1")],
    )
    return item


def written(s: Served) -> list[tuple[str, str]]:
    """The ERP's orders once the web order is written: its ERP code and web number."""
    return [(f"SO{s.env.a.order}", "O-merchant-a")]


def erp_orders(erp: sa.Engine) -> list[tuple[str, str]]:
    with erp.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text("SELECT OrderNum, ExtOrderNum FROM InvNum"))]


def test_pushes_and_an_order_through_the_real_protocol(
    served: tuple[Served, int], setup: tuple[sa.Engine, Path]
) -> None:
    s, connection = served
    erp, config = setup
    agent = Agent.from_file(config)
    assert agent.hello().startswith("Stockyard reachable: connection")
    item = add_order(s.env, connection)
    report = agent.cycle()
    assert report.delivery is not None and report.delivery.records == 5
    synced = s.env.queue.list_items(ItemFilter(s.env.a.id, instructions=("sync_product",)))
    assert {i.connection_id for i in synced} == {connection} and len(synced) == 3
    assert report.orders == 1
    assert s.env.queue.get(s.env.a.id, item).status == "done"
    stored = s.env.service.store.order(s.env.a.id, s.env.a.order)
    assert stored.source_code == f"SO{s.env.a.order}"
    assert erp_orders(erp) == written(s)
    agent.close()


def test_killed_between_writing_and_settling_the_order_is_written_once(
    served: tuple[Served, int], setup: tuple[sa.Engine, Path]
) -> None:
    s, connection = served
    erp, config = setup
    item = add_order(s.env, connection)
    dying = Agent.from_file(config)

    class Killed(BaseException):
        pass

    def die(outcomes: object, session: object = None) -> None:
        raise Killed  # the process is gone: nothing settles

    dying.calls.settle = die  # type: ignore[method-assign,assignment]
    with pytest.raises(Killed):
        dying.work(0)
    dying.close()
    assert erp_orders(erp) == written(s)  # written, unsettled
    assert s.env.queue.get(s.env.a.id, item).status == "running"
    s.env.queue.reap(0.0)  # its lease runs out (Stockyard's reaper)
    restarted = Agent.from_file(config)
    assert restarted.work(0) == 1
    assert s.env.queue.get(s.env.a.id, item).status == "done"
    assert erp_orders(erp) == written(s)  # found, not rewritten
    restarted.close()


def reaping(s: Served, agent: Agent) -> None:
    """The agent goes on working while Stockyard's reaper runs with a 0.25 s lease: a
    session the agent no longer calls is reaped, one it keeps calling is not."""
    for _ in range(5):
        time.sleep(0.3)
        agent.work(0)
        s.env.queue.reap(0.25)


def test_a_settle_that_gets_no_answer_is_sent_again_and_the_order_settles(
    served: tuple[Served, int], setup: tuple[sa.Engine, Path]
) -> None:
    """Stockyard does not answer a settle (a restart, a dropped connection): the outcome is
    kept in the state database and settled again with its session, so the item does not
    stay `running` under a session the agent keeps alive."""
    s, connection = served
    erp, config = setup
    agent = Agent.from_file(config)
    item = add_order(s.env, connection)
    real_settle = agent.calls.settle

    def lost(outcomes: object, session: object = None) -> object:
        agent.calls.settle = real_settle  # type: ignore[method-assign]
        raise Unreachable("ReadTimeout: Stockyard at ... did not answer")

    agent.calls.settle = lost  # type: ignore[method-assign,assignment]
    assert agent.work(0) == 0  # written into the ERP, the answer lost
    assert agent.state.unsettled(), "the outcome is kept until Stockyard takes it"
    reaping(s, agent)
    assert s.env.queue.get(s.env.a.id, item).status == "done"
    assert not agent.state.unsettled()
    assert erp_orders(erp) == written(s)
    agent.close()


def test_a_claim_whose_answer_is_lost_starts_a_new_session(
    served: tuple[Served, int], setup: tuple[sa.Engine, Path]
) -> None:
    """The claim reached Stockyard (items started under the session) but its answer was lost
    (a proxy cutting the long poll): the agent leaves that session to the reaper, which
    gives its items back, and claims them under a new one."""
    s, connection = served
    erp, config = setup
    agent = Agent.from_file(config)
    item = add_order(s.env, connection)
    real = agent.client.agent

    def cut(verb, payload, timeout=None):  # type: ignore[no-untyped-def]
        response = real(verb, payload, timeout)
        if verb == "claim" and response.json().get("items"):
            agent.client.agent = real  # type: ignore[method-assign]
            raise Unreachable("ReadError: Stockyard at ... did not answer")
        return response

    agent.client.agent = cut  # type: ignore[method-assign,assignment]
    old = agent.calls.session
    agent.work(0)
    assert agent.calls.session != old
    reaping(s, agent)
    assert s.env.queue.get(s.env.a.id, item).status == "done"
    assert erp_orders(erp) == written(s)
    agent.close()


def test_a_settle_stockyard_refuses_is_given_up_and_the_item_comes_back(
    served: tuple[Served, int], setup: tuple[sa.Engine, Path]
) -> None:
    """A settle answered with a 4xx other than 409 will never go through: the agent drops
    it and leaves its session to the reaper, so the item is claimed again, not held."""
    s, connection = served
    erp, config = setup
    agent = Agent.from_file(config)
    item = add_order(s.env, connection)
    real = agent.client.agent

    def bad(verb, payload, timeout=None):  # type: ignore[no-untyped-def]
        if verb == "settle":
            agent.client.agent = real  # type: ignore[method-assign]
            payload = {**payload, "outcomes": [{"id": "x"}]}  # Stockyard answers 422
        return real(verb, payload, timeout)

    agent.client.agent = bad  # type: ignore[method-assign,assignment]
    agent.work(0)
    assert not agent.state.unsettled()
    reaping(s, agent)
    assert s.env.queue.get(s.env.a.id, item).status == "done"
    assert erp_orders(erp) == written(s)  # found, not rewritten
    agent.close()


def test_an_erp_code_over_255_characters_fails_the_item_not_the_settle(
    tmp_path: Path, served: tuple[Served, int]
) -> None:
    s, connection = served
    make_erp(f"sqlite:///{tmp_path}/erp.db").dispose()
    script = tmp_path / "imp.py"
    script.write_text("import sys; sys.stdin.read(); print('Imported as SO-1 ' + 'x' * 300)\n")
    profile = profile_text().split("[orders]")[0] + (
        f'[orders]\ncommand = ["{__import__("sys").executable}", "{script}"]\n'
    )
    config = write_setup(
        tmp_path, f"sqlite:///{tmp_path}/erp.db", s.url, connection, profile=profile
    )
    agent = Agent.from_file(config)
    item = add_order(s.env, connection)
    assert agent.work(0) == 1
    got = s.env.queue.get(s.env.a.id, item)
    agent.close()
    assert got.status == "failed" and "255" in (got.error or "")


def test_a_disabled_connection_pauses_the_agent_and_loses_nothing(
    served: tuple[Served, int], setup: tuple[sa.Engine, Path], caplog: pytest.LogCaptureFixture
) -> None:
    """The operator disables the agent's connection: Stockyard answers its claims and its
    pushes 409. The agent neither ends its session nor loops on claims: it asks again in
    minutes and says so once; its pushes stay in the outbox, in order. Enabled again, the
    order and the records go through."""
    s, connection = served
    _, config = setup
    agent = Agent.from_file(config)
    item = add_order(s.env, connection)
    s.env.service.set_connection_enabled(s.env.root, s.env.a.id, connection, False)
    verbs: list[str] = []
    real = agent.client.agent

    def counting(verb, payload, timeout=None):  # type: ignore[no-untyped-def]
        verbs.append(verb)
        return real(verb, payload, timeout)

    agent.client.agent = counting  # type: ignore[method-assign,assignment]
    session = agent.calls.session
    with caplog.at_level(logging.INFO, logger="stockyard.agent"):
        report = agent.cycle()
        for _ in range(3):
            assert agent.work(0) == 0
        agent.send(time.monotonic() + 400)  # the pushes' next try: still disabled
    assert report.delivery is not None and report.delivery.blocked
    assert "disabled" in report.delivery.blocked
    assert agent.state.pending()[1] == 5  # kept, not dead letters
    assert agent.state.dead_count() == 0
    assert verbs == ["claim"]  # then it waits, minutes
    assert agent.orders_paused_until - time.monotonic() > 200
    assert agent.calls.session == session
    said = [r.getMessage() for r in caplog.records if "is disabled" in r.getMessage()]
    assert len(said) == 1, said  # once, however often it asks
    assert agent.state.pending()[1] == 5
    assert s.env.queue.get(s.env.a.id, item).status == "queued"

    s.env.service.set_connection_enabled(s.env.root, s.env.a.id, connection, True)
    agent.orders_paused_until = 0.0  # ... minutes later
    agent.backoff.reset()
    assert agent.work(0) == 1
    delivery = agent.send()
    assert delivery is not None and delivery.records == 5
    assert s.env.queue.get(s.env.a.id, item).status == "done"
    agent.close()
