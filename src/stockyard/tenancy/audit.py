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
        return [_entry(r) for r in rows]

    def page(
        self,
        client_id: int,
        before: int | None,
        limit: int,
        actor: str | None = None,
        action: str | None = None,
    ) -> tuple[list[AuditEntry], int | None]:
        """A page of the client's trail, newest first, of one actor and action if given,
        and the `before` of the next page (None at the end). One page reads at most a
        hundred pages' worth of entries: a rare actor or action may give a short page
        whose next one goes on further back."""
        before = 2**62 if before is None else before
        params = {"client_id": client_id, "before": before, "limit": limit}
        rows = self.all(self.conn, "audit_window", **params, actor=actor, action=action)
        entries = [_entry(r) for r in rows]
        if len(entries) == limit:
            return entries, entries[-1].id
        if actor is None and action is None:
            return entries, None  # the window held every entry there is
        end = self.value(self.conn, "audit_window_end", **params)
        if end is None:
            return entries, None
        older = self.all(self.conn, "audit_log", client_id=client_id, before=end, limit=1)
        return entries, int(end) if older else None


def _entry(r: Any) -> AuditEntry:
    return AuditEntry(
        r["at"],
        r["actor"],
        r["action"],
        r["item_id"],
        r["lane_id"],
        json.loads(r["detail"] or "{}"),
        r["id"],
    )
