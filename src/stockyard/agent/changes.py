"""One poll's reading: the rows the source gives, assembled into records, compared with
the hashes of what was last queued; what changed becomes an outbox Change.

A poll reads in one snapshot of the source (read.SqlSource.snapshot), so its pages and
sections agree with each other.

A record is always pushed whole: a product with ALL its variants, their tier prices and
their stock (Stockyard marks a variant that a pushed product no longer lists removed).
So a section with a cursor uses it only to learn WHETHER anything changed: the query
(`changed >= :cursor`) returns the rows changed since the last poll; when none are new,
the poll reads nothing more. When some are, the section is read whole and every record
hash-compared, so only the records that changed are pushed. A cursor therefore saves the
reads of the quiet polls. The rows read again at exactly the cursor's value (`>=`: a row
saved in the same tick as the last one read must not be missed) are known by their digest
and are not news. A [prices] or [stock] query that uses :cursor is asked too.

After a whole read that found no problem, a record whose key was pushed before but is no
longer read (deleted in the ERP) is pushed once more as it was last pushed, with
active = false, and forgotten. An empty read withdraws nothing: that is a broken query or
an export that did not run, not a shop that sells nothing.

A record that fails validation is logged and not queued; while there is one, the cursor
is not advanced (it will be read again; the hashes keep the good ones from repeating).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from stockyard.agent import records
from stockyard.agent.outbox import Change, State
from stockyard.agent.profile import Profile
from stockyard.agent.read import Source
from stockyard.agent.records import Problem
from stockyard.catalog.models import Customer, FulfillmentUpdate, Product

log = logging.getLogger("stockyard.agent")


@dataclass
class Reading:
    """What a poll read, and what of it changed."""

    change: Change
    read: dict[str, int] = field(default_factory=dict)  # topic -> records assembled
    problems: list[Problem] = field(default_factory=list)
    samples: dict[str, list[Any]] = field(default_factory=dict)  # topic -> first records


@dataclass
class _Topic:
    """One topic's part of a poll."""

    records: list[Any] = field(default_factory=list)
    hashes: dict[str, str] = field(default_factory=dict)
    bodies: dict[str, str] = field(default_factory=dict)
    withdrawn: list[str] = field(default_factory=list)
    cursor: str | None = None
    read: int = 0
    samples: list[Any] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def _body(record: Product | Customer | FulfillmentUpdate) -> dict[str, Any]:
    return record.model_dump(mode="json", exclude_defaults=True)


def _news(source: Source, topic: str, stored: str | None) -> tuple[bool, str | None]:
    """With a cursor: whether anything changed since the stored cursor, and the cursor to
    store once this poll is queued (None: keep the stored one)."""
    cursor = records.load_cursor(stored)
    seen = records.load_seen(stored)
    rows = source.rows(topic, cursor)
    extra: list[tuple[str, dict[str, Any]]] = []
    if topic == "products" and cursor is not None:
        for section in ("prices", "stock"):
            if source.uses_cursor(section):
                extra += [(section, r) for r in source.rows(section, cursor)]
    digests = [records.row_digest(topic, r) for r in rows]
    fresh = [
        d for r, d in zip(rows, digests, strict=True) if r.get("changed") != cursor or d not in seen
    ]
    fresh += [d for d in (records.row_digest(s, r) for s, r in extra) if d not in seen]
    if not fresh:
        return False, None
    newest = records.newest((r.get("changed") for r in rows), cursor)
    if newest is None:
        return True, None
    at_newest = {d for r, d in zip(rows, digests, strict=True) if r.get("changed") == newest}
    if newest == cursor:
        at_newest |= seen
    at_newest |= {records.row_digest(s, r) for s, r in extra}
    return True, records.dump_cursor(newest, at_newest)


