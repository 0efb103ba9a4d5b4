"""The `http` connector against a real HTTP server: how it signs, how it classifies the
answers it gets (transient or permanent), and how it is found (entry point) and configured."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest

from stockyard.connectors.base import REDACTED, ChannelProduct, ChannelVariant
from stockyard.connectors.http import HttpConnector, classify
from stockyard.connectors.registry import ConnectorRegistry
from stockyard.errors import PermanentError, TransientError
from stockyard.tenancy import Connection
from tests.support.remote import Remote


@pytest.fixture
def remote() -> Iterator[Remote]:
    server = Remote()
    yield server
    server.stop()


def _product() -> ChannelProduct:
    return ChannelProduct("TEE", {"title": "Tee"}, [ChannelVariant("TEE-M", {"price": "1"})])


def test_requests_are_signed_with_the_connections_secret(remote: Remote) -> None:
    remote.state.hmac_secret = "s3cret"
    signed = HttpConnector({"base_url": remote.url, "hmac_secret": "s3cret"})
    created = signed.create_product(_product(), "key-1")
    assert created.variants == {"TEE-M": created.variants["TEE-M"]}
    assert remote.calls[-1].headers["Idempotency-Key"] == "key-1"
    wrong = HttpConnector({"base_url": remote.url, "hmac_secret": "guess"})
    with pytest.raises(PermanentError, match="HTTP 401 bad signature"):
        wrong.create_product(_product(), "key-2")


def test_answers_are_classified_transient_or_permanent(remote: Remote) -> None:
    connector = HttpConnector({"base_url": remote.url, "authorization": "Bearer t"})  # a secret
    remote.fail(429)
    with pytest.raises(TransientError) as too_many:
        connector.create_product(_product(), "k")
    assert too_many.value.retry_after == 0.0
    remote.fail(502)
    with pytest.raises(TransientError, match="HTTP 502"):
        connector.create_product(_product(), "k")
    remote.fail(None)
    with pytest.raises(PermanentError, match="HTTP 422 title is required"):
        connector.create_product(ChannelProduct("X", {}, []), "k")
    assert remote.calls[-1].headers["Authorization"] == "Bearer t"
    # Deleting what is already gone is done, not an error.
    connector.delete_product("P-none", "k")


def test_an_unreachable_server_is_transient() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    connector = HttpConnector({"base_url": f"http://127.0.0.1:{port}", "timeout": 2})
    with pytest.raises(TransientError, match="create product: ConnectError"):
        connector.create_product(_product(), "k")


def test_bad_settings_are_a_clear_permanent_error() -> None:
    with pytest.raises(PermanentError, match="base_url"):
        HttpConnector({"base_url": "ftp://x"})
    with pytest.raises(PermanentError, match="unknown paths"):
        HttpConnector({"base_url": "http://x", "paths": {"nope": "/x"}})


def test_connectors_are_found_by_entry_point_and_rebuilt_on_new_settings(remote: Remote) -> None:
    registry = ConnectorRegistry.installed()
    assert "http" in registry.names()
    conn = Connection(
        1, 1, "channel", "http", "Shop", {"base_url": remote.url, "rules": {}}, "active"
    )
    first = registry.for_connection(conn, "channel")
    assert registry.for_connection(conn, "channel") is first
    changed = Connection(1, 1, "channel", "http", "Shop", {"base_url": remote.url + "/v2"}, "x")
    assert registry.for_connection(changed, "channel") is not first
    unknown = Connection(2, 1, "channel", "prestashop", "PS", {}, "active")
    with pytest.raises(PermanentError, match="'prestashop', which is not installed"):
        registry.for_connection(unknown, "channel")
    registry.close()


def test_a_secret_echoed_across_the_excerpt_cut_is_still_redacted() -> None:
    secret = "Bearer " + "k" * 40
    connector = HttpConnector({"base_url": "https://shop.example", "authorization": secret})
    body = "x" * 280 + secret + " and more"  # the old excerpt cut at 300, inside the secret
    error = classify(httpx.Response(400, text=body), "push product")
    assert error is not None
    connector.redact_error(error)
    assert "kkkkk" not in str(error)
    assert REDACTED in str(error)
