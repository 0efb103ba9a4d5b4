"""The lanes page through HTTP: what blocks each lane and since when, one-line errors with
the full text on demand, throughput and time to drain, pausing through a confirmation,
resuming at once, the refresh region's fragment, roles and tenancy."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stockyard.engine import Outcome, Request
from stockyard.web.console.pages.common import SUMMARY_MAX, error_summary
from stockyard.web.console.pages.lanes import _duration
from tests.support.api_env import PASSWORD, ApiEnv
from tests.support.console import csrf, sign_in
from tests.support.console_data import TRACEBACK

BASE = {"base_url": "http://127.0.0.1:9"}


@pytest.fixture
def env(tmp_path: Path) -> Iterator[ApiEnv]:
    e = ApiEnv(f"sqlite:///{tmp_path}/console.db")
    yield e
    e.close()


def add_channel(env: ApiEnv, name: str) -> int:
    return env.service.create_connection(env.root, env.a.id, "channel", "http", name, BASE, {}).id


def run(env: ApiEnv, outcomes: dict[int, str], error: str = "boom") -> None:
    """Claim and settle items as a worker would: each claimed item ends as `outcomes` says
    ("done" when not named), failures with `error`."""
    worker = f"test-{time.monotonic_ns()}"
    env.queue.register_worker(worker, "test", 0)
    for _ in range(200):  # a lane gives one item a claim
        jobs = env.queue.claim(worker, 100)
        if not jobs:
            break
        env.queue.settle(
            worker,
            [Outcome(j, outcomes.get(j.id, "done"), time.time(), error) for j in jobs],  # type: ignore[arg-type]
        )
    env.queue.stop_worker(worker)


def lane_row(page: str, description: str) -> str:
    return next(row for row in page.split("<tr id=")[1:] if description in row)


def test_lanes_show_what_blocks_since_when_and_the_full_error_on_demand(env: ApiEnv) -> None:
    sign_in(env)
    shop = add_channel(env, "Outlet " + "very-long-name-" * 10)
    trace = "Traceback (most recent call last):\n" + "  File x.py, line 1\n" * 60 + "ValueError: no"
    ids = env.queue.enqueue(
        env.a.id, [Request("update_product", {"product_id": n}, shop) for n in range(5)]
    )
    before = time.time()
    run(env, {ids[0]: "permanent"})  # the head failed; four wait behind it
    page = env.http.get(f"/console/clients/{env.a.id}/lanes").text
    row = lane_row(page, "Outlet")
    assert 'class="state blocked">blocked<' in row
    assert f">{ids[0]}</a>" in row and "boom" in row
    assert '<td class="num" data-label="waiting">4</td>' in row  # waiting behind the head
    stopped = env.queue.lanes(env.a.id)
    lane = next(x for x in stopped if x.description.startswith("Outlet"))
    assert lane.stopped_at is not None and lane.stopped_at >= before - 1
    assert "<time datetime=" in row.split('<td class="num" data-label="waiting">4</td>')[1]
    # A traceback: one line shown, the whole text (line breaks kept) behind <details>.
    env.queue.retry(env.a.id, [ids[0]], "test")
    run(env, {ids[0]: "permanent"}, trace)
    row = lane_row(env.http.get(f"/console/clients/{env.a.id}/lanes").text, "Outlet")
    assert '<div class="error">ValueError: no</div>' in row  # what went wrong, not "Traceback"
    assert "<details><summary>full error</summary><pre>Traceback" in row
    assert "line 1\n  File" in row


def test_throughput_and_time_to_drain(env: ApiEnv) -> None:
    sign_in(env)
    shop = add_channel(env, "Busy shop")
    env.queue.enqueue(
        env.a.id, [Request("update_product", {"product_id": n}, shop) for n in range(30)]
    )
    run(env, {})  # 30 finished in the last 15 minutes: 2 a minute
    env.queue.enqueue(
        env.a.id, [Request("update_product", {"product_id": 100 + n}, shop) for n in range(10)]
    )
    row = lane_row(env.http.get(f"/console/clients/{env.a.id}/lanes").text, "Busy shop")
    assert "2.0<span" in row and "5 min" in row  # 10 pending at 2 a minute
    # Another client's finished items are not this lane's pace.
    rates = env.service.lane_rates(env.root, env.b.id, env.queue.lanes(env.b.id))
    assert all(r.per_minute == 0 for r in rates.values())
    # Idle: nothing to drain.
    idle = lane_row(env.http.get(f"/console/clients/{env.a.id}/lanes").text, "ERP")
    assert '<td data-label="time to drain">—</td>' in idle


def test_error_summaries_say_what_went_wrong_on_one_line() -> None:
    assert error_summary("bad price") == "bad price"
    assert error_summary("first\nsecond") == "first"
    assert error_summary("Traceback (most recent call last):\n  File x\nKeyError: 'sku'\n") == (
        "KeyError: 'sku'"
    )
    assert error_summary("x" * 500).endswith("…") and len(error_summary("x" * 500)) == SUMMARY_MAX
    # An exception message over several lines is one line, cut at a word, never mid-word.
    trace = (
        'Traceback (most recent call last):\n  File "x.py", line 1\n    f()\n'
        "ValueError: no\nprice; set one"
    )
    assert error_summary(trace) == "ValueError: no price; set one"
    long = error_summary("word " * 200)
    assert long.endswith("word…") and len(long) <= SUMMARY_MAX


def test_a_long_exceptions_summary_keeps_what_to_do() -> None:
    """The exception's lines are joined before the cut: the fix it names is not lost to
    the first line break (usability walkthrough U1)."""
    summary = error_summary(TRACEBACK)
    assert summary.startswith("KeyError: \"account_category: product 'café-2'")
    assert "has no account category; the channel needs a tax rate" in summary
    assert "in Tryton (Product > Accounting) and retry." in summary
    assert "\n" not in summary
    assert error_summary(None) == ""


def test_durations_read_as_a_person_says_them() -> None:
    assert _duration(None) == "—"
    assert _duration(0.2) == "under a minute"
    assert _duration(12.4) == "12 min"
    assert _duration(200) == "3 h 20 min"
    assert _duration(60 * 24 * 2 + 240) == "2 d 4 h"


def test_pause_is_confirmed_and_resume_acts_at_once(env: ApiEnv) -> None:
    token = sign_in(env)
    base = f"/console/clients/{env.a.id}"
    lane = env.a.source  # a connection's lane has the connection's id
    r = env.http.post(f"{base}/lanes/{lane}/pause", data={"csrf": token})
    assert r.status_code == 200 and "Pause the lane of ERP?" in r.text
    assert "nothing more starts" in r.text and "Nothing is lost" in r.text
    assert 'name="confirmed" value="yes"' in r.text
    assert not next(x for x in env.queue.lanes(env.a.id) if x.lane_id == lane).paused
    r = env.http.post(f"{base}/lanes/{lane}/pause", data={"csrf": token, "confirmed": "yes"})
    assert r.status_code == 200 and "paused" in r.text
    assert next(x for x in env.queue.lanes(env.a.id) if x.lane_id == lane).paused
    assert "Resume</button>" in lane_row(env.http.get(f"{base}/lanes").text, "ERP")
    r = env.http.post(f"{base}/lanes/{lane}/resume", data={"csrf": token})
    assert r.status_code == 200
    assert not next(x for x in env.queue.lanes(env.a.id) if x.lane_id == lane).paused
    # No CSRF token: refused.
    r = env.http.post(f"{base}/lanes/{lane}/pause", data={"confirmed": "yes"})
    assert r.status_code == 403


def test_a_blocked_lanes_head_can_be_retried_or_skipped_from_the_lanes_page(
    env: ApiEnv,
) -> None:
    """The lanes page acts on what stops a lane: Retry… and Skip… of its head, through
    the item's confirmation (usability walkthrough U8)."""
    token = sign_in(env)
    base = f"/console/clients/{env.a.id}"
    page = env.http.get(f"{base}/lanes").text
    assert "<th>head item</th>" in page and "blocking item" not in page
    shop = lane_row(page, "Shop")
    head = env.a.failed_item
    for action, label in (("retry", "Retry…"), ("skip", "Skip…")):
        form = shop.split(f'action="{base}/items/{head}/{action}"')[1].split("</form>")[0]
        assert 'name="confirmed"' not in form  # the item's confirmation comes first
        assert f'aria-label="{label[:-1]} item {head}, the head of lane Shop…"' in form
        assert f">{label}</button>" in form
    assert 'aria-label="Pause lane Shop…"' in shop
    # Only a blocked lane's head: a running or idle lane's head is not to be skipped here.
    erp = lane_row(page, "ERP")
    assert "/retry" not in erp and "/skip" not in erp
    assert 'aria-label="Pause lane ERP…"' in erp
    lanes = f"{base}/lanes"
    assert f'name="back" value="{lanes}"' in form
    confirm = env.http.post(f"{base}/items/{head}/skip", data={"csrf": token, "back": lanes})
    assert confirm.status_code == 200 and 'name="confirmed" value="yes"' in confirm.text
    assert env.queue.get(env.a.id, head).status == "failed"
    # Confirmed, the operator is back on the lanes page, the message not in the URL.
    assert f'name="back" value="{lanes}"' in confirm.text and f'href="{lanes}"' in confirm.text
    done = env.http.post(
        f"{base}/items/{head}/skip",
        data={"csrf": token, "back": lanes, "confirmed": "yes"},
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"] == lanes
    assert env.queue.get(env.a.id, head).status == "skipped"
    # Another site is no place to go back to.
    away = env.http.post(
        f"{base}/items/{head}/retry", data={"csrf": token, "back": "https://evil.example/"}
    )
    assert away.status_code == 422


def test_pausing_a_blocked_lane_says_nothing_runs_and_it_stays_stopped(env: ApiEnv) -> None:
    token = sign_in(env)
    base = f"/console/clients/{env.a.id}"
    shop = env.http.post(f"{base}/lanes/{env.a.channel}/pause", data={"csrf": token}).text
    assert "Pause the lane of Shop?" in shop
    assert "Nothing runs in it now: its head item failed" in shop
    assert "stays stopped after a retry or skip until someone resumes it" in shop
    assert "the item running now finishes" not in shop
    assert "1 item waiting behind the failed item" in shop
    erp = env.http.post(f"{base}/lanes/{env.a.source}/pause", data={"csrf": token}).text
    assert "the item running now finishes" in erp and "failed item" not in erp


def test_read_only_users_are_offered_no_retry_or_skip_on_the_lanes_page(env: ApiEnv) -> None:
    env.service.set_member(env.root, env.a.id, "viewer@example.com", "read-only", PASSWORD)
    sign_in(env, "viewer@example.com")
    page = env.http.get(f"/console/clients/{env.a.id}/lanes").text
    assert "Retry…" not in page and "Skip…" not in page


def test_the_table_is_a_refresh_region_with_its_own_fragment(env: ApiEnv) -> None:
    sign_in(env)
    base = f"/console/clients/{env.a.id}"
    page = env.http.get(f"{base}/lanes").text
    assert 'id="lanes-table"' in page and f'data-refresh="{base}/lanes/table"' in page
    fragment = env.http.get(f"{base}/lanes/table").text
    assert "<html" not in fragment and "<table" in fragment and "Shop" in fragment
    blocked = env.http.get(f"{base}/lanes", params={"state": "blocked"}).text
    assert "Shop" in blocked and 'id="lane-' in blocked and "ERP" not in blocked.split("<tbody>")[1]
    assert env.http.get(f"{base}/lanes", params={"state": "sleepy"}).status_code == 422


def test_read_only_users_see_lanes_but_cannot_pause(env: ApiEnv) -> None:
    env.service.set_member(env.root, env.a.id, "viewer@example.com", "read-only", PASSWORD)
    sign_in(env, "viewer@example.com")
    base = f"/console/clients/{env.a.id}"
    page = env.http.get(f"{base}/lanes").text
    assert "Shop" in page and "Pause" not in page
    token = csrf(page)
    r = env.http.post(f"{base}/lanes/{env.a.source}/pause", data={"csrf": token})
    assert r.status_code == 403 and "Pause the lane" not in r.text


def test_another_clients_lanes_do_not_exist(env: ApiEnv) -> None:
    token = sign_in(env)
    for path in ("/lanes", "/lanes/table"):
        assert env.http.get(f"/console/clients/{env.b.id}{path}").status_code == 404
    r = env.http.post(
        f"/console/clients/{env.a.id}/lanes/{env.b.source}/pause", data={"csrf": token}
    )
    assert r.status_code == 404
    r = env.http.post(
        f"/console/clients/{env.a.id}/lanes/{env.b.source}/pause",
        data={"csrf": token, "confirmed": "yes"},
    )
    assert r.status_code == 404
    assert not next(x for x in env.queue.lanes(env.b.id) if x.lane_id == env.b.source).paused


def test_throughput_and_audit_pages_read_through_their_indexes(env: ApiEnv) -> None:
    """SQLite's plans: the throughput walks the items finished in the window only (never a
    client's whole history through items_client), the audit page the client's entries."""
    from stockyard.db import load_queries

    def plan(package: str, filename: str, name: str, **params: object) -> str:
        query = load_queries(package, filename).for_backend("sqlite")[name]
        conn = env.queue.db.connection()
        rows = conn.execute(f"EXPLAIN QUERY PLAN {query.sql}", params).fetchall()
        return "\n".join(str(r[3]) for r in rows)

    lanes = plan("stockyard", "samples.sql", "finished_by_lane", client_id=1, since=0.0)
    assert "items_finished" in lanes and "items_client" not in lanes, lanes
    audit = plan(
        "stockyard.tenancy",
        "queries.sql",
        "audit_window",
        client_id=1,
        before=10,
        limit=50,
        actor=None,
        action=None,
    )
    assert "audit_client" in audit, audit
