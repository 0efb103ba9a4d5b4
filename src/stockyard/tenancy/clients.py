"""Clients: the tenants. Every item, connection and account belongs to one."""

from __future__ import annotations

import time

from stockyard.db import Database
from stockyard.errors import InvalidInput, NotFound


class Clients:
    def __init__(self, db: Database) -> None:
        self.db = db

    def ensure(self, name: str) -> int:
        """The id of the client of that name, created if there is none."""
        name = name.strip()
        if not name:
            raise InvalidInput("a client needs a name")
        with self.db.write() as cur:
            row = cur.execute(
                "INSERT INTO clients (name, created_at) VALUES (?, ?)"
                " ON CONFLICT (name) DO NOTHING RETURNING id",
                (name, time.time()),
            ).fetchone()
            if row is None:
                row = cur.execute("SELECT id FROM clients WHERE name = ?", (name,)).fetchone()
            return int(row[0])

    def id_of(self, name: str) -> int:
        row = (
            self.db.connection()
            .execute("SELECT id FROM clients WHERE name = ?", (name,))
            .fetchone()
        )
        if row is None:
            raise NotFound(f"no client named {name!r}")
        return int(row[0])

    def exists(self, client_id: int) -> bool:
        row = (
            self.db.connection()
            .execute("SELECT 1 FROM clients WHERE id = ?", (client_id,))
            .fetchone()
        )
        return row is not None

    def all(self) -> list[tuple[int, str]]:
        rows = self.db.connection().execute("SELECT id, name FROM clients ORDER BY id").fetchall()
        return [(int(i), str(n)) for i, n in rows]
