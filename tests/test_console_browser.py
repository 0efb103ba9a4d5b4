"""The console in real headless Chromium (Debian's package, driven by Playwright): sign-in,
finding a failed item by SKU, retrying it, bulk-skipping a SKU's failures, a lane
unblocking, live updates, a read-only user, and every page at a phone's width and a
desktop's. Screenshots go to test-artifacts/console/."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Browser, Page, ViewportSize, sync_playwright
from systems.net import free_port

from stockyard.engine import Request
from stockyard.samples import Samples
from tests.support.api_env import PASSWORD, ApiEnv

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "console"
# Without the background-networking flags Chromium keeps calling out, and this machine's
# closed network refuses it.
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
PHONE: ViewportSize = {"width": 390, "height": 844}

pytestmark = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None, reason="Debian's chromium: scripts/install-chromium.sh"
)


class Served:
    """The console's app on a real port, in this process."""

    def __init__(self, env: ApiEnv) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(env.app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def env(tmp_path: Path) -> Iterator[ApiEnv]:
    e = ApiEnv(f"sqlite:///{tmp_path}/browser.db")
    e.service.set_member(e.root, e.a.id, "viewer@example.com", "read-only", PASSWORD)
    yield e
    e.close()


@pytest.fixture
def served(env: ApiEnv) -> Iterator[Served]:
    s = Served(env)
    yield s
    s.stop()


@pytest.fixture
def browser() -> Iterator[Browser]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


def sign_in(browser: Browser, served: Served, email: str, viewport: ViewportSize) -> Page:
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    page.goto(served.url + "/console")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("h1:text('Queue')")
    return page


def shot(page: Page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def fits(page: Page) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"))


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
    page.fill("input[name=ref]", "SKU-merchant-a")
    page.click("text=Show")
    page.wait_for_url("**ref=SKU-merchant-a**")
    failed = page.locator("section", has_text="Failed")
    assert "bad price" in failed.inner_text()
    shot(page, "queue")
    failed.locator(f"a:text-is('{a.failed_item}')").click()
    page.wait_for_selector(f"h1:has-text('Item {a.failed_item}')")
    shot(page, "item")
    page.click("button:text-is('Retry')")
    page.wait_for_selector("text=retried")
    assert env.queue.get(a.id, a.failed_item).status == "queued"

    # It fails again; skip every failed item of the SKU in one go, after a confirmation.
    env._fail(a.failed_item)
    page.goto(base + "/items")
    page.fill("input[name=sku]", "SKU-merchant-a")
    page.click("text=Skip them…")
    page.wait_for_selector("h1:text('Skip 1 item?')")
    shot(page, "confirm")
    page.click("text=Yes, skip 1")
    page.wait_for_selector("text=Skipped 1 items.")
    assert env.queue.get(a.id, a.failed_item).status == "skipped"
    page.goto(base + "/lanes")
    assert "blocked" not in page.inner_text("tbody")

    # Live: a new failure shows up without reloading.
    page.goto(base + "/items")
    [new] = env.queue.enqueue(a.id, [Request("add_order", {"order_id": 9}, None, ("ORDER-9",))])
    env._fail(new)
    page.wait_for_selector(f"section:has-text('Failed') a:text-is('{new}')", timeout=60_000)


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
    assert page.locator("button:text-is('Retry')").count() == 0
    assert page.locator("button:text-is('Skip')").count() == 0
    page.goto(base + "/items")
    assert page.locator("text=Skip them…").count() == 0
    assert page.locator("input[name=ids]").count() == 0
    page.goto(base + "/lanes")
    assert page.locator("button:text-is('Pause')").count() == 0
    shot(page, "read-only-lanes")
