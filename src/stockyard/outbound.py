"""Outbound HTTP that a tenant's settings can aim: connectors' base URLs, image downloads,
webhook deliveries. Unless the deployment allows it, a request may only reach globally
routable addresses: never loopback, private, link-local, unspecified, multicast, reserved
or shared (CGNAT) ones, nor IPv6 forms that embed one of those (IPv4-mapped, 6to4, NAT64,
Teredo). Otherwise one merchant could make Stockyard fetch its own admin pages, a cloud
metadata service or another system on the internal network, and read the answer back in
an item's error.

The check is made on the address actually connected to: the transport resolves the name
once, checks every address and connects to a checked one, so a name that resolves to a
public address when it is saved and to a private one later (DNS rebinding) is refused.
The Host header and TLS's SNI and certificate check still use the name. Environment
proxies are not used by these clients: behind a proxy the check would be on the proxy.

STOCKYARD_OUTBOUND_ALLOW lists what a deployment allows anyway, comma-separated: host
names (matched as written in the URL), addresses and networks, e.g.
"127.0.0.1,10.0.0.0/8,erp.internal". The tests and the local demo allow 127.0.0.1.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import re
import socket
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx

from stockyard.errors import Misconfigured, PermanentError

ALLOW_ENV = "STOCKYARD_OUTBOUND_ALLOW"

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT, not global
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # the IPv4 address is the last 32 bits
_V4_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated ::a.b.c.d
_HOST_NAME = re.compile(r"^[a-z0-9_]([a-z0-9_.-]*[a-z0-9_])?$")


class OutboundRefused(PermanentError):
    """The target is an address the deployment does not let tenants reach. Permanent: the
    same settings would be refused again."""


def refusal(address: str | Address) -> str | None:
    """Why connecting to `address` is refused by default ("loopback", "private", ...), or
    None for a globally routable address."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    inner = _embedded_ipv4(ip)
    if inner is not None:  # what is connected to in the end is the IPv4 address
        reason = refusal(inner)
        return None if reason is None else f"{reason} (embedded in an IPv6 address)"
    checks = (
        (ip.is_unspecified, "unspecified"),
        (ip.is_loopback, "loopback"),
        (ip.is_link_local, "link-local"),
        (ip.is_multicast, "multicast"),
        (ip.version == 4 and ip in _SHARED, "shared (CGNAT)"),
        # Deprecated (RFC 3879) but still routed inside some sites; `is_private` misses it.
        (isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local, "site-local"),
        (ip.is_private, "private"),
        (ip.is_reserved, "reserved"),
        (not ip.is_global, "non-global"),
    )
    return next((reason for hit, reason in checks if hit), None)


def _embedded_ipv4(ip: Address) -> ipaddress.IPv4Address | None:
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64 or (ip in _V4_COMPATIBLE and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


@dataclass(frozen=True, slots=True)
class Allowance:
    """What STOCKYARD_OUTBOUND_ALLOW lets through despite the default refusal."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[Network, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Allowance:
        hosts: set[str] = set()
        networks: list[Network] = []
        for entry in (e.strip() for e in text.split(",")):
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
                continue
            except ValueError:
                pass
            name = _normal(entry)
            if not _HOST_NAME.match(name):
                raise Misconfigured(
                    f"{ALLOW_ENV}: {entry!r} is neither a host name, an address nor a network"
                )
            hosts.add(name)
        return cls(frozenset(hosts), tuple(networks))

    def allows(self, host: str, ip: Address | None = None) -> bool:
        if _normal(host) in self.hosts:
            return True
        return ip is not None and any(ip.version == n.version and ip in n for n in self.networks)


def _normal(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


def allowance() -> Allowance:
    """The deployment's allowance, read from the environment each time (cheap: cached per
    value) so a changed environment applies without a restart of the tests' processes."""
    return _parsed(os.environ.get(ALLOW_ENV, ""))


@functools.lru_cache(maxsize=8)
def _parsed(text: str) -> Allowance:
    return Allowance.parse(text)


