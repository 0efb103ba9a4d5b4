"""The remote-worker protocol over HTTP, with the real application (docs/remote-workers.md):
an agent connection's orders are claimed, run by the agent and settled; its credential
reaches its own connection's work and nothing else. Both backends."""

from __future__ import annotations

import itertools
import json
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from stockyard.engine import ItemFilter, Request
from stockyard.signing import sign
from tests.support.api_env import ApiEnv, Tenant
from tests.support.queues import UrlMaker

SECRET_A = "whsec_" + "YWdlbnQtYS1zZWNyZXQtYWdlbnQtYS1zZWNyZXQh"
SECRET_B = "whsec_" + "YWdlbnQtYi1zZWNyZXQtYWdlbnQtYi1zZWNyZXQh"
_ids = itertools.count(1)


@pytest.fixture
def env(new_url: UrlMaker) -> Iterator[ApiEnv]:
    e = ApiEnv(new_url())
    e.a.agent = _agent(e, e.a, SECRET_A)  # type: ignore[attr-defined]
    e.b.agent = _agent(e, e.b, SECRET_B)  # type: ignore[attr-defined]
    yield e
    e.close()


def _agent(env: ApiEnv, tenant: Tenant, secret: str) -> int:
    view = env.service.create_connection(
        env.root,
        tenant.id,
        "source",
        "agent",
        f"Sage 200 of {tenant.name}",
        {"description": "beside the ERP"},
        {"webhook_secret": secret},
    )
    return view.id


def agent_of(tenant: Tenant) -> int:
    return int(tenant.agent)  # type: ignore[attr-defined]


def call(
    env: ApiEnv,
    connection: int,
    path: str,
    body: dict[str, Any],
    secret: str | None = SECRET_A,
) -> httpx.Response:
    raw = json.dumps(body).encode()
    headers = {"content-type": "application/json"}
    if secret is not None:
        headers |= sign(secret, f"msg_{next(_ids)}", raw)
    answer: httpx.Response = env.http.post(
        f"/v1/agent/{connection}/{path}", content=raw, headers=headers
    )
    return answer


def add_order(env: ApiEnv, tenant: Tenant, connection: int | None = None) -> int:
    (item,) = env.queue.enqueue(
        tenant.id,
        [
            Request(
                "add_order",
                {"order_id": tenant.order},
                connection or agent_of(tenant),
                idempotency_key=f"t{time.monotonic_ns()}",
            )
        ],
    )
    return item


def claim(env: ApiEnv, session: str = "s1", **body: Any) -> list[dict[str, Any]]:
    answer = call(env, agent_of(env.a), "claim", {"session": session, **body})
    assert answer.status_code == 200, answer.text
    assert answer.json()["lease_seconds"] > 0
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


# --------------------------------------------------------------------------- the protocol


def test_hello_names_the_connection(env: ApiEnv) -> None:
    answer = call(env, agent_of(env.a), "hello", {})
    assert answer.status_code == 200
    assert answer.json() == {"connection": agent_of(env.a), "description": "Sage 200 of merchant-a"}


def test_claim_settle_done_completes_the_order_flow(env: ApiEnv) -> None:
    item = add_order(env, env.a)
    (work,) = claim(env, limit=5)
    assert (work["id"], work["attempt"], work["instruction"]) == (item, 1, "add_order")
    assert work["call"] == "create_order"
    assert work["args"]["order"]["remote_id"] == "O-merchant-a"
    assert work["args"]["key"] == f"stockyard-item-{item}"
    assert env.queue.get(env.a.id, item).status == "running"
    done = {"id": item, "attempt": 1, "outcome": "done", "result": "SO-1001"}
    answer = call(env, agent_of(env.a), "settle", {"session": "s1", "outcomes": [done]})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"settled": [item], "refused": []}
    assert env.queue.get(env.a.id, item).status == "done"
    stored = env.service.store.order(env.a.id, env.a.order)
    assert (stored.source_code, stored.state) == ("SO-1001", "confirmed")
    # The flow's follow-up: the order goes to the client's warehouse.
    follow = env.queue.list_items(ItemFilter(env.a.id, instructions=("fulfill_order",)))
    assert [(i.connection_id, i.parent_id) for i in follow] == [(env.a.warehouse, item)]
    # Settled once: the same outcome again is refused, and nothing is left to claim.
    again = call(env, agent_of(env.a), "settle", {"session": "s1", "outcomes": [done]})
    assert again.json() == {"settled": [], "refused": [item]}
    assert claim(env) == []


