"""The service layer: every operation the API, console and CLI offer, checked against the
caller's role on the client it touches. It knows nothing of HTTP.

Tenancy: a caller without any role on a client gets NotFound for it and for everything in
it, exactly as if it did not exist; a caller whose role is too low on its own client gets
Forbidden.
"""

from stockyard.service.core import ConnectionView, Stockyard

__all__ = ["ConnectionView", "Stockyard"]