def url_refusal(url: str) -> str | None:
    """At save time: why `url` is refused when its host is not a valid host name, or is
    written as a refused address (or as localhost), else None. Names are checked again,
    for real, when connecting."""
    try:
        parsed = httpx.URL(url)
        host = parsed.host
        raw_host = parsed.raw_host.decode("ascii")  # IDNA-encoded: names are ASCII here
    except (httpx.InvalidURL, ValueError) as exc:  # IDNA errors are ValueErrors
        return f"not a valid URL ({exc})"
    if not host:
        return "the URL has no host"
    name = _normal(host)
    allowed = allowance()
    ip = _literal(name)
    if ip is None and not _HOST_NAME.match(_normal(raw_host)):
        # httpx takes "http://a b" and percent-encodes the host: refuse it now rather than
        # fail every request of the connection later.
        return f"{host!r} is not a valid host name"
    if ip is None:
        if (name == "localhost" or name.endswith(".localhost")) and not allowed.allows(name):
            return f"{host} is a loopback address; {_HOW}"
        return None
    reason = refusal(ip)
    if reason is None or allowed.allows(name, ip):
        return None
    return f"{host} is a {reason} address; {_HOW}"


def _literal(name: str) -> Address | None:
    """`name` as an address, in any form the resolver would read as one (0x7f000001,
    2130706433 and 127.1 are all 127.0.0.1); None for a host name."""
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(name))
    except OSError:
        return None


_HOW = f"Stockyard does not send requests there unless the deployment allows it ({ALLOW_ENV})"


def _resolve(host: str, port: int) -> list[str]:
    """The addresses of `host`, in the resolver's order of preference."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def checked_addresses(host: str, port: int) -> list[str]:
    """The addresses of `host` that may be connected to; OutboundRefused if none may."""
    try:
        addresses = _resolve(_normal(host), port)
    except (OSError, UnicodeError) as exc:
        raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from None
    allowed = allowance()
    usable: list[str] = []
    reasons: list[str] = []
    for text in addresses:
        ip = ipaddress.ip_address(text)
        reason = refusal(ip)
        if reason is None or allowed.allows(host, ip):
            usable.append(text)
        else:
            reasons.append(reason)
    if not usable:
        # The address itself is not named: the tenant learns the kind, not the network.
        kind = reasons[0] if reasons else "unknown"
        raise OutboundRefused(
            f"refused to connect to {host}: it resolves to a {kind} address; {_HOW}"
        )
    return usable


class GuardedBackend(httpcore.NetworkBackend):
    """httpcore's network backend with the check of the module's docstring in connect_tcp:
    resolve once, check, connect to the checked address."""

    def __init__(self, inner: httpcore.NetworkBackend | None = None) -> None:
        self._inner = inner or httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        failure: Exception | None = None
        for address in checked_addresses(host, port):
            try:
                return self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc  # as socket.create_connection does: try the next address
        assert failure is not None
        raise failure

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        raise OutboundRefused("refused to connect to a unix socket")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """httpx's default verifying context, built once: loading the CA bundle takes ~15 ms,
    and every client used to load it twice."""
    return httpx.create_ssl_context()


class GuardedTransport(httpx.HTTPTransport):
    """httpx's transport on a pool that connects through GuardedBackend (TLS verified with
    httpx's default context, httpx's default limits)."""

    def __init__(self, inner: httpcore.NetworkBackend | None = None) -> None:
        super().__init__(verify=_tls_context())
        # httpx offers no way to pass a network backend: swap in a pool built with one.
        # `_pool` is what handle_request sends through; tests/test_outbound_guard.py
        # fails if a newer httpx stops using it.
        self._pool.close()
        self._pool = httpcore.ConnectionPool(
            ssl_context=_tls_context(),
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=GuardedBackend(inner),
        )


def client(base_url: str = "", setting: str = "base_url", **kwargs: Any) -> httpx.Client:
    """An httpx.Client whose every connection (redirects included) passes the check. A
    `base_url` written as a refused address is refused at once, naming the `setting` it
    came from, so saving such settings fails with a clear message."""
    if base_url:
        reason = url_refusal(base_url)
        if reason is not None:
            raise OutboundRefused(f"settings.{setting}: {reason}")
        kwargs["base_url"] = base_url
    return httpx.Client(transport=GuardedTransport(), **kwargs)


def post(url: str, **kwargs: Any) -> httpx.Response:
    """`httpx.post` through the check."""
    with client(timeout=kwargs.pop("timeout", 10.0)) as http:
        return http.post(url, **kwargs)
