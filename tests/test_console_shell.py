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
from stockyard.web.console.pages.common import _back, plain_problems
from stockyard.web.console.pages.errors import plain_detail
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


# A fragment would come before the message a redirect appends, which would be lost.
@pytest.mark.parametrize("value", [*ESCAPING_PATHS, "/console/clients/1/lanes#lane-7"])
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


def error_text(page: str) -> str:
    found = re.search(r"<h1>(.*?)</h1>\s*<p class=\"error\" role=\"alert\">(.*?)</p>", page, re.S)
    assert found, page
    return html.unescape(f"{found.group(1)} | {found.group(2)}")


def test_an_address_that_names_nothing_says_no_such_page(env: ApiEnv) -> None:
    """Not "Not found Not Found", nor "path.item_id: Input should be a valid integer"
    (usability walkthrough U7)."""
    sign_in(env)
    base = f"/console/clients/{env.a.id}"
    for path in ("/nothing-here", "/items/abc", "/items/99999999999999999999"):
        r = env.http.get(base + path)
        assert r.status_code == 404, path
        said = error_text(r.text)
        assert said.startswith("No such page | "), said
        assert "Input should" not in said and "Not Found" not in said and "path." not in said
    assert "Input should" not in error_text(env.http.get("/console/clients/abc/items").text)


def test_filter_problems_are_said_in_the_forms_words() -> None:
    assert plain_problems(
        [
            {"loc": ("created_from",), "msg": "Input should be a valid datetime or date"},
            {"loc": ("query", "created_to"), "msg": "Input should be a valid datetime"},
            {"loc": ("connection_id",), "msg": "Input should be a valid integer, unable to"},
            {"loc": ("status", 0), "msg": "Input should be 'queued' or 'failed'"},
        ]
    ) == (
        "From: use a date like 2026-11-28; To: use a date like 2026-11-28; "
        "Connection: use a whole number; Status: use 'queued' or 'failed'"
    )
    assert plain_detail(
        "filters: created_from: Input should be a valid datetime or date, input is too short"
    ) == ("These filters do not read: From: use a date like 2026-11-28")
    assert plain_detail("query.connection_id: Input should be a valid integer") == (
        "Connection: use a whole number"
    )
    assert plain_detail("choose retry or skip") == "choose retry or skip"


