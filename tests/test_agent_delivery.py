"""The outbox against the real Stockyard API (the connection's signed inbound routes):
Stockyard down -> records wait in order -> Stockyard back -> delivered in order, once; a
batch delivered again with its message id enqueues nothing; a record Stockyard refuses as
invalid is set aside alone; a refused credential keeps everything and stops sending."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from stockyard.agent.client import Client
from stockyard.agent.outbox import MAX_BATCH_BYTES, Change, State
from stockyard.agent.run import Agent
from stockyard.agent.send import deliver
from tests.support.agent_env import SECRET, make_erp, pushed, stockyard, write_setup


def test_stockyard_down_then_back_delivers_in_order_once(tmp_path: Path) -> None:
    erp = make_erp(f"sqlite:///{tmp_path}/erp.db")
    with stockyard(tmp_path, up=False) as served:
        config = write_setup(
            tmp_path, f"sqlite:///{tmp_path}/erp.db", served.url, served.env.a.source
        )
        a = Agent.from_file(config)
        first = a.cycle()  # nothing listens
        assert first.delivery is not None and first.delivery.retry and not first.delivery.records
        for price in (20, 21):  # two price changes while Stockyard is away
            with erp.begin() as conn:
                conn.execute(
                    sa.text(
                        "UPDATE PriceList SET Price = :p WHERE StockID = 3 AND List = 'Retail'"
                    ),
                    {"p": price},
                )
            a.read()
        assert a.send(now=0.0) is None  # backing off
        assert a.state.pending() == (4, 7)
        served.start()
        a.backoff.reset()
        delivery = a.send()
        assert delivery is not None and delivery.records == 7 and delivery.retry is None
        assert a.state.pending() == (0, 0)
        products = pushed(served.env)
        assert [p["code"] for p in products] == ["TEE", "MUG", "CAP", "MUG", "MUG"]
        assert [p["variants"][0]["price"] for p in products if p["code"] == "MUG"] == [
            "6.5",
            "20",
            "21",
        ]
        assert [c["code"] for c in pushed(served.env, "sync_customer")] == ["ACME01", "BOB02"]
        # Nothing changed: a cycle pushes nothing more.
        a.cycle()
        assert len(pushed(served.env)) == 5
        a.close()
    erp.dispose()


def test_a_batch_sent_again_with_its_message_id_enqueues_nothing(tmp_path: Path) -> None:
    with stockyard(tmp_path) as served:
        client = Client(served.url, served.env.a.source, SECRET)
        body = json.dumps(
            {"products": [{"code": "P", "title": "P", "variants": [{"sku": "P", "price": "1"}]}]}
        ).encode()
        first = client.push("products", "agent-fixed-id", body)
        again = client.push("products", "agent-fixed-id", body)  # the answer was lost
        assert first.status_code == again.status_code == 202
        assert first.json() == again.json()
        assert len(pushed(served.env)) == 1
        client.close()


def test_an_invalid_record_is_set_aside_alone_and_the_rest_delivered(tmp_path: Path) -> None:
    make_erp(f"sqlite:///{tmp_path}/erp.db").dispose()
    with stockyard(tmp_path) as served:
        config = write_setup(
            tmp_path, f"sqlite:///{tmp_path}/erp.db", served.url, served.env.a.source
        )
        a = Agent.from_file(config)
        # A record the agent could not know Stockyard refuses: a title over the API's limit.
        bad = {"code": "BAD", "title": "x" * 5000, "variants": [{"sku": "BAD", "price": "1"}]}
        good = {"code": "OK", "title": "ok", "variants": [{"sku": "OK", "price": "1"}]}
        from stockyard.agent.outbox import Change

        a.state.put(
            Change(
                {
                    "products": [
                        good,
                        bad,
                        good | {"code": "OK2", "variants": [{"sku": "OK2", "price": "2"}]},
                    ]
                },
                {},
                {},
            ),
            100,
        )
        delivery = a.send()
        assert delivery is not None and delivery.dead == 1 and delivery.records == 2
        assert [p["code"] for p in pushed(served.env)] == ["OK", "OK2"]
        assert a.state.dead_count() == 1
        assert "BAD" in a.state.dead()[0]["body"]
        assert a.check()["dead_letters"] == 1
        a.close()


def test_a_refused_credential_keeps_the_outbox_and_stops_sending(tmp_path: Path) -> None:
    make_erp(f"sqlite:///{tmp_path}/erp.db").dispose()
    with stockyard(tmp_path) as served:
        config = write_setup(
            tmp_path, f"sqlite:///{tmp_path}/erp.db", served.url, served.env.a.source
        )
        (tmp_path / "secret").write_text("whsec_" + "d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldA==")
        a = Agent.from_file(config)
        report = a.cycle()
        assert report.delivery is not None and report.delivery.blocked
        assert "401" in report.delivery.blocked
        assert a.state.pending() == (2, 5)
        assert pushed(served.env) == []
        assert a.backoff.next_at > 0
        a.close()


def test_a_proxy_in_the_environment_never_carries_plain_http(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """http is allowed only to this machine; an HTTP_PROXY / ALL_PROXY of the environment
    would carry the ERP's data in clear to another one: plain http ignores them."""
    with stockyard(tmp_path) as served:
        for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.setenv(name, "http://127.0.0.1:9")  # nothing listens there
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        client = Client(served.url, served.env.a.source, SECRET)
        response = client.agent("hello", {})
        client.close()
    assert response.status_code in (200, 401, 404)  # Stockyard answered, directly


