"""Errors shared by every layer.

Handlers raise `TransientError` or `PermanentError`; the service layer raises the
`StockyardError` family, which the CLI (and later the API) turn into one clear message.
"""

import math


class StockyardError(Exception):
    """A problem the user can act on; its message is shown as is."""


class InvalidInput(StockyardError):
    """The caller asked for something malformed or impossible."""


class NotFound(StockyardError):
    """The item, connection, lane or client does not exist (for this client)."""


class Conflict(StockyardError):
    """The request is well-formed but the object is not in a state that allows it."""


class Unauthenticated(StockyardError):
    """No credentials, or credentials that are wrong, expired or revoked."""


class Forbidden(StockyardError):
    """Known caller, but its role does not allow this on its own client. Another client's
    objects answer NotFound instead, so their ids are never confirmed."""


class Misconfigured(StockyardError):
    """The deployment lacks something it needs (e.g. the key for connection secrets)."""


class HandlerError(Exception):
    """Base of the errors a handler raises to say how its item failed."""


class TransientError(HandlerError):
    """Worth retrying: a timeout, a refused connection, HTTP 429 or 5xx, a rate limit."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(HandlerError):
    """Retrying cannot help: invalid data, an HTTP 4xx, a bug."""


class StorageFull(StockyardError):
    """The database cannot write right now: its disk or a file-size limit is full, or the
    storage reports an I/O error. Nothing was changed; the same request succeeds once space
    is freed, so callers back off and retry (the API answers 507)."""


class RateLimited(StockyardError):
    """Too many requests, or too many failed sign-ins: try again after `retry_after`
    seconds (the API answers 429 with Retry-After)."""

    def __init__(self, retry_after: float, reason: str = "too many requests") -> None:
        super().__init__(f"{reason}: try again in {max(1, math.ceil(retry_after))} s")
        self.retry_after = retry_after


# Error texts cross layers (an agent's settle, the engine's attempts table): one rule for
# what text a database and a JSON body can hold, kept here where every layer may import it.


def encodes(text: str) -> bool:
    """Whether UTF-8 can encode `text`: a lone surrogate (from a driver's message, a
    decoded path) it cannot."""
    try:
        text.encode()
    except UnicodeError:
        return False
    return True


def storable(text: str) -> str:
    """`text` as a database and a JSON body can hold it: a NUL written as \\0, a lone
    surrogate as its escape."""
    text = text.replace("\x00", "\\0")
    return text if encodes(text) else text.encode("utf-8", "backslashreplace").decode()
