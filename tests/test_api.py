"""The REST API's behaviour: items, lanes, connections and their secrets, inbound pushes
and their signatures, accounts, errors, limits and operations endpoints."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stockyard.connectors.http import HttpConnector
from stockyard.sealing import KEY_ENV, KEY_FILE_ENV, Sealer
from stockyard.signing import sign
from stockyard.tenancy import Tenancy
from stockyard.web.api import openapi_document
from stockyard.web.settings import ApiSettings
from tests.support.api_env import ApiEnv, product
from tests.support.queues import drain

ROOT = Path(__file__).resolve().parent.parent
SECRET = "whsec_" + "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0IQ=="


@pytest.fixture
def env(tmp_path: Path) -> Iterator[ApiEnv]:
    e = ApiEnv(f"sqlite:///{tmp_path}/api.db")
    yield e
    e.close()


def admin(env: ApiEnv) -> dict[str, str]:
    return env.headers(env.a.tokens["administrator"])


def client_path(env: ApiEnv, rest: str) -> str:
    return f"/v1/clients/{env.a.id}{rest}"


# ------------------------------------------------------------------------------ items


def test_list_filter_page_and_act_on_items(env: ApiEnv) -> None:
    h = admin(env)
    made = env.http.post(
        client_path(env, "/items"),
        headers=h,
        json={
            "items": [
                {
                    "instruction": "update_variant",
                    "payload": {"variant_id": n},
                    "connection_id": env.a.channel,
                    "refs": [f"SKU-{n % 2}"],
                }
                for n in range(5)
            ]
        },
    )
    assert made.status_code == 201, made.text
    ids = made.json()["ids"]
    page = env.http.get(client_path(env, "/items"), headers=h, params={"ref": "SKU-1", "limit": 1})
    assert [i["id"] for i in page.json()["items"]] == [ids[3]]  # newest first
    rest = env.http.get(
        client_path(env, "/items"),
        headers=h,
        params={"ref": "SKU-1", "limit": 1, "cursor": page.json()["next_cursor"]},
    )
    assert [i["id"] for i in rest.json()["items"]] == [ids[1]]
    failed = env.http.get(client_path(env, "/items"), headers=h, params={"status": "failed"})
    assert [i["id"] for i in failed.json()["items"]] == [env.a.failed_item]
    assert failed.json()["items"][0]["error"] == "bad price"
    # Skip every queued item of SKU-0 in one call: the answer says how many.
    skipped = env.http.post(
        client_path(env, "/items/skip"),
        headers=h,
        json={"filter": {"ref": "SKU-0", "status": ["queued"]}},
    )
    assert skipped.json() == {"affected": 3, "ids": [ids[0], ids[2], ids[4]]}
    retried = env.http.post(client_path(env, f"/items/{env.a.failed_item}/retry"), headers=h)
    assert retried.json() == {"affected": 1, "ids": [env.a.failed_item]}
    again = env.http.post(client_path(env, f"/items/{env.a.failed_item}/retry"), headers=h)
    assert again.status_code == 409 and "failed" in again.json()["detail"]
    detail = env.http.get(client_path(env, f"/items/{env.a.failed_item}"), headers=h).json()
    assert detail["item"]["status"] == "queued"
    assert [a["action"] for a in detail["audit"]] == ["retry"]
    assert detail["audit"][0]["actor"].startswith("key:")
    assert [a["error"] for a in detail["attempts"]] == ["bad price"]


def test_lanes_blocked_first_pause_and_resume(env: ApiEnv) -> None:
    h = admin(env)
    lanes = env.http.get(client_path(env, "/lanes"), headers=h).json()
    assert lanes[0]["lane_id"] == env.a.channel and lanes[0]["state"] == "blocked"
    assert lanes[0]["head_error"] == "bad price" and lanes[0]["waiting"] == 1
    lane = client_path(env, f"/lanes/{env.a.source}")
    assert (
        env.http.post(lane + "/pause", headers=h, json={"reason": "ERP upgrade"}).status_code == 204
    )
    assert env.http.post(lane + "/pause", headers=h).status_code == 409
    states = {
        v["lane_id"]: v["state"] for v in env.http.get(client_path(env, "/lanes"), headers=h).json()
    }
    assert states[env.a.source] == "paused"
    assert env.http.post(lane + "/resume", headers=h).status_code == 204


def test_enqueue_is_all_or_nothing_with_clear_errors(env: ApiEnv) -> None:
    h = admin(env)
    before = env.queue.count(_everything(env))
    r = env.http.post(
        client_path(env, "/items"),
        headers=h,
        json={"items": [{"instruction": "sync_order"}, {"instruction": "no_such_thing"}]},
    )
    assert r.status_code == 422 and "unknown instruction 'no_such_thing'" in r.json()["detail"]
    r = env.http.post(
        client_path(env, "/items"), headers=h, json={"items": [{"instruction": "update_product"}]}
    )
    assert r.status_code == 422 and "blocking" in r.json()["detail"]
    assert env.queue.count(_everything(env)) == before
    key = {"items": [{"instruction": "sync_order", "idempotency_key": "mail-1"}]}
    first = env.http.post(client_path(env, "/items"), headers=h, json=key).json()["ids"]
    assert env.http.post(client_path(env, "/items"), headers=h, json=key).json()["ids"] == first


def _everything(env: ApiEnv):  # type: ignore[no-untyped-def]
    from stockyard.engine import ItemFilter

    return ItemFilter(env.a.id)


# ------------------------------------------------------------------------ connections


def test_secrets_are_write_only_and_encrypted_at_rest(env: ApiEnv) -> None:
    h = admin(env)
    body = {
        "kind": "channel",
        "connector": "http",
        "description": "Signed shop",
        "settings": {"base_url": "http://127.0.0.1:9"},
        "secrets": {"hmac_secret": "s3cr3t-value", "webhook_secret": SECRET},
    }
    r = env.http.post(client_path(env, "/connections"), headers=h, json=body)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["secrets"] == ["hmac_secret", "webhook_secret"]
    assert "s3cr3t-value" not in r.text
    for url in (
        client_path(env, "/connections"),
        client_path(env, f"/connections/{created['id']}"),
    ):
        assert "s3cr3t-value" not in env.http.get(url, headers=h).text
    stored = env.queue.db.run(
        "SELECT settings, secrets FROM connections WHERE id = :id", id=created["id"]
    ).fetchone()
    assert "s3cr3t-value" not in stored[0] + stored[1]
    # The connector gets the secret; Stockyard's own webhook_secret stays with Stockyard.
    conn = Tenancy(env.queue.db).connection(created["id"])
    connector = env.service.connectors.for_connection(conn, "channel")
    assert isinstance(connector, HttpConnector)
    assert connector.config.hmac_secret == "s3cr3t-value"
    # Secrets merge; null removes one.
    r = env.http.patch(
        client_path(env, f"/connections/{created['id']}"),
        headers=h,
        json={"secrets": {"hmac_secret": None}},
    )
    assert r.json()["secrets"] == ["webhook_secret"]
    # The audit trail names who changed what, and secrets by name only.
    trail = env.http.get(client_path(env, "/audit"), headers=h)
    assert "s3cr3t-value" not in trail.text
    latest = trail.json()["entries"][:2]
    assert [e["action"] for e in latest] == ["connection.update", "connection.create"]
    assert latest[0]["actor"].startswith("key:") and latest[0]["detail"]["secrets"] == [
        "hmac_secret"
    ]


def test_without_a_secrets_key_only_secrets_need_one(
    env: ApiEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL without STOCKYARD_SECRET_KEY: everything works until a secret is set."""

    def no_key() -> Sealer:
        return Sealer.for_database("postgresql://db.example/stockyard")

    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.delenv(KEY_FILE_ENV, raising=False)
    env.service._sealer = no_key
    h = admin(env)
    assert env.http.get(client_path(env, "/connections"), headers=h).status_code == 200
    r = env.http.post(
        f"/v1/inbound/{env.a.source}/customers", headers=h, json={"customers": [{"code": "C-1"}]}
    )
    assert r.status_code == 202, r.text
    r = env.http.patch(
        client_path(env, f"/connections/{env.a.source}"),
        headers=h,
        json={"secrets": {"webhook_secret": "x"}},
    )
    assert r.status_code == 503 and "STOCKYARD_SECRET_KEY" in r.json()["detail"]


