"""Reading the ERP: the rows a profile's queries return become Stockyard records, paged;
only what changed goes to the outbox (hashes, cursors); the batch, its hashes and its
cursor are written in one transaction, so a crash between reading and queueing loses
nothing. The CSV-folder variant reads the same columns from files."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from stockyard.agent import AgentError
from stockyard.agent.changes import poll
from stockyard.agent.config import load_config
from stockyard.agent.outbox import State
from stockyard.agent.profile import load_profile, parse_profile
from stockyard.agent.read import SqlSource
from stockyard.agent.run import Agent
from tests.support.agent_env import make_erp, write_setup


@pytest.fixture
def erp(tmp_path: Path) -> Iterator[sa.Engine]:
    engine = make_erp(f"sqlite:///{tmp_path}/erp.db")
    yield engine
    engine.dispose()


def agent(tmp_path: Path, cursor: bool = False) -> Agent:
    # Nothing listens at port 9: reading never needs Stockyard.
    config = write_setup(tmp_path, f"sqlite:///{tmp_path}/erp.db", "http://127.0.0.1:9", 1, cursor)
    return Agent.from_file(config)


def queued(state: State) -> list[tuple[str, list[dict[str, Any]]]]:
    """(topic, records) of every batch in the outbox, in order."""
    return [(b.topic, json.loads(b.body)[b.topic]) for b in state.head(1000)]


def test_rows_become_products_with_variants_tier_prices_stock_and_customers(
    tmp_path: Path, erp: sa.Engine
) -> None:
    a = agent(tmp_path)
    reading, _ = a.read()
    products, customers = queued(a.state)
    assert products[0] == "products" and customers[0] == "customers"
    tee, mug, cap = products[1]
    assert tee == {
        "code": "TEE",
        "title": "Tee",
        "options": ["Size", "Colour"],
        "variants": [
            {"sku": "TEE-S", "price": "10", "prices": {"trade": "8"},
             "stock": {"JHB": 5, "CPT": 2}, "options": {"Size": "S", "Colour": "Red"}},
            {"sku": "TEE-M", "price": "10", "prices": {"trade": "8"},
             "stock": {"JHB": 7}, "options": {"Size": "M", "Colour": "Red"}},
        ],
    }  # fmt: skip
    assert mug == {"code": "MUG", "title": "Mug", "variants": [
        {"sku": "MUG", "price": "6.5", "stock": {"JHB": 40}}]}  # fmt: skip
    assert cap["variants"][0]["price"] == "12"
    assert customers[1] == [
        {"code": "ACME01", "name": "Acme", "email": "buyer@acme.example",
         "credit_limit": "5000", "price_tier": "trade"},
        {"code": "BOB02", "name": "Bob's"},
    ]  # fmt: skip
    assert reading.read == {"products": 3, "customers": 2}
    a.close()


def test_the_products_query_is_paged_with_limit_and_offset(tmp_path: Path, erp: sa.Engine) -> None:
    a = agent(tmp_path)  # page_size = 2; four variant rows
    assert isinstance(a.source, SqlSource)
    seen: list[Any] = []

    def note(conn: Any, cursor: Any, statement: str, params: Any, *rest: Any) -> None:
        if "LIMIT" in statement:
            seen.append(params)

    sa.event.listen(a.source.engine, "before_cursor_execute", note)
    assert len(a.source.rows("products", None)) == 4
    assert len(seen) == 3  # 2 + 2 + an empty page
    assert [p[-2:] for p in seen] == [(2, 0), (2, 2), (2, 4)]
    a.close()


def test_an_unchanged_poll_queues_nothing_and_a_changed_price_only_its_product(
    tmp_path: Path, erp: sa.Engine
) -> None:
    a = agent(tmp_path)
    a.read()
    before = len(queued(a.state))
    _, queued_now = a.read()
    assert queued_now == 0 and len(queued(a.state)) == before
    with erp.begin() as conn:
        conn.execute(
            sa.text("UPDATE PriceList SET Price = 7 WHERE StockID = 3 AND List = 'Retail'")
        )
    a.read()
    topic, records = queued(a.state)[-1]
    assert topic == "products" and [r["code"] for r in records] == ["MUG"]
    assert records[0]["variants"][0]["price"] == "7"
    # Stock and tier prices belong to their product: a stock change re-pushes it too.
    with erp.begin() as conn:
        conn.execute(sa.text("UPDATE WhseStk SET Qty = 3 WHERE StockID = 2"))
    a.read()
    topic, records = queued(a.state)[-1]
    assert [r["code"] for r in records] == ["TEE"]
    assert records[0]["variants"][1]["stock"] == {"JHB": 3}
    a.close()


def test_with_a_cursor_only_newer_rows_are_read_and_the_cursor_is_stored_with_the_batch(
    tmp_path: Path, erp: sa.Engine
) -> None:
    a = agent(tmp_path, cursor=True)
    a.read()
    assert a.state.cursor("products") is not None
    assert [len(r) for t, r in queued(a.state) if t == "products"] == [3]
    assert isinstance(a.source, SqlSource)
    assert {r["sku"] for r in a.source.rows("products", 3)} == {"CAP"}  # changed >= :cursor
    # A touched row whose content did not change: read again (newer cursor), pushed never.
    with erp.begin() as conn:
        conn.execute(sa.text("UPDATE StkItem SET Modified = 9 WHERE Code = 'CAP'"))
    _, n = a.read()
    assert n == 0
    with erp.begin() as conn:
        conn.execute(
            sa.text("UPDATE StkItem SET Modified = 10, Description_1 = 'Hat' WHERE Code = 'CAP'")
        )
    a.read()
    assert queued(a.state)[-1][1][0]["title"] == "Hat"
    a.close()


def test_a_crash_between_reading_and_the_outbox_write_loses_nothing(
    tmp_path: Path, erp: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = agent(tmp_path, cursor=True)
    a.read()
    with erp.begin() as conn:
        conn.execute(
            sa.text("UPDATE PriceList SET Price = 11 WHERE StockID = 4 AND List = 'Retail'")
        )
        conn.execute(sa.text("UPDATE StkItem SET Modified = 20 WHERE Code = 'CAP'"))
    cursor_before = a.state.cursor("products")
    real_add = a.state.conn

    class Crash(Exception):
        pass

    # The process dies inside the transaction, after the batch row went in but before the
    # hashes and cursor: nothing of the poll may stay.
    class Dying:
        def __getattr__(self, name: str) -> Any:
            return getattr(real_add, name)

        def executemany(self, sql: str, rows: Any) -> Any:
            raise Crash

    monkeypatch.setattr(a.state, "conn", Dying())
    with pytest.raises(Crash):
        a.read()
    monkeypatch.setattr(a.state, "conn", real_add)
    assert a.state.cursor("products") == cursor_before
    assert [t for t, _ in queued(a.state)] == ["products", "customers"]  # the first poll's only
    a.read()  # restarted: the change is read again and queued
    topic, records = queued(a.state)[-1]
    assert topic == "products" and records[0]["code"] == "CAP"
    assert records[0]["variants"][0]["price"] == "11"
    assert a.state.cursor("products") != cursor_before
    a.close()


def test_a_bad_row_is_reported_and_the_others_pushed(tmp_path: Path, erp: sa.Engine) -> None:
    with erp.begin() as conn:
        conn.execute(
            sa.text("UPDATE PriceList SET Price = -1 WHERE StockID = 3 AND List = 'Retail'")
        )
    a = agent(tmp_path)
    result = a.check()
    assert result["would_push"]["products"] == 2
    assert any("MUG" in p and "greater than or equal to 0" in p for p in result["problems"])
    assert a.state.pending() == (0, 0)  # check pushes and stores nothing
    a.close()


def test_query_columns_and_parameters_are_checked(tmp_path: Path, erp: sa.Engine) -> None:
    profile = parse_profile(
        {
            "name": "p",
            "products": {"query": "SELECT Code AS sku, Code AS titel, 1 AS price FROM StkItem"},
        },
        "p",
    )
    source = SqlSource(f"sqlite:///{tmp_path}/erp.db", profile, {})
    with pytest.raises(AgentError, match="returns column 'titel', which is not one of"):
        source.rows("products", None)
    profile = parse_profile(
        {"name": "p", "products": {"query": "SELECT Code AS sku FROM StkItem WHERE Grp = :group"}},
        "p",
    )
    with pytest.raises(AgentError, match=r"uses :group: not a setting"):
        SqlSource(f"sqlite:///{tmp_path}/erp.db", profile, {}).rows("products", None)
    profile = parse_profile({"name": "p", "products": {"query": "SELECT * FROM Nope"}}, "p")
    with pytest.raises(
        AgentError, match=r"\[products\] query failed: OperationalError: no such table"
    ):
        SqlSource(f"sqlite:///{tmp_path}/erp.db", profile, {}).rows("products", None)


def test_the_erp_password_never_reaches_a_message(tmp_path: Path) -> None:
    profile = load_profile("generic")
    with pytest.raises(AgentError) as caught:
        SqlSource("nosuchdb+driver://sa:hunter2@erp/SAGE", profile, {})
    assert "hunter2" not in str(caught.value) and "***" in str(caught.value)


def test_a_malformed_erp_url_is_named_not_a_bug(tmp_path: Path) -> None:
    profile = load_profile("generic")
    with pytest.raises(AgentError) as caught:
        SqlSource("postgresql+psycopg://sa:hunter2@127.0.0.1:abc/erp", profile, {})
    assert "[erp] url" in str(caught.value) and "hunter2" not in str(caught.value)


def test_the_generic_profile_pushes_a_stock_and_a_tier_price_change(tmp_path: Path) -> None:
    """Nothing in the generic example schema moves items.updated_at when a stock level or a
    tier price changes: the shipped profile compares hashes, so both are pushed."""
    from tests.support import erp_databases

    url = f"sqlite:///{tmp_path}/erp.db"
    engine = erp_databases.generic(url)
    profile = load_profile("generic")
    source = SqlSource(url, profile, {})
    state = State(tmp_path / "state.db")
    state.put(poll(source, profile, state).change, 100)
    with engine.begin() as c:  # 4 socks sold, the trade price up; items untouched
        c.execute(sa.text("UPDATE item_stock SET on_hand = 0 WHERE sku = 'SOCK-M'"))
        c.execute(sa.text("UPDATE item_prices SET price = 9.5 WHERE sku = 'SOCK-S'"))
    second = poll(source, profile, state)
    source.close()
    state.close()
    engine.dispose()
    (sock,) = second.change.records["products"]
    variants = {v["sku"]: v for v in sock["variants"]}
    assert variants["SOCK-M"]["stock"] == {"main": 0}
    assert variants["SOCK-S"]["prices"] == {"trade": "9.5"}


# ------------------------------------------------- cursors, paging, deletions (review)


def sent_all(a: Agent) -> None:
    """Stockyard took everything queued so far."""
    for b in a.state.head(1000):
        a.state.sent(b)


def test_with_a_cursor_a_changed_product_is_pushed_whole(tmp_path: Path, erp: sa.Engine) -> None:
    """The cursor finds that TEE-M changed; TEE is pushed with ALL its variants (Stockyard
    marks a variant a product no longer lists removed, and channels delete it)."""
    from stockyard.catalog.models import Product
    from tests.support.api_env import ApiEnv

    a = agent(tmp_path, cursor=True)
    a.read()
    (first,) = [p for t, ps in queued(a.state) if t == "products" for p in ps if p["code"] == "TEE"]
    sent_all(a)
    with erp.begin() as c:  # TEE-M's retail price changes; the ERP moves its marker only
        c.execute(sa.text("UPDATE PriceList SET Price = 11 WHERE StockID = 2 AND List='Retail'"))
        c.execute(sa.text("UPDATE StkItem SET Modified = 9 WHERE StockLink = 2"))
    a.read()
    ((topic, (second,)),) = queued(a.state)
    assert topic == "products" and [v["sku"] for v in second["variants"]] == ["TEE-S", "TEE-M"]
    assert second["variants"][1]["price"] == "11"
    env = ApiEnv(f"sqlite:///{tmp_path}/stockyard.db")
    store = env.service.store
    pid = store.upsert_product(env.a.id, None, Product.model_validate(first))
    store.upsert_product(env.a.id, None, Product.model_validate(second))
    assert store.product(env.a.id, pid).removed_variants == []
    env.close()
    a.close()


def test_a_change_stamped_with_the_cursors_own_value_is_read(
    tmp_path: Path, erp: sa.Engine
) -> None:
    """`>=`: a row saved in the same tick as the last row read is read again; what was
    already read at that tick is not read twice."""
    a = agent(tmp_path, cursor=True)
    a.read()  # cursor = 3 (CAP)
    sent_all(a)
    _, queued_now = a.read()  # CAP comes back (>= 3): seen, nothing read or pushed
    assert queued_now == 0
    with erp.begin() as c:  # MUG's price changes in the same tick CAP was saved in
        c.execute(sa.text("UPDATE PriceList SET Price = 7 WHERE StockID = 3 AND List='Retail'"))
        c.execute(sa.text("UPDATE StkItem SET Modified = 3 WHERE StockLink = 3"))
    a.read()
    ((_, (mug,)),) = queued(a.state)
    assert mug["code"] == "MUG" and mug["variants"][0]["price"] == "7"
    sent_all(a)
    assert a.read()[1] == 0


def _between_pages(a: Agent, tmp_path: Path, sql: str) -> None:
    """Another ERP user runs `sql` (and commits) while the agent is between two pages of
    the products query."""
    import sqlite3

    pages = []

    def hook(conn: Any, cursor: Any, statement: str, params: Any, *rest: Any) -> None:
        if "FROM StkItem i JOIN PriceList" in statement:
            pages.append(params)
            if len(pages) == 2:
                other = sqlite3.connect(f"{tmp_path}/erp.db", timeout=1)
                other.execute(sql)
                other.commit()
                other.close()

    assert isinstance(a.source, SqlSource)
    sa.event.listen(a.source.engine, "before_cursor_execute", hook)


def test_one_poll_reads_its_pages_in_one_snapshot(tmp_path: Path, erp: sa.Engine) -> None:
    """OFFSET paging over a table that changes between pages would skip a row (TEE-M here,
    after a row before it is deleted): a poll reads all its pages in one read transaction,
    so it sees the ERP as it was when the poll began. (WAL: SQLite's readers do not block
    writers then, like SQL Server's SNAPSHOT / PostgreSQL's REPEATABLE READ.)"""
    with erp.begin() as c:
        c.execute(sa.text("PRAGMA journal_mode=WAL"))
        c.execute(sa.text("INSERT INTO StkItem VALUES (0, 'OLD', '', 'Old', NULL, NULL, 1, 0)"))
        c.execute(sa.text("INSERT INTO PriceList VALUES (0, 'Retail', 5)"))
    a = agent(tmp_path)
    a.read()
    sent_all(a)
    _between_pages(a, tmp_path, "DELETE FROM StkItem WHERE StockLink = 0")
    reading, _ = a.read()
    assert queued(a.state) == [] and not reading.problems
    # The next poll sees OLD gone and withdraws it.
    a.read()
    ((_, (old,)),) = queued(a.state)
    assert old["code"] == "OLD" and old["active"] is False
    a.close()


def test_a_cursor_poll_paged_while_rows_change_loses_nothing(
    tmp_path: Path, erp: sa.Engine
) -> None:
    from tests.support.agent_env import profile_text

    with erp.begin() as c:
        c.execute(sa.text("PRAGMA journal_mode=WAL"))
    profile = profile_text(cursor=True).replace(
        "ORDER BY i.StockLink LIMIT", "ORDER BY i.Modified, i.StockLink LIMIT"
    )
    config = write_setup(
        tmp_path, f"sqlite:///{tmp_path}/erp.db", "http://127.0.0.1:9", 1, True, profile
    )
    a = Agent.from_file(config)
    a.read()  # cursor = 3
    sent_all(a)
    with erp.begin() as c:  # MUG (5), CAP (6) touched; TEE-S's price 10 -> 99 (7)
        c.execute(sa.text("UPDATE StkItem SET Modified = 5 WHERE StockLink = 3"))
        c.execute(sa.text("UPDATE StkItem SET Modified = 6 WHERE StockLink = 4"))
        c.execute(sa.text("UPDATE PriceList SET Price = 99 WHERE StockID = 1 AND List='Retail'"))
        c.execute(sa.text("UPDATE StkItem SET Modified = 7 WHERE StockLink = 1"))
    _between_pages(a, tmp_path, "UPDATE StkItem SET Modified = 8 WHERE StockLink = 3")
    a.read()
    a.read()
    prices = {v["sku"]: v["price"] for _, ps in queued(a.state) for p in ps for v in p["variants"]}
    assert prices.get("TEE-S") == "99"
    a.close()


def test_a_record_deleted_in_the_erp_is_withdrawn_once(tmp_path: Path, erp: sa.Engine) -> None:
    a = agent(tmp_path)
    a.read()
    sent_all(a)
    with erp.begin() as c:  # CAP is discontinued and deleted; so is customer BOB02
        c.execute(sa.text("DELETE FROM StkItem WHERE StockLink = 4"))
        c.execute(sa.text("DELETE FROM Client WHERE Account = 'BOB02'"))
    a.read()
    withdrawn = {t: ps for t, ps in queued(a.state)}
    (cap,) = withdrawn["products"]
    assert cap["code"] == "CAP" and cap["active"] is False
    assert [v["sku"] for v in cap["variants"]] == ["CAP"]  # a valid Product, as last pushed
    (bob,) = withdrawn["customers"]
    assert bob["code"] == "BOB02" and bob["active"] is False
    sent_all(a)
    assert a.read()[1] == 0  # once
    assert "CAP" not in a.state.hashes("products")
    with erp.begin() as c:  # back in the ERP: pushed again, active
        c.execute(sa.text("INSERT INTO StkItem VALUES (4, 'CAP', '', 'Cap', NULL, NULL, 1, 3)"))
    a.read()
    ((_, (again,)),) = queued(a.state)
    assert again["code"] == "CAP" and again.get("active", True) is True
    a.close()


def test_nothing_is_withdrawn_when_a_query_returns_nothing_or_a_row_is_bad(
    tmp_path: Path, erp: sa.Engine
) -> None:
    """An empty catalogue is a broken query or an export that did not run, not a shop that
    sells nothing; a record that failed validation is not gone either."""
    a = agent(tmp_path)
    a.read()
    sent_all(a)
    with erp.begin() as c:
        c.execute(sa.text("UPDATE PriceList SET Price = -1 WHERE StockID = 3 AND List='Retail'"))
    reading, _ = a.read()
    assert reading.problems and queued(a.state) == []
    with erp.begin() as c:
        c.execute(sa.text("DELETE FROM StkItem"))
    a.read()
    assert queued(a.state) == []
    a.close()


# ------------------------------------------------------------------------------ CSV folder

CSV_PROFILE = """
name = "csv"
[files]
"""


def test_a_csv_export_folder_reads_like_the_database(tmp_path: Path) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "products.csv").write_text(
        "\ufeffproduct,title,sku,price,option_Size\nTEE,Tee,TEE-S,10.00,S\nTEE,Tee,TEE-M,10.00,M\n"
        "MUG,Mug,MUG,6.50,\n",
        encoding="utf-8",
    )
    (folder / "stock.csv").write_text("sku,warehouse,quantity\nMUG,JHB,4\n")
    config = write_setup(tmp_path, "unused", "http://127.0.0.1:9", 1, profile=CSV_PROFILE, extra="")
    text = config.read_text().replace('url = "unused"', 'folder = "export"')
    config.write_text(text)
    a = Agent(load_config(config))
    reading = poll(a.source, a.profile, a.state, samples=5)
    tee, mug = reading.samples["products"]
    assert [v["options"] for v in tee["variants"]] == [{"Size": "S"}, {"Size": "M"}]
    assert mug["variants"] == [{"sku": "MUG", "price": "6.5", "stock": {"JHB": 4}}]
    a.state.put(reading.change, 100)
    assert poll(a.source, a.profile, a.state).change.records["products"] == []
    (folder / "products.csv").write_text("sku,title,price,colour\nX,X,1,red\n")
    with pytest.raises(AgentError, match=r"products.csv: .*returns column 'colour'"):
        poll(a.source, a.profile, a.state)
    (folder / "products.csv").unlink()
    with pytest.raises(AgentError, match=r"products\.csv: missing"):
        poll(a.source, a.profile, a.state)
    a.close()
