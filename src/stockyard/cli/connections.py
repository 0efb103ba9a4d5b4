"""Connections: a client's sources, channels and fulfillment services."""

from __future__ import annotations

import typer

from stockyard.cli import output
from stockyard.cli.common import ClientOption, DbOption, client_service, json_object, operator

connections_cli = typer.Typer(no_args_is_help=True, help="Sources, channels, fulfillment services.")


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
    db: str | None = DbOption,
    client: str = ClientOption,
) -> None:
    """Add a connection; sources and channels get their own lane."""
    service, client_id = client_service(db, client)
    conn = service.create_connection(
        operator(),
        client_id,
        kind,
        connector,
        description,
        json_object(settings, "settings"),
        json_object(secrets, "secrets"),
    )
    output.out.print(
        f"connection {conn.id} added: {conn.kind} {conn.description!r} ({conn.connector})"
    )


@connections_cli.command("list")
def connections_list(db: str | None = DbOption, client: str = ClientOption) -> None:
    """List the client's connections."""
    service, client_id = client_service(db, client)
    output.table(
        ("id", "kind", "connector", "description", "status", "secrets"),
        [
            (str(c.id), c.kind, c.connector, c.description, c.status, " ".join(c.secrets))
            for c in service.connections(operator(), client_id)
        ],
    )