def test_an_order_already_written_never_reaches_the_agent(env: ApiEnv) -> None:
    env.service.store.update_order(env.a.order, source_code="SO-7", state="confirmed")
    item = add_order(env, env.a)
    assert claim(env) == []
    assert env.queue.get(env.a.id, item).status == "done"


def test_the_claim_waits_for_work_and_answers_when_it_comes(env: ApiEnv) -> None:
    assert claim(env, wait=0) == []
    later = threading.Timer(0.3, lambda: add_order(env, env.a))
    later.start()
    try:
        started = time.monotonic()
        items = claim(env, wait=25)
        # Answered with the work, long before the wait was over.
        assert [w["call"] for w in items] == ["create_order"]
        assert time.monotonic() - started < 20
    finally:
        later.cancel()


@pytest.mark.parametrize(
    ("outcome", "status", "error"),
    [
        (
            {"outcome": "transient", "error": "ERP locked", "retry_after": 60},
            "queued",
            "ERP locked",
        ),
        (
            {"outcome": "permanent", "error": "unknown customer C9"},
            "failed",
            "unknown customer C9",
        ),
    ],
)
def test_failures_the_agent_reports(
    env: ApiEnv, outcome: dict[str, Any], status: str, error: str
) -> None:
    item = add_order(env, env.a)
    (work,) = claim(env)
    body = {"session": "s1", "outcomes": [{"id": item, "attempt": work["attempt"], **outcome}]}
    answer = call(env, agent_of(env.a), "settle", body)
    assert answer.json() == {"settled": [item], "refused": []}
    found = env.queue.get(env.a.id, item)
    assert (found.status, found.error) == (status, error)
    assert env.service.store.order(env.a.id, env.a.order).source_code is None
    if status == "queued":
        assert found.run_after >= time.time() + 30  # its retry hint was kept
        assert claim(env) == []


def test_a_lost_lease_is_refused_and_the_session_ends(env: ApiEnv) -> None:
    item = add_order(env, env.a)
    (work,) = claim(env)
    assert call(env, agent_of(env.a), "heartbeat", {"session": "s1"}).json() == {"alive": True}
    time.sleep(0.05)
    env.queue.reap(0.01)
    done = {"id": item, "attempt": work["attempt"], "outcome": "done", "result": "SO-1"}
    answer = call(env, agent_of(env.a), "settle", {"session": "s1", "outcomes": [done]})
    assert answer.json() == {"settled": [], "refused": [item]}
    assert env.service.store.order(env.a.id, env.a.order).source_code is None
    for path, body in (("claim", {"session": "s1"}), ("heartbeat", {"session": "s1"})):
        ended = call(env, agent_of(env.a), path, body)
        assert ended.status_code == 409
        assert ended.json()["detail"] == "session ended: start a new one"
    # A new session takes the item again, at its next attempt.
    (again,) = claim(env, session="s2")
    assert (again["id"], again["attempt"]) == (item, 2)


def test_a_lost_claim_answer_is_handed_back_to_the_same_session(env: ApiEnv) -> None:
    """The claim's answer never reached the agent (a timeout, a dropped connection): its
    next claim with the same session hands the item back, at the same attempt, with its
    call again, unless the agent says it is still working on it (`holding`)."""
    item = add_order(env, env.a)
    (lost,) = claim(env, session="s1")
    (again,) = claim(env, session="s1")
    assert again == lost
    assert claim(env, session="s1", holding=[item]) == []
    done = {"id": item, "attempt": again["attempt"], "outcome": "done", "result": "SO-9"}
    answer = call(env, agent_of(env.a), "settle", {"session": "s1", "outcomes": [done]})
    assert answer.json() == {"settled": [item], "refused": []}
    assert env.service.store.order(env.a.id, env.a.order).source_code == "SO-9"
    assert claim(env, session="s1") == []


def test_a_lost_settle_answer_is_handed_back_and_settled_again(env: ApiEnv) -> None:
    """The settle never arrived: the items stay this session's, and its next claim hands
    them back (the agent's write step finds the order it wrote and answers its code)."""
    first, second = add_order(env, env.a), add_order(env, env.a)
    works = claim(env, session="s1", limit=5)
    assert sorted(w["id"] for w in works) == [first, second]
    again = claim(env, session="s1", limit=1)
    assert [w["id"] for w in again] == [first]
    outcomes = [
        {"id": w["id"], "attempt": w["attempt"], "outcome": "done", "result": "SO-3"} for w in works
    ]
    answer = call(env, agent_of(env.a), "settle", {"session": "s1", "outcomes": outcomes})
    assert answer.json() == {"settled": [first, second], "refused": []}


