"""The catalog's pages through HTTP: a product with its variants, channels and queue
history; an order with its fulfillments; the search box's page; tenancy. On both backends,
and the search on a PostgreSQL database whose collation is not bytewise."""

from __future__ import annotations

import html
import re
import secrets
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import create_engine
from sqlalchemy import text as sql
from systems.postgres import Databases

from stockyard.catalog.models import Customer, Order, Product
from stockyard.db import connect, load_queries
from stockyard.engine import Request
from tests.support.api_env import ApiEnv, order, product
from tests.support.console import sign_in
from tests.support.migrations import migrate_to
from tests.support.queues import UrlMaker, drain


@pytest.fixture
def env(new_url: UrlMaker) -> Iterator[ApiEnv]:
    e = ApiEnv(new_url())
    yield e
    e.close()


def text(page: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))


def test_the_product_page_shows_variants_channels_and_history(env: ApiEnv) -> None:
    sign_in(env)
    base = f"/console/clients/{env.a.id}"
    env.service.store.link(env.a.channel, "product", env.a.product, "shop-991", None)
    page = env.http.get(f"{base}/products/{env.a.product}").text
    words = text(page)
    assert "Product P-merchant-a: Product P-merchant-a" in words
    assert "SKU-merchant-a" in words and "10.00" in words  # the variant and its price
    # The channel holds it (remote id); its failed update tells more than the queued one.
    channels = text(page.split("On the channels")[1].split("</table>")[0])
    assert "Shop" in channels and "shop-991" in channels
    assert f"on channel · update_product failed · item {env.a.failed_item}" in channels
    # The queue history: both items of its SKU, newest first.
    history = page.split("<h2>Queue history</h2>")[1]
    first, second = env.a.queued_item, env.a.failed_item
    assert history.index(f">{first}</a>") < history.index(f">{second}</a>")


def test_the_queue_history_names_connections(env: ApiEnv) -> None:
    sign_in(env)
    base = f"/console/clients/{env.a.id}"
    sku = "SKU-merchant-a"
    env.queue.enqueue(env.a.id, [Request("sync_order", {}, None, (sku,))])
    page = env.http.get(f"{base}/products/{env.a.product}").text
    history = page.split("<h2>Queue history</h2>")[1].split("</table>")[0]
    # Names, not ids: "Shop" for the channel's items, "no connection" for the others.
    assert "<td>Shop</td>" in history and "<td>no connection</td>" in history
    assert f"<td>{env.a.channel}</td>" not in history and "<td>-</td>" not in history
    (item,) = env.queue.enqueue(
        env.a.id, [Request("add_order", {}, env.a.source, ("O-merchant-a",))]
    )
    page = env.http.get(f"{base}/orders/{env.a.order}").text
    history = page.split("<h2>Queue history</h2>")[1].split("</table>")[0]
    assert f'href="{base}/items/{item}"' in history and "<td>ERP</td>" in history


def test_a_channel_without_the_product_says_so(env: ApiEnv) -> None:
    sign_in(env)
    pid = env.service.store.upsert_product(
        env.a.id, env.a.source, Product.model_validate(product("P-2", "SKU-2"))
    )
    channels = env.http.get(f"/console/clients/{env.a.id}/products/{pid}").text
    assert "not on channel yet" in text(channels.split("On the channels")[1].split("</table>")[0])


def test_the_order_page_shows_lines_fulfillments_and_history(env: ApiEnv) -> None:
    sign_in(env)
    base = f"/console/clients/{env.a.id}"
    (item,) = env.queue.enqueue(
        env.a.id, [Request("add_order", {"order_id": env.a.order}, env.a.source, ("O-merchant-a",))]
    )
    page = env.http.get(f"{base}/orders/{env.a.order}").text
    words = text(page)
    assert "Order O-merchant-a" in words and "Shop" in words
    assert "A-1" in words and "5 EUR" in words  # the line and the total
    fulfillments = text(page.split("<h2>Fulfillments</h2>")[1].split("</table>")[0])
    assert "Warehouse" in fulfillments and "F-merchant-a" in fulfillments and "open" in fulfillments
    assert f'href="{base}/items/{item}"' in page.split("<h2>Queue history</h2>")[1]


def test_another_clients_product_and_order_are_not_found(env: ApiEnv) -> None:
    sign_in(env)
    base = f"/console/clients/{env.a.id}"
    assert env.http.get(f"{base}/products/{env.b.product}").status_code == 404
    assert env.http.get(f"{base}/orders/{env.b.order}").status_code == 404
    # Nor through client B's own URLs, where this user has no role.
    other = f"/console/clients/{env.b.id}"
    assert env.http.get(f"{other}/products/{env.b.product}").status_code == 404
    assert env.http.get(f"{other}/search", params={"q": "P-merchant-b"}).status_code == 404


