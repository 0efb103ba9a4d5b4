"""The 7 a.m. operator's story (issue 17), in Debian's Chromium at 1440x900 and 390x844:
the "queue blocked" email's link -> the blocked lanes first on the landing page -> the
cause (the item, its traceback) -> a group skip whose confirmation warns what the catalog
knows (the skipped add_product leaves its updates to fail) -> a retry -> a real worker
drains the lane while the live page follows without a reload. And the regressions: a
selection survives two refresh cycles; the blocking item is on the landing page's first
screen; no page is wider than a phone with a 160-character connection name.

One browser and one seeded database per module; a test that changes data works on a copy.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, ViewportSize, expect

from stockyard.engine import Request
from stockyard.notify import events, messages
from stockyard.notify.settings import NotifySettings
from tests.support.api_env import ApiEnv
from tests.support.browser import (
    ARTIFACTS,
    DESKTOP,
    PHONE,
    Served,
    chromium,
    fits,
    needs_chromium,
    shot,
    signed_in,
)
from tests.support.console_data import (
    BAD_SKU,
    LONG_NAME,
    OPERATOR,
    TRADE_WAITING,
    Remote,
    RunningWorker,
    SeededEnv,
    Story,
    copy_database,
    seeded_database,
)

pytestmark = [pytest.mark.real, needs_chromium]

VIEWPORTS: dict[str, ViewportSize] = {"1440": DESKTOP, "390": PHONE}
# console.js reads its refresh interval from here (docs/console.md); 200 ms is its floor.
REFRESH_KEY = "stockyard.refresh.interval"
FAST_REFRESH = f"window.localStorage.setItem('{REFRESH_KEY}', '500')"
WAIT = 30_000  # ms: generous, for a loaded machine; nothing here asserts a duration


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ApiEnv, Story]]:
    with seeded_database(tmp_path_factory.mktemp("story")) as both:
        yield both


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


@pytest.fixture
def world(
    seeded: tuple[ApiEnv, Story], tmp_path: Path
) -> Iterator[tuple[SeededEnv, Story, Served]]:
    """A copy of the seeded database, served: this test's own morning."""
    env, story = seeded
    copy = SeededEnv(copy_database(story.url, tmp_path / "copy.db"), env)
    served = Served(copy)
    yield copy, story, served
    served.stop()
    copy.close()


def _operator(browser: Browser, served: Served, width: str) -> Page:
    page = signed_in(browser, served, OPERATOR, VIEWPORTS[width])
    page.context.add_init_script(FAST_REFRESH)
    return page


def _on_first_screen(page: Page, target: Locator) -> bool:
    box = target.bounding_box()
    height = page.viewport_size["height"] if page.viewport_size else 0
    return box is not None and box["y"] >= 0 and box["y"] + box["height"] <= height


def _blocked_email_link(env: ApiEnv, story: Story, served: Served) -> str:
    """The "queue blocked" email of the trade store's lane, made by the notification code
    that sends it, and the link it carries."""
    stopped = [e for e in events.lanes_stopped(env.queue, time.time()) if e.type == "lane.stopped"]
    [event] = [e for e in stopped if e.connection_id == story.trade]
    mail = messages.email(event, NotifySettings(public_url=served.url))
    assert "Trade store (B2B)" in mail["subject"]
    links = re.findall(r"https?://\S+", mail["text"])
    assert links, mail["text"]
    assert links[0] in mail["html"]
    return str(links[0])


