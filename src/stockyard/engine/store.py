"""The engine's statements: the named queries of `queries.sql` (and its per-backend
overrides for claims and id allocation), run through one store."""

from __future__ import annotations

from stockyard.db import Store, load_queries


class Sql(Store):
    """Every engine module runs its statements through one of these. Rows are plain
    tuples: the engine reads them through its own column maps (`rows`), and a by-name row
    per fetched row costs the claim and settle paths measurably."""

    queries = load_queries(__package__)
    named_rows = False