def test_bad_connection_settings_are_refused_up_front(env: ApiEnv) -> None:
    h = admin(env)
    url = client_path(env, "/connections")
    cases: list[tuple[dict[str, Any], str]] = [
        ({"connector": "prestashop"}, "'prestashop' is not installed"),
        ({"settings": {"base_url": "ftp://x"}}, "base_url"),
        ({"settings": {"base_url": "http://x", "hmac_secret": "x"}}, "send it in secrets"),
        ({"settings": {"base_url": "http://x", "rules": {"price_tier": 5}}}, "price_tier"),
        ({"kind": "warehouse"}, "kind"),
    ]
    for change, message in cases:
        body = {
            "kind": "channel",
            "connector": "http",
            "description": "Shop",
            "settings": {"base_url": "http://x"},
        } | change
        r = env.http.post(url, headers=h, json=body)
        assert r.status_code == 422, (change, r.text)
        assert message in r.json()["detail"], (change, r.json())


def test_disabling_a_connection_pauses_its_lane_and_refuses_pushes(env: ApiEnv) -> None:
    h = admin(env)
    url = client_path(env, f"/connections/{env.a.source}")
    assert env.http.post(url + "/disable", headers=h).json()["status"] == "disabled"
    lane = next(v for v in env.queue.lanes(env.a.id) if v.lane_id == env.a.source)
    assert lane.paused
    r = env.http.post(
        f"/v1/inbound/{env.a.source}/products", headers=h, json={"products": [product("P", "P-1")]}
    )
    assert r.status_code == 409
    assert env.http.post(url + "/enable", headers=h).json()["status"] == "active"
    assert not next(v for v in env.queue.lanes(env.a.id) if v.lane_id == env.a.source).paused


