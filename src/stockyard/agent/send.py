"""Delivering the outbox: strictly in order, each batch signed with its own fixed message
id (so a delivery repeated after a lost answer enqueues nothing twice).

- 2xx: delivered, removed.
- no answer, 5xx, 429: Stockyard is unreachable or busy; stop and try again later, from
  the same batch (the caller backs off).
- 422 (invalid) or 413 (too large) on a batch of several records: split in place into
  one batch per record, so only the refused records are set aside; on a single record:
  moved to the dead letters (shown by `stockyard agent check`), logged loudly. (Batches
  are cut under 4 MB when queued: a 413 means a smaller limit at the site or one record
  over it.)
- any other 4xx (401: a wrong secret or connection; 404...): logged loudly, kept, and
  sending pauses (retried after the longest back-off). A record is never silently
  dropped. 409 `connection N is disabled` (the operator's stop) is the same pause, said
  once by the caller rather than at every try.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from stockyard.agent.client import Client, Unreachable, detail
from stockyard.agent.orders import disabled_answer
from stockyard.agent.outbox import SOURCE, State

log = logging.getLogger("stockyard.agent")


@dataclass
class Delivery:
    batches: int = 0
    records: int = 0
    dead: int = 0
    retry: str | None = None  # why sending stopped for now: try again later
    blocked: str | None = None  # why sending stopped: an operator must look
    disabled: bool = False  # blocked because the connection is disabled


def deliver(
    state: State, client: Client, role: str = SOURCE, connection: int | None = None
) -> Delivery:
    """The outbox's batches for one of the agent's connections (`role`; `connection`: its
    id, None for the client's own), in order."""
    done = Delivery()
    while True:
        batches = state.head(20, role)
        if not batches:
            return done
        for batch in batches:
            try:
                response = (
                    client.push(batch.topic, batch.message_id, batch.body)
                    if connection is None
                    else client.push(batch.topic, batch.message_id, batch.body, connection)
                )
            except Unreachable as exc:
                state.attempt_failed(batch, str(exc))
                done.retry = str(exc)
                return done
            status = response.status_code
            if 200 <= status < 300:
                state.sent(batch)
                done.batches += 1
                done.records += batch.records
                continue
            said = detail(response)
            if status == 429 or status >= 500:
                state.attempt_failed(batch, f"{status}: {said}")
                done.retry = f"Stockyard answered {status}: {said}"
                return done
            why = {422: "invalid", 413: "too large"}.get(status)
            if why is not None and batch.records > 1:
                log.warning(
                    "Stockyard refused a batch of %d %s as %s; sending them one by one",
                    batch.records,
                    batch.topic,
                    why,
                )
                state.split(batch)
                break  # the head changed
            if why is not None:
                state.bury(batch, f"{status} {why}: {said}")
                done.dead += 1
                log.error(
                    "Stockyard refused a %s record as %s (%s): set aside as a dead letter"
                    " (see `stockyard agent check`)",
                    batch.topic,
                    why,
                    said,
                )
                continue
            state.attempt_failed(batch, f"{status}: {said}")
            done.blocked = f"Stockyard refused a push with {status}: {said}"
            done.disabled = disabled_answer(response) is not None
            if not done.disabled:
                log.error("%s; the batch is kept and sending paused (retried later)", done.blocked)
            return done
