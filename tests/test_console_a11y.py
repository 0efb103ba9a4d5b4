"""Every console page, on the 7 a.m. operator's data, at a desktop's 1440x900 and a
phone's 390x844, in Debian's Chromium: axe-core finds nothing critical or serious, no
page is wider than the viewport (the marketplace's connection name is 160 characters),
and a full-page screenshot of each goes to test-artifacts/console/<page>-<width>.png.

Pages another part of issue 17 has not served yet (they answer 404) are skipped with
that reason; a page that exists is checked, whatever state it is in.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, ViewportSize

from tests.support import axe
from tests.support.api_env import ApiEnv
from tests.support.browser import (
    ARTIFACTS,
    DESKTOP,
    PHONE,
    Served,
    chromium,
    fits,
    needs_chromium,
    signed_in,
)
from tests.support.console_data import ADMIN, OPERATOR, Story, post_form, seeded_database

pytestmark = [pytest.mark.real, needs_chromium]

VIEWPORTS: dict[str, ViewportSize] = {"1440": DESKTOP, "390": PHONE}


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ApiEnv, Story]]:
    with seeded_database(tmp_path_factory.mktemp("a11y")) as both:
        yield both


@pytest.fixture(scope="module")
def served(seeded: tuple[ApiEnv, Story]) -> Iterator[Served]:
    s = Served(seeded[0])
    yield s
    s.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


@pytest.fixture(scope="module")
def operator_pages(browser: Browser, served: Served) -> Iterator[dict[str, Page]]:
    """One signed-in page per width, shared by the module's tests (reads only)."""
    pages = {w: signed_in(browser, served, OPERATOR, viewport) for w, viewport in VIEWPORTS.items()}
    yield pages
    for page in pages.values():
        page.context.close()


def _client(story: Story, path: str) -> str:
    return f"/console/clients/{story.client_id}{path}"


def _bulk_skip_confirmation(page: Page, served: Served, story: Story) -> None:
    """The confirmation of "skip every failed item of SKU-BAD", as the queue page's bulk
    form asks for it (no confirmed=yes: the page, not the action)."""
    page.goto(served.url + _client(story, "/items"))
    post_form(
        page,
        _client(story, "/bulk"),
        {
            "action": "skip",
            "scope": "sku",
            "sku": "SKU-BAD",
            "back": _client(story, "/items"),
            "filters": "{}",
        },
    )
    assert "skip" in page.inner_text("h1").lower(), page.inner_text("main")


# name -> the path to open (from the story), or a function that gets the page there.
Opener = Callable[[Page, Served, Story], None]
PAGES: dict[str, str | Opener] = {
    "queue": "/items",
    "queue-filtered": "/items?" + urllib.parse.urlencode({"status": "any", "ref": "sku-ba"}),
    "item-failed": "/items/{trade_head}",
    "confirm-bulk-skip": _bulk_skip_confirmation,
    "lanes": "/lanes",
    "dashboard": "/dashboard",
    "connections": "/connections",
    "notifications": "/notifications",
    "audit": "/audit",
    "product": "/products/{product}",
    "order": "/orders/{order}",
    "search": "/search?" + urllib.parse.urlencode({"q": "café-2"}),
    "password": "=/console/password",
    "error-404": "/items/99999999",
}


def _open(name: str, page: Page, served: Served, story: Story) -> int | None:
    """Open the page; its HTTP status (None for a form's result)."""
    target = PAGES[name]
    if callable(target):
        target(page, served, story)
        return None
    values = {
        "trade_head": story.trade_head,
        "product": story.products["café-2"],
        "order": story.orders["ORD-2026-1400"],
    }
    path = target[1:] if target.startswith("=") else _client(story, target.format(**values))
    response = page.goto(served.url + path)
    return response.status if response else None


def _check(page: Page, name: str, width: str) -> None:
    shot = ARTIFACTS / f"{name}-{width}.png"
    page.screenshot(path=str(shot), full_page=True)
    problems = []
    if not fits(page):
        wide = page.evaluate("document.documentElement.scrollWidth")
        problems.append(f"page is {wide} px wide in a {width} px viewport")
    found = axe.violations(page)
    if found:
        problems.append(axe.report(name, found))
    assert not problems, f"{name} at {width} px ({_rel(shot)}):\n" + "\n".join(problems)


def _rel(path: Path) -> str:
    return str(path.relative_to(ARTIFACTS.parent.parent))


@pytest.mark.parametrize("width", list(VIEWPORTS))
@pytest.mark.parametrize("name", list(PAGES))
def test_every_page_is_accessible_and_fits(
    name: str,
    width: str,
    seeded: tuple[ApiEnv, Story],
    served: Served,
    operator_pages: dict[str, Page],
) -> None:
    page = operator_pages[width]
    status = _open(name, page, served, seeded[1])
    if name == "error-404":
        assert status == 404
        assert page.locator("nav").count() > 0, "the error page lost the navigation"
    elif name == "audit":  # administrators only: an operator gets the 403 in the layout
        assert status == 403
        assert page.locator("nav").count() > 0, "the error page lost the navigation"
    else:
        assert status in (None, 200), f"{name}: HTTP {status}"
    _check(page, name, width)


@pytest.mark.parametrize("width", list(VIEWPORTS))
def test_the_sign_in_page(width: str, browser: Browser, served: Served) -> None:
    context = browser.new_context(viewport=VIEWPORTS[width])
    try:
        page = context.new_page()
        page.goto(served.url + "/console/login")
        _check(page, "login", width)
    finally:
        context.close()


@pytest.mark.parametrize("width", list(VIEWPORTS))
def test_the_audit_log_as_its_administrator_sees_it(
    width: str, seeded: tuple[ApiEnv, Story], browser: Browser, served: Served
) -> None:
    page = signed_in(browser, served, ADMIN, VIEWPORTS[width])
    try:
        response = page.goto(served.url + _client(seeded[1], "/audit"))
        assert response is not None and response.status == 200
        assert page.locator("table").count() > 0, page.inner_text("main")
        _check(page, "audit-admin", width)
    finally:
        page.context.close()


DARK_PAGES = ("queue", "item-failed", "confirm-bulk-skip", "lanes", "dashboard", "product")


@pytest.mark.parametrize("width", list(VIEWPORTS))
def test_dark_mode_is_as_readable(
    width: str, seeded: tuple[ApiEnv, Story], browser: Browser, served: Served
) -> None:
    """The same checks with the system's dark colour scheme: its own palette must keep
    every contrast axe measures."""
    page = signed_in(browser, served, OPERATOR, VIEWPORTS[width], color_scheme="dark")
    try:
        for name in DARK_PAGES:
            status = _open(name, page, served, seeded[1])
            assert status in (None, 200), f"{name}: HTTP {status}"
            background = page.evaluate("getComputedStyle(document.body).backgroundColor")
            assert background not in ("rgb(255, 255, 255)", "rgb(250, 250, 250)"), background
            _check(page, f"dark-{name}", width)
    finally:
        page.context.close()
