"""Outbound requests a tenant can aim (connectors, image downloads, webhooks) never reach
loopback, private, link-local or other non-global addresses unless the deployment allows
them (STOCKYARD_OUTBOUND_ALLOW), checked on the address actually connected to.

Real connections go only to 127.0.0.1 (a local receiver that counts what reaches it);
private ranges are exercised through the classification function and a resolver stub."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import ip_address
from typing import Any

import httpcore
import pytest

from stockyard import outbound
from stockyard.connectors.base import ChannelProduct, ChannelVariant
from stockyard.connectors.http import HttpConnector
from stockyard.connectors.tryton.client import TrytonClient
from stockyard.connectors.vendure import VendureConnector
from stockyard.connectors.vendure.client import VendureClient
from stockyard.engine import Request
from stockyard.engine.handlers import Context, HandlerRegistry
from stockyard.errors import Misconfigured, PermanentError
from stockyard.notify import runner
from stockyard.notify.settings import NotifySettings
from stockyard.notify.subscriptions import Subscriptions
from stockyard.outbound import ALLOW_ENV, Allowance, GuardedBackend, OutboundRefused, refusal
from stockyard.sealing import Sealer
from stockyard.tenancy import Tenancy
from tests.support.queues import UrlMaker, drain, make_queue


class Receiver:
    """An HTTP server on 127.0.0.1 that counts every request reaching it; GET /redirect
    answers a redirect to `redirect_to`."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        self.hosts: list[str] = []
        self.redirect_to = ""
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                outer.hits.append(f"{self.command} {self.path}")
                outer.hosts.append(self.headers.get("host", ""))
                length = int(self.headers.get("content-length") or 0)
                self.rfile.read(length)
                if self.path.startswith("/redirect"):
                    self.send_response(302)
                    self.send_header("location", outer.redirect_to)
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return
                body = b'{"products": [], "secret-page": "internal admin"}'
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        # A short poll: shutdown() waits for it (0.5 s by default, at every test's end).
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


@pytest.fixture
def guarded(monkeypatch: pytest.MonkeyPatch) -> None:
    """The default of a deployment: nothing allowed (the suite allows 127.0.0.1)."""
    monkeypatch.delenv(ALLOW_ENV, raising=False)


# ------------------------------------------------------------- which addresses are refused


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("fc00::1", "private"),
        ("fec0::1", "site-local"),  # deprecated (RFC 3879), still routed inside some sites
        ("feff::1", "site-local"),
        ("169.254.169.254", "link-local"),  # cloud metadata services
        ("fe80::1", "link-local"),
        ("100.64.0.1", "shared (CGNAT)"),
        ("224.0.1.1", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "private"),
        ("255.255.255.255", "private"),
        ("198.18.0.1", "private"),  # benchmarking
        ("192.0.2.1", "private"),  # documentation
        ("2001:db8::1", "private"),
        ("::ffff:127.0.0.1", "loopback (embedded in an IPv6 address)"),
        ("::ffff:10.1.2.3", "private (embedded in an IPv6 address)"),
        ("::ffff:169.254.169.254", "link-local (embedded in an IPv6 address)"),
        ("64:ff9b::7f00:1", "loopback (embedded in an IPv6 address)"),  # NAT64
        ("2002:7f00:1::1", "loopback (embedded in an IPv6 address)"),  # 6to4
        ("::7f00:1", "loopback (embedded in an IPv6 address)"),  # IPv4-compatible
    ],
)
def test_non_global_addresses_are_refused(address: str, reason: str) -> None:
    assert refusal(address) == reason


@pytest.mark.parametrize(
    "address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"]
)
def test_global_addresses_pass(address: str) -> None:
    assert refusal(address) is None


def test_the_allowance_names_hosts_addresses_and_networks() -> None:
    allowed = Allowance.parse(" 127.0.0.1, 10.0.0.0/8 ,ERP.internal., fd00::/8,")
    assert allowed.allows("erp.internal") and allowed.allows("Erp.Internal.")
    assert allowed.allows("whatever", ip_address("10.200.0.1"))
    assert allowed.allows("x", ip_address("127.0.0.1"))
    assert allowed.allows("x", ip_address("fd12::1"))
    assert not allowed.allows("x", ip_address("127.0.0.2"))
    assert not allowed.allows("other.internal", ip_address("192.168.0.1"))
    with pytest.raises(Misconfigured, match=ALLOW_ENV):
        Allowance.parse("10.0.0.0/8, not a host")


