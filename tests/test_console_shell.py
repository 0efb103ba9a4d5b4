"""The console's shell: the layout every client page shares (navigation, skip link,
search box), errors that keep the operator's place, confirmations for disabling a
connection and removing a subscription, one-time messages; and in real Chromium, the
live refresh that keeps work in progress, times in the viewer's zone, shortcuts, and a
phone's width with a very long connection name."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest
from playwright.sync_api import Browser, Page, Route

from stockyard.errors import InvalidInput
from stockyard.tenancy import Tenancy
from stockyard.web.console.pages.common import Page as ConsolePage
from stockyard.web.console.pages.common import _back
from tests.support import browser as support
from tests.support.api_env import PASSWORD, ApiEnv
from tests.support.browser import PHONE, Served, fits, needs_chromium, shot, signed_in
from tests.support.console import sign_in

browser = support.browser  # the shared fixtures
served = support.served


@pytest.fixture
def env(tmp_path: Path) -> Iterator[ApiEnv]:
    e = ApiEnv(f"sqlite:///{tmp_path}/shell.db")
    yield e
    e.close()


def admin(env: ApiEnv) -> str:
    env.service.set_member(env.root, env.a.id, "boss@example.com", "administrator", PASSWORD)
    return sign_in(env, "boss@example.com")


# ------------------------------------------------------------------------ the layout


def test_every_client_page_has_the_navigation_skip_link_and_search(env: ApiEnv) -> None:
    sign_in(env)
    base = f"/console/clients/{env.a.id}"
    for path, label in (("/lanes", "Lanes"), ("/connections", "Connections")):
        page = env.http.get(base + path).text
        assert page.index('class="skip" href="#main"') < page.index("<header")
        assert '<main id="main" tabindex="-1">' in page
        nav = page.split('<nav aria-label="Main">')[1].split("</nav>")[0]
        for name in ("Queue", "Lanes", "Dashboard", "Connections", "Notifications"):
            assert f">{name}</a>" in nav
        assert ">Audit</a>" not in nav  # an operator's: the audit log is administrators'
        current = re.findall(r'<a href="([^"]+)" aria-current="page">([^<]+)</a>', nav)
        assert current == [(base + path, label)]
        search = page.split('role="search"')[1].split("</form>")[0]
        assert f'action="{base}/search"' in search and 'id="search" name="q"' in search
        assert '<label for="search"' in search
        assert 'id="refresh"' in page


def test_an_error_keeps_the_layout_and_a_way_back(env: ApiEnv) -> None:
    sign_in(env)
    base = f"/console/clients/{env.a.id}"
    came_from = f"http://testserver{base}/lanes"
    r = env.http.get(f"{base}/items/999999", headers={"referer": came_from})
    assert r.status_code == 404
    assert '<nav aria-label="Main">' in r.text and f'href="{base}/lanes">Back</a>' in r.text
    # A link from another site is no way back: the client's queue is.
    r = env.http.get(f"{base}/items/999999", headers={"referer": "https://evil.example/x"})
    assert f'href="{base}/items">Back</a>' in r.text and "evil.example" not in r.text


# Paths that leave the console once a browser resolves their dot segments (also when
# percent-encoded: the URL standard reads %2e as a dot) or whose "//" starts a host.
ESCAPING_PATHS = [
    "/console/../../x",
    "/console/clients/1/../../../admin",
    "/console/./clients/1/items",
    "/console/clients/1/items/..",
    "/console/%2e%2e/x",
    "/console/.%2E/x",
    "/console//evil.example/x",
    "/console/clients//items",
]


@pytest.mark.parametrize("value", ESCAPING_PATHS)
def test_a_return_path_with_dot_segments_or_double_slashes_is_refused(value: str) -> None:
    with pytest.raises(InvalidInput):
        _back(value, cast(ConsolePage, None))


@pytest.mark.parametrize(
    "value",
    [
        "/console/clients/1/items",
        "/console/clients/1/items?ref=a..b&q=./x//y",  # the query is no path
        "/console/clients/1/items/v1.2",
        "/console/clients/1/items/",
    ],
)
def test_a_plain_console_path_is_a_return_path(value: str) -> None:
    assert _back(value, cast(ConsolePage, None)) == value


def test_an_escaping_referer_is_no_way_back(env: ApiEnv) -> None:
    sign_in(env)
    base = f"/console/clients/{env.a.id}"
    for path in ESCAPING_PATHS:
        r = env.http.get(f"{base}/items/999999", headers={"referer": f"http://testserver{path}"})
        assert r.status_code == 404
        assert f'href="{base}/items">Back</a>' in r.text, path


def test_a_bad_filter_comes_back_with_the_other_filters_kept(env: ApiEnv) -> None:
    sign_in(env)
    base = f"/console/clients/{env.a.id}"
    params = {"ref": "SKU-merchant-a", "error": "bad price", "created_from": "yesterday"}
    r = env.http.get(f"{base}/items", params=params)
    assert r.status_code == 422 and "created_from" in r.text
    assert '<nav aria-label="Main">' in r.text
    # Whether the queue page shows its own filter form or the error page its generic one,
    # every filter is there to correct, none lost.
    form = r.text.split(f'action="{base}/items"')[1].split("</form>")[0]
    for value in params.values():
        assert f'value="{value}"' in form


def test_another_clients_error_page_says_nothing_of_it(env: ApiEnv) -> None:
    sign_in(env)
    r = env.http.get(f"/console/clients/{env.b.id}/lanes")
    assert r.status_code == 404
    assert env.b.name not in r.text and '<nav aria-label="Main">' not in r.text


# ------------------------------------------------------------- confirmations, messages


def test_disabling_a_connection_asks_first_and_says_what_stops(env: ApiEnv) -> None:
    token = admin(env)
    base = f"/console/clients/{env.a.id}"
    r = env.http.post(f"{base}/connections/{env.a.channel}/disable", data={"csrf": token})
    assert r.status_code == 200 and "Disable Shop?" in r.text
    assert "lane pauses" in r.text and "refused" in r.text
    assert Tenancy(env.queue.db).connection(env.a.channel).status != "disabled"
    form = r.text.split(f'action="{base}/connections/{env.a.channel}/disable"')[1]
    assert 'name="confirmed" value="yes"' in form.split("</form>")[0]
    r = env.http.post(
        f"{base}/connections/{env.a.channel}/disable",
        data={"csrf": token, "confirmed": "yes"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and "msg=" not in r.headers["location"]
    assert Tenancy(env.queue.db).connection(env.a.channel).status == "disabled"
    shown = env.http.get(r.headers["location"]).text
    assert "Shop: disabled." in shown
    # Shown once: a reload does not bring the message back.
    assert "Shop: disabled." not in env.http.get(r.headers["location"]).text


def test_an_operator_is_not_offered_the_disable_confirmation(env: ApiEnv) -> None:
    token = sign_in(env)  # an operator
    base = f"/console/clients/{env.a.id}"
    r = env.http.post(f"{base}/connections/{env.a.channel}/disable", data={"csrf": token})
    assert r.status_code == 403 and "Disable Shop?" not in r.text


def test_removing_a_subscription_asks_first(env: ApiEnv) -> None:
    token = admin(env)
    base = f"/console/clients/{env.a.id}"
    remove = f"{base}/notifications/{env.a.subscription_id}/remove"
    r = env.http.post(remove, data={"csrf": token})
    assert r.status_code == 200 and "Stop notifying http://127.0.0.1:9/?" in r.text
    assert "Notifications stop going to http://127.0.0.1:9/" in r.text
    assert env.service.list_subscriptions(env.root, env.a.id)
    r = env.http.post(remove, data={"csrf": token, "confirmed": "yes"})
    assert "Subscription removed." in r.text
    assert not env.service.list_subscriptions(env.root, env.a.id)
    r = env.http.post(f"{base}/notifications/999999/remove", data={"csrf": token})
    assert r.status_code == 404


def test_connection_names_and_counts_are_readable(env: ApiEnv) -> None:
    sign_in(env)
    page = env.http.get(f"/console/clients/{env.a.id}/connections").text
    assert 'class="scroll" tabindex="0" role="region" aria-label="Connections"' in page
    assert re.search(r"<th>\s*<span class=\"visually-hidden\">", page) or "<th></th>" not in page


# ------------------------------------------------------------------------ the browser

LONG_NAME = "Shopify store for " + "the-very-long-merchant-name-" * 5 + "x" * 2


TEST_PAGE = """<!doctype html><html lang="en"><head><title>refresh</title>
<script src="/console/static/console.js" defer></script></head><body>
<input id="search" name="q"><main id="main"><div id="refresh" hidden></div>
<form id="bulk"><div id="live" data-refresh="/console/shell-test/region">{region}</div></form>
</main></body></html>"""
REGION = """<p>poll {n}</p><time datetime="2024-01-01T00:00:00+00:00">2024-01-01 00:00:00 UTC</time>
<label><input type="checkbox" name="ids" value="1"> one</label>
<label><input type="checkbox" name="ids" value="2"> two</label>
<label>Scope <select name="scope"><option value="selected">selected</option>
<option value="filter">all matching</option></select></label>
<details id="err-1"><summary>error</summary><pre>trace {n}</pre></details>
<label>Note <input name="note"></label>"""


def live_page(browser: Browser, served: Served, interval_ms: int = 200) -> tuple[Page, list[int]]:
    """A page of the console's origin with one live region whose every answer differs
    (so every poll swaps): console.js's contract, tested apart from any page's data."""
    page = browser.new_context().new_page()
    polls: list[int] = []

    def region(route: Route) -> None:
        polls.append(len(polls) + 1)
        route.fulfill(content_type="text/html", body=REGION.format(n=len(polls)))

    page.route("**/console/shell-test/region", region)
    page.route(
        "**/console/shell-test",
        lambda route: route.fulfill(
            content_type="text/html", body=TEST_PAGE.format(region=REGION.format(n=0))
        ),
    )
    page.goto(served.url + "/console/shell-test")
    page.evaluate(f"localStorage.setItem('stockyard.refresh.interval', '{interval_ms}')")
    page.evaluate("localStorage.removeItem('stockyard.refresh.paused')")
    page.reload()
    page.wait_for_selector("#refresh:not([hidden])")
    return page, polls


def count_swaps(page: Page) -> None:
    page.evaluate(
        """() => { window.swaps = 0; document.getElementById('live')
             .addEventListener('stockyard:refreshed', () => { window.swaps += 1; }); }"""
    )


@needs_chromium
def test_work_in_progress_survives_two_refreshes(
    served: Served,
    browser: Browser,
) -> None:
    page, _ = live_page(browser, served)
    page.check("input[name=ids][value='2']")
    page.select_option("select[name=scope]", "filter")
    page.click("#err-1 summary")
    page.focus("input[name=ids][value='2']")
    count_swaps(page)
    page.wait_for_function("window.swaps >= 2", timeout=20000)
    assert page.is_checked("input[name=ids][value='2']")
    assert not page.is_checked("input[name=ids][value='1']")
    assert page.input_value("select[name=scope]") == "filter"
    assert page.evaluate("document.getElementById('err-1').open")
    assert page.evaluate("document.activeElement.name + document.activeElement.value") == "ids2"
    assert "poll" in page.inner_text("#live") and "poll 0" not in page.inner_text("#live")
    assert page.inner_text("#refresh .refresh-status").startswith("Updated ")
    # Swapped-in times are shown in the viewer's zone too.
    assert "UTC" not in page.inner_text("#live time")


@needs_chromium
def test_typing_holds_refresh_and_pause_stops_it_for_good(
    served: Served,
    browser: Browser,
) -> None:
    page, polls = live_page(browser, served)
    page.fill("input[name=note]", "half typed")  # focused: the region must wait
    count_swaps(page)
    page.wait_for_timeout(1000)
    assert page.evaluate("window.swaps") == 0
    assert page.input_value("input[name=note]") == "half typed"
    page.click("#refresh button:text-is('Pause updates')")
    assert page.inner_text("#refresh .refresh-status") == "Paused"
    before = len(polls)
    page.wait_for_timeout(1000)  # five intervals
    assert len(polls) == before and page.evaluate("window.swaps") == 0
    page.reload()
    page.wait_for_selector("#refresh:not([hidden])")
    assert page.inner_text("#refresh .refresh-status") == "Paused"  # remembered
    page.click("#refresh button:text-is('Resume updates')")
    count_swaps(page)
    page.wait_for_function("window.swaps >= 1", timeout=20000)


@needs_chromium
def test_a_signed_out_refresh_goes_to_sign_in(
    served: Served,
    browser: Browser,
) -> None:
    page, _ = live_page(browser, served)
    page.unroute("**/console/shell-test/region")
    page.route("**/console/shell-test/region", lambda route: route.fulfill(status=401, body=""))
    page.wait_for_url("**/console/login?next=*", timeout=20000)


@needs_chromium
def test_times_show_in_the_viewers_zone(
    env: ApiEnv,
    served: Served,
    browser: Browser,
) -> None:
    page = signed_in(browser, served, timezone_id="America/Chicago")
    item = env.queue.get(env.a.id, env.a.failed_item)
    page.goto(f"{served.url}/console/clients/{env.a.id}/items/{env.a.failed_item}")
    shown = page.locator("time[datetime]").first
    text, title = shown.inner_text(), shown.get_attribute("title") or ""
    expected = page.evaluate(
        """ts => new Intl.DateTimeFormat('en-GB', {hour: '2-digit', minute: '2-digit',
             hourCycle: 'h23', timeZone: 'America/Chicago'}).format(new Date(ts * 1000))""",
        item.created_at,
    )
    assert text.startswith(expected) and "just now" in text
    assert "America/Chicago" in title and "UTC" in title


@needs_chromium
def test_question_mark_lists_the_shortcuts_and_slash_searches(
    env: ApiEnv,
    served: Served,
    browser: Browser,
) -> None:
    page = signed_in(browser, served)
    page.goto(f"{served.url}/console/clients/{env.a.id}/lanes")
    page.keyboard.press("?")
    dialog = page.locator("dialog#shortcuts")
    assert dialog.is_visible() and "Search items, SKUs, orders" in dialog.inner_text()
    page.keyboard.press("Escape")
    assert not dialog.is_visible()
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "search"


@needs_chromium
def test_a_phone_never_scrolls_sideways_with_a_very_long_connection_name(
    env: ApiEnv,
    served: Served,
    browser: Browser,
) -> None:
    assert len(LONG_NAME) >= 160
    env.service.create_connection(
        env.root, env.a.id, "channel", "http", LONG_NAME, {"base_url": "http://127.0.0.1:9"}, {}
    )
    env.service.set_member(env.root, env.a.id, "boss@example.com", "administrator", PASSWORD)
    page = signed_in(browser, served, "boss@example.com", PHONE)
    page.goto(f"{served.url}/console/clients/{env.a.id}/connections")
    assert html.unescape(LONG_NAME) in page.inner_text("main")
    shot(page, "shell-connections-phone")
    assert fits(page)