def test_the_service_checks_the_client_of_products_and_orders(env: ApiEnv) -> None:
    from stockyard.accounts import Principal
    from stockyard.errors import NotFound

    member_of_a = Principal("user:a", roles={env.a.id: "read-only"})
    with pytest.raises(NotFound):
        env.service.product_view(member_of_a, env.a.id, env.b.product)
    with pytest.raises(NotFound):
        env.service.order_view(member_of_a, env.a.id, env.b.order)
    with pytest.raises(NotFound):
        env.service.product_view(member_of_a, env.b.id, env.b.product)


def test_search_finds_skus_by_prefix_in_any_case(env: ApiEnv) -> None:
    sign_in(env)
    base = f"/console/clients/{env.a.id}"
    pid = env.service.store.upsert_product(
        env.a.id, env.a.source, Product.model_validate(product("P-BAD", "SKU-BAD"))
    )
    for typed in ("sku-ba", "SKU-BA", "SKU-BAD", "p-ba"):
        page = env.http.get(f"{base}/search", params={"q": typed}).text
        assert f'href="{base}/products/{pid}"' in page, typed
    # Client B's catalog never shows.
    page = env.http.get(f"{base}/search", params={"q": "P-merchant"}).text
    assert "P-merchant-a" in page and "P-merchant-b" not in page


def test_search_finds_mixed_case_and_unicode_codes_by_any_case_prefix(env: ApiEnv) -> None:
    sign_in(env)
    base = f"/console/clients/{env.a.id}"
    # Codes in mixed case and beyond ASCII: case-folded as Python folds them (ß is ss).
    store = env.service.store
    mixed = store.upsert_product(
        env.a.id, env.a.source, Product.model_validate(product("Sku-Mix", "Sku-Mix-1"))
    )
    street = store.upsert_product(
        env.a.id, env.a.source, Product.model_validate(product("STRASSE-9", "Straße-9-L"))
    )
    umlaut = store.upsert_product(
        env.a.id, env.a.source, Product.model_validate(product("ÄRGER-1", "ärger-1-xl"))
    )
    store.upsert_customer(env.a.id, Customer(code="Kunde-Öl", email="oel@example.com"))
    cases = {
        "sku-merchant": env.a.product,  # SKU-merchant-a, typed all lower-case
        "SKU-MERCHANT-A": env.a.product,
        "sKU-mIX": mixed,
        "sku-mix-1": mixed,
        "straße": street,  # STRASSE-9's code and Straße-9-L's SKU
        "STRASSE-9-l": street,
        "ärg": umlaut,
        "ÄRGER-1-X": umlaut,
    }
    for typed, pid in cases.items():
        page = env.http.get(f"{base}/search", params={"q": typed}).text
        assert f'href="{base}/products/{pid}"' in page, typed
    found = text(env.http.get(f"{base}/search", params={"q": "KUNDE-ö"}).text)
    assert "Kunde-Öl" in found and "oel@example.com" in found
    # A prefix is a prefix: the middle of a code finds nothing.
    page = env.http.get(f"{base}/search", params={"q": "merchant"}).text
    assert f'href="{base}/products/{env.a.product}"' not in page


def test_a_product_and_customer_written_by_the_flows_are_found_by_another_case(
    env: ApiEnv,
) -> None:
    sign_in(env)
    base = f"/console/clients/{env.a.id}"
    env.queue.enqueue(
        env.a.id,
        [
            Request("sync_product", product("Flow-Prod", "Flow-Sku-Ä"), env.a.source),
            Request("sync_customer", {"code": "Flow-Cust", "name": "Flo"}, env.a.source),
        ],
    )
    drain(env.queue, env.application.handlers)
    pid = env.service.store.product_id(env.a.id, "Flow-Prod")
    for typed in ("flow-p", "FLOW-SKU-ä"):
        page = env.http.get(f"{base}/search", params={"q": typed}).text
        assert f'href="{base}/products/{pid}"' in page, typed
    assert "Flow-Cust" in text(env.http.get(f"{base}/search", params={"q": "FLOW-c"}).text)


