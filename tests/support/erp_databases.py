"""ERP-shaped databases for the agent's shipped profiles: the tables of Sage 200 Evolution
and of SYSPRO that the profiles read and write, with their documented names and types (see
docs/agent-profiles.md for where each name is documented), holding a small, realistic
trade catalogue.

Only the columns the profiles use exist here, so a profile that names a column the real
ERP does not have fails in the tests as it would against the ERP. Names are created
unquoted (`quote=False`): PostgreSQL folds them to lower case, exactly as it folds the
profiles' unquoted SQL, and SQLite and SQL Server compare names without case anyway.

`sage_evolution(url)` and `syspro(url)` create the tables in an empty database at
`url` (a SQLite file or a PostgreSQL database) and fill them; the `SAGE` / `SYSPRO`
constants say what the rows hold, so the tests compare the agent's records with them.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Float,
    Integer,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Table,
    create_engine,
    func,
    insert,
    select,
)
from sqlalchemy.engine import Connection, Engine

# ------------------------------------------------------------------ Sage 200 Evolution


def _t(meta: MetaData, name: str, *columns: Column[Any]) -> Table:
    return Table(name, meta, *columns, quote=False)


def _c(name: str, type_: Any, **kw: Any) -> Column[Any]:
    return Column(name, type_, quote=False, **kw)


def _insert(db: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    # One statement per row: rows differ in which columns they give, and a column left
    # out must get its default, not NULL.
    for row in rows:
        # SQL Server's bit is 0/1 and compares with 0/1; so does a smallint (PostgreSQL's
        # boolean would refuse `ItemActive = 1`).
        db.execute(
            table.insert().values(
                **{k: int(v) if isinstance(v, bool) else v for k, v in row.items()}
            )
        )


Bit = SmallInteger  # SQL Server's bit: 0/1


def _sage_tables(meta: MetaData) -> dict[str, Table]:
    """Evolution's own types: money and quantities are `float`, flags `bit`, ids `int`
    identities, codes `varchar` (types as the Evolution data dictionary gives them)."""
    return {
        "StkItem": _t(
            meta,
            "StkItem",
            _c("StockLink", Integer, primary_key=True, autoincrement=True),
            _c("Code", String(400)),
            _c("Description_1", String(50)),
            _c("Description_2", String(50)),
            _c("ItemGroup", String(20)),
            _c("Bar_Code", String(400)),
            _c("ServiceItem", Bit, nullable=False, default=0),
            _c("ItemActive", Bit, nullable=False, default=1),
            _c("fNetMass", Float, nullable=False, default=0.0),
            _c("iInvSegValue1ID", Integer),
            _c("iInvSegValue2ID", Integer),
            _c("iInvSegValue3ID", Integer),
            _c("StkItem_dModifiedDate", DateTime),
        ),
        "_etblInvSegType": _t(
            meta,
            "_etblInvSegType",
            _c("idInvSegType", Integer, primary_key=True, autoincrement=True),
            _c("cDescription", String(50)),
        ),
        "_etblInvSegGroup": _t(
            meta,
            "_etblInvSegGroup",
            _c("idInvSegGroup", Integer, primary_key=True, autoincrement=True),
            _c("iInvSegTypeID", Integer, nullable=False),
            _c("cDescription", String(50)),
        ),
        "_etblInvSegValue": _t(
            meta,
            "_etblInvSegValue",
            _c("idInvSegValue", Integer, primary_key=True, autoincrement=True),
            _c("iInvSegGroupID", Integer, nullable=False),
            _c("cValue", String(50)),
            _c("cDescription", String(50)),
        ),
        "_etblPriceListName": _t(
            meta,
            "_etblPriceListName",
            _c("IDPriceListName", Integer, primary_key=True, autoincrement=True),
            _c("cName", String(30), nullable=False),
            _c("cDescription", String(60)),
            _c("bDefault", Bit, nullable=False, default=0),
        ),
        "_etblPriceListPrices": _t(
            meta,
            "_etblPriceListPrices",
            _c("IDPriceListPrices", Integer, primary_key=True, autoincrement=True),
            _c("iPriceListNameID", Integer, nullable=False),
            _c("iStockID", Integer, nullable=False),
            _c("iWarehouseID", Integer, default=0),
            _c("fExclPrice", Float),
            _c("fInclPrice", Float),
            _c("_etblPriceListPrices_dModifiedDate", DateTime),
        ),
        "WhseMst": _t(
            meta,
            "WhseMst",
            _c("WhseLink", Integer, primary_key=True, autoincrement=True),
            _c("Code", String(20), nullable=False),
            _c("Name", String(50), nullable=False),
            _c("DefaultWhse", Bit, nullable=False, default=0),
        ),
        "WhseStk": _t(
            meta,
            "WhseStk",
            _c("IdWhseStk", Integer, primary_key=True, autoincrement=True),
            _c("WHWhseID", Integer),
            _c("WHStockLink", Integer, nullable=False),
            _c("WHQtyOnHand", Float, nullable=False, default=0.0),
            _c("WHQtyReserved", Float, nullable=False, default=0.0),
            _c("WhseStk_dModifiedDate", DateTime),
        ),
        "Client": _t(
            meta,
            "Client",
            _c("DCLink", Integer, primary_key=True, autoincrement=True),
            _c("Account", String(20)),
            _c("Name", String(150)),
            _c("Contact_Person", String(30)),
            _c("Telephone", String(25)),
            _c("EMail", String(200)),
            _c("Physical1", String(40)),
            _c("Physical2", String(40)),
            _c("Physical3", String(40)),
            _c("PhysicalPC", String(15)),
            _c("AccountTerms", Integer),
            _c("Credit_Limit", Float),
            _c("On_Hold", Bit, nullable=False, default=0),
            _c("iARPriceListNameID", Integer),
            _c("Client_dModifiedDate", DateTime),
        ),
        # The sales order the write step creates: a document header (InvNum, DocType 4 =
        # sales order) and its lines (_btblInvoiceLines, iInvoiceID -> InvNum.AutoIndex).
        "InvNum": _t(
            meta,
            "InvNum",
            _c("AutoIndex", Integer, primary_key=True, autoincrement=True),
            _c("DocType", Integer),
            _c("DocState", Integer),
            _c("AccountID", Integer),
            _c("Description", String(40)),
            _c("OrderNum", String(50)),
            _c("ExtOrderNum", String(50)),
            _c("OrderDate", DateTime),
            _c("cEmail", String(60)),
            _c("OrdTotIncl", Float),
            _c("OrdTotTax", Float),
            # Processing a sales order makes an invoice (DocType 0) whose OrigDocID is the
            # order's AutoIndex, numbered InvNumber, with the waybill in DeliveryNote and
            # the delivery method (DelTbl) in DelMethodID; a cancelled order has a reason.
            _c("InvNumber", String(50)),
            _c("OrigDocID", Integer),
            _c("DeliveryNote", String(50)),
            _c("DelMethodID", Integer),
            _c("iOrderCancelReasonID", Integer, nullable=False, server_default="0"),
        ),
        "DelTbl": _t(
            meta,
            "DelTbl",
            _c("Counter", Integer, primary_key=True, autoincrement=True),
            _c("Method", String(35), nullable=False),
            _c("Comment", String(80)),
        ),
        "_btblInvoiceLines": _t(
            meta,
            "_btblInvoiceLines",
            _c("idInvoiceLines", Integer, primary_key=True, autoincrement=True),
            _c("iInvoiceID", Integer, nullable=False),
            _c("iLineID", Integer, nullable=False, default=0),
            _c("iStockCodeID", Integer),
            _c("iWarehouseID", Integer),
            _c("cDescription", String(100)),
            _c("fQuantity", Float),
            _c("fQtyToProcess", Float),
            # What processing has taken of the line so far (invoiced): a line with
            # fQtyProcessed < fQuantity is outstanding (the order partly processed).
            _c("fQtyProcessed", Float),
            _c("fUnitPriceIncl", Float),
        ),
    }


# What the Evolution rows hold, in Stockyard's terms (the tests compare with it).
SAGE: dict[str, Any] = {
    "warehouses": ["JHB", "CPT", "DBN"],
    "products": {
        # product code (the style segment, or the item code) -> title, variants
        "TEE": {
            "title": "Classic crew tee",
            "options": {
                "TEE-BLK-M": ("Black", "M"),
                "TEE-BLK-L": ("Black", "L"),
                "TEE-WHT-M": ("White", "M"),
            },
        },
        "MUG-ENAMEL": {"title": "Enamel camp mug", "options": {}},
        "CAP-OLD": {"title": "Trucker cap (discontinued)", "options": {}},
    },
    "prices": {  # sku -> (retail incl, trade incl)
        "TEE-BLK-M": (Decimal("229.00"), Decimal("172.50")),
        "TEE-BLK-L": (Decimal("229.00"), Decimal("172.50")),
        "TEE-WHT-M": (Decimal("219.00"), Decimal("164.25")),
        "MUG-ENAMEL": (Decimal("89.95"), Decimal("64.00")),
        "CAP-OLD": (Decimal("120.00"), None),
    },
    "stock": {  # sku -> {warehouse: on hand}
        "TEE-BLK-M": {"JHB": 12, "CPT": 5},
        "TEE-BLK-L": {"JHB": 3},
        "TEE-WHT-M": {"CPT": 8, "DBN": 2},
        "MUG-ENAMEL": {"JHB": 40, "CPT": 0},
        "CAP-OLD": {},
    },
    "customers": {
        "TRA001": {
            "name": "Trade Outfitters (Pty) Ltd",
            "tier": "Trade",
            "credit": Decimal(50000),
            "terms": "30 days",
            "email": "orders@tradeoutfitters.co.za",
            "active": True,
        },
        "CASH": {
            "name": "Cash sales",
            "tier": None,
            "credit": None,
            "terms": "Current",
            "email": None,
            "active": True,
        },
        "HOLD01": {
            "name": "Overdue Retail CC",
            "tier": "Trade",
            "credit": Decimal(10000),
            "terms": "60 days",
            "email": "accounts@overdue.co.za",
            "active": False,
        },
    },
}

_SAGE_MODIFIED = datetime(2024, 3, 1, 9, 30)


def sage_evolution(url: str) -> Engine:
    """Create Evolution's tables in the empty database at `url` and fill them."""
    meta = MetaData()
    t = _sage_tables(meta)
    engine = create_engine(url)
    meta.create_all(engine)
    with engine.begin() as db:
        _insert(
            db,
            t["WhseMst"],
            [
                {"WhseLink": 1, "Code": "JHB", "Name": "Johannesburg DC", "DefaultWhse": True},
                {"WhseLink": 2, "Code": "CPT", "Name": "Cape Town store"},
                {"WhseLink": 3, "Code": "DBN", "Name": "Durban store"},
            ],
        )
        # Segmented inventory: segment 1 the style, 2 the colour, 3 the size.
        _insert(
            db,
            t["_etblInvSegType"],
            [
                {"idInvSegType": 1, "cDescription": "Style"},
                {"idInvSegType": 2, "cDescription": "Colour"},
                {"idInvSegType": 3, "cDescription": "Size"},
            ],
        )
        _insert(
            db,
            t["_etblInvSegGroup"],
            [
                {"idInvSegGroup": 1, "iInvSegTypeID": 1, "cDescription": "Apparel styles"},
                {"idInvSegGroup": 2, "iInvSegTypeID": 2, "cDescription": "Apparel colours"},
                {"idInvSegGroup": 3, "iInvSegTypeID": 3, "cDescription": "Apparel sizes"},
            ],
        )
        _insert(
            db,
            t["_etblInvSegValue"],
            [
                {
                    "idInvSegValue": 1,
                    "iInvSegGroupID": 1,
                    "cValue": "TEE",
                    "cDescription": "Classic crew tee",
                },
                {"idInvSegValue": 2, "iInvSegGroupID": 2, "cValue": "BLK", "cDescription": "Black"},
                {"idInvSegValue": 3, "iInvSegGroupID": 2, "cValue": "WHT", "cDescription": "White"},
                {"idInvSegValue": 4, "iInvSegGroupID": 3, "cValue": "M", "cDescription": "Medium"},
                {"idInvSegValue": 5, "iInvSegGroupID": 3, "cValue": "L", "cDescription": "Large"},
            ],
        )
        item = {"ServiceItem": False, "ItemActive": True, "StkItem_dModifiedDate": _SAGE_MODIFIED}
        tee = {**item, "ItemGroup": "APPAREL", "fNetMass": 0.18, "Description_2": "100% cotton"}
        _insert(
            db,
            t["StkItem"],
            [
                {
                    **tee,
                    "StockLink": 1,
                    "Code": "TEE-BLK-M",
                    "Description_1": "Classic tee black M",
                    "Bar_Code": "6009801000011",
                    "iInvSegValue1ID": 1,
                    "iInvSegValue2ID": 2,
                    "iInvSegValue3ID": 4,
                },
                {
                    **tee,
                    "StockLink": 2,
                    "Code": "TEE-BLK-L",
                    "Description_1": "Classic tee black L",
                    "Bar_Code": "6009801000028",
                    "iInvSegValue1ID": 1,
                    "iInvSegValue2ID": 2,
                    "iInvSegValue3ID": 5,
                },
                {
                    **tee,
                    "StockLink": 3,
                    "Code": "TEE-WHT-M",
                    "Description_1": "Classic tee white M",
                    "Bar_Code": "6009801000035",
                    "iInvSegValue1ID": 1,
                    "iInvSegValue2ID": 3,
                    "iInvSegValue3ID": 4,
                },
                {
                    **item,
                    "StockLink": 4,
                    "Code": "MUG-ENAMEL",
                    "Description_1": "Enamel camp mug",
                    "Description_2": "350 ml, speckled blue",
                    "ItemGroup": "HOMEWARE",
                    "Bar_Code": "6009801000042",
                    "fNetMass": 0.25,
                },
                {
                    **item,
                    "StockLink": 5,
                    "Code": "CAP-OLD",
                    "Description_1": "Trucker cap (discontinued)",
                    "ItemGroup": "APPAREL",
                    "ItemActive": False,
                },
                # A service item (delivery fee): not a product a shop sells from stock.
                {
                    **item,
                    "StockLink": 6,
                    "Code": "DELIVERY",
                    "Description_1": "Courier delivery",
                    "ServiceItem": True,
                },
            ],
        )
        _insert(
            db,
            t["_etblPriceListName"],
            [
                {
                    "IDPriceListName": 1,
                    "cName": "Retail",
                    "cDescription": "Shop prices",
                    "bDefault": True,
                },
                {"IDPriceListName": 2, "cName": "Trade", "cDescription": "Trade account prices"},
            ],
        )
        prices = []
        for link, sku in enumerate(
            ["TEE-BLK-M", "TEE-BLK-L", "TEE-WHT-M", "MUG-ENAMEL", "CAP-OLD"], start=1
        ):
            for list_id, price in zip((1, 2), SAGE["prices"][sku], strict=True):
                if price is not None:
                    prices.append(
                        {
                            "iPriceListNameID": list_id,
                            "iStockID": link,
                            "iWarehouseID": 0,
                            "fInclPrice": float(price),
                            "fExclPrice": round(float(price) / 1.15, 4),
                            "_etblPriceListPrices_dModifiedDate": _SAGE_MODIFIED,
                        }
                    )
        # A warehouse-specific price (Evolution keeps those on the same table): not the
        # list price the shop uses.
        prices.append(
            {
                "iPriceListNameID": 1,
                "iStockID": 1,
                "iWarehouseID": 2,
                "fInclPrice": 199.0,
                "fExclPrice": 173.0435,
            }
        )
        _insert(db, t["_etblPriceListPrices"], prices)
        links = {"TEE-BLK-M": 1, "TEE-BLK-L": 2, "TEE-WHT-M": 3, "MUG-ENAMEL": 4, "CAP-OLD": 5}
        whse = {"JHB": 1, "CPT": 2, "DBN": 3}
        _insert(
            db,
            t["WhseStk"],
            [
                {
                    "WHWhseID": whse[w],
                    "WHStockLink": links[sku],
                    "WHQtyOnHand": float(q),
                    "WhseStk_dModifiedDate": _SAGE_MODIFIED,
                }
                for sku, per in SAGE["stock"].items()
                for w, q in per.items()
            ],
        )
        _insert(
            db,
            t["Client"],
            [
                {
                    "DCLink": 1,
                    "Account": "TRA001",
                    "Name": "Trade Outfitters (Pty) Ltd",
                    "Contact_Person": "Thandi Nkosi",
                    "Telephone": "011 555 0100",
                    "EMail": "orders@tradeoutfitters.co.za",
                    "Physical1": "14 Main Reef Road",
                    "Physical2": "Denver",
                    "Physical3": "Johannesburg",
                    "PhysicalPC": "2094",
                    "AccountTerms": 1,
                    "Credit_Limit": 50000.0,
                    "iARPriceListNameID": 2,
                },
                {
                    "DCLink": 2,
                    "Account": "CASH",
                    "Name": "Cash sales",
                    "AccountTerms": 0,
                    "iARPriceListNameID": 1,
                },
                {
                    "DCLink": 3,
                    "Account": "HOLD01",
                    "Name": "Overdue Retail CC",
                    "EMail": "accounts@overdue.co.za",
                    "Telephone": "021 555 0199",
                    "Physical3": "Cape Town",
                    "AccountTerms": 2,
                    "Credit_Limit": 10000.0,
                    "On_Hold": True,
                    "iARPriceListNameID": 2,
                },
            ],
        )
    _sage_history(engine, t)
    return engine


