"""Reading the ERP's database: any SQLAlchemy URL, the profile's queries with named
parameters (the profile's settings, :cursor, and :limit / :offset when a query pages).

A source hands out rows already renamed to Stockyard's columns (records.normalise_columns);
the cursor column, if any, comes back as `changed`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from stockyard.agent import AgentError
from stockyard.agent.profile import Extra, Profile, Reading
from stockyard.agent.records import normalise_columns

SECTIONS = ("products", "prices", "stock", "customers")


class Source(Protocol):
    def rows(self, section: str, cursor: Any) -> list[dict[str, Any]]: ...

    def close(self) -> None: ...


def safe_url(url: str) -> str:
    """The URL as it may be logged: the password masked."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):  # ValueError: a port that is no number
        return "<an unreadable URL>"


def engine(url: str) -> sa.Engine:
    try:
        return sa.create_engine(url, pool_pre_ping=True)
    except (ArgumentError, NoSuchModuleError, ValueError) as exc:
        # The message may quote the URL: say what is wrong without it. ValueError: a port
        # that is no number, a query value the dialect cannot take.
        kind = "no driver for it" if isinstance(exc, NoSuchModuleError) else "not a database URL"
        raise AgentError(f"[erp] url {safe_url(url)}: {kind}") from None
    except ImportError as exc:
        raise AgentError(f"[erp] url: its driver is not installed ({exc.name})") from None


def db_error(exc: SQLAlchemyError) -> str:
    """A database error in one line, without the statement's parameters or the URL."""
    orig = getattr(exc, "orig", None)
    reason = str(orig if orig is not None else exc).strip().splitlines()
    return f"{type(exc).__name__}: {reason[0] if reason else 'no message'}"[:500]


class SqlSource:
    def __init__(self, url: str, profile: Profile, settings: Mapping[str, Any]) -> None:
        self.profile = profile
        self.settings = dict(settings)
        self.engine = engine(url)

    def close(self) -> None:
        self.engine.dispose()

    def section(self, section: str) -> Reading | Extra | None:
        found: Reading | Extra | None = getattr(self.profile, section)
        return found

    def rows(self, section: str, cursor: Any) -> list[dict[str, Any]]:
        spec = self.section(section)
        if spec is None:
            return []
        return list(self._pages(section, spec, cursor))

    def _pages(self, section: str, spec: Reading | Extra, cursor: Any) -> Iterator[dict[str, Any]]:
        statement = sa.text(spec.query)
        wanted = set(statement.compile().params)
        cursor_column = spec.cursor if isinstance(spec, Reading) else None
        params = {**self.settings, "cursor": cursor}
        unknown = wanted - set(params) - {"limit", "offset"}
        if unknown:
            raise AgentError(
                f"[{section}] query uses :{', :'.join(sorted(unknown))}: not a setting of"
                f" the profile nor :cursor, :limit, :offset"
            )
        paged = "limit" in wanted
        offset = 0
        mapping: dict[str, str] | None = None
        try:
            with self.engine.connect() as conn:
                while True:
                    page = {**params, "limit": spec.page_size, "offset": offset}
                    result = conn.execute(statement, {k: v for k, v in page.items() if k in wanted})
                    if mapping is None:
                        mapping = normalise_columns(section, list(result.keys()), cursor_column)
                    count = 0
                    for row in result.mappings():
                        count += 1
                        yield {mapping[k]: v for k, v in row.items()}
                    if not paged or count < spec.page_size:
                        return
                    offset += count
        except SQLAlchemyError as exc:
            raise AgentError(f"[{section}] query failed: {db_error(exc)}") from None
