"""The queue page's area: the per-state summary (exact, from indexes), the consequences a
skip confirmation warns about, the item filter's search and the landing page itself."""

from __future__ import annotations

import html
import itertools
import re
import time
import types
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stockyard.accounts import Principal
from stockyard.engine import ItemFilter, Job, Outcome, Queue, Request
from stockyard.tenancy import Tenancy
from tests.support.api_env import ApiEnv
from tests.support.console import sign_in
from tests.support.migrations import migrate_to
from tests.support.queues import UrlMaker, make_queue

# ------------------------------------------------------------------------------ helpers


def _fail(queue: Queue, item_ids: set[int]) -> None:
    """Make these items failed the way a worker would: claim what can run, settle these
    as failed and the rest as done, until only failed heads are left."""
    worker = f"t-{time.monotonic_ns()}"
    queue.register_worker(worker, "test", 0)
    for _ in range(20):
        jobs = queue.claim(worker, 100)
        if not jobs:
            break
        outcomes = [
            Outcome(j, "permanent" if j.id in item_ids else "done", time.time(), "bad price")
            for j in jobs
        ]
        queue.settle(worker, outcomes)
    queue.stop_worker(worker)


def _plain_counts(queue: Queue, client: int) -> dict[str, int]:
    """The summary's figures the slow, obvious way: count(*) per status."""
    return {
        s: queue.count(ItemFilter(client, statuses=(s,))) for s in ("queued", "running", "failed")
    }


# ------------------------------------------------------------------------- the summary


def test_summary_counts_each_state_exactly(new_url: UrlMaker) -> None:
    queue = make_queue(new_url())
    tenancy = Tenancy(queue.db)
    client = tenancy.client_id("default")
    lanes = [tenancy.add_connection(client, "channel", "demo", f"Shop {k}").id for k in range(3)]
    heads = queue.enqueue(client, [Request("add_product", {}, lane) for lane in lanes])
    queue.enqueue(client, [Request("update_variant", {"n": i}, lanes[i % 3]) for i in range(9)])
    queue.enqueue(client, [Request("add_order", {"n": i}) for i in range(4)])
    worker = "w"
    queue.register_worker(worker, "test", 0)
    jobs = {j.id: j for j in queue.claim(worker, 100)}
    # Head 0 fails (its lane blocks), heads 1 and 2 keep running, the free items finish.
    outcomes = [Outcome(jobs[heads[0]], "permanent", time.time(), "bad")]
    outcomes += [Outcome(j, "done", time.time()) for i, j in jobs.items() if i not in heads]
    queue.settle(worker, outcomes)
    queue.pause(client, lanes[2], "op")

    s = queue.summary(client)
    assert (s.queued, s.running, s.failed) == (9, 2, 1)
    assert _plain_counts(queue, client) == {"queued": 9, "running": 2, "failed": 1}
    assert (s.blocked_lanes, s.paused_lanes) == (1, 1)
    queue.db.close()


def test_summary_through_the_service_checks_the_client(tmp_path: Path) -> None:
    env = ApiEnv(f"sqlite:///{tmp_path}/s.db")
    try:
        s = env.service.queue_summary(env.root, env.a.id)
        assert s.counts == {"queued": 1, "running": 0, "failed": 1}
        assert (s.blocked_lanes, s.paused_lanes) == (1, 0)
        from stockyard.errors import NotFound

        stranger = Principal("x", roles={env.b.id: "read-only"})
        with pytest.raises(NotFound):
            env.service.queue_summary(stranger, env.a.id)
    finally:
        env.close()


_ops = st.lists(
    st.tuples(
        st.sampled_from(["enqueue", "free", "claim", "fail", "finish", "skip", "retry", "pause"]),
        st.integers(0, 2),
        st.integers(1, 4),
    ),
    max_size=12,
)
_runs = itertools.count()


@pytest.fixture(scope="module")
def shared_queue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Queue]:
    queue = make_queue(f"sqlite:///{tmp_path_factory.mktemp('summary')}/q.db")
    yield queue
    queue.db.close()


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(_ops)
def test_summary_equals_plain_counts_over_random_histories(
    shared_queue: Queue, ops: list[tuple[str, int, int]]
) -> None:
    queue = shared_queue
    tenancy = Tenancy(queue.db)
    client = tenancy.ensure_client(f"c{next(_runs)}")
    lanes = [tenancy.add_connection(client, "channel", "demo", f"S{k}").id for k in range(3)]
    worker = f"w{client}"
    queue.register_worker(worker, "test", 0)
    running: list[Job] = []
    for op, lane, n in ops:
        if op == "enqueue":
            queue.enqueue(
                client, [Request("update_variant", {"n": k}, lanes[lane]) for k in range(n)]
            )
        elif op == "free":
            queue.enqueue(client, [Request("add_order", {"n": k}) for k in range(n)])
        elif op == "claim":
            running += queue.claim(worker, n)
        elif op in ("fail", "finish") and running:
            kind = "permanent" if op == "fail" else "done"
            done, running = running[:n], running[n:]
            queue.settle(worker, [Outcome(j, kind, time.time(), "x") for j in done])  # type: ignore[arg-type]
        elif op in ("skip", "retry"):
            failed = [i.id for i in queue.list_items(ItemFilter(client, statuses=("failed",)), n)]
            if failed:
                (queue.skip if op == "skip" else queue.retry)(client, failed, "op")
        elif op == "pause":
            view = next(v for v in queue.lanes(client) if v.lane_id == lanes[lane])
            (queue.resume if view.paused else queue.pause)(client, lanes[lane], "op")
    s = queue.summary(client)
    assert {"queued": s.queued, "running": s.running, "failed": s.failed} == _plain_counts(
        queue, client
    )
    views = queue.lanes(client)
    assert s.blocked_lanes == sum(v.state == "blocked" for v in views)
    assert s.paused_lanes == sum(v.state == "paused" for v in views)


