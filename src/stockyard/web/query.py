"""What the API and the console read from a URL or a form alike: ids within bounds, times as
UTC, and the filter that picks queue items."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import Path
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from stockyard.engine import STATUSES, ItemFilter
from stockyard.service.items import MAX_ERROR

MAX_ID = 2**53  # ids stay exact in every JSON reader
# A path's id: a larger one is a 422, not an overflow deep in a database driver.
Id = Annotated[int, Path(ge=1, le=MAX_ID)]
ItemId = Annotated[int, Field(ge=1, le=MAX_ID)]
Name = Annotated[str, Field(min_length=1, max_length=200)]
# The engine's statuses spelt out for the OpenAPI document, checked against its list below.
Status = Literal["queued", "running", "done", "failed", "skipped", "superseded"]
Mode = Literal["blocking", "non-blocking"]
assert set(STATUSES) == set(Status.__args__)  # type: ignore[attr-defined]
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 12, 31, tzinfo=UTC)


def _utc(value: datetime) -> datetime:
    """Every time Stockyard shows is UTC, so a time given without an offset is read as UTC
    too (not in the server's zone, which the caller cannot know)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        value = value.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00+05:00 is before year 1 in UTC
        raise ValueError("is out of range: give a time between 1970 and 9999") from None
    if not EARLIEST <= value <= LATEST:
        raise ValueError("is out of range: give a time between 1970 and 9999")
    return value


Moment = Annotated[
    datetime,
    AfterValidator(_utc),
    Field(description="ISO 8601; a time without an offset is read as UTC"),
]


class ItemQuery(BaseModel):
    """The items a bulk action applies to; every field narrows the set."""

    model_config = ConfigDict(extra="forbid")

    status: list[Status] = []
    instruction: list[Name] = []
    mode: Mode | None = None
    connection_id: ItemId | None = None
    ref: Name | None = Field(
        default=None, description="a SKU, product code or order id, in any case"
    )
    ref_prefix: Name | None = Field(
        default=None,
        description="a SKU, product code or order id starting with this, any case (at least"
        " 2 characters; a shorter one matches a whole reference)",
    )
    error: Name | None = Field(default=None, description="text the error contains")
    error_is: str | None = Field(
        default=None,
        max_length=MAX_ERROR,
        description="the error is exactly this text (one group of the console's failures)",
    )
    created_from: Moment | None = None
    created_to: Moment | None = None


def item_filter(client_id: int, q: ItemQuery) -> ItemFilter:
    """The service's filter for a client's items matching `q`."""
    return ItemFilter(
        client_id=client_id,
        statuses=tuple(q.status),
        instructions=tuple(q.instruction),
        connection_id=q.connection_id,
        ref=q.ref,
        error_contains=q.error,
        created_from=None if q.created_from is None else q.created_from.timestamp(),
        created_to=None if q.created_to is None else q.created_to.timestamp(),
        blocking=None if q.mode is None else q.mode == "blocking",
        ref_prefix=q.ref_prefix,
        error_is=q.error_is,
    )
