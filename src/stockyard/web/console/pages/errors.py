"""The console's face for errors (the API answers problem documents instead)."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from stockyard.web.console.pages.common import templates


def error_page(request: Request, status: int, detail: str) -> Response:
    """The console's face for errors (the API answers problem documents instead)."""
    if status == 401:
        return RedirectResponse(f"/console/login?{urlencode({'next': request.url.path})}", 303)
    titles = {
        403: "Not allowed",
        404: "Not found",
        409: "Not now",
        422: "Cannot do that",
        507: "Storage full",
    }
    return templates.TemplateResponse(
        request,
        "error.html",
        {"page": None, "title": titles.get(status, "Something went wrong"), "detail": detail},
        status_code=status,
    )