# ------------------------------------------------------------------ skip consequences


@pytest.fixture
def env(tmp_path: Path) -> Iterator[ApiEnv]:
    e = ApiEnv(f"sqlite:///{tmp_path}/queue.db")
    yield e
    e.close()


def _failed_add_with_updates(env: ApiEnv) -> tuple[int, list[int], int]:
    """A failed add_product of SKU-BAD on a fresh channel, three queued updates of it
    behind it, an update of another SKU, and the same SKU's update on another channel."""
    svc, root, a = env.service, env.root, env.a
    base = {"base_url": "http://127.0.0.1:9"}
    shop = svc.create_connection(root, a.id, "channel", "http", "Shop 2", base, {}).id
    trade = svc.create_connection(root, a.id, "channel", "http", "Trade", base, {}).id
    (add,) = env.queue.enqueue(
        a.id, [Request("add_product", {"product_id": 7}, shop, ("SKU-BAD",))]
    )
    _fail(env.queue, {add})
    assert env.queue.get(a.id, add).status == "failed"
    # Queued after the add failed (before, the update would have superseded the add).
    *updates, _other = env.queue.enqueue(
        a.id,
        [
            Request("update_product", {"product_id": 7}, shop, ("SKU-BAD",)),
            Request("update_variant", {"variant_id": 1}, shop, ("SKU-BAD",)),
            Request("update_variant", {"variant_id": 2}, shop, ("SKU-BAD",)),
            Request("update_variant", {"variant_id": 3}, shop, ("SKU-OK",)),
        ],
    )
    (elsewhere,) = env.queue.enqueue(
        a.id, [Request("update_product", {"product_id": 7}, trade, ("SKU-BAD",))]
    )
    return add, updates, elsewhere


def test_skipping_a_failed_add_warns_of_the_updates_that_will_fail(env: ApiEnv) -> None:
    add, updates, elsewhere = _failed_add_with_updates(env)
    (w,) = env.service.skip_warnings(env.root, ItemFilter(env.a.id, ref="SKU-BAD"))
    assert w.instruction == "add_product"
    assert w.requeue_ids == (add,)
    # Only the same lane's items of the same SKU: another channel has its own add.
    assert w.dependant_ids == tuple(updates) and w.dependants == 3
    assert elsewhere not in w.dependant_ids
    assert "fail the same way and stop the lane again" in w.message
    assert "3 queued items" in w.message
    assert w.fix and "Re-queue" in w.fix


def test_no_warning_when_nothing_the_catalog_knows_is_skipped(env: ApiEnv) -> None:
    _failed_add_with_updates(env)
    flt = ItemFilter(env.a.id, instructions=("update_product",))
    assert env.service.skip_warnings(env.root, flt) == []
    # Queued items only: no failed add is skipped.
    assert env.service.skip_warnings(env.root, ItemFilter(env.a.id, statuses=("queued",))) == []


def test_skip_warnings_are_the_clients_own(env: ApiEnv) -> None:
    from stockyard.errors import NotFound

    _failed_add_with_updates(env)
    stranger = Principal("x", roles={env.b.id: "operator"})
    with pytest.raises(NotFound):
        env.service.skip_warnings(stranger, ItemFilter(env.a.id))


# ----------------------------------------------------------------------- the queue page


def _html_filter(page: str, before: str) -> str:
    """The `filters` JSON of the last form before `before` on the page."""
    form = page.split(before)[0].rsplit("<form", 1)[1]
    found = re.search(r'name="filters" value="([^"]*)"', form)
    assert found, form
    return html.unescape(found.group(1))


TRACE = "Traceback (most recent call last):\n" + "\n".join(
    f'  File "/srv/shop/x{k}.py", line {k}, in f\n    raise X' for k in range(40)
)


def test_the_landing_page_leads_with_the_blocked_lane(env: ApiEnv) -> None:
    sign_in(env)
    base = f"/console/clients/{env.a.id}"
    page = env.http.get(f"{base}/items").text
    blocked = page.index("1 lane blocked")
    assert blocked < page.index("Failures by error") < page.index("<h2>Waiting")
    card = page[blocked:].split("</li>")[0]
    assert f"item {env.a.failed_item}</a>" in card and "bad price" in card
    assert "Blocked since <time" in card
    # U5: one vocabulary, the count a link to the lane's waiting items.
    assert "<strong>1</strong> waiting behind the failed item</a>" in card
    assert "mode=blocking&amp;status=queued" in card
    assert f'name="ids" value="{env.a.failed_item}"' in card and "Skip item" in card
    # The regions refresh themselves (console.js), no polling attribute is left.
    assert 'data-refresh="' + base + '/items/part/blocked"' in page and "hx-trigger" not in page
    part = env.http.get(f"{base}/items/part/blocked").text
    assert "<html" not in part and "1 lane blocked" in part


