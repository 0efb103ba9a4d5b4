"""What the CLI prints: two consoles (made per run, so that the streams and terminal of
this run apply), and tables that a script can read from a pipe."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

out: Console
err: Console


def start() -> None:
    """Soft wrap: a line is never broken by Rich, whatever width it thinks it has; no
    markup: names and descriptions print as they are (styles go through Text)."""
    from rich.console import Console

    global out, err
    out = Console(soft_wrap=True, highlight=False, markup=False)
    err = Console(stderr=True, soft_wrap=True, highlight=False, markup=False)


def table(
    headers: Sequence[str], rows: Iterable[Sequence[str | Text]], title: str | None = None
) -> None:
    """A table: drawn on a terminal; on a pipe tab-separated, one row per line, a header
    first, each cell on one line (what `cut` and `awk` read)."""
    if out.is_terminal:
        from rich.table import Table

        drawn = Table(*headers, title=title)
        for row in rows:
            drawn.add_row(*row)
        out.print(drawn, soft_wrap=False)
        return
    lines = [f"{title}:"] if title else []
    lines.append("\t".join(headers))
    lines.extend("\t".join(" ".join(str(cell).split()) for cell in row) for row in rows)
    out.file.write("\n".join(lines) + "\n")  # as is: Rich would expand the tabs


def when(ts: float | None) -> str:
    if ts is None:
        return ""
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


start()
