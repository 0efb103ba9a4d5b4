"""The oscar connector against the real django-oscar store, on what it must not take over
(issue 21 review): an existing user of the account's username is linked only when it is
one Stockyard could have made (not staff, not a superuser; in one of the connector's
groups, or in none and unable to sign in), the users list it searches is bounded, and a
product's code that is another product's variant (or a standalone product) is refused
rather than overwritten."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from stockyard.connectors.base import ChannelProduct, ChannelVariant
from stockyard.connectors.oscar import OscarConnector
from stockyard.errors import PermanentError

if TYPE_CHECKING:
    from systems.oscar import OscarStore

# A password Django can check (any hash of its own format counts as usable).
USABLE = "pbkdf2_sha256$1000000$salt$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g="


def _sql(store: OscarStore, query: str, *args: Any) -> list[Any]:
    with sqlite3.connect(store.database, timeout=30) as db:
        rows = db.execute(query, args).fetchall()
    db.close()
    return rows


def _user(store: OscarStore, username: str, password: str, staff: bool, superuser: bool) -> int:
    """A user made in Oscar by someone else (a shopper, an operator), straight in its
    database: the admin API cannot make staff."""
    _sql(
        store,
        "INSERT INTO auth_user (password, is_superuser, username, first_name, last_name,"
        " email, is_staff, is_active, date_joined) VALUES (?, ?, ?, '', '', ?, ?, 1,"
        " '2026-01-01 00:00:00')",
        password,
        int(superuser),
        username,
        f"{username.lower()}@staff.example",
        int(staff),
    )
    return int(_sql(store, "SELECT id FROM auth_user WHERE username = ?", username)[0][0])


def _email(store: OscarStore, username: str) -> str:
    return str(_sql(store, "SELECT email FROM auth_user WHERE username = ?", username)[0][0])


@pytest.fixture
def connector(oscar: OscarStore) -> Iterator[OscarConnector]:
    (group,) = _sql(oscar, "SELECT id FROM auth_group WHERE name = 'trade'")[0]
    made = OscarConnector({"url": oscar.url, "token": oscar.token, "groups": {"trade": int(group)}})
    yield made
    made.close()


def _customer(code: str, group: str | None = "trade") -> dict[str, Any]:
    return {"code": code, "email": "mallory@evil.example", "name": "Mal Lory", "group": group}


@pytest.mark.parametrize(
    ("username", "password", "staff", "superuser", "why"),
    [
        ("ACC-STAFF", "!unusable", True, False, "staff"),
        ("ACC-ROOT", "!unusable", False, True, "superuser"),
        ("ACC-SHOPPER", USABLE, False, False, "not in the groups"),
    ],
)
def test_a_user_stockyard_could_not_have_made_is_never_taken_over(
    oscar: OscarStore,
    connector: OscarConnector,
    username: str,
    password: str,
    staff: bool,
    superuser: bool,
    why: str,
) -> None:
    _user(oscar, username, password, staff, superuser)
    with pytest.raises(PermanentError, match=f"user {username!r} .*{why}"):
        connector.upsert_customer(_customer(username), None, "k")
    assert _email(oscar, username) == f"{username.lower()}@staff.example"


def test_the_stores_own_admin_is_never_taken_over(
    oscar: OscarStore, connector: OscarConnector
) -> None:
    before = _email(oscar, "stockyard-admin")
    with pytest.raises(PermanentError, match="superuser"):
        connector.upsert_customer(_customer("stockyard-admin", None), None, "k")
    assert _email(oscar, "stockyard-admin") == before


def test_a_user_without_groups_or_password_is_linked(
    oscar: OscarStore, connector: OscarConnector
) -> None:
    """What an earlier attempt made for a customer at public prices (no group) looks
    like: linked and updated."""
    made = _user(oscar, "ACC-PLAIN", "!unusable", False, False)
    assert connector.upsert_customer(_customer("ACC-PLAIN"), None, "k") == str(made)
    assert _email(oscar, "ACC-PLAIN") == "mallory@evil.example"


def test_the_users_list_searched_is_bounded(oscar: OscarStore, connector: OscarConnector) -> None:
    connector.upsert_customer(_customer("ACC-BOUND"), None, "k")
    connector.api.max_answer = 400  # far fewer bytes than the store's users take
    with pytest.raises(PermanentError, match=r"too many users .*'ACC-BOUND'.*by hand"):
        connector.upsert_customer(_customer("ACC-BOUND"), None, "k2")


def _variant(sku: str) -> ChannelVariant:
    return ChannelVariant(sku, {"price": "5.00", "quantity": 1, "options": {"Size": sku}})


def test_a_code_that_is_another_products_variant_is_refused(
    oscar: OscarStore, connector: OscarConnector
) -> None:
    first = ChannelProduct("SHIRT", {"title": "Shirt", "description": "Cotton"}, [_variant("SH-1")])
    made = connector.create_product(first, "k1")
    child = made.variants["SH-1"]
    # Another product whose code is that variant's SKU: not written over it.
    clash = ChannelProduct("SH-1", {"title": "Intruder", "description": "x"}, [_variant("IN-1")])
    with pytest.raises(PermanentError, match=r"UPC 'SH-1' is .*child.*not a parent"):
        connector.create_product(clash, "k2")
    (title,) = _sql(oscar, "SELECT title FROM catalogue_product WHERE id = ?", int(child))[0]
    assert title != "Intruder"