def test_failures_are_grouped_by_their_error_and_acted_on_as_a_group(env: ApiEnv) -> None:
    token = sign_in(env)
    base = f"/console/clients/{env.a.id}"
    free = env.queue.enqueue(
        env.a.id, [Request("add_order", {"n": i}, refs=(f"O-{i}",)) for i in range(5)]
    )
    worker = "w-groups"
    env.queue.register_worker(worker, "test", 0)
    jobs = [j for j in env.queue.claim(worker, 10) if j.id in free]
    errors = [
        TRACE + "\nKeyError: 'price'",
        TRACE + "\nKeyError: 'price'",
        TRACE + "\nKeyError: 'sku'",
        "Timeout\nafter 30 s",
        "Timeout",
    ]
    env.queue.settle(
        worker,
        [Outcome(j, "permanent", time.time(), e) for j, e in zip(jobs, errors, strict=True)],
    )
    groups, capped, newest = env.service.failure_groups(env.root, env.a.id)
    assert not capped and newest is None
    # A long traceback is kept with its end, where the exception is.
    kept = [env.queue.get(env.a.id, i).error or "" for i in free]
    assert len(kept[0]) < len(errors[0]) and kept[0].endswith("KeyError: 'price'")
    # Equal texts are one group; two tracebacks of different exceptions are two (their
    # first lines are the same); the largest group first, then the oldest.
    assert [(g.error, g.items) for g in groups] == [
        (kept[0], 2),
        ("bad price", 1),
        (kept[2], 1),
        ("Timeout\nafter 30 s", 1),
        ("Timeout", 1),
    ]
    page = env.http.get(f"{base}/items").text
    assert "Failures by error" in page and '<details class="err"><summary>Full error' in page
    # Each group is summed up by its exception, not by "Traceback (most recent call last)".
    assert page.count('title="KeyError: &#39;price&#39;"') == 1
    # "Skip these…" of the price group: exactly its two items, by the engine's filter.
    row = page.split('title="KeyError: &#39;price&#39;"', 1)[1].split("</tr>")[0]
    group_filter = html.unescape(re.findall(r'name="filters" value="([^"]*)"', row)[0])
    form = {"csrf": token, "action": "skip", "scope": "filter", "filters": group_filter}
    confirm = env.http.post(f"{base}/bulk", data=form)
    assert "Skip 2 items?" in confirm.text
    done = env.http.post(
        f"{base}/bulk",
        data=form | {"confirmed": "yes", "back": f"{base}/items"},
        follow_redirects=False,
    )
    assert done.status_code == 303 and "msg" not in done.headers["location"]
    statuses = [env.queue.get(env.a.id, i).status for i in free]
    assert statuses == ["skipped", "skipped", "failed", "failed", "failed"]


def test_sku_search_ignores_case_finds_prefixes_and_unicode(env: ApiEnv) -> None:
    sign_in(env)
    base = f"/console/clients/{env.a.id}"
    (unicode_item,) = env.queue.enqueue(
        env.a.id, [Request("add_order", {}, refs=("SKU-ÄBÇ-straße",))]
    )
    for typed in ("sku-merchant-a", "SKU-MERCH", "sku-m"):
        page = env.http.get(f"{base}/items", params={"ref": typed}).text
        assert f">{env.a.failed_item}</a>" in page.split("<h2>Matching items")[1], typed
    page = env.http.get(f"{base}/items", params={"ref": "sku-äbç-STRASSE"}).text
    assert f">{unicode_item}</a>" in page.split("<h2>Matching items")[1]
    # "all failed items of SKU": the SKU exactly (any case), never a prefix.
    assert env.service.count(env.root, ItemFilter(env.a.id, ref="sku-MERCHANT-a")) == 2
    assert env.service.count(env.root, ItemFilter(env.a.id, ref="SKU-merch")) == 0


def test_a_number_is_also_a_reference(env: ApiEnv) -> None:
    sign_in(env)
    base = f"/console/clients/{env.a.id}"
    number = str(env.a.queued_item)  # an order number that is also a queue id
    (order_item,) = env.queue.enqueue(env.a.id, [Request("add_order", {}, refs=(number,))])
    page = env.http.get(f"{base}/items", params={"q": number}).text
    matching = page.split("<h2>Matching items")[1]
    assert f">{order_item}</a>" in matching
    assert f'href="{base}/items/{number}">item {number}</a>' in matching
    # A number nothing holds as a reference is a queue id, as before.
    r = env.http.get(f"{base}/items", params={"q": str(env.a.failed_item)}, follow_redirects=False)
    assert r.status_code == 303


def test_any_status_shows_a_skus_whole_history(env: ApiEnv) -> None:
    sign_in(env)
    base = f"/console/clients/{env.a.id}"
    env.queue.skip(env.a.id, [env.a.queued_item], "op")
    page = env.http.get(f"{base}/items", params={"ref": "SKU-merchant-a", "status": "any"}).text
    matching = page.split("<h2>Matching items")[1]
    assert f">{env.a.failed_item}</a>" in matching and f">{env.a.queued_item}</a>" in matching
    assert '<option value="any" selected>' in page


def test_a_bad_filter_keeps_the_page_and_what_was_typed(env: ApiEnv) -> None:
    sign_in(env)
    base = f"/console/clients/{env.a.id}"
    r = env.http.get(f"{base}/items", params={"created_from": "2026-13-45", "ref": "SKU-X"})
    assert r.status_code == 422
    assert 'value="2026-13-45"' in r.text and 'value="SKU-X"' in r.text
    assert 'role="alert"' in r.text and "From: use a date like" in r.text
    assert "Input should" not in r.text  # the form's words, not pydantic's
    assert 'aria-label="Main"' in r.text  # the navigation stays
    for params in ({"status": "bogus"}, {"connection_id": "abc"}):
        said = env.http.get(f"{base}/items", params=params)
        assert said.status_code == 422 and "Input should" not in said.text, params


def test_error_text_is_searched_in_failed_items(env: ApiEnv) -> None:
    sign_in(env)
    base = f"/console/clients/{env.a.id}"
    page = env.http.get(f"{base}/items", params={"error": "BAD PRICE"}).text
    assert f">{env.a.failed_item}</a>" in page.split("<h2>Matching items")[1]
    assert '"status":["failed"]' in _html_filter(page, "<h2>Matching items")


def test_counts_are_true_and_thousands_separated(env: ApiEnv) -> None:
    sign_in(env)
    base = f"/console/clients/{env.a.id}"
    env.queue.enqueue(env.a.id, [Request("add_order", {"n": i}) for i in range(1200)])
    page = env.http.get(f"{base}/items").text
    assert '<span class="queued">queued</span> 1,201' in page
    summary = env.http.get(f"{base}/summary").text
    assert "<strong>1,201</strong> queued" in summary and "<html" not in summary


