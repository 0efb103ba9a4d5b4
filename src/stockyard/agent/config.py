"""The agent's own configuration: one TOML file (docs/agent.md).

    [stockyard]  url, connection, secret_file | secret_env
    [fulfillment]  connection, secret_file | secret_env (optional: the same ERP as the
                   client's warehouse, through a second agent connection)
    [agent]      state, poll_seconds, log_file
    [erp]        url | url_env (a SQLAlchemy URL) or folder (CSV exports), profile
    [profile.settings]  values for the profile's named parameters

Every error names the file and the key. Relative paths are read from the config file's
folder, so a service started elsewhere finds the same files.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from stockyard.agent import AgentError

Setting = str | int | float | bool


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StockyardSection(_Section):
    url: str
    connection: Annotated[int, Field(gt=0)]
    secret_file: Path | None = None
    secret_env: str | None = None

    @field_validator("url")
    @classmethod
    def _safe_url(cls, url: str) -> str:
        check_url(url)
        return url.rstrip("/")

    @model_validator(mode="after")
    def _one_secret(self) -> StockyardSection:
        if (self.secret_file is None) == (self.secret_env is None):
            raise ValueError("give exactly one of secret_file and secret_env")
        return self


class FulfillmentSection(_Section):
    """A second agent connection, kind fulfillment, with its own credential: the agent
    runs its fulfill_order items and pushes the fulfilments' state and tracking to it."""

    connection: Annotated[int, Field(gt=0)]
    secret_file: Path | None = None
    secret_env: str | None = None

    @model_validator(mode="after")
    def _one_secret(self) -> FulfillmentSection:
        if (self.secret_file is None) == (self.secret_env is None):
            raise ValueError("give exactly one of secret_file and secret_env")
        return self


class AgentSection(_Section):
    state: Path
    poll_seconds: Annotated[float, Field(gt=0, le=86400)] = 60.0
    log_file: Path | None = None
    batch_size: Annotated[int, Field(ge=1, le=1000)] = 100  # records per push


class ErpSection(_Section):
    profile: Annotated[str, Field(min_length=1)]
    url: str | None = None
    url_env: str | None = None
    folder: Path | None = None  # a CSV-export profile's folder
    # The isolation level a poll reads in (one transaction for all its pages), e.g.
    # "SNAPSHOT" on SQL Server once ALLOW_SNAPSHOT_ISOLATION is on; PostgreSQL defaults to
    # REPEATABLE READ, others to the driver's default.
    read_isolation: (
        Literal["SNAPSHOT", "REPEATABLE READ", "SERIALIZABLE", "READ COMMITTED"] | None
    ) = None

    @model_validator(mode="after")
    def _one_source(self) -> ErpSection:
        given = [k for k in ("url", "url_env", "folder") if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(f"give only one of url, url_env and folder (got {', '.join(given)})")
        return self


class ProfileSection(_Section):
    settings: dict[str, Setting] = {}


class AgentConfig(_Section):
    stockyard: StockyardSection
    agent: AgentSection
    erp: ErpSection
    fulfillment: FulfillmentSection | None = None
    profile: ProfileSection = ProfileSection()
    source: Path = Path("agent.toml")  # the file it was read from (for messages)

    def secret(self) -> str:
        """The connection's webhook_secret, read when needed, never kept in the config."""
        s = self.stockyard
        return self._read_secret("stockyard", s.secret_file, s.secret_env)

    def fulfillment_secret(self) -> str | None:
        """The [fulfillment] connection's own webhook_secret; None without one."""
        f = self.fulfillment
        return None if f is None else self._read_secret("fulfillment", f.secret_file, f.secret_env)

    def _read_secret(self, section: str, secret_file: Path | None, secret_env: str | None) -> str:
        if secret_env is not None:
            value = os.environ.get(secret_env, "").strip()
            if not value:
                raise AgentError(
                    f"{self.source}: [{section}] secret_env: environment variable"
                    f" {secret_env} is not set"
                )
            return value
        assert secret_file is not None
        try:
            value = secret_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise AgentError(
                f"{self.source}: [{section}] secret_file: cannot read {secret_file}: {exc.strerror}"
            ) from None
        if not value:
            raise AgentError(f"{self.source}: [{section}] secret_file: {secret_file} is empty")
        return value

    def erp_url(self) -> str | None:
        """The ERP's SQLAlchemy URL (from url_env when it holds a password), or None for a
        CSV folder."""
        e = self.erp
        if e.url_env is not None:
            value = os.environ.get(e.url_env, "").strip()
            if not value:
                raise AgentError(
                    f"{self.source}: [erp] url_env: environment variable {e.url_env} is not set"
                )
            return value
        return e.url


LOOPBACK_NAMES = {"localhost", "localhost.localdomain"}


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_url(url: str) -> None:
    """Stockyard's URL: https, or http only to this machine (the secret signs every request,
    but the ERP's data would travel in clear)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http(s) URL, e.g. https://stockyard.example.com")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ValueError("must use https (http only to 127.0.0.1, ::1 or localhost)")
    if parts.username or parts.password:
        raise ValueError("must not carry a user or password: the agent signs with its secret")
    if parts.query or parts.fragment:
        raise ValueError("must not carry a query or fragment")


def _where(loc: tuple[Any, ...]) -> str:
    """`[stockyard] url` for ('stockyard', 'url')."""
    parts = [str(p) for p in loc]
    if len(parts) >= 2:
        return f"[{'.'.join(parts[:-1])}] {parts[-1]}"
    return f"[{parts[0]}]" if parts else "the file"


def validation_problems(exc: ValidationError) -> str:
    out = []
    for e in exc.errors()[:10]:
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        elif e["type"] == "missing":
            msg = "missing"
        out.append(f"{_where(tuple(e['loc']))}: {msg}")
    return "; ".join(out)


def read_toml(path: Path, what: str) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise AgentError(f"cannot read the {what} {path}: {exc.strerror}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise AgentError(f"{path}: not valid TOML: {exc}") from None


def _resolve(base: Path, value: Any) -> Any:
    if isinstance(value, str) and value and not Path(value).is_absolute():
        return str(base / value)
    return value


def load_config(path: Path) -> AgentConfig:
    data = read_toml(path, "agent config")
    base = path.resolve().parent
    for section, key in (
        ("stockyard", "secret_file"),
        ("fulfillment", "secret_file"),
        ("agent", "state"),
        ("agent", "log_file"),
        ("erp", "folder"),
    ):
        table = data.get(section)
        if isinstance(table, dict) and key in table:
            table[key] = _resolve(base, table[key])
    try:
        config = AgentConfig.model_validate({**data, "source": path})
    except ValidationError as exc:
        raise AgentError(f"{path}: {validation_problems(exc)}") from None
    if (
        config.fulfillment is not None
        and config.fulfillment.connection == config.stockyard.connection
    ):
        raise AgentError(
            f"{path}: [fulfillment] connection: a second connection (kind fulfillment), not"
            " [stockyard] connection again"
        )
    return config
