"""The `sapb1` connector against the SAP Business One Service Layer double over real HTTP
(issue 20): every page read whatever page size the server keeps (the 20-row trap), the
session cookie and ROUTEID kept and renewed once when the session ends, orders
de-duplicated by NumAtCard across a lost answer, prices per price list and stock per
warehouse mapped, delivery notes read back as fulfillments through $batch, errors
classified, and the password never in an error. Every body the connector sent passed the
b1sl-python model of its entity (the double refuses anything else, and the tests check
that it refused nothing)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from stockyard.catalog.models import Customer, FulfillmentUpdate, Product
from stockyard.connectors.sapb1 import SapB1Connector, stamp
from stockyard.errors import PermanentError, TransientError
from tests.support import sapb1
from tests.support.sapb1 import connect, mug_shop, order
from tests.support.sapb1_double import PASSWORD, Served

served = sapb1.served  # the shared fixture


def test_every_page_is_read_when_the_server_keeps_20_rows_a_page(served: Served) -> None:
    double = served.double
    double.honour_prefer = False  # b1s.conf's PageSize 20, whatever Prefer asks
    for n in range(45):
        double.add_item(f"I{n:03}", f"Item {n}", {1: 1.0 + n})
    c = connect(served)
    page = c.fetch_products(None)
    assert sorted(p["code"] for p in page.records) == [f"I{n:03}" for n in range(45)]
    reads = [r for r in double.received if r.path.startswith("Items")]
    assert len(reads) == 3  # 20 + 20 + 5: row 21 and on are on the nextLink's pages
    assert all(r.headers.get("prefer") == "odata.maxpagesize=100" for r in reads)
    for record in page.records:
        Product.model_validate(record)


def test_the_page_size_asked_for_is_what_the_server_pages_by(served: Served) -> None:
    for n in range(25):
        served.double.add_item(f"I{n:03}", f"Item {n}", {1: 2.0})
    page = connect(served, page_size=10).fetch_products(None)
    assert len(page.records) == 25
    assert len([r for r in served.double.received if r.path.startswith("Items")]) == 3


def test_prices_per_price_list_and_stock_per_warehouse(served: Served) -> None:
    double = served.double
    double.add_item(
        "MUG", "Mug", {1: 12.5, 2: 9.0}, {"01": 7.0, "02": 3.5}, BarCode="4006381333931"
    )
    double.items["MUG"]["ItemWarehouseInfoCollection"][0]["Committed"] = 2.0
    c = connect(
        served,
        price_lists={"wholesale": 2},
        warehouses={"01": "Main", "02": "Outlet"},
        stock="available",
    )
    (record,) = c.fetch_products(None).records
    product = Product.model_validate(record)
    (variant,) = product.variants
    assert (product.code, product.title, product.active) == ("MUG", "Mug", True)
    assert (variant.sku, str(variant.price), variant.barcode) == ("MUG", "12.50", "4006381333931")
    assert {k: str(v) for k, v in variant.prices.items()} == {"wholesale": "9.00"}
    assert variant.stock == {"Main": 5, "Outlet": 3}  # InStock - Committed, truncated
    # Only the warehouses named are read; a number of list or warehouse B1 lacks fails.
    (record,) = connect(served, warehouses={"02": "Outlet"}).fetch_products(None).records
    assert record["variants"][0]["stock"] == {"Outlet": 3}
    with pytest.raises(PermanentError, match=r"no price list number \[9\]"):
        connect(served, price_lists={"x": 9}).fetch_products(None)
    with pytest.raises(PermanentError, match=r"no warehouse \['99'\]"):
        connect(served, warehouses={"99": "X"}).fetch_products(None)


def test_items_sharing_a_parent_udf_are_one_product_with_options(served: Served) -> None:
    double = served.double
    for size in ("S", "M"):
        double.add_item(f"TEE-{size}", f"Tee - {size}", {1: 19.9}, U_ParentCode="TEE", U_Size=size)
    double.add_item("MUG", "Mug", {1: 12.5})
    c = connect(served, parent_field="U_ParentCode", option_fields={"Size": "U_Size"})
    first = c.fetch_products(None)
    products = {p["code"]: Product.model_validate(p) for p in first.records}
    assert set(products) == {"TEE", "MUG"}
    tee = products["TEE"]
    assert (tee.title, tee.options) == ("Tee", ["Size"])
    assert {v.sku: v.options for v in tee.variants} == {
        "TEE-S": {"Size": "S"},
        "TEE-M": {"Size": "M"},
    }
    # One item of the group changes: the whole product comes, with both its items.
    double.tick(120)
    double.set_price("TEE-M", 1, 21.0)
    (again,) = c.fetch_products(first.cursor).records
    assert again["code"] == "TEE"
    assert {v["sku"]: v["price"] for v in again["variants"]} == {"TEE-S": "19.90", "TEE-M": "21.00"}


def test_a_pull_reads_only_what_b1_stamped_since_its_cursor(served: Served) -> None:
    double = served.double
    double.add_item("MUG", "Mug", {1: 12.5})
    double.add_item("CUP", "Cup", {1: 4.0})
    c = connect(served, overlap=0)
    first = c.fetch_products(None)
    assert len(first.records) == 2
    # Nothing changed: the item stamped at the cursor's second is not delivered again.
    same = c.fetch_products(first.cursor)
    assert same.records == []
    double.tick(60)
    double.set_price("MUG", 1, 13.0)
    changed = c.fetch_products(same.cursor)
    assert [(p["code"], p["variants"][0]["price"]) for p in changed.records] == [("MUG", "13.00")]
    last = [r for r in double.received if r.path.startswith("Items")][-1]
    assert "UpdateDate" in last.path and "UpdateTime" in last.path
    # A stock move that did not stamp the item is read by the next full pull.
    double.set_stock("CUP", "01", 9.0, stamp=False)
    assert c.fetch_products(changed.cursor).records == []
    c.clock = lambda: 10**12  # an hour (full_pull_every) and more later
    full = c.fetch_products(changed.cursor)
    assert {p["code"] for p in full.records} == {"MUG", "CUP"}
    cup = next(p for p in full.records if p["code"] == "CUP")
    assert cup["variants"][0]["stock"] == {"01": 9}


def test_a_withdrawn_item_is_an_inactive_product(served: Served) -> None:
    served.double.add_item("OLD", "Old mug", {1: 3.0}, Frozen="tYES")
    (record,) = connect(served).fetch_products(None).records
    assert record["active"] is False


def test_the_session_is_renewed_once_when_it_ends(served: Served) -> None:
    double = served.double
    double.add_item("MUG", "Mug", {1: 12.5})
    c = connect(served)
    c.fetch_products(None)
    assert double.logins == 1
    login = next(r for r in double.received if r.path == "Login")
    assert login.body.count(PASSWORD) == 1  # the Login body is the only place it goes
    # Every later request carried both cookies: the session and the node's route.
    later = [r for r in double.received if r.path != "Login"]
    assert all("B1SESSION=" in r.headers["cookie"] for r in later)
    assert all("ROUTEID=.node2" in r.headers["cookie"] for r in later)
    double.expire_sessions()  # the 30 minutes passed, or the node restarted
    assert len(c.fetch_products(None).records) == 1
    assert double.logins == 2
    statuses = [r.status for r in double.received]
    assert statuses.count(401) == 1
    # A login that keeps failing is permanent, and names the settings to check.
    double.expire_sessions()
    bad = connect(served, password="wrong-password")
    with pytest.raises(PermanentError, match="check company_db, username and password"):
        bad.fetch_products(None)


def test_transient_and_permanent_errors(served: Served) -> None:
    double = served.double
    c = connect(served)
    for status in (429, 503, 408):
        double.fail_next(status)
        with pytest.raises(TransientError, match=f"HTTP {status}"):
            c.fetch_customers(None)
    double.fail_next(400, message="Invalid value for property 'CardType'")
    with pytest.raises(PermanentError, match="Invalid value for property 'CardType'") as info:
        c.fetch_customers(None)
    assert not isinstance(info.value, TransientError)


def test_the_password_never_appears_in_an_error(served: Served) -> None:
    c = connect(served)
    served.double.fail_next(400, message=f"User manager with password {PASSWORD} is locked")
    with pytest.raises(PermanentError) as info:
        c.fetch_customers(None)
    assert PASSWORD not in str(info.value)
    assert "[redacted]" in str(info.value)


def test_settings_are_checked_when_saved() -> None:
    base = {"company_db": "SBO", "username": "manager", "password": "secret-pw"}
    with pytest.raises(PermanentError, match="must be https://"):
        SapB1Connector({"url": "http://b1.example.com:50000", **base})
    with pytest.raises(PermanentError, match="parent_field"):
        SapB1Connector({"url": "https://b1.example.com", **base, "parent_field": "Parent"})
    problem = SapB1Connector.credential_problem({"password": "x"})
    assert problem == "settings.password is a credential: send it in secrets"


def test_an_order_is_made_once_whatever_the_retries(served: Served) -> None:
    double = served.double
    double.add_item("MUG", "Mug", {1: 12.5}, {"01": 10.0})
    double.add_partner("WEB", "Web customer")
    c = connect(served, web_customer="WEB", order_warehouse="01")
    # The answer to the POST is lost: the order exists in B1, the item retries.
    double.lose_next("POST")
    with pytest.raises(TransientError):
        c.create_order(order(), "add_order:7")
    assert len(double.orders) == 1
    code = c.create_order(order(), "add_order:7")
    (made,) = double.orders.values()
    assert code == str(made["DocNum"])
    assert (made["CardCode"], made["NumAtCard"]) == ("WEB", "1001")
    assert made["DocumentLines"] == [
        {"ItemCode": "MUG", "Quantity": 2.0, "UnitPrice": 12.5, "WarehouseCode": "01", "LineNum": 0}
    ]
    assert made["Address2"] == "Ann\n1 Main St\nOslo"
    assert c.create_order(order(), "add_order:7") == code
    assert len(double.orders) == 1
    assert double.calls().count("POST Orders") == 1  # the lost one, and no other
    # Another shop's order of the same number is another order.
    other = c.create_order(order(id=8, remote_id="W1001"), "add_order:8")
    assert other != code and len(double.orders) == 2


def test_an_order_on_account_is_the_customers_own(served: Served) -> None:
    double = served.double
    double.add_item("MUG", "Mug", {1: 12.5})
    double.add_partner("C20000", "Acme Trading", PriceListNum=2)
    c = connect(served)
    customer = {"code": "C20000", "price_tier": "wholesale", "email": "buy@acme.test"}
    c.create_order(order(customer=customer), "k")
    (made,) = double.orders.values()
    assert made["CardCode"] == "C20000"
    # A guest's order without a web customer set fails naming the setting.
    with pytest.raises(PermanentError, match="web_customer"):
        c.create_order(order("1002"), "k2")
    # B1's refusal (an item it does not have) is permanent, with its message.
    bad = order("1003", lines=[{"sku": "NOPE", "quantity": 1, "price": "1"}])
    with pytest.raises(PermanentError, match="Invalid item code 'NOPE'"):
        connect(served, web_customer="C20000").create_order(bad, "k3")


def test_delivery_notes_become_fulfillments_through_batch(served: Served) -> None:
    double = served.double
    c = mug_shop(served)
    c.create_order(order(), "k")
    c.create_order(order("1002", id=9, remote_id="V1002"), "k2")
    remote = c.create_fulfillment(order(), "f")
    (entry,) = [e for e, o in double.orders.items() if o["NumAtCard"] == "1001"]
    assert remote == str(entry)
    first = c.fetch_fulfillments(None)
    assert first.records == []
    double.tick(60)
    double.deliver(entry, tracking="1Z999AA10123456784")
    other = next(e for e in double.orders if e != entry)
    double.deliver(other, close=False)  # partly delivered: the order stays open
    page = c.fetch_fulfillments(first.cursor)
    updates = {u.remote_id: u for u in (FulfillmentUpdate.model_validate(r) for r in page.records)}
    assert updates[str(entry)].state == "complete"
    tracking = updates[str(entry)].tracking
    assert tracking is not None and tracking.number == "1Z999AA10123456784"
    assert (updates[str(other)].state, updates[str(other)].tracking) == ("open", None)
    assert "POST $batch" in double.calls()
    assert not [r for r in double.received if r.path.startswith("Orders(")]  # all batched
    assert c.fetch_fulfillments(page.cursor).records == []


def test_customers_with_their_tier_and_terms(served: Served) -> None:
    double = served.double
    double.add_partner("WEB", "Web customer")
    double.add_partner(
        "C20000", "Acme Trading", EmailAddress="buy@acme.test", PriceListNum=2, CreditLimit=5000.0
    )
    double.add_partner("C30000", "Closed Ltd", Frozen="tYES")
    double.add_partner("V10000", "A supplier", CardType="cSupplier")
    c = connect(served, web_customer="WEB", price_lists={"wholesale": 2})
    page = c.fetch_customers(None)
    found = {r["code"]: Customer.model_validate(r) for r in page.records}
    assert set(found) == {"C20000", "C30000"}
    acme = found["C20000"]
    assert (acme.email, acme.price_tier, str(acme.credit_limit)) == (
        "buy@acme.test",
        "wholesale",
        "5000.00",
    )
    assert found["C30000"].active is False
    assert c.fetch_customers(page.cursor).records == []


def test_the_double_refuses_what_the_models_refuse(served: Served) -> None:
    """The check the whole file relies on: a body field b1sl's Document does not have, a
    $select name Item does not have, a filter outside the grammar, all fail as 400."""
    double = served.double
    double.add_partner("WEB", "Web customer")
    c = connect(served)
    with pytest.raises(PermanentError, match="Property 'Bogus' is invalid"):
        c.api.call("POST", "Orders", "t", body={"CardCode": "WEB", "Bogus": 1})
    with pytest.raises(PermanentError, match=r"Property 'DocumentLines\.0\.Price2' is invalid"):
        c.api.call(
            "POST", "Orders", "t", body={"CardCode": "WEB", "DocumentLines": [{"Price2": 1}]}
        )
    with pytest.raises(PermanentError, match="NoSuchField"):
        c.api.call("GET", "Items", "t", params={"$select": "ItemCode,NoSuchField"})
    with pytest.raises(PermanentError, match=r"\$filter"):
        c.api.call("GET", "Items", "t", params={"$filter": "startswith(ItemCode,'A')"})
    assert len(double.refused) == 4
    double.refused.clear()


def test_stamps_read_every_time_format() -> None:
    day = {"UpdateDate": "2026-03-02T00:00:00Z"}
    assert str(stamp(day | {"UpdateTime": "14:05:09"})) == "2026-03-02 14:05:09"
    assert str(stamp(day | {"UpdateTime": "140509"})) == "2026-03-02 14:05:09"
    assert str(stamp(day | {"UpdateTime": "1405"})) == "2026-03-02 00:14:05"
    assert str(stamp(day | {"UpdateTime": None})) == "2026-03-02 00:00:00"
    assert stamp({"UpdateDate": None}) is None


def test_threads_sharing_a_connector_renew_the_session_once(served: Served) -> None:
    """A worker runs a connection's items in several threads on one connector: when the
    session ends, one of them logs in again and the others use that session."""
    double = served.double
    double.add_partner("C1", "One")
    c = connect(served)
    c.fetch_customers(None)
    double.expire_sessions()
    with ThreadPoolExecutor(4) as pool:
        pages = list(pool.map(lambda _: c.fetch_customers(None), range(8)))
    assert all(len(p.records) == 1 for p in pages)
    assert double.logins == 2