# ---------------------------------------------------------------------------- inbound


def _signed_source(env: ApiEnv) -> int:
    env.service.update_connection(
        env.root, env.a.id, env.a.source, secrets={"webhook_secret": SECRET}
    )
    return env.a.source


def test_inbound_signatures_good_bad_missing_and_replayed(env: ApiEnv) -> None:
    source = _signed_source(env)
    url = f"/v1/inbound/{source}/products"
    body = json.dumps({"products": [product("P-9", "SKU-9")]}).encode()
    json_type = {"content-type": "application/json"}

    good = sign(SECRET, "msg_1", body)
    r = env.http.post(url, content=body, headers=json_type | good)
    assert r.status_code == 202, r.text
    created = r.json()["items"]
    assert len(created) == 1

    # The same delivery again (a sender's retry, or a replay inside the window): no new item.
    r = env.http.post(url, content=body, headers=json_type | good)
    assert r.status_code == 202 and r.json()["items"] == created

    refused = {
        "missing": {},
        "bad": sign("whsec_b3RoZXItc2VjcmV0", "msg_2", body),
        "tampered": sign(SECRET, "msg_3", body.replace(b"SKU-9", b"SKU-8")),
        "replayed later": sign(SECRET, "msg_1", body, now=time.time() - 3600),
        "from the future": sign(SECRET, "msg_4", body, now=time.time() + 3600),
    }
    for case, headers in refused.items():
        r = env.http.post(url, content=body, headers=json_type | headers)
        assert r.status_code == 401, (case, r.text)
        assert r.headers["content-type"] == "application/problem+json"
    # A signed connection does not take a key instead of a signature.
    r = env.http.post(url, content=body, headers=json_type | admin(env))
    assert r.status_code == 401
    skus = [
        i.refs
        for i in env.queue.list_items(_everything(env), 100)
        if i.instruction == "sync_product"
    ]
    assert skus == [["P-9", "SKU-9"]]