def _topic(source: Source, profile: Profile, state: State, topic: str, samples: int) -> _Topic:
    out = _Topic()
    reading = getattr(profile, topic)
    cursor_name = reading.cursor if reading is not None else None
    if cursor_name:
        news, out.cursor = _news(source, topic, state.cursor(topic))
        if not news:
            return out
    rows = source.rows(topic, None)
    built: list[Product] | list[Customer]
    if topic == "products":
        built, bad = records.products(rows, source.rows("prices", None), source.rows("stock", None))
    else:
        built, bad = records.customers(rows)
    out.read = len(built)
    out.samples = [_body(r) for r in built[:samples]]
    known = state.hashes(topic)
    read_keys: set[str] = set()
    for record in built:
        key = record.key if isinstance(record, Product) else record.code
        read_keys.add(key)
        digest = records.digest(record)
        if known.get(key) != digest and out.hashes.get(key) != digest:
            body = _body(record)
            out.records.append(body)
            out.hashes[key] = digest
            out.bodies[key] = json.dumps(body, separators=(",", ":"))
    if bad:
        out.cursor = None  # read again next time
        out.problems = bad
        return out
    if not built:
        if known:
            log.warning("[%s] returned no rows: nothing is withdrawn", topic)
        return out
    for key in sorted(set(known) - read_keys):
        last = state.last_body(topic, key)
        if last is None:
            log.warning("%s %s is no longer read; its last body is not kept", topic, key)
        else:
            log.info("%s %s is no longer in the ERP: withdrawn (active = false)", topic, key)
            out.records.append({**last, "active": False})
        out.withdrawn.append(key)
    return out


def _fulfillments(source: Source, state: State, samples: int) -> _Topic:
    """The fulfilments this agent made (create_fulfillment), as the ERP has them now: those
    whose state or tracking changed since last pushed. The ERP's other orders are no
    fulfilments of Stockyard's, and one no longer read is not withdrawn (a fulfilment
    stays as it was last reported)."""
    out = _Topic()
    built, out.problems = records.fulfillments(source.rows("fulfillments", None))
    made = state.made_fulfillments()
    ours = [f for f in built if f.remote_id in made]
    out.read = len(built)  # what the query returned (`check` shows it): ours are pushed
    out.samples = [_body(f) for f in built[:samples]]
    known = state.hashes("fulfillments")
    for record in ours:
        digest = records.digest(record)
        if known.get(record.remote_id) != digest:
            body = _body(record)
            out.records.append(body)
            out.hashes[record.remote_id] = digest
            out.bodies[record.remote_id] = json.dumps(body, separators=(",", ":"))
    return out


def poll(
    source: Source, profile: Profile, state: State, samples: int = 0, fulfillments: bool = False
) -> Reading:
    """`fulfillments`: also read [fulfillments] (the agent has a [fulfillment] connection)."""
    out: dict[str, list[Any]] = {}
    hashes: dict[str, dict[str, str]] = {}
    bodies: dict[str, dict[str, str]] = {}
    withdrawn: dict[str, list[str]] = {}
    cursors: dict[str, str] = {}
    read: dict[str, int] = {}
    shown: dict[str, list[Any]] = {}
    problems: list[Problem] = []
    with source.snapshot():
        for topic in ("products", "customers"):
            if profile.uses_sql and getattr(profile, topic) is None:
                continue
            part = _topic(source, profile, state, topic, samples)
            problems += part.problems
            out[topic], hashes[topic], bodies[topic] = part.records, part.hashes, part.bodies
            withdrawn[topic] = part.withdrawn
            read[topic], shown[topic] = part.read, part.samples
            if part.cursor is not None:
                cursors[topic] = part.cursor
        if fulfillments and (profile.fulfillments is not None or not profile.uses_sql):
            part = _fulfillments(source, state, samples)
            problems += part.problems
            topic = "fulfillments"
            out[topic], hashes[topic], bodies[topic] = part.records, part.hashes, part.bodies
            read[topic], shown[topic] = part.read, part.samples
    for p in problems:
        log.warning("not pushed: %s %s: %s", p.topic, p.key, p.message)
    return Reading(Change(out, hashes, cursors, bodies, withdrawn), read, problems, shown)
