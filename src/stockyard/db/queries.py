"""Named queries: SQL kept in `.sql` files, compiled once per backend when a store's module
is imported, so executing one costs a dict lookup and nothing is parsed per call.

A file holds blocks like

    -- name: product_id
    -- The id of a product of a client, by its code.
    SELECT id FROM products WHERE client_id = :client_id AND code = :code

The comment lines right after `-- name:` are the query's documentation. Parameters are
`:name`; `::` (a PostgreSQL cast) and anything inside quotes are left alone, and a
literal `?` or `%` means itself on both backends.

`queries.sql` is common to both backends. `queries.sqlite.sql` and
`queries.postgresql.sql` beside it replace the few statements that truly differ; every
name in them must also exist in the common file, or in both override files.

A handful of fragments differ in every statement that uses them; rather than override
each statement they are written as macros, expanded at load:

    {json_rows(:batch)}        rows `d.value` of a JSON array parameter (FROM ...)
    {in_list(column, :ids)}    column is one of the list parameter's values
    {contains(column, :text)}  column contains the parameter, ignoring case
    {for_update}               PostgreSQL's row lock (nothing on SQLite: one writer)
    {skip_locked}              PostgreSQL's FOR UPDATE SKIP LOCKED (nothing on SQLite)
    {no_index}                 SQLite's `+` that keeps a column from choosing an index
    {next_id(table)}           a new id of the table, drawn by the statement itself: the
                               sequence on PostgreSQL; NULL on SQLite, where an INTEGER
                               PRIMARY KEY given NULL takes max(id) + 1

A parameter used by `in_list` is a list parameter: pass a Python sequence, and the store
turns it into what the backend binds (a JSON text on SQLite, an array on PostgreSQL).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

BACKENDS = ("sqlite", "postgresql")

_NAME = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)
# What a scan of SQL text must step over whole: quoted text and comments hold no
# parameters; `::` is a cast. Then the two things it rewrites: parameters and `%`.
_TOKENS = re.compile(
    r"""(?P<skip>'(?:[^']|'')*'|"(?:[^"]|"")*"|--[^\n]*|::)"""
    r"|:(?P<param>[A-Za-z_]\w*)"
    r"|(?P<percent>%)"
)
_MACRO = re.compile(r"\{(?P<name>[a-z_]+)(?:\((?P<args>[^()]*)\))?\}")
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


# ------------------------------------------------------------------------------- dialects


def _sqlite_macros() -> dict[str, Callable[..., str]]:
    return {
        "json_rows": lambda p: f"json_each({p}) AS d",
        "in_list": lambda col, p: f"{col} IN (SELECT value FROM json_each({p}))",
        "contains": lambda col, p: f"instr(lower({col}), lower({p})) > 0",
        "for_update": lambda: "",
        "skip_locked": lambda: "",
        "no_index": lambda: "+",
        "next_id": lambda table: "NULL",
    }


def _postgres_macros() -> dict[str, Callable[..., str]]:
    return {
        "json_rows": lambda p: f"json_array_elements(CAST({p} AS json)) AS d(value)",
        "in_list": lambda col, p: f"{col} = ANY({p})",
        "contains": lambda col, p: f"strpos(lower({col}), lower({p})) > 0",
        "for_update": lambda: "FOR UPDATE",
        "skip_locked": lambda: "FOR UPDATE SKIP LOCKED",
        "no_index": lambda: "",
        "next_id": lambda table: f"nextval('{table}_id_seq')",
    }


_MACROS = {"sqlite": _sqlite_macros(), "postgresql": _postgres_macros()}


def _sqlite_list(values: Iterable[Any]) -> Any:
    return _dumps(list(values))


def _postgres_list(values: Iterable[Any]) -> Any:
    return list(values)


LIST_PARAM: dict[str, Callable[[Iterable[Any]], Any]] = {
    "sqlite": _sqlite_list,
    "postgresql": _postgres_list,
}


# ------------------------------------------------------------------------------ queries


@dataclass(frozen=True, slots=True)
class Query:
    """One statement, compiled for one backend."""

    name: str
    doc: str
    sql: str  # in the backend driver's own paramstyle
    params: frozenset[str]
    lists: tuple[str, ...]  # parameters bound as lists (see `in_list`)
    source: str  # the file it came from, for messages and the conformance suite


class QueryError(Exception):
    """A `.sql` file that cannot be loaded: a bug, reported at import."""