def test_pushed_products_reach_the_catalog(env: ApiEnv) -> None:
    h = admin(env)
    r = env.http.post(
        f"/v1/inbound/{env.a.source}/products",
        headers=h,
        json={"products": [product("TEE", "TEE-S", "12.50"), product("CAP", "CAP-1", "8.00")]},
    )
    assert r.status_code == 202, r.text
    env.service.set_connection_enabled(env.root, env.a.id, env.a.channel, False)  # no pushes out
    drain(env.queue, env.application.handlers)
    products = env.http.get(client_path(env, "/products"), headers=h).json()["products"]
    assert [p["code"] for p in products] == ["CAP", f"P-{env.a.name}", "TEE"]
    variants = env.http.get(
        client_path(env, "/variants"), headers=h, params={"cursor": "CAP-1", "limit": 1}
    ).json()
    assert [v["sku"] for v in variants["variants"]] == ["SKU-merchant-a"]
    assert variants["next_cursor"] == "SKU-merchant-a"
    tee = next(p for p in products if p["code"] == "TEE")
    detail = env.http.get(client_path(env, f"/products/{tee['id']}"), headers=h).json()
    assert detail["variants"][0]["price"] == "12.50"


def test_inbound_validation_names_the_field(env: ApiEnv) -> None:
    r = env.http.post(
        f"/v1/inbound/{env.a.source}/products",
        headers=admin(env),
        json={"products": [{"title": "No variants", "variants": [{"price": "1"}]}]},
    )
    assert r.status_code == 422
    fields = [e["field"] for e in r.json()["errors"]]
    assert "products.0.variants.0.sku" in fields
    r = env.http.post(
        f"/v1/inbound/{env.a.channel}/products",
        headers=admin(env),
        json={"products": [product("P", "P-1")]},
    )
    assert r.status_code == 422 and "come from a source" in r.json()["detail"]


# --------------------------------------------------------------------------- accounts


def test_keys_sessions_and_revocation(env: ApiEnv) -> None:
    root = env.headers(env.admin_session)
    made = env.http.post(
        client_path(env, "/keys"), headers=root, json={"name": "deploy", "role": "read-only"}
    ).json()
    token = made.pop("token")
    assert token.startswith(made["prefix"])
    assert all(
        k.get("token") is None for k in env.http.get(client_path(env, "/keys"), headers=root).json()
    )
    assert env.http.get("/v1/me", headers=env.headers(token)).status_code == 200
    stored = env.queue.db.connection().execute("SELECT token_hash FROM api_keys").fetchall()
    assert token not in {r[0] for r in stored}
    env.http.delete(client_path(env, f"/keys/{made['id']}"), headers=root)
    assert env.http.get("/v1/me", headers=env.headers(token)).status_code == 401

    r = env.http.post("/v1/sessions", json={"email": "root@example.com", "password": "wrong"})
    assert r.status_code == 401 and r.json()["detail"] == "wrong email or password"
    session = env.http.post(
        "/v1/sessions", json={"email": "ROOT@example.com", "password": "correct horse battery"}
    ).json()
    h = env.headers(session["token"])
    assert env.http.get("/v1/me", headers=h).json()["platform_admin"] is True
    assert env.http.delete("/v1/sessions/current", headers=h).status_code == 204
    assert env.http.get("/v1/me", headers=h).status_code == 401


