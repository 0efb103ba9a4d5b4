"""The item page through HTTP: its context (connection by name, lane, catalog links,
other failures of its SKU), a stale failure's diff against the newer queued update, the
confirmation before a single retry or skip, and tenancy."""

from __future__ import annotations

import html
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from stockyard.catalog.models import Order
from stockyard.engine import Outcome, Request
from stockyard.web.console.pages.common import error_summary
from tests.support import browser as support
from tests.support.api_env import ApiEnv, order
from tests.support.browser import PHONE, Served, fits, needs_chromium, shot, signed_in
from tests.support.console import sign_in
from tests.support.console_data import LONG_NAME, TRACEBACK

browser = support.browser  # the shared fixtures
served = support.served


@pytest.fixture
def env(tmp_path: Path) -> Iterator[ApiEnv]:
    e = ApiEnv(f"sqlite:///{tmp_path}/item.db")
    yield e
    e.close()


def fail(env: ApiEnv, ids: list[int], error: str = "bad price") -> None:
    """Fail these items as a worker would; whatever it claims before them succeeds (a
    lane hands out one blocking item at a time, so this claims until they are done)."""
    worker = f"test-{time.monotonic_ns()}"
    env.queue.register_worker(worker, "test", 0)
    left = set(ids)
    for _ in range(50):
        if not left:
            break
        for job in env.queue.claim(worker, 100):
            kind = "permanent" if job.id in left else "done"
            left.discard(job.id)
            env.queue.settle(worker, [Outcome(job, kind, time.time(), error)])  # type: ignore[arg-type]
    env.queue.stop_worker(worker)
    assert not left, f"never claimed: {left}"


def text(page: str) -> str:
    """The page's words, tags gone: what a reader sees."""
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))


def test_the_item_page_shows_where_the_item_stands(env: ApiEnv) -> None:
    sign_in(env)
    base = f"/console/clients/{env.a.id}"
    page = env.http.get(f"{base}/items/{env.a.failed_item}").text
    words = text(page)
    # The connection by name, linked to the connections page, not "3".
    assert f'href="{base}/connections#connection-{env.a.channel}">Shop</a>' in page
    # Its lane is blocked by this very item, with one item waiting behind it.
    assert "blocked" in words and "this item is its head" in words
    assert "1 item wait behind it" in words
    assert "stopped since" in words and "<time datetime=" in page
    # The SKU names a variant of a catalog product: the link goes to the product.
    assert f'href="{base}/products/{env.a.product}">SKU-merchant-a</a>' in page
    # The error: a one-line summary and the full text open below it.
    assert "Error: bad price" in words and "<details open><summary>Full error" in page
    # Retry and Skip come first after the heading, with their keys.
    after_heading = page.split("</h1>", 1)[1]
    first_control = re.search(r"<(button|a|input(?! type=\"hidden\"))\b[^>]*>", after_heading)
    assert first_control and 'data-key="r"' in first_control.group(0)
    assert 'data-key="s"' in after_heading.split("<dl", 1)[0]


def test_an_items_order_refs_link_their_orders(env: ApiEnv) -> None:
    sign_in(env)
    base = f"/console/clients/{env.a.id}"
    numbered = order("gid://shop/Order/5") | {"number": "#1001"}
    oid, _ = env.service.store.upsert_order(env.a.id, env.a.channel, Order.model_validate(numbered))
    refs = ("#1001", "gid://shop/Order/5", "NOT-KNOWN")
    (item,) = env.queue.enqueue(env.a.id, [Request("add_order", {}, env.a.source, refs)])
    page = env.http.get(f"{base}/items/{item}").text
    # By its number and by the channel's id for it (probes of orders_number, orders_remote).
    assert f'href="{base}/orders/{oid}">#1001</a>' in page
    assert f'href="{base}/orders/{oid}">gid://shop/Order/5</a>' in page
    # What the catalog does not know links the queue's items of that reference.
    assert "ref=NOT-KNOWN&amp;status=any" in page


def test_sibling_failures_and_the_forms_for_all_of_the_sku(env: ApiEnv) -> None:
    token = sign_in(env)
    base = f"/console/clients/{env.a.id}"
    sku = "SKU-merchant-a"
    # Two more failures of the same SKU on a non-blocking instruction (no lane to block).
    more = env.queue.enqueue(
        env.a.id,
        [Request("sync_order", {"n": n}, None, (sku,)) for n in range(2)],
    )
    fail(env, more)
    page = env.http.get(f"{base}/items/{env.a.failed_item}").text
    assert f"Other failures of {sku} (2)" in text(page)
    for item_id in more:
        assert f'href="{base}/items/{item_id}">{item_id}</a>' in page
    bulk = page.split(f'action="{base}/bulk"')
    assert len(bulk) == 3  # retry all and skip all of the SKU
    assert 'name="scope" value="sku"' in bulk[1] and f'name="sku" value="{sku}"' in bulk[1]
    assert f"Retry all failed of {sku}" in bulk[1] and f"Skip all failed of {sku}" in bulk[2]
    assert token


