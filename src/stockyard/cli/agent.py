"""`stockyard agent`: the program that runs next to an ERP behind a firewall
(docs/agent.md). It talks to Stockyard over HTTPS only, with its connection's secret; it
never opens Stockyard's database, so it needs no --db."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from stockyard.cli import output

if TYPE_CHECKING:
    from stockyard.agent.run import Agent

agent_cli = typer.Typer(
    no_args_is_help=True,
    help="The agent next to an ERP: reads it, pushes changes, writes orders into it.",
)

ConfigOption = typer.Option(
    Path("agent.toml"),
    "--config",
    "-c",
    envvar="STOCKYARD_AGENT_CONFIG",
    help="The agent's config file (TOML).",
)


def _agent(config: Path, log: bool = True, strict: bool = True) -> Agent:
    from stockyard.agent.config import load_config
    from stockyard.agent.run import Agent, setup_logging

    loaded = load_config(config)
    if log:
        setup_logging(loaded.agent.log_file)
    return Agent(loaded, strict)


@agent_cli.command()
def run(config: Path = ConfigOption) -> None:
    """Run until stopped (SIGTERM / Ctrl-C): poll the ERP, push changes, write orders."""
    agent = _agent(config)
    agent.install_signals()
    try:
        agent.run()
    finally:
        agent.close()


@agent_cli.command()
def once(config: Path = ConfigOption) -> None:
    """One cycle: read the ERP, push what changed, run the orders waiting now."""
    agent = _agent(config)
    try:
        report = agent.cycle()
    finally:
        agent.close()
    delivery = report.delivery
    reading = report.reading
    summary = {
        "read": reading.read if reading else {},
        "queued_batches": report.queued,
        "delivered_records": delivery.records if delivery else 0,
        "dead_letters": delivery.dead if delivery else 0,
        "orders_settled": report.orders,
    }
    if delivery and (delivery.retry or delivery.blocked):
        summary["not_sent"] = delivery.retry or delivery.blocked
    output.out.print(json.dumps(summary, indent=2), markup=False, highlight=False)


@agent_cli.command()
def check(
    config: Path = ConfigOption,
    samples: int = typer.Option(3, "--samples", min=0, max=50, help="Records shown per kind."),
) -> None:
    """Validate the profile against the ERP and print what the next poll would push,
    without pushing or storing anything (Stockyard is only asked `hello`)."""
    agent = _agent(config, log=False, strict=False)  # what stops a start is a problem here
    try:
        found = agent.check(samples)
    finally:
        agent.close()
    output.out.print(json.dumps(found, indent=2, default=str), markup=False, highlight=False)
    if found["problems"]:
        raise typer.Exit(1)


@agent_cli.command()
def reconcile(config: Path = ConfigOption) -> None:
    """Forget what was pushed: the next poll reads every row and pushes every record once."""
    from stockyard.agent.config import load_config
    from stockyard.agent.outbox import State

    loaded = load_config(config)
    state = State(loaded.agent.state)
    try:
        state.forget()
    finally:
        state.close()
    output.out.print("the next poll pushes every record once")


@agent_cli.command("drop-fulfillments")
def drop_fulfillments(config: Path = ConfigOption) -> None:
    """Drop the fulfilment pushes and outcomes a removed [fulfillment] connection left in
    the state database, for good (the agent refuses to start while they wait)."""
    from stockyard.agent import AgentError
    from stockyard.agent.config import load_config
    from stockyard.agent.outbox import FULFILLMENT, State

    loaded = load_config(config)
    if loaded.fulfillment is not None:
        raise AgentError(
            f"{loaded.source}: [fulfillment] is configured: its pushes are sent, nothing is"
            " dropped (remove [fulfillment] first if that connection is gone for good)"
        )
    if not loaded.agent.state.is_file():
        # A mistyped path would make an empty state file and report nothing dropped.
        raise AgentError(
            f"{loaded.source}: [agent] state: {loaded.agent.state} does not exist: nothing"
            " to drop (is it the state file the agent runs with?)"
        )
    state = State(loaded.agent.state)
    try:
        batches, records, outcomes = state.drop_role(FULFILLMENT)
    finally:
        state.close()
    output.out.print(
        f"dropped {batches} fulfilment push(es) ({records} record(s)) and {outcomes}"
        " fulfilment outcome(s)"
    )
