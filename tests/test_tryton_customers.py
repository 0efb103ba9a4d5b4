"""Trade customers in the real Tryton (trytond 8.2 with sale_price_list and
account_credit_limit; the template seeds the "Trade" price list and the account Acme
Trading, systems/launch.py): tier prices per variant from Tryton's price lists, the
trade customers pulled with their terms, and orders on account made as that customer's
sale."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from systems.launch import (
    ACME,
    TRADE_PAYMENT_TERM,
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

from stockyard.catalog.models import Customer, Product
from stockyard.connectors.tryton import TrytonConnector
from stockyard.connectors.tryton.client import TrytonClient
from stockyard.errors import PermanentError

# Items of this module's own: the Tryton fixture is shared by the session.
BOLT = TrytonItem("TCB", "Hex bolt", Decimal("10.00"), (("TCB-S", 4), ("TCB-L", 6)))
NUT = TrytonItem("TCN", "Hex nut", Decimal("2.55"), (("TCN", 50),))


def erp(tryton: Running, **extra: Any) -> TrytonConnector:
    settings = {"url": tryton.url, "database": TRYTON_DB, "username": TRYTON_ADMIN[0]}
    return TrytonConnector({**settings, "password": TRYTON_ADMIN[1], **extra})


@pytest.fixture(scope="module")
def rpc(tryton: Running) -> TrytonClient:
    client = tryton_client(tryton.url)
    seed_tryton_items(client, (BOLT, NUT))
    return client


def price_list(rpc: TrytonClient, name: str, formula: str) -> int:
    (made,) = rpc.model(
        "product.price_list",
        "create",
        [{"name": name, "price": "list_price", "lines": [["create", [{"formula": formula}]]]}],
    )
    return int(made)


def ours(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """This module's products, by code; each record must be a valid catalog product."""
    for record in records:
        Product.model_validate(record)
    return {r["code"]: r for r in records if r["code"] in ("TCB", "TCN")}


def test_tier_prices_are_tryton_price_list_prices(tryton: Running, rpc: TrytonClient) -> None:
    gold = price_list(rpc, "Gold (tier test)", "list_price * 0.5")
    connector = erp(tryton, price_lists={"trade": TRADE_PRICE_LIST, "gold": "Gold (tier test)"})
    page = connector.fetch_products(None)
    products = ours(page.records)
    prices = {v["sku"]: (v["price"], v["prices"]) for p in products.values() for v in p["variants"]}
    # Trade is 20 % below the list price, Gold half of it; Tryton rounds, not Stockyard.
    assert prices == {
        "TCB-S": ("10.00", {"trade": "8.00", "gold": "5.00"}),
        "TCB-L": ("10.00", {"trade": "8.00", "gold": "5.00"}),
        "TCN": ("2.55", {"trade": "2.04", "gold": "1.275"}),
    }

    # Without the setting a variant has no tier prices: other deployments' records (and
    # the hashes the flows keep of them) stay as they were.
    plain = ours(erp(tryton).fetch_products(None).records)
    assert all("prices" not in v for p in plain.values() for v in p["variants"])

    # Nothing changed: the next pull delivers nothing of ours. A new formula on a tier's
    # list changes no product, yet every product's tier price: all are delivered again.
    assert ours(connector.fetch_products(page.cursor).records) == {}
    (line,) = rpc.model("product.price_list", "read", [gold], ["lines"])[0]["lines"]
    rpc.model("product.price_list.line", "write", [line], {"formula": "list_price * 0.6"})
    again = connector.fetch_products(page.cursor)
    bolt = ours(again.records)["TCB"]
    assert [v["prices"]["gold"] for v in bolt["variants"]] == ["6.00", "6.00"]
    assert ours(connector.fetch_products(again.cursor).records) == {}


def test_a_price_list_tryton_does_not_have_is_named(tryton: Running, rpc: TrytonClient) -> None:
    connector = erp(tryton, price_lists={"trade": "Tarde"})
    with pytest.raises(PermanentError, match="no price list named 'Tarde'"):
        connector.fetch_products(None)


def test_fetch_customers_pulls_trade_accounts_with_their_terms(
    tryton: Running, rpc: TrytonClient
) -> None:
    # A party that is no trade customer (no price list, no credit limit): never pulled.
    rpc.model("party.party", "create", [{"name": "A supplier", "code": "SUP-1"}])
    connector = erp(tryton, price_lists={"trade": TRADE_PRICE_LIST})
    page = connector.fetch_customers(None)
    by_code = {r["code"]: r for r in page.records}
    assert "SUP-1" not in by_code and "1" not in by_code  # the company's own party
    acme = by_code[ACME.code]
    Customer.model_validate(acme)
    assert acme == {
        "code": "T1001",
        "name": "Acme Trading",
        "company": "Acme Trading",
        "email": "orders@acme-trading.example",
        "phone": "+44 20 7946 0001",
        "addresses": [
            {
                "name": "Acme Trading",
                "company": "Acme Trading",
                "line1": "1 Wharf Road",
                "line2": "",
                "city": "London",
                "postcode": "N1 7GR",
                "country": "",
            }
        ],
        "price_tier": "trade",
        "credit_limit": "5000.00",
        "payment_terms": TRADE_PAYMENT_TERM,
        "contacts": [
            {
                "name": "Jo Buyer",
                "email": "jo@acme-trading.example",
                "phone": "+44 20 7946 0002",
                "role": "buyer",
            }
        ],
    }
    # A party on a price list no tier names is a trade customer at public prices.
    public = {r["code"]: r for r in erp(tryton).fetch_customers(None).records}
    assert public[ACME.code]["price_tier"] is None

    # The cursor: nothing changed, nothing delivered; a new account, then a change to
    # one of Acme's contact mechanisms, each delivers that party alone.
    assert connector.fetch_customers(page.cursor).records == []
    listed = rpc.model(
        "product.price_list", "search", [("name", "=", TRADE_PRICE_LIST)], 0, 1, None
    )
    bob = TradeAccount(
        "T1002", "Bob's Builders", "bob@builders.example", "+1 555 0100", Decimal("250"), ()
    )
    add_trade_account(rpc, bob, listed[0], None)
    second = connector.fetch_customers(page.cursor)
    (record,) = second.records
    assert (record["code"], record["credit_limit"], record["payment_terms"]) == (
        "T1002",
        "250.00",
        "",
    )
    assert connector.fetch_customers(second.cursor).records == []
    party = rpc.model("party.party", "search", [("code", "=", ACME.code)], 0, 1, None)
    phone = rpc.model(
        "party.contact_mechanism",
        "search",
        [("party", "in", party), ("type", "=", "phone"), ("name", "=", None)],
        0,
        1,
        None,
    )
    rpc.model("party.contact_mechanism", "write", phone, {"value": "+44 20 7946 0009"})
    (changed,) = connector.fetch_customers(second.cursor).records
    assert (changed["code"], changed["phone"]) == ("T1001", "+44 20 7946 0009")


