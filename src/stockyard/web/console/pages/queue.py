"""The queue, the console's landing page, in the order a 7 a.m. operator needs it: the
blocked lanes (what blocks each, since when, how many wait), the failures grouped by
error, then the waiting work in the order it will run, with true counts; with filters,
the matching items. Each list is a live region (data-refresh: console.js refetches its
fragment, keeping the operator's selection). Bulk retry and skip confirm first, with what
they touch by status, instruction and lane, and the consequences the catalog knows."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from stockyard.engine import ItemFilter
from stockyard.errors import InvalidInput, NotFound
from stockyard.service import ACTIONS
from stockyard.web.console.auth import check_csrf
from stockyard.web.console.pages.common import (
    FILTERS,
    Page,
    _back,
    _ids,
    _is_id,
    plain_problems,
)
from stockyard.web.query import Id, ItemQuery, item_filter

router = APIRouter()

PAGE_SIZE = 50  # matching items per page
PER_LANE = 5  # next items shown of each lane
FREE = 20  # next non-blocking items shown
CONFIRM_FIRST = 20  # items a bulk confirmation lists
COUNT_CAP = 10_000  # a matching list counts up to this, then says "10,000+"
REGIONS = ("blocked", "failures", "waiting", "matching")


@dataclass
class Filters:
    """The queue page's filters as typed (`raw`, to fill the form back) and as the
    filter its list applies (`query`; None when they do not read)."""

    raw: dict[str, Any]
    query: ItemQuery | None
    problem: str | None = None
    any_status: bool = False
    before: int | None = None
    params: dict[str, Any] = field(default_factory=dict)  # for links: the filters as given

    @property
    def active(self) -> bool:
        return self.any_status or any(v not in (None, "", []) for v in self.raw.values())


def _filters(request: Request) -> Filters:
    """The URL's filters, all applied together. The SKU box is a search: a
    case-insensitive prefix ("sku-ba" finds SKU-BAD). The "Queue id or number" box (`q`)
    searches references when no SKU is given: a number exactly (as an order number; the
    page itself sends a bare queue id to the item), text by its start; every status
    unless one is chosen. Error text is looked for in failed items unless a status is
    chosen (no index can search text in every finished item; docs/queue.md)."""
    params = request.query_params
    statuses = [x for x in params.getlist("status") if x]
    any_status = "any" in statuses
    raw: dict[str, Any] = {
        "status": [s for s in statuses if s != "any"],
        "instruction": [i for i in params.getlist("instruction") if i],
    }
    for name in FILTERS[2:]:
        value = params.get(name, "").strip()
        if value:
            raw[name] = value
    given = {k: v for k, v in raw.items() if v}
    if any_status:
        given["status"] = ["any"]
    search = params.get("q", "").strip()
    if search and not raw.get("ref"):
        given["q"] = search
        any_status = True  # a search looks through every status, unless one is chosen
    before = params.get("before", "")
    wanted = {k: v for k, v in raw.items() if k != "ref"}
    if raw.get("ref"):
        wanted["ref_prefix"] = raw["ref"]
    elif search:
        wanted["ref" if _is_id(search) else "ref_prefix"] = search
    if raw.get("error") and not raw["status"] and not any_status:
        wanted["status"] = ["failed"]
    try:
        query = ItemQuery.model_validate(wanted)
    except ValidationError as exc:
        return Filters(dict(given), None, _problem(exc, search), any_status, None, given)
    shown = dict(given)
    return Filters(shown, query, None, any_status, int(before) if _is_id(before) else None, given)


def _problem(exc: ValidationError, search: str) -> str:
    """Why the filters do not read, in the words of the form."""
    if search and any(e["loc"][:1] in (("ref",), ("ref_prefix",)) for e in exc.errors()):
        return "The search does not read: give at most 200 characters."
    return f"These filters do not read: {plain_problems(exc.errors())}"


def _blocked(page: Page) -> dict[str, Any]:
    lanes = [v for v in page.service.lanes(page.who, page.client_id) if v.state == "blocked"]
    heads = [v.head_id for v in lanes if v.head_id is not None]
    found = (
        page.service.items(page.who, ItemFilter(page.client_id, ids=tuple(heads)), 1000, None)
        if heads
        else []
    )
    by_id = {i.id: i for i in found}
    return {"blocked": [(v, by_id.get(v.head_id or 0)) for v in lanes]}


def _failures(page: Page) -> dict[str, Any]:
    groups, capped, newest = page.service.failure_groups(page.who, page.client_id)
    names = _names(page)
    rows = []
    for g in groups:
        own = ItemQuery(status=["failed"], error_is=g.error)
        rows.append(
            (
                g,
                own.model_dump_json(exclude_defaults=True),
                [
                    names.get(c, f"connection {c}") if c else "no connection"
                    for c in g.connection_ids
                ],
            )
        )
    return {"groups": rows, "groups_capped": capped, "groups_newest": newest}


def _waiting(page: Page) -> dict[str, Any]:
    per_lane, free = page.service.next_to_run(page.who, page.client_id, PER_LANE, FREE)
    lanes = [v for v in page.service.lanes(page.who, page.client_id) if v.pending]
    lanes.sort(key=lambda v: v.lane_id)
    waiting_filter = ItemQuery(status=["queued"]).model_dump_json(exclude_defaults=True)
    return {
        "lanes": [(v, per_lane.get(v.lane_id, [])) for v in lanes],
        "free": free,
        "waiting_filter": waiting_filter,
        "summary": page.service.queue_summary(page.who, page.client_id),
    }


def _matching(page: Page, filters: Filters) -> dict[str, Any]:
    if filters.query is None or not filters.active:
        return {"matching": None}
    flt = item_filter(page.client_id, filters.query)
    found = page.service.items(page.who, flt, PAGE_SIZE, filters.before)
    total = page.service.count(page.who, flt, COUNT_CAP)
    ref = filters.raw.get("ref", "")
    item_link = None
    if _is_id(ref) or _is_id(filters.params.get("q", "")):
        # A number may be an order number or a SKU of digits as well as a queue id.
        number = int(ref if _is_id(ref) else filters.params["q"])
        try:
            page.service.item(page.who, page.client_id, number)
            item_link = number
        except NotFound:
            pass
    more = (
        page.url("/items", **filters.params, before=found[-1].id)
        if len(found) == PAGE_SIZE
        else None
    )
    return {
        "matching": found,
        "matching_total": min(total, COUNT_CAP),
        "matching_capped": total > COUNT_CAP,
        "matching_filter": filters.query.model_dump_json(exclude_defaults=True),
        "item_link": item_link,
        "more": more,
        "paged": filters.before is not None,
    }


def _names(page: Page) -> dict[int | None, str]:
    return {c.id: c.description for c in page.service.connections(page.who, page.client_id)}


def _region(page: Page, name: str, filters: Filters) -> dict[str, Any]:
    if name == "blocked":
        return _blocked(page)
    if name == "failures":
        return _failures(page)
    if name == "waiting":
        return _waiting(page)
    return _matching(page, filters)


def _shown(filters: Filters) -> tuple[str, ...]:
    """The regions of the page: with filters, the matching items replace the failures
    and the waiting work (the blocked lanes always lead)."""
    if filters.active:
        return ("blocked", "matching")
    return ("blocked", "failures", "waiting")


@router.get("/clients/{client_id}/items")
def items(request: Request, client_id: Id) -> Response:
    page = Page(request, client_id)
    search = request.query_params.get("q", "").strip()
    by_id = _is_id(search) and not request.query_params.get("ref", "").strip()
    # A queue id, unless items hold it as a reference (an order number, a SKU of digits):
    # then the list shows them, with a link to the item too.
    if by_id and not page.service.count(page.who, ItemFilter(client_id, ref=search)):
        return RedirectResponse(page.url(f"/items/{int(search)}"), 303)
    filters = queue_filters(request)
    values: dict[str, Any] = {}
    regions = _shown(filters) if filters.query is not None else ("blocked",)
    for name in regions:
        values |= _region(page, name, filters)
    return page.render(
        "items.html",
        status=422 if filters.problem else 200,
        regions=regions,
        filters=filters.raw,
        problem=filters.problem,
        query_string=urlencode(filters.params, doseq=True),
        refresh_string=_refresh_string(filters),
        connections=page.service.connections(page.who, client_id),
        instructions=page.service.instruction_names(),
        csv=page.url("/items.csv", **filters.params),
        **values,
    )


def _refresh_string(filters: Filters) -> str:
    """The query string a live region refetches with: the filters, and the page of older
    items when one is shown (a refresh must not swap it back to the newest)."""
    params = dict(filters.params)
    if filters.before is not None:
        params["before"] = filters.before
    return urlencode(params, doseq=True)


def queue_filters(request: Request) -> Filters:
    """THE filter of the queue page, from its URL: what its list, its live parts and its
    CSV export all apply (pages/export.py), the search box with every other filter."""
    return _filters(request)


@router.get("/clients/{client_id}/items/part/{name}")
def items_part(request: Request, client_id: Id, name: str) -> Response:
    """One region of the queue page, alone: what console.js refetches every few seconds."""
    page = Page(request, client_id)
    if name not in REGIONS:
        raise NotFound(f"no part {name!r} of the queue page")
    filters = queue_filters(request)
    if filters.problem:
        raise InvalidInput(filters.problem)
    return page.render(
        "_lists.html",
        region=name,
        filters=filters.raw,
        query_string=urlencode(filters.params, doseq=True),
        refresh_string=_refresh_string(filters),
        **_region(page, name, filters),
    )


@router.get("/clients/{client_id}/items/table")
def items_table(request: Request, client_id: Id) -> Response:
    """The matching items alone (links made before the parts had names)."""
    return items_part(request, client_id, "matching")


@router.get("/clients/{client_id}/summary")
def summary(request: Request, client_id: Id) -> Response:
    """The per-state counts strip alone (a live region of every page)."""
    page = Page(request, client_id)
    return page.render(
        "_summary.html", inner=True, summary=page.service.queue_summary(page.who, client_id)
    )


def _lane_label(
    connection_id: int | None, lane_id: int | None, names: dict[int | None, str]
) -> str:
    if connection_id is None:
        return "no connection"
    what = "lane" if lane_id is not None else "connection"
    return f"{names.get(connection_id, '?')} ({what} {connection_id})"


SCOPES = ("selected", "filter", "sku")


@router.post("/clients/{client_id}/bulk")
async def bulk(request: Request, client_id: Id) -> Response:
    """Retry or skip the selected items, every item matching the filter, or every failed
    item of one SKU (exactly, in any case): first a confirmation of what it touches and
    what the catalog says will follow, then the action, on no item the confirmation did
    not count (`max_id`) or that changed since (`seen`)."""
    page = Page(request, client_id)
    await check_csrf(request, page.session)
    form = await request.form()
    action = str(form.get("action", ""))
    if action not in ACTIONS:
        raise InvalidInput("choose retry or skip")
    scope = str(form.get("scope", "selected"))
    if scope not in SCOPES:
        raise InvalidInput(f"scope: one of {', '.join(SCOPES)}")
    ids = _ids(form.getlist("ids"), "ids")
    also = _ids(form.getlist("also_skip"), "also_skip")
    query = _bulk_query(form, scope)
    back = _back(str(form.get("back", "")), page)
    if scope == "selected":
        if not ids:
            raise InvalidInput("select at least one item")
        # Picked one by one: every status the action applies to (a queued item can be
        # skipped). A filter without statuses means failed items: the service decides.
        flt = ItemFilter(client_id, ids=tuple(ids), statuses=ACTIONS[action])
    else:
        flt = item_filter(client_id, query)
    if form.get("confirmed") != "yes":
        return _confirm(page, form, action, scope, flt, query, ids, back)
    flt, changed = _as_confirmed(page, form, flt, action)
    if changed:
        # The set is not the one the operator read: they see it again first.
        return _confirm(page, form, action, scope, flt, query, ids, back, changed)
    chosen: tuple[int, ...] = ()
    if also and action == "skip":
        # The queued items the confirmation said would fail, as the server finds them
        # (before the skip): ids of the form that are no such dependant are ignored.
        listed = {i for w in page.service.skip_warnings(page.who, flt) for i in w.dependant_ids}
        chosen = tuple(i for i in also if i in listed)
    done = page.service.act_where(page.who, flt, action)
    extra: list[int] = []
    if chosen:
        dependants = ItemFilter(client_id, ids=chosen, statuses=("queued",))
        extra = page.service.act_where(page.who, dependants, "skip")
    message = _acted(action, [*done, *extra])
    separator = "&" if "?" in back else "?"
    # The message leaves the URL for a one-time cookie (console.guard): reloading the
    # page does not show it again.
    return RedirectResponse(f"{back}{separator}{urlencode({'msg': message})}", 303)


def _acted(action: str, ids: list[int]) -> str:
    """What was done, naming the items (the first five): "Skipped 1 item. See item 1234." """
    verb = "Retried" if action == "retry" else "Skipped"
    n = len(ids)
    message = f"{verb} {n:,} item{'' if n == 1 else 's'}."
    if n == 1:
        return f"{message} See item {ids[0]}."
    if n:
        named = ", ".join(str(i) for i in sorted(ids)[:5])
        return f"{message} See items {named}{' …' if n > 5 else ''}."
    return message


def _bulk_query(form: Any, scope: str) -> ItemQuery:
    """The filter of a bulk form: its JSON, or every failed item of its SKU."""
    if scope == "sku":
        sku = str(form.get("sku", "")).strip()
        if not sku:
            raise InvalidInput("give the SKU whose failed items to act on")
        try:
            return ItemQuery(ref=sku, status=["failed"])
        except ValidationError:
            raise InvalidInput("sku: a SKU has at most 200 characters") from None
    try:
        return ItemQuery.model_validate(json.loads(str(form.get("filters", "{}")) or "{}"))
    except ValueError:  # pydantic's ValidationError and JSON's decode error alike
        raise InvalidInput("the filter of this form is not readable: reload the page") from None


def _as_confirmed(
    page: Page, form: Any, flt: ItemFilter, action: str
) -> tuple[ItemFilter, str | None]:
    """The filter bounded to the items the confirmation counted (ids up to its `max_id`),
    and why to ask again when the set up to `max_id` is not the one it showed: its
    fingerprint (`seen`: the count and two sums of the ids) differs, so an item left or
    joined since (another operator's retry, an older item failing again), whatever the
    clocks of the hosts that changed them. A form without `max_id` was not made by a
    confirmation page (the API's semantics: the filter as it is)."""
    max_id = _ids([v for v in form.getlist("max_id") if v], "max_id")
    if not max_id:
        return flt, None
    flt = replace(flt, max_id=max_id[0])
    seen = str(form.get("seen", "") or "")
    if not seen:
        return flt, None
    now = page.service.bulk_fingerprint(page.who, flt, action)
    if now == seen:
        return flt, None
    was, is_ = _count_of(seen), _count_of(now)
    if was == is_:
        return flt, "Some of the items changed since you confirmed: nothing was done yet."
    diff = abs(is_ - was)
    more = "more" if is_ > was else "fewer"
    verb = "matches" if diff == 1 else "match"
    return flt, (
        f"{diff:,} {more} item{'' if diff == 1 else 's'} {verb} than when you confirmed"
        " (the items changed since you confirmed): nothing was done yet. Check again."
    )


def _count_of(fingerprint: str) -> int:
    """The count a fingerprint starts with ("3-12-40": 3 items)."""
    head = fingerprint.split("-", 1)[0]
    if not _is_id(head) and head != "0":
        raise InvalidInput("seen: the confirmation's fingerprint is not readable: reload the page")
    return int(head)


def _confirm(
    page: Page,
    form: Any,
    action: str,
    scope: str,
    flt: ItemFilter,
    query: ItemQuery,
    ids: list[int],
    back: str,
    changed: str | None = None,
) -> Response:
    flt = replace(flt, max_id=None)
    preview = page.service.bulk_preview(page.who, flt, action, CONFIRM_FIRST)
    # The newest item counted: a confirmed action touches nothing newer (`_as_confirmed`),
    # and goes ahead only on the same set up to it (`seen`).
    max_id = preview.first[0].id if preview.first else 0
    seen = page.service.bulk_fingerprint(page.who, replace(flt, max_id=max_id), action)
    names = _names(page)
    warnings = page.service.skip_warnings(page.who, flt) if action == "skip" else []
    by = _breakdown(preview.groups, names)
    return page.render(
        "confirm.html",
        action=action,
        count=preview.total,
        groups=[
            (status, instruction, _lane_label(conn, lane, names), n)
            for status, instruction, conn, lane, n in preview.groups
        ],
        by=by,
        first=preview.first,
        warnings=[_requeue(page, query, w, max_id) for w in warnings],
        failed_only=not flt.statuses,
        form=form,
        scope=scope,
        ids=ids,
        back=back,
        max_id=max_id,
        seen=seen,
        changed=changed,
    )


def _requeue(page: Page, query: ItemQuery, warning: Any, max_id: int) -> tuple[Any, str, str]:
    """The fix of a skip warning as a filter: retry the failed items of its instruction
    the skip would have touched, every one (not only those the warning looked at), with
    the fingerprint of that set as the confirmation shows it."""
    fix = query.model_copy(update={"status": ["failed"], "instruction": [warning.instruction]})
    flt = replace(item_filter(page.client_id, fix), max_id=max_id)
    seen = page.service.bulk_fingerprint(page.who, flt, "retry")
    return warning, fix.model_dump_json(exclude_defaults=True), seen


def _breakdown(
    groups: list[tuple[str, str, int | None, int | None, int]], names: dict[int | None, str]
) -> dict[str, list[tuple[str, int]]]:
    """The totals by status, by instruction and by lane, each largest first."""
    out: dict[str, dict[str, int]] = {"status": {}, "instruction": {}, "lane": {}}
    for status, instruction, conn, lane, n in groups:
        for key, value in (
            ("status", status),
            ("instruction", instruction),
            ("lane", _lane_label(conn, lane, names)),
        ):
            out[key][value] = out[key].get(value, 0) + n
    return {k: sorted(v.items(), key=lambda kv: (-kv[1], kv[0])) for k, v in out.items()}
