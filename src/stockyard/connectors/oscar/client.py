"""A client for django-oscar-api's admin API and the trade store's small app (stockyard_trade):
a DRF token in the Authorization header, answers read up to a cap, every failure classified
as transient or permanent for the queue, Oscar's own message kept on a refusal."""

from __future__ import annotations

import json
from typing import Any

from stockyard import outbound
from stockyard.connectors.answers import fetch
from stockyard.errors import PermanentError, TransientError

MAX_ANSWER = 16 * 1024 * 1024  # bytes; the product list is unpaginated, the rest is small
TRANSIENT = frozenset({408, 425, 429})


class OscarNotFound(PermanentError):
    """Oscar answered 404: the object is not there (a delete counts it as done)."""


class OscarTooLarge(PermanentError):
    """Oscar's answer is larger than the client reads (an unpaginated list grown too
    big, or not Oscar at all)."""


class OscarClient:
    def __init__(
        self, url: str, token: str, timeout: float = 30.0, max_answer: int = MAX_ANSWER
    ) -> None:
        # Through the outbound check: the URL is the tenant's to write.
        self._http = outbound.client(
            base_url=url.rstrip("/"),
            setting="url",
            timeout=timeout,
            headers={"Authorization": f"Token {token}", "Accept": "application/json"},
        )
        self.max_answer = max_answer

    def close(self) -> None:
        self._http.close()

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: dict[str, Any] | None = None,
    ) -> Any:
        """The answer's JSON (None for an empty answer, e.g. a DELETE's 204)."""
        what = f"{method} {path}"
        response, content = fetch(
            self._http,
            method,
            path,
            json=body,
            params=params,
            max_bytes=self.max_answer,
            too_large=self._too_long,
            timed_out=lambda kind: f"oscar: {what} timed out",
            unsendable=lambda kind: f"oscar: {what} could not be sent ({kind}): check the token",
            unreachable=lambda kind: f"cannot reach oscar ({kind})",
        )
        status = response.status_code
        if status in TRANSIENT or status >= 500:
            raise TransientError(f"oscar: {what} answered HTTP {status}")
        if status >= 400:
            message = f"oscar: {what} answered HTTP {status}: {_message(content)}"
            raise (OscarNotFound if status == 404 else PermanentError)(message)
        if not content.strip():
            return None
        try:
            return json.loads(content)
        except ValueError:
            raise PermanentError(f"oscar: {what} answered something not JSON") from None

    def _too_long(self) -> PermanentError:
        return OscarTooLarge(
            f"oscar: the answer is larger than {self.max_answer} bytes, the most Stockyard"
            " reads: check url"
        )


def _message(content: bytes) -> str:
    """What Oscar (DRF) said was wrong: its `detail`, or its field errors, else the text."""
    try:
        body = json.loads(content)
    except ValueError:
        return content.decode("utf-8", "replace")[:300] or "(no message)"
    if isinstance(body, dict) and isinstance(body.get("detail"), str):
        return str(body["detail"])
    return json.dumps(body, ensure_ascii=False)[:500]
