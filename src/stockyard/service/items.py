"""Queue items: lists and details, enqueueing, retry and skip (one by one or by filter),
and pruning what is finished."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from stockyard.engine import ACTIONS as ENGINE_ACTIONS
from stockyard.engine import ItemFilter, Request
from stockyard.engine.models import MAX_ERROR as MAX_ERROR
from stockyard.engine.models import STATUSES
from stockyard.errors import InvalidInput, NotFound
from stockyard.samples import Samples
from stockyard.service.base import ADMIN, OPERATE, READ, ServiceBase

if TYPE_CHECKING:
    from stockyard.accounts import Principal
    from stockyard.engine import Item, ItemDetail

# What each bulk action can apply to. A filter that names no status means failed items
# only, for every shell: skipping "every item of SKU X" must not cancel X's queued updates.
# Which statuses each action applies to: the engine's list, the only one.
ACTIONS: dict[str, tuple[str, ...]] = {n: a.statuses for n, a in ENGINE_ACTIONS.items()}
BULK_DEFAULT_STATUSES = ("failed",)


@dataclass(frozen=True, slots=True)
class BulkGroup:
    """How many items a bulk action would touch of one instruction on one connection
    (`lane_id` is the connection's lane for blocking items, None for the others)."""

    instruction: str
    connection_id: int | None
    lane_id: int | None
    items: int


@dataclass(frozen=True, slots=True)
class QueueSummary:
    """A client's unfinished work, exact: items per status ("queued", "running",
    "failed"), lanes blocked by a failed head and lanes paused (and not blocked)."""

    counts: dict[str, int]
    blocked_lanes: int
    paused_lanes: int


@dataclass(frozen=True, slots=True)
class SkipWarning:
    """A consequence the catalog knows of skipping some failed items: `message` says what
    goes wrong, `fix` the better way in words. `total` failed items of `instruction` are
    skipped; `requeue_ids` are (up to _WARN_ITEMS of) them, what a retry would re-queue
    instead (the fix: by filter, it re-queues all `total`); `dependant_ids` the queued
    items (of the same lane and reference) that will fail if those are skipped,
    `dependants` how many."""

    instruction: str
    message: str
    fix: str | None
    requeue_ids: tuple[int, ...]
    dependants: int
    dependant_ids: tuple[int, ...] = ()
    total: int = 0
    # Of `total`, the failed ones (every one, not only those looked at): what the fix, a
    # retry by the same filter, re-queues. Queued ones are left as they are.
    failed: int = 0


@dataclass(frozen=True, slots=True)
class FailureGroup:
    """Failed items with the same error text: one row of the queue page, acted on with
    ItemFilter(error_is=error)."""

    error: str
    items: int
    instructions: tuple[str, ...]
    connection_ids: tuple[int | None, ...]
    refs: tuple[str, ...]  # the first few references (SKUs) among them
    example: Item  # the oldest of them: the one its lane meets first


@dataclass(frozen=True, slots=True)
class BulkPreview:
    """What a bulk action would touch: counts by status, instruction and connection (and
    lane), and the first items, newest first."""

    groups: list[tuple[str, str, int | None, int | None, int]]  # status, instruction, conn, lane, n
    first: list[Item]

    @property
    def total(self) -> int:
        return sum(g[-1] for g in self.groups)


# The failures by error group the newest this many failed items: a refresh every few
# seconds reads no more rows than these, however many failed (each with its traceback).
FAILURES_GROUPED = 5_000
# The failures page: (error, instruction, connection) rows read, error groups shown.
_GROUP_ROWS = 1000
_GROUPS_SHOWN = 100
_EXAMPLE_REFS = 5

# How many failed items a confirmation looks at for consequences, and how many dependants
# it names: a confirmation is read by a person, these are far beyond a screen.
_WARN_ITEMS = 1000
_WARN_DEPENDANTS = 5000


class ItemsService(ServiceBase):
    def queue_summary(self, who: Principal, client_id: int) -> QueueSummary:
        """The client's unfinished items per status and its stopped lanes, exact and
        cheap (indexes only): the console shows it on every page."""
        self._allow(who, client_id, READ)
        s = self.queue.summary(client_id)
        return QueueSummary(
            counts={"queued": s.queued, "running": s.running, "failed": s.failed},
            blocked_lanes=s.blocked_lanes,
            paused_lanes=s.paused_lanes,
        )

    def failure_groups(
        self, who: Principal, client_id: int
    ) -> tuple[list[FailureGroup], bool, int | None]:
        """The client's newest failed items (FAILURES_GROUPED of them) grouped by their
        error text, largest group first (then oldest); whether there were more groups
        than these; and FAILURES_GROUPED when more items failed than were grouped (None
        when every failed item is in a group). Grouped in SQL (one statement on the
        failed items' index, from its newest end); the examples read by id."""
        self._allow(who, client_id, READ)
        rows = self.queue.failure_groups(client_id, _GROUP_ROWS + 1, FAILURES_GROUPED)
        capped = len(rows) > _GROUP_ROWS
        every_failed = ItemFilter(client_id, statuses=("failed",))
        sampled = self.queue.count(every_failed, FAILURES_GROUPED) > FAILURES_GROUPED
        merged: dict[str, list[tuple[str, int | None, int, int, int]]] = {}
        for error, instruction, connection, n, first, last in rows[:_GROUP_ROWS]:
            if error is not None:
                merged.setdefault(error, []).append((instruction, connection, n, first, last))
        order = sorted(
            merged, key=lambda e: (-sum(p[2] for p in merged[e]), min(p[3] for p in merged[e]))
        )
        shown = order[:_GROUPS_SHOWN]
        wanted = {i for e in shown for p in merged[e] for i in (p[3], p[4])}
        examples = {
            i.id: i
            for chunk in _chunks(sorted(wanted), 1000)
            for i in self.queue.list_items(ItemFilter(client_id, ids=tuple(chunk)), 1000)
        }
        # An example gone between the two reads (pruned): its group waits for a refresh.
        groups = [
            _failure_group(e, merged[e], examples)
            for e in shown
            if min(p[3] for p in merged[e]) in examples
        ]
        return (
            groups,
            capped or len(order) > _GROUPS_SHOWN,
            FAILURES_GROUPED if sampled else None,
        )

    def next_to_run(
        self, who: Principal, client_id: int, per_lane: int, free: int
    ) -> tuple[dict[int, list[Item]], list[Item]]:
        """The client's queued items in the order they will run: the first `per_lane` of
        each lane with work, and the first `free` non-blocking ones."""
        self._allow(who, client_id, READ)
        lanes = [v.lane_id for v in self.queue.lanes(client_id) if v.pending]
        return self.queue.next_to_run(client_id, lanes, per_lane, free)

    def bulk_preview(
        self, who: Principal, flt: ItemFilter, action: str, first: int = 20
    ) -> BulkPreview:
        """What `act_where(who, flt, action)` would touch now: counts by status,
        instruction and connection, and the first `first` items (the same filter SQL)."""
        self._allow(who, flt.client_id, OPERATE)
        flt = bulk_filter(flt, action)
        groups = self.queue.count_by(flt, ("status", "instruction", "connection_id", "lane_id"))
        return BulkPreview(
            [(str(st), str(i), c, lane, n) for (st, i, c, lane), n in groups],
            self.queue.list_items(flt, first),
        )

    def skip_warnings(self, who: Principal, flt: ItemFilter) -> list[SkipWarning]:
        """What the catalog knows goes wrong when the failed items `flt` matches are
        skipped (flows.catalog.SKIP_CONSEQUENCES): e.g. a skipped add_product leaves the
        channel without the product, so the product's queued updates in that lane will
        fail. One warning per instruction concerned."""
        from stockyard.flows.catalog import SKIP_CONSEQUENCES, SKIP_LOSSES

        self._allow(who, flt.client_id, READ)
        flt = bulk_filter(flt, "skip")
        # A queued add skipped leaves its updates to fail as surely as a failed one.
        statuses = tuple(s for s in ("failed", "queued") if s in flt.statuses)
        if not statuses:
            return []
        known = [*SKIP_CONSEQUENCES, *SKIP_LOSSES]
        wanted = [n for n in known if not flt.instructions or n in flt.instructions]
        warnings = []
        for name in wanted:
            of_name = replace(flt, statuses=statuses, instructions=(name,))
            # The newest _WARN_ITEMS are looked at for what depends on them; the count
            # and the fix (a retry by the same filter) cover every one.
            skipped = self.queue.list_items(of_name, _WARN_ITEMS)
            if not skipped:
                continue
            whole = len(skipped) < _WARN_ITEMS
            total = len(skipped) if whole else self.queue.count(of_name)
            failed = sum(i.status == "failed" for i in skipped)
            if not whole and "failed" in statuses:
                # Failed items beyond the newest looked at are re-queued by the fix too.
                failed = self.queue.count(replace(of_name, statuses=("failed",)))
            skipped.sort(key=lambda i: i.id)
            if name in SKIP_CONSEQUENCES:
                warnings.append(self._skip_warning(flt.client_id, name, skipped, total, failed))
            else:
                warnings.append(self._loss_warning(flt.client_id, name, skipped, total, failed))
        return warnings

    def _loss_warning(
        self, client_id: int, name: str, skipped: list[Item], total: int, failed: int
    ) -> SkipWarning:
        """What skipping items nothing depends on loses: their own work ("5 customer
        orders (ORD-1400 … ORD-1404) will never reach Tryton ERP")."""
        from stockyard.flows.catalog import SKIP_LOSSES

        one, many, fate = SKIP_LOSSES[name]
        names = {c.id: c.description for c in self.tenancy.connections(client_id)}
        where = list(dict.fromkeys(names.get(i.connection_id or 0, "") for i in skipped))
        connection = " or ".join(w for w in where if w) or "the other system"
        refs = [r for i in skipped for r in i.refs[:1]]
        shown = f" ({refs[0]} … {refs[-1]})" if len(refs) > 1 else f" ({refs[0]})" if refs else ""
        message = (
            f"{total:,} {one if total == 1 else many}{shown} {fate.format(connection=connection)}"
        )
        what = f"{failed:,} failed {name} item{'s' if failed != 1 else ''}"
        return SkipWarning(
            instruction=name,
            message=message + ".",
            fix=f"Re-queue the {what} (retry them) instead of skipping" if failed else None,
            requeue_ids=tuple(i.id for i in skipped if i.status == "failed"),
            dependants=0,
            total=total,
            failed=failed,
        )

    def _skip_warning(
        self, client_id: int, name: str, skipped: list[Item], total: int, failed_total: int
    ) -> SkipWarning:
        from stockyard.flows.catalog import SKIP_CONSEQUENCES

        lost, needing, fate = SKIP_CONSEQUENCES[name]
        lost_pairs = {(ref, i.lane_id) for i in skipped for ref in i.refs}
        refs = sorted({ref for ref, _ in lost_pairs})
        found = self.queue.queued_sharing_refs(client_id, refs, needing, _WARN_DEPENDANTS)
        dependants = tuple(sorted({i for i, lane, _, ref in found if (ref, lane) in lost_pairs}))
        failed = [i.id for i in skipped if i.status == "failed"]
        status = " or ".join(s for s in ("failed", "queued") if any(i.status == s for i in skipped))
        items = f"{total:,} {status} {name} item{'s' if total != 1 else ''}"
        message = f"Skipping {items}: {lost}"
        if dependants:
            d = len(dependants)
            # Dependants of the items looked at only: beyond them, there may be more.
            least = "at least " if total > len(skipped) or d >= _WARN_DEPENDANTS else ""
            message += (
                f"; {least}{d:,} queued item{'s' if d != 1 else ''} of the same SKU need"
                f"{'s' if d == 1 else ''} it: {fate}."
            )
        else:
            message += f"; later updates of it: {fate}."
        failed_items = f"{failed_total:,} failed {name} item{'s' if failed_total != 1 else ''}"
        return SkipWarning(
            instruction=name,
            message=message,
            # A queued add runs by itself: the fix is to leave it, not to retry it.
            fix=f"Re-queue the {failed_items} (retry them) instead of skipping"
            if failed_total
            else f"Leave the {items} queued: do not skip {'it' if total == 1 else 'them'}",
            requeue_ids=tuple(failed),
            dependants=len(dependants),
            dependant_ids=dependants,
            total=total,
            failed=failed_total,
        )

    def items(self, who: Principal, flt: ItemFilter, limit: int, before: int | None) -> list[Item]:
        self._allow(who, flt.client_id, READ)
        return self.queue.list_items(flt, limit, before)

    def item(self, who: Principal, client_id: int, item_id: int) -> ItemDetail:
        self._allow(who, client_id, READ)
        return self.queue.detail(client_id, item_id)

    def queue_history(
        self, who: Principal, client_id: int, since: float
    ) -> list[tuple[float, int, int, int]]:
        self._allow(who, client_id, READ)
        return Samples(self.queue).history(client_id, since)

    def failures_by(
        self, who: Principal, client_id: int
    ) -> tuple[list[tuple[str, int]], list[tuple[int | None, int]]]:
        self._allow(who, client_id, READ)
        return self.queue.failures_by(client_id)

    def count(self, who: Principal, flt: ItemFilter, cap: int | None = None) -> int:
        """How many items match; with `cap`, counting stops at cap + 1 (more than cap)."""
        self._allow(who, flt.client_id, READ)
        return self.queue.count(flt, cap)

    def instruction_names(self) -> list[str]:
        return list(self.queue.instructions.names())

    def enqueue(self, who: Principal, client_id: int, requests: Sequence[Request]) -> list[int]:
        self._allow(who, client_id, ADMIN)
        parents = {r.parent_id for r in requests if r.parent_id is not None}
        if parents:
            # The engine trusts parent ids; another client's item must not become one.
            found = self.queue.list_items(ItemFilter(client_id, ids=tuple(parents)), 1000)
            missing = sorted(parents - {i.id for i in found})
            if missing:
                raise NotFound(f"no queue item {missing[0]} (given as a parent)")
        return self.queue.enqueue(client_id, requests)

    def check_request(self, who: Principal, client_id: int, req: Request) -> None:
        """What `enqueue` would refuse of one item, asked before anything is enqueued (a
        file of items is checked whole first): the instruction, its connection (of this
        client) and the lane it runs in."""
        self._allow(who, client_id, ADMIN)
        instruction = self.queue.instructions[req.instruction]
        if instruction.internal:
            raise InvalidInput(
                f"{req.instruction} is an internal instruction: only Stockyard itself queues it"
            )
        if req.connection_id is not None:
            conn = self.tenancy.connection(req.connection_id, client_id)
            if instruction.blocking and conn.kind != instruction.lane.value:
                raise InvalidInput(
                    f"{req.instruction} runs in a {instruction.lane.value} lane, but"
                    f" connection {conn.id} is a {conn.kind}"
                )
        elif instruction.blocking:
            raise InvalidInput(
                f"{req.instruction} is blocking: it needs the {instruction.lane.value}"
                " connection whose lane it runs in"
            )

    def act(self, who: Principal, client_id: int, action: str, ids: Sequence[int]) -> list[int]:
        """Retry or skip the given items; every one must exist and allow it."""
        self._allow(who, client_id, OPERATE)
        _action_statuses(action)
        if not ids:
            raise InvalidInput("ids: name at least one item")
        if action == "retry":
            return self.queue.retry(client_id, ids, who.actor)
        return self.queue.skip(client_id, ids, who.actor)

    def act_where(self, who: Principal, flt: ItemFilter, action: str) -> list[int]:
        """Retry or skip every item the filter matches that allows it: failed items,
        unless the filter names other statuses (see `bulk_filter`)."""
        self._allow(who, flt.client_id, OPERATE)
        flt = bulk_filter(flt, action)
        if action == "retry":
            return self.queue.retry_where(flt, who.actor)
        return self.queue.skip_where(flt, who.actor)

    def bulk_fingerprint(self, who: Principal, flt: ItemFilter, action: str) -> str:
        """Which items `act_where(who, flt, action)` would touch now, as a short string
        ("count-sum-sum"): a confirmation carries it, and the confirmed action goes ahead
        only if the set is still the same."""
        self._allow(who, flt.client_id, OPERATE)
        return self.queue.fingerprint(bulk_filter(flt, action))

    def bulk_counts(self, who: Principal, flt: ItemFilter, action: str) -> list[BulkGroup]:
        """What `act_where(who, flt, action)` would touch now, by instruction and
        connection, largest group first: what a confirmation shows. One query, on the
        same indexes as the action's own."""
        self._allow(who, flt.client_id, OPERATE)
        # The engine's filter SQL, so the count and the action can never disagree.
        flt = bulk_filter(flt, action)
        groups = self.queue.count_by(flt, ("instruction", "connection_id", "lane_id"))
        return [BulkGroup(str(i), c, lane, n) for (i, c, lane), n in groups]

    def prune(self, who: Principal, older_than: float) -> int:
        """Delete the finished items older than `older_than` seconds, of every client, and
        the notification bookkeeping of the same age; the number of items deleted."""
        from stockyard.notify import events

        self._platform(who)
        pruned = self.queue.prune(older_than)
        events.prune(self.queue.db, older_than, time.time())
        return pruned


def _failure_group(
    error: str,
    parts: list[tuple[str, int | None, int, int, int]],
    examples: dict[int, Item],
) -> FailureGroup:
    """One error's group from its (instruction, connection, items, first, last) parts and
    the items read by id: references of its oldest and newest items as examples."""
    first = min(p[3] for p in parts)
    ends = sorted({i for p in parts for i in (p[3], p[4])})
    refs = dict.fromkeys(r for i in ends if i in examples for r in examples[i].refs)
    return FailureGroup(
        error=error,
        items=sum(p[2] for p in parts),
        instructions=tuple(sorted({p[0] for p in parts})),
        connection_ids=tuple(dict.fromkeys(p[1] for p in sorted(parts, key=lambda p: p[3]))),
        refs=tuple(refs)[:_EXAMPLE_REFS],
        example=examples[first],
    )


def _chunks(values: list[int], size: int) -> list[list[int]]:
    return [values[k : k + size] for k in range(0, len(values), size)]


def _action_statuses(action: str) -> tuple[str, ...]:
    try:
        return ACTIONS[action]
    except KeyError:
        raise InvalidInput(f"action must be one of {', '.join(ACTIONS)}") from None


def bulk_filter(flt: ItemFilter, action: str) -> ItemFilter:
    """The filter a bulk action really applies: failed items when the caller named no
    status; of the statuses named, those the action applies to (an error if none)."""
    allowed = _action_statuses(action)
    if not flt.statuses:
        return replace(flt, statuses=BULK_DEFAULT_STATUSES)
    unknown = [s for s in flt.statuses if s not in STATUSES]
    if unknown:
        raise InvalidInput(f"unknown status {unknown[0]!r}; one of {', '.join(STATUSES)}")
    statuses = tuple(s for s in flt.statuses if s in allowed)
    if not statuses:
        raise InvalidInput(f"{action} applies only to {' or '.join(allowed)} items")
    return replace(flt, statuses=statuses)