@pytest.mark.parametrize("width", list(VIEWPORTS))
def test_the_7am_story(
    width: str, world: tuple[SeededEnv, Story, Served], browser: Browser
) -> None:
    env, story, served = world
    remote = Remote()
    name = f"story-{width}"
    page = _operator(browser, served, width)

    # The email's link: the item that stopped the trade store, with its lane's state.
    page.goto(_blocked_email_link(env, story, served))
    main = page.locator("main")
    expect(main).to_contain_text(str(story.trade_head))
    expect(main).to_contain_text(re.compile(r"blocked|stopped", re.I))
    expect(main).to_contain_text(str(TRADE_WAITING))  # waiting behind it
    assert fits(page), f"email link's page wider than {width} px"
    shot(page, f"{name}-1-email-link")

    # The landing page leads with the blocked lanes; the item blocking 451 is on screen.
    page.goto(served.url + "/console")
    expect(main).to_contain_text(re.compile(r"\b3 lanes blocked", re.I))
    blocking = main.locator(f"a[href$='/items/{story.trade_head}']").first
    expect(blocking).to_be_visible()
    assert _on_first_screen(page, blocking), "the blocking item is below the first screen"
    assert fits(page), f"landing page wider than {width} px"
    shot(page, f"{name}-2-landing")
    page.screenshot(path=str(ARTIFACTS / f"{name}-2-landing-first-screen.png"))

    # The cause: the item page, a one-line summary, the traceback on demand.
    blocking.click()
    page.wait_for_url(f"**/items/{story.trade_head}")
    retry = page.get_by_role("button", name=re.compile(r"^retry", re.I)).first
    assert _on_first_screen(page, retry), "Retry is below the item page's first screen"
    details = main.locator("details", has=page.locator("pre", has_text="KeyError")).first
    if not details.evaluate("d => d.open"):
        details.locator("summary").first.click()
    traceback = details.locator("pre", has_text="KeyError").first
    expect(traceback).to_be_visible()
    text = traceback.inner_text()
    assert "Traceback (most recent call last):\n  File" in text, "line breaks lost"
    assert "KeyError" in text
    assert fits(page), f"item page wider than {width} px"
    shot(page, f"{name}-3-cause")
    page.screenshot(path=str(ARTIFACTS / f"{name}-3-cause-first-screen.png"))

    # Back to the landing page: skip the group of that error, and read the warning.
    page.go_back()
    # One row per distinct error, with "retry these / skip these".
    group = main.locator("tr").filter(has_text="KeyError")
    skip_these = group.get_by_role("button", name=re.compile(r"skip these", re.I))
    expect(skip_these).to_have_count(1)
    skip_these.click()
    page.wait_for_load_state()
    expect(page.locator("h1")).to_contain_text(re.compile(r"skip 2 items", re.I))
    expect(main).to_contain_text("fail the same way and stop the lane again")
    expect(main).to_contain_text(re.compile(r"add_product|add product", re.I))
    expect(main).to_contain_text("Trade store (B2B)")
    assert fits(page), f"confirmation wider than {width} px"
    shot(page, f"{name}-4-confirm-skip")
    _confirm(page, "skip")
    for head in (story.trade_head, story.market_head):
        assert env.queue.get(story.client_id, head).status == "skipped"

    # The other failure: the ERP's price tier is fixed; retry its item, confirmed.
    remote.fix(BAD_SKU)
    page.goto(f"{served.url}/console/clients/{story.client_id}/items/{story.source_head}")
    page.get_by_role("button", name=re.compile(r"^retry", re.I)).first.click()
    page.wait_for_load_state()
    if env.queue.get(story.client_id, story.source_head).status == "failed":
        shot(page, f"{name}-5-confirm-retry")
        _confirm(page, "retry")
    assert env.queue.get(story.client_id, story.source_head).status == "queued"

    # A worker drains the lanes; the landing page follows without reloading.
    page.goto(served.url + "/console")
    expect(main).not_to_contain_text(re.compile(r"[1-9][0-9]* lanes? blocked", re.I))
    [next_up] = [
        lane.head_id for lane in env.queue.lanes(story.client_id) if lane.lane_id == story.trade
    ]
    # The trade store's next item is listed among the waiting work, in run order.
    waiting_item = main.locator(f"a[href$='/items/{next_up}']").first
    expect(waiting_item).to_be_visible()
    page.evaluate("window.__sameDocument = true")
    with RunningWorker(env, remote):
        expect(main.locator(f"a[href$='/items/{next_up}']")).to_have_count(0, timeout=WAIT)
        deadline = time.monotonic() + WAIT / 1000
        while _waiting(env, story) and time.monotonic() < deadline:
            time.sleep(0.2)
    assert _waiting(env, story) == 0
    assert page.evaluate("window.__sameDocument === true"), "the page reloaded"
    shot(page, f"{name}-6-drained")


def _confirm(page: Page, action: str) -> None:
    """Press the confirmation page's button (the form that carries confirmed=yes)."""
    form = page.locator("form", has=page.locator("input[name=confirmed][value=yes]"))
    button = form.get_by_role("button", name=re.compile(action, re.I)).first
    with page.expect_navigation():
        button.click()


def _waiting(env: ApiEnv, story: Story) -> int:
    [lane] = [lane for lane in env.queue.lanes(story.client_id) if lane.lane_id == story.trade]
    return lane.waiting


@pytest.mark.parametrize("width", list(VIEWPORTS))
def test_a_selection_survives_two_refreshes(
    width: str, world: tuple[SeededEnv, Story, Served], browser: Browser
) -> None:
    env, story, served = world
    page = _operator(browser, served, width)
    page.goto(f"{served.url}/console/clients/{story.client_id}/items")
    boxes = "input[type=checkbox][name=ids]"
    region = page.locator("[data-refresh][id]", has=page.locator(boxes)).first
    expect(region).to_be_attached()
    box = region.locator(boxes).first
    chosen = box.get_attribute("value")
    box.check()
    box.focus()
    fragment = region.get_attribute("data-refresh") or ""
    swaps = 0
    for _ in range(2):
        # New work arrives, so the region's HTML changes and is really swapped.
        env.queue.enqueue(story.client_id, [Request("add_order", {"order": "new"}, None, ("N",))])
        with page.expect_response(lambda r: fragment.split("?")[0] in r.url, timeout=WAIT):
            pass
        page.wait_for_timeout(100)  # the swap follows the response
        swaps += 1
    assert swaps == 2
    kept = region.locator(f"{boxes}[value='{chosen}']")
    expect(kept).to_be_checked()
    focused = page.evaluate("document.activeElement && document.activeElement.value")
    assert focused == chosen, "focus left the checked box"
    expect(page.locator(".refresh-status")).to_contain_text(re.compile(r"updated", re.I))


@pytest.mark.parametrize("width", list(VIEWPORTS))
def test_the_blocking_item_is_on_the_first_screen(
    width: str, seeded: tuple[ApiEnv, Story], browser: Browser
) -> None:
    env, story = seeded
    served = Served(env)
    try:
        page = _operator(browser, served, width)
        page.goto(served.url + "/console")
        target = page.locator(f"main a[href$='/items/{story.trade_head}']").first
        expect(target).to_be_visible()
        assert _on_first_screen(page, target), f"below the first screen at {width} px"
        page.context.close()
    finally:
        served.stop()


def test_no_page_is_wider_than_a_phone(seeded: tuple[ApiEnv, Story], browser: Browser) -> None:
    env, story = seeded
    served = Served(env)
    try:
        page = _operator(browser, served, "390")
        base = f"{served.url}/console/clients/{story.client_id}"
        wide = []
        for path in ("/items", f"/items/{story.market_head}", "/lanes", "/connections"):
            page.goto(base + path)
            if path == "/connections":
                expect(page.locator("main")).to_contain_text(LONG_NAME[:60])
            if not fits(page):
                wide.append((path, page.evaluate("document.documentElement.scrollWidth")))
        assert not wide, f"wider than 390 px: {wide}"
        page.context.close()
    finally:
        served.stop()