def _sage_history(engine: Engine, t: dict[str, Table]) -> None:
    """Evolution's delivery methods, and a sales order taken by phone (no external order
    number) already processed to an invoice: shipped, but no web order's."""
    with engine.begin() as db:
        _insert(
            db,
            t["DelTbl"],
            [
                {"Method": "Collect", "Comment": "Customer collects at the branch"},
                {"Method": "The Courier Guy", "Comment": "Overnight courier"},
            ],
        )
        _insert(
            db,
            t["InvNum"],
            [
                {
                    "DocType": 4,
                    "DocState": 4,
                    "AccountID": 1,
                    "Description": "Phone order",
                    "OrderNum": "SO0000917",
                    "OrderDate": datetime(2024, 2, 12, 10, 0),
                    "OrdTotIncl": 1725.0,
                }
            ],
        )
    ship_sage_order(engine, "SO0000917", "TCG7781001", "The Courier Guy")


def sage_orders(engine: Engine) -> list[dict[str, Any]]:
    """The web orders written into the Evolution database (sales orders with an external
    order number): headers with their lines."""
    meta = MetaData()
    t = _sage_tables(meta)
    head, line = t["InvNum"], t["_btblInvoiceLines"]
    with engine.connect() as db:
        heads = (
            db.execute(
                select(head)
                .where(head.c.DocType == 4, head.c.ExtOrderNum.is_not(None))
                .order_by(head.c.AutoIndex)
            )
            .mappings()
            .all()
        )
        return [
            {
                **h,
                "lines": [
                    dict(r)
                    for r in db.execute(
                        select(line)
                        .where(line.c.iInvoiceID == h["AutoIndex"])
                        .order_by(line.c.iLineID)
                    ).mappings()
                ],
            }
            for h in heads
        ]


