"""The HTTP API (FastAPI): a thin shell over the service layer, versioned under /v1."""

from stockyard.web.api.app import create_app

__all__ = ["create_app"]
