"""The operator CLI: a thin shell over the service layer, run as a platform administrator
(whoever runs it holds the database anyway). Bad input: one line, exit 2."""

from __future__ import annotations

import asyncio
import datetime as dt
import getpass
import json
import logging
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import typer
from prometheus_client import start_http_server
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from stockyard import app as wiring
from stockyard.accounts import ROLES, Principal
from stockyard.db import DATABASE_ERRORS
from stockyard.engine import Item, ItemFilter, Queue, Request
from stockyard.errors import InvalidInput, StockyardError
from stockyard.metrics import Metrics
from stockyard.notify import EVENTS
from stockyard.notify import events as notify_events
from stockyard.service import Stockyard
from stockyard.worker import Worker, WorkerSettings

cli = typer.Typer(no_args_is_help=True, add_completion=False, help="Stockyard operator CLI.")
connections_cli = typer.Typer(no_args_is_help=True, help="Sources, channels, fulfillment services.")
items_cli = typer.Typer(no_args_is_help=True, help="Look at queue items.")
lanes_cli = typer.Typer(help="Lanes: one FIFO per source or channel.", invoke_without_command=True)
cli.add_typer(connections_cli, name="connections")
cli.add_typer(items_cli, name="items")
cli.add_typer(lanes_cli, name="lanes")
users_cli = typer.Typer(no_args_is_help=True, help="People who log in to the API and console.")
keys_cli = typer.Typer(no_args_is_help=True, help="API keys of a client.")
subs_cli = typer.Typer(no_args_is_help=True, help="Who is notified of what (email, webhooks).")
cli.add_typer(users_cli, name="users")
cli.add_typer(keys_cli, name="keys")
cli.add_typer(subs_cli, name="subscriptions")
out = Console()

DbOption = typer.Option(
    None,
    "--db",
    envvar="STOCKYARD_DATABASE_URL",
    help="Database URL [default: sqlite:///stockyard.db]",
)
ClientOption = typer.Option(wiring.DEFAULT_CLIENT, "--client", help="The client (tenant).")


def _queue(db: str | None) -> Queue:
    return wiring.open_queue(db)


def _service(db: str | None, client: str) -> tuple[Stockyard, int]:
    """The service layer, and the id of the named client."""
    service = wiring.build_service(_queue(db))
    return service, service.queue.client_id(client)


