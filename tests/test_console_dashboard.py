"""The dashboard and the audit log through HTTP: charts with axes, values on hover and a
range to choose; failure bars that lead to the queue; lane states; the refresh region's
fragment; the audit log's paging, filters, roles and tenancy."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from stockyard.errors import Forbidden
from stockyard.samples import Samples
from stockyard.web.console.pages.dashboard import BUCKETS
from tests.support import browser as support
from tests.support.api_env import PASSWORD, ApiEnv
from tests.support.browser import PHONE, Served, fits, needs_chromium, shot, signed_in
from tests.support.console import sign_in

browser, served = support.browser, support.served  # the shared fixtures


@pytest.fixture
def env(tmp_path: Path) -> Iterator[ApiEnv]:
    e = ApiEnv(f"sqlite:///{tmp_path}/console.db")
    yield e
    e.close()


def record_history(env: ApiEnv) -> None:
    now = time.time()
    for minutes in (50, 30, 2, 0):
        Samples(env.queue).record(now - minutes * 60)


def test_charts_have_axes_times_and_a_value_per_bucket(env: ApiEnv) -> None:
    record_history(env)
    sign_in(env)
    page = env.http.get(f"/console/clients/{env.a.id}/dashboard").text
    assert page.count("<polyline") == 3
    failed = page.split('id="chart-failed"')[1].split("</figure>")[0]
    # y axis: 0, the middle and the peak (one failed item)
    assert re.findall(r'<text class="tick"[^>]*>([^<]+)</text>', failed) == ["0", "0.5", "1"]
    # x axis: <time> elements console.js shows in the viewer's zone
    assert failed.split('class="x-axis"')[1].split("</div>")[0].count("<time datetime=") == 3
    titles = re.findall(r"<title>([^<]+)</title>", failed)
    assert len(titles) == BUCKETS
    assert any(t.endswith(": 1") and "UTC" in t for t in titles)
    assert "no sample" in titles[0]
    # drill-down: the failed chart leads to the failed items
    assert f'href="/console/clients/{env.a.id}/items?status=failed"' in failed
    assert "Values as a table" in failed


def test_the_range_is_a_choice_and_a_bad_one_is_a_422(env: ApiEnv) -> None:
    record_history(env)
    sign_in(env)
    base = f"/console/clients/{env.a.id}"
    page = env.http.get(f"{base}/dashboard", params={"range": "1h"}).text
    assert 'aria-current="true">1h</a>' in page and "each point 1 min" in page
    assert f'data-refresh="{base}/dashboard/panel?range=1h"' in page
    week = env.http.get(f"{base}/dashboard", params={"range": "7d"}).text
    assert "each point 168 min" in week
    r = env.http.get(f"{base}/dashboard", params={"range": "2y"})
    assert r.status_code == 422 and "range" in r.text


def test_failure_bars_link_to_the_queue_and_name_their_connection(env: ApiEnv) -> None:
    from stockyard.engine import Request

    [loose] = env.queue.enqueue(env.a.id, [Request("sync_order", {"n": 1})])
    env._fail(loose)  # a failure without a connection
    sign_in(env)
    base = f"/console/clients/{env.a.id}"
    page = env.http.get(f"{base}/dashboard").text
    by_instruction = page.split("Failed by instruction")[1].split("</table>")[0]
    assert f'href="{base}/items?status=failed&amp;instruction=update_product"' in by_instruction
    assert "<td>1</td>" in by_instruction
    by_connection = page.split("Failed by connection")[1].split("</table>")[0]
    link = f'href="{base}/items?status=failed&amp;connection_id={env.a.channel}">Shop</a>'
    assert link in by_connection
    assert "no connection" in by_connection and ">none<" not in by_connection


def test_lane_states_link_to_the_lanes_page(env: ApiEnv) -> None:
    sign_in(env)
    base = f"/console/clients/{env.a.id}"
    page = env.http.get(f"{base}/dashboard").text
    states = page.split('class="lane-states"')[1].split("</ul>")[0]
    assert f'href="{base}/lanes?state=blocked"><strong>1</strong> blocked' in states
    assert "<strong>0</strong> paused" in states
    assert "idle" in states


def test_the_panel_is_a_refresh_region_with_its_own_fragment(env: ApiEnv) -> None:
    sign_in(env)
    base = f"/console/clients/{env.a.id}"
    page = env.http.get(f"{base}/dashboard").text
    assert 'id="dashboard-panel"' in page
    fragment = env.http.get(f"{base}/dashboard/panel", params={"range": "6h"}).text
    assert "<html" not in fragment and "<header" not in fragment
    assert "Failed by connection" in fragment and "The last 6h" in fragment
    assert env.http.get(f"/console/clients/{env.b.id}/dashboard/panel").status_code == 404


def test_a_read_only_user_sees_the_dashboard_and_another_client_does_not_exist(
    env: ApiEnv,
) -> None:
    env.service.set_member(env.root, env.a.id, "viewer@example.com", "read-only", PASSWORD)
    sign_in(env, "viewer@example.com")
    assert env.http.get(f"/console/clients/{env.a.id}/dashboard").status_code == 200
    assert env.http.get(f"/console/clients/{env.b.id}/dashboard").status_code == 404


# ------------------------------------------------------------------------------ audit log


def test_audit_log_newest_first_with_links_and_paging(env: ApiEnv) -> None:
    token = admin(env)
    base = f"/console/clients/{env.a.id}"
    env.http.post(f"{base}/lanes/{env.a.source}/pause", data={"csrf": token, "confirmed": "yes"})
    env.http.post(f"{base}/lanes/{env.a.source}/resume", data={"csrf": token})
    for n in range(60):
        env.service.tenancy.record(env.a.id, "user:bulk@example.com", "note", {"n": n})
    page = env.http.get(f"{base}/audit").text
    rows = page.split("<tbody>")[1].split("</tbody>")[0].split("<tr>")[1:]
    assert len(rows) == 50
    assert "&#34;n&#34;" not in rows[0] and "59" in rows[0]  # newest first
    older = re.search(r'href="([^"]+)" rel="next"', page)
    assert older
    rest = env.http.get(older.group(1).replace("&amp;", "&")).text
    assert "resume" in rest and "pause" in rest
    assert f'href="{base}/lanes#lane-{env.a.source}"' in rest
    assert "<time datetime=" in rest


def test_audit_log_filters_by_actor_and_action(env: ApiEnv) -> None:
    token = admin(env)
    base = f"/console/clients/{env.a.id}"
    env.http.post(
        f"{base}/items/{env.a.failed_item}/skip", data={"csrf": token, "confirmed": "yes"}
    )
    env.service.tenancy.record(env.a.id, "user:other@example.com", "note", {"x": 1})
    page = env.http.get(f"{base}/audit", params={"action": "skip"}).text
    body = page.split("<tbody>")[1].split("</tbody>")[0]
    assert "skip" in body and "note" not in body
    assert f'href="{base}/items/{env.a.failed_item}"' in body
    page = env.http.get(f"{base}/audit", params={"actor": "user:other@example.com"}).text
    body = page.split("<tbody>")[1].split("</tbody>")[0]
    assert "note" in body and "skip" not in body
    page = env.http.get(f"{base}/audit", params={"action": "nothing-like-it"}).text
    assert "No entries match." in page
    assert env.http.get(f"{base}/audit", params={"before": "abc"}).status_code == 422


def test_a_rare_action_pages_on_past_the_window(env: ApiEnv) -> None:
    env.service.tenancy.record(env.a.id, "user:x", "rare", {})
    for n in range(120):
        env.service.tenancy.record(env.a.id, "user:x", "common", {"n": n})
    entries, next_before = env.service.audit_page(env.root, env.a.id, None, 1, action="rare")
    assert entries == [] and next_before is not None  # the window of 100 held none
    entries, next_before = env.service.audit_page(env.root, env.a.id, next_before, 1, action="rare")
    assert [e.action for e in entries] == ["rare"]


SECRET_HOOK = "https://hooks.example/T0K3N-secret-in-the-path?token=s3cr3t-query"
MEMBER = "new.hire@merchant-a.example"


def admin(env: ApiEnv) -> str:
    env.service.set_member(env.root, env.a.id, "boss@example.com", "administrator", PASSWORD)
    return sign_in(env, "boss@example.com")


def record_admin_secrets(env: ApiEnv) -> None:
    """Entries only an administrator may read: a webhook's URL carrying its token, a
    member's email."""
    env.service.subscribe(env.root, env.a.id, "webhook", SECRET_HOOK, [], [])
    env.service.set_member(env.root, env.a.id, MEMBER, "read-only", PASSWORD)