def ship_sage_order(
    engine: Engine,
    order_num: str,
    waybill: str,
    method: str = "The Courier Guy",
    processed: dict[str, float] | None = None,
) -> str:
    """The sales order `order_num` processed to an invoice, as Evolution records it: an
    InvNum of DocType 0 pointing back at the order (OrigDocID), the waybill in its
    DeliveryNote, the delivery method its DelMethodID; the order's lines' fQtyProcessed
    grow by what this invoice takes (`processed`: quantity per stock code; None: all that
    is outstanding), and the order's DocState is 3 (partly processed) while a line is
    outstanding, else 4. The invoice's number."""
    t = _sage_tables(MetaData())
    inv, delivery, lines, stk = t["InvNum"], t["DelTbl"], t["_btblInvoiceLines"], t["StkItem"]
    with engine.begin() as db:
        order = (
            db.execute(select(inv).where(inv.c.DocType == 4, inv.c.OrderNum == order_num))
            .mappings()
            .one()
        )
        outstanding = False
        for line in db.execute(
            select(lines.c.idInvoiceLines, lines.c.fQuantity, lines.c.fQtyProcessed, stk.c.Code)
            .join(stk, stk.c.StockLink == lines.c.iStockCodeID, isouter=True)
            .where(lines.c.iInvoiceID == order["AutoIndex"])
        ).all():
            wanted, done = line.fQuantity or 0.0, line.fQtyProcessed or 0.0
            taken = wanted - done if processed is None else processed.get(line.Code, 0.0)
            done = min(wanted, done + taken)
            outstanding = outstanding or done < wanted
            db.execute(
                lines.update()
                .where(lines.c.idInvoiceLines == line.idInvoiceLines)
                .values(fQtyProcessed=done)
            )
        db.execute(
            inv.update()
            .where(inv.c.AutoIndex == order["AutoIndex"])
            .values(DocState=3 if outstanding else 4)
        )
        way = db.execute(select(delivery.c.Counter).where(delivery.c.Method == method)).scalar()
        if way is None:
            way = db.execute(
                insert(delivery).values(Method=method).returning(delivery.c.Counter)
            ).scalar_one()
        count = db.execute(select(func.count()).where(inv.c.DocType == 0)).scalar_one()
        number = f"INV{count + 1:05d}"
        db.execute(
            insert(inv).values(
                DocType=0,
                DocState=4,
                AccountID=order["AccountID"],
                Description=order["Description"],
                InvNumber=number,
                OrigDocID=order["AutoIndex"],
                OrderNum=order_num,
                ExtOrderNum=order["ExtOrderNum"],
                OrderDate=order["OrderDate"],
                DeliveryNote=waybill,
                DelMethodID=way,
                OrdTotIncl=order["OrdTotIncl"],
            )
        )
    return number


