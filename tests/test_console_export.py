"""CSV export of the queue page's list through HTTP: the page's filters, a header row,
UTC times, formula cells defused, the row cap said in the file, roles and tenancy."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from stockyard.engine import Request
from stockyard.web.console.pages import export
from tests.support.api_env import PASSWORD, ApiEnv
from tests.support.console import sign_in


@pytest.fixture
def env(tmp_path: Path) -> Iterator[ApiEnv]:
    e = ApiEnv(f"sqlite:///{tmp_path}/console.db")
    yield e
    e.close()


def rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_export_has_a_header_the_filters_and_utc_times(env: ApiEnv) -> None:
    sign_in(env)
    r = env.http.get(f"/console/clients/{env.a.id}/items.csv", params={"status": "failed"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    disposition = r.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="merchant-a-items-20')
    assert disposition.endswith('.csv"')
    header, *body = rows(r.text)
    assert header == list(export.COLUMNS)
    assert len(body) == 1
    item = dict(zip(header, body[0], strict=True))
    assert item["id"] == str(env.a.failed_item) and item["status"] == "failed"
    assert item["connection"] == "Shop" and item["error"] == "bad price"
    assert item["refs"] == "SKU-merchant-a" and item["mode"] == "blocking"
    assert item["created_at"].endswith("+00:00") and item["attempts"] == "1"
    everything = rows(env.http.get(f"/console/clients/{env.a.id}/items.csv").text)
    assert {r[0] for r in everything[1:]} == {str(env.a.failed_item), str(env.a.queued_item)}


def test_cells_that_a_spreadsheet_would_run_are_defused(env: ApiEnv) -> None:
    sign_in(env)
    env.queue.enqueue(
        env.a.id,
        [
            Request("sync_order", {"n": n}, refs=(ref,))
            for n, ref in enumerate(["=HYPERLINK(1)", "+1", "-2", "@SUM(A1)", "\tx", "plain"])
        ],
    )
    text = env.http.get(
        f"/console/clients/{env.a.id}/items.csv", params={"instruction": "sync_order"}
    ).text
    refs = sorted(r[5] for r in rows(text)[1:])
    assert refs == sorted(["'=HYPERLINK(1)", "'+1", "'-2", "'@SUM(A1)", "'\tx", "plain"])
    assert export.cell("\rx") == "'\rx" and export.cell(None) == "" and export.cell(3) == "3"
    # Spreadsheets skip leading spaces before a formula's "=".
    assert export.cell("  =1+1") == "'  =1+1" and export.cell(" plain") == " plain"
    # Any whitespace before it: a newline, a non-breaking space, a zero-width space.
    for lead in ("\n", "\u00a0", " \n\u00a0", "\u200b", "\ufeff"):
        assert export.cell(f"{lead}=HYPERLINK(1)") == f"'{lead}=HYPERLINK(1)", repr(lead)
    assert export.cell("\u00a0plain") == "\u00a0plain"


def test_export_pages_through_items_and_says_where_it_was_cut(
    env: ApiEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    sign_in(env)
    env.queue.enqueue(env.a.id, [Request("sync_order", {"n": n}) for n in range(25)])
    monkeypatch.setattr(export, "BATCH", 4)
    url = f"/console/clients/{env.a.id}/items.csv"
    full = rows(env.http.get(url, params={"instruction": "sync_order"}).text)
    ids = [int(r[0]) for r in full[1:]]
    assert len(ids) == 25 and ids == sorted(ids, reverse=True)  # no gap, no repeat
    monkeypatch.setattr(export, "MAX_ROWS", 10)
    cut = rows(env.http.get(url, params={"instruction": "sync_order"}).text)
    assert len(cut) == 1 + 10 + 1 and cut[-1][0].startswith("# cut at 10 rows")
    monkeypatch.setattr(export, "MAX_ROWS", 25)
    exact = rows(env.http.get(url, params={"instruction": "sync_order"}).text)
    assert len(exact) == 26 and not exact[-1][0].startswith("#")


def test_export_follows_roles_tenancy_and_filter_checks(env: ApiEnv) -> None:
    env.service.set_member(env.root, env.a.id, "viewer@example.com", "read-only", PASSWORD)
    sign_in(env, "viewer@example.com")
    assert env.http.get(f"/console/clients/{env.a.id}/items.csv").status_code == 200
    r = env.http.get(f"/console/clients/{env.b.id}/items.csv")
    assert r.status_code == 404 and "merchant-b" not in r.text
    r = env.http.get(f"/console/clients/{env.a.id}/items.csv", params={"created_from": "soon"})
    assert r.status_code == 422 and "created_from" in r.text
    env.http.cookies.clear()
    r = env.http.get(f"/console/clients/{env.a.id}/items.csv", follow_redirects=False)
    assert r.status_code == 303


def test_export_is_the_list_the_page_shows(env: ApiEnv) -> None:
    """The queue page's filter, built by the same function: the search box, any status,
    a SKU by its start in any case."""
    sign_in(env)
    base = f"/console/clients/{env.a.id}"
    env.queue.skip(env.a.id, [env.a.queued_item], "op")
    (other,) = env.queue.enqueue(env.a.id, [Request("add_order", {}, refs=("ORDER-9",))])

    def exported(**params: str) -> set[int]:
        r = env.http.get(f"{base}/items.csv", params=params)
        assert r.status_code == 200, r.text
        return {int(line[0]) for line in rows(r.text)[1:] if line and line[0].isdigit()}

    both = {env.a.failed_item, env.a.queued_item}
    assert exported(q="sku-merch") == both
    assert exported(ref="sku-merch", status="any") == both
    assert exported(ref="SKU-MERCHANT-A", status="skipped") == {env.a.queued_item}
    assert other not in exported(q="sku-merch")
    r = env.http.get(f"{base}/items.csv", params={"q": "x" * 300})
    assert r.status_code == 422
