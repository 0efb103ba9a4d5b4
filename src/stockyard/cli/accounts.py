"""People and keys: users, clients (tenants), API keys, and who is notified of what."""

from __future__ import annotations

import os
import sys

import typer

from stockyard.accounts import ROLES
from stockyard.cli import output
from stockyard.cli.common import ClientOption, DbOption, client_service, operator, service
from stockyard.errors import InvalidInput
from stockyard.notify import EVENTS

users_cli = typer.Typer(no_args_is_help=True, help="People who log in to the API and console.")
keys_cli = typer.Typer(no_args_is_help=True, help="API keys of a client.")
subs_cli = typer.Typer(no_args_is_help=True, help="Who is notified of what (email, webhooks).")
clients_cli = typer.Typer(no_args_is_help=True, help="Clients (tenants): the merchants served.")


def _new_password(email: str) -> str:
    """From STOCKYARD_PASSWORD, else asked twice on a terminal. Never an option: a password
    on the command line shows in `ps` and in the shell's history."""
    given = os.environ.get("STOCKYARD_PASSWORD")
    if given:
        return given
    if not sys.stdin.isatty():
        raise InvalidInput(
            "no password: set STOCKYARD_PASSWORD, or run this in a terminal to be asked"
        )
    return str(typer.prompt(f"password for {email}", hide_input=True, confirmation_prompt=True))


@users_cli.command("add")
def users_add(
    email: str,
    platform_admin: bool = typer.Option(False, "--platform-admin", help="Every client, all rights"),
    client: str | None = typer.Option(None, "--client", help="Give a role on this client"),
    role: str = typer.Option("administrator", help=f"The role on --client: {', '.join(ROLES)}"),
    db: str | None = DbOption,
) -> None:
    """Add a user (the password is read from STOCKYARD_PASSWORD, or asked)."""
    from stockyard.accounts import check_role

    opened = service(db)
    who = operator()
    # Everything that can be wrong is asked before the user exists: no half-made account.
    client_id = opened.client_named(who, client).id if client is not None else None
    if client_id is not None:
        check_role(role)
    user = opened.create_user(who, email, _new_password(email), platform_admin)
    if client_id is not None:
        opened.set_member(who, client_id, email, role)
    output.out.print(
        f"user {user.id} added: {user.email}"
        + (" (platform admin)" if platform_admin else "")
        + (f", {role} of {client}" if client_id is not None else "")
    )


@users_cli.command("passwd")
def users_passwd(email: str, db: str | None = DbOption) -> None:
    """Set a user's password (read from STOCKYARD_PASSWORD, or asked); their sessions end."""
    opened = service(db)
    opened.user(operator(), email)  # NotFound before asking for a password
    opened.set_password(operator(), email, _new_password(email))
    output.out.print(f"password of {email.strip().lower()} set; their sessions have ended")


@clients_cli.command("add")
def clients_add(name: str, db: str | None = DbOption) -> None:
    """Add a client (a merchant); give it people with `users add --client NAME`."""
    added = service(db).create_client(operator(), name)
    output.out.print(f"client {added.id} added: {added.name}")


@clients_cli.command("list")
def clients_list(db: str | None = DbOption) -> None:
    """List the clients."""
    output.table(("id", "name"), [(str(c.id), c.name) for c in service(db).clients(operator())])


@keys_cli.command("create")
def keys_create(
    name: str = typer.Option(..., help="Where the key is used, e.g. 'ERP push'"),
    role: str = typer.Option("operator", help=f"One of {', '.join(ROLES)}"),
    db: str | None = DbOption,
    client: str = ClientOption,
) -> None:
    """Create an API key; its token is printed this once."""
    opened, client_id = client_service(db, client)
    key, token = opened.create_key(operator(), client_id, name, role)
    output.out.print(f"key {key.id} ({key.role}) created; its token, shown only now:")
    output.out.print(token, highlight=False, soft_wrap=True)


@keys_cli.command("list")
def keys_list(db: str | None = DbOption, client: str = ClientOption) -> None:
    """List the client's API keys (never their tokens)."""
    opened, client_id = client_service(db, client)
    when = output.when
    output.table(
        ("id", "name", "role", "prefix", "created", "by", "revoked"),
        [
            (
                str(k.id),
                k.name,
                k.role,
                k.prefix + "…",
                when(k.created_at),
                k.created_by,
                when(k.revoked_at),
            )
            for k in opened.keys(operator(), client_id)
        ],
    )


@keys_cli.command("revoke")
def keys_revoke(key_id: int, db: str | None = DbOption, client: str = ClientOption) -> None:
    """Revoke an API key at once."""
    opened, client_id = client_service(db, client)
    opened.revoke_key(operator(), client_id, key_id)
    output.out.print(f"key {key_id} revoked")


@subs_cli.command("add")
def subscriptions_add(
    email: str | None = typer.Option(None, "--email", help="Notify this address"),
    webhook: str | None = typer.Option(None, "--webhook", help="POST signed JSON to this URL"),
    event: list[str] = typer.Option([], "--event", help=f"Only these: {', '.join(EVENTS)}"),
    connection: list[int] = typer.Option([], "--connection", help="Only these connections"),
    db: str | None = DbOption,
    client: str = ClientOption,
) -> None:
    """Subscribe an email address or a webhook to notices (all of them unless narrowed)."""
    if (email is None) == (webhook is None):
        raise InvalidInput("give --email or --webhook")
    opened, client_id = client_service(db, client)
    kind, target = ("email", email) if email is not None else ("webhook", webhook)
    sub, secret = opened.subscribe(operator(), client_id, kind, str(target), event, connection)
    output.out.print(f"subscription {sub.id} added: {sub.kind} {sub.target}")
    if secret:
        output.out.print("its signing secret, shown only now:")
        output.out.print(secret, highlight=False, soft_wrap=True)


@subs_cli.command("list")
def subscriptions_list(db: str | None = DbOption, client: str = ClientOption) -> None:
    """List the client's subscriptions."""
    opened, client_id = client_service(db, client)
    output.table(
        ("id", "kind", "target", "events", "connections"),
        [
            (
                str(sub.id),
                sub.kind,
                sub.target,
                " ".join(sub.events) or "all",
                " ".join(map(str, sub.connections)) or "all",
            )
            for sub in opened.list_subscriptions(operator(), client_id)
        ],
    )


@subs_cli.command("remove")
def subscriptions_remove(
    sub_id: int, db: str | None = DbOption, client: str = ClientOption
) -> None:
    """Remove a subscription."""
    opened, client_id = client_service(db, client)
    opened.unsubscribe(operator(), client_id, sub_id)
    output.out.print(f"subscription {sub_id} removed")
