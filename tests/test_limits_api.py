"""Per-connection limits as operators and connectors meet them: the service method every
shell calls (roles, tenancy, audit, connectors' defaults), the REST endpoint, the CLI's
`connections limits` and the console's form. The engine's own keeping of the limits is
tests/test_fairness.py's."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stockyard.accounts import Principal
from stockyard.connectors.base import Connector
from stockyard.connectors.demo import DemoConnector
from stockyard.connectors.http import HttpConnector
from stockyard.connectors.tryton import TrytonConnector
from stockyard.connectors.vendure import VendureConnector
from stockyard.engine import Limits
from stockyard.errors import Forbidden, NotFound
from tests.support.api_env import PASSWORD, ApiEnv
from tests.support.cli import invoke
from tests.support.console import sign_in

HTTP = {"base_url": "http://127.0.0.1:9"}


@pytest.fixture
def env(tmp_path: Path) -> Iterator[ApiEnv]:
    e = ApiEnv(f"sqlite:///{tmp_path}/limits.db")
    yield e
    e.close()


def member(env: ApiEnv, role: str) -> Principal:
    """A user of client A with this role, as the service sees them."""
    email = f"{role}@limits.example"
    env.service.set_member(env.root, env.a.id, email, role, PASSWORD)
    return env.service.accounts.principal(env.service.login(email, PASSWORD))


# ------------------------------------------------------------------------------ service


def test_connectors_declare_their_default_limits() -> None:
    assert Connector.default_limits == Limits()  # unlimited unless a connector says
    assert DemoConnector.default_limits == Limits()
    assert HttpConnector.default_limits == Limits(max_running=8)
    assert VendureConnector.default_limits == Limits(max_running=8)
    assert TrytonConnector.default_limits == Limits(max_running=4)


def test_a_new_http_connection_gets_the_connectors_default_limits(env: ApiEnv) -> None:
    svc, a = env.service, env.a
    assert svc.connection(env.root, a.id, a.channel).limits == Limits(max_running=8)
    assert svc.connection(env.root, a.id, a.source).limits == Limits(max_running=8)
    # The view reads the engine's limits: there is no second copy to drift.
    assert env.queue.lanes_by_id([a.channel])[a.channel].limits == Limits(max_running=8)
    # A fulfillment service (no lane) has limits too; an http one its connector's default.
    assert svc.connection(env.root, a.id, a.warehouse).limits == Limits(max_running=8)
    demo = svc.create_connection(env.root, a.id, "channel", "demo", "Demo", {}, {})
    assert demo.limits == Limits()


def test_limits_given_at_creation_replace_the_default(env: ApiEnv) -> None:
    made = env.service.create_connection(
        env.root, env.a.id, "channel", "http", "Slow shop", HTTP, {}, Limits(per_second=2.5)
    )
    assert made.limits == Limits(per_second=2.5, burst=1)
    assert env.queue.lanes_by_id([made.id])[made.id].limits == made.limits
    warehouse = env.service.create_connection(
        env.root, env.a.id, "fulfillment", "http", "WH", HTTP, {}, Limits(max_running=2)
    )
    assert env.queue.limits(env.a.id, [warehouse.id]) == {warehouse.id: Limits(max_running=2)}


def test_an_administrator_sets_limits_and_the_audit_says_so(env: ApiEnv) -> None:
    svc, a = env.service, env.a
    boss = member(env, "administrator")
    view = svc.set_connection_limits(boss, a.id, a.channel, Limits(5, 20.0, 40))
    assert view.limits == Limits(5, 20.0, 40)
    assert [c.limits for c in svc.connections(boss, a.id) if c.id == a.channel] == [view.limits]
    entry = svc.audit(env.root, a.id, None, 1)[0]
    assert entry.action == "connection.limits" and entry.actor == boss.actor
    assert entry.detail == {
        "connection": a.channel,
        "limits": {"max_running": 5, "per_second": 20.0, "burst": 40},
    }
    cleared = svc.set_connection_limits(boss, a.id, a.channel, Limits())
    assert cleared.limits == Limits()


def test_only_administrators_set_limits_and_only_of_their_own_client(env: ApiEnv) -> None:
    svc, a, b = env.service, env.a, env.b
    for role in ("read-only", "operator"):
        who = member(env, role)
        assert svc.connection(who, a.id, a.channel).limits == Limits(max_running=8)  # may read
        with pytest.raises(Forbidden, match="administrator"):
            svc.set_connection_limits(who, a.id, a.channel, Limits(max_running=1))
    boss = member(env, "administrator")
    with pytest.raises(NotFound):  # B's connection inside A's client
        svc.set_connection_limits(boss, a.id, b.channel, Limits(max_running=1))
    with pytest.raises(NotFound):  # B's client: it does not exist for A's administrator
        svc.set_connection_limits(boss, b.id, b.channel, Limits(max_running=1))
    with pytest.raises(NotFound):
        svc.connection(boss, b.id, b.channel)
    assert svc.set_connection_limits(boss, a.id, a.warehouse, Limits(max_running=1)).limits == (
        Limits(max_running=1)
    )
    assert env.queue.lanes_by_id([b.channel])[b.channel].limits == Limits(max_running=8)
    assert env.queue.lanes_by_id([a.channel])[a.channel].limits == Limits(max_running=8)


# ---------------------------------------------------------------------------------- API


def path(env: ApiEnv, connection_id: int, rest: str = "/limits", client: int = 0) -> str:
    return f"/v1/clients/{client or env.a.id}/connections/{connection_id}{rest}"


def test_put_limits_answers_the_connection_and_reads_show_them(env: ApiEnv) -> None:
    h = env.headers(env.a.tokens["administrator"])
    body = {"max_running": 5, "per_second": 20, "burst": 40}
    r = env.http.put(path(env, env.a.channel), headers=h, json=body)
    assert r.status_code == 200, r.text
    assert r.json()["id"] == env.a.channel
    assert r.json()["limits"] == {"max_running": 5, "per_second": 20.0, "burst": 40}
    reader = env.headers(env.a.tokens["read-only"])
    one = env.http.get(path(env, env.a.channel, ""), headers=reader).json()
    assert one["limits"] == r.json()["limits"]
    listed = env.http.get(f"/v1/clients/{env.a.id}/connections", headers=reader).json()
    by_id = {c["id"]: c["limits"] for c in listed}
    assert by_id[env.a.channel] == r.json()["limits"]
    assert by_id[env.a.source] == {"max_running": 8, "per_second": None, "burst": None}
    assert by_id[env.a.warehouse] == {"max_running": 8, "per_second": None, "burst": None}
    r = env.http.put(
        path(env, env.a.channel),
        headers=h,
        json={"max_running": None, "per_second": None, "burst": None},
    )
    assert r.json()["limits"] == {"max_running": None, "per_second": None, "burst": None}
    assert env.http.put(path(env, env.a.channel), headers=h, json={}).status_code == 200


def test_post_connection_takes_limits_or_the_default(env: ApiEnv) -> None:
    h = env.headers(env.a.tokens["administrator"])
    new = {"kind": "channel", "connector": "http", "description": "New", "settings": HTTP}
    url = f"/v1/clients/{env.a.id}/connections"
    r = env.http.post(url, headers=h, json=new)
    assert r.status_code == 201 and r.json()["limits"]["max_running"] == 8
    r = env.http.post(url, headers=h, json=new | {"limits": {"per_second": 3}})
    assert r.status_code == 201
    assert r.json()["limits"] == {"max_running": None, "per_second": 3.0, "burst": 1}
    r = env.http.post(url, headers=h, json=new | {"limits": {"max_running": 0}})
    assert r.status_code == 422 and "max_running" in r.json()["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"max_running": 0}, "max_running"),
        ({"max_running": -3}, "max_running"),
        ({"max_running": "5"}, "max_running"),
        ({"max_running": 2.5}, "max_running"),
        ({"max_running": True}, "max_running"),
        ({"max_running": 10**9}, "max_running"),
        ({"per_second": 0}, "per_second"),
        ({"per_second": -1.5}, "per_second"),
        ({"per_second": "fast"}, "per_second"),
        ({"per_second": 1e12}, "per_second"),
        ({"burst": 4}, "burst"),  # a burst of what rate?
        ({"per_second": 1, "burst": 0}, "burst"),
        ({"per_second": 1, "burst": 10**9}, "burst"),
        ({"max_running": 1, "queue": 2}, "queue"),
    ],
)
def test_bad_limits_are_a_422_naming_the_field(
    env: ApiEnv, body: dict[str, Any], field: str
) -> None:
    before = env.queue.lanes_by_id([env.a.channel])[env.a.channel].limits
    h = env.headers(env.a.tokens["administrator"])
    r = env.http.put(path(env, env.a.channel), headers=h, json=body)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert field in r.json()["detail"], r.text
    assert env.queue.lanes_by_id([env.a.channel])[env.a.channel].limits == before


def test_nan_and_infinity_are_not_limits(env: ApiEnv) -> None:
    h = env.headers(env.a.tokens["administrator"]) | {"content-type": "application/json"}
    for raw in ('{"per_second": NaN}', '{"per_second": Infinity}', '{"per_second": 1e999}'):
        r = env.http.put(path(env, env.a.channel), headers=h, content=raw)
        assert r.status_code == 422 and "per_second" in r.json()["detail"], (raw, r.text)


def test_put_limits_follows_roles_and_tenancy(env: ApiEnv) -> None:
    body = {"max_running": 1}
    for role in ("read-only", "operator"):
        r = env.http.put(
            path(env, env.a.channel), headers=env.headers(env.a.tokens[role]), json=body
        )
        assert r.status_code == 403 and "administrator" in r.json()["detail"], (role, r.text)
    h = env.headers(env.a.tokens["administrator"])
    r = env.http.put(path(env, env.b.channel), headers=h, json=body)  # B's id in A's path
    assert r.status_code == 404
    r = env.http.put(path(env, env.b.channel, client=env.b.id), headers=h, json=body)
    assert r.status_code == 404
    r = env.http.get(path(env, env.b.channel, "", client=env.b.id), headers=h)
    assert r.status_code == 404
    r = env.http.put(path(env, env.a.warehouse), headers=h, json=body)
    assert r.status_code == 200 and r.json()["limits"]["max_running"] == body["max_running"]
    for t in (env.a, env.b):
        assert env.queue.lanes_by_id([t.channel])[t.channel].limits == Limits(max_running=8)


def test_the_endpoint_is_in_the_openapi_document(env: ApiEnv) -> None:
    doc = env.app.openapi()
    op = doc["paths"]["/v1/clients/{client_id}/connections/{connection_id}/limits"]["put"]
    assert "200" in op["responses"] and "422" in op["responses"]
    assert "limits" in doc["components"]["schemas"]["ConnectionOut"]["properties"]


# ---------------------------------------------------------------------------------- CLI


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "cli.db"
    assert invoke(path, "init").returncode == 0
    for kind, description in (("channel", "Shop"), ("fulfillment", "Warehouse")):
        added = invoke(path, "connections", "add", "--kind", kind, "--description", description)
        assert added.returncode == 0, added.stderr
    return path


def one_line_error(result: Any, *needles: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr


def test_cli_sets_shows_and_removes_limits(db: Path) -> None:
    listed = invoke(db, "connections", "list")
    assert "limits" in listed.stdout.splitlines()[0] and "unlimited" in listed.stdout
    r = invoke(db, "connections", "limits", "1", "--max-running", "5", "--per-second", "20")
    assert r.returncode == 0, r.stderr
    assert "connection 1" in r.stdout and "max 5 running · 20/s" in r.stdout
    row = next(line for line in invoke(db, "connections", "list").stdout.splitlines()[1:])
    assert row.startswith("1\t") and row.endswith("max 5 running · 20/s")
    r = invoke(db, "connections", "limits", "1", "--per-second", "0.5", "--burst", "3")
    assert r.returncode == 0 and "0.5/s (burst 3)" in r.stdout, r.stdout
    r = invoke(db, "connections", "limits", "1", "--none")
    assert r.returncode == 0 and "unlimited" in r.stdout
    assert "max 5" not in invoke(db, "connections", "list").stdout


def test_a_connection_added_with_limits_keeps_them(db: Path) -> None:
    r = invoke(
        db, "connections", "add", "--kind", "source", "--description", "ERP",
        "--max-running", "3",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "max 3 running" in invoke(db, "connections", "list").stdout


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        ((), ("--max-running", "--none")),
        (("--max-running", "0"), ("max_running",)),
        (("--per-second", "nan"), ("per_second",)),
        (("--per-second", "inf"), ("per_second",)),
        (("--burst", "4"), ("burst", "per_second")),
        (("--none", "--max-running", "3"), ("--none",)),
        (("--max-running", "many"), ("max-running",)),
    ],
)
def test_cli_limits_errors_are_one_line(
    db: Path, args: tuple[str, ...], needles: tuple[str, ...]
) -> None:
    one_line_error(invoke(db, "connections", "limits", "1", *args), *needles)


def test_cli_limits_of_unknown_connections_and_of_a_fulfillment_service(db: Path) -> None:
    one_line_error(
        invoke(db, "connections", "limits", "99", "--max-running", "2"), "no connection 99"
    )
    warehouse = invoke(db, "connections", "limits", "2", "--max-running", "2")
    assert warehouse.returncode == 0 and "max 2 running" in warehouse.stdout, warehouse.stderr
    one_line_error(invoke(db, "connections", "limits", "0", "--max-running", "2"), "ID")
    one_line_error(invoke(db, "connections", "limits", str(2**70), "--max-running", "2"), "ID")


# ------------------------------------------------------------------------------ console


def console_form(page: str, connection_id: int) -> str | None:
    found = re.search(
        rf'<form[^>]*action="[^"]*/connections/{connection_id}/limits"[^>]*>.*?</form>',
        page,
        re.S,
    )
    return found.group(0) if found else None


def test_console_shows_limits_and_an_administrator_changes_them(env: ApiEnv) -> None:
    env.service.set_member(env.root, env.a.id, "boss@example.com", "administrator", PASSWORD)
    token = sign_in(env, "boss@example.com")
    base = f"/console/clients/{env.a.id}"
    page = env.http.get(f"{base}/connections").text
    assert "max 8 running" in page
    form = console_form(page, env.a.channel)
    assert form and 'name="csrf"' in form and 'name="max_running"' in form
    assert console_form(page, env.a.warehouse)  # a fulfillment service is limited alike
    url = f"{base}/connections/{env.a.channel}/limits"
    fields = {"max_running": "5", "per_second": "20", "burst": ""}
    r = env.http.post(url, data=fields)  # no CSRF token: refused, nothing changes
    assert r.status_code == 403
    assert env.queue.lanes_by_id([env.a.channel])[env.a.channel].limits == Limits(max_running=8)
    r = env.http.post(url, data=fields | {"csrf": token})
    assert r.status_code == 200 and "max 5 running · 20/s" in r.text
    assert env.queue.lanes_by_id([env.a.channel])[env.a.channel].limits == Limits(5, 20.0, 1)
    assert "max 5 running · 20/s" in env.http.get(f"{base}/lanes").text
    r = env.http.post(url, data={"max_running": "0", "per_second": "", "csrf": token})
    assert r.status_code == 422 and "max_running" in r.text
    r = env.http.post(url, data={"max_running": "lots", "csrf": token})
    assert r.status_code == 422 and "max_running" in r.text
    r = env.http.post(url, data={"per_second": "nan", "csrf": token})
    assert r.status_code == 422 and "per_second" in r.text
    r = env.http.post(url, data={"max_running": "", "per_second": "", "burst": "", "csrf": token})
    assert r.status_code == 200
    assert env.queue.lanes_by_id([env.a.channel])[env.a.channel].limits == Limits()
    r = env.http.post(
        f"/console/clients/{env.b.id}/connections/{env.b.channel}/limits",
        data=fields | {"csrf": token},
    )
    assert r.status_code == 404
    r = env.http.post(f"{base}/connections/{env.b.channel}/limits", data=fields | {"csrf": token})
    assert r.status_code == 404
    assert env.queue.lanes_by_id([env.b.channel])[env.b.channel].limits == Limits(max_running=8)


def test_console_read_only_users_see_limits_but_no_form(env: ApiEnv) -> None:
    env.service.set_member(env.root, env.a.id, "viewer@example.com", "read-only", PASSWORD)
    token = sign_in(env, "viewer@example.com")
    base = f"/console/clients/{env.a.id}"
    page = env.http.get(f"{base}/connections").text
    assert "max 8 running" in page and console_form(page, env.a.channel) is None
    assert "max 8 running" in env.http.get(f"{base}/lanes").text
    r = env.http.post(
        f"{base}/connections/{env.a.channel}/limits", data={"max_running": "1", "csrf": token}
    )
    assert r.status_code == 403 and "administrator" in r.text
    assert env.queue.lanes_by_id([env.a.channel])[env.a.channel].limits == Limits(max_running=8)
