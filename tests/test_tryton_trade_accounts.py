"""Trade accounts in the real Tryton kept apart from web guests and kept current (issue 21
review): a guest's order never lands on a trade party by e-mail, an account that stops
being a trade customer is pulled once more as inactive, and an order on account ships to
one of the party's own addresses or to a complete new one."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from systems.launch import (
    ACME,
    TRADE_PRICE_LIST,
    TRYTON_ADMIN,
    TRYTON_DB,
    Running,
    TradeAccount,
    TrytonItem,
    add_trade_account,
    seed_tryton_items,
    tryton_client,
)

from stockyard.catalog.models import Customer
from stockyard.connectors.tryton import TrytonConnector
from stockyard.connectors.tryton.client import TrytonClient
from stockyard.errors import PermanentError

WASHER = TrytonItem("TAW", "Washer", Decimal("1.00"), (("TAW", 100),))


def erp(tryton: Running, **extra: Any) -> TrytonConnector:
    settings = {"url": tryton.url, "database": TRYTON_DB, "username": TRYTON_ADMIN[0]}
    return TrytonConnector({**settings, "password": TRYTON_ADMIN[1], **extra})


@pytest.fixture(scope="module")
def rpc(tryton: Running) -> TrytonClient:
    client = tryton_client(tryton.url)
    seed_tryton_items(client, (WASHER,))
    return client


def _party(rpc: TrytonClient, code: str) -> dict[str, Any]:
    (party,) = rpc.model(
        "party.party",
        "search_read",
        [("code", "=", code)],
        0,
        1,
        None,
        ["addresses", "contact_mechanisms"],
        context={"active_test": False},
    )
    return dict(party)


def _sale(rpc: TrytonClient, number: str) -> dict[str, Any]:
    (sale,) = rpc.model(
        "sale.sale",
        "search_read",
        [("number", "=", number)],
        0,
        1,
        None,
        ["party", "invoice_address", "shipment_address"],
    )
    return dict(sale)


def _order(number: int, customer: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "id": number,
        "remote_id": f"shop-{number}",
        "number": f"N-{number}",
        "currency": "USD",
        "customer": customer,
        "lines": [{"sku": "TAW", "quantity": 1, "price": "1.00"}],
        "total": "1.00",
        **extra,
    }


def uk_country(rpc: TrytonClient) -> None:
    """The template has no countries (Tryton loads none by itself): GB, once."""
    if not rpc.model("country.country", "search", [("code", "=", "GB")], 0, 1, None):
        rpc.model("country.country", "create", [{"name": "United Kingdom", "code": "GB"}])


def test_a_guest_with_a_trade_accounts_email_is_not_that_account(
    tryton: Running, rpc: TrytonClient
) -> None:
    acme = _party(rpc, ACME.code)
    stranger = {"name": "Mallory", "line1": "9 Elsewhere", "city": "Bristol", "postcode": "BS1"}
    connector = erp(tryton)
    for email, number in ((ACME.email, 9301), ("jo@acme-trading.example", 9302)):
        sale = _sale(
            rpc,
            connector.create_order(
                _order(
                    number,
                    {"code": "77", "email": email, "name": "Mallory"},
                    shipping_address=stranger,
                ),
                f"key-{number}",
            ),
        )
        assert sale["party"] != acme["id"]
    # Acme's party got nothing of the stranger's.
    assert _party(rpc, ACME.code) == acme

    # A guest's parties are still found again by e-mail: the same guest, the same party.
    guest = {"code": "78", "email": "gus@guests.example", "name": "Gus"}
    first = _sale(rpc, connector.create_order(_order(9303, guest, shipping_address=stranger), "a"))
    again = _sale(rpc, connector.create_order(_order(9304, guest, shipping_address=stranger), "b"))
    assert first["party"] == again["party"] != acme["id"]


def test_an_account_that_stops_being_a_trade_customer_is_pulled_as_inactive(
    tryton: Running, rpc: TrytonClient
) -> None:
    listed = rpc.model(
        "product.price_list", "search", [("name", "=", TRADE_PRICE_LIST)], 0, 1, None
    )
    dropped = TradeAccount(
        "T3001", "Dropped Ltd", "a@dropped.example", "+1 555 0101", Decimal("100"), ()
    )
    archived = TradeAccount(
        "T3002", "Archived Ltd", "a@archived.example", "+1 555 0102", Decimal("100"), ()
    )
    ids = {a.code: add_trade_account(rpc, a, listed[0], None) for a in (dropped, archived)}
    connector = erp(tryton, price_lists={"trade": TRADE_PRICE_LIST})
    page = connector.fetch_customers(None)
    first = {r["code"]: r for r in page.records}
    assert first["T3001"]["price_tier"] == "trade" and "active" not in first["T3001"]

    rpc.model(
        "party.party",
        "write",
        [ids["T3001"]],
        {"sale_price_list": None, "credit_limit_amount": None},
    )
    rpc.model("party.party", "write", [ids["T3002"]], {"active": False})
    later = connector.fetch_customers(page.cursor)
    gone = {r["code"]: r for r in later.records}
    assert set(gone) == {"T3001", "T3002"}
    for record in gone.values():
        assert Customer.model_validate(record).active is False
        assert (record["active"], record["price_tier"], record["credit_limit"]) == (
            False,
            None,
            None,
        )
    assert gone["T3002"]["name"] == "Archived Ltd"
    # Said once: a later change to a party that is no trade customer is not pulled again.
    rpc.model("party.party", "write", [ids["T3001"]], {"name": "Dropped Ltd (old)"})
    assert connector.fetch_customers(later.cursor).records == []
    # Back on a price list: a trade customer again, active.
    rpc.model("party.party", "write", [ids["T3001"]], {"sale_price_list": listed[0]})
    (back,) = connector.fetch_customers(later.cursor).records
    assert (back["code"], back["price_tier"], back.get("active", True)) == ("T3001", "trade", True)
    # A supplier's change is never pulled (it was no trade customer).
    rpc.model("party.party", "create", [{"name": "A third supplier", "code": "SUP-3"}])
    assert connector.fetch_customers(later.cursor).records[0]["code"] == "T3001"


def test_an_order_on_account_ships_to_the_partys_own_address_or_a_complete_new_one(
    tryton: Running, rpc: TrytonClient
) -> None:
    uk_country(rpc)
    listed = rpc.model(
        "product.price_list", "search", [("name", "=", TRADE_PRICE_LIST)], 0, 1, None
    )
    # An account of this test's own (add_trade_account gives it Acme's street address):
    # the other tests' Acme keeps its addresses.
    account = TradeAccount(
        "T3003", "Shipper Ltd", "s@shipper.example", "+1 555 0103", Decimal("10"), ()
    )
    add_trade_account(rpc, account, listed[0], None)
    connector = erp(tryton)
    trade = {"code": account.code, "email": account.email, "price_tier": "trade"}
    before = _party(rpc, account.code)["addresses"]
    # Its own address, as a store spells it (other case, the country given).
    own = {
        "name": "Jo",
        "line1": "1 wharf road",
        "city": "LONDON",
        "postcode": "N1 7GR",
        "country": "GB",
    }
    sale = _sale(rpc, connector.create_order(_order(9401, trade, shipping_address=own), "c"))
    assert sale["shipment_address"] in before
    # A country Tryton does not have does not matter for an address without one.
    unknown = {**own, "country": "ZZ"}
    sale = _sale(rpc, connector.create_order(_order(9405, trade, shipping_address=unknown), "g"))
    assert sale["shipment_address"] in before
    assert _party(rpc, account.code)["addresses"] == before

    # Somewhere new without a country: refused, naming what is missing; nothing added.
    partial = {"name": "Site", "line1": "3 Quay", "city": "Hull", "postcode": "HU1"}
    with pytest.raises(PermanentError, match="country"):
        connector.create_order(_order(9402, trade, shipping_address=partial), "d")
    assert _party(rpc, account.code)["addresses"] == before
    with pytest.raises(PermanentError, match="no country 'ZZ'"):
        connector.create_order(
            _order(9403, trade, shipping_address={**partial, "country": "ZZ"}), "e"
        )
    # Complete: added to the account, with its country.
    sale = _sale(
        rpc,
        connector.create_order(
            _order(9404, trade, shipping_address={**partial, "country": "GB"}), "f"
        ),
    )
    (made,) = rpc.model(
        "party.address", "read", [sale["shipment_address"]], ["party", "city", "country"]
    )
    assert made["city"] == "Hull" and made["country"]
    assert sale["shipment_address"] not in before