def test_audit_log_is_the_clients_own_and_for_administrators(env: ApiEnv) -> None:
    env.service.tenancy.record(env.b.id, "user:b@example.com", "secret-of-b", {})
    record_admin_secrets(env)
    admin(env)
    page = env.http.get(f"/console/clients/{env.a.id}/audit")
    assert page.status_code == 200 and "secret-of-b" not in page.text
    assert "T0K3N-secret-in-the-path" in page.text and MEMBER in page.text
    nav = page.text.split('<nav aria-label="Main">')[1].split("</nav>")[0]
    assert ">Audit</a>" in nav
    assert env.http.get(f"/console/clients/{env.b.id}/audit").status_code == 404


@pytest.mark.parametrize("role", ["read-only", "operator"])
def test_audit_log_is_refused_to_other_roles_inside_the_layout(env: ApiEnv, role: str) -> None:
    """The API's audit trail needs an administrator (webhook URLs with their tokens,
    members' emails, key names): the console's asks the same."""
    record_admin_secrets(env)
    env.service.set_member(env.root, env.a.id, "someone-else@example.com", role, PASSWORD)
    sign_in(env, "someone-else@example.com")
    base = f"/console/clients/{env.a.id}"
    for path in ("/audit", "/audit?action=subscription.add", "/audit?actor=user:root"):
        page = env.http.get(base + path)
        assert page.status_code == 403, path
        assert '<nav aria-label="Main">' in page.text  # the layout, a way on
        assert "T0K3N" not in page.text and "s3cr3t" not in page.text
        assert MEMBER not in page.text
    for path in ("/items", "/lanes", "/dashboard"):
        page = env.http.get(base + path).text
        nav = page.split('<nav aria-label="Main">')[1].split("</nav>")[0]
        assert "Audit" not in nav and "/audit" not in nav
        assert "T0K3N" not in page and MEMBER not in page
    # The service refuses too, whatever page asks.
    key = env.service.authenticate(env.a.tokens[role])
    with pytest.raises(Forbidden):
        env.service.audit_page(key, env.a.id)


