"""A client for Vendure's Admin GraphQL API: bearer-token login, renewed when refused; every
failure classified as transient or permanent for the queue; file uploads as the GraphQL
multipart request spec says (Vendure's createAssets)."""

from __future__ import annotations

import json
import threading
from typing import Any

import httpx

from stockyard import outbound
from stockyard.errors import HandlerError, PermanentError, TransientError

LOGIN = """
mutation($username: String!, $password: String!) {
  login(username: $username, password: $password) {
    ... on CurrentUser { id }
    ... on ErrorResult { errorCode message }
  }
}"""


class VendureClient:
    def __init__(
        self,
        url: str,
        username: str,
        password: str,
        channel_token: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        headers = {"vendure-token": channel_token} if channel_token else {}
        # Through the outbound check: the URL is the tenant's to write.
        self._http = outbound.client(
            base_url=url.rstrip("/"), setting="url", timeout=timeout, headers=headers
        )
        self._username = username
        self._password = password
        self._token: str | None = None
        self._lock = threading.Lock()

    def close(self) -> None:
        self._http.close()

    def query(self, document: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        body = {"query": document, "variables": variables or {}}
        return self._send(lambda headers: self._http.post("", json=body, headers=headers))

    def upload(
        self, document: str, variables: dict[str, Any], path: str, file: tuple[str, bytes, str]
    ) -> dict[str, Any]:
        """A mutation with one file, placed at `path` (e.g. "variables.input.0.file")."""
        operations = json.dumps({"query": document, "variables": variables})
        form = {"operations": operations, "map": json.dumps({"0": [path]})}
        return self._send(
            lambda headers: self._http.post(
                "",
                data=form,
                files={"0": file},
                # Vendure refuses multipart requests without it, against CSRF.
                headers={**headers, "apollo-require-preflight": "true"},
            )
        )

    def _send(self, post: Any) -> dict[str, Any]:
        token = self._session()
        data = self._result(self._post(post, token))
        if data is _REFUSED:  # the token expired: log in again, once
            with self._lock:
                if self._token == token:
                    self._token = None
            data = self._result(self._post(post, self._session()))
            if data is _REFUSED:
                raise PermanentError("vendure: the administrator may not do this (FORBIDDEN)")
        return dict(data)

    def _session(self) -> str:
        with self._lock:
            if self._token is None:
                variables = {"username": self._username, "password": self._password}
                response = self._post(
                    lambda h: self._http.post("", json={"query": LOGIN, "variables": variables}),
                    None,
                )
                data = self._result(response)
                login = data.get("login") if isinstance(data, dict) else None
                token = response.headers.get("vendure-auth-token")
                if not isinstance(login, dict) or "id" not in login or not token:
                    message = login.get("message") if isinstance(login, dict) else "refused"
                    raise PermanentError(f"vendure: login of {self._username!r} failed: {message}")
                self._token = token
            return self._token

    @staticmethod
    def _post(post: Any, token: str | None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            response: httpx.Response = post(headers)
        except httpx.TimeoutException as exc:
            raise TransientError(f"vendure timed out ({exc})") from None
        except httpx.TransportError as exc:
            raise TransientError(f"cannot reach vendure ({exc})") from None
        return response

    @staticmethod
    def _result(response: httpx.Response) -> Any:
        status = response.status_code
        if status in (408, 425, 429) or status >= 500:
            raise TransientError(f"vendure answered HTTP {status}")
        try:
            body = response.json()
        except ValueError:
            raise PermanentError(f"vendure answered HTTP {status}: {response.text[:200]}") from None
        errors = body.get("errors") if isinstance(body, dict) else None
        if errors:
            codes = {(e.get("extensions") or {}).get("code") for e in errors}
            if "FORBIDDEN" in codes:
                return _REFUSED
            raise _error(errors)
        if status >= 400 or not isinstance(body, dict) or "data" not in body:
            raise PermanentError(f"vendure answered HTTP {status}: {response.text[:200]}")
        return body["data"]


_REFUSED = object()


class VendureRefused(PermanentError):
    """A GraphQL error; `code` is Vendure's error code, e.g. ENTITY_NOT_FOUND."""

    def __init__(self, message: str, code: str | None) -> None:
        super().__init__(message)
        self.code = code


def _error(errors: list[dict[str, Any]]) -> HandlerError:
    message = "; ".join(str(e.get("message")) for e in errors[:3])
    code = (errors[0].get("extensions") or {}).get("code")
    return VendureRefused(f"vendure refused: {message}", code)


def checked(result: Any, what: str) -> dict[str, Any]:
    """A mutation's result, or a PermanentError when it is one of Vendure's ErrorResults."""
    if not isinstance(result, dict):
        raise PermanentError(f"vendure: {what} answered nothing")
    if "errorCode" in result:
        raise PermanentError(f"vendure: {what}: {result.get('message')} ({result['errorCode']})")
    return result
