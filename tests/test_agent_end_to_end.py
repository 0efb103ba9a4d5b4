"""The agent end to end, through processes (issue 20): a Sage 200 Evolution company
database on PostgreSQL (tests/support/erp_databases.py: Evolution's tables and types) is
read by a `stockyard agent run` process with the shipped sage200-evolution profile, which
pushes to Stockyard running as a `stockyard serve` process (API and in-process workers)
through its agent connection; the session's real Vendure is the shop.

Items arrive in Vendure with their tier prices and the stock of the shop's warehouses; a
price changed in Evolution arrives within one poll; a Vendure order is written into
Evolution's order tables by the agent (InvNum + _btblInvoiceLines) and its Stockyard
order gets the ERP's code; Evolution is the warehouse too (a second agent connection,
kind fulfillment): the order processed to an invoice there with a waybill shows
Delivered in Vendure with that tracking code; the agent killed while its INSERT waits on
a lock is restarted and writes the order once; Stockyard stopped while the agent reads
gets the changes made meanwhile, in order, when it returns."""

from __future__ import annotations

import base64
import json
import secrets
import signal
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from systems.launch import VENDURE_ADMIN, Running, VendureShopper, vendure_admin
from systems.net import free_port
from systems.postgres import Databases

from stockyard.application import Application
from stockyard.catalog.store import CatalogStore, StoredOrder
from stockyard.engine import Item, ItemFilter, Queue, Request
from tests.support import erp_databases as erp
from tests.support.agent_processes import processes
from tests.support.e2e import ADMIN, wait_for
from tests.support.vendure_reads import all_in_shop, delivered, saleable, shop_variants

POLL = 2  # the agent's poll_seconds
AGENT_DB_NAME = "stockyard-agent"  # the application_name of the agent's ERP sessions
SHOP_WAREHOUSES = ["JHB", "CPT"]  # the shop sells what these hold, at the Trade prices


@dataclass
class Sage:
    """The Evolution database, its item codes made this test's own: Vendure is the
    session's, and other tests' products and orders are in it too."""

    url: str
    engine: sa.Engine
    prefix: str

    def sku(self, code: str) -> str:
        return self.prefix + code

    def orders(self, number: str) -> list[dict[str, Any]]:
        """The sales orders written for the web order `number`, with their lines: marked
        as Stockyard's in ExtOrderNum (the profile's order_marker_prefix, "WEB-")."""
        return [o for o in erp.sage_orders(self.engine) if o["ExtOrderNum"] == "WEB-" + number]

    def agent_sessions(self, waiting: bool = False) -> int:
        """The agent's database sessions (its URL names it), or those of them waiting for
        a lock on the order header table."""
        lock_wait = (
            " AND EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = a.pid AND NOT l.granted"
            " AND l.relation = 'invnum'::regclass)"
        )
        with self.engine.connect() as db:
            return int(
                db.execute(
                    sa.text(
                        "SELECT count(*) FROM pg_stat_activity a WHERE application_name = :n"
                        + (lock_wait if waiting else "")
                    ),
                    {"n": AGENT_DB_NAME},
                ).scalar_one()
            )

    def set_stock(self, code: str, warehouse: str, quantity: int) -> None:
        with self.engine.begin() as db:
            db.execute(
                sa.text(
                    "UPDATE WhseStk SET WHQtyOnHand = :q"
                    " WHERE WHStockLink = (SELECT StockLink FROM StkItem WHERE Code = :sku)"
                    " AND WHWhseID = (SELECT WhseLink FROM WhseMst WHERE Code = :w)"
                ),
                {"q": quantity, "sku": self.sku(code), "w": warehouse},
            )


@pytest.fixture
def sage(pg_databases: Databases) -> Iterator[Sage]:
    url = pg_databases.create(migrated=False)
    engine = erp.sage_evolution(url)
    prefix = f"AG{secrets.token_hex(2).upper()}-"
    with engine.begin() as db:
        p = {"p": prefix}
        db.execute(sa.text("UPDATE StkItem SET Code = CAST(:p AS varchar) || Code"), p)
        # The style segment is the product's code.
        db.execute(
            sa.text(
                "UPDATE _etblInvSegValue SET cValue = CAST(:p AS varchar) || cValue"
                " WHERE iInvSegGroupID = 1"
            ),
            p,
        )
        # The white tee has no Trade price: the shop sells it at its list (Retail) price.
        db.execute(
            sa.text(
                "DELETE FROM _etblPriceListPrices WHERE iPriceListNameID = 2"
                " AND iStockID = (SELECT StockLink FROM StkItem WHERE Code = :sku)"
            ),
            {"sku": prefix + "TEE-WHT-M"},
        )
    try:
        yield Sage(url, engine, prefix)
    finally:
        engine.dispose()
        pg_databases.drop(url)


