"""The `oscar` connector against the real django-oscar trade store (systems/oscar.py): products
as parent and children linked by SKU, stock per warehouse partner and each customer group's
price (the group_prices rule) on the price-list partner of that name (a trade customer then
pays the trade price, anyone else the public one), images Oscar downloads, deletes, trade
accounts in their group without a password, a trade order in with its account and group and,
once the merchant records payment, what was paid; a shipping event back, repeated harmlessly;
errors classified and free of the token."""

from __future__ import annotations

import http.server
import socket
import sqlite3
import struct
import threading
import zlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from systems.net import free_port

from stockyard.catalog.models import Order, Variant, parse
from stockyard.catalog.store import StoredVariant
from stockyard.connectors.base import ChannelImage, ChannelProduct, ChannelVariant
from stockyard.connectors.oscar import OscarConnector
from stockyard.errors import PermanentError, TransientError
from stockyard.flows.rules import rules_of
from stockyard.tenancy.connections import Connection

if TYPE_CHECKING:
    from systems.oscar import OscarStore

ADDRESS = {
    "first_name": "Ana",
    "last_name": "Lima",
    "line1": "1 Trade Way",
    "line4": "Springfield",
    "postcode": "62701",
    "state": "IL",
    "country": "US",
}


def _group(store: OscarStore, name: str) -> int:
    with sqlite3.connect(store.database) as db:
        (group,) = db.execute("SELECT id FROM auth_group WHERE name = ?", (name,)).fetchone()
    db.close()
    return int(group)


@pytest.fixture
def connector(oscar: OscarStore) -> Iterator[OscarConnector]:
    made = OscarConnector(
        {
            "url": oscar.url,
            "token": oscar.token,
            "partners": {"WH1": "main"},
            "groups": {"trade": _group(oscar, "trade")},
        }
    )
    yield made
    made.close()


def _variant(sku: str, size: str, price: str, stock: int, trade: str | None) -> ChannelVariant:
    fields: dict[str, Any] = {
        "price": price,
        "quantity": stock,
        "stock": {"WH1": stock},
        "options": {"Size": size},
    }
    if trade is not None:
        fields["group_prices"] = {"trade": trade}
    return ChannelVariant(sku, fields)


def _product(code: str, trade: str | None = "8.50") -> ChannelProduct:
    return ChannelProduct(
        code,
        {"title": f"Jacket {code}", "description": "Warm"},
        [
            _variant(f"{code}-S", "S", "10.00", 5, trade),
            _variant(f"{code}-M", "M", "10.00", 7, trade),
        ],
    )


def _admin(store: OscarStore, path: str) -> Any:
    with store.admin() as admin:
        answer = admin.get(path)
    assert answer.status_code == 200, answer.text[:500]
    return answer.json()


def _records(store: OscarStore, product: str) -> dict[str, tuple[str, int | None]]:
    """partner code -> (price, num_in_stock) of a child's stock records."""
    codes = {p["url"]: p["code"] for p in _admin(store, "/api/admin/partners/")}
    rows = _admin(store, f"/api/admin/products/{product}/")["stockrecords"]
    return {codes[r["partner"]]: (r["price"], r["num_in_stock"]) for r in rows}


def _price_seen(store: OscarStore, product: str, token: str | None) -> str:
    headers = {"Authorization": f"Token {token}"} if token else {}
    answer = httpx.get(f"{store.url}/api/products/{product}/price/", headers=headers)
    assert answer.status_code == 200, answer.text[:300]
    return str(answer.json()["excl_tax"])


def _account(connector: OscarConnector, store: OscarStore, code: str, group: str | None) -> str:
    """A customer account made by the connector; an API token to act as it."""
    from systems.oscar import issue_token

    customer = {"code": code, "email": f"{code.lower()}@example.com", "name": "Ana Lima"}
    connector.upsert_customer({**customer, "group": group}, None, f"key-{code}")
    return issue_token(store.database, code)


