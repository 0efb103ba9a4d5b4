"""One poll's reading: the rows the source gives, assembled into records, compared with
the hashes of what was last queued; what changed becomes an outbox Change.

With a cursor a section reads only rows newer than the last poll's greatest marker; its
products are still hash-compared, so a touched but unchanged row pushes nothing. A price
or stock change reaches Stockyard with its product: write the products query so that its
cursor column is the greatest of the item's, its prices' and its stock's change markers
(the shipped profiles do where the ERP has them), or rely on hashes (no cursor).
A record that fails validation is logged and not queued; while there is one, the cursor
is not advanced (it will be read again; the hashes keep the good ones from repeating).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from stockyard.agent import records
from stockyard.agent.outbox import Change, State
from stockyard.agent.profile import Profile
from stockyard.agent.read import Source
from stockyard.agent.records import Problem
from stockyard.catalog.models import Customer, Product

log = logging.getLogger("stockyard.agent")


@dataclass
class Reading:
    """What a poll read, and what of it changed."""

    change: Change
    read: dict[str, int] = field(default_factory=dict)  # topic -> records assembled
    problems: list[Problem] = field(default_factory=list)
    samples: dict[str, list[Any]] = field(default_factory=dict)  # topic -> first records


def poll(source: Source, profile: Profile, state: State, samples: int = 0) -> Reading:
    out: dict[str, list[Any]] = {}
    hashes: dict[str, dict[str, str]] = {}
    cursors: dict[str, str] = {}
    read: dict[str, int] = {}
    problems: list[Problem] = []
    shown: dict[str, list[Any]] = {}
    for topic in ("products", "customers"):
        if profile.uses_sql and getattr(profile, topic) is None:
            continue
        reading = getattr(profile, topic)
        cursor_name = reading.cursor if reading is not None else None
        stored = state.cursor(topic) if cursor_name else None
        cursor = records.load_cursor(stored)
        rows = source.rows(topic, cursor)
        built: list[Product] | list[Customer]
        if topic == "products":
            built, bad = records.products(
                rows, source.rows("prices", cursor), source.rows("stock", cursor)
            )
        else:
            built, bad = records.customers(rows)
        problems += bad
        read[topic] = len(built)
        shown[topic] = [r.model_dump(mode="json", exclude_defaults=True) for r in built[:samples]]
        known = state.hashes(topic)
        changed: list[Any] = []
        digests: dict[str, str] = {}
        for record in built:
            key = record.key if isinstance(record, Product) else record.code
            digest = records.digest(record)
            if known.get(key) != digest and digests.get(key) != digest:
                changed.append(record.model_dump(mode="json", exclude_defaults=True))
                digests[key] = digest
        out[topic] = changed
        hashes[topic] = digests
        if cursor_name and not bad:
            newest = records.newest((r.get("changed") for r in rows), cursor)
            if newest is not None and newest != cursor:
                cursors[topic] = records.dump_cursor(newest)
    for p in problems:
        log.warning("not pushed: %s %s: %s", p.topic, p.key, p.message)
    return Reading(Change(out, hashes, cursors), read, problems, shown)
