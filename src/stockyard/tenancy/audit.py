"""The audit trail: who changed what, when. The engine writes the entries of its own
operator actions (retry, skip, pause, resume) in their transactions; the layers above
record theirs here, and read the whole trail here."""

from __future__ import annotations

import json
import time
from typing import Any

from stockyard.db import Database
from stockyard.engine import AuditEntry


class Audit:
    def __init__(self, db: Database) -> None:
        self.db = db

    def record(self, client_id: int, actor: str, action: str, detail: dict[str, Any]) -> None:
        with self.db.write() as cur:
            cur.execute(
                "INSERT INTO audit (at, client_id, actor, action, detail) VALUES (?, ?, ?, ?, ?)",
                (time.time(), client_id, actor, action, json.dumps(detail)),
            )

    def log(self, client_id: int, before: int | None, limit: int) -> list[AuditEntry]:
        """The client's whole audit trail, newest first; `before`: the last id seen."""
        rows = (
            self.db.connection()
            .execute(
                "SELECT id, at, actor, action, item_id, lane_id, detail FROM audit"
                " WHERE client_id = ? AND id < ? ORDER BY id DESC LIMIT ?",
                (client_id, 2**62 if before is None else before, limit),
            )
            .fetchall()
        )
        return [
            AuditEntry(
                r["at"],
                r["actor"],
                r["action"],
                r["item_id"],
                r["lane_id"],
                json.loads(r["detail"] or "{}"),
                r["id"],
            )
            for r in rows
        ]
