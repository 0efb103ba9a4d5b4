"""The agent's state: a SQLite file holding the outbox (pushes waiting for Stockyard, in
order), the hash of every record put in it, the cursors, and the dead letters.

A poll's batches go in with their hashes and cursors in ONE transaction: a crash before
it commits leaves nothing (the next poll reads the same rows again), a crash after it
leaves everything to send. Nothing read is ever marked seen without being queued.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from stockyard.agent import AgentError
from stockyard.db.queries import parse

_Q = {
    name: sql
    for name, (_, sql) in parse(
        (resources.files("stockyard.agent") / "state.sqlite.sql").read_text(encoding="utf-8"),
        "stockyard.agent/state.sqlite.sql",
    ).items()
}
_SCHEMA = (
    "create_outbox",
    "create_hashes",
    "create_cursors",
    "create_dead",
    "create_unsettled",
    "create_made",
)
# Which of the agent's connections a push or an outcome is for: its [stockyard] connection
# (the source) or its [fulfillment] one. Each is sent in order, on its own.
SOURCE, FULFILLMENT = "source", "fulfillment"
ROLE_OF_TOPIC = {"fulfillments": FULFILLMENT}
# A batch's body stays under this many bytes: Stockyard refuses a request body over its
# max_body (5 MiB by default, web/settings.py) with 413.
MAX_BATCH_BYTES = 4_000_000


@dataclass(frozen=True)
class Batch:
    seq: int
    part: int
    topic: str
    message_id: str
    body: bytes
    records: int
    attempts: int
    role: str = SOURCE

    def split(self) -> list[tuple[str, bytes]]:
        """(message_id, body) of each record alone, for a batch refused as invalid."""
        items = json.loads(self.body)[self.topic]
        return [
            (f"{self.message_id}.{n}", _json({self.topic: [item]}))
            for n, item in enumerate(items, 1)
        ]


@dataclass(frozen=True)
class Unsettled:
    """An order outcome kept until Stockyard takes it."""

    session: str
    outcome: dict[str, Any]
    tries: int
    kept_at: float


@dataclass(frozen=True)
class Change:
    """What one poll puts in the outbox: records per topic (JSON-ready), their hashes, the
    new cursors."""

    records: Mapping[str, Sequence[Any]]  # topic -> records
    hashes: Mapping[str, Mapping[str, str]]  # topic -> key -> digest
    cursors: Mapping[str, str]  # section -> stored cursor value
    bodies: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # topic -> key -> JSON
    withdrawn: Mapping[str, Sequence[str]] = field(default_factory=dict)  # topic -> keys gone

    def empty(self) -> bool:
        return (
            not any(self.records.values()) and not self.cursors and not any(self.withdrawn.values())
        )


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _chunks(
    topic: str, records: Sequence[Any], size: int, max_bytes: int | None
) -> list[list[Any]]:
    """Records cut into batches of at most `size` records and `max_bytes` bytes of body."""
    out: list[list[Any]] = []
    chunk: list[Any] = []
    used = len(_json({topic: []}))
    for record in records:
        weight = len(_json(record)) + 1  # and its comma
        full = len(chunk) >= size or (max_bytes is not None and used + weight > max_bytes and chunk)
        if full:
            out.append(chunk)
            chunk, used = [], len(_json({topic: []}))
        chunk.append(record)
        used += weight
    if chunk:
        out.append(chunk)
    return out


class State:
    def __init__(self, path: Path) -> None:
        if not path.parent.is_dir():
            raise AgentError(f"[agent] state: folder {path.parent} does not exist")
        try:
            self.conn = sqlite3.connect(path, isolation_level=None, timeout=30)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=FULL")
            for name in _SCHEMA:
                self.conn.execute(_Q[name])
            # Columns a state database from an earlier version lacks.
            for columns, column, add in (
                ("hash_columns", "body", "add_hash_body"),
                ("outbox_columns", "role", "add_outbox_role"),
                ("unsettled_columns", "role", "add_unsettled_role"),
            ):
                if column not in {r[0] for r in self.conn.execute(_Q[columns])}:
                    self.conn.execute(_Q[add])
        except sqlite3.Error as exc:
            raise AgentError(f"[agent] state {path}: {exc}") from None
        self.path = path

    def close(self) -> None:
        self.conn.close()

    def _one(self, name: str, **params: Any) -> Any:
        row = self.conn.execute(_Q[name], params).fetchone()
        return None if row is None else row[0]

    # ------------------------------------------------------------------- changes in

    def hashes(self, topic: str) -> dict[str, str]:
        return dict(self.conn.execute(_Q["all_hashes"], {"topic": topic}).fetchall())

    def last_body(self, topic: str, key: str) -> dict[str, Any] | None:
        """The record as it was last queued, if kept."""
        body = self._one("hash_body", topic=topic, key=key)
        return None if body is None else dict(json.loads(body))

    def cursor(self, section: str) -> str | None:
        value: str | None = self._one("cursor_of", section=section)
        return value

    def put(self, change: Change, batch_size: int, max_bytes: int | None = MAX_BATCH_BYTES) -> int:
        """The change's records in batches of up to `batch_size` records and `max_bytes`
        bytes (a record larger than that goes alone), with its hashes and cursors, in one
        transaction. The number of batches queued."""
        queued = 0
        now = time.time()
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            seq = int(self._one("next_seq"))
            for topic, records in change.records.items():
                for chunk in _chunks(topic, records, batch_size, max_bytes):
                    self.conn.execute(
                        _Q["add"],
                        {
                            "seq": seq,
                            "part": 0,
                            "role": ROLE_OF_TOPIC.get(topic, SOURCE),
                            "topic": topic,
                            "message_id": f"agent-{uuid.uuid4().hex}",
                            "body": _json({topic: chunk}).decode(),
                            "records": len(chunk),
                            "created_at": now,
                        },
                    )
                    seq += 1
                    queued += 1
            for topic, digests in change.hashes.items():
                bodies = change.bodies.get(topic, {})
                self.conn.executemany(
                    _Q["set_hash"],
                    [
                        {"topic": topic, "key": k, "digest": d, "body": bodies.get(k)}
                        for k, d in digests.items()
                    ],
                )
            for topic, keys in change.withdrawn.items():
                self.conn.executemany(_Q["forget_hash"], [{"topic": topic, "key": k} for k in keys])
            for section, value in change.cursors.items():
                self.conn.execute(_Q["set_cursor"], {"section": section, "value": value})
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        return queued

    def forget(self) -> None:
        """Reconcile: the next poll reads every row and pushes every record once."""
        self.conn.execute("BEGIN IMMEDIATE")
        self.conn.execute(_Q["forget_hashes"])
        self.conn.execute(_Q["forget_cursors"])
        self.conn.execute("COMMIT")

    # ------------------------------------------------------------------ batches out

    def head(self, limit: int = 10, role: str = SOURCE) -> list[Batch]:
        """The next batches for one of the agent's connections, oldest first."""
        rows = self.conn.execute(_Q["head"], {"limit": limit, "role": role}).fetchall()
        return [Batch(r[0], r[1], r[2], r[3], r[4].encode(), r[5], r[6], r[7]) for r in rows]

    def pending_roles(self) -> list[str]:
        """The connections with pushes waiting (the source's first)."""
        return [r[0] for r in self.conn.execute(_Q["pending_roles"])]

    def pending(self) -> tuple[int, int]:
        """(batches, records) waiting."""
        row = self.conn.execute(_Q["pending"]).fetchone()
        return int(row[0]), int(row[1])

    def waiting(self, role: str) -> tuple[int, int, int]:
        """(batches, records, kept outcomes) waiting for one of the agent's connections."""
        row = self.conn.execute(_Q["pending_of_role"], {"role": role}).fetchone()
        return int(row[0]), int(row[1]), int(self._one("unsettled_count", role=role))

    def drop_role(self, role: str) -> tuple[int, int, int]:
        """Drop a connection's pushes and kept outcomes, on purpose (the connection is gone
        from the config): what was dropped, as `waiting`."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            dropped = self.waiting(role)
            self.conn.execute(_Q["drop_role"], {"role": role})
            self.conn.execute(_Q["drop_role_outcomes"], {"role": role})
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        return dropped

    def sent(self, batch: Batch) -> None:
        self.conn.execute(_Q["sent"], {"seq": batch.seq, "part": batch.part})

    def attempt_failed(self, batch: Batch, error: str) -> None:
        self.conn.execute(
            _Q["failed_attempt"], {"seq": batch.seq, "part": batch.part, "error": error[:500]}
        )

    def split(self, batch: Batch) -> None:
        """Replace a batch by one batch per record, in its place."""
        parts = batch.split()
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            self.conn.execute(_Q["sent"], {"seq": batch.seq, "part": batch.part})
            for n, (message_id, body) in enumerate(parts, 1):
                self.conn.execute(
                    _Q["add"],
                    {
                        "seq": batch.seq,
                        "part": n,
                        "role": batch.role,
                        "topic": batch.topic,
                        "message_id": message_id,
                        "body": body.decode(),
                        "records": 1,
                        "created_at": time.time(),
                    },
                )
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise

    def bury(self, batch: Batch, error: str) -> None:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            self.conn.execute(
                _Q["bury"],
                {
                    "topic": batch.topic,
                    "message_id": batch.message_id,
                    "body": batch.body.decode(),
                    "error": error[:2000],
                    "died_at": time.time(),
                },
            )
            self.conn.execute(_Q["sent"], {"seq": batch.seq, "part": batch.part})
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise

    def dead(self, limit: int = 20) -> list[dict[str, Any]]:
        rows = self.conn.execute(_Q["dead_letters"], {"limit": limit}).fetchall()
        return [
            {"topic": r[0], "message_id": r[1], "body": r[2], "error": r[3], "died_at": r[4]}
            for r in rows
        ]

    def dead_count(self) -> int:
        return int(self._one("dead_count"))

    # ------------------------------------------------------------- order outcomes

    def keep_outcomes(
        self, session: str, outcomes: Sequence[Mapping[str, Any]], role: str = SOURCE
    ) -> None:
        now = time.time()
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.executemany(
                _Q["keep_outcome"],
                [
                    {"item": o["id"], "role": role, "session": session,
                     "outcome": _json(o).decode(), "kept_at": now}
                    for o in outcomes
                ],
            )  # fmt: skip

    def unsettled(self, role: str = SOURCE) -> list[Unsettled]:
        rows = self.conn.execute(_Q["unsettled"], {"role": role}).fetchall()
        return [Unsettled(r[1], json.loads(r[2]), r[3], r[4]) for r in rows]

    def settle_tried(self, items: Sequence[int]) -> None:
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.executemany(_Q["settle_tried"], [{"item": i} for i in items])

    def drop_outcomes(self, items: Sequence[int]) -> None:
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.executemany(_Q["drop_outcome"], [{"item": i} for i in items])

    # ------------------------------------------------------------ fulfilments made

    def made(self, remote_id: str, digest: str, body: str) -> None:
        """A fulfilment this agent made: its state is pushed from now on, compared with
        what Stockyard holds of it (`digest`, `body`: open, no tracking)."""
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.execute(_Q["add_made"], {"remote_id": remote_id, "made_at": time.time()})
            self.conn.execute(
                _Q["seed_hash"],
                {"topic": "fulfillments", "key": remote_id, "digest": digest, "body": body},
            )

    def made_fulfillments(self) -> set[str]:
        return {r[0] for r in self.conn.execute(_Q["made"])}


class RoleStore:
    """One connection's view of the kept outcomes (orders.OutcomeStore): the source's and
    the fulfillment connection's are settled each through its own connection."""

    def __init__(self, state: State, role: str) -> None:
        self.state = state
        self.role = role

    def keep_outcomes(self, session: str, outcomes: Sequence[Mapping[str, Any]]) -> None:
        self.state.keep_outcomes(session, outcomes, self.role)

    def unsettled(self) -> list[Unsettled]:
        return self.state.unsettled(self.role)

    def settle_tried(self, items: Sequence[int]) -> None:
        self.state.settle_tried(items)

    def drop_outcomes(self, items: Sequence[int]) -> None:
        self.state.drop_outcomes(items)