def cancel_sage_order(engine: Engine, order_num: str, reason: int = 1) -> None:
    t = _sage_tables(MetaData())
    inv = t["InvNum"]
    with engine.begin() as db:
        db.execute(
            inv.update()
            .where(inv.c.DocType == 4, inv.c.OrderNum == order_num)
            .values(iOrderCancelReasonID=reason)
        )


# ------------------------------------------------------------------------------ SYSPRO


def _syspro_tables(meta: MetaData) -> dict[str, Table]:
    """SYSPRO's types: codes are fixed-width `char`/`varchar`, money and quantities
    `decimal` (SYSPRO keeps Y/N flags as char(1))."""
    return {
        "InvMaster": _t(
            meta,
            "InvMaster",
            _c("StockCode", String(30), primary_key=True),
            _c("Description", String(50)),
            _c("LongDesc", String(100)),
            _c("AlternateKey1", String(30)),
            _c("ProductClass", String(20)),
            _c("StockUom", String(10)),
            _c("Mass", Numeric(18, 6)),
            _c("UserField1", String(10)),
            _c("UserField2", String(10)),
            _c("StockOnHold", String(1)),
            _c("ListPriceCode", String(3)),
        ),
        "InvWarehouse": _t(
            meta,
            "InvWarehouse",
            _c("StockCode", String(30), primary_key=True),
            _c("Warehouse", String(10), primary_key=True),
            _c("QtyOnHand", Numeric(18, 6), nullable=False, default=0),
            _c("QtyAllocated", Numeric(18, 6), nullable=False, default=0),
        ),
        "InvPrice": _t(
            meta,
            "InvPrice",
            _c("StockCode", String(30), primary_key=True),
            _c("PriceCode", String(3), primary_key=True),
            _c("SellingPrice", Numeric(15, 5), nullable=False),
            _c("PriceBasis", String(1)),
        ),
        "ArCustomer": _t(
            meta,
            "ArCustomer",
            _c("Customer", String(15), primary_key=True),
            _c("Name", String(50)),
            _c("Contact", String(40)),
            _c("Telephone", String(20)),
            _c("Email", String(255)),
            _c("CreditLimit", Numeric(14, 0)),
            _c("PriceCode", String(3)),
            _c("TermsCode", String(2)),
            _c("CustomerOnHold", String(1)),
            _c("ShipToAddr1", String(40)),
            _c("ShipToAddr2", String(40)),
            _c("ShipToAddr3", String(40)),
            _c("ShipPostalCode", String(10)),
        ),
        "TblArTerms": _t(
            meta,
            "TblArTerms",
            _c("TermsCode", String(2), primary_key=True),
            _c("Description", String(30)),
        ),
        "SorMaster": _t(
            meta,
            "SorMaster",
            _c("SalesOrder", String(20), primary_key=True),
            _c("OrderStatus", String(1)),
            _c("Customer", String(15)),
            _c("CustomerPoNumber", String(30)),
            _c("OrderDate", DateTime),
            _c("Email", String(255)),
            _c("Warehouse", String(10)),
            # Ship via (the carrier) and special instructions (where sites keep the
            # waybill); OrderStatus '9' = complete, '\\' = cancelled.
            _c("ShippingInstrs", String(30)),
            _c("SpecialInstrs", String(30)),
        ),
        "SorDetail": _t(
            meta,
            "SorDetail",
            _c("SalesOrder", String(20), primary_key=True),
            _c("SalesOrderLine", Numeric(4, 0), primary_key=True),
            _c("LineType", String(1)),
            _c("MStockCode", String(30)),
            _c("MStockDes", String(50)),
            _c("MWarehouse", String(10)),
            _c("MOrderQty", Numeric(18, 6)),
            _c("MPrice", Numeric(15, 5)),
        ),
    }