def test_the_error_pages_filter_form_names_its_fields_and_picks_dates(env: ApiEnv) -> None:
    sign_in(env)
    base = f"/console/clients/{env.a.id}"
    r = env.http.get(f"{base}/items.csv", params={"created_from": "yesterday", "ref": "X"})
    assert r.status_code == 422
    assert "From: use a date like 2026-11-28" in error_text(r.text)
    form = r.text.split(f'action="{base}/items.csv"')[1].split("</form>")[0]
    assert re.search(r'<label>From <input name="created_from" type="date" value="yesterday">', form)
    assert re.search(r'<label>Search <input name="ref" type="text" value="X">', form)


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
<style>.scroll {{ height: 60px; overflow: auto; }} .tall {{ height: 400px; }}</style>
<script src="/console/static/console.js" defer></script></head><body>
<input id="search" name="q"><main id="main"><div id="refresh" hidden></div>
<a href="#pressed-r" data-key="r">Retry</a><button type="button" id="plain">a button</button>
<label><input type="checkbox" id="outside"> outside</label>
<form id="bulk"><div id="live" data-refresh="/console/shell-test/region">{region}</div></form>
</main></body></html>"""
PLAIN_PAGE = """<!doctype html><html lang="en"><head><title>plain</title>
<script src="/console/static/console.js" defer></script></head><body>
<main id="main"><div id="refresh" hidden></div><p>no live region here</p></main></body></html>"""
REGION = """<p>poll {n}</p><time datetime="2024-01-01T00:00:00+00:00">2024-01-01 00:00:00 UTC</time>
<label><input type="checkbox" name="ids" value="1"> one</label>
<label><input type="checkbox" name="ids" value="2"> two</label>
<label>Scope <select name="scope"><option value="selected">selected</option>
<option value="filter">all matching</option></select></label>
<details id="err-1"><summary>error</summary><pre>trace {n}</pre></details>
<label>Note <input name="note"></label>
{extra}<div class="scroll" id="box-a" tabindex="0"><div class="tall">a</div></div>
<div class="scroll" id="box-b" tabindex="0"><div class="tall">b</div></div>"""
# A box a refresh adds before the others: restoring scroll by position would move it.
NEW_BOX = '<div class="scroll" id="box-new" tabindex="0"><div class="tall">new</div></div>'


def region_html(n: int) -> str:
    return REGION.format(n=n, extra=NEW_BOX if n else "")


def live_page(
    browser: Browser, served: Served, interval_ms: int = 200, page: Page | None = None
) -> tuple[Page, list[int]]:
    """A page of the console's origin with one live region whose every answer differs
    (so every poll swaps): console.js's contract, tested apart from any page's data."""
    page = page or browser.new_context().new_page()
    polls: list[int] = []

    def region(route: Route) -> None:
        polls.append(len(polls) + 1)
        route.fulfill(content_type="text/html", body=region_html(len(polls)))

    page.route("**/console/shell-test/region", region)
    page.route(
        "**/console/shell-test",
        lambda route: route.fulfill(
            content_type="text/html", body=TEST_PAGE.format(region=region_html(0))
        ),
    )
    page.route(
        "**/console/shell-test/plain",
        lambda route: route.fulfill(content_type="text/html", body=PLAIN_PAGE),
    )
    page.goto(served.url + "/console/shell-test")
    page.evaluate(f"localStorage.setItem('stockyard.refresh.interval', '{interval_ms}')")
    page.evaluate("sessionStorage.removeItem('stockyard.refresh.paused')")
    page.reload()
    page.wait_for_selector("#refresh:not([hidden])")
    return page, polls


PAUSED = "Live updates paused in this tab"


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
def test_typing_holds_refresh_and_pause_stops_it_for_this_tab(
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
    assert page.inner_text("#refresh .refresh-status") == PAUSED
    before = len(polls)
    page.wait_for_timeout(1000)  # five intervals
    assert len(polls) == before and page.evaluate("window.swaps") == 0
    page.reload()  # the same tab: still paused, and says so
    page.wait_for_selector("#refresh:not([hidden])")
    assert page.inner_text("#refresh .refresh-status") == PAUSED
    # Every page of the tab says so, one without live regions too, and can resume.
    page.goto(served.url + "/console/shell-test/plain")
    page.wait_for_selector("#refresh:not([hidden])")
    assert page.inner_text("#refresh .refresh-status") == PAUSED
    # Nothing is remembered beyond the tab: another tab (tomorrow morning's) is live.
    assert page.evaluate("localStorage.getItem('stockyard.refresh.paused')") is None
    other, _ = live_page(browser, served, page=page.context.new_page())
    assert other.inner_text("#refresh button") == "Pause updates"
    page.goto(served.url + "/console/shell-test")
    page.click("#refresh button:text-is('Resume updates')")
    count_swaps(page)
    page.wait_for_function("window.swaps >= 1", timeout=20000)


@needs_chromium
def test_a_page_without_live_regions_shows_nothing_unless_paused(
    served: Served,
    browser: Browser,
) -> None:
    page, _ = live_page(browser, served)
    page.goto(served.url + "/console/shell-test/plain")
    page.wait_for_load_state()
    assert page.locator("#refresh").is_hidden()


@needs_chromium
def test_an_open_select_holds_refresh(served: Served, browser: Browser) -> None:
    page, _ = live_page(browser, served)
    page.focus("select[name=scope]")
    count_swaps(page)
    page.wait_for_timeout(1000)
    assert page.evaluate("window.swaps") == 0
    page.focus("#plain")
    page.wait_for_function("window.swaps >= 1", timeout=20000)


@needs_chromium
@pytest.mark.parametrize(
    "focused", ["input[name=ids][value='1']", "#outside", "#plain", "select[name=scope]"]
)
def test_shortcuts_never_fire_from_a_form_control(
    served: Served, browser: Browser, focused: str
) -> None:
    page, _ = live_page(browser, served, interval_ms=60000)
    page.focus(focused)
    page.keyboard.press("r")
    assert page.evaluate("location.hash") == ""
    if focused.startswith("select"):  # a select takes "/" itself (type-ahead)
        page.keyboard.press("/")
        assert page.evaluate("document.activeElement.id") != "search"


@needs_chromium
def test_shortcuts_never_fire_with_a_modifier(served: Served, browser: Browser) -> None:
    page, _ = live_page(browser, served, interval_ms=60000)
    for chord in ("Alt+r", "Control+Alt+r", "Meta+r", "Shift+R"):
        page.keyboard.press(chord)
        assert page.evaluate("location.hash") == "", chord
    page.keyboard.press("r")  # nothing focused, no modifier: the shortcut
    assert page.evaluate("location.hash") == "#pressed-r"


SLOW_FETCH = """(() => {
  const real = window.fetch;
  window.inflight = 0; window.maxInflight = 0; window.fetches = 0;
  window.fetch = async (...args) => {
    window.inflight += 1; window.fetches += 1;
    window.maxInflight = Math.max(window.maxInflight, window.inflight);
    try {
      await new Promise((done) => setTimeout(done, 300));
      return await real(...args);
    } finally { window.inflight -= 1; }
  };
})();"""


@needs_chromium
def test_one_timer_whatever_happens_during_a_fetch(served: Served, browser: Browser) -> None:
    """Changing the interval or the tab coming back while a refresh loads never starts a
    second round of refreshes beside it."""
    context = browser.new_context()
    context.add_init_script(SLOW_FETCH)
    page, _ = live_page(browser, served, page=context.new_page())
    for _ in range(8):
        page.wait_for_function("window.inflight === 1", timeout=20000)
        page.evaluate(
            """() => { const every = document.querySelector('#refresh select');
              every.value = every.options[0].value;
              every.dispatchEvent(new Event('change', {bubbles: true}));
              document.dispatchEvent(new Event('visibilitychange')); }"""
        )
    page.wait_for_function("window.fetches >= 10", timeout=20000)
    assert page.evaluate("window.maxInflight") == 1


@needs_chromium
def test_scroll_positions_follow_their_box_not_its_place(served: Served, browser: Browser) -> None:
    page, _ = live_page(browser, served)
    page.focus("#plain")
    page.evaluate("document.getElementById('box-b').scrollTop = 120")
    count_swaps(page)
    page.wait_for_function("window.swaps >= 2", timeout=20000)
    tops = page.evaluate(
        "['box-new', 'box-a', 'box-b'].map((id) => document.getElementById(id).scrollTop)"
    )
    assert tops == [0, 0, 120]


@needs_chromium
@pytest.mark.parametrize("status", [403, 404, 422])
def test_a_refused_refresh_stops_and_offers_a_reload(
    served: Served, browser: Browser, status: int
) -> None:
    page, _ = live_page(browser, served)
    page.unroute("**/console/shell-test/region")
    refused: list[int] = []

    def refuse(route: Route) -> None:
        refused.append(status)
        route.fulfill(status=status, body="no")

    page.route("**/console/shell-test/region", refuse)
    page.wait_for_function(
        "document.querySelector('#refresh .refresh-status').textContent.startsWith("
        "'Updates stopped')",
        timeout=20000,
    )
    text = page.inner_text("#refresh .refresh-status")
    assert text.startswith(f"Updates stopped: {status}") and text.endswith("reload the page")
    asked = len(refused)
    page.wait_for_timeout(1000)  # five intervals: no more asking
    assert len(refused) == asked == 1
    with page.expect_navigation():
        page.click("#refresh button:text-is('Reload')")


@needs_chromium
@pytest.mark.parametrize("failure", [500, 502, 503, 504, "network"])
def test_a_server_error_or_a_lost_network_backs_off_and_recovers(
    served: Served, browser: Browser, failure: int | str
) -> None:
    """A deploy (502/503/504), a crash or a blink of the network mends itself: the
    region is asked again, later each time, and comes back live (review R-D4)."""
    page, _ = live_page(browser, served)
    page.unroute("**/console/shell-test/region")
    failed: list[int] = []

    def flaky(route: Route) -> None:
        if len(failed) < 3:
            failed.append(1)
            if failure == "network":
                route.abort("connectionrefused")
            else:
                route.fulfill(status=cast(int, failure), body="down")
        else:
            route.fulfill(content_type="text/html", body=region_html(99))

    page.route("**/console/shell-test/region", flaky)
    page.wait_for_function(
        "document.querySelector('#refresh .refresh-status').textContent.includes('retrying')",
        timeout=20000,
    )
    count_swaps(page)
    page.wait_for_function("window.swaps >= 1", timeout=30000)
    assert "poll 99" in page.inner_text("#live")
    page.wait_for_function(
        "document.querySelector('#refresh .refresh-status').textContent.startsWith('Updated')",
        timeout=20000,
    )
    assert page.locator("#refresh button:text-is('Pause updates')").is_visible()
    assert page.locator(".refresh-stopped").count() == 0


TWO_REGIONS = """<!doctype html><html lang="en"><head><title>two</title>
<script src="/console/static/console.js" defer></script></head><body>
<main id="main"><div id="refresh" hidden></div>
<div id="live" data-refresh="/console/shell-test/region">{region}</div>
<div id="other" data-refresh="/console/shell-test/other"><p>other part</p></div>
</main></body></html>"""


@needs_chromium
def test_a_refused_region_stops_alone_and_the_others_stay_live(
    served: Served, browser: Browser
) -> None:
    """One region the server refuses says so beside itself, with a Reload; the bar and
    its pause stay while another region is live (review R-D7)."""
    page, _ = live_page(browser, served)
    page.route(
        "**/console/shell-test/two",
        lambda route: route.fulfill(
            content_type="text/html", body=TWO_REGIONS.format(region=region_html(0))
        ),
    )
    page.route("**/console/shell-test/other", lambda route: route.fulfill(status=404, body=""))
    page.goto(served.url + "/console/shell-test/two")
    note = page.locator(".refresh-stopped")
    note.wait_for(timeout=20000)
    assert note.count() == 1
    assert "404" in note.inner_text()
    # The note is the refused region's, right above it.
    assert (
        page.evaluate("document.querySelector('.refresh-stopped').nextElementSibling.id") == "other"
    )
    assert page.locator("#refresh button:text-is('Pause updates')").is_visible()
    count_swaps(page)
    page.wait_for_function("window.swaps >= 2", timeout=20000)
    assert page.inner_text("#refresh .refresh-status").startswith("Updated ")
    with page.expect_navigation():
        note.locator("button:text-is('Reload')").click()


@needs_chromium
def test_a_focused_select_says_why_the_refresh_waits(served: Served, browser: Browser) -> None:
    page, _ = live_page(browser, served)
    page.focus("select[name=scope]")
    page.wait_for_function(
        "document.querySelector('#refresh .refresh-status').textContent"
        " === 'Paused while you choose'",
        timeout=20000,
    )
    page.focus("#plain")
    page.wait_for_function(
        "document.querySelector('#refresh .refresh-status').textContent.startsWith('Updated')",
        timeout=20000,
    )


@needs_chromium
@pytest.mark.parametrize("focused", ["input[name=ids][value='1']", "#outside", "#plain"])
def test_slash_and_question_mark_work_from_a_button_or_checkbox(
    served: Served, browser: Browser, focused: str
) -> None:
    page, _ = live_page(browser, served, interval_ms=60000)
    page.focus(focused)
    page.keyboard.press("?")
    assert page.locator("dialog#shortcuts").is_visible()
    page.keyboard.press("Escape")
    page.focus(focused)
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "search"


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
def test_a_confirmation_focuses_its_answer_and_esc_cancels(
    env: ApiEnv, served: Served, browser: Browser
) -> None:
    """The answer right after the question, focused (not 23 Tabs away) and described by
    what it does; Esc follows Cancel (usability walkthrough U9)."""
    env.service.set_member(env.root, env.a.id, "boss@example.com", "administrator", PASSWORD)
    page = signed_in(browser, served, "boss@example.com")
    connections = f"{served.url}/console/clients/{env.a.id}/connections"
    page.goto(connections)
    page.locator("button:text-is('Disable…')").first.click()
    page.wait_for_selector("h1:text-matches('^Disable ')")
    assert page.evaluate("document.activeElement.tagName") == "BUTTON"
    assert page.evaluate("document.activeElement.textContent") == "Disable"
    described = page.evaluate(
        "document.getElementById(document.activeElement.getAttribute('aria-describedby'))"
        ".textContent"
    )
    assert "Its lane pauses" in described
    with page.expect_navigation():
        page.keyboard.press("Escape")
    assert page.url == connections
    assert all(c.status != "disabled" for c in Tenancy(env.queue.db).connections(env.a.id))


@needs_chromium
def test_on_a_phone_the_account_links_wait_behind_a_menu(
    env: ApiEnv, served: Served, browser: Browser
) -> None:
    """A phone's header is navigation and search; Password and Sign out sit behind
    "Account" (a <details>: no script), a desktop shows them at once (walkthrough U3)."""
    page = signed_in(browser, served, viewport=PHONE)
    page.goto(f"{served.url}/console/clients/{env.a.id}/lanes")
    header = page.locator("header.top")
    assert page.locator("header.top nav").is_visible() and page.locator("#search").is_visible()
    sign_out = header.get_by_role("button", name="Sign out")
    assert (
        not sign_out.is_visible() and not header.get_by_role("link", name="Password").is_visible()
    )
    box = header.bounding_box()
    assert box is not None and box["height"] < 200, box
    header.locator("summary:text-is('Account')").click()
    assert sign_out.is_visible() and header.get_by_role("link", name="Password").is_visible()
    assert fits(page)
    # Esc closes the menu, and only the menu (on a confirmation page it would Cancel).
    page.keyboard.press("Escape")
    assert not sign_out.is_visible() and page.url.endswith("/lanes")
    desktop = signed_in(browser, served)
    desktop.goto(f"{served.url}/console/clients/{env.a.id}/lanes")
    top = desktop.locator("header.top")
    assert top.get_by_role("button", name="Sign out").is_visible()
    assert not top.locator("summary:text-is('Account')").is_visible()


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
