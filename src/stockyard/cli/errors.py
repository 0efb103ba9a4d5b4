"""Whatever goes wrong reaches the caller as one line on stderr and exit 2, never a
traceback nor a message wrapped at 80 columns; a declined confirmation exits 1."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import typer
from typer.core import TyperGroup

from stockyard.cli import output
from stockyard.errors import StockyardError


class Shell(TyperGroup):
    """The root command: runs the command line without Click's standalone mode, so that
    every exception passes through `exit_code`."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        output.start()

        def run() -> Any:
            return super(Shell, self).main(
                args, prog_name, complete_var, False, windows_expand_args, **extra
            )

        code = exit_code(run)
        if standalone_mode:
            sys.exit(code)
        return code


def exit_code(run: Callable[[], Any]) -> int:
    try:
        result = run()
    except StockyardError as exc:
        return fail(str(exc))
    except typer.TyperException as exc:  # usage: an unknown option, a missing argument
        if type(exc).__name__ == "NoArgsIsHelpError":  # Typer has printed the help
            return 0
        ctx = getattr(exc, "ctx", None)
        where = f" (see {ctx.command_path} --help)" if ctx is not None else ""
        return fail(exc.format_message() + where)
    except typer.Abort:
        output.err.print("aborted")
        return 1
    except Exception as exc:
        return _unexpected(exc)
    # Without standalone mode Click hands back an explicit exit's code (typer.Exit, ^C).
    return result if isinstance(result, int) else 0


def _unexpected(exc: Exception) -> int:
    """The database's and the system's errors, and bugs. The database drivers are imported
    here only: a command that failed before opening a database never loaded them."""
    if is_database_error(exc):
        return fail(str(exc), "database error")
    if "sqlalchemy" in sys.modules:  # what Alembic's migrations raise
        from sqlalchemy.exc import DBAPIError, SQLAlchemyError

        if isinstance(exc, SQLAlchemyError):
            reason = exc.orig if isinstance(exc, DBAPIError) else exc
            return fail(str(reason).split("\n(Background")[0], "database error")
    if isinstance(exc, OSError):  # a file that cannot be read, a port in use
        return fail(str(exc))
    if os.environ.get("STOCKYARD_DEBUG"):
        raise exc
    return fail(f"{type(exc).__name__}: {exc} (STOCKYARD_DEBUG=1 shows where)", "bug")


def is_database_error(exc: Exception) -> bool:
    import sqlite3

    if isinstance(exc, sqlite3.Error):
        return True
    psycopg = sys.modules.get("psycopg")  # not loaded: no PostgreSQL error can be raised
    return psycopg is not None and isinstance(exc, psycopg.Error)


def fail(message: str, kind: str = "error") -> int:
    from rich.text import Text

    output.err.print(Text.assemble((f"{kind}: ", "bold red"), " ".join(message.split())))
    return 2
