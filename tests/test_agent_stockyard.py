"""The agent against the real Stockyard application and an `agent` connection: its
pushes go through the connection's signed inbound route, its orders come from the
protocol's claim and are settled back; killed between writing an order and settling it,
the order is claimed again after the lease and found in the ERP, not written twice."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from stockyard.agent.run import Agent
from stockyard.engine import ItemFilter, Request
from tests.support.agent_env import SECRET, Served, make_erp, write_setup
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


def add_order(env: ApiEnv, connection: int) -> int:
    (item,) = env.queue.enqueue(
        env.a.id,
        [Request("add_order", {"order_id": env.a.order}, connection, idempotency_key="order-1")],
    )
    return item


def erp_orders(erp: sa.Engine) -> list[tuple[str, str]]:
    with erp.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text("SELECT OrderNum, ExtOrderNum FROM InvNum"))]


def test_pushes_and_an_order_through_the_real_protocol(
    tmp_path: Path, served: tuple[Served, int]
) -> None:
    s, connection = served
    erp = make_erp(f"sqlite:///{tmp_path}/erp.db")
    config = write_setup(tmp_path, f"sqlite:///{tmp_path}/erp.db", s.url, connection)
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
    assert erp_orders(erp) == [(f"SO{s.env.a.order}", "O-merchant-a")]
    agent.close()
    erp.dispose()


def test_killed_between_writing_and_settling_the_order_is_written_once(
    tmp_path: Path, served: tuple[Served, int]
) -> None:
    s, connection = served
    erp = make_erp(f"sqlite:///{tmp_path}/erp.db")
    config = write_setup(tmp_path, f"sqlite:///{tmp_path}/erp.db", s.url, connection)
    item = add_order(s.env, connection)
    dying = Agent.from_file(config)

    class Killed(BaseException):
        pass

    def die(outcomes: object) -> None:
        raise Killed  # the process is gone: nothing settles

    dying.calls.settle = die  # type: ignore[method-assign,assignment]
    with pytest.raises(Killed):
        dying.work(0)
    dying.close()
    assert erp_orders(erp) == [(f"SO{s.env.a.order}", "O-merchant-a")]  # written, unsettled
    assert s.env.queue.get(s.env.a.id, item).status == "running"
    s.env.queue.reap(0.0)  # its lease runs out (Stockyard's reaper)
    restarted = Agent.from_file(config)
    assert restarted.work(0) == 1
    assert s.env.queue.get(s.env.a.id, item).status == "done"
    assert erp_orders(erp) == [(f"SO{s.env.a.order}", "O-merchant-a")]  # found, not rewritten
    restarted.close()
    erp.dispose()