def parse(text: str, source: str) -> dict[str, tuple[str, str]]:
    """name -> (doc, SQL text) of every block of a file."""
    found: dict[str, tuple[str, str]] = {}
    marks = list(_NAME.finditer(text))
    header = text[: marks[0].start() if marks else len(text)].splitlines()
    if any(line.strip() and not line.startswith("--") for line in header):
        raise QueryError(f"{source}: a statement before the first `-- name:` line")
    for mark, after in zip(marks, [*marks[1:], None], strict=True):
        name = mark.group(1)
        if name in found:
            raise QueryError(f"{source}: query {name} defined twice")
        body = text[mark.end() : after.start() if after else len(text)].strip("\n")
        lines = body.splitlines()
        doc_lines: list[str] = []
        while lines and lines[0].startswith("--"):
            doc_lines.append(lines.pop(0)[2:].strip())
        sql = "\n".join(lines).strip().rstrip(";").strip()
        if not doc_lines or not sql:
            raise QueryError(f"{source}: query {name} needs a doc comment and a statement")
        found[name] = (" ".join(doc_lines), sql)
    return found


def _expand(sql: str, backend: str, where: str) -> tuple[str, tuple[str, ...]]:
    macros = _MACROS[backend]
    lists: list[str] = []

    def expand(match: re.Match[str]) -> str:
        name = match.group("name")
        if name not in macros:
            raise QueryError(f"{where}: unknown macro {{{name}}}")
        args = [a.strip() for a in (match.group("args") or "").split(",") if a.strip()]
        if name == "in_list":
            lists.append(args[-1].lstrip(":"))
        try:
            return macros[name](*args)
        except TypeError:
            raise QueryError(f"{where}: wrong arguments to {{{name}}}") from None

    # A list used twice in one statement is still one parameter: bound (encoded) once.
    return _MACRO.sub(expand, sql), tuple(dict.fromkeys(lists))


def compile_sql(sql: str, backend: str, where: str = "<sql>") -> tuple[str, frozenset[str]]:
    """The statement in the driver's paramstyle, and its parameter names. sqlite3 reads
    `:name` itself; psycopg reads `%(name)s` and wants a literal `%` doubled."""
    params: set[str] = set()

    def rewrite(match: re.Match[str]) -> str:
        if match.group("skip") is not None:  # psycopg reads `%` even inside quotes
            return match.group(0) if backend == "sqlite" else match.group(0).replace("%", "%%")
        if match.group("param") is not None:
            params.add(match.group("param"))
            return match.group(0) if backend == "sqlite" else f"%({match.group('param')})s"
        return "%" if backend == "sqlite" else "%%"

    if backend not in BACKENDS:
        raise QueryError(f"{where}: unknown backend {backend!r}")
    return _TOKENS.sub(rewrite, sql), frozenset(params)


class Queries:
    """The named queries of one store, compiled for every backend at load."""

    def __init__(self, compiled: Mapping[str, Mapping[str, Query]]) -> None:
        self._compiled = compiled

    def names(self) -> list[str]:
        return sorted(self._compiled[BACKENDS[0]])

    def for_backend(self, backend: str) -> Mapping[str, Query]:
        return self._compiled[backend]


@functools.lru_cache(maxsize=1024)
def compose(sql: str, backend: str) -> Query:
    """A statement put together at run time (an item filter's optional conditions), in the
    same language as a `.sql` file: `:name` parameters and macros. Compiled once per text
    and backend, so a repeated shape costs a cache lookup."""
    where = "<composed>"
    expanded, lists = _expand(sql, backend, where)
    compiled, params = compile_sql(expanded, backend, where)
    return Query(where, "", compiled, params, lists, where)


def load_queries(package: str, filename: str = "queries.sql") -> Queries:
    """The queries of `filename` in `package`, with its per-backend overrides."""
    files = resources.files(package)
    stem = filename.removesuffix(".sql")

    def read(name: str) -> dict[str, tuple[str, str]]:
        path = files / name
        if not path.is_file():
            return {}
        return parse(path.read_text(encoding="utf-8"), f"{package}/{name}")

    common = read(filename)
    overrides = {backend: read(f"{stem}.{backend}.sql") for backend in BACKENDS}
    names = set(common)
    for backend, extra in overrides.items():
        for name in extra.keys() - common.keys():
            if not all(name in o for o in overrides.values()):
                raise QueryError(
                    f"{package}/{stem}.{backend}.sql: {name} is in no common file nor in "
                    "every backend's overrides"
                )
            names.add(name)
    compiled: dict[str, dict[str, Query]] = {}
    for backend in BACKENDS:
        chosen = {**common, **overrides[backend]}
        queries: dict[str, Query] = {}
        for name in sorted(names):
            doc, text = chosen[name]
            own = name in overrides[backend]
            source = f"{package}/{stem}.{backend}.sql" if own else f"{package}/{filename}"
            where = f"{source}: {name}"
            expanded, lists = _expand(text, backend, where)
            sql, params = compile_sql(expanded, backend, where)
            missing = set(lists) - params
            if missing:
                raise QueryError(f"{where}: list parameter {missing} is not a parameter")
            queries[name] = Query(name, doc, sql, params, lists, source)
        compiled[backend] = queries
    return Queries(compiled)
