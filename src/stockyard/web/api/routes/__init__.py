"""The API's routes, one module per area; every client-scoped path starts with
/v1/clients/{client_id}."""

from typing import Annotated

from fastapi import Path

from stockyard.web.api.schemas import Problem
from stockyard.web.query import MAX_ID, Id

__all__ = ["CLIENT", "ERRORS", "ClientId", "Id"]

ClientId = Annotated[int, Path(ge=1, le=MAX_ID, description="the client (merchant)")]
CLIENT = "/v1/clients/{client_id}"


def _problem(text: str) -> dict[str, object]:
    return {"model": Problem, "description": text, "content": {"application/problem+json": {}}}


# What any authenticated route may answer besides its success.
ERRORS: dict[int | str, dict[str, object]] = {
    400: _problem("the body cannot be read as JSON"),
    401: _problem("no, unknown, expired or revoked credentials"),
    403: _problem("your role on this client does not allow it"),
    404: _problem("no such object for this client (or no such client for you)"),
    409: _problem("the object's state does not allow it"),
    413: _problem("the request body is too large"),
    422: _problem("invalid input; `errors` names each field"),
    429: _problem("rate limited; see Retry-After"),
    503: _problem("the database is unreachable, or the server lacks configuration"),
    507: _problem("the database's storage is full; nothing was changed"),
}
