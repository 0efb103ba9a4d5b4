"""Bad input gets a clear 4xx, never a 500 or a misleading 503 (issue 15, point 9 and the
settings half of 14): a full disk says so, JSON numbers that JSON does not have (NaN,
Infinity, numbers that overflow a double) are refused naming the field, dates out of range
and ids too large for the database are refused, and naive datetimes are read as UTC."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from stockyard.errors import StorageFull
from stockyard.web.query import MAX_ID
from tests.support.api_env import PASSWORD, ApiEnv

BAD_NUMBERS = ["NaN", "Infinity", "-Infinity", "1e999999", "-1.5e400"]
HUGE = str(2**70)


@pytest.fixture
def env(tmp_path: Path) -> Iterator[ApiEnv]:
    e = ApiEnv(f"sqlite:///{tmp_path}/bad.db")
    yield e
    e.close()


def admin(env: ApiEnv) -> dict[str, str]:
    return env.headers(env.a.tokens["administrator"]) | {"content-type": "application/json"}


def sign_in(env: ApiEnv, email: str = "someone@merchant-a.example") -> str:
    """A user of client A (an operator unless named) in the console; the CSRF token of its
    pages."""
    env.http.cookies.clear()
    form = env.http.get("/console/login").text
    given = re.search(r'name="csrf" value="([^"]+)"', form)
    data = {"email": email, "password": PASSWORD}
    if given:
        data["csrf"] = given.group(1)
    r = env.http.post("/console/login", data=data, follow_redirects=False)
    assert r.status_code == 303, r.text
    page = env.http.get(f"/console/clients/{env.a.id}/items").text
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, page
    return found.group(1)


def _problem(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = r.json()
    return body


# ------------------------------------------------------------------------- a full disk


def _fill_the_disk(env: ApiEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every connection the database opens from now on may not grow the file: SQLite then
    fails writes with SQLITE_FULL, as on a full disk."""
    db: Any = env.queue.db
    db.close()
    opened = db._open

    def full() -> Any:
        conn = opened()
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages}")
        return conn

    monkeypatch.setattr(db, "_open", full)