SYSPRO: dict[str, Any] = {
    "warehouses": ["FG", "E1", "S1"],
    "products": {
        "WB-750": {
            "title": "Insulated water bottle",
            "options": {"WB-750-BLU": "Blue", "WB-750-GRN": "Green"},
        },
        "HELM-PRO": {"title": "Pro cycling helmet", "options": {}},
    },
    "prices": {  # sku -> (list price code A, trade price code B)
        "WB-750-BLU": (Decimal("24.99"), Decimal("17.5")),
        "WB-750-GRN": (Decimal("24.99"), Decimal("17.5")),
        "HELM-PRO": (Decimal("149"), Decimal("112.25")),
    },
    "stock": {
        "WB-750-BLU": {"FG": 120, "E1": 14},
        "WB-750-GRN": {"FG": 60},
        "HELM-PRO": {"FG": 9, "S1": 1},
    },
    "customers": {
        "0000042": {
            "name": "Bikes and Blades - East",
            "tier": "B",
            "credit": Decimal(25000),
            "terms": "30 days net",
            "email": "buyer@bikesandblades.example",
            "active": True,
        },
        "0000077": {
            "name": "Summit Outdoor Co",
            "tier": "B",
            "credit": Decimal(5000),
            "terms": "Cash on delivery",
            "email": "ap@summit.example",
            "active": False,
        },
    },
}