def _operator() -> Principal:
    """Whoever runs the CLI on the server has the database itself: a platform administrator."""
    return Principal(_actor(), platform_admin=True)


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _when(ts: float | None) -> str:
    if ts is None:
        return ""
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def _json_object(text: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{what} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise InvalidInput(f"{what} must be a JSON object")
    return value


def _duration(text: str) -> float:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", text)
    if not match:
        raise InvalidInput(f"cannot read duration {text!r}: use e.g. 90s, 30m, 12h, 7d, 2w")
    scale = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[match.group(2)]
    return float(match.group(1)) * scale


def _date(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return dt.datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise InvalidInput(
            f"cannot read date {text!r}: use YYYY-MM-DD or YYYY-MM-DDTHH:MM"
        ) from None


# ---------------------------------------------------------------------------- set-up


@cli.command()
def init(db: str | None = DbOption) -> None:
    """Create or upgrade the database schema (safe to run again)."""
    queue = wiring.init_queue(db)
    out.print(f"database ready: {queue.db.describe()}")


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
    service, client_id = _service(db, client)
    conn = service.create_connection(
        _operator(),
        client_id,
        kind,
        connector,
        description,
        _json_object(settings, "settings"),
        _json_object(secrets, "secrets"),
    )
    out.print(f"connection {conn.id} added: {conn.kind} {conn.description!r} ({conn.connector})")


@connections_cli.command("list")
def connections_list(db: str | None = DbOption, client: str = ClientOption) -> None:
    """List the client's connections."""
    service, client_id = _service(db, client)
    table = Table("id", "kind", "connector", "description", "status", "secrets")
    for c in service.connections(_operator(), client_id):
        table.add_row(str(c.id), c.kind, c.connector, c.description, c.status, " ".join(c.secrets))
    out.print(table)


# ---------------------------------------------------------------------------- enqueue


def _requests_from_file(path: Path) -> Iterator[Request]:
    """A JSON array of items, or JSON Lines: one item object per line."""
    if str(path) != "-" and not path.is_file():
        raise InvalidInput(f"no such file: {path}")
    text = sys.stdin.read() if str(path) == "-" else path.read_text()
    stripped = text.lstrip()
    try:
        if stripped.startswith("["):
            records = json.loads(text)
        else:
            records = [json.loads(line) for line in text.splitlines() if line.strip()]
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{path} is not JSON or JSON Lines: {exc}") from None
    for n, record in enumerate(records, 1):
        yield _request(record, f"item {n} of {path}")


def _request(record: Any, where: str) -> Request:
    if not isinstance(record, dict) or "instruction" not in record:
        raise InvalidInput(f"{where} must be an object with an 'instruction'")
    unknown = set(record) - {"instruction", "payload", "connection", "refs", "key", "parent"}
    if unknown:
        raise InvalidInput(f"{where} has unknown fields: {', '.join(sorted(unknown))}")
    refs = record.get("refs", [])
    if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
        raise InvalidInput(f"{where}: refs must be a list of strings")
    payload = record.get("payload", {})
    if not isinstance(payload, dict):
        raise InvalidInput(f"{where}: payload must be a JSON object")
    for field in ("connection", "parent"):
        if record.get(field) is not None and not isinstance(record[field], int):
            raise InvalidInput(f"{where}: {field} must be a number")
    return Request(
        instruction=str(record["instruction"]),
        payload=payload,
        connection_id=record.get("connection"),
        refs=tuple(refs),
        idempotency_key=record.get("key"),
        parent_id=record.get("parent"),
    )


@cli.command()
def enqueue(
    instruction: str | None = typer.Argument(None, help="Instruction name (or use --file)"),
    connection: int | None = typer.Option(None, help="Connection id (the lane, if blocking)"),
    payload: str = typer.Option("{}", help="JSON object"),
    ref: list[str] = typer.Option([], help="Entity reference (SKU, order id); repeatable"),
    key: str | None = typer.Option(None, help="Idempotency key: enqueue once only"),
    file: Path | None = typer.Option(None, help="JSON array or JSON Lines of items ('-': stdin)"),
    batch: int = typer.Option(1000, min=1, max=10000, help="Items per transaction"),
    db: str | None = DbOption,
    client: str = ClientOption,
) -> None:
    """Enqueue one item, or many from a file (each batch atomically)."""
    service, client_id = _service(db, client)
    who = _operator()
    if file is None:
        if instruction is None:
            raise InvalidInput("give an instruction, or --file with items")
        ids = service.enqueue(
            who,
            client_id,
            [Request(instruction, _json_object(payload, "payload"), connection, tuple(ref), key)],
        )
        out.print(f"queued item {ids[0]}")
        return
    if instruction is not None:
        raise InvalidInput("give either an instruction or --file, not both")
    requests = list(_requests_from_file(file))
    total = 0
    with Progress(console=out, transient=True) as progress:
        task = progress.add_task("enqueueing", total=len(requests))
        for start in range(0, len(requests), batch):
            chunk = requests[start : start + batch]
            total += len(service.enqueue(who, client_id, chunk))
            progress.advance(task, len(chunk))
    out.print(f"queued {total} items")


# ---------------------------------------------------------------------------- items


def _filter(
    client_id: int,
    status: list[str],
    instruction: list[str],
    connection: int | None,
    ref: str | None,
    error: str | None,
    since: str | None,
    until: str | None,
) -> ItemFilter:
    return ItemFilter(
        client_id=client_id,
        statuses=tuple(status),
        instructions=tuple(instruction),
        connection_id=connection,
        ref=ref,
        error_contains=error,
        created_from=_date(since),
        created_to=_date(until),
    )


StatusOpt = typer.Option([], "--status", help="queued, running, done, failed, skipped, superseded")
InstructionOpt = typer.Option([], "--instruction", help="Instruction name; repeatable")
ConnectionOpt = typer.Option(None, "--connection", help="Connection (source / channel) id")
RefOpt = typer.Option(None, "--ref", "--sku", help="Entity reference, e.g. a SKU")
ErrorOpt = typer.Option(None, "--error", help="Text in the error message")
SinceOpt = typer.Option(None, "--since", help="Created on or after (ISO date)")
UntilOpt = typer.Option(None, "--until", help="Created before (ISO date)")


def _items_table(items: list[Item]) -> Table:
    table = Table("id", "status", "instruction", "description", "refs", "created", "error")
    for it in items:
        table.add_row(
            str(it.id),
            it.status,
            it.instruction,
            it.description,
            " ".join(it.refs),
            _when(it.created_at),
            (it.error or "")[:80],
        )
    return table


@items_cli.command("list")
def items_list(
    status: list[str] = StatusOpt,
    instruction: list[str] = InstructionOpt,
    connection: int | None = ConnectionOpt,
    ref: str | None = RefOpt,
    error: str | None = ErrorOpt,
    since: str | None = SinceOpt,
    until: str | None = UntilOpt,
    limit: int = typer.Option(50, min=1, max=1000),
    before: int | None = typer.Option(None, help="Page: show items older than this id"),
    db: str | None = DbOption,
    client: str = ClientOption,
) -> None:
    """List items, newest first."""
    service, client_id = _service(db, client)
    flt = _filter(client_id, status, instruction, connection, ref, error, since, until)
    items = service.items(_operator(), flt, limit, before)
    out.print(_items_table(items))
    if len(items) == limit:
        out.print(f"more: --before {items[-1].id}")


@items_cli.command("show")
def items_show(item_id: int, db: str | None = DbOption, client: str = ClientOption) -> None:
    """One item: payload, error, attempts, children and audit trail."""
    service, client_id = _service(db, client)
    d = service.item(_operator(), client_id, item_id)
    it = d.item
    out.print(f"[bold]item {it.id}[/bold]  {it.description}")
    out.print(
        f"status {it.status} · {it.instruction} ({it.mode}) · connection "
        f"{it.connection_id or '-'} · refs {' '.join(it.refs) or '-'} · parent "
        f"{it.parent_id or '-'}"
    )
    out.print(f"created {_when(it.created_at)} · attempts {it.attempts}")
    if it.superseded_by is not None:
        out.print(f"superseded by item {it.superseded_by} (a newer update of the same entity)")
    if it.error:
        out.print(f"[red]error[/red] ({it.error_kind}): {it.error}")
    out.print_json(json.dumps(it.payload))
    if d.attempts:
        table = Table("#", "outcome", "worker", "started", "ended", "error", title="attempts")
        for a in d.attempts:
            table.add_row(
                str(a.number),
                a.outcome,
                a.worker_id or "",
                _when(a.started_at),
                _when(a.ended_at),
                a.error or "",
            )
        out.print(table)
    if d.children:
        out.print(_items_table(d.children))
    for entry in d.audit:
        out.print(f"{_when(entry.at)} {entry.actor} {entry.action} {entry.detail}")


# ---------------------------------------------------------------------------- actions


def _act(
    action: str, ids: list[int], flt: ItemFilter, has_filter: bool, yes: bool, service: Stockyard
) -> None:
    who = _operator()
    if ids and has_filter:
        raise InvalidInput("give item ids or filters, not both")
    if ids:
        done = service.act(who, flt.client_id, action, ids)
    elif has_filter:
        allowed = ("failed",) if action == "retry" else ("failed", "queued")
        statuses = tuple(s for s in (flt.statuses or allowed) if s in allowed)
        count = service.count(who, replace(flt, statuses=statuses)) if statuses else 0
        if count == 0:
            out.print(f"no items to {action}")
            return
        if not yes:
            if not sys.stdin.isatty():
                raise InvalidInput(f"this would {action} {count} items: add --yes to confirm")
            typer.confirm(f"{action} {count} items?", abort=True)
        done = service.act_where(who, flt, action)
    else:
        raise InvalidInput(f"say which items to {action}: ids, or filters such as --sku")
    verb = "retried" if action == "retry" else "skipped"
    out.print(f"{verb} {len(done)} item{'s' if len(done) != 1 else ''}")


def _action_command(action: str, help_text: str) -> None:
    """retry and skip take the same ids and filters; one definition serves both."""

    def command(
        ids: list[int] = typer.Argument(None, help="Item ids"),
        status: list[str] = StatusOpt,
        instruction: list[str] = InstructionOpt,
        connection: int | None = ConnectionOpt,
        ref: str | None = RefOpt,
        error: str | None = ErrorOpt,
        since: str | None = SinceOpt,
        until: str | None = UntilOpt,
        yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation"),
        db: str | None = DbOption,
        client: str = ClientOption,
    ) -> None:
        service, client_id = _service(db, client)
        flt = _filter(client_id, status, instruction, connection, ref, error, since, until)
        has_filter = any([status, instruction, connection, ref, error, since, until])
        _act(action, ids or [], flt, has_filter, yes, service)

    cli.command(name=action, help=help_text)(command)


_action_command("retry", "Retry failed items: by id, or all failed items matching the filters.")
_action_command(
    "skip", "Skip failed or queued items for good: by id, or by filters (e.g. --sku ABC-1)."
)


# ---------------------------------------------------------------------------- lanes


@lanes_cli.callback()
def lanes(ctx: typer.Context, db: str | None = DbOption, client: str = ClientOption) -> None:
    """Show every lane: blocked first, with the item that blocks it."""
    if ctx.invoked_subcommand is not None:
        return
    service, client_id = _service(db, client)
    table = Table("lane", "kind", "description", "state", "head", "waiting", "since", "error")
    for lane in service.lanes(_operator(), client_id):
        style = {"blocked": "red", "paused": "yellow"}.get(lane.state, "")
        table.add_row(
            str(lane.lane_id),
            lane.kind,
            lane.description,
            f"[{style}]{lane.state}[/{style}]" if style else lane.state,
            str(lane.head_id or ""),
            str(lane.waiting),
            _when(lane.oldest_created_at),
            (lane.head_error or "")[:60],
        )
    out.print(table)


@lanes_cli.command("pause")
def lanes_pause(
    lane: int,
    reason: str = typer.Option("", help="Why (shown in the audit)"),
    db: str | None = DbOption,
    client: str = ClientOption,
) -> None:
    """Pause a lane: its running item finishes, nothing new starts."""
    service, client_id = _service(db, client)
    service.pause(_operator(), client_id, lane, reason)
    out.print(f"lane {lane} paused")


@lanes_cli.command("resume")
def lanes_resume(lane: int, db: str | None = DbOption, client: str = ClientOption) -> None:
    """Resume a paused lane."""
    service, client_id = _service(db, client)
    service.resume(_operator(), client_id, lane)
    out.print(f"lane {lane} resumed")


# ---------------------------------------------------------------------------- running


@cli.command()
def worker(
    concurrency: int = typer.Option(200, min=1, help="Items run at once"),
    threads: int = typer.Option(16, min=1, help="Threads for plain (non-async) handlers"),
    poll: float = typer.Option(0.05, help="Seconds between polls for other processes' work"),
    lease: float = typer.Option(30.0, help="Seconds without a heartbeat before a worker is dead"),
    heartbeat: float = typer.Option(5.0, help="Seconds between heartbeats"),
    metrics_port: int | None = typer.Option(
        None, min=1, max=65535, help="Serve Prometheus metrics on 127.0.0.1:PORT/metrics"
    ),
    db: str | None = DbOption,
) -> None:
    """Run items until SIGTERM or Ctrl-C, then finish what is running and exit."""
    settings = WorkerSettings(
        concurrency=concurrency,
        threads=threads,
        poll_interval=poll,
        lease_timeout=lease,
        heartbeat_interval=heartbeat,
    )
    queue = _queue(db)
    _log_info()
    metrics = Metrics(queue)
    if metrics_port is not None:
        start_http_server(metrics_port, "127.0.0.1", registry=metrics.registry)
    w = Worker(
        queue,
        wiring.default_handlers(queue),
        settings,
        wiring.periodic_jobs(queue),
        observe=metrics.observe,
    )
    out.print(f"worker {w.id} started on {queue.db.describe()}")
    stats = asyncio.run(w.run(install_signals=True))
    out.print(f"worker stopped: {stats.done} done, {stats.retried} retried, {stats.failed} failed")


@cli.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on"),
    port: int = typer.Option(8000, min=1, max=65535, help="Port to listen on"),
    workers: bool = typer.Option(True, "--workers/--no-workers", help="Run workers in-process"),
    demo: bool = typer.Option(False, "--demo", help="Add demo connections, items and a login"),
    rate_limit: float = typer.Option(50.0, min=0, help="Requests per second per caller; 0: off"),
    max_body: int = typer.Option(5 * 1024 * 1024, min=1024, help="Largest request body (bytes)"),
    db: str | None = DbOption,
) -> None:
    """Run the API and the workers in one process (migrating the database first)."""
    from stockyard.api.deps import ApiSettings
    from stockyard.serve import ServeOptions
    from stockyard.serve import serve as run

    url = wiring.database_url(db)
    if demo:
        from stockyard.demo import seed

        email, password = seed(url, out)
        out.print(f"demo login: [bold]{email}[/bold] / [bold]{password}[/bold]")
    _log_info()
    logging.getLogger("alembic").setLevel(logging.WARNING)  # migration chatter at start
    out.print(f"API on http://{host}:{port}/docs · metrics on /metrics")
    api = ApiSettings(max_body=max_body, rate_per_second=rate_limit)
    run(ServeOptions(url, host, port, workers, api=api))


def _log_info() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    # httpx logs every request at INFO: connectors make thousands; errors reach the items.
    logging.getLogger("httpx").setLevel(logging.WARNING)


@users_cli.command("add")
def users_add(
    email: str,
    platform_admin: bool = typer.Option(False, "--platform-admin", help="Every client, all rights"),
    client: str | None = typer.Option(None, "--client", help="Give a role on this client"),
    role: str = typer.Option("administrator", help=f"The role on --client: {', '.join(ROLES)}"),
    password: str = typer.Option(
        ..., prompt=True, hide_input=True, confirmation_prompt=True, envvar="STOCKYARD_PASSWORD"
    ),
    db: str | None = DbOption,
) -> None:
    """Add a user (the password is asked for, or read from STOCKYARD_PASSWORD)."""
    service = wiring.build_service(_queue(db))
    user = service.create_user(_operator(), email, password, platform_admin)
    if client is not None:
        service.set_member(_operator(), service.queue.client_id(client), email, role, None)
    out.print(
        f"user {user.id} added: {user.email}" + (" (platform admin)" if platform_admin else "")
    )


@keys_cli.command("create")
def keys_create(
    name: str = typer.Option(..., help="Where the key is used, e.g. 'ERP push'"),
    role: str = typer.Option("operator", help=f"One of {', '.join(ROLES)}"),
    db: str | None = DbOption,
    client: str = ClientOption,
) -> None:
    """Create an API key; its token is printed this once."""
    service, client_id = _service(db, client)
    key, token = service.create_key(_operator(), client_id, name, role)
    out.print(f"key {key.id} ({key.role}) created; its token, shown only now:")
    out.print(token, highlight=False, soft_wrap=True)


@keys_cli.command("list")
def keys_list(db: str | None = DbOption, client: str = ClientOption) -> None:
    """List the client's API keys (never their tokens)."""
    service, client_id = _service(db, client)
    table = Table("id", "name", "role", "prefix", "created", "by", "revoked")
    for k in service.keys(_operator(), client_id):
        table.add_row(
            str(k.id),
            k.name,
            k.role,
            k.prefix + "…",
            _when(k.created_at),
            k.created_by,
            _when(k.revoked_at),
        )
    out.print(table)


@keys_cli.command("revoke")
def keys_revoke(key_id: int, db: str | None = DbOption, client: str = ClientOption) -> None:
    """Revoke an API key at once."""
    service, client_id = _service(db, client)
    service.revoke_key(_operator(), client_id, key_id)
    out.print(f"key {key_id} revoked")


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
    service, client_id = _service(db, client)
    kind, target = ("email", email) if email is not None else ("webhook", webhook)
    sub, secret = service.subscribe(_operator(), client_id, kind, str(target), event, connection)
    out.print(f"subscription {sub.id} added: {sub.kind} {sub.target}")
    if secret:
        out.print("its signing secret, shown only now:")
        out.print(secret, highlight=False, soft_wrap=True)


@subs_cli.command("list")
def subscriptions_list(db: str | None = DbOption, client: str = ClientOption) -> None:
    """List the client's subscriptions."""
    service, client_id = _service(db, client)
    table = Table("id", "kind", "target", "events", "connections")
    for sub in service.list_subscriptions(_operator(), client_id):
        table.add_row(
            str(sub.id),
            sub.kind,
            sub.target,
            " ".join(sub.events) or "all",
            " ".join(map(str, sub.connections)) or "all",
        )
    out.print(table)


@subs_cli.command("remove")
def subscriptions_remove(
    sub_id: int, db: str | None = DbOption, client: str = ClientOption
) -> None:
    """Remove a subscription."""
    service, client_id = _service(db, client)
    service.unsubscribe(_operator(), client_id, sub_id)
    out.print(f"subscription {sub_id} removed")


@cli.command()
def prune(
    older_than: str = typer.Option("30d", help="Age of finished items to delete, e.g. 7d"),
    db: str | None = DbOption,
) -> None:
    """Delete finished items older than the given age; failed and waiting items stay.
    Notification bookkeeping of the same age goes too."""
    queue = _queue(db)
    age = _duration(older_than)
    out.print(f"pruned {queue.prune(age)} items")
    notify_events.prune(queue.db, age, time.time())


@cli.command()
def demo(
    items: int = typer.Option(2000, min=1, max=1_000_000, help="How many demo items"),
    db: str | None = DbOption,
) -> None:
    """Set up demo connections and items, then run a worker and show the queue drain."""
    from stockyard.demo import run_demo

    run_demo(wiring.database_url(db), items, out)


def main() -> None:
    try:
        cli(standalone_mode=False)
    except StockyardError as exc:
        out.print(f"[red]error:[/red] {exc}", highlight=False)
        sys.exit(2)
    except DATABASE_ERRORS as exc:
        out.print(f"[red]database error:[/red] {exc}", highlight=False)
        sys.exit(1)
    except typer.Abort:
        out.print("aborted")
        sys.exit(1)
    except (typer.Exit, SystemExit) as exc:
        code = getattr(exc, "exit_code", getattr(exc, "code", 0))
        sys.exit(code)
    except Exception as exc:
        # Usage errors (Typer's vendored Click) arrive here in non-standalone mode.
        show = getattr(exc, "show", None)
        if callable(show) and isinstance(getattr(exc, "exit_code", None), int):
            show()
            sys.exit(exc.exit_code)  # type: ignore[attr-defined]
        raise


if __name__ == "__main__":
    main()
