"""Profiles: how one ERP's database maps to Stockyard's products, prices, stock, customers
and how an order is written into it (docs/agent-profiles.md). A profile is a TOML file:
a shipped one found by name in this package (`profiles/<name>.toml`), or a path.

Unknown keys are refused with the key named, so a misspelt `quer` never silently reads
nothing. The columns a query returns are checked against what each section knows when
the query runs (records.py).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from stockyard.agent import AgentError
from stockyard.agent.config import Setting, read_toml, validation_problems

SQL = Annotated[str, Field(min_length=1)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Reading(_Section):
    """A query (or, in a CSV profile, a file) whose rows are records of one kind."""

    query: SQL
    # The column holding a monotonic change marker (a timestamp, a rowversion): the query
    # gets the greatest value seen as :cursor (NULL the first time) and returns the rows
    # changed since (`>=`); only when some are new is the section read whole (:cursor
    # NULL) and compared by hash (changes.py). Without one, every poll reads it whole.
    cursor: str | None = None
    # Rows per page, when the query uses :limit and :offset.
    page_size: Annotated[int, Field(ge=1, le=100_000)] = 500


class Extra(_Section):
    """Rows attached to the variants read by [products] (tier prices, stock)."""

    query: SQL
    page_size: Annotated[int, Field(ge=1, le=100_000)] = 5000


class Orders(_Section):
    """The write step of add_order: SQL statements in one transaction, or a command."""

    # Returns the ERP's code of the order if it is already written (first column, first
    # row): checked first, so a re-run writes nothing twice.
    find: SQL | None = None
    # For an order on account (:account_code set): the ERP's id of that account (first
    # column, first row), given to the statements as :account_id. No row fails the order
    # permanently, naming the account: it is never booked to a guest or another account.
    account: SQL | None = None
    write: list[SQL] = []  # header statements, in order, in one transaction
    # An optional query run after `write` whose first column is the new header's id,
    # given to `lines` and `code` as :order_id.
    id: SQL | None = None
    lines: list[SQL] = []  # statements run once per order line (:sku :quantity :price ...)
    # A query giving the new order's ERP code; `find` again when not given.
    code: SQL | None = None
    # Or: a command fed the order as JSON on stdin; its last line of stdout is the code;
    # exit 75 (EX_TEMPFAIL) is a transient failure, any other non-zero a permanent one.
    command: Annotated[list[str], Field(min_length=1)] | None = None
    timeout_seconds: Annotated[float, Field(gt=0, le=3600)] = 120.0

    @model_validator(mode="after")
    def _one_way(self) -> Orders:
        if self.command is not None and (
            self.write or self.lines or self.id or self.code or self.account
        ):
            raise ValueError("give either command or write/lines/id/code/account, not both")
        if self.command is None and not self.write:
            raise ValueError("give write (SQL statements) or command")
        if self.command is None and self.find is None and self.code is None:
            raise ValueError("give find (or code): the agent must learn the order's ERP code")
        return self


class Fulfillments(_Section):
    """The ERP as the warehouse (an agent [fulfillment] connection): what each fulfilment
    is called there, and its state and tracking.

    `query` rows: remote_id (the fulfilment's id: by default the order's ERP code), state
    (open | complete | cancelled, or pending), carrier, number (the tracking number),
    url. Compared by hash per remote_id: a change is pushed. Only fulfilments this agent
    made are pushed (an ERP's own orders are no fulfilments of Stockyard's).
    `create` (optional): a query giving the fulfilment's id for an order (first column,
    first row; the order's parameters as [orders] gets them, and :source_code, the order's
    ERP code); without it the order's ERP code is the fulfilment's id."""

    query: SQL | None = None  # None only in a [files] profile: fulfillments.csv
    create: SQL | None = None
    page_size: Annotated[int, Field(ge=1, le=100_000)] = 500


class Files(_Section):
    """The CSV-folder variant: the ERP exports CSV files with the same column names as
    the queries return; [erp] folder in the agent's config says where."""

    products: str = "products.csv"
    prices: str | None = "prices.csv"
    stock: str | None = "stock.csv"
    customers: str | None = "customers.csv"
    fulfillments: str | None = "fulfillments.csv"  # read only with an agent [fulfillment]
    delimiter: Annotated[str, Field(min_length=1, max_length=1)] = ","
    encoding: str = "utf-8-sig"  # Excel's UTF-8 starts with a BOM


