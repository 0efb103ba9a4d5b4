"""A JSON-RPC client for Tryton (trytond 8): one session per client, renewed when it
expires; Tryton's typed JSON (Decimal, date, datetime) converted both ways; every failure
classified as transient or permanent for the queue."""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import json
import threading
from decimal import Decimal
from typing import Any

import httpx

from stockyard import outbound
from stockyard.errors import HandlerError, PermanentError, TransientError


def _encode(value: Any) -> Any:
    if isinstance(value, Decimal):
        return {"__class__": "Decimal", "decimal": str(value)}
    if isinstance(value, dt.datetime):
        return {
            "__class__": "datetime",
            **{k: getattr(value, k) for k in ("year", "month", "day", "hour", "minute")},
            "second": value.second,
            "microsecond": value.microsecond,
        }
    if isinstance(value, dt.date):
        return {"__class__": "date", "year": value.year, "month": value.month, "day": value.day}
    raise TypeError(f"cannot send {type(value).__name__} to Tryton")


def _decode(obj: dict[str, Any]) -> Any:
    kind = obj.get("__class__")
    if kind == "Decimal":
        return Decimal(obj["decimal"])
    if kind == "datetime":
        fields = ("year", "month", "day", "hour", "minute", "second", "microsecond")
        return dt.datetime(*(obj.get(f, 0) for f in fields))
    if kind == "date":
        return dt.date(obj["year"], obj["month"], obj["day"])
    return obj


# Tryton reports these as plain strings; they say the database was busy, not that the
# request was wrong.
_BUSY = ("database is locked", "could not serialize", "deadlock")


def _error(error: Any, what: str) -> HandlerError:
    """The queue's error for a JSON-RPC `error` member."""
    if isinstance(error, list) and error and error[0] in ("UserError", "UserWarning"):
        # UserError's arguments are (message, description, ...); UserWarning's are
        # (name, message, description): a warning the user would have to confirm.
        detail = error[1] if len(error) > 1 and isinstance(error[1], list) else []
        at = 1 if error[0] == "UserWarning" else 0
        message = detail[at] if len(detail) > at else str(error[1:])
        kind = "warns" if at else "refused"
        return PermanentError(f"{what}: Tryton {kind}: {message}")
    if isinstance(error, list) and error and error[0] == "ConcurrencyException":
        return TransientError(f"{what}: Tryton: record changed concurrently")
    text = str(error[0] if isinstance(error, list) and error else error)
    if any(b in text for b in _BUSY):
        return TransientError(f"{what}: Tryton is busy: {text[:200]}")
    return PermanentError(f"{what}: Tryton error: {text[:300]}")


class TrytonClient:
    def __init__(
        self, url: str, database: str, username: str, password: str, timeout: float = 30.0
    ) -> None:
        # Through the outbound check: the URL is the tenant's to write.
        self._http = outbound.client(base_url=url.rstrip("/"), setting="url", timeout=timeout)
        self._path = f"/{database}/rpc/"
        self._username = username
        self._password = password
        self._auth: str | None = None
        self._context: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

    def close(self) -> None:
        self._http.close()

    def model(
        self, model: str, method: str, *args: Any, context: dict[str, Any] | None = None
    ) -> Any:
        """`model.<model>.<method>(*args, context)`: the user's context, plus `context`."""
        auth, preferences = self._session()
        params = [*args, {**preferences, **(context or {})}]
        status, body = self._post(f"model.{model}.{method}", params, auth)
        if status == 401:  # the session expired: log in again, once
            with self._lock:
                if self._auth == auth:
                    self._auth = None
            auth, preferences = self._session()
            params[-1] = {**preferences, **(context or {})}
            status, body = self._post(f"model.{model}.{method}", params, auth)
        return self._result(status, body, f"{model}.{method}")

    def _session(self) -> tuple[str, dict[str, Any]]:
        with self._lock:
            if self._auth is None:
                self._auth, self._context = self._login()
            return self._auth, self._context

    def _login(self) -> tuple[str, dict[str, Any]]:
        params = [self._username, {"password": self._password}, "en"]
        status, body = self._post("common.db.login", params, None)
        if status in (401, 403):
            raise PermanentError(f"Tryton refused the login of {self._username!r}")
        user_id, session = self._result(status, body, "login")[:2]
        token = base64.b64encode(f"{self._username}:{user_id}:{session}".encode()).decode()
        auth = f"Session {token}"
        status, body = self._post("model.res.user.get_preferences", [True, {}], auth)
        context = self._result(status, body, "preferences")
        return auth, context

    def _post(self, method: str, params: list[Any], auth: str | None) -> tuple[int, Any]:
        payload = json.dumps(
            {"id": next(self._ids), "method": method, "params": params}, default=_encode
        )
        headers = {"Content-Type": "application/json"}
        if auth:
            headers["Authorization"] = auth
        try:
            response = self._http.post(self._path, content=payload, headers=headers)
        except httpx.TimeoutException as exc:
            raise TransientError(f"{method}: Tryton timed out ({exc})") from None
        except httpx.TransportError as exc:
            raise TransientError(f"{method}: cannot reach Tryton ({exc})") from None
        if response.status_code != 200:
            return response.status_code, None
        try:
            return 200, json.loads(response.content, object_hook=_decode)
        except ValueError:
            raise PermanentError(f"{method}: Tryton answered something that is not JSON") from None

    @staticmethod
    def _result(status: int, body: Any, what: str) -> Any:
        if status == 429 or status >= 500:
            raise TransientError(f"{what}: Tryton answered HTTP {status}")
        if status == 404:
            raise PermanentError(f"{what}: no such Tryton database (HTTP 404)")
        if status != 200:
            raise PermanentError(f"{what}: Tryton answered HTTP {status}")
        if not isinstance(body, dict):
            raise PermanentError(f"{what}: Tryton answered an unexpected body")
        if body.get("error") is not None:
            raise _error(body["error"], what)
        return body.get("result")
