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
from sqlalchemy import create_engine, text

from stockyard.connectors.base import ChannelProduct, ChannelVariant, Connector
from stockyard.connectors.http import HttpConnector
from stockyard.db import connect
from stockyard.errors import Misconfigured, PermanentError
from stockyard.sealing import KEY_ENV, KEY_FILE_ENV, Sealer
from stockyard.tenancy import Tenancy
from tests.support.api_env import ApiEnv
from tests.support.migrations import migrate_to
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


def test_the_upgrade_moves_credential_headers_into_sealed_secrets(
    empty_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, Sealer.new_key().decode())
    sealer = Sealer.for_database(url := empty_url)
    migrate_to(url, "0005")
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
        migrate_to(url, "0005")
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
        migrate_to(url, "0005")
        plain = {"base_url": "https://shop.example", "headers": {"Accept": "text/json"}}
        shop = _old_connection(url, "http", plain, None)
        connect(url).migrate()
        assert _stored(url, shop) == (plain, None)
    finally:
        pg_databases.drop(url)


# ------------------------------------------------- header names and values (review 6, 8)


@pytest.mark.parametrize(
    ("where", "name", "value"),
    [
        ("headers", "X-A", "café"),  # httpx encodes header values as ASCII: was a 500
        ("auth_headers", "X-Key", "é"),
        ("headers", "X-A", "a\r\nX-Injected: 1"),
        ("auth_headers", "X-Key", "k\n1"),
        ("headers", "X A", "v"),  # not a token: h11 refused every request at run time
        ("headers", "X-A\r\nX-B", "v"),
        ("auth_headers", "X:Key", "val-7q3"),
        ("headers", "", "v"),
        ("headers", "Ünïcode", "v"),
        # Hop-by-hop and framing headers are Stockyard's (and httpx's) to set: a tenant's
        # Host would pick a virtual host behind a reverse proxy the allowance opens.
        ("headers", "Host", "metadata.google.internal"),
        ("headers", "host", "metadata.google.internal"),
        ("headers", "Content-Length", "0"),
        ("headers", "Transfer-Encoding", "chunked"),
        ("headers", "Connection", "close"),
        ("headers", "Keep-Alive", "timeout=5"),
        ("headers", "Upgrade", "websocket"),
        ("headers", "TE", "trailers"),
        ("headers", "Trailer", "X-A"),
        ("headers", "Proxy-Connection", "keep-alive"),
        ("auth_headers", "Host", "metadata.google.internal"),
        ("auth_headers", "Proxy-Authorization", "Basic eA=="),
    ],
)
def test_bad_header_names_and_values_are_refused_naming_the_field(
    api: ApiEnv, where: str, name: str, value: str
) -> None:
    h = api.headers(api.a.tokens["administrator"])
    settings: dict[str, Any] = {"base_url": "https://shop.example"}
    secrets: dict[str, Any] = {}
    if where == "headers":
        settings["headers"] = {name: value}
    else:
        secrets["auth_headers"] = {name: value}
    body = {"kind": "channel", "connector": "http", "description": "x", "settings": settings}
    r = api.http.post(_connections(api), headers=h, json=body | {"secrets": secrets})
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert where in detail, detail
    assert value not in detail or where == "headers"  # a secret's value is never echoed
    patch = {"settings": settings} if where == "headers" else {"secrets": secrets}
    r = api.http.patch(f"{_connections(api)}/{api.a.channel}", headers=h, json=patch)
    assert r.status_code == 422, r.text
    assert where in r.json()["detail"]


def test_a_non_ascii_authorization_is_refused(api: ApiEnv) -> None:
    h = api.headers(api.a.tokens["administrator"])
    r = api.http.patch(
        f"{_connections(api)}/{api.a.channel}",
        headers=h,
        json={"secrets": {"authorization": "Bearer tök"}},
    )
    assert r.status_code == 422, r.text
    assert "authorization" in r.json()["detail"] and "tök" not in r.json()["detail"]


def test_ordinary_headers_still_pass(api: ApiEnv) -> None:
    h = api.headers(api.a.tokens["administrator"])
    settings = {
        "base_url": "https://shop.example",
        "headers": {"Accept": "application/json", "X-Tag": "a b\tc ~!"},
    }
    r = api.http.patch(
        f"{_connections(api)}/{api.a.channel}",
        headers=h,
        json={"settings": settings, "secrets": {"auth_headers": {"X-Api-Key": "k-1"}}},
    )
    assert r.status_code == 200, r.text


class Fussy(Connector):
    """A third-party connector whose construction fails with plain ValueErrors."""

    roles: ClassVar[frozenset[str]] = frozenset({"channel"})
    secret_settings: ClassVar[frozenset[str]] = frozenset({"password"})

    def __init__(self, settings: Any) -> None:
        super().__init__(settings)
        if settings.get("mode") == "unicode":
            "é".encode("ascii")
        raise ValueError(f"bad mode; password was {settings.get('password')}")


@pytest.mark.parametrize("mode", ["unicode", "value"])
def test_value_errors_from_a_connectors_construction_are_a_422(api: ApiEnv, mode: str) -> None:
    api.service.connectors.add("fussy", Fussy)
    h = api.headers(api.a.tokens["administrator"])
    body = {
        "kind": "channel",
        "connector": "fussy",
        "description": "x",
        "settings": {"mode": mode},
        "secrets": {"password": "pw-4c2d9e1f"},
    }
    r = api.http.post(_connections(api), headers=h, json=body)
    assert r.status_code == 422, r.text
    assert "pw-4c2d9e1f" not in r.text


# ------------------------------------------------------------- redaction (review 9c)


def test_the_token_part_and_each_auth_header_value_are_redacted() -> None:
    connector = HttpConnector(
        {
            "base_url": "https://shop.example",
            "authorization": "Bearer tok-a1b2c3d4",
            "auth_headers": {"X-Api-Key": "key-9z8y7x", "X-Other": "Token other-5e6f"},
        }
    )
    try:
        error = PermanentError(
            "HTTP 401 bad token tok-a1b2c3d4; key key-9z8y7x; other other-5e6f;"
            " whole Bearer tok-a1b2c3d4"
        )
        connector.redact_error(error)
    finally:
        connector.close()
    message = str(error)
    for secret in ("tok-a1b2c3d4", "key-9z8y7x", "other-5e6f"):
        assert secret not in message
    assert "HTTP 401" in message and "[redacted]" in message


@pytest.mark.parametrize(
    "shown",
    [
        lambda s: repr(s.encode()),  # httpx: "Illegal header value b'…\\x00'"
        lambda s: repr(s),
        lambda s: json.dumps(s),
        lambda s: __import__("urllib.parse").parse.quote(s, safe=""),
    ],
    ids=["bytes-repr", "str-repr", "json", "url-encoded"],
)
def test_a_secret_is_redacted_however_a_library_escapes_it(shown: Any) -> None:
    class Keyed(Connector):
        secret_settings = frozenset({"token"})

    secret = "tok-a1b2\x00c3d4/é"  # a token no connector's settings check refused yet
    error = PermanentError(f"bad header value {shown(secret)} refused")
    Keyed({"token": secret}).redact_error(error)
    assert "a1b2" not in str(error) and "[redacted]" in str(error), str(error)
