"""Customers: `stockyard customers erase` removes a customer's personal data on request
(docs/privacy.md)."""

from __future__ import annotations

import sys

import typer

from stockyard.cli import output
from stockyard.cli.common import ClientOption, DbOption, client_service, operator
from stockyard.errors import InvalidInput

customers_cli = typer.Typer(help="Customers: personal data.", no_args_is_help=True)


@customers_cli.command("erase")
def customers_erase(
    code: str = typer.Argument(..., help="The customer's code (their ERP id, account number)"),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation"),
    db: str | None = DbOption,
    client: str = ClientOption,
) -> None:
    """Erase a customer's personal data (names, emails, phones, addresses, contacts)
    from the catalog, their orders and the queue's items. Ids, totals, the queue's order
    and the audit stay. It cannot be undone; running it again changes nothing more."""
    if not yes:
        # Irreversible: a person confirms it, a script says --yes.
        if not sys.stdin.isatty():
            raise InvalidInput(f"this would erase customer {code!r} for good: add --yes to confirm")
        typer.confirm(f"erase the personal data of customer {code!r} for good?", abort=True)
    service, client_id = client_service(db, client)
    done = service.erase_customer(operator(), client_id, code)
    again = " (already erased before)" if done.already_erased else ""
    output.out.print(
        f"customer {done.code} erased{again}: {len(done.orders)} orders,"
        f" {len(done.items)} queue items, {done.attempts} attempt errors rewritten"
    )
    for channel_id, remote_id in done.accounts.items():
        output.out.print(
            f"connection {channel_id} holds an account of theirs ({remote_id}): erase it there"
        )


@customers_cli.command("unerase")
def customers_unerase(
    code: str = typer.Argument(..., help="The erased customer's code"),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation"),
    db: str | None = DbOption,
    client: str = ClientOption,
) -> None:
    """Lift the erased mark of a customer who came back and asked to be known again: the
    source's next record of them is stored whole. Nothing erased comes back by itself."""
    if not yes:
        # It lets personal data in again: a person confirms it, a script says --yes.
        if not sys.stdin.isatty():
            raise InvalidInput(
                f"this would let customer {code!r}'s data be stored again: add --yes to confirm"
            )
        typer.confirm(f"store customer {code!r}'s data again from the source?", abort=True)
    service, client_id = client_service(db, client)
    service.unerase_customer(operator(), client_id, code)
    output.out.print(
        f"customer {code} is no longer erased: the source's next record of them is stored"
    )
