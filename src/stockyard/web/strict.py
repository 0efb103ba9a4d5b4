"""Refuses JSON bodies holding NaN, Infinity or numbers that overflow a double, or NUL or
lone surrogates in a string, with a 422 that names the field, before any route reads them
(FastAPI parses with Python's lenient json module). One place for every JSON body: items,
inbound pushes, connection settings, members, keys."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stockyard import strict_json
from stockyard.web.problems import problem


def _is_json(scope: Scope) -> bool:
    content_type: bytes | None = dict(scope["headers"]).get(b"content-type")
    if content_type is None:
        return True  # FastAPI reads a body without a type as JSON too
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or media.endswith(b"+json")


class StrictJson:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD") or not _is_json(scope):
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request" or not message.get("more_body", False):
                break
        body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")
        try:
            strict_json.check(body)
        except strict_json.Refused as exc:
            refused = problem(422, str(exc), errors=[{"field": exc.field, "message": exc.reason}])
            await refused(scope, receive, send)
            return
        replay = iter(messages)

        async def replayed() -> Message:
            return next(replay, None) or await receive()

        await self.app(scope, replayed, send)
