"""Clients: the tenants. Every item, connection and account belongs to one."""

from __future__ import annotations

import time

from stockyard.db import Store, load_queries
from stockyard.errors import InvalidInput, NotFound


class Clients(Store):
    queries = load_queries(__package__)

    def ensure(self, name: str) -> int:
        """The id of the client of that name, created if there is none."""
        name = name.strip()
        if not name:
            raise InvalidInput("a client needs a name")
        with self.db.write() as cur:
            row = self.one(cur, "insert_client", name=name, now=time.time())
            if row is None:
                row = self.must(cur, "client_named", missing=NotFound(name), name=name)
            return int(row["id"])

    def id_of(self, name: str) -> int:
        row = self.must(
            self.conn, "client_named", missing=NotFound(f"no client named {name!r}"), name=name
        )
        return int(row["id"])

    def exists(self, client_id: int) -> bool:
        return self.one(self.conn, "client", id=client_id) is not None

    def every(self) -> list[tuple[int, str]]:
        """(id, name) of every client, by id."""
        return [(int(r["id"]), str(r["name"])) for r in self.all(self.conn, "clients")]