def agent_config(
    folder: Path,
    port: int,
    connection: int,
    secret: str,
    erp_url: str,
    fulfillment: tuple[int, str],
) -> Path:
    folder.mkdir()
    (folder / "secret").write_text(secret + "\n")
    (folder / "fulfillment-secret").write_text(fulfillment[1] + "\n")
    config = folder / "agent.toml"
    config.write_text(
        f"""
[stockyard]
url = "http://127.0.0.1:{port}"
connection = {connection}
secret_file = "secret"

[agent]
state = "state.db"
poll_seconds = {POLL}

[fulfillment]
connection = {fulfillment[0]}
secret_file = "fulfillment-secret"

[erp]
profile = "sage200-evolution"
url = "{erp_url}?application_name={AGENT_DB_NAME}"
"""
    )
    return config


def outbox(folder: Path) -> list[dict[str, Any]]:
    """The records waiting in the agent's outbox, oldest first."""
    db = sqlite3.connect(folder / "state.db", timeout=10)
    try:
        rows = db.execute("SELECT topic, body FROM outbox ORDER BY seq, part").fetchall()
    finally:
        db.close()
    return [record for topic, body in rows for record in json.loads(body)[topic]]


def stored_order(store: CatalogStore, client: int, number: str) -> StoredOrder | None:
    # (The shop holds other tests' orders too: they are synced as well, and reach this
    # ERP through the agent; only ours are looked at.)
    mine = [o for o in store.list_orders(client, None, 200) if o.order.number == number]
    return mine[0] if mine else None


def booked(store: CatalogStore, client: int, number: str) -> StoredOrder | None:
    order = stored_order(store, client, number)
    return order if order is not None and order.source_code else None


def add_orders(queue: Queue, client: int, source: int, *statuses: str) -> list[Item]:
    flt = ItemFilter(client, statuses, ("add_order",), connection_id=source)
    return queue.list_items(flt, limit=1000)


def pushes(queue: Queue, client: int, source: int, product: str, since: float) -> list[Any]:
    """(Trade price, JHB stock) of each sync_product the agent pushed for `product` since
    `since`, in the order they were queued (a later one may supersede an earlier one)."""
    flt = ItemFilter(client, (), ("sync_product",), connection_id=source, ref=product)
    items = sorted(queue.list_items(flt, limit=1000), key=lambda i: i.id)
    return [
        (Decimal(str(v["prices"]["Trade"])), v["stock"]["JHB"])
        for i in items
        if i.created_at >= since
        for v in i.payload["variants"]
    ]


@pytest.fixture
def application(tmp_path: Path) -> Iterator[Application]:
    """Stockyard's database (the test's SQLite file), as the serve process finds it."""
    made = Application.init(f"sqlite:///{tmp_path / 'stockyard.db'}")
    yield made
    made.close()


