"""Connections: a client's sources, channels and fulfillment services."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from stockyard.cli import output
from stockyard.cli.common import ClientOption, DbOption, client_service, json_object, operator
from stockyard.errors import InvalidInput

if TYPE_CHECKING:
    from stockyard.engine import Limits

connections_cli = typer.Typer(no_args_is_help=True, help="Sources, channels, fulfillment services.")

# The bounds of each limit are the engine's (stockyard.engine.Limits): checked there, once.
MaxRunningOption = typer.Option(
    None, "--max-running", help="Items running at once, on every worker together"
)
PerSecondOption = typer.Option(
    None, "--per-second", help="Items started per second on average, on every worker together"
)
BurstOption = typer.Option(
    None, "--burst", help="Items that may start at once within --per-second (default 1)"
)


def _limits(max_running: int | None, per_second: float | None, burst: int | None) -> Limits:
    from stockyard.engine import Limits

    return Limits(max_running, per_second, burst)


@connections_cli.command("add")
def connections_add(
    kind: str = typer.Option(..., help="source, channel or fulfillment"),
    description: str = typer.Option(..., help="Used in item descriptions, e.g. 'Shopify (main)'"),
    connector: str = typer.Option("demo", help="Connector type"),
    settings: str = typer.Option(
        "{}", help="Settings as a JSON object: the connector's, plus rules and polling"
    ),
    secrets: str = typer.Option(
        "{}", help='Secrets as a JSON object, e.g. \'{"webhook_secret": "…"}\' (stored encrypted)'
    ),
    max_running: int | None = MaxRunningOption,
    per_second: float | None = PerSecondOption,
    burst: int | None = BurstOption,
    db: str | None = DbOption,
    client: str = ClientOption,
) -> None:
    """Add a connection; sources and channels get their own lane, limited by the
    connector's defaults unless --max-running, --per-second or --burst say otherwise."""
    given = (max_running, per_second, burst)
    limits = _limits(*given) if any(v is not None for v in given) else None
    service, client_id = client_service(db, client)
    conn = service.create_connection(
        operator(),
        client_id,
        kind,
        connector,
        description,
        json_object(settings, "settings"),
        json_object(secrets, "secrets"),
        limits,
    )
    output.out.print(
        f"connection {conn.id} added: {conn.kind} {conn.description!r} ({conn.connector})"
    )


@connections_cli.command("list")
def connections_list(db: str | None = DbOption, client: str = ClientOption) -> None:
    """List the client's connections."""
    from stockyard.service.connections import describe_limits

    service, client_id = client_service(db, client)
    output.table(
        ("id", "kind", "connector", "description", "status", "secrets", "limits"),
        [
            (
                str(c.id),
                c.kind,
                c.connector,
                c.description,
                c.status,
                " ".join(c.secrets),
                describe_limits(c.limits),
            )
            for c in service.connections(operator(), client_id)
        ],
    )


@connections_cli.command("limits")
def connections_limits(
    connection_id: int = typer.Argument(
        ..., metavar="ID", min=1, max=2**53, help="The connection (a source or a channel)"
    ),
    max_running: int | None = MaxRunningOption,
    per_second: float | None = PerSecondOption,
    burst: int | None = BurstOption,
    none: bool = typer.Option(False, "--none", help="Remove every limit"),
    db: str | None = DbOption,
    client: str = ClientOption,
) -> None:
    """Set how hard the workers may drive a connection's remote system: the limits given
    replace all of its limits. Items beyond them wait their turn; they never fail."""
    from stockyard.service.connections import describe_limits

    given = (max_running, per_second, burst)
    if none and any(v is not None for v in given):
        raise InvalidInput("--none removes every limit: give it alone")
    if not none and all(v is None for v in given):
        raise InvalidInput("give --max-running, --per-second and/or --burst, or --none")
    limits = _limits(*given)  # checked before the database is opened
    service, client_id = client_service(db, client)
    conn = service.set_connection_limits(operator(), client_id, connection_id, limits)
    output.out.print(
        f"connection {conn.id} ({conn.description}) limits: {describe_limits(conn.limits)}"
    )
