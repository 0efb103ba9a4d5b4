"""A route answered by one call in a worker thread, without FastAPI's request handler:
for the API's hot path (POST items), where FastAPI's dependency solving, its awaits and a
second hop to a thread for the caller's lookup cost more than enqueueing 50 items. The
event loop only receives the body; parsing, validation and the work happen in the thread.

FastAPI still reads the route for routing and the OpenAPI document, and the answers are
the ones its own handler gives (tests/test_api_onehop.py compares them request by
request): the body read as JSON the same way and refused first when it is not JSON; then
the caller (`authenticated`: 401 or 429 before anything else is judged, one token spent);
then the path and the body, validated by the route's own fields into the same
RequestValidationError; then the endpoint, a plain function, with the caller and the
service; its answer serialised by pydantic as FastAPI does. The endpoint must take path
parameters, one JSON body, `Caller` and `Service`, and nothing else (checked when the
route is made); dependency overrides do not apply to it.
"""

from __future__ import annotations

import email.message
import json
from collections.abc import Callable, Coroutine
from typing import Any

import anyio
from fastapi import HTTPException, Request, Response
from fastapi.datastructures import DefaultPlaceholder
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel

from stockyard.web.deps import authenticated, bearer, caller, service, the_service, token

_MISSING = object()  # no body at all: the body field's "Field required"


class OneHop(APIRoute):
    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        d = self.dependant
        names = {sub.call: sub.name for sub in d.dependencies}
        if (
            set(names) != {caller, the_service}
            or d.query_params
            or d.header_params
            or d.cookie_params
            or len(d.body_params) != 1
            or self.body_field is None
            or self.response_field is None
            or self.status_code is None
        ):
            raise TypeError(
                f"{path}: a OneHop route takes path parameters, one body, Caller and Service"
            )
        self._status: int = self.status_code
        self._caller_name = str(names[caller])
        self._service_name = str(names[the_service])
        strict = getattr(self, "strict_content_type", False)  # FastAPI >= 0.13x: True
        self._strict = bool(strict.value if isinstance(strict, DefaultPlaceholder) else strict)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        async def handle(request: Request) -> Response:
            try:
                raw = await request.body()
            except Exception as exc:  # as FastAPI: a body that cannot be read
                raise HTTPException(400, "There was an error parsing the body") from exc
            given = token(await bearer(request))
            answer = await anyio.to_thread.run_sync(self._answer, request, given, raw)
            return Response(answer, status_code=self._status, media_type="application/json")

        return handle

    def _parse(self, request: Request, raw: bytes) -> Any:
        """The body as FastAPI reads it: JSON when typed so, else the bytes as they are
        (which the body field then refuses), `_MISSING` when empty."""
        if not raw:
            return _MISSING
        if not _json_typed(request.headers.get("content-type"), self._strict):
            return raw
        try:
            return json.loads(raw)
        except json.JSONDecodeError as exc:
            error = {
                "type": "json_invalid",
                "loc": ("body", exc.pos),
                "msg": "JSON decode error",
                "input": {},
                "ctx": {"error": exc.msg},
            }
            raise RequestValidationError([error], body=exc.doc) from exc
        except Exception as exc:
            raise HTTPException(400, "There was an error parsing the body") from exc

    def _answer(self, request: Request, given: str | None, raw: bytes) -> bytes:
        """In the worker thread (the loop only receives the bytes): the body parsed, then
        the caller, then the path and body validated, then the work."""
        body = self._parse(request, raw)
        values: dict[str, Any] = {self._caller_name: authenticated(request, given)}
        errors: list[Any] = []
        for field in self.dependant.path_params:
            value, found = field.validate(
                request.path_params.get(field.alias), values, loc=("path", field.alias)
            )
            values[field.name] = value
            errors.extend(found)
        assert self.body_field is not None
        if body is _MISSING:
            errors.append(_missing(("body",)))
        else:
            value, found = self.body_field.validate(body, values, loc=("body",))
            values[self.body_field.name] = value
            errors.extend(found)
        if errors:
            raise RequestValidationError(errors, body=None if body is _MISSING else body)
        values[self._service_name] = service(request)
        result = self.endpoint(**values)
        assert isinstance(result, BaseModel)
        return result.model_dump_json(by_alias=True).encode()


def _json_typed(content_type: str | None, strict: bool) -> bool:
    if not content_type:
        return not strict
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


def _missing(loc: tuple[str, ...]) -> dict[str, Any]:
    return {"type": "missing", "loc": loc, "msg": "Field required", "input": None}
