"""SAP Business One to shop through real worker processes (issue 20): the Service Layer
double (tests/support/sapb1_double.py, every body checked with b1sl-python's models) is
the product source and the fulfilment service, a `stockyard worker` process carries the
work, and the session's real Vendure is the shop. Items arrive with prices and stock; a
price changed in B1 arrives within one poll; a Vendure order becomes one B1 sales order
with NumAtCard = the web order number even when the answer to its creation is lost and
the item retries; a delivery note made from it in B1 reaches Vendure as a delivered
fulfilment with its tracking number."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from systems.launch import VENDURE_ADMIN, Running, VendureShopper, vendure_admin

from stockyard.application import Application
from stockyard.catalog.store import CatalogStore
from stockyard.engine import ItemFilter, Request
from stockyard.tenancy import Tenancy
from tests.support.e2e import ADMIN, wait_for
from tests.support.sapb1_double import PASSWORD, SapB1Double, Served, serve, settings
from tests.support.vendure_reads import all_in_shop, delivered, shop_variants

POLL = 5  # seconds between polls


@pytest.fixture
def b1() -> Iterator[Served]:
    double = SapB1Double()
    double.honour_prefer = False  # the 20-row default: the catalog spans two pages
    double.add_partner("WEB", "Web shop customer")
    for size, stock in (("S", 5.0), ("M", 7.0)):
        double.add_item(
            f"B1TEE-{size}",
            f"B1 Tee - {size}",
            {1: 19.9, 2: 15.0},
            {"01": stock},
            U_ParentCode="B1TEE",
            U_Size=size,
        )
    double.add_item("B1MUG", "B1 Mug", {1: 12.5, 2: 10.0}, {"01": 12.0, "02": 3.0})
    for n in range(20):  # items not for sale: the mug is on the second page
        double.add_item(f"B1SPARE-{n:02}", f"Spare part {n}", {1: 1.0}, SalesItem="tNO")
    with serve(double) as served:
        yield served
    assert double.refused == []


def test_b1_to_shop_and_back(
    tmp_path: Path,
    b1: Served,
    vendure: Running,
    worker: Callable[[], subprocess.Popen[bytes]],
) -> None:
    double = b1.double
    application = Application.init(f"sqlite:///{tmp_path / 'stockyard.db'}")
    service, queue = application.service, application.queue
    client = service.create_client(ADMIN, "Acme B1").id
    b1_settings = settings(b1, web_customer="WEB", parent_field="U_ParentCode")
    b1_settings |= {"option_fields": {"Size": "U_Size"}, "price_lists": {"wholesale": 2}}
    password = {"password": b1_settings.pop("password")}
    assert password == {"password": PASSWORD}
    source = service.create_connection(
        ADMIN,
        client,
        "source",
        "sapb1",
        "SAP B1",
        b1_settings | {"poll_products_every": POLL},
        password,
    ).id
    service.create_connection(
        ADMIN,
        client,
        "fulfillment",
        "sapb1",
        "SAP B1 deliveries",
        b1_settings | {"poll_fulfillments_every": POLL},
        password,
    )
    shop = service.create_connection(
        ADMIN,
        client,
        "channel",
        "vendure",
        "Vendure",
        {
            "url": f"{vendure.url}/admin-api",
            "username": VENDURE_ADMIN[0],
            "poll_orders_every": POLL,
        },
        {"password": VENDURE_ADMIN[1]},
    ).id
    service.enqueue(ADMIN, client, [Request("init_channel", {}, shop)])
    worker()
    skus = ["B1TEE-S", "B1TEE-M", "B1MUG"]

    # Items arrive in Vendure: the tee's two items as one product, prices in minor units
    # from price list 1, stock summed over the warehouses.
    found = wait_for(
        lambda: all_in_shop(vendure_admin(vendure.url), skus), "the three B1 items in Vendure"
    )
    assert {s: (v["price"], v["stockOnHand"]) for s, v in found.items()} == {
        "B1TEE-S": (1990, 5),
        "B1TEE-M": (1990, 7),
        "B1MUG": (1250, 15),
    }
    assert found["B1TEE-S"]["product"]["id"] == found["B1TEE-M"]["product"]["id"]
    assert found["B1TEE-S"]["product"]["name"] == "B1 Tee"
    assert not shop_variants(
        vendure_admin(vendure.url), ["B1SPARE-00"]
    )  # not a sales item: withdrawn
    (channel,) = [c for c in Tenancy(queue.db).connections(client) if c.id == shop]
    assert channel.status == "active"

    # A price changed in B1 arrives within one poll (and a few seconds of work).
    changed_at = time.monotonic()
    double.tick(60)
    double.set_price("B1MUG", 1, 13.75)
    wait_for(
        lambda: shop_variants(vendure_admin(vendure.url), ["B1MUG"])["B1MUG"]["price"] == 1375,
        "the new mug price in Vendure",
        timeout=60,
    )
    assert time.monotonic() - changed_at < 60

    # A Vendure order becomes one B1 sales order, even though the answer to the first
    # POST /Orders is lost and the item retries.
    double.lose_next("POST", containing='"B1MUG"')
    code = VendureShopper(vendure.url).place_order({found["B1MUG"]["id"]: 2})

    def b1_orders() -> list[dict[str, Any]]:
        with double._lock:
            return [o for o in double.orders.values() if o["NumAtCard"] == code]

    def booked() -> Any:
        orders = CatalogStore(queue.db).list_orders(client, None, 100)
        mine = [o for o in orders if o.order.number == code and o.source_code]
        return mine[0] if mine else None

    stored = wait_for(booked, f"order {code} booked in B1")
    (b1_order,) = b1_orders()
    assert stored.source_code == str(b1_order["DocNum"])
    assert b1_order["CardCode"] == "WEB"
    assert [(x["ItemCode"], x["Quantity"], x["UnitPrice"]) for x in b1_order["DocumentLines"]] == [
        ("B1MUG", 2.0, 13.75)
    ]
    adds = queue.list_items(
        ItemFilter(
            client, connection_id=source, instructions=("add_order",), ref=stored.order.remote_id
        ),
        limit=100,
    )
    (add,) = [i for i in adds if i.status == "done"]
    assert add.attempts >= 2  # the lost answer made it retry; the retry found the order
    assert len(b1_orders()) == 1

    # B1 delivers it (a delivery note copied from the order): Vendure hears it, tracking
    # number included.
    double.tick(60)
    double.deliver(b1_order["DocEntry"], tracking="1Z999AA10123456784")

    shipped = wait_for(
        lambda: delivered(vendure_admin(vendure.url), code), f"order {code} delivered in Vendure"
    )
    assert shipped["fulfillments"] == [{"state": "Delivered", "trackingCode": "1Z999AA10123456784"}]
    # Read from its delivery note and the order B1 closed (an open order's state would
    # come through $batch: tests/test_sapb1_connector.py).
    assert {"GET DeliveryNotes", "GET Orders"} <= set(double.calls())