def trade_order(code: str, **customer: Any) -> dict[str, Any]:
    return {
        "id": 9000 + len(code),
        "remote_id": f"oscar-{code}",
        "number": f"TR-{code}",
        "currency": "USD",
        "customer": {
            "code": code,
            "email": "jo@acme-trading.example",
            "price_tier": "trade",
            **customer,
        },
        "lines": [{"sku": "TCB-S", "quantity": 3, "price": "8.00"}],
        "total": "24.00",
    }


def test_an_order_on_account_is_that_customers_sale(tryton: Running, rpc: TrytonClient) -> None:
    connector = erp(tryton)
    number = connector.create_order(trade_order(ACME.code), "key-acme")
    (sale,) = rpc.model(
        "sale.sale",
        "search_read",
        [("number", "=", number)],
        0,
        1,
        None,
        ["party", "state", "price_list", "payment_term", "invoice_address", "lines"],
    )
    (acme,) = rpc.model(
        "party.party",
        "search_read",
        [("code", "=", ACME.code)],
        0,
        1,
        None,
        ["sale_price_list", "customer_payment_term", "addresses"],
    )
    assert sale["state"] == "processing"
    assert sale["party"] == acme["id"]
    assert (sale["price_list"], sale["payment_term"]) == (
        acme["sale_price_list"],
        acme["customer_payment_term"],
    )
    assert sale["invoice_address"] in acme["addresses"]
    (line,) = rpc.model("sale.line", "read", sale["lines"], ["quantity", "unit_price"])
    assert (line["quantity"], line["unit_price"]) == (3.0, Decimal("8.00"))
    # The same order again is the same sale.
    assert connector.create_order(trade_order(ACME.code), "key-acme") == number

    # Shipped elsewhere: the (complete) address is added to the account's, the invoice
    # stays Acme's (tests/test_tryton_trade_accounts.py: an incomplete one is refused).
    if not rpc.model("country.country", "search", [("code", "=", "GB")], 0, 1, None):
        rpc.model("country.country", "create", [{"name": "United Kingdom", "code": "GB"}])
    site = {
        "name": "Site office",
        "line1": "2 Dock Street",
        "city": "Leeds",
        "postcode": "LS1",
        "country": "GB",
    }
    order = {**trade_order(ACME.code), "id": 9200, "remote_id": "oscar-site"}
    other = connector.create_order({**order, "shipping_address": site}, "key-site")
    (sent,) = rpc.model(
        "sale.sale",
        "search_read",
        [("number", "=", other)],
        0,
        1,
        None,
        ["party", "invoice_address", "shipment_address"],
    )
    assert sent["party"] == acme["id"] and sent["invoice_address"] == sale["invoice_address"]
    (where,) = rpc.model("party.address", "read", [sent["shipment_address"]], ["party", "city"])
    assert (where["party"], where["city"]) == (acme["id"], "Leeds")


def test_an_unknown_account_fails_naming_it(tryton: Running, rpc: TrytonClient) -> None:
    connector = erp(tryton)
    with pytest.raises(PermanentError, match="no trade account 'T9999'"):
        connector.create_order(trade_order("T9999"), "key-unknown")
    # A party that is no trade customer is no account either.
    rpc.model("party.party", "create", [{"name": "Another supplier", "code": "SUP-2"}])
    with pytest.raises(PermanentError, match="no trade account 'SUP-2'"):
        connector.create_order(trade_order("SUP-2"), "key-supplier")


def test_a_web_order_stays_a_guests_sale(tryton: Running, rpc: TrytonClient) -> None:
    """A shop's own customer id is no account number, even when it is one of Tryton's
    party codes ("1" is the company's): without a price tier the order is a web guest's."""
    order = {
        "id": 9100,
        "remote_id": "vendure-77",
        "number": "WEB-77",
        "currency": "USD",
        "customer": {"code": "1", "email": "guest@example.com", "name": "Gus Guest"},
        "lines": [{"sku": "TCN", "quantity": 1, "price": "2.55"}],
        "total": "2.55",
    }
    number = erp(tryton).create_order(order, "key-web")
    (sale,) = rpc.model(
        "sale.sale", "search_read", [("number", "=", number)], 0, 1, None, ["party"]
    )
    (party,) = rpc.model("party.party", "read", [sale["party"]], ["name", "code"])
    assert party["name"] == "Gus Guest" and party["code"] != "1"