def test_members_get_roles_and_can_log_in(env: ApiEnv) -> None:
    h = admin(env)
    # A client's administrator adds members but never sets their password (the account
    # may be shared with other clients): a platform administrator sets the first one.
    r = env.http.put(
        client_path(env, "/members"),
        headers=h,
        json={"email": "clerk@example.com", "role": "read-only", "password": "long enough pw"},
    )
    assert r.status_code == 422 and "password" in r.json()["detail"]
    r = env.http.put(
        client_path(env, "/members"),
        headers=h,
        json={"email": "clerk@example.com", "role": "read-only"},
    )
    assert r.json()["role"] == "read-only"
    env.service.set_password(env.root, "clerk@example.com", "long enough pw")
    token = env.http.post(
        "/v1/sessions", json={"email": "clerk@example.com", "password": "long enough pw"}
    ).json()["token"]
    me = env.http.get("/v1/me", headers=env.headers(token)).json()
    assert me["clients"] == [{"id": env.a.id, "name": env.a.name, "role": "read-only"}]
    r = env.http.post(
        client_path(env, f"/items/{env.a.failed_item}/skip"), headers=env.headers(token)
    )
    assert r.status_code == 403


# ----------------------------------------------------------------- errors and limits


def test_errors_are_problem_documents(env: ApiEnv) -> None:
    h = admin(env)
    r = env.http.get("/v1/nowhere", headers=h)
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    assert "no such endpoint" in r.json()["detail"]
    r = env.http.post(
        client_path(env, "/items"),
        headers=h,
        content=b"{not json",
    )
    assert r.status_code == 422 and r.json()["title"] == "Unprocessable Entity"
    r = env.http.get(client_path(env, "/items"), headers=h, params={"status": "lost"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"].startswith("status")
    r = env.http.get(client_path(env, "/items/99999999999999999999"), headers=h)
    assert r.status_code == 422


def test_body_size_limit(tmp_path: Path) -> None:
    env = ApiEnv(f"sqlite:///{tmp_path}/api.db", ApiSettings(max_body=2000, rate_per_second=0))
    try:
        big = {"products": [product(f"P{n}", f"S{n}") for n in range(100)]}
        r = env.http.post(f"/v1/inbound/{env.a.source}/products", headers=admin(env), json=big)
        assert r.status_code == 413 and "2000 bytes" in r.json()["detail"]

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
            yield json.dumps(big).encode()

        r = env.http.post(
            f"/v1/inbound/{env.a.source}/products", headers=admin(env), content=chunks()
        )
        assert r.status_code == 413
    finally:
        env.close()


def test_rate_limit_answers_429_with_retry_after(tmp_path: Path) -> None:
    env = ApiEnv(f"sqlite:///{tmp_path}/api.db", ApiSettings(rate_per_second=0.5, rate_burst=3))
    try:
        h = admin(env)
        codes = [env.http.get("/v1/me", headers=h).status_code for _ in range(5)]
        assert codes == [200, 200, 200, 429, 429]
        r = env.http.get("/v1/me", headers=h)
        assert int(r.headers["retry-after"]) >= 1 and "too many requests" in r.json()["detail"]
        # Per key: another caller is not held back.
        assert (
            env.http.get("/v1/me", headers=env.headers(env.b.tokens["read-only"])).status_code
            == 200
        )
    finally:
        env.close()


# ------------------------------------------------------------------------- operations


def test_health_readiness_and_metrics(env: ApiEnv) -> None:
    assert env.http.get("/healthz").json() == {"status": "ok"}
    assert env.http.get("/readyz").status_code == 200
    text = env.http.get("/metrics").text
    assert 'stockyard_items{instruction="update_product",status="failed"} 2.0' in text
    assert "stockyard_lanes_blocked 2.0" in text


def test_readyz_fails_on_an_uninitialised_database(env: ApiEnv) -> None:
    with env.queue.db.write() as cur:
        cur.execute("DROP TABLE alembic_version")
    r = env.http.get("/readyz")
    assert r.status_code == 503 and "stockyard init" in r.json()["detail"]


def test_openapi_document_in_the_repository_is_current(env: ApiEnv) -> None:
    kept = (ROOT / "docs" / "openapi.json").read_text()
    assert kept == openapi_document(env.app), "run: python -m stockyard.web.api > docs/openapi.json"
