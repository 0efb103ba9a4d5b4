"""The console served on a real port and driven by Debian's Chromium through Playwright:
the pieces every browser test shares (tests/test_console_browser.py,
tests/test_console_shell.py). Import the fixtures into a test module:

    from tests.support.browser import browser, env, served  # noqa: F401 (fixtures)
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from playwright.sync_api import Browser, Page, ViewportSize, sync_playwright
from systems.net import free_port

from tests.support.api_env import PASSWORD, ApiEnv

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent.parent.parent / "test-artifacts" / "console"
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
DESKTOP: ViewportSize = {"width": 1440, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}
OPERATOR = "someone@merchant-a.example"

needs_chromium = pytest.mark.skipif(
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


@contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's Chromium, headless, closed at the end (for a test or a module)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


def signed_in(
    browser: Browser,
    served: Served,
    email: str = OPERATOR,
    viewport: ViewportSize = DESKTOP,
    **context: Any,
) -> Page:
    """A new browser context (its own cookies; `context` goes to new_context, e.g.
    timezone_id) signed in as `email`, on the page the console opens with."""
    page = browser.new_context(viewport=viewport, **context).new_page()
    page.goto(served.url + "/console")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/clients/*/**")
    return page


def shot(page: Page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def fits(page: Page) -> bool:
    """No horizontal scroll: the page is no wider than the viewport."""
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"))
