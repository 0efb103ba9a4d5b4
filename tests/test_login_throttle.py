"""Sign-in under attack: failed attempts are throttled per account and per address (429
with Retry-After), an unknown email costs exactly what a wrong password costs, password
hashing runs a few at a time off the event loop, and made-up bearer tokens cannot dodge
the rate limit. Behaviour is checked by counting and by holding the hasher, never by
measuring time."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

import anyio
import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from stockyard.accounts import Accounts
from stockyard.errors import RateLimited, Unauthenticated
from stockyard.web import deps
from stockyard.web.settings import ApiSettings
from tests.support.api_env import PASSWORD, ApiEnv

EMAIL = "someone@merchant-a.example"


class CountingHasher(PasswordHasher):
    """Cheap argon2 that counts its calls and can hold verifications until released."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.hashes = 0
        self.verifies = 0
        self.active = 0
        self.most_active = 0
        self.release = threading.Event()
        self.release.set()
        self._lock = threading.Lock()

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        with self._lock:
            self.hashes += 1
        return super().hash(password, salt=salt)

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        with self._lock:
            self.verifies += 1
            self.active += 1
            self.most_active = max(self.most_active, self.active)
        try:
            assert self.release.wait(30), "the test never released the hasher"
            return super().verify(hash, password)
        finally:
            with self._lock:
                self.active -= 1


def use_hasher(env: ApiEnv, hasher: CountingHasher, slots: int = 2) -> None:
    env.service.accounts = Accounts(env.queue.db, hasher, hash_slots=slots)
    env.app.state.stockyard.hashing = anyio.CapacityLimiter(slots)


def until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 120
    while not check():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.01)


@pytest.fixture
def env(tmp_path: Path) -> Iterator[ApiEnv]:
    e = ApiEnv(f"sqlite:///{tmp_path}/throttle.db")
    yield e
    e.close()


def login(http: TestClient, email: str, password: str) -> Any:
    return http.post("/v1/sessions", json={"email": email, "password": password})


def test_failed_sign_ins_are_throttled_per_account(env: ApiEnv) -> None:
    codes = [login(env.http, EMAIL, f"guess {n}").status_code for n in range(10)]
    assert codes == [401] * 10
    r = login(env.http, EMAIL, "guess 11")
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    assert "this account" in r.json()["detail"]
    # While throttled even the right password is not checked: guessing learns nothing.
    assert login(env.http, EMAIL, PASSWORD).status_code == 429
    # Unknown emails are throttled alike, so a 429 does not tell which accounts exist.
    assert [login(env.http, "ghost@x.example", "g").status_code for _ in range(11)][-1] == 429
    # Another account from the same address is not held back by this one.
    assert login(env.http, "someone@merchant-b.example", PASSWORD).status_code == 201


def test_a_success_clears_the_account_and_the_console_is_throttled_too(env: ApiEnv) -> None:
    for n in range(9):
        assert login(env.http, EMAIL, f"guess {n}").status_code == 401
    assert login(env.http, EMAIL, PASSWORD).status_code == 201
    assert [login(env.http, EMAIL, f"again {n}").status_code for n in range(10)] == [401] * 10
    form = env.http.get("/console/login").text  # with whatever hidden fields it carries
    hidden = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', form))
    r = env.http.post("/console/login", data={**hidden, "email": EMAIL, "password": PASSWORD})
    assert r.status_code == 429 and "try again in" in r.text


def test_failed_sign_ins_are_throttled_per_address(env: ApiEnv) -> None:
    # Spraying one password over many accounts: each account fails once, the address often.
    codes = [
        login(env.http, f"user{n}@spray.example", "Summer2024!").status_code for n in range(50)
    ]
    assert codes == [401] * 50
    r = login(env.http, "user50@spray.example", "Summer2024!")
    assert r.status_code == 429 and "this address" in r.json()["detail"]
    assert int(r.headers["retry-after"]) >= 1
    assert login(env.http, EMAIL, PASSWORD).status_code == 429
    # The service throttles by whatever address the shell gives it.
    assert env.service.login(EMAIL, PASSWORD, "192.0.2.7").startswith("sy_session_")


def test_an_unknown_email_costs_what_a_wrong_password_costs(env: ApiEnv) -> None:
    hasher = CountingHasher()
    use_hasher(env, hasher)
    accounts = env.service.accounts
    env.service.set_member(env.root, env.a.id, "pending@example.com", "operator")  # no password
    with pytest.raises(Unauthenticated):
        accounts.login("warm-up@nowhere.example", "x")  # makes the dummy hash, once
    costs = {}
    for email in (EMAIL, "nobody@example.com", "pending@example.com"):
        before = (hasher.hashes, hasher.verifies)
        with pytest.raises(Unauthenticated, match="wrong email or password"):
            accounts.login(email, "wrong password")
        costs[email] = (hasher.hashes - before[0], hasher.verifies - before[1])
    assert set(costs.values()) == {(0, 1)}, costs


