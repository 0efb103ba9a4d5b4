"""Operator actions: retry and skip items, pause and resume lanes. Each is audited.

`Action` is the one list of which statuses an action applies to: the service, the API,
the CLI and the console ask it (`ACTIONS`, `action(name)`) rather than keep their own.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from stockyard.db import Cursor, Database
from stockyard.engine.lanes import Lanes
from stockyard.engine.models import ItemFilter
from stockyard.engine.reads import Reads
from stockyard.engine.store import Sql
from stockyard.engine.wakeup import Wakeup
from stockyard.errors import Conflict, InvalidInput, NotFound

_BULK_CHUNK = 500


@dataclass(frozen=True, slots=True)
class Action:
    """An operator's action on items, and the statuses of the items it applies to."""

    name: str
    statuses: tuple[str, ...]
    # The status its items end in.
    to: str

    def applies_to(self, status: str) -> bool:
        return status in self.statuses

    def only(self) -> str:
        """The statuses it applies to, for messages: "failed or queued"."""
        return " or ".join(self.statuses)


RETRY = Action("retry", ("failed",), "queued")
SKIP = Action("skip", ("failed", "queued"), "skipped")
ACTIONS: dict[str, Action] = {a.name: a for a in (RETRY, SKIP)}


class Actions:
    def __init__(self, db: Database, lanes: Lanes, reads: Reads, wakeup: Wakeup) -> None:
        self.db = db
        self.lanes = lanes
        self.reads = reads
        self.wakeup = wakeup
        self.sql = Sql(db)

    def act(self, what: Action, client_id: int, item_ids: Sequence[int], actor: str) -> list[int]:
        """Apply `what` to these items of the client: every one must exist and allow it
        (NotFound, Conflict), or nothing changes."""
        return self._act(what, client_id, item_ids, actor, strict=True)

    def act_where(self, what: Action, flt: ItemFilter, actor: str) -> list[int]:
        """Apply `what` to every item the filter matches that allows it, in chunks."""
        statuses = tuple(s for s in (flt.statuses or what.statuses) if what.applies_to(s))
        if not statuses:
            raise InvalidInput(f"{what.name} applies only to {what.only()} items")
        flt = replace(flt, statuses=statuses)
        done: list[int] = []
        after = 0
        while True:
            ids = self.reads.ids(flt, after, _BULK_CHUNK)
            if not ids:
                return done
            done += self._act(what, flt.client_id, ids, actor, strict=False)
            after = ids[-1]

    def _act(
        self, what: Action, client_id: int, item_ids: Sequence[int], actor: str, strict: bool
    ) -> list[int]:
        now = time.time()
        sql = self.sql
        with self.db.write() as cur:
            self.lanes.lock(
                cur,
                (r[0] for r in sql.all(cur, "action_lanes", client_id=client_id, ids=item_ids)),
            )
            rows = sql.all(cur, "action_items", client_id=client_id, ids=item_ids)
            found = {int(r[0]): (r[1], r[2]) for r in rows}
            if strict:
                _check_actionable(item_ids, found, what)
            targets = [(i, s, lane) for i, (s, lane) in found.items() if what.applies_to(s)]
            if not targets:
                return []
            ids = [i for i, _, _ in targets]
            if what is RETRY:
                sql.execute(cur, "retry_items", now=now, ids=ids)
                # A retried head stays the head: its lane is only re-derived.
                lanes = Counter({lane: 0 for _, _, lane in targets if lane is not None})
            else:
                sql.execute(cur, "skip_items", now=now, ids=ids)
                lanes = Counter(lane for _, _, lane in targets if lane is not None)
            self._audit(
                cur,
                [
                    (now, client_id, actor, what.name, i, lane, json.dumps({"from": s}))
                    for i, s, lane in targets
                ],
            )
            if lanes:
                self.lanes.finish(cur, lanes)
            if what is RETRY:
                self.db.notify(cur)
        if what is RETRY:
            self.wakeup.notify()
        return ids

    def pause(self, client_id: int, lane_id: int, actor: str, reason: str = "") -> None:
        self._set_paused(client_id, lane_id, actor, True, reason)

    def resume(self, client_id: int, lane_id: int, actor: str) -> None:
        self._set_paused(client_id, lane_id, actor, False, "")
        self.wakeup.notify()

    def _set_paused(
        self, client_id: int, lane_id: int, actor: str, paused: bool, reason: str
    ) -> None:
        now = time.time()
        with self.db.write() as cur:
            self.lanes.set_paused(cur, client_id, lane_id, paused, actor, reason, now)
            if not paused:
                self.db.notify(cur)
            detail = json.dumps({"reason": reason} if reason else {})
            action_name = "pause" if paused else "resume"
            self._audit(cur, [(now, client_id, actor, action_name, None, lane_id, detail)])

    def _audit(self, cur: Cursor, entries: list[tuple[Any, ...]]) -> None:
        """The engine's own audit entries: who did what to which item or lane."""
        names = ("at", "client_id", "actor", "action", "item_id", "lane_id", "detail")
        rows = [dict(zip(names, e, strict=True)) for e in entries]
        self.sql.execute_many(cur, "insert_audit", rows)


def _check_actionable(
    item_ids: Sequence[int], found: dict[int, tuple[str, int | None]], what: Action
) -> None:
    missing = [i for i in item_ids if i not in found]
    if missing:
        raise NotFound(f"no queue item {', '.join(map(str, missing))}")
    wrong = [(i, found[i][0]) for i in item_ids if not what.applies_to(found[i][0])]
    if wrong:
        listed = ", ".join(f"{i} is {s}" for i, s in wrong)
        raise Conflict(f"cannot {what.name}: {listed}; only {what.only()} items can be")