def test_a_failed_update_with_a_newer_one_queued_is_shown_stale_with_the_diff(
    env: ApiEnv,
) -> None:
    sign_in(env)
    base = f"/console/clients/{env.a.id}"
    # The fixture's failed item updates product 1 with {"product_id": 1}; the newer one
    # sends a title and the same product id, on the same channel and SKU.
    (newer,) = env.queue.enqueue(
        env.a.id,
        [
            Request(
                "update_product",
                {"product_id": 1, "title": "Warm socks"},
                env.a.channel,
                ("SKU-merchant-a",),
            )
        ],
    )
    page = env.http.get(f"{base}/items/{env.a.failed_item}").text
    words = text(page)
    assert f"A newer update is queued: item {newer}" in words
    diff = page.split('class="diff"', 1)[1].split("</table>", 1)[0]
    assert "title" in diff and "added" in diff and "Warm socks" in html.unescape(diff)
    # The queued one itself is not stale, and an item with no newer update says nothing.
    assert "newer update" not in text(env.http.get(f"{base}/items/{newer}").text)


def test_a_single_skip_asks_first_and_acts_only_when_confirmed(env: ApiEnv) -> None:
    token = sign_in(env)
    base = f"/console/clients/{env.a.id}"
    url = f"{base}/items/{env.a.failed_item}/skip"
    confirm = env.http.post(url, data={"csrf": token})
    assert confirm.status_code == 200
    words = text(confirm.text)
    assert "given up for good" in words and "the lane moves on" in words
    # Worded as the bulk confirmation words it, the item's description its first line.
    assert re.search(r"<h1[^>]*>Skip 1 item\?</h1>", confirm.text)
    it = env.queue.get(env.a.id, env.a.failed_item)
    described = f"Item {it.id}: {it.description}"
    assert words.index(described) < words.index("given up for good")
    button = re.search(r"<button[^>]*>Yes, skip 1</button>", confirm.text)
    assert button and "autofocus" in button.group(0)
    assert 'name="confirmed" value="yes"' in confirm.text
    assert env.queue.get(env.a.id, env.a.failed_item).status == "failed"  # untouched
    done = env.http.post(url, data={"csrf": token, "confirmed": "yes"}, follow_redirects=False)
    assert done.status_code == 303
    assert done.headers["location"].endswith(f"/items/{env.a.failed_item}")  # no ?msg=
    assert env.queue.get(env.a.id, env.a.failed_item).status == "skipped"
    shown = env.http.get(done.headers["location"]).text
    assert f"Item {env.a.failed_item} skipped." in shown
    again = env.http.get(done.headers["location"]).text
    assert f"Item {env.a.failed_item} skipped." not in again  # once only


def test_a_single_retry_asks_first_too(env: ApiEnv) -> None:
    token = sign_in(env)
    url = f"/console/clients/{env.a.id}/items/{env.a.failed_item}/retry"
    confirm = env.http.post(url, data={"csrf": token})
    words = text(confirm.text)
    assert "back to the head of its lane" in words
    # The cause must be fixed first: the error is on the page, with that question.
    assert "Error: bad price" in words
    assert "Fixed the cause (e.g. in the ERP)? A retry runs the same data again." in words
    assert env.queue.get(env.a.id, env.a.failed_item).status == "failed"
    env.http.post(url, data={"csrf": token, "confirmed": "yes"})
    assert env.queue.get(env.a.id, env.a.failed_item).status == "queued"


def test_a_single_retry_is_worded_as_the_bulk_one(env: ApiEnv) -> None:
    token = sign_in(env)
    url = f"/console/clients/{env.a.id}/items/{env.a.failed_item}/retry"
    confirm = env.http.post(url, data={"csrf": token}).text
    assert re.search(r"<h1[^>]*>Retry 1 item\?</h1>", confirm)
    button = re.search(r"<button[^>]*>Yes, retry 1</button>", confirm)
    assert button and "autofocus" in button.group(0)
    # The answer right after the question, before what it does.
    assert confirm.index("Yes, retry 1") < confirm.index("Fixed the cause")