def syspro(url: str) -> Engine:
    """Create SYSPRO's tables in the empty database at `url` and fill them."""
    meta = MetaData()
    t = _syspro_tables(meta)
    engine = create_engine(url)
    meta.create_all(engine)
    with engine.begin() as db:
        bottle = {
            "AlternateKey1": "WB-750",
            "Description": "Insulated water bottle",
            "LongDesc": "750 ml double-wall steel",
            "ProductClass": "HYDR",
            "StockUom": "EA",
            "Mass": Decimal("0.42"),
            "UserField2": "750ML",
            "StockOnHold": " ",
            "ListPriceCode": "A",
        }
        _insert(
            db,
            t["InvMaster"],
            [
                {**bottle, "StockCode": "WB-750-BLU", "UserField1": "Blue"},
                {**bottle, "StockCode": "WB-750-GRN", "UserField1": "Green"},
                {
                    "StockCode": "HELM-PRO",
                    "Description": "Pro cycling helmet",
                    "LongDesc": "MIPS, size M/L",
                    "ProductClass": "HELM",
                    "StockUom": "EA",
                    "Mass": Decimal("0.31"),
                    "StockOnHold": " ",
                    "ListPriceCode": "A",
                },
                # On hold: SYSPRO stops it being sold; the shop withdraws it.
                {
                    "StockCode": "GLOVE-OLD",
                    "Description": "Winter glove (obsolete)",
                    "ProductClass": "GLOV",
                    "StockUom": "PR",
                    "Mass": Decimal("0.1"),
                    "StockOnHold": "Y",
                    "ListPriceCode": "A",
                },
            ],
        )
        _insert(
            db,
            t["InvPrice"],
            [
                {"StockCode": sku, "PriceCode": code, "SellingPrice": price, "PriceBasis": "1"}
                for sku, pair in SYSPRO["prices"].items()
                for code, price in zip(("A", "B"), pair, strict=True)
            ]
            + [
                {
                    "StockCode": "GLOVE-OLD",
                    "PriceCode": "A",
                    "SellingPrice": Decimal("9.99"),
                    "PriceBasis": "1",
                }
            ],
        )
        _insert(
            db,
            t["InvWarehouse"],
            [
                {
                    "StockCode": sku,
                    "Warehouse": w,
                    "QtyOnHand": Decimal(q),
                    "QtyAllocated": Decimal(0),
                }
                for sku, per in SYSPRO["stock"].items()
                for w, q in per.items()
            ],
        )
        _insert(
            db,
            t["TblArTerms"],
            [
                {"TermsCode": "30", "Description": "30 days net"},
                {"TermsCode": "CD", "Description": "Cash on delivery"},
            ],
        )
        _insert(
            db,
            t["ArCustomer"],
            [
                {
                    "Customer": "0000042",
                    "Name": "Bikes and Blades - East",
                    "Contact": "Lee Park",
                    "Telephone": "02 5550 1234",
                    "Email": "buyer@bikesandblades.example",
                    "CreditLimit": Decimal(25000),
                    "PriceCode": "B",
                    "TermsCode": "30",
                    "CustomerOnHold": "N",
                    "ShipToAddr1": "25 Greenway Street",
                    "ShipToAddr2": "Eastway",
                    "ShipToAddr3": "Sydney",
                    "ShipPostalCode": "1001",
                },
                {
                    "Customer": "0000077",
                    "Name": "Summit Outdoor Co",
                    "Contact": "Ana Reyes",
                    "Email": "ap@summit.example",
                    "CreditLimit": Decimal(5000),
                    "PriceCode": "B",
                    "TermsCode": "CD",
                    "CustomerOnHold": "Y",
                },
            ],
        )
    return engine


