"""Enqueueing items, looking at them, and retrying or skipping them."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from stockyard.cli import output
from stockyard.cli.common import ClientOption, DbOption, client_service, date, json_object
from stockyard.cli.common import operator as _operator
from stockyard.errors import InvalidInput

if TYPE_CHECKING:
    from stockyard.engine import Item, ItemFilter
    from stockyard.service import BulkGroup, Stockyard

items_cli = typer.Typer(no_args_is_help=True, help="Look at queue items.")


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
    from stockyard.engine import Request

    service, client_id = client_service(db, client)
    who = _operator()
    if file is None:
        if instruction is None:
            raise InvalidInput("give an instruction, or --file with items")
        ids = service.enqueue(
            who,
            client_id,
            [Request(instruction, json_object(payload, "payload"), connection, tuple(ref), key)],
        )
        output.out.print(f"queued item {ids[0]}")
        return
    if instruction is not None:
        raise InvalidInput("give either an instruction or --file, not both")
    from stockyard.cli.files import enqueue_file

    output.out.print(f"queued {enqueue_file(file, batch, service, who, client_id)} items")


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
    from stockyard.engine import ItemFilter

    return ItemFilter(
        client_id=client_id,
        statuses=tuple(status),
        instructions=tuple(instruction),
        connection_id=connection,
        ref=ref,
        error_contains=error,
        created_from=date(since),
        created_to=date(until),
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
            output.when(it.created_at),
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
    service, client_id = client_service(db, client)
    flt = _filter(client_id, status, instruction, connection, ref, error, since, until)
    items = service.items(_operator(), flt, limit, before)
    output.table(ITEM_COLUMNS, _item_rows(items))
    if len(items) == limit:
        # On stderr: a script reading the rows from stdout gets rows only.
        output.err.print(f"more: --before {items[-1].id}")


@items_cli.command("show")
def items_show(item_id: int, db: str | None = DbOption, client: str = ClientOption) -> None:
    """One item: payload, error, attempts, children and audit trail."""
    from rich.text import Text

    out, when = output.out, output.when
    service, client_id = client_service(db, client)
    d = service.item(_operator(), client_id, item_id)
    it = d.item
    out.print(Text.assemble((f"item {it.id}", "bold"), f"  {it.description}"))
    out.print(
        f"status {it.status} · {it.instruction} ({it.mode}) · connection "
        f"{it.connection_id or '-'} · refs {' '.join(it.refs) or '-'} · parent "
        f"{it.parent_id or '-'}"
    )
    out.print(f"created {when(it.created_at)} · attempts {it.attempts}")
    if it.superseded_by is not None:
        out.print(f"superseded by item {it.superseded_by} (a newer update of the same entity)")
    if it.error:
        out.print(Text.assemble(("error", "red"), f" ({it.error_kind}): {it.error}"))
    out.print_json(json.dumps(it.payload))
    if d.attempts:
        output.table(
            ("#", "outcome", "worker", "started", "ended", "error"),
            [
                (
                    str(a.number),
                    a.outcome,
                    a.worker_id or "",
                    when(a.started_at),
                    when(a.ended_at),
                    a.error or "",
                )
                for a in d.attempts
            ],
            title="attempts",
        )
    if d.children:
        output.table(ITEM_COLUMNS, _item_rows(d.children), title="children")
    for entry in d.audit:
        out.print(f"{when(entry.at)} {entry.actor} {entry.action} {entry.detail}")


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
    output.table(
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
            output.out.print(f"no items to {action}{hint}")
            return
        if not yes:
            _confirm(action, groups, service, flt)
        done = service.act_where(who, flt, action)
    else:
        raise InvalidInput(f"say which items to {action}: ids, or filters such as --sku")
    verb = "retried" if action == "retry" else "skipped"
    output.out.print(f"{verb} {len(done)} item{'s' if len(done) != 1 else ''}")


def action_command(action: str) -> Callable[..., None]:
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
        service, client_id = client_service(db, client)
        flt = _filter(client_id, status, instruction, connection, ref, error, since, until)
        has_filter = any([status, instruction, connection, ref, error, since, until])
        _act(action, ids or [], flt, has_filter, yes, service)

    return command


RETRY_HELP = "Retry failed items: by id, or every failed item matching the filters."
SKIP_HELP = (
    "Skip items for good: by id (failed or queued), or by filters (e.g. --sku ABC-1), which"
    " skip failed items only unless --status names others (--status queued cancels waiting"
    " work)."
)