def test_hashing_is_bounded_whoever_calls(env: ApiEnv) -> None:
    hasher = CountingHasher()
    use_hasher(env, hasher, slots=2)
    hasher.release.clear()

    def attempt(n: int) -> str:
        try:
            return env.service.login(f"u{n}@example.com", "wrong", f"198.51.100.{n}")
        except Unauthenticated:
            return "401"

    with ThreadPoolExecutor(8) as pool:
        results = [pool.submit(attempt, n) for n in range(8)]
        until(lambda: hasher.active >= 2, "two verifications running")
        assert hasher.most_active == 2
        hasher.release.set()
        assert [f.result() for f in results] == ["401"] * 8
    assert hasher.most_active == 2 and hasher.verifies >= 8


def test_a_burst_of_sign_ins_does_not_starve_other_requests(
    env: ApiEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    hasher = CountingHasher()
    use_hasher(env, hasher, slots=2)
    monkeypatch.setattr(deps, "MAX_WAITING_LOGINS", 6)
    limiter = env.app.state.stockyard.hashing
    with TestClient(env.app) as http, ThreadPoolExecutor(12) as pool:
        with hasher_held(hasher):
            # Eight sign-ins: two hash, six wait on the event loop without a thread.
            burst = [pool.submit(login, http, f"u{n}@example.com", "x") for n in range(8)]
            until(lambda: hasher.active >= 2, "two verifications running")
            until(lambda: limiter.statistics().tasks_waiting == 6, "six sign-ins waiting")
            # Beyond the waiting room: turned away at once, not queued.
            r = login(http, "late@example.com", "x")
            assert r.status_code == 429 and "at once" in r.json()["detail"]
            # Everything else is served meanwhile.
            me = pool.submit(http.get, "/v1/me", headers=env.headers(env.a.tokens["read-only"]))
            assert me.result(timeout=30).status_code == 200
            assert hasher.most_active == 2
        assert [f.result(timeout=30).status_code for f in burst] == [401] * 8
    assert hasher.most_active == 2


class hasher_held:  # reads as a statement in the test
    def __init__(self, hasher: CountingHasher) -> None:
        self.hasher = hasher

    def __enter__(self) -> None:
        self.hasher.release.clear()

    def __exit__(self, *exc: object) -> None:
        self.hasher.release.set()


def test_made_up_bearer_tokens_do_not_escape_the_rate_limit(tmp_path: Path) -> None:
    env = ApiEnv(f"sqlite:///{tmp_path}/api.db", ApiSettings(rate_per_second=0.5, rate_burst=5))
    try:
        path = f"/v1/clients/{env.a.id}/items"
        codes = [
            env.http.get(path, headers=env.headers(f"sy_key_made-up-{n}")).status_code
            for n in range(5)
        ]
        assert codes == [401] * 5
        for bogus in ("sy_key_another", "sy_session_another", "not even a token"):
            r = env.http.get(path, headers=env.headers(bogus))
            assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert env.http.get(path).status_code == 429  # no credentials: the same address
        # Valid keys have buckets of their own elsewhere; this address waits its turn.
        assert env.http.get(path, headers=env.headers(env.a.tokens["read-only"])).status_code == 429
    finally:
        env.close()


def test_the_throttle_unit() -> None:
    from stockyard.throttle import LoginThrottle

    throttle = LoginThrottle(account=(2, 1.0), address=(3, 1.0))
    throttle.attempt("a@x", "1.2.3.4")
    throttle.attempt("a@x", "1.2.3.4")
    with pytest.raises(RateLimited) as refused:
        throttle.attempt("a@x", "1.2.3.4")
    assert 0 < refused.value.retry_after <= 1.0
    throttle.attempt("b@x", "1.2.3.4")
    with pytest.raises(RateLimited, match="address"):
        throttle.attempt("c@x", "1.2.3.4")
    throttle.succeeded("b@x", "1.2.3.4")  # gives the address one back
    throttle.attempt("c@x", "1.2.3.4")


# ------------------------------------------------- review findings: lock-out, console, IPv6


def test_a_guesser_cannot_lock_the_real_user_out(env: ApiEnv) -> None:
    accounts = env.service.accounts
    for target in (EMAIL, "root@example.com"):  # a tenant's user and the platform admin
        for n in range(10):
            with pytest.raises(Unauthenticated):
                accounts.login(target, f"guess {n}", "203.0.113.9")
        # The guesser's own tries at this account are held back...
        with pytest.raises(RateLimited, match="this account"):
            accounts.login(target, "guess 11", "203.0.113.9")
        # ...and keep being held back while the real user, elsewhere, signs in as usual.
        assert accounts.login(target, PASSWORD, "198.51.100.1").startswith("sy_session_")
        with pytest.raises(RateLimited):
            accounts.login(target, PASSWORD, "203.0.113.9")


def test_the_backstop_bounds_a_guess_spread_over_many_addresses(
    env: ApiEnv, caplog: pytest.LogCaptureFixture
) -> None:
    from stockyard.throttle import LoginThrottle

    throttle = LoginThrottle(backstop=(30, 1 / 30))
    env.service.accounts = Accounts(env.queue.db, CountingHasher(), throttle=throttle)
    accounts = env.service.accounts
    with caplog.at_level("WARNING", logger="stockyard.throttle"):
        for n in range(30):  # 3 guesses each from 10 addresses: no address is throttled
            with pytest.raises(Unauthenticated):
                accounts.login(EMAIL, f"secret-guess-{n}", f"192.0.2.{n % 10}")
        with pytest.raises(RateLimited, match="this account"):
            accounts.login(EMAIL, "secret-guess-x", "198.51.100.77")
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and EMAIL in warnings[0].getMessage()
    assert "secret-guess" not in caplog.text and PASSWORD not in caplog.text
    # The refusal spent nothing else: another account from that address is fine.
    assert accounts.login("root@example.com", PASSWORD, "198.51.100.77")
    # The default backstop is far above the per-address one.
    assert LoginThrottle().accounts.burst >= 1000


def test_made_up_console_cookies_do_not_escape_the_rate_limit(tmp_path: Path) -> None:
    env = ApiEnv(f"sqlite:///{tmp_path}/api.db", ApiSettings(rate_per_second=0.5, rate_burst=5))
    try:
        page = f"/console/clients/{env.a.id}/items"

        def get(session: str) -> Any:
            cookie = {"cookie": f"stockyard_session={session}"}
            return env.http.get(page, headers=cookie, follow_redirects=False)

        codes = [get(f"sy_session_made-up-{n}").status_code for n in range(5)]
        assert codes == [303] * 5  # to the sign-in page
        assert [get(f"sy_session_more-{n}").status_code for n in range(3)] == [429] * 3
        # Out of tokens, this address is refused before even a real session is looked at.
        assert get(env.service.login(EMAIL, PASSWORD)).status_code == 429
    finally:
        env.close()


def test_console_users_and_console_sign_ins_spend_their_buckets(tmp_path: Path) -> None:
    env = ApiEnv(f"sqlite:///{tmp_path}/api.db", ApiSettings(rate_per_second=0.5, rate_burst=5))
    try:
        session = env.service.login(EMAIL, PASSWORD)
        page = f"/console/clients/{env.a.id}/items"
        cookie = {"cookie": f"stockyard_session={session}"}
        codes = [env.http.get(page, headers=cookie).status_code for _ in range(6)]
        assert codes == [200] * 5 + [429]  # the user's bucket, not the address's
        form = env.http.get("/console/login").text
        hidden = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', form))
        data = {**hidden, "email": EMAIL, "password": "wrong"}
        codes = [env.http.post("/console/login", data=data).status_code for _ in range(6)]
        assert codes == [401] * 5 + [429]  # login:{address}, as /v1/sessions spends
    finally:
        env.close()


def test_ipv6_callers_are_keyed_by_their_64(env: ApiEnv) -> None:
    from types import SimpleNamespace

    def at(host: str | None) -> str:
        client = SimpleNamespace(host=host) if host is not None else None
        return deps.address(SimpleNamespace(client=client))  # type: ignore[arg-type]

    assert at("2001:db8:1:2::1") == at("2001:db8:1:2:ffff:ffff:ffff:ffff") == "2001:db8:1:2::/64"
    assert at("2001:db8:1:3::1") != at("2001:db8:1:2::1")
    assert at("192.0.2.7") == "192.0.2.7" and at("::ffff:192.0.2.7") == "192.0.2.7"
    assert at("testclient") == at(None) == deps.NOT_AN_ADDRESS
    # One /64 shares one per-address sign-in bucket however it rotates.
    accounts = env.service.accounts
    for n in range(50):
        with pytest.raises(Unauthenticated):
            accounts.login(f"user{n}@spray.example", "Summer2024!", at(f"2001:db8::{n:x}"))
    with pytest.raises(RateLimited, match="this address"):
        accounts.login(EMAIL, PASSWORD, at("2001:db8::beef"))


def test_many_active_buckets_are_not_rebuilt_on_every_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from stockyard import throttle

    monkeypatch.setattr(throttle, "_FORGET_AFTER", 100)
    buckets = throttle.TokenBuckets(0.001, 1000)  # nothing refills: every bucket stays active
    for n in range(200):
        buckets.take(f"k{n}")
    rebuilds, seen = 0, id(buckets._buckets)
    for n in range(1000):
        buckets.take(f"k{n % 200}")
        rebuilds += id(buckets._buckets) != seen
        seen = id(buckets._buckets)
    assert rebuilds <= 1, rebuilds
    # Buckets that have refilled are still forgotten, so memory stays bounded.
    clock = [0.0]
    monkeypatch.setattr("stockyard.throttle.time.monotonic", lambda: clock[0])
    idle = throttle.TokenBuckets(1.0, 1)
    for n in range(1000):
        clock[0] += 1.0  # a second on: every earlier bucket is full again
        idle.take(f"i{n}")
    assert len(idle._buckets) <= 101
