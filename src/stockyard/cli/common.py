"""What every command shares: the --db and --client options, the service they open, who
the operator is, and reading the values given on the command line."""

from __future__ import annotations

import datetime as dt
import getpass
import json
import re
from typing import TYPE_CHECKING, Any

import typer

from stockyard.application import DEFAULT_CLIENT
from stockyard.errors import InvalidInput

if TYPE_CHECKING:
    from stockyard.accounts import Principal
    from stockyard.application import Application
    from stockyard.service import Stockyard

DbOption = typer.Option(
    None,
    "--db",
    envvar="STOCKYARD_DATABASE_URL",
    help="Database URL [default: sqlite:///stockyard.db]",
)
ClientOption = typer.Option(DEFAULT_CLIENT, "--client", help="The client (tenant).")


def application(db: str | None) -> Application:
    """The application on an initialised database."""
    from stockyard.application import Application

    return Application.open(db)


def service(db: str | None) -> Stockyard:
    return application(db).service


def client_service(db: str | None, client: str) -> tuple[Stockyard, int]:
    """The service layer, and the id of the named client."""
    opened = service(db)
    return opened, opened.client_named(operator(), client).id


def operator() -> Principal:
    """Whoever runs the CLI on the server has the database itself: a platform administrator."""
    from stockyard.accounts import Principal

    return Principal(_actor(), platform_admin=True)


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def json_object(text: str, what: str) -> dict[str, Any]:
    from stockyard import strict_json

    try:
        value = strict_json.loads(text)
    except strict_json.Refused as exc:
        raise InvalidInput(f"{what}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{what} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise InvalidInput(f"{what} must be a JSON object")
    return value


def duration(text: str) -> float:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", text)
    if not match:
        raise InvalidInput(f"cannot read duration {text!r}: use e.g. 90s, 30m, 12h, 7d, 2w")
    scale = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[match.group(2)]
    return float(match.group(1)) * scale


def date(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return dt.datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise InvalidInput(
            f"cannot read date {text!r}: use YYYY-MM-DD or YYYY-MM-DDTHH:MM"
        ) from None