# ------------------------------------------------------- the check at connect time, stubbed


class Recorder(httpcore.NetworkBackend):
    """Stands in for the socket layer: records where it was asked to connect."""

    def __init__(self) -> None:
        self.connected: list[tuple[str, int]] = []

    def connect_tcp(self, host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        self.connected.append((host, port))
        raise httpcore.ConnectError("stub: no real connection")


def test_dns_rebinding_is_checked_on_the_address_connected_to(
    guarded: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = iter([["93.184.216.34"], ["10.0.0.7"], ["169.254.169.254", "10.1.1.1"]])
    monkeypatch.setattr(outbound, "_resolve", lambda host, port: next(answers))
    recorder = Recorder()
    backend = GuardedBackend(recorder)
    # First the name points to a public address: the connection goes to exactly that one.
    with pytest.raises(httpcore.ConnectError, match="stub"):
        backend.connect_tcp("shop.example", 443)
    assert recorder.connected == [("93.184.216.34", 443)]
    # Then the same name points inside: refused before any connection is attempted.
    for _ in range(2):
        with pytest.raises(OutboundRefused, match=r"shop\.example: it resolves to a"):
            backend.connect_tcp("shop.example", 443)
    assert recorder.connected == [("93.184.216.34", 443)]


def test_only_the_allowed_addresses_of_a_name_are_used(
    guarded: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outbound, "_resolve", lambda host, port: ["10.0.0.7", "93.184.216.34"])
    recorder = Recorder()
    with pytest.raises(httpcore.ConnectError):
        GuardedBackend(recorder).connect_tcp("mixed.example", 80)
    assert recorder.connected == [("93.184.216.34", 80)]
    # A deployment that allows the name (or the range) reaches its internal system.
    monkeypatch.setenv(ALLOW_ENV, "erp.internal")
    recorder = Recorder()
    with pytest.raises(httpcore.ConnectError):
        GuardedBackend(recorder).connect_tcp("erp.internal", 80)
    assert recorder.connected == [("10.0.0.7", 80), ("93.184.216.34", 80)]
    monkeypatch.setenv(ALLOW_ENV, "10.0.0.0/8")
    recorder = Recorder()
    with pytest.raises(httpcore.ConnectError):
        GuardedBackend(recorder).connect_tcp("anything.example", 80)
    assert recorder.connected == [("10.0.0.7", 80), ("93.184.216.34", 80)]


# ------------------------------------------------- real clients against a local receiver


def _product() -> ChannelProduct:
    return ChannelProduct("TEE", {"title": "Tee"}, [ChannelVariant("TEE-M", {"price": "1"})])


def _fetch(settings: dict[str, Any]) -> Any:
    connector = HttpConnector(settings)
    try:
        return connector.fetch_products(None)
    finally:
        connector.close()


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::ffff:127.0.0.1]", "rebind.test"])
def test_the_http_connector_cannot_reach_loopback(
    guarded: None, monkeypatch: pytest.MonkeyPatch, receiver: Receiver, host: str
) -> None:
    real = outbound._resolve
    # "rebind.test" stands for a name the tenant controls, pointed at 127.0.0.1.
    monkeypatch.setattr(
        outbound, "_resolve", lambda h, port: ["127.0.0.1"] if h == "rebind.test" else real(h, port)
    )
    with pytest.raises(OutboundRefused, match="loopback"):
        _fetch({"base_url": f"http://{host}:{receiver.port}"})
    connector = HttpConnector({"base_url": f"http://rebind.test:{receiver.port}"})
    try:
        with pytest.raises(OutboundRefused):
            connector.create_product(_product(), "k")
    finally:
        connector.close()
    assert receiver.hits == []
    # Allowed, the same name reaches the checked address, and asks for the name.
    monkeypatch.setenv(ALLOW_ENV, "127.0.0.0/8")
    assert _fetch({"base_url": f"http://rebind.test:{receiver.port}"}).records == []
    assert receiver.hits == ["GET /products"] and receiver.hosts == [f"rebind.test:{receiver.port}"]


def test_paths_cannot_leave_the_base_url(guarded: None, receiver: Receiver) -> None:
    for path in (f"{receiver.url}/orders", "//127.0.0.1/orders", "orders"):
        with pytest.raises(PermanentError, match=r"paths\.orders"):
            HttpConnector({"base_url": "https://shop.example", "paths": {"orders": path}})
    assert receiver.hits == []


def test_tryton_and_vendure_cannot_reach_loopback(
    guarded: None, monkeypatch: pytest.MonkeyPatch, receiver: Receiver
) -> None:
    for build in (
        lambda url: TrytonClient(url, "shop", "admin", "pw", timeout=5),
        lambda url: VendureClient(url + "/admin-api", "superadmin", "pw", timeout=5),
    ):
        with pytest.raises(OutboundRefused, match="is a loopback address"):
            build(receiver.url)
    monkeypatch.setattr(outbound, "_resolve", lambda host, port: ["127.0.0.1"])
    tryton = TrytonClient(f"http://erp.example:{receiver.port}", "shop", "admin", "pw", timeout=5)
    vendure = VendureClient(f"http://shop.example:{receiver.port}/admin-api", "a", "pw", timeout=5)
    try:
        with pytest.raises(OutboundRefused, match="resolves to a loopback"):
            tryton.model("product.template", "search", [])
        with pytest.raises(OutboundRefused, match="resolves to a loopback"):
            vendure.query("{ me { id } }")
    finally:
        tryton.close()
        vendure.close()
    assert receiver.hits == []


def test_image_downloads_and_their_redirects_are_checked(
    monkeypatch: pytest.MonkeyPatch, receiver: Receiver
) -> None:
    monkeypatch.setenv(ALLOW_ENV, "")
    shop = VendureConnector({"url": "https://shop.example/admin-api", "password": "pw"})
    try:
        with pytest.raises(OutboundRefused):
            shop._download(f"{receiver.url}/image.png")
        assert receiver.hits == []
        # The deployment allows the name "localhost" only; a redirect from there to the
        # same server by address is refused at its own connection.
        monkeypatch.setenv(ALLOW_ENV, "localhost")
        receiver.redirect_to = f"{receiver.url}/image.png"
        with pytest.raises(OutboundRefused, match=r"127\.0\.0\.1"):
            shop._download(f"http://localhost:{receiver.port}/redirect")
        assert receiver.hits == ["GET /redirect"]
    finally:
        shop.close()


def test_webhooks_cannot_reach_loopback(
    new_url: UrlMaker, monkeypatch: pytest.MonkeyPatch, receiver: Receiver
) -> None:
    queue = make_queue(new_url())
    try:
        client = Tenancy(queue.db).client_id("default")
        sealer = Sealer([Sealer.new_key()])
        subs = Subscriptions(queue.db, lambda: sealer)
        # Saved while the deployment allowed it (or while the name pointed elsewhere) ...
        subs.add(client, "webhook", f"{receiver.url}/hooks", [], [])
        monkeypatch.delenv(ALLOW_ENV)  # ... delivered when it no longer does.
        channel = Tenancy(queue.db).add_connection(client, "channel", "http", "Shop").id
        handlers = HandlerRegistry()

        def fail(ctx: Context) -> None:
            raise PermanentError("price tier missing")

        handlers.register("update_product", fail)
        settings = NotifySettings(summary_hour=None, digest_window=60.0)
        runner.install(handlers, subs, settings)
        queue.enqueue(client, [Request("update_product", {"product_id": 1}, channel, ("A",))])
        drain(queue, handlers)
        sent = runner.notify_due(queue, subs, settings, time.time() + 61)
        assert sent
        drain(queue, handlers)
        for item_id in sent:
            item = queue.get(client, item_id)
            assert item.status == "failed"
            assert "loopback" in (item.error or "") and ALLOW_ENV in (item.error or "")
        assert receiver.hits == []
    finally:
        queue.db.close()


def test_the_suite_allowance_still_reaches_local_servers(receiver: Receiver) -> None:
    connector = HttpConnector({"base_url": receiver.url})
    try:
        assert connector.fetch_products(None).records == []
    finally:
        connector.close()
    assert receiver.hits == ["GET /products"]


# --------------------------------------------------------------------- the check at save


@pytest.fixture
def api(tmp_path: Any) -> Iterator[Any]:
    from tests.support.api_env import ApiEnv

    env = ApiEnv(f"sqlite:///{tmp_path}/api.db")
    yield env
    env.close()


@pytest.mark.parametrize(
    ("connector", "settings", "secrets", "reason"),
    [
        ("http", {"base_url": "http://169.254.169.254/latest"}, {}, "link-local"),
        ("http", {"base_url": "http://127.0.0.1:8080"}, {}, "loopback"),
        ("http", {"base_url": "http://localhost:8080"}, {}, "loopback"),
        ("http", {"base_url": "http://[::ffff:10.0.0.1]/"}, {}, "private"),
        ("http", {"base_url": "http://0x7f000001/"}, {}, "loopback"),
        ("http", {"base_url": "http://[fec0::1]/"}, {}, "site-local"),
        ("tryton", {"url": "http://10.0.0.2:8000", "database": "d"}, {"password": "p"}, "private"),
        ("vendure", {"url": "http://192.168.0.9/admin-api"}, {"password": "p"}, "private"),
    ],
)
def test_connections_aimed_inside_are_refused_at_save(
    api: Any,
    monkeypatch: pytest.MonkeyPatch,
    connector: str,
    settings: dict[str, Any],
    secrets: dict[str, Any],
    reason: str,
) -> None:
    monkeypatch.delenv(ALLOW_ENV)
    h = api.headers(api.a.tokens["administrator"])
    kind = "channel" if connector != "tryton" else "source"
    body = {"kind": kind, "connector": connector, "description": "x", "settings": settings}
    r = api.http.post(
        f"/v1/clients/{api.a.id}/connections", headers=h, json=body | {"secrets": secrets}
    )
    assert r.status_code == 422, r.text
    assert reason in r.json()["detail"] and ALLOW_ENV in r.json()["detail"]
    # Changing an existing connection's settings is checked the same way.
    r = api.http.patch(
        f"/v1/clients/{api.a.id}/connections/{api.a.channel}",
        headers=h,
        json={"settings": {"base_url": "http://169.254.169.254/"}},
    )
    assert r.status_code == 422 and "link-local" in r.json()["detail"]
    # A deployment that allows the range accepts it.
    monkeypatch.setenv(ALLOW_ENV, "10.0.0.0/8,169.254.0.0/16")
    r = api.http.patch(
        f"/v1/clients/{api.a.id}/connections/{api.a.channel}",
        headers=h,
        json={"settings": {"base_url": "http://169.254.169.254/"}},
    )
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("http://127.0.0.1:9/hook", "loopback"),
        ("http://localhost/hook", "loopback"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("https://10.1.2.3/hook", "private"),
        ("http://[fd00::1]/hook", "private"),
        ("http://0.0.0.0:8000/", "unspecified"),
        ("https://xn--/hook", "not a valid URL"),
    ],
)
def test_webhook_targets_aimed_inside_are_refused_at_save(
    api: Any, monkeypatch: pytest.MonkeyPatch, target: str, reason: str
) -> None:
    monkeypatch.delenv(ALLOW_ENV)
    h = api.headers(api.a.tokens["administrator"])
    r = api.http.post(
        f"/v1/clients/{api.a.id}/subscriptions",
        headers=h,
        json={"kind": "webhook", "target": target},
    )
    assert r.status_code == 422, r.text
    assert reason in r.json()["detail"]
    assert ALLOW_ENV in r.json()["detail"] or reason == "not a valid URL"
    ok = api.http.post(
        f"/v1/clients/{api.a.id}/subscriptions",
        headers=h,
        json={"kind": "webhook", "target": "https://hooks.example.com/x"},
    )
    assert ok.status_code == 201


@pytest.mark.parametrize(
    "url", ["http://a b", "http://shop .example/", "https://a%20b/", "http://a<b>/", "http://-/"]
)
def test_urls_with_invalid_hosts_are_refused_at_save(api: Any, url: str) -> None:
    h = api.headers(api.a.tokens["administrator"])
    body = {"kind": "channel", "connector": "http", "description": "x"}
    r = api.http.post(
        f"/v1/clients/{api.a.id}/connections",
        headers=h,
        json=body | {"settings": {"base_url": url}},
    )
    assert r.status_code == 422, r.text
    assert "settings.base_url" in r.json()["detail"]
    assert outbound.url_refusal(url) is not None


@pytest.mark.parametrize(
    "url", ["https://shop.example/", "https://café.example/", "http://a_b.example:8080/x"]
)
def test_valid_host_names_pass_the_check_at_save(url: str) -> None:
    assert outbound.url_refusal(url) is None
