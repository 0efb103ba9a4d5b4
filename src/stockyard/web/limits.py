"""Request-size limits and per-caller rate limits.

The rate limit is a token bucket per caller (API key or user once authenticated; the
client address for requests without credentials and for every failed authentication, so
rotating made-up tokens does not buy fresh buckets), kept in this process: with several
processes each enforces it on its own share of the traffic.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stockyard.throttle import TokenBuckets


class RateLimiter(TokenBuckets):
    """Requests per caller: `take(key)` spends one, `wait(key)` looks without spending."""


class BodyLimit:
    """Refuses request bodies over `limit` bytes with a 413, whether or not they declare
    their length. The body is read here first (it is small by definition) and replayed
    to the application."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break  # the client went away; the app sees that as usual
            size += len(message.get("body", b""))
            if size > self.limit:
                await self._refuse(send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send) -> None:
        body = problem_bytes(413, f"the request body exceeds {self.limit} bytes")
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def problem_bytes(status: int, detail: str, **extra: Any) -> bytes:
    from http import HTTPStatus

    return json.dumps(
        {
            "type": "about:blank",
            "title": HTTPStatus(status).phrase,
            "status": status,
            "detail": detail,
            **extra,
        }
    ).encode()
