"""Bulk retry and skip by filter act on failed items unless the caller names other
statuses, in the service, the API, the console and the CLI alike; the confirmation says
how many of each instruction and lane; the console's `back` target stays on the site."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stockyard.cli import cli
from stockyard.engine import ItemFilter, Request
from stockyard.errors import InvalidInput
from tests.support.api_env import ApiEnv
from tests.support.console import sign_in
from tests.support.queues import UrlMaker

SKU = "SKU-merchant-a"  # the tenant's failed item and the queued one behind it share it


@pytest.fixture
def env(tmp_path: Path) -> Iterator[ApiEnv]:
    e = ApiEnv(f"sqlite:///{tmp_path}/bulk.db")
    yield e
    e.close()


@pytest.fixture
def any_env(new_url: UrlMaker) -> Iterator[ApiEnv]:
    """On SQLite and on PostgreSQL: the counting query is SQL of its own."""
    e = ApiEnv(new_url())
    yield e
    e.close()


def _other_lane_update(env: ApiEnv) -> int:
    """The SKU's newest update, queued for another channel behind nothing of its own: the
    item issue 15 saw cancelled by `skip --sku`."""
    other = env.service.create_connection(
        env.root, env.a.id, "channel", "http", "Trade", {"base_url": "http://127.0.0.1:9"}, {}
    ).id
    (item,) = env.queue.enqueue(
        env.a.id, [Request("update_product", {"product_id": 1}, other, (SKU,))]
    )
    return item


def _status(env: ApiEnv, item: int) -> str:
    return env.queue.get(env.a.id, item).status


def test_service_skip_by_sku_leaves_queued_items_alone(any_env: ApiEnv) -> None:
    env = any_env
    other = _other_lane_update(env)
    done = env.service.act_where(env.root, ItemFilter(env.a.id, ref=SKU), "skip")
    assert done == [env.a.failed_item]
    assert _status(env, env.a.queued_item) == "queued"
    assert _status(env, other) == "queued"


def test_naming_the_queued_status_still_skips_queued_items(any_env: ApiEnv) -> None:
    env = any_env
    other = _other_lane_update(env)
    flt = ItemFilter(env.a.id, ref=SKU, statuses=("queued",))
    assert sorted(env.service.act_where(env.root, flt, "skip")) == [env.a.queued_item, other]
    assert _status(env, env.a.failed_item) == "failed"
    with pytest.raises(InvalidInput, match="retry applies only to failed items"):
        env.service.act_where(env.root, ItemFilter(env.a.id, statuses=("queued",)), "retry")


def test_the_counts_by_instruction_and_lane_match_what_the_action_touches(any_env: ApiEnv) -> None:
    env = any_env
    _other_lane_update(env)
    groups = env.service.bulk_counts(env.root, ItemFilter(env.a.id, ref=SKU), "skip")
    assert [(g.instruction, g.connection_id, g.items) for g in groups] == [
        ("update_product", env.a.channel, 1)
    ]
    named = ItemFilter(env.a.id, ref=SKU, statuses=("failed", "queued"))
    groups = env.service.bulk_counts(env.root, named, "skip")
    assert sum(g.items for g in groups) == 3 and len(groups) == 2
    by_lane = {g.connection_id: g.items for g in groups}
    assert by_lane[env.a.channel] == 2


def test_api_skip_by_filter_defaults_to_failed(any_env: ApiEnv) -> None:
    env = any_env
    other = _other_lane_update(env)
    r = env.http.post(
        f"/v1/clients/{env.a.id}/items/skip",
        headers=env.headers(env.a.tokens["operator"]),
        json={"filter": {"ref": SKU}},
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"affected": 1, "ids": [env.a.failed_item]}
    assert _status(env, other) == "queued" and _status(env, env.a.queued_item) == "queued"


def _bulk_form(token: str, **extra: str) -> dict[str, str]:
    return {
        "csrf": token,
        "action": "skip",
        "scope": "filter",
        "filters": f'{{"ref": "{SKU}"}}',
    } | extra


def test_console_bulk_by_filter_confirms_counts_per_instruction_and_lane(env: ApiEnv) -> None:
    other = _other_lane_update(env)
    token = sign_in(env)
    base = f"/console/clients/{env.a.id}"
    confirm = env.http.post(f"{base}/bulk", data=_bulk_form(token))
    assert confirm.status_code == 200, confirm.text
    assert "Skip 1 item?" in confirm.text
    table = confirm.text.split("<tbody>")[1].split("</tbody>")[0]
    rows = re.findall(r"<tr>(.*?)</tr>", table, re.S)
    assert len(rows) == 1 and "update_product" in rows[0] and "Shop" in rows[0]
    done = env.http.post(f"{base}/bulk", data=_bulk_form(token, confirmed="yes"))
    assert done.status_code == 200
    assert _status(env, env.a.failed_item) == "skipped"
    assert _status(env, other) == "queued" and _status(env, env.a.queued_item) == "queued"


@pytest.mark.parametrize(
    "back",
    [
        "javascript:alert(1)",
        "https://evil.example/x",
        "//evil.example/x",
        "/\\evil.example",
        "\\\\evil.example",
        "/\t/evil.example",
        "items",
    ],
)
def test_console_bulk_refuses_a_back_target_off_the_site(env: ApiEnv, back: str) -> None:
    token = sign_in(env)
    base = f"/console/clients/{env.a.id}"
    confirm = env.http.post(f"{base}/bulk", data=_bulk_form(token, back=back))
    assert confirm.status_code == 422, confirm.text
    assert "must be a path of the console" in confirm.text
    done = env.http.post(
        f"{base}/bulk", data=_bulk_form(token, back=back, confirmed="yes"), follow_redirects=False
    )
    assert done.status_code == 422
    assert _status(env, env.a.failed_item) == "failed"  # nothing done on a tampered form


def test_console_bulk_keeps_a_same_site_back_target(env: ApiEnv) -> None:
    token = sign_in(env)
    base = f"/console/clients/{env.a.id}"
    back = f"{base}/items?ref={SKU}"
    confirm = env.http.post(f"{base}/bulk", data=_bulk_form(token, back=back))
    assert confirm.status_code == 200 and f'href="{base}/items?ref={SKU}"' in confirm.text
    done = env.http.post(
        f"{base}/bulk", data=_bulk_form(token, back=back, confirmed="yes"), follow_redirects=False
    )
    assert done.status_code == 303 and done.headers["location"].startswith(back)


def test_cli_skip_by_sku_leaves_queued_items_and_says_what_it_touches(
    env: ApiEnv, tmp_path: Path
) -> None:
    other = _other_lane_update(env)
    url = f"sqlite:///{tmp_path}/bulk.db"
    runner = CliRunner()
    args = ["skip", "--sku", SKU, "--client", "merchant-a", "--db", url]
    refused = runner.invoke(cli, args)
    assert refused.exit_code == 2
    assert "1 update_product in lane" in refused.stderr and "add --yes" in refused.stderr
    done = runner.invoke(cli, [*args, "--yes"])
    assert done.exit_code == 0, done.output
    assert "skipped 1 item" in done.stdout
    assert _status(env, other) == "queued" and _status(env, env.a.queued_item) == "queued"
    named = runner.invoke(cli, [*args, "--status", "queued", "--yes"])
    assert named.exit_code == 0 and "skipped 2 items" in named.stdout


@pytest.mark.parametrize("value", ["²", "1" * 40, "-1"])
def test_console_bulk_refuses_ids_that_are_not_ids(env: ApiEnv, value: str) -> None:
    token = sign_in(env)
    form = {"csrf": token, "action": "skip", "scope": "selected", "ids": value}
    r = env.http.post(f"/console/clients/{env.a.id}/bulk", data=form)
    assert r.status_code == 422 and "not an id" in r.text
