"""CSV export of the queue page's list: the same filter (pages/queue.py, queue_filters),
every matching item up to MAX_ROWS, streamed a page of items at a time (never the whole
list in memory)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from stockyard.engine import Item
from stockyard.errors import InvalidInput
from stockyard.web.console.pages.common import Page
from stockyard.web.console.pages.queue import queue_filters
from stockyard.web.query import Id, item_filter

router = APIRouter()

MAX_ROWS = 100_000
BATCH = 1000  # items read per query: the service's largest page
COLUMNS = (
    "id",
    "status",
    "instruction",
    "mode",
    "connection",
    "refs",
    "description",
    "error",
    "attempts",
    "created_at",
    "updated_at",
    "finished_at",
)
# A spreadsheet runs a cell starting with these as a formula (CSV injection): such cells
# get a leading apostrophe, which spreadsheets show as text and do not evaluate.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# Spreadsheets skip these before a formula's sign as well: every whitespace (newlines, the
# non-breaking space) and the invisible characters a copy from a web page brings along.
INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff"


def cell(value: Any) -> str:
    text = "" if value is None else str(value)
    start = 0
    while start < len(text) and (text[start].isspace() or text[start] in INVISIBLE):
        start += 1
    formula = text.startswith(FORMULA_START) or text[start:].startswith(FORMULA_START)
    return "'" + text if formula else text


def iso(ts: float | None) -> str:
    return "" if ts is None else datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def row(item: Item, names: dict[int, str]) -> list[str]:
    connection = "" if item.connection_id is None else names.get(item.connection_id, "")
    error = (item.error or "").splitlines()[0] if item.error else ""
    values: list[Any] = [
        item.id,
        item.status,
        item.instruction,
        item.mode,
        connection,
        " ".join(item.refs),
        item.description,
        error,
        item.attempts,
        iso(item.created_at),
        iso(item.updated_at),
        iso(item.finished_at),
    ]
    return [cell(v) for v in values]


@router.get("/clients/{client_id}/items.csv")
def items_csv(request: Request, client_id: Id) -> Response:
    page = Page(request, client_id)
    # The queue page's own filter (its search box, "any status", SKUs by their start):
    # the file holds the list the page shows, every page of it.
    filters = queue_filters(request)
    if filters.query is None:
        raise InvalidInput(filters.problem or "these filters do not read")
    flt = item_filter(client_id, filters.query)
    names = {c.id: c.description for c in page.service.connections(page.who, client_id)}
    # The first page is read before the response starts: a refusal is still a status code.
    first = page.service.items(page.who, flt, BATCH, None)

    def lines() -> Iterator[str]:
        out = io.StringIO()
        writer = csv.writer(out)

        def flush() -> str:
            text = out.getvalue()
            out.seek(0)
            out.truncate()
            return text

        writer.writerow(COLUMNS)
        written, last_id, batch = 0, 0, first
        while batch and written < MAX_ROWS:
            taken = batch[: MAX_ROWS - written]
            for item in taken:
                writer.writerow(row(item, names))
            written, last_id = written + len(taken), taken[-1].id
            yield flush()
            full = len(batch) == BATCH
            batch = page.service.items(page.who, flt, BATCH, last_id) if full else []
        if written >= MAX_ROWS and page.service.items(page.who, flt, 1, last_id):
            writer.writerow([f"# cut at {MAX_ROWS:,} rows: narrow the filters for the rest"])
        yield flush()

    filename = (
        f"{_slug(page.client.name if page.client else '')}-items-{datetime.now(UTC):%Y-%m-%d}.csv"
    )
    return StreamingResponse(
        lines(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _slug(name: str) -> str:
    """The client's name as a file name: letters, digits, dots and dashes only (a quote or
    newline in a header would break it)."""
    return re.sub(r"[^A-Za-z0-9.-]+", "-", name).strip("-.") or "client"