def test_a_product_goes_out_as_parent_and_children_with_stock_and_group_prices(
    oscar: OscarStore, connector: OscarConnector
) -> None:
    made = connector.create_product(_product("JKT"), "k1")
    parent = _admin(oscar, f"/api/admin/products/{made.id}/")
    assert (parent["upc"], parent["structure"], parent["title"]) == ("JKT", "parent", "Jacket JKT")
    assert set(made.variants) == {"JKT-S", "JKT-M"}
    child = _admin(oscar, f"/api/admin/products/{made.variants['JKT-M']}/")
    assert (child["parent"], child["structure"]) == (int(made.id), "child")
    assert [(a["code"], a["value"]) for a in child["attributes"]] == [("size", "M")]
    # The warehouse holds quantity and public price; the price list only its price.
    assert _records(oscar, made.variants["JKT-M"]) == {
        "main": ("10.00", 7),
        "trade": ("8.50", None),
    }
    # Linked by SKU: the same ids whichever SKU is asked for; an unknown one finds nothing.
    found = connector.find_product(["NOPE", "JKT-S"])
    assert found is not None
    assert (found.id, found.variants) == (made.id, made.variants)
    assert connector.find_product(["NOPE"]) is None
    # Creating again (a retry after a crash) updates the same products, never a duplicate.
    again = connector.create_product(_product("JKT"), "k1")
    assert (again.id, again.variants) == (made.id, made.variants)

    trade = _account(connector, oscar, "ACC-100", "trade")
    public = _account(connector, oscar, "ACC-101", None)
    product = made.variants["JKT-S"]
    assert _price_seen(oscar, product, trade) == "8.50"
    assert _price_seen(oscar, product, public) == "10.00"
    assert _price_seen(oscar, product, None) == "10.00"

    # A new price, stock and title, in place; a group without a price (the variant has
    # none in its tier) takes its record with it, and a group no longer sent too.
    connector.update_product(made.id, _product("JKT"), "k2")
    unpriced = _variant("JKT-S", "S", "12.00", 3, None)
    unpriced.fields["group_prices"] = {"trade": None}
    changed = [unpriced, _variant("JKT-M", "M", "12.00", 1, "9.00")]
    results = connector.upsert_variants(made.id, changed, "k3")
    assert [(r.key, r.remote_id, r.ok) for r in results] == [
        ("JKT-S", made.variants["JKT-S"], True),
        ("JKT-M", made.variants["JKT-M"], True),
    ]
    assert _records(oscar, made.variants["JKT-S"]) == {"main": ("12.00", 3)}
    assert _records(oscar, made.variants["JKT-M"]) == {
        "main": ("12.00", 1),
        "trade": ("9.00", None),
    }
    assert _price_seen(oscar, product, trade) == "12.00"
    (gone,) = connector.upsert_variants(made.id, [_variant("JKT-M", "M", "12.00", 1, None)], "k4")
    assert gone.ok
    assert _records(oscar, made.variants["JKT-M"]) == {"main": ("12.00", 1)}


def test_the_channel_rules_view_reaches_oscar_per_warehouse_and_per_group(
    oscar: OscarStore,
) -> None:
    """What the flows send an Oscar channel, by the rules alone: `partners` in the settings
    makes the stock go per warehouse (WAREHOUSE_MAPS), `group_prices` the trade price."""
    partners = {"WH1": "main", "WH2": "main"}
    settings = {"partners": partners, "rules": {"group_prices": {"trade": "trade", "gold": "gold"}}}
    rules = rules_of(Connection(1, 1, "channel", "oscar", "Trade store", settings, "active"))
    stock = {"WH1": 2, "WH2": 3, "WH9": 40}  # WH9: a warehouse this store does not sell from
    stored = StoredVariant(
        1,
        Variant.model_validate(
            {"sku": "RUL-S", "price": "10.00", "prices": {"trade": "7.00"}, "stock": stock}
        ),
    )
    view = rules.variant(stored)
    assert view.fields["group_prices"] == {"trade": "7.00", "gold": None}
    # The channel's connector, of the same settings (the flows give it them all but rules).
    store = OscarConnector(
        {"url": oscar.url, "token": oscar.token, "partners": settings["partners"]}
    )
    made = store.create_product(ChannelProduct("RUL", {"title": "Rules"}, [view]), "k1")
    store.close()
    assert _records(oscar, made.variants["RUL-S"]) == {
        "main": ("10.00", 5),
        "trade": ("7.00", None),
    }


