"""The shipped agent profiles against ERP-shaped databases (tests/support/erp_databases.py):
each profile passes the agent's check, assembles the records its rows say, and writes an
order into the ERP's tables once, however often it runs. SQLite and PostgreSQL."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from stockyard.agent.changes import poll
from stockyard.agent.files import FolderSource
from stockyard.agent.orders import Failure, SqlWriter
from stockyard.agent.outbox import State
from stockyard.agent.profile import Profile, load_profile, settings, shipped
from stockyard.agent.read import SqlSource
from stockyard.catalog.models import Customer, Order, OrderLine, Product
from tests.support import erp_databases as erp

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def erp_url(empty_url: str) -> str:
    """An empty database for an ERP's tables (not Stockyard's), on each backend."""
    return empty_url


def read(
    url: str, profile: Profile, state: Path, **given: Any
) -> tuple[list[Product], list[Customer]]:
    """What the agent assembles from the profile's queries, checked as `agent check` does:
    a problem (a bad row, an unknown column) fails the test."""
    source = SqlSource(url, profile, settings(profile, given, "test"))
    try:
        return assembled(source, profile, state)
    finally:
        source.close()


def assembled(source: Any, profile: Profile, folder: Path) -> tuple[list[Product], list[Customer]]:
    state = State(folder / "state.db")
    try:
        reading = poll(source, profile, state, samples=100)
    finally:
        state.close()
    assert reading.problems == []
    products = [Product.model_validate(p) for p in reading.change.records.get("products", [])]
    customers = [Customer.model_validate(c) for c in reading.change.records.get("customers", [])]
    return products, customers


def by_key(products: list[Product]) -> dict[str, Product]:
    return {p.key: p for p in products}


def variants(product: Product) -> dict[str, Any]:
    return {v.sku: v for v in product.variants}


def web_order(
    number: str,
    customer: str | None,
    lines: list[tuple[str, int, str]],
    tier: str | None = None,
) -> dict[str, Any]:
    """An order as add_order sends it; `tier`: on account (the channel's rules gave the
    buyer's group a price tier), else a web shop's own customer id."""
    buyer = (
        Customer(code=customer, email="buyer@example.com", price_tier=tier) if customer else None
    )
    order = Order(
        remote_id=f"gid://shop/Order/{number}",
        number=number,
        currency="ZAR",
        customer=buyer,
        lines=[OrderLine(sku=s, quantity=q, price=Decimal(p)) for s, q, p in lines],
        tax=Decimal("30.00"),
        total=sum((Decimal(p) * q for _, q, p in lines), Decimal(0)),
    )
    return {**order.model_dump(mode="json"), "id": 501}


def writer(url: str, profile: Profile) -> SqlWriter:
    assert profile.orders is not None
    return SqlWriter(sa.create_engine(url), profile.orders, settings(profile, {}, "test"))


def written_once(write: SqlWriter, order: dict[str, Any], key: str) -> str:
    """The ERP code `order` is written under; claimed again (the agent died before
    settling), the same order is found, not written twice."""
    code = write.create_order(order, key)
    assert write.create_order(order, key) == code
    return code


def test_every_shipped_profile_loads() -> None:
    assert {"sage200-evolution", "syspro", "generic", "generic-csv"} <= set(shipped())
    for name in shipped():
        profile = load_profile(name)
        assert profile.name == name
        assert profile.sources, f"{name}: say where its table and column names are documented"


# ------------------------------------------------------------------ Sage 200 Evolution


def test_sage_evolution_products_variants_tiers_and_stock(erp_url: str, tmp_path: Path) -> None:
    erp.sage_evolution(erp_url)
    products, _ = read(erp_url, load_profile("sage200-evolution"), tmp_path)
    found = by_key(products)
    # The delivery fee is a service item: no product. The rest by style or item code.
    assert set(found) == set(erp.SAGE["products"])
    for code, expected in erp.SAGE["products"].items():
        product = found[code]
        assert product.title == expected["title"]
        for sku, options in expected["options"].items():
            assert variants(product)[sku].options == dict(
                zip(("Colour", "Size"), options, strict=True)
            )
    tee = found["TEE"]
    assert tee.options == ["Colour", "Size"]
    assert set(variants(tee)) == {"TEE-BLK-M", "TEE-BLK-L", "TEE-WHT-M"}
    assert found["CAP-OLD"].active is False and found["TEE"].active is True
    for product in products:
        for v in product.variants:
            retail, trade = erp.SAGE["prices"][v.sku]
            # The retail list's VAT-inclusive price; the per-warehouse price is not it.
            assert v.price == retail
            assert v.prices == ({"Trade": trade} if trade is not None else {})
            assert v.stock == erp.SAGE["stock"][v.sku]
    black_m = variants(tee)["TEE-BLK-M"]
    assert black_m.barcode == "6009801000011" and black_m.weight == Decimal("0.18")


def test_sage_evolution_prices_without_vat_on_request(erp_url: str, tmp_path: Path) -> None:
    erp.sage_evolution(erp_url)
    products, _ = read(erp_url, load_profile("sage200-evolution"), tmp_path, price_column="excl")
    mug = variants(by_key(products)["MUG-ENAMEL"])["MUG-ENAMEL"]
    assert mug.price == Decimal("78.2174")  # 89.95 / 1.15, as Evolution stores it
    assert mug.prices == {"Trade": Decimal("55.6522")}


def test_sage_evolution_customer_accounts(erp_url: str, tmp_path: Path) -> None:
    erp.sage_evolution(erp_url)
    _, customers = read(erp_url, load_profile("sage200-evolution"), tmp_path)
    found = {c.code: c for c in customers}
    assert set(found) == set(erp.SAGE["customers"])
    for code, expected in erp.SAGE["customers"].items():
        c = found[code]
        assert c.company == expected["name"]
        assert c.price_tier == expected["tier"]
        assert c.credit_limit == expected["credit"]
        assert c.payment_terms == expected["terms"]
        assert c.email == expected["email"]
        assert c.active is expected["active"]
    trade = found["TRA001"]
    assert trade.name == "Thandi Nkosi" and trade.phone == "011 555 0100"
    assert trade.addresses[0].city == "Johannesburg" and trade.addresses[0].postcode == "2094"


def test_sage_evolution_price_change_changes_that_product_only(
    erp_url: str, tmp_path: Path
) -> None:
    engine = erp.sage_evolution(erp_url)
    profile = load_profile("sage200-evolution")
    source = SqlSource(erp_url, profile, settings(profile, {}, "test"))
    state = State(tmp_path / "state.db")
    try:
        first = poll(source, profile, state)
        state.put(first.change, batch_size=100)
        assert poll(source, profile, state).change.empty()
        erp.set_sage_price(engine, "TEE-WHT-M", "Trade", Decimal("150.00"))
        changed = poll(source, profile, state).change.records["products"]
    finally:
        state.close()
        source.close()
    assert [p["code"] for p in changed] == ["TEE"]
    white = next(v for v in changed[0]["variants"] if v["sku"] == "TEE-WHT-M")
    assert Decimal(white["prices"]["Trade"]) == Decimal("150")


def test_sage_evolution_order_is_written_once(erp_url: str) -> None:
    engine = erp.sage_evolution(erp_url)
    write = writer(erp_url, load_profile("sage200-evolution"))
    order = web_order(
        "WEB1001", "TRA001", [("TEE-BLK-M", 2, "172.50"), ("MUG-ENAMEL", 1, "64.00")], "Trade"
    )
    assert written_once(write, order, "item:7") == "WEB1001"
    (written,) = erp.sage_orders(engine)
    assert written["DocType"] == 4 and written["ExtOrderNum"] == "WEB-WEB1001"
    assert written["OrderNum"] == "WEB1001"
    assert written["AccountID"] == 1  # TRA001's DCLink
    assert written["OrdTotIncl"] == pytest.approx(409.0)
    assert written["cEmail"] == "buyer@example.com"
    lines = [(r["iLineID"], r["iStockCodeID"], r["iWarehouseID"], r["fQuantity"],
              r["fUnitPriceIncl"], r["cDescription"]) for r in written["lines"]]  # fmt: skip
    assert lines == [
        (1, 1, 1, 2.0, 172.5, "Classic tee black M"),
        (2, 4, 1, 1.0, 64.0, "Enamel camp mug"),
    ]
    assert erp.count(engine, "_btblInvoiceLines") == 2


def test_sage_evolution_guest_order_goes_to_the_cash_account(erp_url: str) -> None:
    engine = erp.sage_evolution(erp_url)
    write = writer(erp_url, load_profile("sage200-evolution"))
    write.create_order(web_order("WEB1002", None, [("TEE-WHT-M", 1, "219.00")]), "k")
    (written,) = erp.sage_orders(engine)
    assert written["AccountID"] == 2  # CASH


def test_sage_evolution_web_customer_id_never_bills_an_account(erp_url: str) -> None:
    """A web shop's own customer id that happens to be an account's code ("TRA001") is
    not that account: only an order on account (a price tier) is booked to one."""
    engine = erp.sage_evolution(erp_url)
    write = writer(erp_url, load_profile("sage200-evolution"))
    write.create_order(web_order("WEB1003", "TRA001", [("TEE-WHT-M", 1, "219.00")]), "k")
    (written,) = erp.sage_orders(engine)
    assert written["AccountID"] == 2  # CASH, not TRA001's 1


@pytest.mark.parametrize("profile", ["sage200-evolution", "syspro", "generic"])
def test_an_unknown_account_fails_the_order_and_writes_nothing(erp_url: str, profile: str) -> None:
    build = {"sage200-evolution": erp.sage_evolution, "syspro": erp.syspro, "generic": erp.generic}
    engine = build[profile](erp_url)
    header = {"sage200-evolution": "InvNum", "syspro": "SorMaster", "generic": "web_orders"}
    before = erp.count(engine, header[profile])  # Evolution's own history
    write = writer(erp_url, load_profile(profile))
    order = web_order("WEB1004", "NOSUCH", [("X", 1, "1.00")], "trade")
    with pytest.raises(Failure) as failed:
        write.create_order(order, "k")
    assert failed.value.kind == "permanent"
    assert "no account 'NOSUCH' in the ERP" in failed.value.message
    assert erp.count(engine, header[profile]) == before


# ------------------------------------------------------------------------------ SYSPRO


def test_syspro_products_variants_tiers_and_stock(erp_url: str, tmp_path: Path) -> None:
    erp.syspro(erp_url)
    products, _ = read(erp_url, load_profile("syspro"), tmp_path)
    found = by_key(products)
    assert set(found) == set(erp.SYSPRO["products"]) | {"GLOVE-OLD"}
    assert found["GLOVE-OLD"].active is False  # stock on hold
    bottle = found["WB-750"]
    assert bottle.title == "Insulated water bottle" and bottle.options == ["Colour"]
    for sku, colour in erp.SYSPRO["products"]["WB-750"]["options"].items():
        assert variants(bottle)[sku].options == {"Colour": colour}
    for code in erp.SYSPRO["products"]:
        for v in found[code].variants:
            list_price, trade = erp.SYSPRO["prices"][v.sku]
            assert v.price == list_price
            assert v.prices == {"B": trade}
            assert v.stock == erp.SYSPRO["stock"][v.sku]
    assert variants(found["HELM-PRO"])["HELM-PRO"].weight == Decimal("0.31")


def test_syspro_customers(erp_url: str, tmp_path: Path) -> None:
    erp.syspro(erp_url)
    _, customers = read(erp_url, load_profile("syspro"), tmp_path)
    found = {c.code: c for c in customers}
    assert set(found) == set(erp.SYSPRO["customers"])
    for code, expected in erp.SYSPRO["customers"].items():
        c = found[code]
        assert (c.company, c.price_tier, c.credit_limit, c.payment_terms, c.email, c.active) == (
            expected["name"], expected["tier"], expected["credit"], expected["terms"],
            expected["email"], expected["active"],
        )  # fmt: skip
    assert found["0000042"].addresses[0].line1 == "25 Greenway Street"


def test_syspro_order_is_written_once(erp_url: str) -> None:
    engine = erp.syspro(erp_url)
    write = writer(erp_url, load_profile("syspro"))
    order = web_order(
        "#1001", "0000042", [("WB-750-BLU", 6, "17.50"), ("HELM-PRO", 1, "112.25")], "B"
    )
    assert written_once(write, order, "item:9") == "#1001"
    (written,) = erp.syspro_orders(engine)
    assert (written["Customer"], written["CustomerPoNumber"], written["OrderStatus"]) == (
        "0000042", "WEB-#1001", "1",
    )  # fmt: skip
    lines = [(int(r["SalesOrderLine"]), r["LineType"], r["MStockCode"], r["MStockDes"],
              r["MWarehouse"], Decimal(str(r["MOrderQty"])), Decimal(str(r["MPrice"])))
             for r in written["lines"]]  # fmt: skip
    assert lines == [
        (1, "1", "WB-750-BLU", "Insulated water bottle", "FG", Decimal(6), Decimal("17.5")),
        (2, "1", "HELM-PRO", "Pro cycling helmet", "FG", Decimal(1), Decimal("112.25")),
    ]


# ------------------------------------------------------------------- generic profiles


def test_generic_profile(erp_url: str, tmp_path: Path) -> None:
    engine = erp.generic(erp_url)
    profile = load_profile("generic")
    products, customers = read(erp_url, profile, tmp_path)
    found = by_key(products)
    assert set(found) == {"SOCK", "BEANIE"}
    sock_s = variants(found["SOCK"])["SOCK-S"]
    assert sock_s.options == {"Size": "S", "Colour": "Grey"}
    assert sock_s.prices == {"trade": Decimal("8.75")} and sock_s.stock == {"main": 30}
    assert [(c.code, c.price_tier, c.credit_limit) for c in customers] == [
        ("ACME", "trade", Decimal(1000))
    ]
    write = writer(erp_url, profile)
    order = web_order("1001", None, [("SOCK-M", 3, "12.50")])
    code = written_once(write, order, "k")
    (written,) = erp.generic_orders(engine)
    assert written["account"] == "WEB" and str(written["id"]) == code
    assert [(r["sku"], r["quantity"]) for r in written["lines"]] == [("SOCK-M", 3)]


def test_generic_csv_profile(tmp_path: Path) -> None:
    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / "products.csv").write_text(
        "product,title,sku,price,option_Size,active\n"
        "TEE,Tee,TEE-S,10.00,S,1\nTEE,Tee,TEE-M,10.00,M,1\n",
        encoding="utf-8-sig",
    )
    (folder / "prices.csv").write_text("sku,tier,price\nTEE-S,trade,7.5\n")
    (folder / "stock.csv").write_text("sku,warehouse,quantity\nTEE-S,main,4\nTEE-M,main,0\n")
    (folder / "customers.csv").write_text("code,company,price_tier\nC1,Shop One,trade\n")
    profile = load_profile("generic-csv")
    assert profile.files is not None
    products, customers = assembled(FolderSource(folder, profile.files), profile, tmp_path)
    (tee,) = products
    assert variants(tee)["TEE-S"].prices == {"trade": Decimal("7.5")}
    assert variants(tee)["TEE-M"].stock == {"main": 0}
    assert [(c.code, c.price_tier) for c in customers] == [("C1", "trade")]


@pytest.mark.parametrize("name", ["sage200-evolution", "syspro"])
def test_every_table_a_profile_uses_is_documented(name: str) -> None:
    """docs/agent-profiles.md says where each table's name comes from: a table a profile
    reads or writes that the page does not name is a name nobody checked."""
    text = (
        (Path(__file__).resolve().parent.parent / "src/stockyard/agent/profiles")
        .joinpath(f"{name}.toml")
        .read_text(encoding="utf-8")
    )
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    tables = set(re.findall(r"\b(?:FROM|JOIN|INTO)\s+(\w+)", code))
    docs = (ROOT / "docs/agent-profiles.md").read_text(encoding="utf-8")
    assert tables
    assert {t for t in tables if f"`{t}`" not in docs} == set()


# ------------------------------------------------------------------------ fulfilments


def shipped_to_push(
    url: str | None, profile: Profile, folder: Path, made: list[str], source: Any = None
) -> list[dict[str, Any]]:
    """The fulfilments a poll would push, the agent having made those in `made` (each as
    Stockyard holds it then: open, no tracking)."""
    from stockyard.agent.records import digest, opened

    if source is None:
        assert url is not None
        source = SqlSource(url, profile, settings(profile, {}, "test"))
    state = State(folder / "state.db")
    try:
        for remote_id in made:
            record = opened(remote_id)
            state.made(remote_id, digest(record), record.model_dump_json(exclude_defaults=True))
        reading = poll(source, profile, state, fulfillments=True)
    finally:
        state.close()
        source.close()
    assert reading.problems == []
    return list(reading.change.records["fulfillments"])


def test_sage_evolution_fulfilments(erp_url: str, tmp_path: Path) -> None:
    """A web order processed to an invoice in Evolution is complete, tracked by the
    invoice's delivery note and delivery method; a cancelled one is cancelled; an open one
    (and Evolution's phone orders, shipped or not) push nothing."""
    engine = erp.sage_evolution(erp_url)
    profile = load_profile("sage200-evolution")
    write = writer(erp_url, profile)
    codes = [
        write.create_order(web_order(n, None, [("MUG-ENAMEL", 1, "89.95")]), f"k{n}")
        for n in ("WEB2001", "WEB2002", "WEB2003")
    ]
    assert shipped_to_push(erp_url, profile, tmp_path, codes) == []
    erp.ship_sage_order(engine, "WEB2001", "TCG5550123")
    erp.cancel_sage_order(engine, "WEB2002")
    assert shipped_to_push(erp_url, profile, tmp_path, codes) == [
        {"remote_id": "WEB2001", "state": "complete",
         "tracking": {"carrier": "The Courier Guy", "number": "TCG5550123"}},
        {"remote_id": "WEB2002", "state": "cancelled"},
    ]  # fmt: skip
    assert len(erp.sage_orders(engine)) == 3  # invoices are no orders


def test_sage_evolution_partly_processed_order_stays_open(erp_url: str, tmp_path: Path) -> None:
    """Evolution processes a sales order in parts (an invoice for what was picked, the rest
    outstanding on the order's lines): open, tracked by the latest waybill, until no line
    is outstanding; then complete."""
    engine = erp.sage_evolution(erp_url)
    profile = load_profile("sage200-evolution")
    code = writer(erp_url, profile).create_order(
        web_order("WEB3001", None, [("MUG-ENAMEL", 2, "89.95"), ("TEE-BLK-M", 1, "199")]), "k"
    )
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    erp.ship_sage_order(engine, "WEB3001", "TCG-PART-1", processed={"MUG-ENAMEL": 2})
    assert shipped_to_push(erp_url, profile, tmp_path / "a", [code]) == [
        {"remote_id": code, "state": "open",
         "tracking": {"carrier": "The Courier Guy", "number": "TCG-PART-1"}},
    ]  # fmt: skip
    erp.ship_sage_order(engine, "WEB3001", "TCG-PART-2", processed={"TEE-BLK-M": 1})
    assert shipped_to_push(erp_url, profile, tmp_path / "b", [code]) == [
        {"remote_id": code, "state": "complete",
         "tracking": {"carrier": "The Courier Guy", "number": "TCG-PART-2"}},
    ]  # fmt: skip


def test_syspro_a_customers_po_number_is_no_web_order(erp_url: str, tmp_path: Path) -> None:
    """A phone / EDI order whose customer PO (CustomerPoNumber) equals a web order's
    number is not that web order: the web order is written with the marker only Stockyard
    writes ('WEB-' and its number) and found by it; the phone order's shipment is not its."""
    engine = erp.syspro(erp_url)
    head = erp._syspro_tables(sa.MetaData())["SorMaster"]
    with engine.begin() as db:  # a trade customer's phone order, their PO 2001, shipped
        phone = {"SalesOrder": "000000000000100917", "OrderStatus": "9", "Customer": "0000001",
                 "CustomerPoNumber": "2001", "ShippingInstrs": "DHL",
                 "SpecialInstrs": "PHONE-WAYBILL"}  # fmt: skip
        db.execute(head.insert().values(**phone))
    profile = load_profile("syspro")
    order = web_order("2001", None, [("HELM-PRO", 1, "149")])
    code = written_once(writer(erp_url, profile), order, "k")
    assert code == "2001"
    web = [o for o in erp.syspro_orders(engine) if o["SalesOrder"].strip() == "2001"]
    assert [o["CustomerPoNumber"] for o in web] == ["WEB-2001"]
    assert shipped_to_push(erp_url, profile, tmp_path, [code]) == []  # open, as made
    engine.dispose()


def test_sage_evolution_an_edi_orders_number_is_no_web_order(erp_url: str, tmp_path: Path) -> None:
    """The same in Evolution: an order whose ExtOrderNum is a buyer's own number (3001) is
    no web order 3001, and the fulfilments read returns web orders only."""
    engine = erp.sage_evolution(erp_url)
    inv = erp._sage_tables(sa.MetaData())["InvNum"]
    with engine.begin() as db:  # an EDI order carrying the buyer's order number 3001
        edi = {"DocType": 4, "DocState": 1, "AccountID": 1, "OrderNum": "SO0000950",
               "ExtOrderNum": "3001"}  # fmt: skip
        db.execute(inv.insert().values(**edi))
    erp.ship_sage_order(engine, "SO0000950", "EDI-WAYBILL")
    profile = load_profile("sage200-evolution")
    order = web_order("3001", None, [("MUG-ENAMEL", 1, "89.95")])
    assert written_once(writer(erp_url, profile), order, "k") == "3001"
    assert [o["OrderNum"] for o in erp.sage_orders(engine) if o["ExtOrderNum"] == "WEB-3001"] == [
        "3001"
    ]
    source = SqlSource(erp_url, profile, settings(profile, {}, "test"))
    state = State(tmp_path / "state.db")
    try:
        reading = poll(source, profile, state, 1, fulfillments=True)
    finally:
        state.close()
        source.close()
    assert reading.read["fulfillments"] == 1  # neither the EDI order nor the phone order
    assert reading.samples["fulfillments"][0]["remote_id"] == "3001"
    engine.dispose()


def test_syspro_fulfilments(erp_url: str, tmp_path: Path) -> None:
    engine = erp.syspro(erp_url)
    profile = load_profile("syspro")
    write = writer(erp_url, profile)
    codes = [
        write.create_order(web_order(n, None, [("HELM-PRO", 1, "149")]), f"k{n}")
        for n in ("#2001", "#2002", "#2003")
    ]
    erp.ship_syspro_order(engine, "#2001", "DHL EXPRESS", "JD014600003828")
    erp.ship_syspro_order(engine, "#2002", "", "", status="\\")
    assert shipped_to_push(erp_url, profile, tmp_path, codes) == [
        {"remote_id": "#2001", "state": "complete",
         "tracking": {"carrier": "DHL EXPRESS", "number": "JD014600003828"}},
        {"remote_id": "#2002", "state": "cancelled"},
    ]  # fmt: skip


def test_generic_fulfilments(erp_url: str, tmp_path: Path) -> None:
    engine = erp.generic(erp_url)
    profile = load_profile("generic")
    write = writer(erp_url, profile)
    first = write.create_order(web_order("3001", None, [("SOCK-M", 1, "12.50")]), "a")
    second = write.create_order(web_order("3002", None, [("SOCK-M", 1, "12.50")]), "b")
    erp.ship_generic_order(
        engine, int(first), "shipped", "Aramex", "ARX-1", "https://track.example/ARX-1"
    )
    assert shipped_to_push(erp_url, profile, tmp_path, [first, second]) == [
        {"remote_id": first, "state": "complete",
         "tracking": {"carrier": "Aramex", "number": "ARX-1",
                      "url": "https://track.example/ARX-1"}},
    ]  # fmt: skip


def test_generic_csv_fulfilments(tmp_path: Path) -> None:
    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / "products.csv").write_text("product,title,sku,price\nMUG,Mug,MUG,5\n")
    (folder / "fulfillments.csv").write_text(
        "remote_id,state,carrier,number,url\nSO-1,complete,DHL,JD1,\nSO-2,open,,,\n"
        "SO-PHONE,complete,DHL,JD9,\n"
    )
    profile = load_profile("generic-csv")
    assert profile.files is not None
    found = shipped_to_push(
        None, profile, tmp_path, ["SO-1", "SO-2"], FolderSource(folder, profile.files)
    )
    assert found == [
        {"remote_id": "SO-1", "state": "complete", "tracking": {"carrier": "DHL", "number": "JD1"}}
    ]
