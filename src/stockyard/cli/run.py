"""Setting up and running: init, worker, serve, demo, prune."""

from __future__ import annotations

import logging
from pathlib import Path

import typer

from stockyard.cli import output
from stockyard.cli.common import DbOption, application, duration, operator
from stockyard.errors import InvalidInput


def _reachable(db: str | None) -> str:
    """The database URL, once its server answers or its SQLite folder exists: `init` and
    `serve` would otherwise fail deep inside a migration."""
    from stockyard.application import database_url, open_database
    from stockyard.db.sqlite import SqliteDatabase

    url = database_url(db)
    database = open_database(url)
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


def _log_info() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    # httpx logs every request at INFO: connectors make thousands; errors reach the items.
    logging.getLogger("httpx").setLevel(logging.WARNING)


def init(db: str | None = DbOption) -> None:
    """Create or upgrade the database schema (safe to run again)."""
    from stockyard.application import Application

    app = Application.init(_reachable(db))
    output.out.print(f"database ready: {app.describe()}")


def worker(
    concurrency: int = typer.Option(200, min=1, help="Items run at once"),
    threads: int = typer.Option(16, min=1, help="Threads for plain (non-async) handlers"),
    poll: float = typer.Option(0.05, help="Seconds between polls for other processes' work"),
    lease: float = typer.Option(6.0, help="Seconds without a heartbeat before a worker is dead"),
    heartbeat: float = typer.Option(1.5, help="Seconds between heartbeats"),
    batch: int = typer.Option(
        256, min=1, help="Items claimed a transaction at most (lower: new work waits less)"
    ),
    metrics_port: int | None = typer.Option(
        None, min=1, max=65535, help="Serve Prometheus metrics on 127.0.0.1:PORT/metrics"
    ),
    db: str | None = DbOption,
) -> None:
    """Run items until SIGTERM or Ctrl-C, then finish what is running and exit."""
    import asyncio

    from stockyard.engine.worker import WorkerSettings

    settings = WorkerSettings(
        concurrency=concurrency,
        threads=threads,
        poll_interval=poll,
        lease_timeout=lease,
        heartbeat_interval=heartbeat,
        batch=batch,
    )
    app = application(db)
    _log_info()
    if metrics_port is not None:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, "127.0.0.1", registry=app.metrics.registry)
    running = app.worker(settings)
    output.out.print(f"worker {running.id} started on {app.describe()}")
    stats = asyncio.run(running.run(install_signals=True))
    output.out.print(
        f"worker stopped: {stats.done} done, {stats.retried} retried, {stats.failed} failed"
    )


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
    from rich.text import Text

    from stockyard.serve import ServeOptions
    from stockyard.serve import serve as run
    from stockyard.web.settings import ApiSettings

    out = output.out
    url = _reachable(db)
    login = None
    if demo:
        from stockyard.demo import seed

        login = seed(url, out)
    _log_info()
    logging.getLogger("alembic").setLevel(logging.WARNING)  # migration chatter at start
    base = f"http://{host}:{port}"
    out.print(f"console on {base}/console · API on {base}/docs · metrics on /metrics")
    if login is not None:
        email, password = login
        out.print(Text.assemble("demo login: ", (email, "bold"), " / ", (password, "bold")))
    api = ApiSettings(max_body=max_body, rate_per_second=rate_limit)
    run(ServeOptions(url, host, port, workers, api=api))


def demo(
    items: int = typer.Option(2000, min=1, max=1_000_000, help="How many demo items"),
    db: str | None = DbOption,
) -> None:
    """Set up demo connections and items, then run a worker and show the queue drain."""
    from stockyard.demo import run_demo

    run_demo(_reachable(db), items, output.out, db)


def prune(
    older_than: str = typer.Option("30d", help="Age of finished items to delete, e.g. 7d"),
    db: str | None = DbOption,
) -> None:
    """Delete finished items older than the given age; failed and waiting items stay.
    Notification bookkeeping of the same age goes too."""
    age = duration(older_than)
    output.out.print(f"pruned {application(db).service.prune(operator(), age)} items")