def test_a_product_named_by_its_first_sku_keeps_the_sku_for_its_variant(
    oscar: OscarStore, connector: OscarConnector
) -> None:
    only = ChannelProduct("MUG-1", {"title": "Mug"}, [_variant("MUG-1", "One", "4.00", 3, None)])
    made = connector.create_product(only, "k1")
    assert _admin(oscar, f"/api/admin/products/{made.id}/")["upc"] == "MUG-1/product"
    assert connector.create_product(only, "k1").id == made.id
    found = connector.find_product(["MUG-1"])
    assert found is not None
    assert (found.id, found.variants) == (made.id, made.variants)
    assert _records(oscar, made.variants["MUG-1"]) == {"main": ("4.00", 3)}


def test_a_variant_that_cannot_be_written_fails_alone(
    oscar: OscarStore, connector: OscarConnector
) -> None:
    made = connector.create_product(_product("VST", trade=None), "k1")
    gold = ChannelVariant("VST-L", {"price": "5", "quantity": 1, "group_prices": {"gold": "4"}})
    fine = _variant("VST-XL", "XL", "5.00", 2, None)
    results = connector.upsert_variants(made.id, [gold, fine], "k2")
    assert [r.ok for r in results] == [False, True]
    assert "no partner 'gold'" in str(results[0].error)
    # Another product's SKU is not taken over.
    other = connector.create_product(_product("VSU", trade=None), "k3")
    (stolen,) = connector.upsert_variants(other.id, [_variant("VST-S", "S", "1", 1, None)], "k4")
    assert not stolen.ok
    assert "variant of another product" in str(stolen.error)


def test_deletes_of_variants_and_products_and_already_gone_is_done(
    oscar: OscarStore, connector: OscarConnector
) -> None:
    made = connector.create_product(_product("DEL"), "k1")
    connector.delete_variant(made.id, made.variants["DEL-S"], "k2")
    connector.delete_variant(made.id, made.variants["DEL-S"], "k2")
    assert connector.find_product(["DEL-S"]) is None
    connector.delete_product(made.id, "k3")
    connector.delete_product(made.id, "k3")
    assert connector.find_product(["DEL-M"]) is None
    with oscar.admin() as admin:
        assert admin.get(f"/api/admin/products/{made.variants['DEL-M']}/").status_code == 404