@pytest.mark.parametrize(
    ("result", "problem"),
    [
        ("", "the agent's result is empty"),
        ("   ", "the agent's result is empty"),
        ("S" * 256, "the agent's result is 256 characters long (at most 255)"),
    ],
)
def test_a_bad_result_fails_that_item_alone(env: ApiEnv, result: str, problem: str) -> None:
    """One outcome Stockyard cannot store fails its item for good, naming the problem; the
    others of the settle are recorded (a 422 would leave them all running)."""
    first, second = add_order(env, env.a), add_order(env, env.a)
    works = {w["id"]: w for w in claim(env, limit=5)}
    outcomes = [
        {"id": first, "attempt": works[first]["attempt"], "outcome": "done", "result": "SO-1"},
        {"id": second, "attempt": works[second]["attempt"], "outcome": "done", "result": result},
    ]
    answer = call(env, agent_of(env.a), "settle", {"session": "s1", "outcomes": outcomes})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"settled": [first, second], "refused": []}
    assert env.queue.get(env.a.id, first).status == "done"
    failed = env.queue.get(env.a.id, second)
    assert (failed.status, failed.error_kind) == ("failed", "permanent")
    assert (failed.error or "").startswith(problem), failed.error


def test_an_overlong_error_is_cut_not_refused(env: ApiEnv) -> None:
    item = add_order(env, env.a)
    (work,) = claim(env)
    error = "ERP says: " + "x" * 30_000 + " the end"
    failed = {"id": item, "attempt": work["attempt"], "outcome": "permanent", "error": error}
    answer = call(env, agent_of(env.a), "settle", {"session": "s1", "outcomes": [failed]})
    assert answer.json() == {"settled": [item], "refused": []}
    kept = env.queue.get(env.a.id, item).error or ""
    assert kept.startswith("ERP says: x") and kept.endswith("x the end")
    assert len(kept) < 30_000


