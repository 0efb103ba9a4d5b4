"""The tryton and vendure connectors, method by method, against the real systems on
127.0.0.1 (the fixtures in conftest.py): what each call leaves in the remote system, what
a repeated call does, and which errors say retry and which say stop."""

from __future__ import annotations

import http.server
import struct
import threading
import zlib
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from systems.launch import (
    TRYTON_ADMIN,
    TRYTON_DB,
    VENDURE_ADMIN,
    Running,
    TrytonItem,
    VendureShopper,
    seed_tryton_items,
    set_tryton_price,
    tryton_client,
)
from systems.net import free_port

from stockyard.connectors.base import ChannelImage, ChannelProduct, ChannelVariant
from stockyard.connectors.tryton import TrytonConnector
from stockyard.connectors.vendure import VendureConnector
from stockyard.errors import PermanentError, TransientError


def png(width: int = 4, height: int = 3) -> bytes:
    """A real (grey) PNG: Vendure's asset server decodes what it stores."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


@pytest.fixture
def images() -> Iterator[str]:
    """A web server with one image, /hat.png; anything else is 404."""
    body = png()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/hat.png":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def shop(vendure: Running, **extra: Any) -> VendureConnector:
    settings = {"url": f"{vendure.url}/admin-api", "username": VENDURE_ADMIN[0]}
    return VendureConnector({**settings, "password": VENDURE_ADMIN[1], **extra})


def erp(tryton: Running, **extra: Any) -> TrytonConnector:
    settings = {"url": tryton.url, "database": TRYTON_DB, "username": TRYTON_ADMIN[0]}
    return TrytonConnector({**settings, "password": TRYTON_ADMIN[1], **extra})


def remote_product(connector: VendureConnector, product_id: str) -> dict[str, Any]:
    data = connector.api.query(
        "query($id: ID!) { product(id: $id) { name description"
        " variants { sku price stockOnHand options { group { name } name } }"
        " assets { id } featuredAsset { id } } }",
        {"id": product_id},
    )
    return dict(data["product"]) if data["product"] else {}


def hat(image_url: str) -> ChannelProduct:
    return ChannelProduct(
        "HAT",
        {"title": "Sun hat", "description": "Wide brim", "options": ["Size"]},
        [
            ChannelVariant("HAT-S", {"price": "9.99", "quantity": 3, "options": {"Size": "S"}}),
            ChannelVariant("HAT-L", {"price": "10.49", "quantity": 0, "options": {"Size": "L"}}),
        ],
        [ChannelImage("hat-front", {"url": image_url, "alt": "front", "position": 0})],
    )


def test_vendure_product_variants_images_and_deletes(vendure: Running, images: str) -> None:
    connector = shop(vendure)
    created = connector.create_product(hat(f"{images}/hat.png"), "key-1")
    product = remote_product(connector, created.id)
    assert (product["name"], product["description"]) == ("Sun hat", "Wide brim")
    got = {v["sku"]: (v["price"], v["stockOnHand"], v["options"]) for v in product["variants"]}
    assert got == {
        "HAT-S": (999, 3, [{"group": {"name": "Size"}, "name": "S"}]),
        "HAT-L": (1049, 0, [{"group": {"name": "Size"}, "name": "L"}]),
    }
    assert [a["id"] for a in product["assets"]] == [created.images["hat-front"]]
    assert product["featuredAsset"]["id"] == created.images["hat-front"]

    # Linking by SKU finds it; sending the same image again adds nothing.
    found = connector.find_product(["NOPE", "HAT-L"])
    assert found is not None and found.id == created.id
    assert found.variants == created.variants
    image = ChannelImage("hat-front", {"url": f"{images}/hat.png"})
    assert connector.add_image(created.id, image, "key-2") == created.images["hat-front"]

    # A new size gets its option value; an existing one is updated in place.
    results = connector.upsert_variants(
        created.id,
        [
            ChannelVariant("HAT-S", {"price": "8.50", "quantity": 4}, created.variants["HAT-S"]),
            ChannelVariant("HAT-XL", {"price": "11", "quantity": 1, "options": {"Size": "XL"}}),
        ],
        "key-3",
    )
    assert all(r.ok for r in results)
    product = remote_product(connector, created.id)
    now = {v["sku"]: (v["price"], v["stockOnHand"]) for v in product["variants"]}
    assert now == {"HAT-S": (850, 4), "HAT-L": (1049, 0), "HAT-XL": (1100, 1)}

    # Deleting twice is harmless: already gone counts as done.
    for _ in range(2):
        connector.delete_variant(created.id, created.variants["HAT-L"], "key-4")
        connector.delete_image(created.id, created.images["hat-front"], "key-5")
    product = remote_product(connector, created.id)
    assert sorted(v["sku"] for v in product["variants"]) == ["HAT-S", "HAT-XL"]
    assert product["assets"] == []
    # A variant deleted in Vendure's admin, still linked here, is made again.
    gone = created.variants["HAT-L"]
    (again,) = connector.upsert_variants(
        created.id,
        [
            ChannelVariant(
                "HAT-L", {"price": "10.49", "quantity": 2, "options": {"Size": "L"}}, gone
            )
        ],
        "key-7",
    )
    assert again.ok and again.remote_id not in (None, gone)
    product = remote_product(connector, created.id)
    assert sorted(v["sku"] for v in product["variants"]) == ["HAT-L", "HAT-S", "HAT-XL"]
    for _ in range(2):
        connector.delete_product(created.id, "key-6")
    assert connector.find_product(["HAT-S"]) is None


def test_vendure_image_that_cannot_be_fetched_leaves_a_product_to_link(
    vendure: Running, images: str
) -> None:
    connector = shop(vendure)
    broken = hat(f"{images}/missing.png")
    with pytest.raises(PermanentError, match=r"missing\.png: HTTP 404"):
        connector.create_product(broken, "key-1")
    # The product and its variants exist: the retry links it by SKU instead of making a
    # second one, and then adds the image.
    found = connector.find_product(["HAT-S"])
    assert found is not None and set(found.variants) == {"HAT-S", "HAT-L"}
    assert remote_product(connector, found.id)["assets"] == []
    connector.delete_product(found.id, "key-2")


def test_vendure_takes_over_a_product_left_without_variants(vendure: Running) -> None:
    """The shop went away after the product was made and before its variants were: the
    retry finishes that product instead of making a second one."""
    connector = shop(vendure)
    orphan = connector.api.query(
        'mutation { createProduct(input: {translations: [{languageCode: en, name: "Scarf",'
        ' slug: "scarf", description: ""}]}) { id } }'
    )["createProduct"]["id"]
    scarf = ChannelProduct("SCARF", {"title": "Scarf"}, [ChannelVariant("SCARF-1", {"price": "7"})])
    created = connector.create_product(scarf, "key-1")
    assert created.id == orphan
    assert [v["sku"] for v in remote_product(connector, orphan)["variants"]] == ["SCARF-1"]
    # A product of that slug with variants of its own is another product: left alone.
    other = connector.create_product(
        ChannelProduct("SCARF", {"title": "Scarf"}, [ChannelVariant("SCARF-2", {"price": "7"})]),
        "key-2",
    )
    assert other.id != orphan
    for product_id in (orphan, other.id):
        connector.delete_product(product_id, "key-3")
    # A deleted product is not taken over either.
    anew = connector.create_product(scarf, "key-4")
    assert anew.id not in (orphan, other.id)
    connector.delete_product(anew.id, "key-5")


def test_vendure_errors_say_retry_or_stop(vendure: Running) -> None:
    with pytest.raises(PermanentError, match="login of 'superadmin' failed"):
        VendureConnector({"url": f"{vendure.url}/admin-api", "password": "wrong"}).find_product(
            ["X"]
        )
    down = VendureConnector({"url": f"http://127.0.0.1:{free_port()}/admin-api", "password": "x"})
    with pytest.raises(TransientError, match="cannot reach vendure"):
        down.find_product(["X"])
    with pytest.raises(PermanentError, match="url"):
        VendureConnector({"url": "ftp://shop", "password": "x"})


def test_tryton_pull_reads_each_change_once(tryton: Running) -> None:
    client = tryton_client(tryton.url)
    seed_tryton_items(client, (TrytonItem("CAP", "Cap", Decimal("15"), (("CAP-1", 4),)),))
    connector = erp(tryton, overlap=60)
    first = connector.fetch_products(None)
    cap = next(r for r in first.records if r["code"] == "CAP")
    assert cap["title"] == "Cap" and cap["active"] is True
    (variant,) = cap["variants"]
    assert (variant["sku"], Decimal(variant["price"]), variant["stock"]) == (
        "CAP-1",
        Decimal(15),
        {"WH": 4},
    )
    # Nothing changed: nothing comes back, although the overlap reads the same window.
    again = connector.fetch_products(first.cursor)
    assert again.records == []
    set_tryton_price(client, "CAP", Decimal("16.50"))
    changed = connector.fetch_products(again.cursor)
    prices = [(r["code"], Decimal(r["variants"][0]["price"])) for r in changed.records]
    assert prices == [("CAP", Decimal("16.5"))]
    assert connector.fetch_products(changed.cursor).records == []


def test_tryton_order_is_one_confirmed_sale_however_often_sent(tryton: Running) -> None:
    client = tryton_client(tryton.url)
    seed_tryton_items(client, (TrytonItem("PEN", "Pen", Decimal("2"), (("PEN", 50),)),))
    connector = erp(tryton)
    order = {
        "id": 7001,
        "remote_id": "77",
        "number": "WEB-77",
        "currency": "USD",
        "customer": {"code": "c1", "email": "bo@example.com", "name": "Bo"},
        "lines": [{"sku": "PEN", "quantity": 3, "price": "2.00"}],
        "shipping_address": {"name": "Bo", "line1": "Main St 1", "city": "Hamburg"},
        "total": "6.00",
    }
    first = connector.create_order(order, "add_order:7001")
    assert connector.create_order(order, "add_order:7001") == first
    # Another shop's order with the same number is another sale; the customer and the
    # address are found again, not duplicated.
    other = connector.create_order({**order, "id": 7002}, "add_order:7002")
    assert other != first
    sales = client.model(
        "sale.sale",
        "search_read",
        [("reference", "=", "WEB-77")],
        0,
        None,
        [["id", "ASC"]],
        ["number", "state", "invoice_address", "party"],
    )
    assert [(s["number"], s["state"]) for s in sales] == [
        (first, "processing"),
        (other, "processing"),
    ]
    assert sales[0]["party"] == sales[1]["party"]
    assert sales[0]["invoice_address"] == sales[1]["invoice_address"] is not None
    # What a confirmed sale will take is no longer promised: 50 - 3 - 3.
    pen = connector.fetch_products(None)
    (variant,) = next(r for r in pen.records if r["code"] == "PEN")["variants"]
    assert variant["stock"] == {"WH": 44}

    shipment = connector.create_fulfillment({**order, "source_code": first}, "key-2")
    page = connector.fetch_fulfillments(None)
    assert {"remote_id": shipment, "state": "open", "tracking": None} in page.records

    unknown_sku = {**order, "id": 7003, "lines": [{"sku": "NOPE", "quantity": 1, "price": "1"}]}
    with pytest.raises(PermanentError, match="no product with code 'NOPE'"):
        connector.create_order(unknown_sku, "key-3")
    with pytest.raises(PermanentError, match="no currency 'XYZ'"):
        connector.create_order({**order, "id": 7004, "currency": "XYZ"}, "key-4")


def test_tryton_sales_of_two_stockyards_with_the_same_order_id_stay_apart(
    tryton: Running,
) -> None:
    """A second deployment (or one set up afresh) against the same Tryton numbers its
    orders from 1 again: its order 1 is not the first one's sale."""
    client = tryton_client(tryton.url)
    seed_tryton_items(client, (TrytonItem("INK", "Ink", Decimal("3"), (("INK", 50),)),))
    connector = erp(tryton)
    order = {
        "id": 7101,
        "remote_id": "gid://shopify/Order/1",
        "number": "#1001",
        "currency": "USD",
        "customer": {"code": "c2", "email": "al@example.com", "name": "Al"},
        "lines": [{"sku": "INK", "quantity": 1, "price": "3.00"}],
        "shipping_address": {"name": "Al", "line1": "Main St 2", "city": "Hamburg"},
        "total": "3.00",
    }
    first = connector.create_order(order, "add_order:7101")
    elsewhere = {**order, "remote_id": "V-CODE-9", "number": "V-CODE-9"}
    assert connector.create_order(elsewhere, "add_order:7101") != first
    assert connector.create_order(order, "add_order:7101") == first  # a repeat is still one

    # A sale made before the tag named the channel's order (left a draft by a crash, say):
    # a repeat of it still finds it (same Stockyard id, same reference) and confirms it.
    old = {**order, "id": 7102, "number": "#1002"}
    (made,) = client.model("sale.sale", "create", [connector._sale(old, "Stockyard order 7102")])
    number = connector.create_order(old, "add_order:7102")
    (sale,) = client.model("sale.sale", "read", [made], ["number", "state"])
    assert (sale["number"], sale["state"]) == (number, "processing")


