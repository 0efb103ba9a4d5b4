"""The HTTP API (FastAPI) under /v1: a thin shell over the service layer, one module of
routes per area, and its OpenAPI document (kept as docs/openapi.json) with Swagger UI at
/docs. `stockyard.web.app` installs it beside the console."""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI

from stockyard.web.api import docs
from stockyard.web.api.routes import (
    accounts,
    agent,
    catalog,
    connections,
    inbound,
    items,
    lanes,
    notifications,
)

TITLE = "Stockyard"
DESCRIPTION = """Everything the console and the CLI do, for merchants' scripts and for the
systems that push data in. Authenticate with `Authorization: Bearer <API key or session
token>`. Errors are `application/problem+json` (RFC 9457)."""


def install(app: FastAPI) -> None:
    """The API's routes and its documentation pages, on the web application."""
    docs.install(app)
    for module in (items, lanes, connections, catalog, inbound, agent, accounts, notifications):
        app.include_router(module.router)


def openapi_document(app: FastAPI) -> str:
    """The document kept in the repository (docs/openapi.json)."""
    document: dict[str, Any] = app.openapi()
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


__all__ = ["DESCRIPTION", "TITLE", "install", "openapi_document"]