class Profile(_Section):
    name: Annotated[str, Field(min_length=1, max_length=100)]
    description: str = ""
    sources: list[str] = []  # where the table and column names are documented
    settings: dict[str, Setting] = {}
    products: Reading | None = None
    prices: Extra | None = None
    stock: Extra | None = None
    customers: Reading | None = None
    orders: Orders | None = None
    fulfillments: Fulfillments | None = None
    files: Files | None = None

    @model_validator(mode="after")
    def _reads_something(self) -> Profile:
        sql = [k for k in ("products", "prices", "stock", "customers") if getattr(self, k)]
        if self.files is not None and sql:
            raise ValueError(f"a [files] profile reads CSV files: remove [{'], ['.join(sql)}]")
        if self.files is None and self.products is None and self.customers is None:
            raise ValueError("give [products] and/or [customers] (or [files] for CSV exports)")
        if (self.prices or self.stock) and self.products is None:
            raise ValueError("[prices] and [stock] attach to [products]: give [products]")
        f = self.fulfillments
        if f is not None and self.files is None and f.query is None:
            raise ValueError("[fulfillments] query: missing")
        if f is not None and self.files is not None and (f.query or f.create):
            raise ValueError(
                "a [files] profile reads fulfillments.csv ([files] fulfillments): its"
                " [fulfillments] takes no query or create"
            )
        return self

    @property
    def uses_sql(self) -> bool:
        return self.files is None


def shipped() -> list[str]:
    """The names of the profiles shipped in the package."""
    folder = resources.files("stockyard.agent") / "profiles"
    return sorted(
        p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml")
    )


def _path(name: str, base: Path) -> Path:
    if name.endswith(".toml") or "/" in name or "\\" in name:
        path = Path(name)
        return path if path.is_absolute() else base / path
    found = resources.files("stockyard.agent") / "profiles" / f"{name}.toml"
    if not found.is_file():
        known = ", ".join(shipped()) or "none"
        raise AgentError(
            f"no shipped profile named {name!r} (shipped: {known}); give a path to a .toml"
            " file for your own"
        )
    return Path(str(found))


def parse_profile(data: dict[str, Any], source: str) -> Profile:
    try:
        return Profile.model_validate(data)
    except ValidationError as exc:
        raise AgentError(f"profile {source}: {validation_problems(exc)}") from None


def load_profile(name: str, base: Path = Path()) -> Profile:
    """A shipped profile by name, or the profile file at `name` (relative to `base`)."""
    path = _path(name, base)
    return parse_profile(read_toml(path, "profile"), str(path))


# The setting whose value, followed by the web order's number, marks an order Stockyard
# wrote (:marker, in a field only Stockyard writes that way: Evolution's ExtOrderNum,
# SYSPRO's CustomerPoNumber), so a phone or EDI order carrying the same number as its
# customer's own reference is never taken for the web order. Read queries get
# :order_marker_like, the LIKE pattern of the marked orders (ESCAPE '!').
MARKER_PREFIX = "order_marker_prefix"
MARKER_LIKE = "order_marker_like"


def like_prefix(prefix: str) -> str:
    """A LIKE pattern (ESCAPE '!') matching the values that start with `prefix`: its
    wildcards, and SQL Server's brackets, taken literally."""
    escaped = "".join("!" + c if c in "!%_[]" else c for c in prefix)
    return escaped + "%"


def settings(profile: Profile, given: dict[str, Setting], source: str) -> dict[str, Setting]:
    """The profile's settings with the config's values over them; a setting the profile
    does not know is refused (a typo would otherwise silently keep the default). With an
    order marker prefix, also its LIKE pattern (MARKER_LIKE)."""
    unknown = sorted(set(given) - set(profile.settings))
    if unknown:
        known = ", ".join(sorted(profile.settings)) or "none"
        raise AgentError(
            f"{source}: [profile.settings] {', '.join(unknown)}: not a setting of profile"
            f" {profile.name} (it has: {known})"
        )
    merged = {**profile.settings, **given}
    if MARKER_PREFIX in merged:
        merged[MARKER_LIKE] = like_prefix(str(merged[MARKER_PREFIX]))
    return merged
