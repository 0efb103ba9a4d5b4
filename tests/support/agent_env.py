"""The agent's tests: a small Sage-like ERP database of their own (PROFILES' realistic
ones are tests/support/erp_databases.py), a profile for it, an agent config, and the real
Stockyard API served on a port fixed before it starts, so "Stockyard down" is a URL with
nothing listening and "Stockyard back" is the same URL answering."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import uvicorn
from systems.net import free_port

from stockyard.engine import ItemFilter
from tests.support.api_env import ApiEnv

SECRET = "whsec_" + "YWdlbnQtc2VjcmV0LWFnZW50LXNlY3JldC0xMjM0NQ=="

SCHEMA = [
    """CREATE TABLE StkItem (StockLink INTEGER PRIMARY KEY, Code VARCHAR(40), Grp VARCHAR(40),
       Description_1 VARCHAR(100), Size VARCHAR(10), Colour VARCHAR(20), ItemActive INTEGER,
       Modified INTEGER)""",
    "CREATE TABLE PriceList (StockID INTEGER, List VARCHAR(20), Price NUMERIC(18,4))",
    "CREATE TABLE WhseStk (StockID INTEGER, Whse VARCHAR(20), Qty NUMERIC(18,4))",
    """CREATE TABLE Client (DCLink INTEGER PRIMARY KEY, Account VARCHAR(20), Name VARCHAR(100),
       Email VARCHAR(100), Credit_Limit NUMERIC(18,2), Tier VARCHAR(20))""",
    """CREATE TABLE InvNum (AutoIndex INTEGER PRIMARY KEY, OrderNum VARCHAR(20),
       ExtOrderNum VARCHAR(50) UNIQUE, Account VARCHAR(20), Total NUMERIC(18,2))""",
    """CREATE TABLE InvLines (iInvoiceID INTEGER, LineNo INTEGER, Code VARCHAR(40),
       Qty NUMERIC(18,4), Price NUMERIC(18,4))""",
]

ITEMS = [
    # StockLink, Code, Grp, Description_1, Size, Colour, ItemActive, Modified
    (1, "TEE-S", "TEE", "Tee", "S", "Red", 1, 1),
    (2, "TEE-M", "TEE", "Tee", "M", "Red", 1, 1),
    (3, "MUG", "", "Mug", None, None, 1, 2),
    (4, "CAP", "", "Cap", None, None, 1, 3),
]


def make_erp(url: str) -> sa.Engine:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for ddl in SCHEMA:
            conn.execute(sa.text(ddl))
        conn.execute(
            sa.text("INSERT INTO StkItem VALUES (:a, :b, :c, :d, :e, :f, :g, :h)"),
            [dict(zip("abcdefgh", row, strict=True)) for row in ITEMS],
        )
        prices = [(i, "Retail", p) for i, p in ((1, 10), (2, 10), (3, 6.5), (4, 12))]
        prices += [(1, "Trade", 8), (2, "Trade", 8)]
        conn.execute(
            sa.text("INSERT INTO PriceList VALUES (:s, :l, :p)"),
            [{"s": s, "l": li, "p": p} for s, li, p in prices],
        )
        stock = [(1, "JHB", 5), (1, "CPT", 2), (2, "JHB", 7), (3, "JHB", 40), (4, "CPT", 1)]
        conn.execute(
            sa.text("INSERT INTO WhseStk VALUES (:s, :w, :q)"),
            [{"s": s, "w": w, "q": q} for s, w, q in stock],
        )
        conn.execute(
            sa.text("INSERT INTO Client VALUES (:i, :a, :n, :e, :c, :t)"),
            [
                {"i": 1, "a": "ACME01", "n": "Acme", "e": "buyer@acme.example", "c": 5000,
                 "t": "Trade"},
                {"i": 2, "a": "BOB02", "n": "Bob's", "e": None, "c": None, "t": None},
            ],
        )  # fmt: skip
    return engine


PROFILE = """
name = "tiny-sage"
description = "the agent tests' own Sage-like ERP"
sources = ["tests/support/agent_env.py: made up for the tests"]

[settings]
price_list = "Retail"
trade_list = "Trade"

