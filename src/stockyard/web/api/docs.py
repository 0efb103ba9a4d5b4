"""Swagger UI at /docs, served from this server.

FastAPI's default page loads Swagger UI from a CDN: a third party could then run script on
a page of ours, and a closed network shows nothing. The swagger-ui-bundle-v2 package (the
connexion project's packaging of the official swagger-ui-dist files) ships them instead,
and its version is pinned with the rest of our dependencies. The page's one inline script
is allowed by its hash in the page's Content-Security-Policy.
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, swagger_ui_default_parameters
from fastapi.responses import FileResponse, HTMLResponse, Response
from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]

ASSETS = Path(str(swagger_ui_path))
FILES = {"swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"}


def _csp(page: bytes) -> str:
    scripts = re.findall(rb"<script>(.*?)</script>", page, re.DOTALL)
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(s).digest()).decode()}'" for s in scripts
    )
    return "; ".join(
        (
            "default-src 'self'",
            f"script-src 'self' {hashes}",
            "style-src 'self' 'unsafe-inline'",  # Swagger UI styles its elements inline
            "img-src 'self' data:",
            "frame-ancestors 'none'",
            "base-uri 'none'",
            "object-src 'none'",
        )
    )


def install(app: FastAPI, openapi_url: str = "/openapi.json") -> None:
    page = get_swagger_ui_html(
        openapi_url=openapi_url,
        title=f"{app.title} API",
        swagger_js_url="/docs/swagger-ui-bundle.js",
        swagger_css_url="/docs/swagger-ui.css",
        swagger_favicon_url="/docs/favicon-32x32.png",
        # No badge fetched from validator.swagger.io.
        swagger_ui_parameters={**swagger_ui_default_parameters, "validatorUrl": None},
    ).body
    headers = {
        "content-security-policy": _csp(bytes(page)),
        "x-content-type-options": "nosniff",
        "referrer-policy": "same-origin",
    }

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(bytes(page), headers=headers)

    @app.get("/docs/{name}", include_in_schema=False)
    def asset(name: str) -> Response:
        if name not in FILES:
            return Response(status_code=404)
        return FileResponse(
            ASSETS / name,
            headers={"cache-control": "max-age=86400", "x-content-type-options": "nosniff"},
        )