def test_the_page_says_what_a_search_matches(env: ApiEnv) -> None:
    sign_in(env)
    base = f"/console/clients/{env.a.id}"
    helping = text(env.http.get(f"{base}/search").text)
    assert "the beginning of a SKU, product code or customer code, in any case" in helping
    assert "an order's number or the channel's id for it, exactly" in helping
    nothing = env.http.get(f"{base}/search", params={"q": "Boom"}).text
    words = text(nothing)
    assert "no SKU, product code or customer code begins with it, in any case" in words
    assert "no queue item has a reference beginning with it" in words
    assert "Look for “Boom” in the error messages of failed items" in words
    # Error text is searched in failed items only: the failed index, not every item.
    assert "error=Boom&amp;status=failed" in nothing and "status=any" not in nothing


def test_search_counts_queue_items_by_the_start_of_a_reference(env: ApiEnv) -> None:
    sign_in(env)
    base = f"/console/clients/{env.a.id}"
    # "SKU-BA" finds the queue's SKU-BAD as it finds the product: by its start, any case.
    env.queue.enqueue(env.a.id, [Request("sync_order", {}, None, ("SKU-BAD",))])
    page = env.http.get(f"{base}/search", params={"q": "sku-ba"}).text
    assert "1 queue item with a reference beginning with sku-ba" in text(page)
    # The link opens the queue page's own search, every status: the same items.
    assert f'href="{base}/items?q=sku-ba"' in page
    # Client B's SKU-merchant-b items are not counted.
    page = env.http.get(f"{base}/search", params={"q": "SKU-merch"}).text
    assert "2 queue items with a reference beginning with SKU-merch" in text(page)


