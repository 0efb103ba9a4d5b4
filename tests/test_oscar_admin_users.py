"""The trade store's admin users API and the account linking, against the real Oscar
(issue 21, second review): the connector's staff token reads whether a user is staff or
a superuser but can never make one, an account the API made (no password) is linked
again when a first attempt's answer was lost, and an account number longer than Oscar's
usernames is refused instead of cut."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from stockyard.connectors.oscar import OscarConnector
from stockyard.errors import PermanentError

if TYPE_CHECKING:
    from systems.oscar import OscarStore


def _row(store: OscarStore, username: str) -> tuple[Any, ...]:
    with sqlite3.connect(store.database, timeout=30) as db:
        row = db.execute(
            "SELECT id, is_staff, is_superuser, password, email FROM auth_user WHERE username = ?",
            (username,),
        ).fetchone()
    db.close()
    return tuple(row) if row else ()


@pytest.fixture
def connector(oscar: OscarStore) -> Iterator[OscarConnector]:
    with sqlite3.connect(oscar.database, timeout=30) as db:
        (group,) = db.execute("SELECT id FROM auth_group WHERE name = 'trade'").fetchone()
    db.close()
    made = OscarConnector({"url": oscar.url, "token": oscar.token, "groups": {"trade": group}})
    yield made
    made.close()


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
def test_the_admin_token_cannot_make_a_user_staff_or_superuser(
    oscar: OscarStore, connector: OscarConnector, method: str
) -> None:
    username = f"ACC-ESCALATE-{method}"
    user_id = connector.upsert_customer({"code": username, "email": "e@x.example"}, None, "k")
    body = {"username": username, "is_superuser": True, "is_staff": True}
    with oscar.admin() as admin:
        answer = admin.request(method, f"/api/admin/users/{user_id}/", json=body)
        # Read-only fields are ignored by the serializer: the call succeeds, nothing changes.
        assert answer.status_code == 200, answer.text
        assert answer.json()["is_superuser"] is False
        assert answer.json()["is_staff"] is False
        made = admin.post(
            "/api/admin/users/",
            json={"username": f"{username}-NEW", "is_superuser": True, "is_staff": True},
        )
        assert made.status_code == 201, made.text
    assert _row(oscar, username)[1:3] == (0, 0)
    assert _row(oscar, f"{username}-NEW")[1:3] == (0, 0)


def test_the_admin_users_api_shows_the_flags_the_connector_needs(oscar: OscarStore) -> None:
    with oscar.admin() as admin:
        users = {u["username"]: u for u in admin.get("/api/admin/users/").json()}
    admin_user = users["stockyard-admin"]
    assert admin_user["is_staff"] is True
    assert admin_user["is_superuser"] is True
    assert admin_user["has_password"] is False  # seeded with an unusable password
    assert "password" not in admin_user


def test_a_public_price_account_whose_first_answer_was_lost_is_linked(
    oscar: OscarStore, connector: OscarConnector
) -> None:
    """No group (public prices): the first POST made the user (password '') but its answer
    never reached the worker; the retry finds the username taken and links that user."""
    customer = {"code": "ACC-LOST", "email": "lost@acme.example", "name": "Lo St", "group": None}
    first = connector.upsert_customer(customer, None, "k")
    assert _row(oscar, "ACC-LOST")[3] == ""  # what oscar-api's create leaves
    again = connector.upsert_customer({**customer, "email": "new@acme.example"}, None, "k")
    assert again == first
    assert _row(oscar, "ACC-LOST")[4] == "new@acme.example"


def test_an_account_number_longer_than_an_oscar_username_is_refused(
    oscar: OscarStore, connector: OscarConnector
) -> None:
    code = "A" * 151
    with pytest.raises(PermanentError, match=r"151 characters.*150"):
        connector.upsert_customer({"code": code, "email": "x@acme.example"}, None, "k")
    assert _row(oscar, code[:150]) == ()
    # 150 is Oscar's limit and still fits.
    assert connector.upsert_customer({"code": "B" * 150, "email": "b@acme.example"}, None, "k")
