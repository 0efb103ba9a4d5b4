"""Talking to Stockyard: every request is a POST whose JSON body is signed with the
connection's webhook_secret (Standard Webhooks: webhook-id, webhook-timestamp,
webhook-signature). The secret itself is never sent, logged or put in an error; http is
allowed only to this machine (config.check_url), and never through a proxy.

Pushes go to the connection's inbound routes (/v1/inbound/{connection}/products ...),
whose items are keyed by the message id: a batch re-sent with its own message id enqueues
nothing new. The agent's routes are /v1/agent/{connection}/{claim,heartbeat,settle,hello}
(docs/remote-workers.md).
"""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import urlsplit

import httpx

from stockyard import __name__ as _package
from stockyard.agent import AgentError
from stockyard.agent.config import check_url
from stockyard.signing import sign

USER_AGENT = f"{_package}-agent/0.1"


class Unreachable(Exception):
    """Stockyard did not answer (connection refused, timeout, TLS): try again later."""


class Client:
    """Stockyard's API for the agent's connection, and for its [fulfillment] connection
    when it has one (`also`: that connection's id and secret): every request is signed
    with the secret of the connection it is for."""

    def __init__(
        self,
        url: str,
        connection: int,
        secret: str,
        timeout: float = 30.0,
        also: tuple[int, str] | None = None,
    ) -> None:
        try:
            check_url(url)
        except ValueError as exc:
            raise AgentError(f"[stockyard] url: {exc}") from None
        self.url = url.rstrip("/")
        self.connection = connection
        self._secrets = {connection: secret}
        if also is not None:
            self._secrets[also[0]] = also[1]
        self.http = httpx.Client(
            base_url=self.url,
            timeout=httpx.Timeout(timeout, connect=10.0),
            follow_redirects=False,  # a redirect could carry a signed body elsewhere
            headers={"user-agent": USER_AGENT},
            # https honours the site's proxy (HTTPS_PROXY, NO_PROXY) and CA settings; plain
            # http is allowed only to this machine, so no proxy may carry it elsewhere.
            trust_env=urlsplit(self.url).scheme == "https",
        )

    def __repr__(self) -> str:  # never the secret
        return f"Client({self.url!r}, connection={self.connection})"

    def close(self) -> None:
        self.http.close()

    def post(
        self,
        path: str,
        body: bytes,
        message_id: str,
        timeout: float | None = None,
        connection: int | None = None,
    ) -> httpx.Response:
        secret = self._secrets[connection or self.connection]
        headers = {"content-type": "application/json", **sign(secret, message_id, body)}
        try:
            if timeout is None:
                return self.http.post(path, content=body, headers=headers)
            return self.http.post(path, content=body, headers=headers, timeout=timeout)
        except httpx.TransportError as exc:
            # The type names the failure (ConnectError, ReadTimeout...); the URL is the
            # configured one, which holds no secret.
            raise Unreachable(
                f"{type(exc).__name__}: Stockyard at {self.url} did not answer"
            ) from None

    def push(
        self, topic: str, message_id: str, body: bytes, connection: int | None = None
    ) -> httpx.Response:
        to = connection or self.connection
        return self.post(f"/v1/inbound/{to}/{topic}", body, message_id, connection=to)

    def agent(
        self,
        verb: str,
        payload: dict[str, Any],
        timeout: float | None = None,
        connection: int | None = None,
    ) -> httpx.Response:
        to = connection or self.connection
        body = json.dumps(payload, separators=(",", ":")).encode()
        return self.post(
            f"/v1/agent/{to}/{verb}", body, f"agent-{uuid.uuid4().hex}", timeout, connection=to
        )


def detail(response: httpx.Response) -> str:
    """What Stockyard said, in one line."""
    try:
        data = response.json()
    except ValueError:
        return response.text[:300].strip() or response.reason_phrase
    if isinstance(data, dict) and "detail" in data:
        return (
            json.dumps(data["detail"])[:1000]
            if not isinstance(data["detail"], str)
            else str(data["detail"])[:1000]
        )
    return json.dumps(data)[:1000]
