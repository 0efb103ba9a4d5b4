"""Tenancy and roles, for every endpoint: a key of client A can neither read nor change
anything of client B (404, never 403, so B's ids are not confirmed), and each role can do
exactly what it should on its own client."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from stockyard.tenancy import Tenancy
from tests.support.api_env import ApiEnv, Tenant, product
from tests.support.queues import UrlMaker

READ, OPERATE, ADMIN = "read-only", "operator", "administrator"
ROLES = (READ, OPERATE, ADMIN)
C = "/v1/clients/{client_id}"

# Every client-scoped endpoint: the lowest role allowed, and a valid body (as a function of
# the tenant whose objects it names).
ENDPOINTS: dict[tuple[str, str], tuple[str, Callable[[Tenant], Any] | None]] = {
    ("GET", C + "/items"): (READ, None),
    ("POST", C + "/items"): (ADMIN, lambda t: {"items": [{"instruction": "sync_order"}]}),
    ("GET", C + "/items/{item_id}"): (READ, None),
    ("POST", C + "/items/retry"): (OPERATE, lambda t: {"ids": [t.failed_item]}),
    ("POST", C + "/items/skip"): (OPERATE, lambda t: {"ids": [t.failed_item]}),
    ("POST", C + "/items/{item_id}/retry"): (OPERATE, None),
    ("POST", C + "/items/{item_id}/skip"): (OPERATE, None),
    ("GET", C + "/lanes"): (READ, None),
    ("POST", C + "/lanes/{lane_id}/pause"): (OPERATE, lambda t: {"reason": "test"}),
    ("POST", C + "/lanes/{lane_id}/resume"): (OPERATE, None),
    ("GET", C + "/connections"): (READ, None),
    ("POST", C + "/connections"): (
        ADMIN,
        lambda t: {
            "kind": "source",
            "connector": "http",
            "description": "New ERP",
            "settings": {"base_url": "http://127.0.0.1:9"},
        },
    ),
    ("GET", C + "/connections/{connection_id}"): (READ, None),
    ("PATCH", C + "/connections/{connection_id}"): (ADMIN, lambda t: {"description": "Renamed"}),
    ("POST", C + "/connections/{connection_id}/disable"): (ADMIN, None),
    ("POST", C + "/connections/{connection_id}/enable"): (ADMIN, None),
    ("PUT", C + "/connections/{connection_id}/limits"): (ADMIN, lambda t: {"max_running": 2}),
    ("GET", C + "/products"): (READ, None),
    ("GET", C + "/products/{product_id}"): (READ, None),
    ("GET", C + "/variants"): (READ, None),
    ("GET", C + "/orders"): (READ, None),
    ("GET", C + "/orders/{order_id}"): (READ, None),
    ("GET", C + "/fulfillments"): (READ, None),
    ("GET", C + "/members"): (ADMIN, None),
    ("PUT", C + "/members"): (
        ADMIN,
        lambda t: {"email": "new@example.com", "role": "read-only"},
    ),
    ("DELETE", C + "/members/{user_id}"): (ADMIN, None),
    ("GET", C + "/keys"): (ADMIN, None),
    ("POST", C + "/keys"): (ADMIN, lambda t: {"name": "ci", "role": "read-only"}),
    ("DELETE", C + "/keys/{key_id}"): (ADMIN, None),
    ("GET", C + "/audit"): (ADMIN, None),
    ("GET", C + "/subscriptions"): (ADMIN, None),
    ("POST", C + "/subscriptions"): (
        ADMIN,
        lambda t: {"kind": "email", "target": "ops@example.com", "connections": [t.channel]},
    ),
    ("DELETE", C + "/subscriptions/{subscription_id}"): (ADMIN, None),
}
INBOUND: dict[str, Callable[[], dict[str, Any]]] = {
    "products": lambda: {"products": [product("X", "X-1")]},
    "images": lambda: {"images": [{"product": "X", "image": {"url": "https://x/1.jpg"}}]},
    "customers": lambda: {"customers": [{"code": "C1"}]},
    "orders": lambda: {"remote_ids": ["R1"]},
    "fulfillments": lambda: {"fulfillments": [{"remote_id": "F", "state": "open"}]},
}


def fill(path: str, client: Tenant, owner: Tenant) -> str:
    """The path with `client` as the client and `owner`'s objects as the objects."""
    return path.format(
        client_id=client.id,
        item_id=owner.failed_item,
        lane_id=owner.channel,
        connection_id=owner.channel,
        product_id=owner.product,
        order_id=owner.order,
        user_id=owner.member_id,
        key_id=owner.key_id,
        subscription_id=owner.subscription_id,
    )


def inbound_connection(t: Tenant, topic: str) -> int:
    return {
        "products": t.source,
        "images": t.source,
        "customers": t.source,
        "orders": t.channel,
        "fulfillments": t.warehouse,
    }[topic]


@pytest.fixture
def env(new_url: UrlMaker) -> Iterator[ApiEnv]:
    e = ApiEnv(new_url())
    yield e
    e.close()


def test_every_endpoint_is_covered(env: ApiEnv) -> None:
    routes = {
        (method.upper(), path)
        for path, operations in env.app.openapi()["paths"].items()
        for method in operations
    }
    scoped = {r for r in routes if r[1].startswith("/v1/clients/{client_id}")}
    assert scoped == set(ENDPOINTS), "a client-scoped endpoint lacks a tenancy case"
    inbound = {r[1].rsplit("/", 1)[1] for r in routes if r[1].startswith("/v1/inbound/")}
    assert inbound == set(INBOUND) | {"{topic}"}  # {topic}: the platforms' webhooks


