"""POST items is a OneHop route (stockyard.web.api.onehop): answered without FastAPI's own
request handler. Its answers must be FastAPI's: the same endpoint is mounted again as a
plain FastAPI route in the same application, and every request of a corpus (credentials x
path x body) gets the same status, headers and problem document from both."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stockyard.web.api import schemas as s
from stockyard.web.api.onehop import OneHop
from stockyard.web.api.routes import items
from tests.support.api_env import ApiEnv

REFERENCE = "/reference/v1/clients/{client_id}/items"
JSON = "application/json"
GOOD = {"items": [{"instruction": "sync_order", "payload": {"n": 1}}]}
BODIES: list[tuple[str, bytes | None, str | None]] = [
    ("good", json.dumps(GOOD).encode(), JSON),
    ("two, one keyed", json.dumps({"items": [
        {"instruction": "sync_order", "idempotency_key": "k-1"},
        {"instruction": "sync_order", "refs": ["SKU-1"], "delay": 5},
    ]}).encode(), JSON),
    ("bad fields", b'{"items": [{"instruction": "", "refs": [""], "delay": -1, "x": 1}]}', JSON),
    ("no items", b'{"items": []}', JSON),
    ("not an object", b"[1]", JSON),
    ("null", b"null", JSON),
    ("unknown instruction", b'{"items": [{"instruction": "no_such_thing"}]}', JSON),
    ("internal instruction", b'{"items": [{"instruction": "init_channel_page"}]}', JSON),
    ("blocking without a lane", b'{"items": [{"instruction": "update_product"}]}', JSON),
    ("truncated JSON", b'{"items": [', JSON),
    ("not UTF-8", b'{"items": "\xff"}', JSON),
    ("NaN", b'{"items": [{"instruction": "sync_order", "payload": {"n": NaN}}]}', JSON),
    ("empty", b"", JSON),
    ("none at all", None, None),
    ("untyped JSON", json.dumps(GOOD).encode(), None),
    ("text/plain", json.dumps(GOOD).encode(), "text/plain"),
    ("+json", json.dumps(GOOD).encode(), "application/vnd.stockyard+json; charset=utf-8"),
]  # fmt: skip


@pytest.fixture
def env(tmp_path: Path) -> Iterator[ApiEnv]:
    e = ApiEnv(f"sqlite:///{tmp_path}/api.db")
    e.app.add_api_route(
        REFERENCE, items.enqueue, methods=["POST"], status_code=201, response_model=s.Enqueued
    )
    yield e
    e.close()


def answer(env: ApiEnv, path: str, headers: dict[str, str], body: bytes | None) -> Any:
    r = env.http.post(path, headers=headers, content=body)
    document = r.json() if r.content else None
    if isinstance(document, dict) and "ids" in document:
        document["ids"] = len(document["ids"])  # the two routes draw different ids
    kept = ("content-type", "www-authenticate", "retry-after")
    return r.status_code, {h: r.headers.get(h) for h in kept}, document


def test_post_items_is_a_one_hop_route() -> None:
    (route,) = [r for r in items.router.routes if getattr(r, "name", "") == "enqueue"]
    assert isinstance(route, OneHop)


def test_answers_are_those_of_fastapis_own_handler(env: ApiEnv) -> None:
    credentials = {
        "administrator": env.headers(env.a.tokens["administrator"]),
        "read-only": env.headers(env.a.tokens["read-only"]),
        "nothing": {},
        "unknown key": env.headers("sy_key_made_up"),
        "empty bearer": {"Authorization": "Bearer "},
        "basic": {"Authorization": "Basic eDp5"},
    }
    clients = [str(env.a.id), str(env.b.id), "0", "abc", "99999999999999999999"]
    compared, statuses = 0, set()
    for (who, headers), client, (what, body, media) in itertools.product(
        credentials.items(), clients, BODIES
    ):
        sent = {**headers, **({"content-type": media} if media else {})}
        ours = answer(env, f"/v1/clients/{client}/items", sent, body)
        theirs = answer(env, REFERENCE.format(client_id=client), sent, body)
        assert ours == theirs, (who, client, what)
        statuses.add(ours[0])
        compared += 1
    assert compared == len(credentials) * len(clients) * len(BODIES)
    assert statuses == {201, 400, 401, 403, 404, 422}


def test_a_route_of_another_shape_is_refused() -> None:
    def listing(client_id: int, limit: int = 50) -> s.Enqueued:
        return s.Enqueued(ids=[])

    with pytest.raises(TypeError, match="OneHop route takes"):
        OneHop("/v1/clients/{client_id}/x", listing, methods=["POST"], response_model=s.Enqueued)