def _png(red: int) -> bytes:
    """A 1x1 PNG of its own colour (Oscar checks uploads are images)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(bytes([0, red, 10, 20]))
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


@pytest.fixture
def images() -> Iterator[str]:
    """Two PNGs served on 127.0.0.1, where the test Oscar can fetch them."""
    files = {"/a.png": _png(200), "/b.png": _png(50)}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = files.get(self.path)
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_images_are_added_by_url_once_and_deleted(
    oscar: OscarStore, connector: OscarConnector, images: str
) -> None:
    made = connector.create_product(_product("IMG"), "k1")
    first = ChannelImage("a", {"url": f"{images}/a.png", "alt": "front", "position": 0})
    second = ChannelImage("b", {"url": f"{images}/b.png", "alt": "back", "position": 1})
    a = connector.add_image(made.id, first, "k2")
    assert connector.add_image(made.id, first, "k2") == a  # a retry: the same image
    b = connector.add_image(made.id, second, "k3")
    kept = _admin(oscar, f"/api/admin/products/{made.id}/")["images"]
    assert sorted((str(i["id"]), i["caption"]) for i in kept) == sorted([(a, "front"), (b, "back")])
    connector.delete_image(made.id, a, "k4")
    connector.delete_image(made.id, a, "k4")
    after = _admin(oscar, f"/api/admin/products/{made.id}/")
    assert [str(i["id"]) for i in after["images"]] == [b]
    # The PUT that removed it kept the children and their stock.
    assert len(after["children"]) == 2
    assert _records(oscar, made.variants["IMG-M"])["main"] == ("10.00", 7)


def test_a_trade_account_in_its_group_without_a_password(
    oscar: OscarStore, connector: OscarConnector
) -> None:
    customer = {
        "code": "ACC-200",
        "email": "buyer@acme.example",
        "name": "Bea Buyer",
        "price_tier": "trade",
        "group": "trade",
    }
    remote = connector.upsert_customer(customer, None, "k1")
    user = _admin(oscar, f"/api/admin/users/{remote}/")
    assert (user["username"], user["email"], user["first_name"], user["last_name"]) == (
        "ACC-200",
        "buyer@acme.example",
        "Bea",
        "Buyer",
    )
    assert user["groups"] == [_group(oscar, "trade")]
    assert user["is_active"] is True
    with sqlite3.connect(oscar.database) as db:
        (password,) = db.execute(
            "SELECT password FROM auth_user WHERE username = 'ACC-200'"
        ).fetchone()
    db.close()
    assert password in ("", None) or password.startswith("!")  # none that signs in
    # Retried without the id (a crash before it was stored): the same account, updated.
    # Out of the trade tier: no group (the flows send None), so the public prices.
    moved = {**customer, "email": "orders@acme.example", "price_tier": None, "group": None}
    assert connector.upsert_customer(moved, None, "k2") == remote
    user = _admin(oscar, f"/api/admin/users/{remote}/")
    assert (user["email"], user["groups"]) == ("orders@acme.example", [])
    assert connector.upsert_customer(customer, remote, "k3") == remote
    with pytest.raises(PermanentError, match="group 'gold' has no Oscar group id"):
        connector.upsert_customer({**customer, "group": "gold"}, remote, "k4")


def test_a_trade_order_comes_in_with_its_account_then_paid_and_is_shipped_once(
    oscar: OscarStore, connector: OscarConnector
) -> None:
    from systems.oscar import OscarShopper

    made = connector.create_product(_product("ORD"), "k1")
    cursor = connector.fetch_orders(None).cursor
    trade = _account(connector, oscar, "ACC-300", "trade")
    walk_in = _account(connector, oscar, "walk-in-300", None)
    number = OscarShopper(oscar.url, trade).place_order({int(made.variants["ORD-S"]): 2}, ADDRESS)
    other = OscarShopper(oscar.url, walk_in).place_order({int(made.variants["ORD-M"]): 1}, ADDRESS)

    page = connector.fetch_orders(cursor)
    records = {r["number"]: r for r in page.records}
    assert set(records) == {number, other}
    order = parse(Order, records[number], "order")
    assert order.customer is not None
    assert (order.customer.code, order.customer.email) == ("ACC-300", "acc-300@example.com")
    # Its group, which sync_order turns back into the price tier that puts it on account.
    assert (order.customer.group, order.customer.price_tier) == ("trade", None)
    assert [(line.sku, line.quantity, str(line.price)) for line in order.lines] == [
        ("ORD-S", 2, "8.50")
    ]
    assert (str(order.total), order.paid, order.currency) == ("17.00", None, "USD")
    assert order.shipping_address is not None
    assert (order.shipping_address.city, order.shipping_address.country) == ("Springfield", "US")
    # A public customer is known by email, not as an account, and has no group.
    assert records[other]["customer"]["code"] == "walk-in-300@example.com"
    assert "group" not in records[other]["customer"]
    # A store whose settings name no groups has no trade customers: only groups it knows
    # make an account (a staff or editors' group is no price list).
    plain = OscarConnector({"url": oscar.url, "token": oscar.token})
    unknown = {r["number"]: r for r in plain.fetch_orders(cursor).records}[number]
    assert unknown["customer"]["code"] == "acc-300@example.com"
    assert "group" not in unknown["customer"]
    plain.close()
    assert connector.fetch_orders(page.cursor).records == []

    oscar.record_payment(number, "17.00", "invoice")
    (paid,) = connector.fetch_orders(page.cursor).records
    assert (paid["number"], paid["paid"]) == (number, "17.00")
    assert connector.get_order(number) == paid

    shipped = {"id": "41", "state": "complete", "tracking": {"carrier": "UPS", "number": "1Z9"}}
    connector.push_fulfillment(number, {**shipped, "state": "open"}, "k5")
    connector.push_fulfillment(number, shipped, "k6")
    connector.push_fulfillment(number, shipped, "k7")  # again, from another item: no second
    with oscar.admin() as admin:
        raw = admin.get("/stockyard/orders/", params={"number": number}).json()["orders"][0]
    events = raw["shipping_events"]
    assert [(e["event_type"], e["notes"]) for e in events] == [
        ("shipped", "carrier: UPS\ntracking: 1Z9")
    ]
    assert [entry["quantity"] for entry in events[0]["lines"]] == [2]


def test_errors_are_classified_and_never_show_the_token(
    oscar: OscarStore, connector: OscarConnector
) -> None:
    with pytest.raises(PermanentError, match="oscar has no order NOPE"):
        connector.get_order("NOPE")
    wrong = OscarConnector({"url": oscar.url, "token": "f" * 40})
    with pytest.raises(PermanentError) as refused:
        wrong.find_product(["X"])
    assert "401" in str(refused.value) and "Invalid token" in str(refused.value)
    assert "f" * 40 not in str(refused.value)
    wrong.close()
    closed = OscarConnector({"url": f"http://127.0.0.1:{free_port()}", "token": oscar.token})
    with pytest.raises(TransientError, match="cannot reach oscar"):
        closed.fetch_orders(None)
    closed.close()
    with pytest.raises(PermanentError, match="unreadable orders cursor"):
        connector.fetch_orders("not json")
    # Oscar's own message on a refusal: a slug Oscar has no product class for.
    odd = OscarConnector({"url": oscar.url, "token": oscar.token, "product_class": "nope"})
    with pytest.raises(PermanentError, match="HTTP 400") as bad:
        odd.create_product(_product("BAD"), "k1")
    assert "nope" in str(bad.value) and oscar.token not in str(bad.value)
    odd.close()


@pytest.fixture
def answering() -> Iterator[dict[str, Any]]:
    """A local HTTP server answering what the test sets: for the statuses and sizes the
    real store cannot be made to answer on demand (503, 429, a huge body)."""
    wanted: dict[str, Any] = {"status": 503, "body": b"{}"}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(wanted["status"])
            self.send_header("Content-Length", str(len(wanted["body"])))
            self.end_headers()
            self.wfile.write(wanted["body"])

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    wanted["url"] = f"http://127.0.0.1:{server.server_address[1]}"
    yield wanted
    server.shutdown()
    server.server_close()


def test_busy_answers_are_transient_and_a_huge_answer_is_refused(answering: dict[str, Any]) -> None:
    made = OscarConnector({"url": answering["url"], "token": "t" * 40})
    for status in (503, 429, 408):
        answering["status"] = status
        with pytest.raises(TransientError, match=f"HTTP {status}"):
            made.fetch_orders(None)
    answering.update(status=200, body=b" " * (made.api.max_answer + 1))
    with pytest.raises(PermanentError, match="larger than"):
        made.fetch_orders(None)
    made.close()


def test_timeouts_are_transient() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts, never answers
    try:
        made = OscarConnector(
            {"url": f"http://127.0.0.1:{listener.getsockname()[1]}", "token": "t", "timeout": 0.3}
        )
        with pytest.raises(TransientError, match="timed out"):
            made.fetch_orders(None)
        made.close()
    finally:
        listener.close()


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"url": "http://shop.example.com", "token": "t"}, "must be https"),
        ({"url": "ftp://127.0.0.1", "token": "t"}, "must be https"),
        ({"url": "https://shop.example.com"}, "token"),
        ({"url": "https://shop.example.com", "token": "t", "colour": 1}, "colour"),
        ({"url": "https://shop.example.com", "token": "t", "groups": {"trade": "x"}}, "groups"),
    ],
)
def test_bad_settings_are_named(settings: dict[str, Any], problem: str) -> None:
    with pytest.raises(PermanentError, match=problem):
        OscarConnector(settings)


def test_the_token_is_a_secret_setting() -> None:
    assert OscarConnector.credential_problem({"token": "x"}) == (
        "settings.token is a credential: send it in secrets"
    )
    assert OscarConnector.offers_customers()