def test_the_skip_confirmation_warns_and_offers_the_fixes(env: ApiEnv) -> None:
    token = sign_in(env)
    base = f"/console/clients/{env.a.id}"
    add, updates, elsewhere = _failed_add_with_updates(env)
    form = {
        "csrf": token,
        "action": "skip",
        "scope": "sku",
        "sku": "sku-bad",
        "back": f"{base}/items",
    }
    confirm = env.http.post(f"{base}/bulk", data=form).text
    assert "Skip 1 item?" in confirm and "fail the same way and stop the lane again" in confirm
    assert "Retry the failed add_product instead" in confirm
    assert "Skip also the 3 queued items of the same SKU" in confirm
    # The answer leads, focused; the other choices are secondary, after it.
    assert confirm.index("autofocus>Yes, skip 1</button>") < confirm.index("Skip also the 3")
    # The second choice: the skip, and the updates that would fail, in one go.
    also = re.findall(r'name="also_skip" value="(\d+)"', confirm)
    assert [int(i) for i in also] == updates
    env.http.post(
        f"{base}/bulk", data=form | {"confirmed": "yes", "also_skip": also}, follow_redirects=False
    )
    assert env.queue.get(env.a.id, add).status == "skipped"
    assert [env.queue.get(env.a.id, i).status for i in updates] == ["skipped"] * 3
    assert env.queue.get(env.a.id, elsewhere).status == "queued"


def test_requeueing_instead_retries_the_failed_add(env: ApiEnv) -> None:
    token = sign_in(env)
    base = f"/console/clients/{env.a.id}"
    add, updates, _ = _failed_add_with_updates(env)
    form = {"csrf": token, "action": "skip", "scope": "sku", "sku": "SKU-BAD"}
    confirm = env.http.post(f"{base}/bulk", data=form).text
    fields = _fields(confirm, "Retry the failed add_product")
    # By filter, bounded to what the confirmation counted: the failed adds it would skip.
    assert fields["action"] == ["retry"] and fields["scope"] == ["filter"]
    assert fields["max_id"] == [str(add)]
    env.http.post(f"{base}/bulk", data=fields | {"csrf": token}, follow_redirects=False)
    assert env.queue.get(env.a.id, add).status == "queued"
    assert all(env.queue.get(env.a.id, i).status == "queued" for i in updates)


def test_bad_searches_are_422_in_the_page_and_its_parts(env: ApiEnv) -> None:
    sign_in(env)
    base = f"/console/clients/{env.a.id}"
    r = env.http.get(f"{base}/items", params={"q": "9" * 300})
    assert r.status_code == 422 and 'role="alert"' in r.text
    r = env.http.get(f"{base}/items/part/matching", params={"created_to": "2026-13-45"})
    assert r.status_code == 422
    assert env.http.get(f"{base}/items/part/nothing").status_code == 404


# ------------------------------------------------ bulk actions bound to what was confirmed


def _fields(page: str, button: str) -> dict[str, list[str]]:
    """The hidden fields of the form holding `button` on the page, repeated ones kept."""
    form = page.split(button)[0].rsplit("<form", 1)[1]
    out: dict[str, list[str]] = {}
    for name, value in re.findall(r'name="(\w+)" value="([^"]*)"', form):
        out.setdefault(name, []).append(html.unescape(value))
    return out


def _running(env: ApiEnv, n: int) -> tuple[list[int], dict[int, Job], str]:
    """`n` non-blocking items, claimed (running) by a worker of the test: their ids, their
    jobs by id and the worker."""
    ids = env.queue.enqueue(env.a.id, [Request("add_order", {"n": i}) for i in range(n)])
    worker = f"w-{time.monotonic_ns()}"
    env.queue.register_worker(worker, "test", 0)
    jobs = {j.id: j for j in env.queue.claim(worker, 100) if j.id in ids}
    assert len(jobs) == n
    return ids, jobs, worker


@pytest.mark.parametrize(
    ("scope", "extra"),
    [
        ("filter", {"filters": '{"status": ["failed"]}'}),
        ("sku", {"sku": "sku-merchant-a"}),
    ],
)
def test_a_confirmed_bulk_action_leaves_alone_what_failed_after_the_confirmation(
    env: ApiEnv, scope: str, extra: dict[str, str]
) -> None:
    token = sign_in(env)
    base = f"/console/clients/{env.a.id}"
    form = {"csrf": token, "action": "retry", "scope": scope, "back": f"{base}/items"} | extra
    confirm = env.http.post(f"{base}/bulk", data=form).text
    assert "Retry 1 item?" in confirm
    fields = _fields(confirm, "Yes, retry")
    assert fields["max_id"] == [str(env.a.failed_item)]
    # Between the two clicks a new item of the same SKU fails.
    (late,) = env.queue.enqueue(env.a.id, [Request("add_order", {}, refs=("SKU-merchant-a",))])
    _fail(env.queue, {late})
    assert env.queue.get(env.a.id, late).status == "failed"
    done = env.http.post(f"{base}/bulk", data=fields | {"csrf": token}, follow_redirects=False)
    assert done.status_code == 303
    assert env.queue.get(env.a.id, env.a.failed_item).status == "queued"
    assert env.queue.get(env.a.id, late).status == "failed"  # not shown, not touched