def test_a_disabled_agent_connection_hands_out_nothing(env: ApiEnv) -> None:
    """Disabling is the operator's stop: the agent's claims and heartbeats are refused (its
    session's items are released by the reaper), but what the ERP already did is still
    recorded."""
    agent = agent_of(env.a)
    held = add_order(env, env.a)
    (work,) = claim(env)
    env.service.set_connection_enabled(env.root, env.a.id, agent, False)
    waiting = add_order(env, env.a)
    for path, session in (("claim", "s1"), ("claim", "s2"), ("heartbeat", "s1")):
        answer = call(env, agent, path, {"session": session})
        assert answer.status_code == 409, answer.text
        assert answer.json()["detail"] == f"connection {agent} is disabled"
    assert env.queue.get(env.a.id, waiting).status == "queued"
    done = {"id": held, "attempt": work["attempt"], "outcome": "done", "result": "SO-5"}
    answer = call(env, agent, "settle", {"session": "s1", "outcomes": [done]})
    assert answer.json() == {"settled": [held], "refused": []}
    assert env.service.store.order(env.a.id, env.a.order).source_code == "SO-5"
    env.service.set_connection_enabled(env.root, env.a.id, agent, True)
    env.service.store.update_order(env.a.order, source_code=None, state="new")
    assert [w["id"] for w in claim(env, session="s2")] == [waiting]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("claim", {"session": "bad session!"}),
        ("claim", {"session": "x" * 65}),
        ("claim", {"session": "s", "limit": 0}),
        ("claim", {"session": "s", "limit": 51}),
        ("claim", {"session": "s", "wait": 26}),
        ("claim", {"session": "s", "wait": "soon"}),
        ("claim", {"session": "s", "extra": 1}),
        ("claim", {"session": "s", "holding": 5}),
        ("claim", {"session": "s", "holding": ["x"]}),
        ("claim", {"session": "s", "holding": list(range(1, 1002))}),
        ("claim", {}),
        ("heartbeat", {}),
        ("settle", {"session": "s", "outcomes": []}),
        ("settle", {"session": "s", "outcomes": [{"id": 1, "attempt": 1, "outcome": "done"}]}),
        ("settle", {"session": "s", "outcomes": [{"id": 1, "attempt": 1, "outcome": "maybe"}]}),
        (
            "settle",
            {"session": "s", "outcomes": [{"id": 1, "attempt": 1, "outcome": "transient"}]},
        ),
        (
            "settle",
            {
                "session": "s",
                "outcomes": [{"id": 1, "attempt": 1, "outcome": "done", "result": "A"}] * 2,
            },
        ),
        (
            "settle",
            {
                "session": "s",
                "outcomes": [
                    {"id": n, "attempt": 1, "outcome": "done", "result": "A"} for n in range(1, 52)
                ],
            },
        ),
        ("hello", {"anything": 1}),
    ],
)
def test_bad_input_is_a_422_naming_it(env: ApiEnv, path: str, body: dict[str, Any]) -> None:
    answer = call(env, agent_of(env.a), path, body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"]


# ---------------------------------------------------------------------------- security


def test_every_refusal_is_the_same_401(env: ApiEnv) -> None:
    body = {"session": "s1"}
    a, b = agent_of(env.a), agent_of(env.b)
    # A non-agent connection with a webhook_secret that signs correctly: still refused.
    env.service.update_connection(
        env.root, env.a.id, env.a.source, secrets={"webhook_secret": SECRET_B}
    )
    cases = {
        "unsigned": call(env, a, "claim", body, secret=None),
        "badly signed": call(env, a, "claim", body, secret="whsec_b3RoZXItc2VjcmV0"),
        "another connection's secret": call(env, a, "claim", body, secret=SECRET_B),
        "another client's connection": call(env, b, "claim", body, secret=SECRET_A),
        "not an agent connection": call(env, env.a.source, "claim", body, secret=SECRET_B),
        "no such connection": call(env, 999_999, "claim", body),
        "settle, unsigned": call(env, a, "settle", {"session": "s", "outcomes": []}, None),
        "heartbeat of another's": call(env, b, "heartbeat", body, secret=SECRET_A),
        "hello of another's": call(env, b, "hello", {}, secret=SECRET_A),
    }
    answers = {name: (r.status_code, r.json()["detail"]) for name, r in cases.items()}
    assert set(answers.values()) == {(401, answers["unsigned"][1])}, answers
    assert "webhook_secret" in answers["unsigned"][1]


def test_a_signed_request_is_taken_once_on_any_route(env: ApiEnv) -> None:
    """The signature covers the message id, its time and the body, not the route: a
    captured heartbeat {"session": ...} is a valid claim body. Each message id is taken
    once per connection, so neither it nor any other request can be replayed."""
    refused = call(env, agent_of(env.a), "claim", {"session": "s1"}, secret=None).json()
    base = f"/v1/agent/{agent_of(env.a)}"

    def signed(body: dict[str, Any], message_id: str) -> tuple[bytes, dict[str, str]]:
        raw = json.dumps(body).encode()
        return raw, {"content-type": "application/json", **sign(SECRET_A, message_id, raw)}

    raw, claim_headers = signed({"session": "s1"}, "msg_claim")
    assert env.http.post(f"{base}/claim", content=raw, headers=claim_headers).status_code == 200
    raw, beat = signed({"session": "s1"}, "msg_beat")
    assert env.http.post(f"{base}/heartbeat", content=raw, headers=beat).status_code == 200
    item = add_order(env, env.a)
    for path, headers in (("claim", beat), ("claim", claim_headers), ("heartbeat", beat)):
        again = env.http.post(f"{base}/{path}", content=raw, headers=headers)
        assert (again.status_code, again.json()["detail"]) == (401, refused["detail"])
    assert env.queue.get(env.a.id, item).status == "queued"
    hello, hello_headers = signed({}, "msg_hello")
    assert env.http.post(f"{base}/hello", content=hello, headers=hello_headers).status_code == 200
    replayed = env.http.post(f"{base}/hello", content=hello, headers=hello_headers)
    assert replayed.status_code == 401
    # Another connection's message ids are its own.
    raw = json.dumps({"session": "s1"}).encode()
    theirs = {"content-type": "application/json", **sign(SECRET_B, "msg_claim", raw)}
    other = env.http.post(f"/v1/agent/{agent_of(env.b)}/claim", content=raw, headers=theirs)
    assert other.status_code == 200, other.text


def test_a_credential_reaches_only_its_own_connection(env: ApiEnv) -> None:
    theirs = add_order(env, env.b)
    got = call(env, agent_of(env.b), "claim", {"session": "b1"}, secret=SECRET_B)
    (their_work,) = got.json()["items"]
    assert their_work["id"] == theirs
    # A's agent claims nothing of B's, and cannot settle B's item.
    ours = add_order(env, env.a)
    assert [w["id"] for w in claim(env, session="b1")] == [ours]  # same name, own session
    forged = {"id": theirs, "attempt": 1, "outcome": "done", "result": "SO-X"}
    answer = call(env, agent_of(env.a), "settle", {"session": "b1", "outcomes": [forged]})
    assert answer.json() == {"settled": [], "refused": [theirs]}
    assert env.queue.get(env.b.id, theirs).status == "running"
    assert env.service.store.order(env.b.id, env.b.order).source_code is None
    # Nor push to B's connection.
    product = {
        "products": [{"code": "P", "title": "P", "variants": [{"sku": "S", "price": "1.00"}]}]
    }
    raw = json.dumps(product).encode()
    pushed = env.http.post(
        f"/v1/inbound/{agent_of(env.b)}/products",
        content=raw,
        headers={"content-type": "application/json", **sign(SECRET_A, "m-push", raw)},
    )
    assert pushed.status_code == 401
    own = env.http.post(
        f"/v1/inbound/{agent_of(env.a)}/products",
        content=raw,
        headers={"content-type": "application/json", **sign(SECRET_A, "m-push", raw)},
    )
    assert own.status_code == 202, own.text


def test_the_secret_never_appears_in_an_answer_or_a_log(
    env: ApiEnv, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    item = add_order(env, env.a)
    answers = [
        call(env, agent_of(env.a), "hello", {}),
        call(env, agent_of(env.a), "claim", {"session": "s1"}),
        call(env, agent_of(env.a), "claim", {"session": "bad!"}),
        call(env, agent_of(env.b), "claim", {"session": "s1"}),
        call(
            env,
            agent_of(env.a),
            "settle",
            {
                "session": "s1",
                "outcomes": [{"id": item, "attempt": 1, "outcome": "permanent", "error": SECRET_A}],
            },
        ),
        env.http.get(
            f"/v1/clients/{env.a.id}/connections/{agent_of(env.a)}",
            headers=env.headers(env.a.tokens["administrator"]),
        ),
    ]
    bare = SECRET_A.removeprefix("whsec_")
    for answer in answers:
        assert bare not in answer.text
    assert bare not in caplog.text
    assert answers[-1].json()["secrets"] == ["webhook_secret"]
    # An error the agent reports that echoes the secret is kept without it.
    assert bare not in (env.queue.get(env.a.id, item).error or "")


# ------------------------------------------------------------------------ the connection


def test_an_agent_connection_needs_its_secret_and_keeps_its_connector(env: ApiEnv) -> None:
    h = env.headers(env.a.tokens["administrator"])
    path = f"/v1/clients/{env.a.id}/connections"

    def create(**body: Any) -> httpx.Response:
        """POST an agent source connection named ERP, `body` added or changed."""
        made: httpx.Response = env.http.post(
            path,
            headers=h,
            json={"kind": "source", "connector": "agent", "description": "ERP", **body},
        )
        return made

    missing = create()
    assert missing.status_code == 422
    assert "an agent connection needs a webhook_secret" in missing.json()["detail"]
    # The agent's only credential: one anyone could guess is refused, saying how to make one.
    for weak in ("short", "whsec_" + "c2hvcnQ=", "x" * 64, "whsec_not base64!"):
        refused = create(secrets={"webhook_secret": weak})
        assert refused.status_code == 422
        assert "at least 24 random bytes" in refused.json()["detail"]
        assert weak not in refused.text
    unknown = create(settings={"url": "x"}, secrets={"webhook_secret": SECRET_A})
    assert unknown.status_code == 422
    as_channel = create(kind="channel", secrets={"webhook_secret": SECRET_A})
    assert as_channel.status_code == 422
    removed = env.http.patch(
        f"{path}/{agent_of(env.a)}", headers=h, json={"secrets": {"webhook_secret": None}}
    )
    assert removed.status_code == 422
    weakened = env.http.patch(
        f"{path}/{agent_of(env.a)}", headers=h, json={"secrets": {"webhook_secret": "short"}}
    )
    assert weakened.status_code == 422
    changed = env.http.patch(f"{path}/{agent_of(env.a)}", headers=h, json={"connector": "http"})
    assert changed.status_code == 422
    # A secret stored before the rule is judged only when replaced: the rest still changes.
    conn = agent_of(env.a)
    old = env.service._sealer().seal({"webhook_secret": "an-older-weak-one"})
    env.service.tenancy.set_connection_secrets(env.a.id, conn, old)
    renamed = env.http.patch(f"{path}/{conn}", headers=h, json={"description": "Sage (old)"})
    assert renamed.status_code == 200, renamed.text
    env.service.tenancy.set_connection_secrets(
        env.a.id, conn, env.service._sealer().seal({"webhook_secret": SECRET_A})
    )
    # Made through the API, its orders are the agent's from the start.
    made = create(description="Another ERP", secrets={"webhook_secret": SECRET_A})
    assert made.status_code == 201, made.text
    item = add_order(env, env.a, made.json()["id"])
    env.queue.register_worker("in-process", "test", 0)
    assert item not in {j.id for j in env.queue.claim("in-process", 100)}
