"""The console in real headless Chromium (Debian's package, driven by Playwright): sign-in,
finding a failed item by SKU, retrying it, bulk-skipping a SKU's failures, a lane
unblocking, live updates, a read-only user, and every page at a phone's width and a
desktop's. Screenshots go to test-artifacts/console/."""

from __future__ import annotations

import re
import time

from playwright.sync_api import Browser, Page, ViewportSize

from stockyard.engine import Request
from stockyard.samples import Samples
from tests.support import browser as support
from tests.support.api_env import PASSWORD, ApiEnv
from tests.support.browser import PHONE, Served, fits, needs_chromium, shot

DESKTOP: ViewportSize = {"width": 1280, "height": 800}

pytestmark = needs_chromium
env = support.env  # the shared fixtures
served = support.served
browser = support.browser


def sign_in(browser: Browser, served: Served, email: str, viewport: ViewportSize) -> Page:
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    page.goto(served.url + "/console")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("h1:text('Queue')")
    return page


def reveal(page: Page, selector: str) -> None:
    """Open the folded <details> (the phone's filters, say) that hides a field."""
    field = page.locator(selector).first
    if not field.is_visible():
        page.locator("details", has=page.locator(selector)).locator("summary").first.click()


def confirm(page: Page) -> None:
    """Press the confirmation page's button (its form carries confirmed=yes)."""
    form = page.locator("form", has=page.locator("input[name=confirmed][value=yes]"))
    with page.expect_navigation():
        form.locator("button").first.click()


def test_an_operators_morning(env: ApiEnv, served: Served, browser: Browser) -> None:
    a = env.a
    for name, viewport in (("phone", PHONE), ("desktop", DESKTOP)):
        login = browser.new_page(viewport=viewport)
        login.goto(served.url + "/console")
        assert fits(login)
        shot(login, f"sign-in-{name}")
        login.close()
    page = sign_in(browser, served, "someone@merchant-a.example", DESKTOP)
    base = f"{served.url}/console/clients/{a.id}"

    page.goto(base + "/lanes")
    assert "blocked" in page.inner_text("tbody tr:first-child")
    shot(page, "lanes-blocked")

    # Find the failed item by its SKU, open it, retry it.
    page.goto(base + "/items")
    reveal(page, "input[name=ref]")
    page.fill("input[name=ref]", "SKU-merchant-a")
    page.click("text=Show")
    page.wait_for_url("**ref=SKU-merchant-a**")
    failed = page.locator("main")
    assert "bad price" in failed.inner_text()
    shot(page, "queue")
    failed.locator(f"a[href$='/items/{a.failed_item}']").first.click()
    page.wait_for_selector(f"h1:has-text('Item {a.failed_item}')")
    shot(page, "item")
    page.get_by_role("button", name=re.compile(r"^Retry", re.I)).first.click()
    confirm(page)  # a single retry asks first
    page.wait_for_selector("text=retried")
    assert env.queue.get(a.id, a.failed_item).status == "queued"

    # It fails again; skip every failed item of the SKU in one go, after a confirmation.
    env._fail(a.failed_item)
    page.goto(base + "/items")
    reveal(page, "input[name=sku]")
    page.fill("input[name=sku]", "SKU-merchant-a")
    page.click("text=Skip them…")
    page.wait_for_selector("h1:has-text('Skip 1 item')")
    shot(page, "confirm")
    confirm(page)
    page.wait_for_selector("text=/Skipped 1 item/")
    assert env.queue.get(a.id, a.failed_item).status == "skipped"
    page.goto(base + "/lanes")
    assert "blocked" not in page.inner_text("tbody")

    # Live: a new failure shows up without reloading.
    page.goto(base + "/items")
    [new] = env.queue.enqueue(a.id, [Request("add_order", {"order_id": 9}, None, ("ORDER-9",))])
    env._fail(new)
    page.wait_for_selector(f"main a[href$='/items/{new}']", timeout=60_000)


def test_every_page_fits_a_phone_and_a_desktop(
    env: ApiEnv, served: Served, browser: Browser
) -> None:
    a = env.a
    Samples(env.queue).record(time.time() - 300)
    Samples(env.queue).record(time.time())
    for name, viewport in (("phone", PHONE), ("desktop", DESKTOP)):
        page = sign_in(browser, served, "someone@merchant-a.example", viewport)
        for path in (
            "/items",
            f"/items/{a.failed_item}",
            "/lanes",
            "/dashboard",
            "/connections",
            "/notifications",
        ):
            page.goto(f"{served.url}/console/clients/{a.id}{path}")
            assert fits(page), (name, path)
            label = path.strip("/").replace("/", "-").replace(str(a.failed_item), "detail")
            shot(page, f"{label}-{name}")


def test_a_read_only_user_cannot_change_anything(
    env: ApiEnv, served: Served, browser: Browser
) -> None:
    a = env.a
    page = sign_in(browser, served, "viewer@example.com", DESKTOP)
    base = f"{served.url}/console/clients/{a.id}"
    page.goto(f"{base}/items/{a.failed_item}")
    assert "bad price" in page.inner_text("main")
    assert page.get_by_role("button", name=re.compile(r"^(Retry|Skip)", re.I)).count() == 0
    page.goto(base + "/items")
    assert page.locator("text=Skip them…").count() == 0
    assert page.locator("input[name=ids]").count() == 0
    page.goto(base + "/lanes")
    assert page.locator("button:text-is('Pause')").count() == 0
    shot(page, "read-only-lanes")