def _snapshot(env: ApiEnv, t: Tenant) -> Any:
    q = env.queue
    return (
        [(i.id, i.status) for i in q.list_items(q_filter(t.id), 1000)],
        [(c.id, c.description, c.status, c.settings) for c in Tenancy(q.db).connections(t.id)],
        [(v.lane_id, v.paused) for v in q.lanes(t.id)],
        [(k.id, k.revoked_at) for k in env.service.accounts.keys(t.id)],
        [(m.user_id, m.role) for m in env.service.accounts.members(t.id)],
    )


def q_filter(client_id: int) -> Any:
    from stockyard.engine import ItemFilter

    return ItemFilter(client_id)


def test_client_a_cannot_reach_client_b(env: ApiEnv) -> None:
    a, b = env.a, env.b
    before = _snapshot(env, b)
    auth = env.headers(a.tokens[ADMIN])
    for (method, path), (_, body) in ENDPOINTS.items():
        payload = body(b) if body else None
        # B's client id in the path: B does not exist for A.
        r = env.http.request(method, fill(path, b, b), json=payload, headers=auth)
        assert r.status_code == 404, (method, path, r.status_code, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        if "{" in path.removeprefix(C):
            # A's own client id, B's object ids: those objects do not exist for A either.
            r = env.http.request(method, fill(path, a, b), json=payload, headers=auth)
            assert r.status_code == 404, (method, path, r.status_code, r.text)
    # B's ids smuggled into bodies and filters of A's own endpoints.
    for action in ("retry", "skip"):
        r = env.http.post(
            fill(C + f"/items/{action}", a, b), json={"ids": [b.failed_item]}, headers=auth
        )
        assert r.status_code == 404, r.text
        r = env.http.post(
            fill(C + f"/items/{action}", a, b),
            json={"filter": {"connection_id": b.channel}},
            headers=auth,
        )
        assert r.json()["affected"] == 0
    r = env.http.post(
        fill(C + "/items", a, b),
        headers=auth,
        json={"items": [{"instruction": "update_product", "connection_id": b.channel}]},
    )
    assert r.status_code == 404, r.text
    for topic, push in INBOUND.items():
        r = env.http.post(
            f"/v1/inbound/{inbound_connection(b, topic)}/{topic}", json=push(), headers=auth
        )
        # The answer to any refused push: it tells nothing of what exists (test_inbound_privacy).
        assert r.status_code == 401 and "push refused" in r.json()["detail"], (topic, r.text)
    # A platform's webhook takes only its own signature, never a key: not even B's channel
    # learns anything from A's administrator.
    r = env.http.post(
        f"/v1/inbound/{b.channel}/webhooks/orders/create", json={"id": 1}, headers=auth
    )
    assert r.status_code == 401 and "webhook refused" in r.json()["detail"], r.text
    # Lists of A show nothing of B.
    listed = env.http.get(fill(C + "/items", a, a), headers=auth).json()["items"]
    assert {i["id"] for i in listed}.isdisjoint({b.failed_item, b.queued_item})
    assert [c["name"] for c in env.http.get("/v1/me", headers=auth).json()["clients"]] == [a.name]
    assert _snapshot(env, b) == before


@pytest.mark.parametrize("role", ROLES)
def test_each_role_does_exactly_what_it_should(env: ApiEnv, role: str) -> None:
    a = env.a
    auth = env.headers(a.tokens[role])
    rank = ROLES.index(role)
    for (method, path), (needed, body) in ENDPOINTS.items():
        r = env.http.request(method, fill(path, a, a), json=body(a) if body else None, headers=auth)
        if rank >= ROLES.index(needed):
            assert r.status_code not in (401, 403, 404) and r.status_code < 500, (
                method,
                path,
                role,
                r.status_code,
                r.text,
            )
        else:
            assert r.status_code == 403, (method, path, role, r.status_code, r.text)
            assert needed in r.json()["detail"]
    for topic, push in INBOUND.items():
        r = env.http.post(
            f"/v1/inbound/{inbound_connection(a, topic)}/{topic}", json=push(), headers=auth
        )
        assert r.status_code == (202 if role == ADMIN else 403), (topic, role, r.text)
    r = env.http.post(
        f"/v1/inbound/{a.channel}/webhooks/orders/create", json={"id": 1}, headers=auth
    )
    assert r.status_code == 401, (role, r.text)  # a webhook is signed, never keyed


def test_platform_operations_need_a_platform_administrator(env: ApiEnv) -> None:
    client_admin = env.headers(env.a.tokens[ADMIN])
    root = env.headers(env.admin_session)
    user = {"email": "x@example.com", "password": "long enough pw"}
    for path, body in (("/v1/clients", {"name": "merchant-c"}), ("/v1/users", user)):
        assert env.http.post(path, json=body, headers=client_admin).status_code == 403
        assert env.http.post(path, json=body, headers=root).status_code == 201
    # The platform administrator sees every client.
    names = {c["name"] for c in env.http.get("/v1/me", headers=root).json()["clients"]}
    assert names >= {"merchant-a", "merchant-b", "merchant-c"}
    assert env.http.get(fill(C + "/items", env.b, env.b), headers=root).status_code == 200


def test_no_credentials_or_bad_ones_get_401(env: ApiEnv) -> None:
    path = fill(C + "/items", env.a, env.a)
    for headers in (
        {},
        env.headers("sy_key_nonsense"),
        env.headers("whatever"),
        {"Authorization": "Basic dXNlcjpwYXNz"},
    ):
        r = env.http.get(path, headers=headers)
        assert r.status_code == 401, r.text
        assert r.headers["www-authenticate"] == "Bearer"
        assert r.headers["content-type"] == "application/problem+json"
