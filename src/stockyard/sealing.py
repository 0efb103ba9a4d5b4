"""Connection secrets at rest: sealed with Fernet (AES-CBC + HMAC-SHA256, from the
`cryptography` package) so a copy of the database alone reveals no shop or ERP password.

The key comes from STOCKYARD_SECRET_KEY (one or more Fernet keys, comma-separated: the
first seals, all open, which is how keys are rotated), else from a key file: the
STOCKYARD_KEY_FILE path, or for SQLite a file beside the database, created on first use.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy.engine import make_url

from stockyard.errors import InvalidInput, Misconfigured

KEY_ENV = "STOCKYARD_SECRET_KEY"
KEY_FILE_ENV = "STOCKYARD_KEY_FILE"


class Sealer:
    def __init__(self, keys: list[bytes]) -> None:
        if not keys:
            raise Misconfigured("no key to seal connection secrets with")
        try:
            self._fernet = MultiFernet([Fernet(k) for k in keys])
        except ValueError:
            raise Misconfigured(
                f"{KEY_ENV} must hold Fernet keys (32 url-safe base64-encoded bytes each)"
            ) from None

    @staticmethod
    def new_key() -> bytes:
        return Fernet.generate_key()

    @classmethod
    def for_database(cls, url: str) -> Sealer:
        """The sealer a deployment on `url` uses (see the module's docstring)."""
        given = os.environ.get(KEY_ENV)
        if given:
            return cls([k.strip().encode() for k in given.split(",") if k.strip()])
        path = os.environ.get(KEY_FILE_ENV) or _beside_sqlite(url)
        if path is None:
            raise Misconfigured(
                f"set {KEY_ENV} (or {KEY_FILE_ENV}) to seal connection secrets on"
                " PostgreSQL; `python -c 'from cryptography.fernet import Fernet;"
                " print(Fernet.generate_key().decode())'` makes one"
            )
        return cls([_key_file(Path(path))])

    def seal(self, secrets: dict[str, Any]) -> str:
        return self._fernet.encrypt(json.dumps(secrets).encode()).decode()

    def open(self, sealed: str | None) -> dict[str, Any]:
        if not sealed:
            return {}
        try:
            opened: dict[str, Any] = json.loads(self._fernet.decrypt(sealed.encode()))
        except InvalidToken:
            raise Misconfigured(
                "connection secrets cannot be opened with this key: was the key changed"
                f" without keeping the old one in {KEY_ENV}?"
            ) from None
        return opened


def merge_secrets(current: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """Secrets are write-only: a change sets a value, or removes it when null. A value is a
    string, or an object of strings (e.g. the headers that carry a token)."""
    merged = dict(current)
    for name, value in changes.items():
        if value is None:
            merged.pop(name, None)
        elif (isinstance(value, str) and value) or (
            isinstance(value, dict) and all(isinstance(v, str) for v in value.values())
        ):
            merged[name] = value
        else:
            raise InvalidInput(
                f"secrets.{name}: a secret is a non-empty string or an object of strings;"
                " null removes it"
            )
    return merged


def _beside_sqlite(url: str) -> str | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    if parsed.database == ":memory:":
        return None
    return parsed.database + ".key"


def _key_file(path: Path) -> bytes:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Created readable by its owner only, and never overwritten by a racing process.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "wb") as f:
                f.write(Fernet.generate_key())
    key = path.read_bytes().strip()
    if not key:
        raise Misconfigured(f"the key file {path} is empty")
    return key