def test_sage_evolution_to_vendure_and_back(
    tmp_path: Path, application: Application, sage: Sage, vendure: Running
) -> None:
    database = f"sqlite:///{tmp_path / 'stockyard.db'}"
    service, queue = application.service, application.queue
    store = CatalogStore(queue.db)
    client = service.create_client(ADMIN, "Evolution trader").id
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    source = service.create_connection(
        ADMIN, client, "source", "agent", "Sage 200 Evolution", {}, {"webhook_secret": secret}
    ).id
    # Evolution is the warehouse too: a second agent connection, its own credential.
    dispatch_secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    dispatch = service.create_connection(
        ADMIN,
        client,
        "fulfillment",
        "agent",
        "Evolution dispatch",
        {},
        {"webhook_secret": dispatch_secret},
    ).id
    shop = service.create_connection(
        ADMIN,
        client,
        "channel",
        "vendure",
        "Vendure",
        {
            "url": f"{vendure.url}/admin-api",
            "username": VENDURE_ADMIN[0],
            "poll_orders_every": 5,
            "rules": {"price_tier": "Trade", "warehouses": SHOP_WAREHOUSES},
            "fulfillment": dispatch,
        },
        {"password": VENDURE_ADMIN[1]},
    ).id
    service.enqueue(ADMIN, client, [Request("init_channel", {}, shop)])
    port = free_port()
    state = tmp_path / "agent"
    config = agent_config(state, port, source, secret, sage.url, (dispatch, dispatch_secret))
    admin = vendure_admin(vendure.url)
    tee, tee_l, tee_white, mug = (
        sage.sku(c) for c in ("TEE-BLK-M", "TEE-BLK-L", "TEE-WHT-M", "MUG-ENAMEL")
    )

    with processes(tmp_path) as run:
        run.serve(port, database)
        run.agent(config)

        # 1. Evolution's items arrive in Vendure: the tee's three items as one product, at
        # their Trade prices in minor units (the white tee has none: its list price), the
        # stock of the shop's warehouses summed (not Durban's). The discontinued cap and
        # the delivery fee (a service item) are no products for the shop.
        found = wait_for(
            lambda: all_in_shop(admin, [tee, tee_l, tee_white, mug]),
            "the four Evolution items in Vendure",
            timeout=60,
        )
        assert {s: (v["price"], saleable(v)) for s, v in found.items()} == {
            tee: (17250, 12 + 5),
            tee_l: (17250, 3),
            tee_white: (21900, 8),
            mug: (6400, 40 + 0),
        }
        assert len({found[s]["product"]["id"] for s in (tee, tee_l, tee_white)}) == 1
        assert found[tee]["product"]["name"] == "Classic crew tee"
        assert not shop_variants(admin, [sage.sku("CAP-OLD"), sage.sku("DELIVERY")])
        # Stockyard holds what the ERP said, warehouse by warehouse and tier by tier.
        product = store.product(client, store.product_id(client, sage.sku("TEE")))
        by_sku = {v.variant.sku: v.variant for v in product.variants}
        assert by_sku[tee].prices == {"Trade": Decimal("172.5")}
        assert by_sku[tee].stock == {"JHB": 12, "CPT": 5}
        assert (by_sku[tee_white].prices, by_sku[tee_white].stock) == ({}, {"CPT": 8, "DBN": 2})

        # 2. A price changed in Evolution arrives within one poll of the agent: the next
        # poll pushes the mug once, with its new price.
        changed = time.time()
        erp.set_sage_price(sage.engine, mug, "Trade", Decimal("69.50"))
        wait_for(
            lambda: shop_variants(admin, [mug])[mug]["price"] == 6950,
            "the mug's new Trade price in Vendure",
            timeout=POLL + 30,
        )
        assert pushes(queue, client, source, mug, changed) == [(Decimal("69.5"), 40)]

        # 3. A Vendure order -> sync_order -> add_order on the agent connection -> the
        # agent writes it into Evolution as a sales order, and Stockyard's order gets the
        # ERP's code.
        first = VendureShopper(vendure.url).place_order({found[mug]["id"]: 2})
        order = wait_for(lambda: booked(store, client, first), f"order {first} in Evolution")
        (header,) = sage.orders(first)
        assert (header["DocType"], header["DocState"], header["OrderNum"]) == (4, 1, first)
        assert header["Description"] == "Web order"
        columns = ("iLineID", "iStockCodeID", "iWarehouseID", "fQuantity", "fUnitPriceIncl")
        # The mug (StockLink 4) from JHB (WhseLink 1), at its price then.
        assert [tuple(x[c] for c in columns) for x in header["lines"]] == [(1, 4, 1, 2.0, 69.5)]
        assert order.source_code == header["OrderNum"]
        (item,) = [
            i for i in add_orders(queue, client, source) if i.refs == [order.order.remote_id]
        ]
        assert item.status == "done"
        (attempt,) = queue.detail(client, item.id).attempts
        assert attempt.outcome == "done"
        assert (attempt.worker_id or "").startswith(f"agent:{source}:")  # the agent's session

        # 3b. Evolution ships it: the sales order processed to an invoice carrying the
        # waybill. The agent made its fulfilment (the order's code) when Stockyard asked,
        # reads the shipment at its next poll and pushes it through the fulfillment
        # connection; Vendure shows the order delivered with the waybill as tracking code.
        waybill = f"TCG{secrets.randbelow(10**8):08d}"
        erp.ship_sage_order(sage.engine, first, waybill, "The Courier Guy")

        shipped = wait_for(
            lambda: delivered(admin, first), f"order {first} delivered in Vendure", timeout=90
        )
        assert shipped["fulfillments"] == [{"state": "Delivered", "trackingCode": waybill}]
        (made,) = [f for f in store.fulfillments(order.id) if f.service_id == dispatch]
        assert (made.remote_id, made.state) == (first, "complete")
        assert made.tracking is not None and made.tracking.carrier == "The Courier Guy"

        # 4. The agent killed mid-order and restarted: the order is written once. Every
        # add_order so far has run, so the next one the agent claims is ours; our own
        # transaction holds the header table, so the agent's INSERT waits, mid-order.
        wait_for(
            lambda: not add_orders(queue, client, source, "queued", "running"),
            "the agent's earlier orders done",
        )
        with sage.engine.connect() as locker:
            lock = locker.begin()
            locker.execute(sa.text("LOCK TABLE InvNum IN EXCLUSIVE MODE"))
            try:
                second = VendureShopper(vendure.url).place_order({found[tee]["id"]: 1})

                def claimed() -> Item | None:
                    running = add_orders(queue, client, source, "running")
                    return running[0] if len(running) == 1 else None

                held = wait_for(claimed, f"the agent holding order {second}'s add_order")
                assert (held.worker_id or "").startswith(f"agent:{source}:")
                wait_for(
                    lambda: sage.agent_sessions(waiting=True),
                    "the agent's INSERT waiting on the lock",
                )
                assert run.stop("agent", signal.SIGKILL) == -signal.SIGKILL
            finally:
                lock.rollback()
        # Its INSERT runs once the lock is released, then PostgreSQL finds the client gone
        # and rolls its transaction back: the dead agent's order left nothing.
        wait_for(lambda: sage.agent_sessions() == 0, "the dead agent's sessions to end")
        assert sage.orders(second) == []
        run.agent(config)
        order = wait_for(
            lambda: booked(store, client, second), f"order {second} in Evolution", timeout=60
        )
        (header,) = sage.orders(second)
        # The black tee M (StockLink 1), once.
        assert [tuple(x[c] for c in columns) for x in header["lines"]] == [(1, 1, 1, 1.0, 172.5)]
        assert order.source_code == second and order.order.remote_id in held.refs
        # Reaped after the lease (`lost`), claimed again by the restarted agent's session.
        attempts = queue.detail(client, held.id).attempts
        assert [a.outcome for a in attempts] == ["lost", "done"]
        assert attempts[0].worker_id == held.worker_id != attempts[1].worker_id

        # 5. Stockyard stopped while the agent reads: the changes made meanwhile wait in
        # the agent's outbox, and arrive in order when Stockyard returns.
        wait_for(lambda: outbox(state) == [], "the agent's outbox delivered")
        stopped = time.time()
        assert run.stop("serve") in (0, -signal.SIGTERM)
        # Each change waits for the agent's next poll: the outbox holds one push for each.
        erp.set_sage_price(sage.engine, mug, "Trade", Decimal("71.00"))
        wait_for(lambda: len(outbox(state)) == 1, "price A in the agent's outbox")
        erp.set_sage_price(sage.engine, mug, "Trade", Decimal("73.25"))
        wait_for(lambda: len(outbox(state)) == 2, "price B in the agent's outbox")
        sage.set_stock("MUG-ENAMEL", "JHB", 25)
        wait_for(lambda: len(outbox(state)) == 3, "the stock change in the agent's outbox")
        held_back = [
            (Decimal(str(v["prices"]["Trade"])), v["stock"]["JHB"])
            for record in outbox(state)
            for v in record["variants"]
        ]
        expected = [(Decimal("71"), 40), (Decimal("73.25"), 40), (Decimal("73.25"), 25)]
        assert held_back == expected
        run.serve(port, database)

        def converged() -> bool:
            variant = shop_variants(admin, [mug])[mug]
            return bool(variant["price"] == 7325 and saleable(variant) == 25)

        wait_for(converged, "the mug's last price and stock in Vendure", timeout=60)
        assert pushes(queue, client, source, mug, stopped) == expected
        assert outbox(state) == []