def test_a_confirmed_bulk_action_asks_again_when_more_items_match(env: ApiEnv) -> None:
    token = sign_in(env)
    base = f"/console/clients/{env.a.id}"
    ids, running, owner = _running(env, 2)
    # The newer one fails before the confirmation, the older one (a lower id) after it.
    env.queue.settle(owner, [Outcome(running[ids[1]], "permanent", time.time(), "late")])
    form = {
        "csrf": token,
        "action": "retry",
        "scope": "filter",
        "filters": '{"status": ["failed"], "instruction": ["add_order"]}',
        "back": f"{base}/items",
    }
    confirm = env.http.post(f"{base}/bulk", data=form).text
    assert "Retry 1 item?" in confirm
    fields = _fields(confirm, "Yes, retry")
    env.queue.settle(owner, [Outcome(running[ids[0]], "permanent", time.time(), "late")])
    again = env.http.post(f"{base}/bulk", data=fields | {"csrf": token}, follow_redirects=False)
    assert again.status_code == 200 and "Retry 2 items?" in again.text
    assert "1 more item matches" in again.text
    assert [env.queue.get(env.a.id, i).status for i in ids] == ["failed", "failed"]


def test_a_bulk_form_with_an_unknown_scope_is_refused(env: ApiEnv) -> None:
    token = sign_in(env)
    base = f"/console/clients/{env.a.id}"
    form = {"csrf": token, "action": "skip", "scope": "zzz", "confirmed": "yes"}
    r = env.http.post(f"{base}/bulk", data=form | {"filters": "{}"})
    assert r.status_code == 422 and "scope" in r.text
    assert env.queue.get(env.a.id, env.a.failed_item).status == "failed"


def test_a_sku_too_long_is_a_422_not_a_500(env: ApiEnv) -> None:
    token = sign_in(env)
    base = f"/console/clients/{env.a.id}"
    form = {"csrf": token, "action": "retry", "scope": "sku", "sku": "x" * 201}
    r = env.http.post(f"{base}/bulk", data=form)
    assert r.status_code == 422 and "SKU" in r.text


def test_also_skip_takes_only_the_dependants_the_server_finds(env: ApiEnv) -> None:
    token = sign_in(env)
    base = f"/console/clients/{env.a.id}"
    add, updates, elsewhere = _failed_add_with_updates(env)
    form = {"csrf": token, "action": "skip", "scope": "sku", "sku": "SKU-BAD"}
    confirm = env.http.post(f"{base}/bulk", data=form).text
    fields = _fields(confirm, "Skip also the")
    # A tampered form names other queued items of the client as well.
    fields["also_skip"] += [str(elsewhere), str(env.a.queued_item)]
    env.http.post(f"{base}/bulk", data=fields | {"csrf": token}, follow_redirects=False)
    assert env.queue.get(env.a.id, add).status == "skipped"
    assert [env.queue.get(env.a.id, i).status for i in updates] == ["skipped"] * 3
    assert env.queue.get(env.a.id, elsewhere).status == "queued"
    assert env.queue.get(env.a.id, env.a.queued_item).status == "queued"