def _big_products(n: int) -> list[dict[str, object]]:
    """`n` products with a 60 kB description each."""
    return [
        {"code": f"P{i}", "title": f"P{i}", "description": "<p>" + "x" * 60_000 + "</p>",
         "variants": [{"sku": f"P{i}", "price": "1"}]}
        for i in range(n)
    ]  # fmt: skip


def test_batches_stay_under_stockyards_body_limit(tmp_path: Path) -> None:
    """100 records of 60 kB are 6 MB: Stockyard refuses a body over 5 MB (413). The outbox
    cuts batches by size too, so they go through as they are."""
    state = State(tmp_path / "state.db")
    state.put(Change({"products": _big_products(100)}, {}, {}), 100)
    sizes = [len(b.body) for b in state.head(100)]
    state.close()
    assert len(sizes) > 1 and max(sizes) <= MAX_BATCH_BYTES < 5 * 1024 * 1024
    with stockyard(tmp_path) as served:
        state = State(tmp_path / "state.db")
        client = Client(served.url, served.env.a.source, SECRET)
        delivery = deliver(state, client)
        pending = state.pending()
        client.close()
        state.close()
    assert pending == (0, 0) and delivery.records == 100


def test_a_batch_over_the_body_limit_is_split_and_a_record_too_large_set_aside(
    tmp_path: Path,
) -> None:
    """A batch Stockyard refuses as too large (413: an outbox of an older agent, a smaller
    limit at the site) is split like an invalid one; a single record it refuses goes to
    the dead letters; the outbox never blocks on it."""
    state = State(tmp_path / "state.db")
    huge = {"code": "HUGE", "title": "H", "description": "x" * (6 * 1024 * 1024),
            "variants": [{"sku": "HUGE", "price": "1"}]}  # fmt: skip
    state.put(Change({"products": [*_big_products(99), huge]}, {}, {}), 100, max_bytes=None)
    assert state.pending() == (1, 100)
    with stockyard(tmp_path) as served:
        client = Client(served.url, served.env.a.source, SECRET)
        deliveries = [deliver(state, client) for _ in range(3)]
        pending, dead = state.pending(), state.dead()
        client.close()
        state.close()
    assert pending == (0, 0), deliveries[-1].blocked
    assert sum(d.records for d in deliveries) == 99
    (letter,) = dead
    assert '"HUGE"' in letter["body"] and "413" in letter["error"]