def test_an_item_without_a_connection_says_no_connection(env: ApiEnv) -> None:
    sign_in(env)
    base = f"/console/clients/{env.a.id}"
    sku = "SKU-merchant-a"
    first, second = env.queue.enqueue(
        env.a.id, [Request("sync_order", {"n": n}, None, (sku,)) for n in range(2)]
    )
    fail(env, [first, second])
    page = env.http.get(f"{base}/items/{first}").text
    facts = text(page.split('class="item-facts"', 1)[1].split("</dl>", 1)[0])
    assert "Connection no connection" in facts
    # Its sibling, without a connection too, says the same: never "-".
    siblings = page.split('id="siblings-title"', 1)[1].split("</table>", 1)[0]
    assert '<td data-label="connection">no connection</td>' in siblings


def test_skipping_a_failed_add_product_warns_of_the_updates_that_will_fail(
    env: ApiEnv,
) -> None:
    token = sign_in(env)
    sku = "SKU-NEW"
    env.queue.skip(env.a.id, [env.a.failed_item], "test")  # the lane runs again
    (add,) = env.queue.enqueue(
        env.a.id, [Request("add_product", {"product_id": 7}, env.a.channel, (sku,))]
    )
    fail(env, [add])
    env.queue.enqueue(
        env.a.id, [Request("update_product", {"product_id": 7}, env.a.channel, (sku,))]
    )
    confirm = env.http.post(f"/console/clients/{env.a.id}/items/{add}/skip", data={"csrf": token})
    assert "fail the same way and stop the lane again" in text(confirm.text)
    assert env.queue.get(env.a.id, add).status == "failed"


def test_skipping_a_queued_add_product_warns_too(env: ApiEnv) -> None:
    token = sign_in(env)
    sku = "SKU-QUEUED"
    # Behind the lane's failed head: the add waits, a variant's update behind it (an
    # update_product of the same product would supersede the add: it adds it itself).
    add, _ = env.queue.enqueue(
        env.a.id,
        [
            Request("add_product", {"product_id": 8}, env.a.channel, (sku,)),
            Request("update_variant", {"variant_id": 80}, env.a.channel, (sku,)),
        ],
    )
    confirm = env.http.post(f"/console/clients/{env.a.id}/items/{add}/skip", data={"csrf": token})
    assert "fail the same way and stop the lane again" in text(confirm.text)


def test_another_clients_item_is_not_found(env: ApiEnv) -> None:
    token = sign_in(env)
    base = f"/console/clients/{env.a.id}"
    assert env.http.get(f"{base}/items/{env.b.failed_item}").status_code == 404
    r = env.http.post(
        f"{base}/items/{env.b.failed_item}/skip", data={"csrf": token, "confirmed": "yes"}
    )
    assert r.status_code == 404
    r = env.http.post(f"{base}/items/{env.b.failed_item}/skip", data={"csrf": token})
    assert r.status_code == 404
    assert env.queue.get(env.b.id, env.b.failed_item).status == "failed"


def test_a_tracebacks_summary_is_its_exception() -> None:
    trace = 'Traceback (most recent call last):\n  File "x.py", line 1\nValueError: bad price'
    assert error_summary(trace) == "ValueError: bad price"
    # An exception whose message runs over several lines: its first line.
    assert error_summary(TRACEBACK).startswith("KeyError: \"account_category: product 'café-2'")


@needs_chromium
def test_on_a_phone_a_long_traceback_and_name_fit_and_retry_is_on_the_first_screen(
    env: ApiEnv, served: Served, browser: Browser
) -> None:
    shop = env.service.create_connection(
        env.root, env.a.id, "channel", "http", LONG_NAME, {"base_url": "http://127.0.0.1:9"}, {}
    ).id
    (item,) = env.queue.enqueue(
        env.a.id, [Request("update_product", {"product_id": 1}, shop, ("café-2",))]
    )
    fail(env, [item], TRACEBACK)
    page = signed_in(browser, served, viewport=PHONE)
    page.goto(f"{served.url}/console/clients/{env.a.id}/items/{item}")
    assert fits(page), "the item page is wider than the phone"
    retry = page.get_by_role("button", name="Retry…")
    box = retry.bounding_box()
    assert box is not None and box["y"] + box["height"] <= PHONE["height"]
    # The full traceback is on the page, its lines kept.
    assert page.locator("pre.error-text").first.inner_text().count("\n") >= 10
    # The first Tab after the heading's skip link and header reaches Retry before Skip.
    keys = page.eval_on_selector_all("[data-key]", "els => els.map(e => e.dataset.key)")
    assert keys[:2] == ["r", "s"]
    shot(page, "item-phone-long-traceback")