def test_tryton_errors_say_retry_or_stop(tryton: Running) -> None:
    with pytest.raises(PermanentError, match="refused the login"):
        erp(tryton, password="wrong").fetch_products(None)
    with pytest.raises(TransientError, match="cannot reach Tryton"):
        erp(tryton, url=f"http://127.0.0.1:{free_port()}").fetch_products(None)
    with pytest.raises(PermanentError, match="no such Tryton database"):
        erp(tryton, database="nope").fetch_products(None)
    with pytest.raises(PermanentError, match="warehouse with code"):
        erp(tryton, warehouses=["NOWHERE"]).fetch_products(None)


def test_connection_settings_are_checked_when_saved(tmp_path: Any) -> None:
    from stockyard.accounts import Principal
    from stockyard.application import Application
    from stockyard.errors import InvalidInput

    service = Application.init(f"sqlite:///{tmp_path / 'sy.db'}").service
    admin = Principal("test", platform_admin=True)
    client = service.create_client(admin, "Acme")
    erp_settings = {"url": "http://127.0.0.1:1", "database": "shop"}
    with pytest.raises(InvalidInput, match=r"settings\.password is a credential"):
        service.create_connection(
            admin, client.id, "source", "tryton", "ERP", {**erp_settings, "password": "x"}, {}
        )
    with pytest.raises(InvalidInput, match="database"):
        service.create_connection(
            admin, client.id, "source", "tryton", "ERP", {"url": "http://x"}, {"password": "x"}
        )
    with pytest.raises(InvalidInput, match="cannot act as a channel"):
        service.create_connection(
            admin, client.id, "channel", "tryton", "ERP", erp_settings, {"password": "x"}
        )
    with pytest.raises(InvalidInput, match="cannot act as a source"):
        service.create_connection(
            admin, client.id, "source", "vendure", "Shop", {"url": "http://x"}, {"password": "x"}
        )
    made = service.create_connection(
        admin, client.id, "source", "tryton", "ERP", erp_settings, {"password": "x"}
    )
    assert (made.settings, made.secrets) == (erp_settings, ["password"])