def syspro_orders(engine: Engine) -> list[dict[str, Any]]:
    meta = MetaData()
    t = _syspro_tables(meta)
    head, line = t["SorMaster"], t["SorDetail"]
    with engine.connect() as db:
        heads = db.execute(select(head).order_by(head.c.SalesOrder)).mappings().all()
        return [
            {
                **h,
                "lines": [
                    dict(r)
                    for r in db.execute(
                        select(line)
                        .where(line.c.SalesOrder == h["SalesOrder"])
                        .order_by(line.c.SalesOrderLine)
                    ).mappings()
                ],
            }
            for h in heads
        ]


def ship_syspro_order(
    engine: Engine, sales_order: str, carrier: str, tracking: str, status: str = "9"
) -> None:
    """The order complete in SYSPRO (status '9'; '\\' cancels it), shipped via `carrier`
    with the waybill in its special instructions."""
    head = _syspro_tables(MetaData())["SorMaster"]
    with engine.begin() as db:
        db.execute(
            head.update()
            .where(head.c.SalesOrder == sales_order)
            .values(OrderStatus=status, ShippingInstrs=carrier, SpecialInstrs=tracking)
        )


def count(engine: Engine, table: str) -> int:
    meta = MetaData()
    tables = {**_sage_tables(meta), **_syspro_tables(MetaData()), **_generic_tables(MetaData())}
    with engine.connect() as db:
        return int(db.execute(select(func.count()).select_from(tables[table])).scalar_one())


def set_sage_price(engine: Engine, sku: str, price_list: str, incl: Decimal) -> None:
    """A price change in Evolution, as a user saving a price list line makes it."""
    meta = MetaData()
    t = _sage_tables(meta)
    item, names, prices = t["StkItem"], t["_etblPriceListName"], t["_etblPriceListPrices"]
    with engine.begin() as db:
        link = db.execute(select(item.c.StockLink).where(item.c.Code == sku)).scalar_one()
        list_id = db.execute(
            select(names.c.IDPriceListName).where(names.c.cName == price_list)
        ).scalar_one()
        db.execute(
            prices.update()
            .where(
                prices.c.iStockID == link,
                prices.c.iPriceListNameID == list_id,
                prices.c.iWarehouseID == 0,
            )
            .values(
                fInclPrice=float(incl),
                fExclPrice=round(float(incl) / 1.15, 4),
                _etblPriceListPrices_dModifiedDate=datetime(2024, 3, 2, 8, 0),
            )
        )


# ----------------------------------------------------------------- the generic profile