def test_the_warning_counts_every_failed_add_and_requeues_them_all(
    env: ApiEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stockyard.service import items as service_items

    monkeypatch.setattr(service_items, "_WARN_ITEMS", 2)
    token = sign_in(env)
    base = f"/console/clients/{env.a.id}"
    base_settings = {"base_url": "http://127.0.0.1:9"}
    shops = [
        env.service.create_connection(
            env.root, env.a.id, "channel", "http", f"Shop {k}", base_settings, {}
        ).id
        for k in range(3)
    ]
    adds = env.queue.enqueue(
        env.a.id, [Request("add_product", {}, shop, ("SKU-MANY",)) for shop in shops]
    )
    _fail(env.queue, set(adds))
    (w,) = env.service.skip_warnings(env.root, ItemFilter(env.a.id, ref="sku-many"))
    assert w.total == 3 and "3 failed add_product items" in w.message
    form = {"csrf": token, "action": "skip", "scope": "sku", "sku": "SKU-MANY"}
    confirm = env.http.post(f"{base}/bulk", data=form).text
    assert "Retry the 3 failed add_product items instead" in confirm
    fields = _fields(confirm, "Retry the 3 failed add_product")
    assert fields["action"] == ["retry"] and "ids" not in fields
    env.http.post(f"{base}/bulk", data=fields | {"csrf": token}, follow_redirects=False)
    assert [env.queue.get(env.a.id, i).status for i in adds] == ["queued"] * 3


# ----------------------------------------------------- live refresh keeps what is shown


def test_the_live_list_keeps_the_search_box_and_the_older_page(env: ApiEnv) -> None:
    sign_in(env)
    base = f"/console/clients/{env.a.id}"
    page = env.http.get(f"{base}/items", params={"q": "sku-merch"}).text
    url = html.unescape(re.findall(r'id="matching" data-refresh="([^"]*)"', page)[0])
    part = env.http.get(url).text
    assert f">{env.a.failed_item}</a>" in part and f">{env.a.queued_item}</a>" in part
    # An older page stays that page: the refresh asks for it, and gets it.
    older = {"ref": "sku-merch", "status": "any", "before": str(env.a.queued_item)}
    page = env.http.get(f"{base}/items", params=older).text
    url = html.unescape(re.findall(r'id="matching" data-refresh="([^"]*)"', page)[0])
    assert f"before={env.a.queued_item}" in url
    part = env.http.get(url).text
    assert f">{env.a.failed_item}</a>" in part and f">{env.a.queued_item}</a>" not in part


def test_a_one_letter_search_is_exact_and_long_counts_are_capped(
    env: ApiEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stockyard.web.console.pages import queue as queue_page

    sign_in(env)
    base = f"/console/clients/{env.a.id}"
    (s_item,) = env.queue.enqueue(env.a.id, [Request("add_order", {}, refs=("S",))])
    page = env.http.get(f"{base}/items", params={"ref": "s", "status": "any"}).text
    matching = page.split("<h2>Matching items")[1]
    assert f">{s_item}</a>" in matching and f">{env.a.failed_item}</a>" not in matching
    monkeypatch.setattr(queue_page, "COUNT_CAP", 2)
    env.queue.enqueue(env.a.id, [Request("add_order", {}, refs=("SKU-merchant-a",))] * 2)
    page = env.http.get(f"{base}/items", params={"ref": "sku-merch", "status": "any"}).text
    assert '<h2>Matching items <span class="muted">(2+' in page


# ------------------------------------------------------------------- migration 0008


FULLWIDTH = "\uff26\uff35\uff2c\uff2c"  # FULL in fullwidth letters
MIXED_REFS = ["SKU-Abc", "sku-abc", "plain-1", "SKU-ÄBÇ", "Straße", "ΣΊΣΥΦΟΣ", "İx", FULLWIDTH]


def _run_sql(url: str, *statements: str, **params: object) -> list[tuple[object, ...]]:
    from sqlalchemy import create_engine, text

    from stockyard.db import connect

    engine = create_engine(connect(url).sqlalchemy_url())
    try:
        with engine.begin() as conn:
            found: list[tuple[object, ...]] = []
            for sql in statements:
                result = conn.execute(text(sql), params)
                if result.returns_rows:
                    found = [tuple(r) for r in result]
            return found
    finally:
        engine.dispose()


@pytest.mark.parametrize("beforehand", [False, True])
def test_0008_folds_existing_ascii_and_unicode_references(
    empty_url: str, backend: str, beforehand: bool
) -> None:
    from stockyard.db import connect

    if beforehand and backend == "sqlite":
        pytest.skip("the column and index are built beforehand on PostgreSQL only")
    url = empty_url
    migrate_to(url, "0007")
    for n, ref in enumerate(MIXED_REFS):
        for item in (n + 1, n + 100):
            _run_sql(url, "INSERT INTO item_refs (ref, item_id) VALUES (:r, :i)", r=ref, i=item)
            # Items of two clients (7 and 8); the second batch's refs lose their items.
            if item < 100:
                _run_sql(
                    url,
                    "INSERT INTO items (id, client_id, instruction, blocking, status, payload,"
                    " description, created_at, updated_at, run_after) VALUES (:i, :c,"
                    " 'add_order', 0, 'done', '{}', '', 0, 0, 0)",
                    i=item,
                    c=7 + item % 2,
                )
    if beforehand:
        # docs/postgres.md: the column and its index made before the upgrade (there
        # CONCURRENTLY), the ASCII references folded in batches; the migration does the
        # rest (here: the rows of the second batch, and every non-ASCII one).
        _run_sql(
            url,
            'ALTER TABLE item_refs ADD COLUMN folded text COLLATE "C"',
            'UPDATE item_refs SET folded = lower(ref COLLATE "C") WHERE folded IS NULL'
            " AND ref !~ '[^\\x01-\\x7f]' AND item_id < 100",
            # An earlier recipe's index, without the client: made again with it.
            "CREATE INDEX item_refs_folded ON item_refs (folded, item_id)",
            "ALTER TABLE item_refs ADD COLUMN client_id bigint",
            "UPDATE item_refs r SET client_id = i.client_id FROM items i"
            " WHERE i.id = r.item_id AND r.item_id < 3",
        )
    connect(url).migrate()
    stored = _run_sql(url, "SELECT ref, item_id, folded, client_id FROM item_refs")
    assert len(stored) == 2 * len(MIXED_REFS)
    assert all(folded == str(ref).casefold() for ref, _, folded, _ in stored), stored
    # Each reference of an item carries the item's client; one of an item gone, none.
    assert all(
        client == (7 + int(str(item)) % 2 if int(str(item)) < 100 else None)
        for _, item, _, client in stored
    ), stored
    indexes = _run_sql(
        url,
        "SELECT indexname FROM pg_indexes WHERE tablename = 'item_refs'"
        if backend == "postgresql"
        else "SELECT name FROM sqlite_master WHERE tbl_name = 'item_refs' AND type = 'index'",
    )
    assert ("item_refs_folded",) in indexes
    if backend == "postgresql":
        (definition,) = _run_sql(
            url, "SELECT indexdef FROM pg_indexes WHERE indexname = 'item_refs_folded'"
        )
        assert "(client_id, folded, item_id)" in str(definition[0])
    else:
        info = _run_sql(url, "SELECT name FROM pragma_index_info('item_refs_folded')")
        assert [r[0] for r in info] == ["client_id", "folded", "item_id"]


def test_a_broad_prefix_finds_the_same_items_newest_first(
    queue: Queue, client_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A prefix with thousands of references in range reads the newest items in order
    (EXISTS) instead of the range as a list: the same items, the same counts."""
    from stockyard.engine import reads

    refs = ["SKU-A1", "sku-a2", "SKU-B1", "OTHER-1", "SKU-Ä"]
    ids = queue.enqueue(client_id, [Request("add_order", {}, refs=(r,)) for r in refs * 3])
    flt = ItemFilter(client_id, ref_prefix="sku-a")
    narrow = (queue.list_items(flt, 4), [queue.list_items(flt, 4, ids[-3])], queue.count(flt, 3))
    monkeypatch.setattr(reads, "_BROAD_PREFIX", 0)
    broad = (queue.list_items(flt, 4), [queue.list_items(flt, 4, ids[-3])], queue.count(flt, 3))
    assert narrow == broad
    assert [i.id for i in broad[0]] == [ids[11], ids[10], ids[6], ids[5]]
    assert broad[2] == 4  # 6 match: counted up to the cap and one more


def test_skipping_a_queued_add_warns_of_its_updates_too(env: ApiEnv) -> None:
    # Behind the lane's failed head: the add waits, its update behind it.
    add, update = env.queue.enqueue(
        env.a.id,
        [
            Request("add_product", {}, env.a.channel, ("SKU-Q",)),
            Request("update_product", {}, env.a.channel, ("SKU-Q",)),
        ],
    )
    flt = ItemFilter(env.a.id, ids=(add,), statuses=("failed", "queued"))
    (w,) = env.service.skip_warnings(env.root, flt)
    assert w.dependant_ids == (update,) and "1 queued add_product item" in w.message
    # Failed items only (a filter without statuses), as before: nothing queued is skipped.
    assert env.service.skip_warnings(env.root, ItemFilter(env.a.id, ref="SKU-Q")) == []


# ------------------------------------------------------- third review: R-D1, R-D5, R-D6


def test_a_confirmed_bulk_action_touches_no_item_that_changed_since(
    env: ApiEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """R-D1: one shown item leaves the set and an older one joins it (the count stays):
    the confirmed action must not act on the newcomer, and asks again."""
    token = sign_in(env)
    base = f"/console/clients/{env.a.id}"
    ids, running, owner = _running(env, 4)
    env.queue.settle(owner, [Outcome(running[i], "permanent", time.time(), "bad") for i in ids[1:]])
    form = {
        "csrf": token,
        "action": "retry",
        "scope": "filter",
        "filters": '{"status": ["failed"], "instruction": ["add_order"]}',
        "back": f"{base}/items",
    }
    confirm = env.http.post(f"{base}/bulk", data=form).text
    assert "Retry 3 items?" in confirm
    fields = _fields(confirm, "Yes, retry")
    assert fields["seen"][0].startswith("3-")
    env.service.act(env.root, env.a.id, "retry", [ids[2]])  # a colleague retries one
    # The late failure recorded by a worker whose clock is a minute behind (its
    # updated_at before the confirmation): the set's fingerprint, not a time, tells.
    from stockyard.engine import claims

    behind = types.SimpleNamespace(time=lambda: time.time() - 60)
    monkeypatch.setattr(claims, "time", behind)
    env.queue.settle(owner, [Outcome(running[ids[0]], "permanent", time.time(), "late")])
    monkeypatch.undo()
    assert (env.queue.get(env.a.id, ids[0]).updated_at or 0) < time.time() - 30
    again = env.http.post(f"{base}/bulk", data=fields | {"csrf": token}, follow_redirects=False)
    assert again.status_code == 200 and "changed since you confirmed" in again.text
    assert env.queue.get(env.a.id, ids[0]).status == "failed"  # never shown: untouched
    assert [env.queue.get(env.a.id, i).status for i in (ids[1], ids[3])] == ["failed"] * 2


def test_a_confirmed_bulk_action_asks_again_when_fewer_items_match(env: ApiEnv) -> None:
    token = sign_in(env)
    base = f"/console/clients/{env.a.id}"
    ids, running, owner = _running(env, 2)
    env.queue.settle(owner, [Outcome(running[i], "permanent", time.time(), "bad") for i in ids])
    form = {
        "csrf": token,
        "action": "skip",
        "scope": "filter",
        "filters": '{"status": ["failed"], "instruction": ["add_order"]}',
    }
    fields = _fields(env.http.post(f"{base}/bulk", data=form).text, "Yes, skip")
    env.service.act(env.root, env.a.id, "retry", [ids[0]])
    again = env.http.post(f"{base}/bulk", data=fields | {"csrf": token}, follow_redirects=False)
    assert again.status_code == 200 and "1 fewer item matches" in again.text
    assert "Skip 1 item?" in again.text
    assert env.queue.get(env.a.id, ids[1]).status == "failed"


def test_the_search_box_applies_every_other_filter_too(env: ApiEnv) -> None:
    """R-D5: q=ord- with instruction and status lists only what all of them match, in
    the page, its live part and the CSV alike."""
    sign_in(env)
    base = f"/console/clients/{env.a.id}"
    order, add = env.queue.enqueue(
        env.a.id,
        [
            Request("add_order", {}, refs=("ORD-1",)),
            Request("add_product", {}, env.a.channel, ("ORD-2",)),
        ],
    )
    params = {"q": "ord-", "instruction": "add_order"}
    page = env.http.get(f"{base}/items", params=params).text
    assert f'id="match-{order}"' in page and f'id="match-{add}"' not in page
    part = env.http.get(f"{base}/items/part/matching", params=params).text
    assert f'id="match-{order}"' in part and f'id="match-{add}"' not in part
    csv_text = env.http.get(f"{base}/items.csv", params=params).text
    assert f"\n{order}," in csv_text and f"\n{add}," not in csv_text
    # A chosen status narrows the search as well.
    none = env.http.get(f"{base}/items", params=params | {"status": "failed"}).text
    assert f'id="match-{order}"' not in none


def test_requeue_instead_counts_only_the_failed_adds(env: ApiEnv) -> None:
    """R-D6: a skip of failed and queued adds offers to re-queue the failed ones only,
    counted and bounded by that count."""
    token = sign_in(env)
    base = f"/console/clients/{env.a.id}"
    add, _updates, _ = _failed_add_with_updates(env)
    queued_add, *_ = env.queue.enqueue(
        env.a.id, [Request("add_product", {"product_id": 9}, env.a.channel, ("SKU-BAD",))]
    )
    flt = ItemFilter(env.a.id, ref="sku-bad", statuses=("failed", "queued"))
    w = next(w for w in env.service.skip_warnings(env.root, flt) if w.instruction == "add_product")
    assert w.total == 2 and w.failed == 1
    form = {
        "csrf": token,
        "action": "skip",
        "scope": "filter",
        "filters": '{"ref": "sku-bad", "status": ["failed", "queued"],'
        ' "instruction": ["add_product"]}',
    }
    confirm = env.http.post(f"{base}/bulk", data=form).text
    assert "Retry the failed add_product instead" in confirm
    fields = _fields(confirm, "Retry the failed add_product instead")
    assert fields["seen"][0].startswith("1-") and fields["action"] == ["retry"]
    env.http.post(f"{base}/bulk", data=fields | {"csrf": token}, follow_redirects=False)
    assert env.queue.get(env.a.id, add).status == "queued"
    assert env.queue.get(env.a.id, queued_add).status == "queued"


def test_requeue_instead_shows_when_the_failed_adds_are_beyond_those_looked_at(
    env: ApiEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stockyard.service import items as service_items

    monkeypatch.setattr(service_items, "_WARN_ITEMS", 1)
    _failed_add_with_updates(env)
    # A newer queued add of the same SKU: the only one the warning looks at.
    env.queue.enqueue(
        env.a.id, [Request("add_product", {"product_id": 9}, env.a.channel, ("SKU-BAD",))]
    )
    flt = ItemFilter(env.a.id, ref="sku-bad", statuses=("failed", "queued"))
    (w,) = env.service.skip_warnings(env.root, flt)
    assert w.failed == 1 and w.total == 2 and w.fix and "Re-queue" in w.fix


def test_failures_are_grouped_from_the_newest_failed_items_only(
    env: ApiEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """R-D3: a refresh groups a bounded number of failed items, the newest, and says so."""
    from stockyard.service import items as service_items

    sign_in(env)
    base = f"/console/clients/{env.a.id}"
    ids, running, owner = _running(env, 3)
    env.queue.settle(
        owner, [Outcome(running[i], "permanent", time.time(), f"e{k}") for k, i in enumerate(ids)]
    )
    monkeypatch.setattr(service_items, "FAILURES_GROUPED", 2)
    groups, _, newest = env.service.failure_groups(env.root, env.a.id)
    assert newest == 2 and sorted(g.error for g in groups) == ["e1", "e2"]
    page = env.http.get(f"{base}/items").text
    assert "(2 of the newest 2 failed items in 2 groups)" in page


def test_no_failures_says_so(env: ApiEnv) -> None:
    sign_in(env)
    base = f"/console/clients/{env.a.id}"
    env.service.act(env.root, env.a.id, "skip", [env.a.failed_item])
    page = env.http.get(f"{base}/items").text
    assert "No failures" in page and "0 in 0 groups" not in page


def test_another_clients_references_never_make_a_search_broad(
    env: ApiEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """R-D2: references are indexed by client; a prefix is broad by the client's own."""
    from stockyard.engine import reads

    monkeypatch.setattr(reads, "_BROAD_PREFIX", 2)
    env.queue.enqueue(env.b.id, [Request("add_order", {}, refs=(f"SKU-Z{k}",)) for k in range(5)])
    (mine,) = env.queue.enqueue(env.a.id, [Request("add_order", {}, refs=("sku-z9",))])
    r = reads.Reads(env.queue.db)
    assert not r._broad(env.a.id, "sku-z", "sku-{")
    assert r._broad(env.b.id, "sku-z", "sku-{")
    found = env.queue.list_items(ItemFilter(env.a.id, ref_prefix="SKU-Z"), 50)
    assert [i.id for i in found] == [mine]
    assert env.queue.count(ItemFilter(env.a.id, ref="sku-z1")) == 0


def test_skipping_customer_orders_says_they_never_reach_the_erp(env: ApiEnv) -> None:
    """U4: an instruction nothing depends on still loses its own work when skipped."""
    token = sign_in(env)
    base = f"/console/clients/{env.a.id}"
    erp = env.service.create_connection(
        env.root, env.a.id, "source", "http", "Tryton ERP", {"base_url": "http://127.0.0.1:9"}, {}
    ).id
    orders = env.queue.enqueue(
        env.a.id,
        [Request("add_order", {"n": k}, erp, (f"ORD-2026-140{k}",)) for k in range(5)],
    )
    _fail(env.queue, set(orders))
    (w,) = env.service.skip_warnings(env.root, ItemFilter(env.a.id, instructions=("add_order",)))
    assert w.message == (
        "5 customer orders (ORD-2026-1400 … ORD-2026-1404) will never reach Tryton ERP."
    )
    assert w.failed == 5
    form = {
        "csrf": token,
        "action": "skip",
        "scope": "filter",
        "filters": '{"instruction": ["add_order"]}',
    }
    confirm = env.http.post(f"{base}/bulk", data=form).text
    assert "will never reach Tryton ERP" in confirm
    assert "Retry the 5 failed add_order items instead" in confirm


def test_the_message_after_an_action_names_the_items(env: ApiEnv) -> None:
    token = sign_in(env)
    base = f"/console/clients/{env.a.id}"
    form = {"csrf": token, "action": "skip", "scope": "selected", "confirmed": "yes"}
    done = env.http.post(f"{base}/bulk", data=form | {"ids": str(env.a.failed_item)})
    assert f"Skipped 1 item. See item {env.a.failed_item}." in done.text


def test_the_waiting_work_is_cards_on_a_phone(env: ApiEnv) -> None:
    """U3: under 600 px each waiting item is a card: its region never scrolls sideways."""

    from tests.support import browser as support

    if not Path(support.CHROMIUM).exists():
        pytest.skip("no Chromium")
    env.queue.enqueue(
        env.a.id,
        [
            Request("add_order", {}, refs=(f"SKU-A-VERY-LONG-REFERENCE-{k:04d}-XL",))
            for k in range(3)
        ],
    )
    served = support.Served(env)
    try:
        with support.chromium() as b:
            page = support.signed_in(b, served, viewport=support.PHONE)
            page.goto(f"{served.url}/console/clients/{env.a.id}/items")
            box = page.locator("#waiting .scroll")
            wide = box.evaluate("e => e.scrollWidth - e.clientWidth")
            assert wide <= 1, wide
            label = page.locator("#waiting td[data-label=due]").first
            assert label.evaluate("e => getComputedStyle(e, '::before').content") == '"due: "'
    finally:
        served.stop()