def test_tryton_refusals_carry_its_message(tryton: Running) -> None:
    client = tryton_client(tryton.url)
    seed_tryton_items(client, (TrytonItem("BAG", "Bag", Decimal("30"), (("BAG", 2),)),))
    bag = client.model("product.template", "search", [("code", "=", "BAG")], 0, 1, None)
    # Tryton asks the user to confirm deactivating a product that is still in stock.
    with pytest.raises(PermanentError, match=r"Tryton warns: .*still some quantities") as warned:
        client.model("product.template", "write", bag, {"active": False})
    assert "deactivate_product_with_stock" not in str(warned.value)
    with pytest.raises(PermanentError, match="Tryton refused: "):
        client.model("product.template", "create", [{"name": "No unit"}])


def test_vendure_orders_are_read_once_placed(vendure: Running, images: str) -> None:
    connector = shop(vendure)
    product = ChannelProduct(
        "SOCK", {"title": "Socks"}, [ChannelVariant("SOCK-1", {"price": "4.20", "quantity": 9})]
    )
    created = connector.create_product(product, "key-1")
    start = connector.fetch_orders(None)
    code = VendureShopper(vendure.url).place_order({created.variants["SOCK-1"]: 3})

    page = connector.fetch_orders(start.cursor)
    (order,) = [o for o in page.records if o["number"] == code]
    assert order["currency"] == "USD"
    (line,) = order["lines"]
    assert (line["sku"], line["quantity"], Decimal(line["price"])) == ("SOCK-1", 3, Decimal("4.2"))
    assert line["title"] == "Socks SOCK-1"
    assert Decimal(order["total"]) == Decimal(order["shipping"]) + Decimal("12.60") + Decimal(
        order["tax"]
    )
    assert order["customer"]["email"] == "ana@example.com"
    assert order["shipping_address"]["city"] == "Berlin"
    assert connector.get_order(order["remote_id"]) == order
    # Read again inside the overlap: the same report, which Stockyard queues once.
    assert connector.fetch_orders(page.cursor).records == [order]
    assert shop(vendure, overlap=0).fetch_orders(page.cursor).records == []
    connector.delete_product(created.id, "key-2")


def test_expired_sessions_are_renewed(tryton: Running, vendure: Running) -> None:
    """Both systems end sessions (timeouts, restarts, a logout): the clients log in again
    once and carry on."""
    connector = erp(tryton)
    connector.warehouses()
    auth, _ = connector.rpc._session()
    status, _ = connector.rpc._post("common.db.logout", [], auth)
    assert status == 200
    connector._warehouses = None
    assert [w["code"] for w in connector.warehouses()] == ["WH"]
    assert connector.rpc._session()[0] != auth

    channel = shop(vendure)
    assert channel.find_product(["NONE"]) is None
    token = channel.api._session()
    channel.api.query("mutation { logout { success } }")
    assert channel.find_product(["NONE"]) is None
    assert channel.api._session() != token