[products]
query = '''
SELECT CASE WHEN i.Grp = '' THEN i.Code ELSE i.Grp END AS product,
       i.Description_1 AS title, i.Code AS sku, p.Price AS price,
       i.Size AS option_Size, i.Colour AS option_Colour, i.ItemActive AS active{cursor_column}
FROM StkItem i JOIN PriceList p ON p.StockID = i.StockLink AND p.List = :price_list
{cursor_where}
ORDER BY i.StockLink LIMIT :limit OFFSET :offset
'''
page_size = 2
{cursor_key}

[prices]
query = '''
SELECT i.Code AS sku, 'trade' AS tier, p.Price AS price
FROM PriceList p JOIN StkItem i ON i.StockLink = p.StockID WHERE p.List = :trade_list
'''

[stock]
query = '''
SELECT i.Code AS sku, w.Whse AS warehouse, w.Qty AS quantity
FROM WhseStk w JOIN StkItem i ON i.StockLink = w.StockID
'''

[customers]
query = '''
SELECT Account AS code, Name AS name, Email AS email, Credit_Limit AS credit_limit,
       lower(Tier) AS price_tier
FROM Client ORDER BY DCLink
'''

[orders]
find = "SELECT OrderNum FROM InvNum WHERE ExtOrderNum = :number"
write = [
  '''INSERT INTO InvNum (OrderNum, ExtOrderNum, Account, Total)
     VALUES ('SO' || :stockyard_id, :number, :customer_code, :total)''',
]
id = "SELECT AutoIndex FROM InvNum WHERE ExtOrderNum = :number"
lines = [
  '''INSERT INTO InvLines (iInvoiceID, LineNo, Code, Qty, Price)
     VALUES (:order_id, :line_no, :sku, :quantity, :price)''',
]
"""


def profile_text(cursor: bool = False) -> str:
    if not cursor:
        return PROFILE.format(cursor_column="", cursor_where="", cursor_key="")
    return PROFILE.format(
        cursor_column=", i.Modified AS changed",
        cursor_where="WHERE :cursor IS NULL OR i.Modified >= :cursor",
        cursor_key='cursor = "changed"',
    )


def write_setup(
    folder: Path,
    erp_url: str,
    stockyard_url: str,
    connection: int,
    cursor: bool = False,
    profile: str | None = None,
    extra: str = "",
) -> Path:
    """The profile, the secret file and agent.toml in `folder`; the config's path."""
    (folder / "tiny.toml").write_text(profile or profile_text(cursor))
    (folder / "secret").write_text(SECRET + "\n")
    config = folder / "agent.toml"
    config.write_text(
        f"""
[stockyard]
url = "{stockyard_url}"
connection = {connection}
secret_file = "secret"

[agent]
state = "state.db"
poll_seconds = 0.2

[erp]
url = "{erp_url}"
profile = "tiny.toml"
{extra}
"""
    )
    return config


class Served:
    """The real Stockyard API on a port chosen now; start/stop it at will."""

    def __init__(self, env: ApiEnv) -> None:
        self.env = env
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        config = uvicorn.Config(self.env.app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.01)
        assert self.server.started

    def stop(self) -> None:
        if self.server is not None and self.thread is not None:
            self.server.should_exit = True
            self.thread.join(10)
        self.server = self.thread = None


@contextmanager
def stockyard(tmp_path: Path, up: bool = True) -> Iterator[Served]:
    env = ApiEnv(f"sqlite:///{tmp_path}/stockyard.db")
    env.service.update_connection(
        env.root, env.a.id, env.a.source, secrets={"webhook_secret": SECRET}
    )
    served = Served(env)
    if up:
        served.start()
    try:
        yield served
    finally:
        served.stop()
        env.close()


def pushed(env: ApiEnv, instruction: str = "sync_product") -> list[dict[str, Any]]:
    """The payloads of the source's items of one instruction, in the order they were queued."""
    items = env.queue.list_items(ItemFilter(client_id=env.a.id), 1000)
    return [i.payload for i in sorted(items, key=lambda i: i.id) if i.instruction == instruction]