# ------------------------------------------------------------------------- in a browser


@needs_chromium
class TestInChromium:
    """The dashboard as a person sees it, in Debian's Chromium."""

    @pytest.fixture
    def env(self, tmp_path: Path) -> Iterator[ApiEnv]:
        e = ApiEnv(f"sqlite:///{tmp_path}/browser.db")
        record_history(e)
        yield e
        e.close()

    def test_axes_hover_values_and_a_phone(
        self, browser: Browser, served: Served, env: ApiEnv
    ) -> None:
        page = signed_in(browser, served, timezone_id="Asia/Tokyo")
        page.goto(f"{served.url}/console/clients/{env.a.id}/dashboard?range=1h")
        failed = page.locator("figure.chart").nth(2)
        ticks = failed.locator("svg text.tick").all_text_contents()
        assert ticks == ["0", "0.5", "1"]
        # The times under the chart are the viewer's (Tokyo), not the server's UTC text.
        first = failed.locator(".x-axis time").first
        assert "UTC" not in first.inner_text()
        # Hovering a bucket that has a sample shows its value in a tooltip (<title>).
        titles = failed.locator("rect.hit title").all_text_contents()
        hit = next(i for i, t in enumerate(titles) if t.endswith(": 1"))
        target = failed.locator("rect.hit").nth(hit)
        target.hover()
        # The pointer is on that bucket's target, whose <title> Chromium shows as a tooltip.
        assert target.evaluate("e => e.matches(':hover') && e.querySelector('title') !== null")
        shot(page, "dashboard-desktop-own")
        phone = signed_in(browser, served, viewport=PHONE)
        phone.goto(f"{served.url}/console/clients/{env.a.id}/dashboard")
        assert fits(phone)
        shot(phone, "dashboard-phone-own")
        phone.goto(f"{served.url}/console/clients/{env.a.id}/lanes")
        assert fits(phone)
        shot(phone, "lanes-phone-own")
