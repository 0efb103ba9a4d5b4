"""The console through HTTP (server-rendered pages): sign-in, finding and fixing failed
items, bulk actions with their confirmation, lanes, roles and tenancy, CSRF. The browser
tests in real Chromium are tests/test_console_browser.py."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from stockyard.samples import Samples
from stockyard.tenancy import Tenancy
from tests.support.api_env import PASSWORD, ApiEnv
from tests.support.console import sign_in


@pytest.fixture
def env(tmp_path: Path) -> Iterator[ApiEnv]:
    e = ApiEnv(f"sqlite:///{tmp_path}/console.db")
    yield e
    e.close()


def test_sign_in_is_required_and_wrong_passwords_say_so(env: ApiEnv) -> None:
    r = env.http.get(f"/console/clients/{env.a.id}/items", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/console/login?next=")
    token = re.search(r'name="csrf" value="([^"]+)"', env.http.get("/console/login").text)
    assert token
    r = env.http.post(
        "/console/login",
        data={"email": "someone@merchant-a.example", "password": "nope", "csrf": token.group(1)},
    )
    assert r.status_code == 401 and "wrong email or password" in r.text


def test_find_a_failed_item_by_sku_and_retry_it(env: ApiEnv) -> None:
    token = sign_in(env)  # an operator of client A
    base = f"/console/clients/{env.a.id}"
    # As the filter form sends it: empty fields included.
    empty = {"status": "", "instruction": "", "mode": "", "connection_id": "", "error": ""}
    page = env.http.get(f"{base}/items", params={"ref": "SKU-merchant-a", **empty}).text
    failed = page.split("<h2>Waiting")[0]
    assert f">{env.a.failed_item}</a>" in failed and "bad price" in failed
    r = env.http.get(f"{base}/items", params={"q": str(env.a.failed_item)}, follow_redirects=False)
    assert r.headers["location"].endswith(f"/items/{env.a.failed_item}")
    detail = env.http.get(r.headers["location"]).text
    assert "Retry" in detail and "&#34;product_id&#34;: 1" in detail.replace('"', "&#34;")
    # No CSRF token: refused, nothing changes.
    r = env.http.post(f"{base}/items/{env.a.failed_item}/retry")
    assert r.status_code == 403 and "reload the page" in r.text
    assert env.queue.get(env.a.id, env.a.failed_item).status == "failed"
    r = env.http.post(
        f"{base}/items/{env.a.failed_item}/retry", data={"csrf": token, "confirmed": "yes"}
    )
    assert r.status_code == 200 and "retried" in r.text
    assert env.queue.get(env.a.id, env.a.failed_item).status == "queued"


def test_bulk_skip_of_a_sku_confirms_the_count_and_unblocks_the_lane(env: ApiEnv) -> None:
    token = sign_in(env)
    base = f"/console/clients/{env.a.id}"
    form = {
        "csrf": token,
        "action": "skip",
        "scope": "sku",
        "sku": "SKU-merchant-a",
        "back": f"{base}/items",
    }
    confirm = env.http.post(f"{base}/bulk", data=form)
    assert "Skip 1 item?" in confirm.text
    assert env.queue.get(env.a.id, env.a.failed_item).status == "failed"  # not yet
    done = env.http.post(f"{base}/bulk", data=form | {"confirmed": "yes"})
    assert "Skipped 1 item." in done.text
    assert env.queue.get(env.a.id, env.a.failed_item).status == "skipped"
    lanes = env.http.get(f"{base}/lanes").text
    assert "blocked" not in lanes.split("<tbody>")[1]


def test_a_read_only_user_can_look_but_not_change(env: ApiEnv) -> None:
    env.service.set_member(env.root, env.a.id, "viewer@example.com", "read-only", PASSWORD)
    token = sign_in(env, "viewer@example.com")
    base = f"/console/clients/{env.a.id}"
    detail = env.http.get(f"{base}/items/{env.a.failed_item}").text
    assert (
        "bad price" in detail and "Retry</button>" not in detail and "Skip</button>" not in detail
    )
    assert "Skip them" not in env.http.get(f"{base}/items").text
    r = env.http.post(f"{base}/items/{env.a.failed_item}/skip", data={"csrf": token})
    assert r.status_code == 403 and "operator" in r.text
    assert env.queue.get(env.a.id, env.a.failed_item).status == "failed"


def test_another_clients_pages_do_not_exist(env: ApiEnv) -> None:
    sign_in(env)
    for path in ("/items", f"/items/{env.b.failed_item}", "/lanes"):
        r = env.http.get(f"/console/clients/{env.b.id}{path}")
        assert r.status_code == 404, path
    r = env.http.get(f"/console/clients/{env.a.id}/items/{env.b.failed_item}")
    assert r.status_code == 404


def test_live_lists_and_bad_filters(env: ApiEnv) -> None:
    sign_in(env)
    base = f"/console/clients/{env.a.id}"
    partial = env.http.get(f"{base}/items/table", params={"status": "failed"}).text
    assert "<html" not in partial and f">{env.a.failed_item}</a>" in partial
    r = env.http.get(f"{base}/items", params={"created_from": "yesterday"})
    assert r.status_code == 422 and "created_from" in r.text


def test_pages_fit_a_phone(env: ApiEnv) -> None:
    sign_in(env)
    page = env.http.get(f"/console/clients/{env.a.id}/items").text
    assert 'name="viewport" content="width=device-width' in page
    # The stylesheet is a file of its own (the console's CSP allows no inline style).
    assert 'href="/console/static/console.css"' in page
    css = env.http.get("/console/static/console.css").text
    assert "flex-wrap: wrap" in css and "overflow-x: auto" in css


def test_dashboard_draws_history_and_failures(env: ApiEnv) -> None:
    import time

    Samples(env.queue).record(time.time() - 120)
    Samples(env.queue).record(time.time())
    env.service.set_member(env.root, env.a.id, "viewer@example.com", "read-only", PASSWORD)
    sign_in(env, "viewer@example.com")
    page = env.http.get(f"/console/clients/{env.a.id}/dashboard").text
    assert page.count("<polyline") == 3
    by_instruction = page.split("Failed by instruction")[1].split("</table>")[0]
    assert "update_product" in by_instruction and "<td>1</td>" in by_instruction
    assert "Shop" in page.split("Failed by connection")[1]


def test_connections_and_notifications_pages_follow_roles(env: ApiEnv) -> None:
    base = f"/console/clients/{env.a.id}"
    sign_in(env)  # an operator: looks, cannot change
    assert "Disable…</button>" not in env.http.get(f"{base}/connections").text
    assert "Administrators of" in env.http.get(f"{base}/notifications").text
    env.service.set_member(env.root, env.a.id, "boss@example.com", "administrator", PASSWORD)
    token = sign_in(env, "boss@example.com")
    page = env.http.get(f"{base}/connections").text
    assert "Disable…</button>" in page and "Shop" in page
    r = env.http.post(
        f"{base}/connections/{env.a.channel}/disable", data={"csrf": token, "confirmed": "yes"}
    )
    assert (
        "disabled" in r.text
        and Tenancy(env.queue.db).connection(env.a.channel).status == "disabled"
    )
    r = env.http.post(
        f"{base}/notifications",
        data={
            "csrf": token,
            "kind": "email",
            "target": "ops@example.com",
            "events": "lane.stopped",
        },
    )
    assert "ops@example.com subscribed." in r.text and "lane.stopped" in r.text
    r = env.http.post(
        f"{base}/notifications",
        data={"csrf": token, "kind": "webhook", "target": "https://hooks.example.com/x"},
    )
    assert "shown only now" in r.text and "whsec_" in r.text
    assert "whsec_" not in env.http.get(f"{base}/notifications").text
    r = env.http.post(
        f"{base}/notifications", data={"csrf": token, "kind": "email", "target": "nobody"}
    )
    assert r.status_code == 422 and "email address" in r.text


def test_skip_all_waiting_leaves_the_failed_items_alone(env: ApiEnv) -> None:
    token = sign_in(env)
    base = f"/console/clients/{env.a.id}"
    page = env.http.get(f"{base}/items").text
    waiting_form = page.split("<h2>Waiting")[0].rsplit("<form", 1)[1]
    section = re.search(r'name="filters" value="([^"]*)"', waiting_form)
    assert section
    import html

    form = {
        "csrf": token,
        "action": "skip",
        "scope": "filter",
        "filters": html.unescape(section.group(1)),
        "confirmed": "yes",
    }
    env.http.post(f"{base}/bulk", data=form)
    assert env.queue.get(env.a.id, env.a.queued_item).status == "skipped"
    assert env.queue.get(env.a.id, env.a.failed_item).status == "failed"