def test_a_search_matching_many_queue_items_says_so_without_counting_them_all(
    env: ApiEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    import stockyard.service.catalog

    monkeypatch.setattr(stockyard.service.catalog, "QUEUE_CAP", 1)
    sign_in(env)
    page = env.http.get(f"/console/clients/{env.a.id}/search", params={"q": "sku-m"}).text
    assert "1+ queue items with a reference beginning with sku-m" in text(page)


def test_a_search_of_digits_counts_that_reference_exactly(env: ApiEnv) -> None:
    sign_in(env)
    base = f"/console/clients/{env.a.id}"
    env.queue.enqueue(
        env.a.id, [Request("sync_order", {}, None, (ref,)) for ref in ("900100", "9001000")]
    )
    page = env.http.get(f"{base}/search", params={"q": "900100"}).text
    # As the queue page reads a number: "900100" is not "9001000".
    assert "1 queue item with the reference 900100" in text(page)
    assert f'href="{base}/items?q=900100"' in page


def test_with_no_queue_item_the_search_offers_the_error_messages(env: ApiEnv) -> None:
    sign_in(env)
    base = f"/console/clients/{env.a.id}"
    # The product P-merchant-a is found; no queue item's reference begins with "P-merch".
    page = env.http.get(f"{base}/search", params={"q": "P-merch"}).text
    queue = page.split('id="found-queue"', 1)[1]
    assert "No queue item has a reference beginning with P-merch" in text(queue)
    assert "error=P-merch&amp;status=failed" in queue


def test_digits_are_an_item_id_and_an_order_number_and_a_sku(env: ApiEnv) -> None:
    sign_in(env)
    base = f"/console/clients/{env.a.id}"
    # Only an item has this id: straight to it.
    r = env.http.get(f"{base}/search", params={"q": str(env.a.failed_item)}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"{base}/items/{env.a.failed_item}"
    # An order numbered like an item: both shown, nothing hidden by a redirect.
    numbered = order("gid://shop/Order/77") | {"number": str(env.a.failed_item)}
    oid, _ = env.service.store.upsert_order(env.a.id, env.a.channel, Order.model_validate(numbered))
    page = env.http.get(f"{base}/search", params={"q": str(env.a.failed_item)}).text
    assert (
        f'href="{base}/orders/{oid}"' in page and f'href="{base}/items/{env.a.failed_item}"' in page
    )
    # An order number that is no item id: the order, not "nothing here".
    numbered = order("gid://shop/Order/78") | {"number": "900001"}
    oid, _ = env.service.store.upsert_order(env.a.id, env.a.channel, Order.model_validate(numbered))
    page = env.http.get(f"{base}/search", params={"q": "900001"}).text
    assert f'href="{base}/orders/{oid}"' in page and "Nothing in the queue" not in page
    # The channel's own id for the order finds it too; and a SKU of digits.
    page = env.http.get(f"{base}/search", params={"q": "gid://shop/Order/78"}).text
    assert f'href="{base}/orders/{oid}"' in page
    pid = env.service.store.upsert_product(
        env.a.id, env.a.source, Product.model_validate(product("400100", "400100-1"))
    )
    page = env.http.get(f"{base}/search", params={"q": "4001"}).text
    assert f'href="{base}/products/{pid}"' in page


def test_search_finds_customers(env: ApiEnv) -> None:
    sign_in(env)
    env.service.store.upsert_customer(
        env.a.id, Customer(code="CUST-42", email="ann@example.com", name="Ann")
    )
    page = text(env.http.get(f"/console/clients/{env.a.id}/search", params={"q": "cust-4"}).text)
    assert "CUST-42" in page and "ann@example.com" in page


def test_an_empty_search_helps_and_a_long_one_is_refused_in_the_layout(env: ApiEnv) -> None:
    sign_in(env)
    base = f"/console/clients/{env.a.id}"
    empty = env.http.get(f"{base}/search", params={"q": ""})
    assert empty.status_code == 200 and "a SKU, product code or customer code" in text(empty.text)
    nothing = env.http.get(f"{base}/search", params={"q": "NO-SUCH-THING"})
    assert nothing.status_code == 200 and "Nothing in the queue or the catalog" in nothing.text
    long = env.http.get(f"{base}/search", params={"q": "x" * 201})
    assert long.status_code == 422 and "at most 200 characters" in long.text
    assert f'href="{base}/items"' in long.text  # the navigation is still there


# One probe or one range per kind, on the folded (client_id, folded) indexes; an order's
# number on (client_id, number), not a walk through the client's orders.
_SEARCH_INDEXES = {
    "products_in_range": (
        "products_folded",
        "products_folded (client_id=? AND folded>? AND folded<?)",
    ),
    "variants_in_range": (
        "variants_folded",
        "variants_folded (client_id=? AND folded>? AND folded<?)",
    ),
    "customers_in_range": (
        "customers_folded",
        "customers_folded (client_id=? AND folded>? AND folded<?)",
    ),
    "variant_product_id": ("variants_sku", "variants_sku (client_id=? AND sku=?)"),
    "channel_order": ("orders_remote", "orders_remote (channel_id=? AND remote_id=?)"),
    "orders_numbered": ("orders_number", "orders_number (client_id=? AND number=?)"),
}


@pytest.mark.parametrize("name", sorted(_SEARCH_INDEXES))
def test_the_searches_are_probes_or_ranges_on_indexes(env: ApiEnv, name: str) -> None:
    db = env.queue.db
    query = load_queries("stockyard.catalog", "queries.sql").for_backend(db.backend)[name]
    known = {"limit": 20, "client_id": env.a.id, "channel_id": env.a.channel}
    params = {p: known.get(p, "x") for p in query.params}
    pg_index, sqlite_plan = _SEARCH_INDEXES[name]
    if db.backend == "sqlite":
        rows = db.connection().execute(f"EXPLAIN QUERY PLAN {query.sql}", params).fetchall()
        plan = " / ".join(str(r[3]) for r in rows)
        assert sqlite_plan in plan and "TEMP B-TREE" not in plan, plan
    else:
        # Some orders and their statistics, as autovacuum keeps them: on an empty table the
        # planner's guesses tie every index of orders.
        for n in range(200):
            numbered = order(f"gid://shop/Order/{n}") | {"number": f"#{n}"}
            env.service.store.upsert_order(env.a.id, env.a.channel, Order.model_validate(numbered))
        with db.write() as cur:
            cur.execute("ANALYZE orders")
        with db.read() as cur:
            cur.execute("SET LOCAL enable_seqscan = off")
            rows = cur.execute(f"EXPLAIN (COSTS OFF) {query.sql}", params).fetchall()
        plan = " / ".join(str(r[0]) for r in rows)
        assert (
            f"Index Scan using {pg_index} " in plan
            or f"Index Scan Backward using {pg_index} " in plan
        ), plan
        assert "Sort" not in plan, plan


# ------------------------------------------------ PostgreSQL with a collation not bytewise


@pytest.fixture
def icu_env(pg_databases: Databases) -> Iterator[ApiEnv]:
    """A database collating as glibc's en_US.UTF-8 does (this machine has no such locale:
    ICU's en-US with punctuation ignorable, "ka-shifted"): "SKU-BAD" sorts after "SKU.",
    so a byte range [SKU-, SKU.) on a column of the database's collation misses it."""
    name = f"stockyard_icu_{secrets.token_hex(4)}"
    with psycopg.connect(pg_databases.admin_url, autocommit=True) as conn:
        conn.execute(
            f"CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' LOCALE_PROVIDER icu"
            " ICU_LOCALE 'en-US-u-ka-shifted' LC_COLLATE 'C' LC_CTYPE 'C'".encode()
        )
    url = pg_databases.url(name)
    e = ApiEnv(url)  # migrated from scratch in this collation
    yield e
    e.close()
    pg_databases.drop(url)


def test_a_prefix_is_found_under_a_collation_that_is_not_bytewise(icu_env: ApiEnv) -> None:
    env = icu_env
    with env.queue.db.read() as cur:
        # The database's own collation would break a byte range: this is what the folded
        # column's "C" collation is for.
        assert cur.execute("SELECT 'SKU-BAD' < 'SKU.'").fetchone()[0] is False
    sign_in(env)
    base = f"/console/clients/{env.a.id}"
    pid = env.service.store.upsert_product(
        env.a.id, env.a.source, Product.model_validate(product("P-BAD", "SKU-BAD"))
    )
    env.service.store.upsert_customer(env.a.id, Customer(code="CU-BAD"))
    for typed in ("SKU-", "sku-b", "P-", "p-bad"):
        page = env.http.get(f"{base}/search", params={"q": typed}).text
        assert f'href="{base}/products/{pid}"' in page, typed
    assert "CU-BAD" in text(env.http.get(f"{base}/search", params={"q": "cu-"}).text)


# --------------------------------------------------------------------- the upgrade (0009)


def test_the_upgrade_folds_the_codes_already_stored(empty_url: str) -> None:
    migrate_to(empty_url, "0008")
    engine = create_engine(connect(empty_url).sqlalchemy_url())
    codes = ["SKU-Old", "Straße-1", "ÄRGER", "plain-9"]
    try:
        with engine.begin() as conn:
            conn.execute(sql("INSERT INTO clients (name, created_at) VALUES ('old', 0)"))
            client = conn.execute(sql("SELECT id FROM clients")).scalar_one()
            for n, code in enumerate(codes):
                row = {"c": client, "code": code, "n": n}
                conn.execute(
                    sql(
                        "INSERT INTO products (client_id, code, title, data, deleted,"
                        " created_at, updated_at) VALUES (:c, :code, 't', '{}', 0, 0, 0)"
                    ),
                    row,
                )
                pid = conn.execute(
                    sql("SELECT id FROM products WHERE code = :code"), row
                ).scalar_one()
                conn.execute(
                    sql(
                        "INSERT INTO variants (client_id, product_id, sku, position, data,"
                        " deleted, created_at, updated_at)"
                        " VALUES (:c, :p, :code, :n, '{}', 0, 0, 0)"
                    ),
                    row | {"p": pid},
                )
                conn.execute(
                    sql(
                        "INSERT INTO customers (client_id, code, data, created_at, updated_at)"
                        " VALUES (:c, :code, '{}', 0, 0)"
                    ),
                    row,
                )
        migrate_to(empty_url, "head")
        with engine.begin() as conn:
            for table, key in (("products", "code"), ("variants", "sku"), ("customers", "code")):
                rows = conn.execute(sql(f"SELECT {key}, folded FROM {table}")).all()
                assert {r[0]: r[1] for r in rows} == {c: c.casefold() for c in codes}, table
    finally:
        engine.dispose()


def test_the_upgrade_keeps_a_column_added_and_folded_beforehand(empty_url: str) -> None:
    migrate_to(empty_url, "0008")
    engine = create_engine(connect(empty_url).sqlalchemy_url())
    collate = ' COLLATE "C"' if empty_url.startswith("postgresql") else ""
    try:
        with engine.begin() as conn:
            conn.execute(sql("INSERT INTO clients (name, created_at) VALUES ('old', 0)"))
            client = conn.execute(sql("SELECT id FROM clients")).scalar_one()
            conn.execute(sql(f"ALTER TABLE products ADD COLUMN folded TEXT{collate}"))
            for code, folded in (("Done-Before", "done-before"), ("Not-Yet", None)):
                conn.execute(
                    sql(
                        "INSERT INTO products (client_id, code, folded, title, data, deleted,"
                        " created_at, updated_at) VALUES (:c, :code, :f, 't', '{}', 0, 0, 0)"
                    ),
                    {"c": client, "code": code, "f": folded},
                )
        migrate_to(empty_url, "head")
        with engine.begin() as conn:
            rows = conn.execute(sql("SELECT code, folded FROM products")).all()
        assert dict(rows) == {"Done-Before": "done-before", "Not-Yet": "not-yet"}
    finally:
        engine.dispose()
