"""Credentials live in sealed secrets only: the `http` connector takes its auth headers from
secrets, settings that look like credentials are refused with a 422 naming the field,
and the upgrade (migration 0006) moves credential headers out of existing settings."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, text

import stockyard.migrations
from stockyard.connectors.base import ChannelProduct, ChannelVariant, Connector
from stockyard.connectors.http import HttpConnector
from stockyard.db import connect
from stockyard.errors import Misconfigured, PermanentError
from stockyard.sealing import KEY_ENV, KEY_FILE_ENV, Sealer
from stockyard.tenancy import Tenancy
from tests.support.api_env import ApiEnv
from tests.support.remote import Remote

TOKEN = "Bearer tok-7f3a9c1e55"
API_KEY = "key-0b4d2e8f91"


@pytest.fixture
def api(tmp_path: Path) -> Iterator[ApiEnv]:
    env = ApiEnv(f"sqlite:///{tmp_path}/api.db")
    yield env
    env.close()


@pytest.fixture
def remote() -> Iterator[Remote]:
    server = Remote()
    yield server
    server.stop()


def _connections(api: ApiEnv) -> str:
    return f"/v1/clients/{api.a.id}/connections"


@pytest.mark.parametrize(
    "header",
    [
        "Authorization",
        "authorization",
        "Proxy-Authorization",
        "Cookie",
        "X-Api-Key",
        "X-API-KEY",
        "api_key",
        "X-Auth-Token",
        "X-Shop-Secret",
        "X-Password",
    ],
)
def test_credential_headers_in_settings_are_refused(api: ApiEnv, header: str) -> None:
    h = api.headers(api.a.tokens["administrator"])
    settings = {"base_url": "https://shop.example", "headers": {"Accept": "x", header: "v"}}
    body = {"kind": "channel", "connector": "http", "description": "Shop", "settings": settings}
    r = api.http.post(_connections(api), headers=h, json=body)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert f"settings.headers.{header} is a credential" in detail and "auth_headers" in detail
    r = api.http.patch(
        f"{_connections(api)}/{api.a.channel}", headers=h, json={"settings": settings}
    )
    assert r.status_code == 422 and f"settings.headers.{header}" in r.json()["detail"]
    # Plain headers are fine.
    ok = {"base_url": "https://shop.example", "headers": {"Accept": "application/json"}}
    r = api.http.patch(f"{_connections(api)}/{api.a.channel}", headers=h, json={"settings": ok})
    assert r.status_code == 200, r.text


class Custom(Connector):
    """A third-party connector that declares nothing about its settings."""

    roles: ClassVar[frozenset[str]] = frozenset({"channel"})


@pytest.mark.parametrize(
    ("connector", "settings", "field"),
    [
        ("http", {"base_url": "https://user:pw@shop.example"}, "settings.base_url"),
        ("http", {"base_url": "https://shop.example/?api_key=abc"}, "api_key"),
        ("http", {"base_url": "https://shop.example", "authorization": "x"}, "authorization"),
        ("http", {"base_url": "https://shop.example", "auth_headers": {}}, "auth_headers"),
        ("http", {"base_url": "https://shop.example", "hmac_secret": "x"}, "hmac_secret"),
        ("custom", {"api_token": "x"}, "settings.api_token"),
        ("custom", {"client_secret": "x"}, "settings.client_secret"),
        ("custom", {"webhook_secret": "x"}, "settings.webhook_secret"),
    ],
)
def test_settings_that_look_like_credentials_are_refused(
    api: ApiEnv, connector: str, settings: dict[str, Any], field: str
) -> None:
    api.service.connectors.add("custom", Custom)
    h = api.headers(api.a.tokens["administrator"])
    body = {"kind": "channel", "connector": connector, "description": "x", "settings": settings}
    r = api.http.post(_connections(api), headers=h, json=body)
    assert r.status_code == 422, r.text
    assert field in r.json()["detail"] and "credential" in r.json()["detail"]


def test_vendures_channel_token_is_not_a_credential(api: ApiEnv) -> None:
    h = api.headers(api.a.tokens["administrator"])
    body = {
        "kind": "channel",
        "connector": "vendure",
        "description": "Vendure",
        "settings": {"url": "https://shop.example/admin-api", "channel_token": "eu-store"},
        "secrets": {"password": "pw-of-vendure"},
    }
    r = api.http.post(_connections(api), headers=h, json=body)
    assert r.status_code == 201, r.text


def _product() -> ChannelProduct:
    return ChannelProduct("TEE", {"title": "Tee"}, [ChannelVariant("TEE-M", {"price": "1"})])


def test_the_http_connector_takes_its_auth_headers_from_secrets(
    api: ApiEnv, remote: Remote
) -> None:
    h = api.headers(api.a.tokens["administrator"])
    body = {
        "kind": "channel",
        "connector": "http",
        "description": "Shop",
        "settings": {"base_url": remote.url, "headers": {"Accept": "application/json"}},
        "secrets": {"authorization": TOKEN, "auth_headers": {"X-Api-Key": API_KEY}},
    }
    r = api.http.post(_connections(api), headers=h, json=body)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["secrets"] == ["auth_headers", "authorization"]
    conn = Tenancy(api.queue.db).connection(created["id"])
    connector = api.service.connectors.for_connection(conn, "channel")
    assert isinstance(connector, HttpConnector)
    connector.create_product(_product(), "k-1")
    sent = remote.calls[-1].headers
    assert sent["Authorization"] == TOKEN and sent["X-Api-Key"] == API_KEY
    assert sent["Accept"] == "application/json"
    # A read-only member sees the settings and the secrets' names, never their values.
    reader = api.headers(api.a.tokens["read-only"])
    shown = api.http.get(f"{_connections(api)}/{created['id']}", headers=reader)
    assert shown.status_code == 200
    assert TOKEN.split()[1] not in shown.text and API_KEY not in shown.text
    assert shown.json()["secrets"] == ["auth_headers", "authorization"]
    # Nor does the connector's settings object show them.
    assert TOKEN.split()[1] not in repr(connector.config) and API_KEY not in repr(connector.config)


def test_a_remote_echoing_the_credentials_does_not_put_them_on_the_item(remote: Remote) -> None:
    connector = HttpConnector(
        {
            "base_url": remote.url,
            "authorization": TOKEN,
            "auth_headers": {"X-Api-Key": API_KEY},
            "hmac_secret": "hmac-5e6f7a8b",
        }
    )
    try:
        remote.fail(400)
        remote.state.echo_headers = ["Authorization", "X-Api-Key"]
        with pytest.raises(PermanentError) as failed:
            connector.create_product(_product(), "k")
    finally:
        connector.close()
    message = str(failed.value)
    assert "HTTP 400" in message and "[redacted]" in message
    assert TOKEN.split()[1] not in message and API_KEY not in message
    assert len(message) <= 1000


# ---------------------------------------------------------------------- the upgrade


def _migrate(url: str, revision: str) -> None:
    """Run the migrations up to `revision`, as stockyard.db does up to head."""
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(stockyard.migrations.__file__).parent))
    engine = create_engine(connect(url).sqlalchemy_url())
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
    finally:
        engine.dispose()


def _old_connection(url: str, connector: str, settings: dict[str, Any], sealed: str | None) -> int:
    engine = create_engine(connect(url).sqlalchemy_url())
    try:
        with engine.begin() as conn:
            name = f"m-{time.monotonic_ns()}"
            conn.execute(text("INSERT INTO clients (name, created_at) VALUES (:n, 0)"), {"n": name})
            client = conn.execute(
                text("SELECT id FROM clients WHERE name = :n"), {"n": name}
            ).scalar_one()
            conn.execute(
                text(
                    "INSERT INTO connections (client_id, kind, connector, description, settings,"
                    " status, created_at, secrets) VALUES (:c, 'channel', :k, 'Shop', :s,"
                    " 'active', :t, :x)"
                ),
                {"c": client, "k": connector, "s": json.dumps(settings), "t": 0, "x": sealed},
            )
            return int(conn.execute(text("SELECT max(id) FROM connections")).scalar_one())
    finally:
        engine.dispose()


def _stored(url: str, conn_id: int) -> tuple[dict[str, Any], str | None]:
    engine = create_engine(connect(url).sqlalchemy_url())
    try:
        with engine.begin() as conn:
            row = conn.execute(
                text("SELECT settings, secrets FROM connections WHERE id = :i"), {"i": conn_id}
            ).one()
    finally:
        engine.dispose()
    return json.loads(row[0]), row[1]


@pytest.fixture
def empty_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A database with no schema yet (the suite's PostgreSQL databases come migrated)."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path}/old.db"
        return
    databases = request.getfixturevalue("pg_databases")
    url = databases.create(migrated=False)
    yield url
    databases.drop(url)


def test_the_upgrade_moves_credential_headers_into_sealed_secrets(
    empty_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, Sealer.new_key().decode())
    sealer = Sealer.for_database(url := empty_url)
    _migrate(url, "0005")
    headers = {"Authorization": TOKEN, "Accept": "application/json", "X-Api-Key": API_KEY}
    settings = {"base_url": "https://shop.example", "headers": headers, "rules": {}}
    shop = _old_connection(url, "http", settings, sealer.seal({"hmac_secret": "h-1234"}))
    only = _old_connection(
        url, "http", {"base_url": "https://b.example", "headers": {"Cookie": "c=1"}}, None
    )
    other = _old_connection(url, "demo", {"headers": {"Authorization": "left alone"}}, None)

    connect(url).migrate()

    moved, sealed = _stored(url, shop)
    assert moved == {
        "base_url": "https://shop.example",
        "headers": {"Accept": "application/json"},
        "rules": {},
    }
    assert TOKEN not in (sealed or "") and API_KEY not in (sealed or "")
    assert sealer.open(sealed) == {
        "hmac_secret": "h-1234",
        "auth_headers": {"Authorization": TOKEN, "X-Api-Key": API_KEY},
    }
    moved, sealed = _stored(url, only)
    assert moved == {"base_url": "https://b.example"}
    assert sealer.open(sealed) == {"auth_headers": {"Cookie": "c=1"}}
    assert _stored(url, other)[0] == {"headers": {"Authorization": "left alone"}}
    # The connector built from them sends the same headers as before the upgrade.
    stored, sealed = _stored(url, shop)
    own = {k: v for k, v in stored.items() if k != "rules"} | sealer.open(sealed)
    connector = HttpConnector(own)
    try:
        assert connector.client.headers["Authorization"] == TOKEN
        assert connector.client.headers["X-Api-Key"] == API_KEY
        assert connector.client.headers["Accept"] == "application/json"
    finally:
        connector.close()


def test_the_upgrade_without_a_key_says_so_and_changes_nothing(
    pg_databases: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.delenv(KEY_FILE_ENV, raising=False)
    url = pg_databases.create(migrated=False)
    try:
        _migrate(url, "0005")
        settings = {"base_url": "https://shop.example", "headers": {"Authorization": TOKEN}}
        shop = _old_connection(url, "http", settings, None)
        with pytest.raises(Misconfigured) as failed:
            connect(url).migrate()
        assert f"http connections {shop} hold credentials" in str(failed.value)
        assert KEY_ENV in str(failed.value)
        assert _stored(url, shop) == (settings, None)
        # With the key, the same upgrade goes through.
        monkeypatch.setenv(KEY_ENV, Sealer.new_key().decode())
        connect(url).migrate()
        assert _stored(url, shop)[0] == {"base_url": "https://shop.example"}
    finally:
        pg_databases.drop(url)


def test_an_upgrade_with_nothing_to_move_needs_no_key(
    pg_databases: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.delenv(KEY_FILE_ENV, raising=False)
    url = pg_databases.create(migrated=False)
    try:
        _migrate(url, "0005")
        plain = {"base_url": "https://shop.example", "headers": {"Accept": "text/json"}}
        shop = _old_connection(url, "http", plain, None)
        connect(url).migrate()
        assert _stored(url, shop) == (plain, None)
    finally:
        pg_databases.drop(url)
