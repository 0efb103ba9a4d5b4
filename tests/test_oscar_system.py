"""The real trade store (django-oscar 4.2 + django-oscar-api 3.3, systems/oscar.py): it starts
from its template in seconds, its admin API makes and reads back a product with variants and
their stock records, a signed-in customer's order shows in the small app's "orders since",
and a shipping event posted twice with one key is one event. Groundwork for the `oscar`
connector (issue 21); docs/oscar-notes.md has the shapes."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from systems.net import free_port

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


def _ok(answer: httpx.Response) -> Any:
    assert answer.status_code < 300, f"{answer.status_code} {answer.text[:800]}"
    return answer.json()


def _partner_url(admin: httpx.Client) -> str:
    partners = _ok(admin.get("/api/admin/partners/"))
    return str(next(p["url"] for p in partners if p["code"] == "main"))


def _product_with_sizes(admin: httpx.Client, code: str, price: str) -> dict[str, int]:
    """A parent `code` with children `code`-S and `code`-M, 5 and 7 in stock; their ids."""
    partner = _partner_url(admin)
    parent = _ok(
        admin.post(
            "/api/admin/products/",
            json={
                "upc": code,
                "slug": code.lower(),
                "title": f"Product {code}",
                "structure": "parent",
                "product_class": "apparel",
            },
        )
    )
    ids = {}
    for size, stock in (("S", 5), ("M", 7)):
        sku = f"{code}-{size}"
        child = _ok(
            admin.post(
                "/api/admin/products/",
                json={
                    "upc": sku,
                    "slug": sku.lower(),
                    "title": f"Product {code} {size}",
                    "structure": "child",
                    "parent": parent["id"],
                    "product_class": None,
                    "attributes": [{"code": "size", "value": size}],
                    "stockrecords": [
                        {
                            "partner": partner,
                            "partner_sku": sku,
                            "price": price,
                            "num_in_stock": stock,
                        }
                    ],
                },
            )
        )
        ids[sku] = int(child["id"])
    ids[code] = int(parent["id"])
    return ids


def _customer(store: OscarStore, username: str) -> str:
    """A trade account in the customer group "trade", made through the admin users API with
    no password; returns an API token to act as it."""
    from systems.oscar import issue_token

    with sqlite3.connect(store.database) as db:
        (group,) = db.execute("SELECT id FROM auth_group WHERE name = 'trade'").fetchone()
    db.close()
    with store.admin() as admin:
        _ok(
            admin.post(
                "/api/admin/users/",
                json={
                    "username": username,
                    "email": f"{username.lower()}@example.com",
                    "first_name": "Ana",
                    "last_name": "Lima",
                    "groups": [group],
                },
            )
        )
    return issue_token(store.database, username)


def _orders(admin: httpx.Client, since: dict[str, Any] | None = None) -> dict[str, Any]:
    params = {k: v for k, v in (since or {}).items() if v is not None}
    return dict(_ok(admin.get("/stockyard/orders/", params=params)))


def _place(store: OscarStore, username: str, lines: dict[int, int]) -> str:
    from systems.oscar import OscarShopper

    return OscarShopper(store.url, _customer(store, username)).place_order(lines, ADDRESS)


def test_starts_from_the_template_in_seconds_with_its_own_data_and_token(
    oscar: OscarStore, tmp_path: Path
) -> None:
    from systems.oscar import start_oscar

    began = time.monotonic()
    second = start_oscar(free_port(), tmp_path / "second")
    try:
        seconds = time.monotonic() - began
        assert seconds < 20, f"Oscar took {seconds:.1f} s to start from its template"
        with second.admin() as admin:
            _ok(
                admin.post(
                    "/api/admin/products/",
                    json={
                        "upc": "ONLY-HERE",
                        "slug": "only-here",
                        "title": "Only here",
                        "structure": "standalone",
                        "product_class": "apparel",
                    },
                )
            )
        with oscar.admin() as admin:
            upcs = [p["upc"] for p in _ok(admin.get("/api/admin/products/"))]
        assert "ONLY-HERE" not in upcs
        # Each run's token is its own: the session store's does not open the second one.
        foreign = httpx.get(
            f"{second.url}/api/admin/products/", headers={"Authorization": f"Token {oscar.token}"}
        )
        assert foreign.status_code == 401
        assert httpx.get(f"{second.url}/api/admin/products/").status_code == 401
    finally:
        second.stop()


def test_a_parent_with_two_children_and_their_stock_records(oscar: OscarStore) -> None:
    with oscar.admin() as admin:
        ids = _product_with_sizes(admin, "TEE", "19.90")
        parent = _ok(admin.get(f"/api/admin/products/{ids['TEE']}/"))
        assert parent["structure"] == "parent"
        assert sorted(parent["children"]) == sorted(
            f"{oscar.url}/api/admin/products/{ids[sku]}/" for sku in ("TEE-S", "TEE-M")
        )
        child = _ok(admin.get(f"/api/admin/products/{ids['TEE-M']}/"))
        assert child["parent"] == ids["TEE"]
        assert [(a["code"], a["value"]) for a in child["attributes"]] == [("size", "M")]
        (record,) = child["stockrecords"]
        assert (record["partner_sku"], record["price"], record["num_in_stock"]) == (
            "TEE-M",
            "19.90",
            7,
        )
        # The connector's upsert, linked by SKU: a PATCH on the list finds the product by its
        # UPC and the stock record by (partner, partner_sku), and changes them in place.
        record_url = record["url"]
        _ok(
            admin.patch(
                "/api/admin/products/",
                json={
                    "upc": "TEE-M",
                    "stockrecords": [
                        {
                            "partner": _partner_url(admin),
                            "partner_sku": "TEE-M",
                            "price": "21.00",
                            "num_in_stock": 9,
                        }
                    ],
                },
            )
        )
        again = _ok(admin.get(f"/api/admin/products/{ids['TEE-M']}/"))["stockrecords"]
        assert [(r["url"], r["price"], r["num_in_stock"]) for r in again] == [
            (record_url, "21.00", 9)
        ]


def test_a_customers_order_shows_in_orders_since(oscar: OscarStore) -> None:
    with oscar.admin() as admin:
        ids = _product_with_sizes(admin, "CAP", "12.50")
        cursor = _orders(admin)["next"]
        number = _place(oscar, "TRADE-0001", {ids["CAP-S"]: 2, ids["CAP-M"]: 1})
        page = _orders(admin, cursor)
        assert [o["number"] for o in page["orders"]] == [number]
        (order,) = page["orders"]
        assert order["customer"]["username"] == "TRADE-0001"
        assert order["customer"]["groups"] == ["trade"]
        assert order["total_incl_tax"] == "37.50"
        assert order["shipping_address"]["postcode"] == "62701"
        assert order["shipping_address"]["country"] == "US"
        lines = {line["partner_sku"]: line for line in order["lines"]}
        assert {sku: line["quantity"] for sku, line in lines.items()} == {"CAP-S": 2, "CAP-M": 1}
        assert lines["CAP-S"]["unit_price_excl_tax"] == "12.50"
        assert lines["CAP-S"]["line_price_incl_tax"] == "25.00"
        assert lines["CAP-S"]["partner"] == "main"
        # The next page from the answer's cursor is empty until something changes.
        assert _orders(admin, page["next"])["orders"] == []


def test_a_shipping_event_posted_twice_with_one_key_is_one_event(oscar: OscarStore) -> None:
    with oscar.admin() as admin:
        ids = _product_with_sizes(admin, "MUG", "9.00")
        number = _place(oscar, "TRADE-0002", {ids["MUG-S"]: 1, ids["MUG-M"]: 2})
        event = {
            "key": f"fulfillment-{number}-1",
            "event_type": "Shipped",
            "carrier": "UPS",
            "tracking_number": "1Z999",
            "lines": [{"partner_sku": "MUG-M", "quantity": 2}],
        }
        path = f"/stockyard/orders/{number}/shipping-events/"
        first = admin.post(path, json=event)
        second = admin.post(path, json=event)
        assert (first.status_code, second.status_code) == (201, 200)
        assert first.json() == second.json()
        assert first.json()["notes"] == "carrier: UPS\ntracking: 1Z999"
        (order,) = (o for o in _orders(admin)["orders"] if o["number"] == number)
        assert [e["key"] for e in order["shipping_events"]] == [event["key"]]
        assert order["shipping_events"][0]["lines"][0]["quantity"] == 2
        # Oscar refuses more than the line holds; the same key for another order is refused.
        over = {**event, "key": "more", "lines": [{"partner_sku": "MUG-S", "quantity": 3}]}
        assert admin.post(path, json=over).status_code == 400
        other = _place(oscar, "TRADE-0003", {ids["MUG-S"]: 1})
        reused = admin.post(f"/stockyard/orders/{other}/shipping-events/", json=event)
        assert reused.status_code == 409
        assert httpx.post(f"{oscar.url}{path}", json=event).status_code == 401


def _partner_urls(admin: httpx.Client) -> dict[str, str]:
    return {p["code"]: p["url"] for p in _ok(admin.get("/api/admin/partners/"))}


def _price(store: OscarStore, product: int, token: str | None) -> str:
    headers = {"Authorization": f"Token {token}"} if token else {}
    answer = httpx.get(f"{store.url}/api/products/{product}/price/", headers=headers)
    return str(_ok(answer)["excl_tax"])


def test_a_trade_customer_pays_the_trade_price_list_and_others_the_public_price(
    oscar: OscarStore,
) -> None:
    from systems.oscar import OscarShopper

    with oscar.admin() as admin:
        ids = _product_with_sizes(admin, "BAG", "30.00")
        partners = _partner_urls(admin)
        # The trade price list: a stock record of partner `trade` with a price, no stock.
        _ok(
            admin.patch(
                "/api/admin/products/",
                json={
                    "upc": "BAG-S",
                    "stockrecords": [
                        {"partner": partners["trade"], "partner_sku": "BAG-S", "price": "24.00"}
                    ],
                },
            )
        )
        trade = _customer(oscar, "TRADE-0004")
        _ok(admin.post("/api/admin/users/", json={"username": "walk-in", "email": "w@example.com"}))
    from systems.oscar import issue_token

    public = issue_token(oscar.database, "walk-in")
    assert _price(oscar, ids["BAG-S"], trade) == "24.00"
    assert _price(oscar, ids["BAG-S"], public) == "30.00"
    assert _price(oscar, ids["BAG-S"], None) == "30.00"
    # No trade price for M: the trade customer pays the public one.
    assert _price(oscar, ids["BAG-M"], trade) == "30.00"
    number = OscarShopper(oscar.url, trade).place_order({ids["BAG-S"]: 2}, ADDRESS)
    with oscar.admin() as admin:
        (order,) = (o for o in _orders(admin)["orders"] if o["number"] == number)
        (line,) = order["lines"]
        # The line is the warehouse's (stock is allocated there), at the trade price.
        assert (line["partner"], line["unit_price_excl_tax"]) == ("main", "24.00")
        assert order["total_incl_tax"] == "48.00"
        stock = _ok(admin.get(f"/api/admin/products/{ids['BAG-S']}/"))["stockrecords"]
        allocated = {r["partner"]: r["num_allocated"] for r in stock}
        assert allocated == {partners["main"]: 2, partners["trade"]: None}


def test_a_recorded_payment_shows_as_paid_and_moves_the_order(oscar: OscarStore) -> None:
    with oscar.admin() as admin:
        ids = _product_with_sizes(admin, "PEN", "2.50")
        number = _place(oscar, "TRADE-0005", {ids["PEN-S"]: 4})
        page = _orders(admin)
        (order,) = (o for o in page["orders"] if o["number"] == number)
        assert order["paid"] is None
        oscar.record_payment(number, "6.00", "invoice 1")
        oscar.record_payment(number, "4.00", "invoice 1, rest")
        moved = _orders(admin, page["next"])["orders"]
        assert [(o["number"], o["paid"]) for o in moved] == [(number, "10.00")]
        assert moved[0]["changed"] > order["changed"]
