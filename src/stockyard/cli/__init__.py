"""The operator CLI: a thin shell over the service layer, run as a platform administrator
(whoever runs it holds the database anyway).

Scripts read it: every error is one line on stderr with exit 2 (`errors`), and a table
printed to a pipe is tab-separated, one row per line (`output.table`). It starts fast:
the modules of a command import the service, the database drivers and the web server
when the command runs, so `stockyard --help` loads none of them.
"""

from __future__ import annotations

import typer

from stockyard.cli import accounts, agent, connections, customers, items, lanes, run
from stockyard.cli.errors import Shell

cli = typer.Typer(
    cls=Shell,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Stockyard operator CLI.",
)
# In the order `--help` lists them.
cli.add_typer(connections.connections_cli, name="connections")
cli.add_typer(items.items_cli, name="items")
cli.add_typer(lanes.lanes_cli, name="lanes")
cli.add_typer(accounts.users_cli, name="users")
cli.add_typer(accounts.keys_cli, name="keys")
cli.add_typer(accounts.subs_cli, name="subscriptions")
cli.add_typer(accounts.clients_cli, name="clients")
cli.add_typer(customers.customers_cli, name="customers")
cli.add_typer(agent.agent_cli, name="agent")
cli.command()(run.init)
cli.command()(items.enqueue)
cli.command(name="retry", help=items.RETRY_HELP)(items.action_command("retry"))
cli.command(name="skip", help=items.SKIP_HELP)(items.action_command("skip"))
cli.command()(run.worker)
cli.command()(run.serve)
cli.command()(run.prune)
cli.command()(run.demo)


def main() -> None:
    cli()


__all__ = ["cli", "main"]