def test_a_full_disk_says_so_in_the_api_and_the_console(
    env: ApiEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = sign_in(env)
    _fill_the_disk(env, monkeypatch)
    big = {
        "instruction": "update_product",
        "payload": {"blob": "x" * 200_000},
        "connection_id": env.a.channel,
    }
    r = env.http.post(
        f"/v1/clients/{env.a.id}/items", headers=admin(env), json={"items": [big] * 5}
    )
    body = _problem(r, 507)
    assert "full" in body["detail"] and "busy" not in body["detail"]
    assert str(env.queue.db.describe()) not in body["detail"]  # no path or URL of the server

    # The console says the same on its error page. (A retry rewrites a row in place, which
    # a full SQLite file still takes: the db layer's error is raised for it here.)
    def full(*args: Any) -> Any:
        raise StorageFull("SQLite file /srv/private/stockyard.db cannot be written")

    monkeypatch.setattr(env.service, "act", full)
    r = env.http.post(
        f"/console/clients/{env.a.id}/items/{env.a.failed_item}/retry",
        data={"csrf": token, "confirmed": "yes"},
    )
    assert r.status_code == 507 and "full" in r.text and "/srv/private" not in r.text


# ---------------------------------------------------------- numbers that JSON does not have


@pytest.mark.parametrize("bad", BAD_NUMBERS)
def test_non_finite_numbers_in_a_payload_are_refused_naming_the_field(
    env: ApiEnv, bad: str
) -> None:
    body = (
        (
            '{"items": [{"instruction": "update_product", "payload": {"product_id": 1}},'
            ' {"instruction": "update_product", "payload": {"price": {"amount": BAD}}}]}'
        )
        .replace('"payload"', f'"connection_id": {env.a.channel}, "payload"')
        .replace("BAD", bad)
    )
    r = env.http.post(f"/v1/clients/{env.a.id}/items", headers=admin(env), content=body)
    problem = _problem(r, 422)
    assert problem["errors"][0]["field"] == "items.1.payload.price.amount"
    assert "items.1.payload.price.amount" in problem["detail"]
    assert bad.lstrip("-") in problem["detail"] or "overflow" in problem["detail"]


@pytest.mark.parametrize("bad", BAD_NUMBERS)
def test_non_finite_numbers_in_a_push_are_refused_naming_the_field(env: ApiEnv, bad: str) -> None:
    variant = '{"sku": "S", "weight": BAD}'.replace("BAD", bad)
    body = '{"products": [{"code": "P", "title": "T", "variants": [' + variant + "]}]}"
    r = env.http.post(f"/v1/inbound/{env.a.source}/products", headers=admin(env), content=body)
    assert _problem(r, 422)["errors"][0]["field"] == "products.0.variants.0.weight"


@pytest.mark.parametrize("bad", BAD_NUMBERS)
def test_non_finite_numbers_in_settings_are_refused_not_stored_as_null(
    env: ApiEnv, bad: str
) -> None:
    path = f"/v1/clients/{env.a.id}/connections"
    made = (
        '{"kind": "source", "connector": "http", "description": "ERP",'
        ' "settings": {"base_url": "http://127.0.0.1:9", "poll_products_every": BAD}}'
    ).replace("BAD", bad)
    r = env.http.post(path, headers=admin(env), content=made)
    assert _problem(r, 422)["errors"][0]["field"] == "settings.poll_products_every"
    change = '{"settings": {"base_url": "http://127.0.0.1:9", "timeout": BAD}}'.replace("BAD", bad)
    r = env.http.patch(f"{path}/{env.a.source}", headers=admin(env), content=change)
    assert _problem(r, 422)["errors"][0]["field"] == "settings.timeout"
    kept = env.service.connection(env.root, env.a.id, env.a.source).settings
    assert kept == {"base_url": "http://127.0.0.1:9"}


def test_the_words_nan_and_infinity_inside_strings_are_fine(env: ApiEnv) -> None:
    body = (
        '{"items": [{"instruction": "update_product",'
        ' "payload": {"note": "NaN Infinity 1e999999", "n": 1e300}}]}'
    ).replace('"payload"', f'"connection_id": {env.a.channel}, "payload"')
    r = env.http.post(f"/v1/clients/{env.a.id}/items", headers=admin(env), content=body)
    assert r.status_code == 201, r.text


# ------------------------------------------------------------------------------- dates


def test_dates_out_of_range_are_422_in_the_api_the_bulk_filter_and_the_console(
    env: ApiEnv,
) -> None:
    h = admin(env)
    items = f"/v1/clients/{env.a.id}/items"
    for value in ("0001-01-01T00:00:00", "0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00"):
        r = env.http.get(items, headers=h, params={"created_from": value})
        assert "created_from" in _problem(r, 422)["detail"], value
        r = env.http.post(f"{items}/skip", headers=h, json={"filter": {"created_to": value}})
        assert "created_to" in _problem(r, 422)["detail"], value
    token = sign_in(env)
    base = f"/console/clients/{env.a.id}"
    r = env.http.get(f"{base}/items", params={"created_from": "0001-01-01T00:00:00"})
    assert r.status_code == 422 and "created_from" in r.text
    r = env.http.get(f"{base}/items/table", params={"created_to": "0001-01-01"})
    assert r.status_code == 422
    form = {
        "csrf": token,
        "action": "skip",
        "scope": "filter",
        "filters": '{"created_from": "0001-01-01T00:00:00"}',
    }
    r = env.http.post(f"{base}/bulk", data=form)
    assert r.status_code == 422


@pytest.fixture
def far_from_utc() -> Iterator[None]:
    """The server's local zone is not UTC, so "naive means local" would show."""
    before = time.tzname
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TZ", "America/New_York")
        time.tzset()
        assert time.tzname != before or time.timezone != 0
        yield
    time.tzset()


def test_naive_datetimes_are_read_as_utc(env: ApiEnv, far_from_utc: None) -> None:
    h = admin(env)
    items = f"/v1/clients/{env.a.id}/items"
    made = env.http.post(
        items,
        headers=h,
        json={
            "items": [
                {"instruction": "update_product", "payload": {}, "connection_id": env.a.channel}
            ]
        },
    ).json()["ids"][0]
    at = datetime.fromisoformat(
        env.http.get(f"{items}/{made}", headers=h).json()["item"]["created_at"]
    )
    for naive, expect in (
        (at - timedelta(seconds=2), True),
        (at + timedelta(seconds=2), False),
    ):
        text = naive.astimezone(UTC).replace(tzinfo=None).isoformat()
        found = env.http.get(items, headers=h, params={"created_from": text}).json()["items"]
        assert (made in [i["id"] for i in found]) is expect, text
        explicit = env.http.get(items, headers=h, params={"created_from": text + "Z"}).json()
        assert [i["id"] for i in explicit["items"]] == [i["id"] for i in found]


# ---------------------------------------------------------------------- ids out of range


def _int_paths(env: ApiEnv) -> list[tuple[str, str]]:
    """(method, path) of every API route with an id in its path, filled with HUGE."""
    out = []
    for path, methods in env.app.openapi()["paths"].items():
        if "{" not in path:
            continue
        for method in methods:
            out.append((method.upper(), re.sub(r"\{[a-z_]+\}", HUGE, path)))
    return out


def test_ids_too_large_are_422_everywhere_never_500(env: ApiEnv) -> None:
    h = admin(env)
    for method, path in _int_paths(env):
        r = env.http.request(method, path, headers=h, content="{}")
        assert r.status_code == 422, (method, path, r.status_code, r.text)
    items = f"/v1/clients/{env.a.id}/items"
    for name in ("connection_id", "cursor", "limit"):
        r = env.http.get(items, headers=h, params={name: HUGE})
        assert r.status_code == 422, (name, r.text)
    r = env.http.post(f"{items}/retry", headers=h, json={"ids": [MAX_ID + 1]})
    assert r.status_code == 422

    token = sign_in(env)
    base = f"/console/clients/{env.a.id}"
    gets = [
        f"/console/clients/{HUGE}/items",
        f"/console/clients/{HUGE}/lanes",
        f"{base}/items/{HUGE}",
        f"{base}/items?q={HUGE}",
        f"{base}/items?q=%C2%B2",  # "²" is a digit to str.isdigit
        f"{base}/items?q={'9' * 5000}",
    ]
    for url in gets:
        r = env.http.get(url)
        assert r.status_code in (200, 404, 422), (url, r.status_code)
    posts = [
        f"{base}/items/{HUGE}/retry",
        f"{base}/lanes/{HUGE}/pause",
        f"{base}/connections/{HUGE}/disable",
        f"{base}/notifications/{HUGE}/remove",
    ]
    for url in posts:
        r = env.http.post(url, data={"csrf": token})
        assert r.status_code in (404, 422), (url, r.status_code)
    env.service.set_member(env.root, env.a.id, "boss@merchant-a.example", "administrator", PASSWORD)
    token = sign_in(env, "boss@merchant-a.example")
    r = env.http.post(
        f"{base}/notifications",
        data={"csrf": token, "kind": "email", "target": "ops@example.com", "connections": HUGE},
    )
    assert r.status_code in (404, 422), r.status_code