def _generic_tables(meta: MetaData) -> dict[str, Table]:
    """The example schema of profiles/generic.toml."""
    return {
        "items": _t(
            meta,
            "items",
            _c("sku", String(40), primary_key=True),
            _c("style", String(40)),
            _c("name", String(100), nullable=False),
            _c("details", String(500)),
            _c("barcode", String(20)),
            _c("price", Numeric(12, 4), nullable=False),
            _c("weight_kg", Numeric(10, 3)),
            _c("size", String(10)),
            _c("colour", String(20)),
            _c("active", SmallInteger, nullable=False, default=1),
            _c("updated_at", DateTime, nullable=False),
        ),
        "item_prices": _t(
            meta,
            "item_prices",
            _c("sku", String(40), primary_key=True),
            _c("tier", String(20), primary_key=True),
            _c("price", Numeric(12, 4), nullable=False),
        ),
        "item_stock": _t(
            meta,
            "item_stock",
            _c("sku", String(40), primary_key=True),
            _c("warehouse", String(20), primary_key=True),
            _c("on_hand", Integer, nullable=False),
        ),
        "accounts": _t(
            meta,
            "accounts",
            _c("code", String(20), primary_key=True),
            _c("company", String(100)),
            _c("contact", String(100)),
            _c("email", String(200)),
            _c("phone", String(30)),
            _c("tier", String(20)),
            _c("credit_limit", Numeric(12, 2)),
            _c("terms", String(40)),
            _c("closed", SmallInteger, nullable=False, default=0),
        ),
        "web_orders": _t(
            meta,
            "web_orders",
            _c("id", Integer, primary_key=True, autoincrement=True),
            _c("number", String(40), nullable=False, unique=True),
            _c("account", String(20)),
            _c("email", String(200)),
            _c("total", Numeric(12, 4)),
            _c("created_at", DateTime),
        ),
        "web_order_lines": _t(
            meta,
            "web_order_lines",
            _c("order_id", Integer, primary_key=True),
            _c("line_no", Integer, primary_key=True),
            _c("sku", String(40), nullable=False),
            _c("quantity", Integer, nullable=False),
            _c("unit_price", Numeric(12, 4), nullable=False),
        ),
        "shipments": _t(
            meta,
            "shipments",
            _c("order_id", Integer, primary_key=True),
            _c("status", String(20), nullable=False),
            _c("carrier", String(40)),
            _c("tracking_number", String(60)),
            _c("tracking_url", String(300)),
        ),
    }


def generic(url: str) -> Engine:
    meta = MetaData()
    t = _generic_tables(meta)
    engine = create_engine(url)
    meta.create_all(engine)
    when = datetime(2024, 5, 1, 12, 0)
    with engine.begin() as db:
        sock = {
            "style": "SOCK",
            "name": "Merino sock",
            "price": Decimal("12.5"),
            "weight_kg": Decimal("0.05"),
            "updated_at": when,
        }
        _insert(
            db,
            t["items"],
            [
                {**sock, "sku": "SOCK-S", "size": "S", "colour": "Grey"},
                {**sock, "sku": "SOCK-M", "size": "M", "colour": "Grey"},
                {"sku": "BEANIE", "name": "Beanie", "price": Decimal("20"), "updated_at": when},
            ],
        )
        _insert(
            db,
            t["item_prices"],
            [
                {"sku": "SOCK-S", "tier": "trade", "price": Decimal("8.75")},
                {"sku": "SOCK-M", "tier": "trade", "price": Decimal("8.75")},
            ],
        )
        _insert(
            db,
            t["item_stock"],
            [
                {"sku": "SOCK-S", "warehouse": "main", "on_hand": 30},
                {"sku": "SOCK-M", "warehouse": "main", "on_hand": 4},
            ],
        )
        _insert(
            db,
            t["accounts"],
            [
                {
                    "code": "ACME",
                    "company": "Acme Ltd",
                    "email": "buy@acme.example",
                    "tier": "trade",
                    "credit_limit": Decimal(1000),
                    "terms": "14 days",
                },
            ],
        )
    return engine


def generic_orders(engine: Engine) -> list[dict[str, Any]]:
    meta = MetaData()
    t = _generic_tables(meta)
    head, line = t["web_orders"], t["web_order_lines"]
    with engine.connect() as db:
        heads = db.execute(select(head).order_by(head.c.id)).mappings().all()
        return [
            {
                **h,
                "lines": [
                    dict(r)
                    for r in db.execute(
                        select(line).where(line.c.order_id == h["id"]).order_by(line.c.line_no)
                    ).mappings()
                ],
            }
            for h in heads
        ]


def ship_generic_order(
    engine: Engine, order_id: int, status: str, carrier: str = "", number: str = "", url: str = ""
) -> None:
    t = _generic_tables(MetaData())["shipments"]
    with engine.begin() as db:
        db.execute(
            insert(t).values(
                order_id=order_id,
                status=status,
                carrier=carrier or None,
                tracking_number=number or None,
                tracking_url=url or None,
            )
        )
