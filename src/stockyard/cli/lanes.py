"""Lanes: one FIFO per source or channel; `stockyard lanes` lists them, blocked first."""

from __future__ import annotations

import typer

from stockyard.cli import output
from stockyard.cli.common import ClientOption, DbOption, client_service, operator

lanes_cli = typer.Typer(help="Lanes: one FIFO per source or channel.", invoke_without_command=True)


@lanes_cli.callback()
def lanes(ctx: typer.Context, db: str | None = DbOption, client: str = ClientOption) -> None:
    """Show every lane: blocked first, with the item that blocks it."""
    from rich.text import Text

    if ctx.invoked_subcommand is not None:
        return
    service, client_id = client_service(db, client)
    styles = {"blocked": "red", "paused": "yellow"}
    output.table(
        ("lane", "kind", "description", "state", "head", "waiting", "since", "error"),
        [
            (
                str(lane.lane_id),
                lane.kind,
                lane.description,
                Text(lane.state, style=styles.get(lane.state, "")),
                str(lane.head_id or ""),
                str(lane.waiting),
                output.when(lane.oldest_created_at),
                (lane.head_error or "")[:60],
            )
            for lane in service.lanes(operator(), client_id)
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
    service, client_id = client_service(db, client)
    service.pause(operator(), client_id, lane, reason)
    output.out.print(f"lane {lane} paused")


@lanes_cli.command("resume")
def lanes_resume(lane: int, db: str | None = DbOption, client: str = ClientOption) -> None:
    """Resume a paused lane."""
    service, client_id = client_service(db, client)
    service.resume(operator(), client_id, lane)
    output.out.print(f"lane {lane} resumed")
