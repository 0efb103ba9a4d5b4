"""The catalog's pages through HTTP: a product with its variants, channels and queue
history; an order with its fulfillments; the search box's page; tenancy."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from stockyard.catalog.models import Customer, Order, Product
from stockyard.db import load_queries
from stockyard.engine import Request
from tests.support.api_env import ApiEnv, order, product
from tests.support.console import sign_in


@pytest.fixture
def env(tmp_path: Path) -> Iterator[ApiEnv]:
    e = ApiEnv(f"sqlite:///{tmp_path}/catalog.db")
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


def test_search_by_ref_links_the_queue_with_any_status(env: ApiEnv) -> None:
    sign_in(env)
    base = f"/console/clients/{env.a.id}"
    page = env.http.get(f"{base}/search", params={"q": "SKU-merchant-a"}).text
    assert "2 queue items with reference SKU-merchant-a" in text(page)
    assert "ref=SKU-merchant-a&amp;status=any" in page


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
    assert empty.status_code == 200 and "a SKU or product code" in text(empty.text)
    nothing = env.http.get(f"{base}/search", params={"q": "NO-SUCH-THING"})
    assert nothing.status_code == 200 and "Nothing in the queue or the catalog" in nothing.text
    long = env.http.get(f"{base}/search", params={"q": "x" * 201})
    assert long.status_code == 422 and "at most 200 characters" in long.text
    assert f'href="{base}/items"' in long.text  # the navigation is still there


@pytest.mark.parametrize(
    ("name", "index"),
    [
        ("products_in_range", "products_code (client_id=? AND code>? AND code<?)"),
        ("variants_in_range", "variants_sku (client_id=? AND sku>? AND sku<?)"),
        ("customers_in_range", "customers_code (client_id=? AND code>? AND code<?)"),
        ("variant_product_id", "variants_sku (client_id=? AND sku=?)"),
        ("channel_order", "orders_remote (channel_id=? AND remote_id=?)"),
        # The client's orders only: (client_id, number) has no index of its own yet.
        ("orders_numbered", "orders_client (client_id=?)"),
    ],
)
def test_the_searches_are_ranges_on_unique_indexes(env: ApiEnv, name: str, index: str) -> None:
    query = load_queries("stockyard.catalog", "queries.sql").for_backend("sqlite")[name]
    params = {p: 1 if p in ("limit", "client_id", "channel_id") else "x" for p in query.params}
    plan = env.queue.db.connection().execute(f"EXPLAIN QUERY PLAN {query.sql}", params).fetchall()
    assert index in " / ".join(str(r[3]) for r in plan)
