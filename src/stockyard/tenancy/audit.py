"""The audit trail: who changed what, when. The engine writes the entries of its own
operator actions (retry, skip, pause, resume) in their transactions; the layers above
record theirs here, and read the whole trail here."""

from __future__ import annotations

import json
import time
from typing import Any

from stockyard.db import Store, load_queries
from stockyard.engine import AuditEntry


class Audit(Store):
    queries = load_queries(__package__)

    def record(self, client_id: int, actor: str, action: str, detail: dict[str, Any]) -> None:
        with self.db.write() as cur:
            self.execute(
                cur,
                "insert_audit",
                at=time.time(),
                client_id=client_id,
                actor=actor,
                action=action,
                detail=json.dumps(detail),
            )

    def log(self, client_id: int, before: int | None, limit: int) -> list[AuditEntry]:
        """The client's whole audit trail, newest first; `before`: the last id seen."""
        before = 2**62 if before is None else before
        rows = self.all(self.conn, "audit_log", client_id=client_id, before=before, limit=limit)
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
