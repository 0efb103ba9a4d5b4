"""The operator CLI: a thin shell over the service layer, run as a platform administrator
(whoever runs it holds the database anyway).

Scripts read it: every error is one line on stderr with exit 2 (`_Shell`), and a table
printed to a pipe is tab-separated, one row per line (`_table`)."""

from __future__ import annotations

import asyncio
import datetime as dt
import getpass
import json
import logging
import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import typer
from prometheus_client import start_http_server
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from rich.text import Text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from typer.core import TyperGroup

from stockyard import app as wiring
from stockyard import strict_json
from stockyard.accounts import ROLES, Principal, check_role
from stockyard.db import DATABASE_ERRORS, connect
from stockyard.db.sqlite import SqliteDatabase
from stockyard.engine import Item, ItemFilter, Queue, Request
from stockyard.engine.worker import Worker, WorkerSettings
from stockyard.errors import InvalidInput, NotFound, StockyardError
from stockyard.metrics import Metrics
from stockyard.notify import EVENTS
from stockyard.notify import events as notify_events
from stockyard.service import Stockyard
from stockyard.service.core import BulkGroup


class _Shell(TyperGroup):
    """The root command: whatever goes wrong reaches the caller as one line on stderr and
    exit 2, never a traceback nor a message wrapped at 80 columns."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        _start()

        def run() -> Any:
            return super(_Shell, self).main(
                args, prog_name, complete_var, False, windows_expand_args, **extra
            )

        code = _exit_code(run)
        if standalone_mode:
            sys.exit(code)
        return code


def _exit_code(run: Callable[[], Any]) -> int:
    try:
        result = run()
    except StockyardError as exc:
        return _fail(str(exc))
    except typer.TyperException as exc:  # usage: an unknown option, a missing argument
        if type(exc).__name__ == "NoArgsIsHelpError":  # Typer has printed the help
            return 0
        ctx = getattr(exc, "ctx", None)
        where = f" (see {ctx.command_path} --help)" if ctx is not None else ""
        return _fail(exc.format_message() + where)
    except typer.Abort:
        err.print("aborted")
        return 1
    except DATABASE_ERRORS as exc:
        return _fail(str(exc), "database error")
    except SQLAlchemyError as exc:  # what Alembic's migrations raise
        reason = exc.orig if isinstance(exc, DBAPIError) else exc
        return _fail(str(reason).split("\n(Background")[0], "database error")
    except OSError as exc:  # a file that cannot be read, a port in use
        return _fail(str(exc))
    except Exception as exc:
        if os.environ.get("STOCKYARD_DEBUG"):
            raise
        return _fail(f"{type(exc).__name__}: {exc} (STOCKYARD_DEBUG=1 shows where)", "bug")
    # Without standalone mode Click hands back an explicit exit's code (typer.Exit, ^C).
    return result if isinstance(result, int) else 0


def _fail(message: str, kind: str = "error") -> int:
    err.print(Text.assemble((f"{kind}: ", "bold red"), " ".join(message.split())))
    return 2


def _consoles() -> tuple[Console, Console]:
    # Soft wrap: a line is never broken by Rich, whatever width it thinks it has; no markup:
    # names and descriptions print as they are (styles go through Text).
    return (
        Console(soft_wrap=True, highlight=False, markup=False),
        Console(stderr=True, soft_wrap=True, highlight=False, markup=False),
    )


out, err = _consoles()


def _start() -> None:
    """Consoles made per run, so that the streams and terminal of this run apply."""
    global out, err
    out, err = _consoles()


def _table(
    headers: Sequence[str], rows: Iterable[Sequence[str | Text]], title: str | None = None
) -> None:
    """A table: drawn on a terminal; on a pipe tab-separated, one row per line, a header
    first, each cell on one line (what `cut` and `awk` read)."""
    if out.is_terminal:
        table = Table(*headers, title=title)
        for row in rows:
            table.add_row(*row)
        out.print(table, soft_wrap=False)
        return
    lines = [f"{title}:"] if title else []
    lines.append("\t".join(headers))
    lines.extend("\t".join(" ".join(str(cell).split()) for cell in row) for row in rows)
    out.file.write("\n".join(lines) + "\n")  # as is: Rich would expand the tabs


cli = typer.Typer(
    cls=_Shell,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Stockyard operator CLI.",
)
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
clients_cli = typer.Typer(no_args_is_help=True, help="Clients (tenants): the merchants served.")
cli.add_typer(clients_cli, name="clients")

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
        value = strict_json.loads(text)
    except strict_json.NotANumber as exc:
        raise InvalidInput(f"{what}: {exc}") from None
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


def _reachable(db: str | None) -> str:
    """The database URL, once its server answers or its SQLite folder exists: `init` and
    `serve` would otherwise fail deep inside a migration."""
    url = wiring.database_url(db)
    database = connect(url)
    try:
        if isinstance(database, SqliteDatabase):
            _check_sqlite_folder(Path(database.options.path))
        else:
            database.connection()  # DatabaseUnavailable: one line, the password masked
    finally:
        database.close()
    return url


def _check_sqlite_folder(path: Path) -> None:
    if path.parent.is_dir():
        return
    message = f"cannot create the SQLite file {path}: folder {path.parent} does not exist"
    if not path.is_absolute():
        # sqlite:///tmp/x.db is tmp/x.db under the current folder: a common slip.
        message += (
            f" (a sqlite:/// URL names a path relative to {Path.cwd()};"
            f" an absolute one takes four slashes: sqlite:////{path})"
        )
    raise InvalidInput(message)


@cli.command()
def init(db: str | None = DbOption) -> None:
    """Create or upgrade the database schema (safe to run again)."""
    queue = wiring.init_queue(_reachable(db))
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
    _table(
        ("id", "kind", "connector", "description", "status", "secrets"),
        [
            (str(c.id), c.kind, c.connector, c.description, c.status, " ".join(c.secrets))
            for c in service.connections(_operator(), client_id)
        ],
    )


# ---------------------------------------------------------------------------- enqueue

_WHITESPACE = re.compile(r"\s*")
_FIELDS = {"instruction", "payload", "connection", "refs", "key", "parent"}


class _FileError(InvalidInput):
    """A line of an item file that cannot be enqueued; nothing of the file was."""

    def __init__(self, name: str, line: int, problem: str) -> None:
        super().__init__(f"{name} line {line}: {problem}; nothing was enqueued")


def _records(path: Path) -> tuple[str, list[tuple[int, Any]]]:
    """The file's name for messages, and its records with the line each starts on: a JSON
    array, or JSON Lines (one object per line)."""
    name = "stdin" if str(path) == "-" else str(path)
    if name != "stdin" and not path.is_file():
        raise InvalidInput(f"no such file: {path}")
    try:
        text = sys.stdin.read() if name == "stdin" else path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{name} is not UTF-8 text: {exc.reason}") from None
    if text.lstrip().startswith("["):
        return name, _json_array(text, name)
    return name, _json_lines(text, name)


def _parse(text: str, name: str, line: int) -> Any:
    try:
        return strict_json.loads(text)
    except strict_json.NotANumber as exc:
        raise _FileError(name, line, str(exc)) from None
    except json.JSONDecodeError as exc:
        raise _FileError(name, line + exc.lineno - 1, _json_problem(exc)) from None


def _json_problem(exc: json.JSONDecodeError) -> str:
    return f"not valid JSON: {exc.msg} (column {exc.colno})"


def _json_lines(text: str, name: str) -> list[tuple[int, Any]]:
    # Split on newlines only, as editors and `wc -l` count lines (str.splitlines also
    # breaks at form feeds and U+2028, which JSON strings may hold).
    return [
        (n, _parse(line, name, n)) for n, line in enumerate(text.split("\n"), 1) if line.strip()
    ]


def _json_array(text: str, name: str) -> list[tuple[int, Any]]:
    """Element by element, to know the line each starts on."""
    decoder = json.JSONDecoder()
    records: list[tuple[int, Any]] = []
    line, counted = 1, 0

    def line_at(pos: int) -> int:
        nonlocal line, counted
        line += text.count("\n", counted, pos)
        counted = pos
        return line

    def skip(pos: int) -> int:
        match = _WHITESPACE.match(text, pos)
        return match.end() if match else pos

    pos = skip(text.index("[") + 1)
    while not text.startswith("]", pos):
        start = pos
        try:
            record, pos = decoder.raw_decode(text, start)
            strict_json.check(text[start:pos])
        except strict_json.NotANumber as exc:
            raise _FileError(name, line_at(start), str(exc)) from None
        except json.JSONDecodeError as exc:
            raise _FileError(name, exc.lineno, _json_problem(exc)) from None
        records.append((line_at(start), record))
        pos = skip(pos)
        if text.startswith(",", pos):
            pos = skip(pos + 1)
        elif not text.startswith("]", pos):
            raise _FileError(name, line_at(pos), "not valid JSON: expected ',' or ']'")
    if text[pos + 1 :].strip():
        raise _FileError(name, line_at(skip(pos + 1)), "not valid JSON: text after the ']'")
    return records


def _request(record: Any) -> Request:
    if not isinstance(record, dict) or "instruction" not in record:
        raise InvalidInput("an item must be an object with an 'instruction'")
    unknown = set(record) - _FIELDS
    if unknown:
        raise InvalidInput(f"unknown fields: {', '.join(sorted(unknown))}")
    refs = record.get("refs", [])
    if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
        raise InvalidInput("refs must be a list of strings")
    payload = record.get("payload", {})
    if not isinstance(payload, dict):
        raise InvalidInput("payload must be a JSON object")
    for field in ("connection", "parent"):
        value = record.get(field)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise InvalidInput(f"{field} must be a number")
    if record.get("key") is not None and not isinstance(record["key"], str):
        raise InvalidInput("key must be a string")
    return Request(
        instruction=str(record["instruction"]),
        payload=payload,
        connection_id=record.get("connection"),
        refs=tuple(refs),
        idempotency_key=record.get("key"),
        parent_id=record.get("parent"),
    )


def _check(service: Stockyard, who: Principal, client_id: int, req: Request) -> None:
    """What the queue would refuse of one item, asked before anything is enqueued: the
    instruction, its connection (of this client) and the lane it runs in."""
    instruction = service.queue.instructions[req.instruction]
    if instruction.internal:
        raise InvalidInput(
            f"{req.instruction} is an internal instruction: only Stockyard itself queues it"
        )
    if req.connection_id is not None:
        conn = service.connection(who, client_id, req.connection_id)
        if instruction.blocking and conn.kind != instruction.lane.value:
            raise InvalidInput(
                f"{req.instruction} runs in a {instruction.lane.value} lane, but connection"
                f" {conn.id} is a {conn.kind}"
            )
    elif instruction.blocking:
        raise InvalidInput(
            f"{req.instruction} is blocking: it needs the {instruction.lane.value} connection"
            " whose lane it runs in"
        )


def _file_requests(
    path: Path, service: Stockyard, who: Principal, client_id: int
) -> tuple[str, list[tuple[int, Request]]]:
    """Every item of the file, read and checked whole before any is enqueued."""
    name, records = _records(path)
    requests: list[tuple[int, Request]] = []
    checked: set[tuple[str, int | None]] = set()
    for line, record in records:
        try:
            req = _request(record)
            if (req.instruction, req.connection_id) not in checked:
                _check(service, who, client_id, req)
                checked.add((req.instruction, req.connection_id))
        except StockyardError as exc:
            raise _FileError(name, line, str(exc)) from None
        requests.append((line, req))
    return name, requests


def _enqueue_file(
    path: Path, batch: int, service: Stockyard, who: Principal, client_id: int
) -> int:
    """Checked whole first; then enqueued `batch` items per transaction. Should a batch
    still fail (the database went away, a connection was disabled meanwhile), the error
    says which lines were committed, so that a rerun does not repeat them."""
    name, requests = _file_requests(path, service, who, client_id)
    total, last = 0, 0
    with Progress(console=out, transient=True) as progress:
        task = progress.add_task("enqueueing", total=len(requests))
        for start in range(0, len(requests), batch):
            chunk = requests[start : start + batch]
            try:
                total += len(service.enqueue(who, client_id, [r for _, r in chunk]))
            except StockyardError as exc:
                raise _stopped(name, chunk[0][0], last, total, exc) from None
            except DATABASE_ERRORS as exc:
                raise _stopped(name, chunk[0][0], last, total, exc) from None
            last = chunk[-1][0]
            progress.advance(task, len(chunk))
    return total


def _stopped(name: str, line: int, last: int, total: int, exc: Exception) -> InvalidInput:
    done = (
        f"lines 1 to {last} were enqueued ({total} items), none after: rerun with the lines"
        f" after {last} only"
        if last
        else "nothing was enqueued"
    )
    return InvalidInput(f"{name} line {line} and after: {exc}; {done}")


@cli.command()
def enqueue(
    instruction: str | None = typer.Argument(None, help="Instruction name (or use --file)"),
    connection: int | None = typer.Option(None, help="Connection id (the lane, if blocking)"),
    payload: str = typer.Option("{}", help="JSON object"),
    ref: list[str] = typer.Option([], help="Entity reference (SKU, order id); repeatable"),
    key: str | None = typer.Option(None, help="Idempotency key: enqueue once only"),
    file: Path | None = typer.Option(None, help="JSON array or JSON Lines of items ('-': stdin)"),
    batch: int = typer.Option(
        1000, min=1, max=10000, help="Items per transaction, once the whole file is checked"
    ),
    db: str | None = DbOption,
    client: str = ClientOption,
) -> None:
    """Enqueue one item, or many from a file: the whole file is checked first (errors name
    its line), so a bad line enqueues nothing."""
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
    out.print(f"queued {_enqueue_file(file, batch, service, who, client_id)} items")


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
ITEM_COLUMNS = ("id", "status", "instruction", "description", "refs", "created", "error")


def _item_rows(items: list[Item]) -> list[tuple[str, ...]]:
    return [
        (
            str(it.id),
            it.status,
            it.instruction,
            it.description,
            " ".join(it.refs),
            _when(it.created_at),
            (it.error or "")[:80],
        )
        for it in items
    ]


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
    _table(ITEM_COLUMNS, _item_rows(items))
    if len(items) == limit:
        # On stderr: a script reading the rows from stdout gets rows only.
        err.print(f"more: --before {items[-1].id}")


@items_cli.command("show")
def items_show(item_id: int, db: str | None = DbOption, client: str = ClientOption) -> None:
    """One item: payload, error, attempts, children and audit trail."""
    service, client_id = _service(db, client)
    d = service.item(_operator(), client_id, item_id)
    it = d.item
    out.print(Text.assemble((f"item {it.id}", "bold"), f"  {it.description}"))
    out.print(
        f"status {it.status} · {it.instruction} ({it.mode}) · connection "
        f"{it.connection_id or '-'} · refs {' '.join(it.refs) or '-'} · parent "
        f"{it.parent_id or '-'}"
    )
    out.print(f"created {_when(it.created_at)} · attempts {it.attempts}")
    if it.superseded_by is not None:
        out.print(f"superseded by item {it.superseded_by} (a newer update of the same entity)")
    if it.error:
        out.print(Text.assemble(("error", "red"), f" ({it.error_kind}): {it.error}"))
    out.print_json(json.dumps(it.payload))
    if d.attempts:
        _table(
            ("#", "outcome", "worker", "started", "ended", "error"),
            [
                (
                    str(a.number),
                    a.outcome,
                    a.worker_id or "",
                    _when(a.started_at),
                    _when(a.ended_at),
                    a.error or "",
                )
                for a in d.attempts
            ],
            title="attempts",
        )
    if d.children:
        _table(ITEM_COLUMNS, _item_rows(d.children), title="children")
    for entry in d.audit:
        out.print(f"{_when(entry.at)} {entry.actor} {entry.action} {entry.detail}")


# ---------------------------------------------------------------------------- actions


def _where(group: BulkGroup, names: dict[int, str]) -> str:
    if group.connection_id is None:
        return "without a connection"
    what = "lane" if group.lane_id is not None else "connection"
    return f"{what} {group.connection_id} ({names.get(group.connection_id, '?')})"


def _confirm(action: str, groups: list[BulkGroup], service: Stockyard, flt: ItemFilter) -> None:
    """Ask before a bulk action, saying how many items of each instruction and lane it
    touches; a script (no terminal) must say --yes instead."""
    who = _operator()
    names = {c.id: c.description for c in service.connections(who, flt.client_id)}
    total = sum(g.items for g in groups)
    if not sys.stdin.isatty():
        shown = ", ".join(f"{g.items} {g.instruction} in {_where(g, names)}" for g in groups[:10])
        more = f" and {len(groups) - 10} more groups" if len(groups) > 10 else ""
        raise InvalidInput(
            f"this would {action} {total} items ({shown}{more}): add --yes to confirm"
        )
    _table(
        ("items", "instruction", "lane"),
        [(str(g.items), g.instruction, _where(g, names)) for g in groups],
    )
    typer.confirm(f"{action} these {total} items?", abort=True)


def _act(
    action: str, ids: list[int], flt: ItemFilter, has_filter: bool, yes: bool, service: Stockyard
) -> None:
    who = _operator()
    if ids and has_filter:
        raise InvalidInput("give item ids or filters, not both")
    if ids:
        done = service.act(who, flt.client_id, action, ids)
    elif has_filter:
        # Which statuses a filter acts on (failed unless --status says otherwise) is the
        # service's rule, shared with the API and the console.
        groups = service.bulk_counts(who, flt, action)
        if not groups:
            hint = "" if flt.statuses else " (failed items only: --status names others)"
            out.print(f"no items to {action}{hint}")
            return
        if not yes:
            _confirm(action, groups, service, flt)
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


_action_command("retry", "Retry failed items: by id, or every failed item matching the filters.")
_action_command(
    "skip",
    "Skip items for good: by id (failed or queued), or by filters (e.g. --sku ABC-1), which"
    " skip failed items only unless --status names others (--status queued cancels waiting"
    " work).",
)


# ---------------------------------------------------------------------------- lanes


@lanes_cli.callback()
def lanes(ctx: typer.Context, db: str | None = DbOption, client: str = ClientOption) -> None:
    """Show every lane: blocked first, with the item that blocks it."""
    if ctx.invoked_subcommand is not None:
        return
    service, client_id = _service(db, client)
    styles = {"blocked": "red", "paused": "yellow"}
    _table(
        ("lane", "kind", "description", "state", "head", "waiting", "since", "error"),
        [
            (
                str(lane.lane_id),
                lane.kind,
                lane.description,
                Text(lane.state, style=styles.get(lane.state, "")),
                str(lane.head_id or ""),
                str(lane.waiting),
                _when(lane.oldest_created_at),
                (lane.head_error or "")[:60],
            )
            for lane in service.lanes(_operator(), client_id)
        ],
    )


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
    from stockyard.serve import ServeOptions
    from stockyard.serve import serve as run
    from stockyard.web.settings import ApiSettings

    url = _reachable(db)
    if demo:
        from stockyard.demo import seed

        email, password = seed(url, out)
        out.print(Text.assemble("demo login: ", (email, "bold"), " / ", (password, "bold")))
    _log_info()
    logging.getLogger("alembic").setLevel(logging.WARNING)  # migration chatter at start
    out.print(f"API on http://{host}:{port}/docs · metrics on /metrics")
    api = ApiSettings(max_body=max_body, rate_per_second=rate_limit)
    run(ServeOptions(url, host, port, workers, api=api))


def _log_info() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    # httpx logs every request at INFO: connectors make thousands; errors reach the items.
    logging.getLogger("httpx").setLevel(logging.WARNING)


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
    service = wiring.build_service(_queue(db))
    who = _operator()
    # Everything that can be wrong is asked before the user exists: no half-made account.
    client_id = service.queue.client_id(client) if client is not None else None
    if client_id is not None:
        check_role(role)
    user = service.create_user(who, email, _new_password(email), platform_admin)
    if client_id is not None:
        service.set_member(who, client_id, email, role)
    out.print(
        f"user {user.id} added: {user.email}"
        + (" (platform admin)" if platform_admin else "")
        + (f", {role} of {client}" if client_id is not None else "")
    )


@users_cli.command("passwd")
def users_passwd(email: str, db: str | None = DbOption) -> None:
    """Set a user's password (read from STOCKYARD_PASSWORD, or asked); their sessions end."""
    service = wiring.build_service(_queue(db))
    if service.accounts.user_by_email(email) is None:
        raise NotFound(f"no user {email.strip().lower()}")
    service.set_password(_operator(), email, _new_password(email))
    out.print(f"password of {email.strip().lower()} set; their sessions have ended")


@clients_cli.command("add")
def clients_add(name: str, db: str | None = DbOption) -> None:
    """Add a client (a merchant); give it people with `users add --client NAME`."""
    service = wiring.build_service(_queue(db))
    added = service.create_client(_operator(), name)
    out.print(f"client {added.id} added: {added.name}")


@clients_cli.command("list")
def clients_list(db: str | None = DbOption) -> None:
    """List the clients."""
    service = wiring.build_service(_queue(db))
    _table(("id", "name"), [(str(c.id), c.name) for c in service.clients(_operator())])


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
    _table(
        ("id", "name", "role", "prefix", "created", "by", "revoked"),
        [
            (
                str(k.id),
                k.name,
                k.role,
                k.prefix + "…",
                _when(k.created_at),
                k.created_by,
                _when(k.revoked_at),
            )
            for k in service.keys(_operator(), client_id)
        ],
    )


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
    _table(
        ("id", "kind", "target", "events", "connections"),
        [
            (
                str(sub.id),
                sub.kind,
                sub.target,
                " ".join(sub.events) or "all",
                " ".join(map(str, sub.connections)) or "all",
            )
            for sub in service.list_subscriptions(_operator(), client_id)
        ],
    )


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

    run_demo(_reachable(db), items, out)


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
