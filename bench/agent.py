"""The agent and its protocol (issue 20), measured against a reference run in the same
process (the machine is noisy: ratios, not absolute figures).

claims: the in-process claim path beside agent connections. --clients clients each hold
  --items queued no-op items on a channel of their own; --agents of them also have an
  agent connection (remote runner) holding --orders queued add_order items, and
  --idle-clients more clients have nothing but such an agent connection. One worker
  process (the normal Worker, no-op handlers, as bench/_procs.py; its claims counted)
  drains the channels' items. Reference, alternating rounds, fresh databases of the same
  shape: the same connections plain, their add_orders queued but not due for a week
  ("plain, later": the same rows to list), and with no add_orders at all ("none").
  Then the idle worker: claim transactions per second while only agent items are
  queued, against an empty queue.
    python -m bench.agent claims [--backend sqlite|postgres] [--rounds 3]

protocol: orders through claim -> settle over the real HTTP API (the application served
  by uvicorn on 127.0.0.1 in a process of its own, no workers), run by the agent's own
  code (stockyard.agent.orders: OrderCalls, work_once, SqlWriter into a SQLite ERP of
  the agent tests' shape), claims of 1, 10 and 50; reference: the same number of
  add_order items on a plain source connection run by an in-process Worker whose
  handler does the same (the order read from the store, the same SqlWriter write, the
  code stored). Then the cost of idle long polls: --idle-agents agents on connections of
  their own each waiting in claim (wait 20) for --idle-seconds, the server's write
  transactions counted.
    python -m bench.agent protocol [--orders 300] [--rounds 2]

read: the agent's read side on a Sage 200 Evolution-shaped SQLite database (the tables
  of tests/support/erp_databases.py, rows of our own: --variants stock items, 4 a style,
  two price lists, stock in two warehouses, customers) read through the shipped
  sage200-evolution profile: the first poll (everything new), an unchanged poll (every
  record assembled and hash-compared, nothing queued), a poll after --changed of the
  variants changed price (spread over as many products), against the floor: the same
  queries executed and fetched bare in one transaction. Pushes counted at a stand-in
  Stockyard (one request per batch, records per batch).
    python -m bench.agent read [--variants 10000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bench._procs import ROOT, databases, load, open_queue, rows, scalar
from stockyard.engine import Queue, Request

log = logging.getLogger("bench.agent")
WEEK = 7 * 86400.0
SECRET = "whsec_" + "YmVuY2gtYWdlbnQtc2VjcmV0LWJlbmNoLWFnZW50IQ=="


def median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


# ====================================================================== worker process


def worker_main(argv: list[str]) -> None:
    """`python -m bench.agent _worker URL COUNTS`: bench._procs' worker (no-op handlers),
    its claim transactions, the items they started and the statements they ran counted
    (by query name) and written to COUNTS as JSON every 0.2 s and at exit."""
    from bench._procs import _handler
    from stockyard.engine.handlers import HandlerRegistry
    from stockyard.engine.worker import Worker, WorkerSettings
    from stockyard.flows.catalog import default_instructions
    from stockyard.tenancy import Tenancy

    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("counts")
    parser.add_argument("--poll", type=float, default=WorkerSettings().poll_interval)
    args = parser.parse_args(argv)
    handler_args = argparse.Namespace(
        handler="noop", sleep=0.0, log=None, probe_clients="", probe_connections=""
    )
    registry = HandlerRegistry()
    registry.register_all(default_instructions().names(), _handler(handler_args))
    queue = open_queue(args.url)
    counts: Counter[str] = Counter()
    in_claim = threading.local()
    claims = queue._claims
    for name in ("one", "all", "execute"):
        original = getattr(claims.sql, name)

        def counted(cur: Any, query: str, *a: Any, _o: Any = original, **k: Any) -> Any:
            if getattr(in_claim, "on", False):
                counts[f"statement {query}"] += 1  # in a claim or a settle (which claims)
            return _o(cur, query, *a, **k)

        setattr(claims.sql, name, counted)

    def wrap(method: str) -> None:
        original = getattr(queue, method)

        def run(*a: Any, **k: Any) -> Any:
            in_claim.on = method in ("claim", "settle")
            try:
                result = original(*a, **k)
            finally:
                in_claim.on = False
            counts[method] += 1
            if method == "claim":
                counts["claimed"] += len(result)
                counts["empty claims"] += not result
            if method == "settle":
                counts["claimed by settles"] += len(result[0])
            return result

        setattr(queue, method, run)

    for method in ("claim", "settle", "next_due"):
        wrap(method)

    def dump() -> None:
        tmp = f"{args.counts}.tmp"
        Path(tmp).write_text(json.dumps(dict(counts)))
        os.replace(tmp, args.counts)

    def dumper() -> None:
        while True:
            time.sleep(0.2)
            dump()

    threading.Thread(target=dumper, daemon=True).start()
    settings = WorkerSettings(poll_interval=args.poll)
    worker = Worker(queue, registry, settings, connection=Tenancy(queue.db).connection)
    asyncio.run(worker.run(install_signals=True))
    dump()


class CountedWorker:
    """One `_worker` process; `counts()` what it has done so far."""

    def __init__(self, queue: Queue, folder: Path, *args: str) -> None:
        self.queue = queue
        self.file = folder / f"counts-{time.monotonic_ns()}.json"
        before = self._alive()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.agent", "_worker", queue.db.url, str(self.file), *args],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}"},
        )
        deadline = time.monotonic() + 60
        while self._alive() <= before:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.stop()
                raise RuntimeError("the worker process did not start")
            time.sleep(0.02)

    def _alive(self) -> int:
        return int(
            scalar(
                self.queue,
                "SELECT count(*) FROM workers WHERE stopped_at IS NULL AND remote = 0",
            )
        )

    def counts(self) -> Counter[str]:
        try:
            return Counter(json.loads(self.file.read_text()))
        except (FileNotFoundError, ValueError):
            return Counter()

    def stop(self) -> Counter[str]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return self.counts()


# ====================================================================== 1. claims


def build_claims(url: str, variant: str, args: argparse.Namespace) -> tuple[Queue, list[int]]:
    """The variant's database: every client's channel items, and the add_orders of the
    agent connections ("agent": remote runners; "later": plain, due in a week; "none":
    plain, no add_orders). The channels' ids."""
    from stockyard.tenancy import Tenancy

    queue = open_queue(url)
    tenancy = Tenancy(queue.db)
    channels: list[int] = []
    for n in range(args.clients + args.idle_clients):
        client = tenancy.ensure_client(f"C{n}")
        if n < args.clients:
            shop = tenancy.add_connection(client, "channel", "demo", f"shop {n}").id
            channels.append(shop)
            if args.items:
                queue.enqueue(client, [Request("sync_order", {}, shop)] * args.items)
        if n < args.agents or n >= args.clients:
            erp = tenancy.add_connection(
                client, "source", "agent", f"ERP {n}", remote=variant == "agent"
            ).id
            if variant != "none":
                delay = WEEK if variant == "later" else 0.0
                orders = [
                    Request("add_order", {"order_id": k}, erp, delay=delay)
                    for k in range(args.orders)
                ]
                queue.enqueue(client, orders)
    return queue, channels


def drain(
    queue: Queue, channels: list[int], total: int, folder: Path
) -> tuple[float, Counter[str]]:
    """Items/s the worker drains the channels' items at (first start to last finish);
    its counts, and how many add_orders it ran ("add_orders run": 0 unless "none")."""
    ids = ",".join(str(c) for c in channels)
    worker = CountedWorker(queue, folder)
    try:
        deadline = time.monotonic() + 300
        while True:
            done = scalar(
                queue,
                f"SELECT count(*) FROM items WHERE status = 'done' AND connection_id IN ({ids})",
            )
            if done >= total:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {done} of {total} drained")
            time.sleep(0.05)
    finally:
        counts = worker.stop()
    ((first, last),) = rows(
        queue,
        f"SELECT min(started_at), max(finished_at) FROM items WHERE connection_id IN ({ids})",
    )
    counts["add_orders run"] = scalar(
        queue, "SELECT count(*) FROM items WHERE instruction = 'add_order' AND status <> 'queued'"
    )
    return total / (float(last) - float(first)), counts


def idle_claims(queue: Queue, folder: Path, seconds: float) -> Counter[str]:
    worker = CountedWorker(queue, folder)
    time.sleep(1.0)  # started, first claims made
    before = worker.counts()
    time.sleep(seconds)
    after = worker.counts()
    worker.stop()
    return after - before


def claims_main(args: argparse.Namespace) -> None:
    logging.getLogger("stockyard.worker").setLevel(logging.ERROR)
    variants = ["agent", "later", "none"]
    rates: dict[str, list[float]] = {v: [] for v in variants}
    per_claim: dict[str, Counter[str]] = {v: Counter() for v in variants}
    total = args.clients * args.items
    print(
        f"claims, {args.backend}: {args.clients} clients x {args.items} channel items"
        f" ({total:,}); {args.agents} of them + {args.idle_clients} more clients with an"
        f" agent connection holding {args.orders} add_orders"
        ";"
        f" {load()}"
    )
    with databases(args.backend) as new_db, tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            order = variants if r % 2 == 0 else variants[::-1]
            for variant in order:
                queue, channels = build_claims(new_db(), variant, args)
                rate, counts = drain(queue, channels, total, Path(tmp))
                queue.db.close()
                rates[variant].append(rate)
                per_claim[variant] += counts
                print(
                    f"  round {r + 1} {variant:5}: {rate:9,.0f} items/s;"
                    f" {counts['claim']:,} claims ({counts['empty claims']:,} empty),"
                    f" {counts['claimed']:,} + {counts['claimed by settles']:,} by settles;"
                    f" add_orders run in-process: {counts['add_orders run']:,}"
                    f" ({load()})"
                )
        print(f"{'variant':8} {'median items/s':>15} {'vs plain-later':>15} {'vs none':>9}")
        for v in variants:
            m = median(rates[v])
            print(
                f"{v:8} {m:15,.0f} {m / median(rates['later']):14.2f}x"
                f" {m / median(rates['none']):8.2f}x"
            )
        print("statements of the claim and settle transactions, per 100 items claimed:")
        for v in variants:
            c = per_claim[v]
            statements = {k[10:]: n for k, n in c.items() if k.startswith("statement ")}
            top = sorted(statements.items(), key=lambda kv: -kv[1])[:6]
            items = max(c["claimed"] + c["claimed by settles"], 1)
            print(
                f"  {v:5}: {sum(statements.values()) * 100 / items:.1f};"
                f" {c['claim'] + c['settle']:,} transactions; "
                + ", ".join(f"{k} {n * 100 / items:.1f}" for k, n in top)
            )
        # The idle worker: only agent items queued, against an empty queue.
        idle_args = argparse.Namespace(**{**vars(args), "items": 0})
        for name, variant in (("only agent items queued", "agent"), ("empty queue", "none")):
            queue, _ = build_claims(new_db(), variant, idle_args)
            idle = idle_claims(queue, Path(tmp), args.idle_seconds)
            queue.db.close()
            s = args.idle_seconds
            ran = sum(n for k, n in idle.items() if k.startswith("statement "))
            print(
                f"idle worker, {name}: {idle['claim'] / s:.1f} claim transactions/s"
                f" ({idle['claimed']} items claimed, {ran / max(idle['claim'], 1):.1f}"
                f" statements a claim), {idle['next_due'] / s:.1f} next_due/s over {s:g} s"
            )


# ====================================================================== 2. protocol


def serve_main(argv: list[str]) -> None:
    """`python -m bench.agent _serve URL PORT COUNTS`: the API alone (no workers) on
    127.0.0.1:PORT; its write transactions and engine claims counted into COUNTS."""
    import uvicorn

    from stockyard.application import Application
    from stockyard.web.app import create_app
    from stockyard.web.settings import ApiSettings

    url, port, counts_file = argv[0], int(argv[1]), argv[2]
    app = Application.open(url)
    counts: Counter[str] = Counter()
    db, queue = app.db, app.queue
    write = db.write

    def counted_write(*a: Any, **k: Any) -> Any:
        counts["write transactions"] += 1
        return write(*a, **k)

    db.write = counted_write  # type: ignore[method-assign]
    claim_remote = queue.claim_remote

    def counted_claim(*a: Any, **k: Any) -> Any:
        counts["claim_remote"] += 1
        return claim_remote(*a, **k)

    queue.claim_remote = counted_claim  # type: ignore[method-assign]

    def dumper() -> None:
        while True:
            time.sleep(0.1)
            Path(f"{counts_file}.tmp").write_text(json.dumps(dict(counts)))
            os.replace(f"{counts_file}.tmp", counts_file)

    threading.Thread(target=dumper, daemon=True).start()
    api = create_app(app.service, ApiSettings(rate_per_second=0))
    uvicorn.run(api, host="127.0.0.1", port=port, log_level="warning")


class Server:
    def __init__(self, url: str, folder: Path) -> None:
        from systems.net import free_port

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.file = folder / "server-counts.json"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.agent", "_serve", url, str(self.port), str(self.file)],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}"},
        )
        import httpx

        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{self.url}/healthz", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.stop()
                    raise RuntimeError("the server did not start") from None
                time.sleep(0.1)

    def counts(self) -> Counter[str]:
        time.sleep(0.25)  # the dumper's next write
        try:
            return Counter(json.loads(self.file.read_text()))
        except (FileNotFoundError, ValueError):
            return Counter()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Shop:
    """Stockyard's side of the protocol bench: the application on a SQLite file, a
    client with a channel, agent connections and a plain source, orders to add."""

    def __init__(self, url: str) -> None:
        from stockyard.accounts import Principal
        from stockyard.application import Application

        self.app = Application.init(url)
        self.root = Principal("bench", platform_admin=True)
        svc = self.app.service
        self.client = svc.create_client(self.root, "merchant").id
        tenancy = self.app.tenancy
        self.channel = tenancy.add_connection(self.client, "channel", "demo", "shop").id
        self.plain = tenancy.add_connection(self.client, "source", "bench", "plain ERP").id
        self.agents: list[int] = []
        self.numbers = iter(range(1, 10**9))

    def agent(self) -> int:
        view = self.app.service.create_connection(
            self.root,
            self.client,
            "source",
            "agent",
            f"agent {len(self.agents)}",
            {},
            {"webhook_secret": SECRET},
        )
        self.agents.append(view.id)
        return view.id

    def add_orders(self, connection: int, count: int) -> list[int]:
        from stockyard.catalog.models import Order

        store = self.app.catalog
        requests = []
        for _ in range(count):
            n = next(self.numbers)
            order = Order.model_validate(
                {
                    "remote_id": f"W-{n}",
                    "number": f"{n}",
                    "currency": "ZAR",
                    "customer": {"code": "ACME01", "email": "buyer@acme.example"},
                    "lines": [
                        {"sku": "TEE-S", "quantity": 2, "price": "10.00"},
                        {"sku": "MUG", "quantity": 1, "price": "6.50"},
                    ],
                    "total": "26.50",
                }
            )
            order_id, _ = store.upsert_order(self.client, self.channel, order)
            requests.append(
                Request("add_order", {"order_id": order_id}, connection, idempotency_key=f"o{n}")
            )
        return self.app.queue.enqueue(self.client, requests)

    def span(self, ids: list[int]) -> float:
        """First claim to last settle of these items (items' started_at, finished_at)."""
        ((first, last),) = rows(
            self.app.queue,
            "SELECT min(started_at), max(finished_at) FROM items WHERE id >= ? AND id <= ?",
            min(ids),
            max(ids),
        )
        return float(last) - float(first)

    def done(self, ids: list[int]) -> int:
        return int(
            scalar(
                self.app.queue,
                "SELECT count(*) FROM items WHERE status = 'done' AND id >= ? AND id <= ?",
                min(ids),
                max(ids),
            )
        )


def sql_writer(folder: Path) -> Any:
    """The agent tests' own ERP (tests/support/agent_env.py) and its profile's SqlWriter."""
    from tests.support.agent_env import make_erp, write_setup

    from stockyard.agent.orders import SqlWriter
    from stockyard.agent.profile import load_profile

    erp = folder / f"erp-{time.monotonic_ns()}"
    erp.mkdir()
    engine = make_erp(f"sqlite:///{erp}/erp.db")
    write_setup(erp, "sqlite:///x", "http://127.0.0.1:9", 1)
    profile = load_profile("tiny.toml", erp)
    assert profile.orders is not None
    return SqlWriter(engine, profile.orders, profile.settings)


def agent_run(
    shop: Shop, server: Server, folder: Path, count: int, batch: int
) -> tuple[float, Counter[str]]:
    """Orders/s through claim -> write -> settle by the agent's own loop, and the
    server's counts meanwhile."""
    from stockyard.agent.client import Client
    from stockyard.agent.orders import OrderCalls, Writer, work_once

    connection = shop.agent()
    ids = shop.add_orders(connection, count)
    client = Client(server.url, connection, SECRET)
    calls = OrderCalls(client)
    writer = Writer(sql_writer(folder).create_order)
    before = server.counts()
    began = time.perf_counter()
    settled = 0
    while settled < count:
        settled += work_once(calls, writer, wait=0, limit=batch)
    wall = time.perf_counter() - began
    client.close()
    after = server.counts()
    assert shop.done(ids) == count, "not every order is done"
    counts = after - before
    counts["wall ms"] = round(wall * 1000)
    return count / shop.span(ids), counts


def reference_run(shop: Shop, folder: Path, count: int) -> float:
    """The same orders run by an in-process Worker on a plain source connection: its
    add_order handler reads the order, runs the same write step, stores the code."""
    from stockyard.engine.handlers import Context, HandlerRegistry
    from stockyard.engine.worker import Worker, WorkerSettings
    from stockyard.flows.orders import _order_body

    writer = sql_writer(folder)
    store = shop.app.catalog

    def add_order(ctx: Context) -> None:
        stored = store.order(ctx.job.client_id, ctx.payload["order_id"])
        code = writer.create_order(_order_body(stored), ctx.job.idempotency_key)
        store.update_order(stored.id, source_code=code, state="confirmed")

    registry = HandlerRegistry()
    registry.register("add_order", add_order)
    ids = shop.add_orders(shop.plain, count)
    worker = Worker(
        shop.app.queue, registry, WorkerSettings(), connection=shop.app.tenancy.connection
    )
    asyncio.run(worker.run(stop_when_idle=True))
    assert shop.done(ids) == count, "not every reference order is done"
    return count / shop.span(ids)


def idle_polls(shop: Shop, server: Server, agents: int, seconds: float) -> Counter[str]:
    """`agents` agents (their own connections) waiting in claim (wait 20) for `seconds`."""
    from stockyard.agent.client import Client
    from stockyard.agent.orders import OrderCalls

    stop = threading.Event()
    requests: Counter[str] = Counter()

    def wait_for_work(connection: int) -> None:
        client = Client(server.url, connection, SECRET)
        calls = OrderCalls(client)
        while not stop.is_set():
            calls.claim(10, 20)
            requests["claims"] += 1
        client.close()

    connections = [shop.agent() for _ in range(agents)]
    threads = [threading.Thread(target=wait_for_work, args=(c,)) for c in connections]
    for t in threads:
        t.start()
    time.sleep(1.0)  # every agent is waiting
    before = server.counts()
    time.sleep(seconds)
    after = server.counts()
    stop.set()
    for t in threads:
        t.join(30)
    return (after - before) + requests


def protocol_main(args: argparse.Namespace) -> None:
    logging.getLogger("stockyard.worker").setLevel(logging.ERROR)
    logging.getLogger("stockyard.agent").setLevel(logging.WARNING)
    batches = [int(b) for b in args.batches.split(",")]
    print(f"protocol: {args.orders} orders a run, claims of {batches}; {load()}")
    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        url = f"sqlite:///{folder / 'stockyard.db'}"
        shop = Shop(url)
        server = Server(url, folder)
        try:
            for r in range(args.rounds):
                for batch in batches:
                    rate, c = agent_run(shop, server, folder, args.orders, batch)
                    results.setdefault(f"agent, claims of {batch}", []).append(rate)
                    print(
                        f"  round {r + 1} agent, claims of {batch:2}: {rate:7,.0f} orders/s;"
                        f" server: {c['write transactions'] / args.orders:.2f} write"
                        f" transactions and {c['claim_remote'] / args.orders:.2f} engine"
                        f" claims an order ({load()})"
                    )
                    rate = reference_run(shop, folder, args.orders)
                    results.setdefault("in-process worker", []).append(rate)
                    print(f"  round {r + 1} in-process worker:  {rate:7,.0f} orders/s ({load()})")
            reference = median(results["in-process worker"])
            print(f"{'run':22} {'median orders/s':>16} {'vs in-process':>14}")
            for name, values in results.items():
                m = median(values)
                print(f"{name:22} {m:16,.0f} {m / reference:13.2f}x")
            c = idle_polls(shop, server, args.idle_agents, args.idle_seconds)
            per = args.idle_agents * args.idle_seconds
            print(
                f"idle long polls: {args.idle_agents} agents waiting {args.idle_seconds:g} s:"
                f" {c['write transactions'] / per:.2f} write transactions/s and"
                f" {c['claim_remote'] / per:.2f} engine claims/s per waiting agent"
                f" ({c['claims']} claim requests answered meanwhile)"
            )
        finally:
            server.stop()
            shop.app.close()


# ====================================================================== 3. read


STYLE_VARIANTS = (("BLK", "Black"), ("WHT", "White")), (("M", "Medium"), ("L", "Large"))


def sage_erp(url: str, variants: int, customers: int) -> Any:
    """Evolution's tables (tests/support/erp_databases.py) with `variants` stock items:
    styles of 2 colours x 2 sizes, a Retail and a Trade price each, stock in JHB and CPT."""
    import datetime as dt

    import sqlalchemy as sa
    from tests.support.erp_databases import _sage_tables

    meta = sa.MetaData()
    t = _sage_tables(meta)
    engine = sa.create_engine(url)
    meta.create_all(engine)
    styles = math.ceil(variants / 4)
    modified = dt.datetime(2026, 1, 1)
    with engine.begin() as db:
        db.execute(
            t["WhseMst"].insert(),
            [
                {"WhseLink": 1, "Code": "JHB", "Name": "Johannesburg DC", "DefaultWhse": 1},
                {"WhseLink": 2, "Code": "CPT", "Name": "Cape Town store", "DefaultWhse": 0},
            ],
        )
        db.execute(
            t["_etblInvSegType"].insert(),
            [
                {"idInvSegType": i, "cDescription": d}
                for i, d in ((1, "Style"), (2, "Colour"), (3, "Size"))
            ],
        )
        db.execute(
            t["_etblInvSegGroup"].insert(),
            [
                {"idInvSegGroup": i, "iInvSegTypeID": i, "cDescription": f"group {i}"}
                for i in (1, 2, 3)
            ],
        )
        values = [
            {"idInvSegValue": 1, "iInvSegGroupID": 2, "cValue": "BLK", "cDescription": "Black"},
            {"idInvSegValue": 2, "iInvSegGroupID": 2, "cValue": "WHT", "cDescription": "White"},
            {"idInvSegValue": 3, "iInvSegGroupID": 3, "cValue": "M", "cDescription": "Medium"},
            {"idInvSegValue": 4, "iInvSegGroupID": 3, "cValue": "L", "cDescription": "Large"},
        ]
        values += [
            {
                "idInvSegValue": 10 + s,
                "iInvSegGroupID": 1,
                "cValue": f"S{s:05d}",
                "cDescription": f"Style {s}",
            }
            for s in range(styles)
        ]
        db.execute(t["_etblInvSegValue"].insert(), values)
        db.execute(
            t["_etblPriceListName"].insert(),
            [
                {"IDPriceListName": 1, "cName": "Retail", "cDescription": "Shop", "bDefault": 1},
                {"IDPriceListName": 2, "cName": "Trade", "cDescription": "Trade", "bDefault": 0},
            ],
        )
        items, prices, stock = [], [], []
        for n in range(variants):
            style, colour, size = n // 4, (n // 2) % 2, n % 2
            link = n + 1
            code = f"S{style:05d}-{STYLE_VARIANTS[0][colour][0]}-{STYLE_VARIANTS[1][size][0]}"
            items.append(
                {
                    "StockLink": link,
                    "Code": code,
                    "Description_1": f"Style {style} {code}",
                    "Description_2": "100% cotton",
                    "ItemGroup": "APPAREL",
                    "Bar_Code": f"600{link:010d}",
                    "ServiceItem": 0,
                    "ItemActive": 1,
                    "fNetMass": 0.2,
                    "iInvSegValue1ID": 10 + style,
                    "iInvSegValue2ID": 1 + colour,
                    "iInvSegValue3ID": 3 + size,
                    "StkItem_dModifiedDate": modified,
                }
            )
            for list_id, price in ((1, 199.0), (2, 149.0)):
                prices.append(
                    {
                        "iPriceListNameID": list_id,
                        "iStockID": link,
                        "iWarehouseID": 0,
                        "fInclPrice": price,
                        "fExclPrice": round(price / 1.15, 4),
                        "_etblPriceListPrices_dModifiedDate": modified,
                    }
                )
            stock += [
                {"WHWhseID": 1, "WHStockLink": link, "WHQtyOnHand": 10.0 + n % 7},
                {"WHWhseID": 2, "WHStockLink": link, "WHQtyOnHand": float(n % 3)},
            ]
        db.execute(t["StkItem"].insert(), items)
        db.execute(t["_etblPriceListPrices"].insert(), prices)
        db.execute(t["WhseStk"].insert(), stock)
        db.execute(
            t["Client"].insert(),
            [
                {
                    "DCLink": c + 1,
                    "Account": f"ACC{c:05d}",
                    "Name": f"Customer {c}",
                    "Contact_Person": f"Buyer {c}",
                    "EMail": f"buyer{c}@example.com",
                    "Telephone": "011 555 0100",
                    "iARPriceListNameID": 2,
                    "Credit_Limit": 5000.0,
                    "AccountTerms": 1,
                    "On_Hold": 0,
                }
                for c in range(customers)
            ],
        )
    return engine


def change_prices(engine: Any, variants: int, fraction: float, round_no: int) -> int:
    """Change the Retail price of `fraction` of the variants, one a product (style), the
    products spread over the catalog; how many products changed."""
    import sqlalchemy as sa

    styles = math.ceil(variants / 4)
    changed = max(1, round(variants * fraction))
    step = max(styles // changed, 1)
    links = [(s * step % styles) * 4 + 1 for s in range(changed)]
    with engine.begin() as db:
        db.execute(
            sa.text(
                "UPDATE _etblPriceListPrices SET fInclPrice = :p"
                " WHERE iStockID = :s AND iPriceListNameID = 1"
            ),
            [{"p": 199.0 + round_no + 1, "s": s} for s in links],
        )
    return len(set(links))


class StandIn:
    """A stand-in for Stockyard's inbound routes: 200 to every push, each counted."""

    def __init__(self) -> None:
        self.pushes: list[tuple[str, int]] = []  # (path, records)
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = json.loads(raw)
                records = next((len(v) for v in body.values() if isinstance(v, list)), 1)
                stand_in.pushes.append((self.path, records))
                data = b'{"queued": []}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    began = time.perf_counter()
    result = fn()
    return time.perf_counter() - began, result


def bare_reads(source: Any) -> int:
    """The floor: the profile's queries, executed and fetched in one read transaction."""
    n = 0
    with source.snapshot():
        for section in ("products", "prices", "stock", "customers"):
            n += len(source.rows(section, None))
    return n


def raw_reads(engine: Any, profile: Any, settings: dict[str, Any]) -> int:
    """Lower still: the same SQL through the driver, no record building at all."""
    import sqlalchemy as sa

    n = 0
    with engine.connect() as conn:
        for section in ("products", "prices", "stock", "customers"):
            statement = sa.text(getattr(profile, section).query)
            params = {k: settings[k] for k in statement.compile().params if k in settings}
            n += len(conn.execute(statement, params).all())
    return n


@contextmanager
def profiled(enabled: bool, label: str) -> Iterator[None]:
    if not enabled:
        yield
        return
    import cProfile
    import pstats

    prof = cProfile.Profile()
    prof.enable()
    try:
        yield
    finally:
        prof.disable()
        print(f"--- profile: {label} (cumulative, top 15)")
        pstats.Stats(prof).sort_stats("cumulative").print_stats(15)


def read_main(args: argparse.Namespace) -> None:
    from stockyard.agent.changes import poll
    from stockyard.agent.client import Client
    from stockyard.agent.outbox import State
    from stockyard.agent.profile import load_profile, settings
    from stockyard.agent.read import SqlSource
    from stockyard.agent.send import deliver

    logging.getLogger("stockyard.agent").setLevel(logging.WARNING)
    profile = load_profile("sage200-evolution", Path("."))
    opts = settings(profile, {}, "bench")
    print(
        f"read: {args.variants:,} variants ({math.ceil(args.variants / 4):,} products),"
        f" {args.customers:,} customers, sage200-evolution profile, SQLite; {load()}"
    )
    stand_in = StandIn()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/evolution.db"
        began = time.perf_counter()
        engine = sage_erp(url, args.variants, args.customers)
        print(f"  built in {time.perf_counter() - began:.1f} s")
        source = SqlSource(url, profile, opts)
        state = State(Path(tmp) / "state.db")
        client = Client(stand_in.url, 1, SECRET)

        def cycle() -> tuple[Any, int]:
            reading = poll(source, profile, state)
            return reading, state.put(reading.change, 100)

        _floor_s, n_rows = timed(lambda: bare_reads(source))
        with profiled(args.profile, "first poll"):
            first_s, (reading, queued) = timed(cycle)
        send_s, _delivery = timed(lambda: deliver(state, client))
        first_pushes = list(stand_in.pushes)
        print(
            f"  first poll: {first_s:.2f} s for {reading.read.get('products', 0):,} products"
            f" and {reading.read.get('customers', 0):,} customers ({n_rows:,} rows);"
            f" {queued} batches queued; sent in {send_s:.2f} s: {len(first_pushes)} requests,"
            f" {sum(r for _, r in first_pushes):,} records"
            f" (largest {max((r for _, r in first_pushes), default=0)})"
        )
        floors, raws, unchanged, changed, news = [], [], [], [], []
        for r in range(args.rounds):
            f, _n = timed(lambda: bare_reads(source))
            floors.append(f)
            raw, _ = timed(lambda: raw_reads(source.engine, profile, opts))
            raws.append(raw)
            with profiled(args.profile and r == 0, "unchanged poll"):
                u, (same, q) = timed(cycle)
            assert q == 0 and not any(same.change.records.values()), "an unchanged poll queued"
            unchanged.append(u)
            products = change_prices(engine, args.variants, args.changed, r)
            stand_in.pushes.clear()
            with profiled(args.profile and r == 0, "poll after a change"):
                c, (_after, q) = timed(cycle)
            deliver(state, client)
            changed.append(c)
            pushed = sum(n for _, n in stand_in.pushes)
            requests = len(stand_in.pushes)
            news.append((products, pushed, requests, q))
            print(
                f"  round {r + 1}: bare reads {f * 1000:.0f} ms (driver only {raw * 1000:.0f} ms),"
                f" unchanged poll {u * 1000:.0f} ms ({u / f:.1f}x),"
                f" {products} products changed: poll {c * 1000:.0f} ms ({c / f:.1f}x),"
                f" {pushed} records pushed in {requests} requests ({load()})"
            )
        floor = median(floors)
        print(
            f"medians: bare reads {floor * 1000:.0f} ms (driver only {median(raws) * 1000:.0f} ms);"
            f" unchanged poll {median(unchanged) * 1000:.0f} ms = {median(unchanged) / floor:.2f}x"
            f" the bare reads; poll with {args.changed:.0%} changed"
            f" {median(changed) * 1000:.0f} ms = {median(changed) / floor:.2f}x"
        )
        per = [p / max(c, 1) for c, p, _, _ in news]
        print(
            f"pushes per changed product: {min(per):.2f}-{max(per):.2f};"
            f" requests per 100 changed: {[round(q * 100 / max(c, 1), 2) for c, _, q, _ in news]}"
        )
        print(f"(first poll was {first_s / floor:.1f}x the bare reads)")
        client.close()
        source.close()
        state.close()
        engine.dispose()
    stand_in.stop()


# ======================================================================== main


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_worker":
        worker_main(sys.argv[2:])
        return
    if len(sys.argv) > 1 and sys.argv[1] == "_serve":
        serve_main(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="part", required=True)
    c = sub.add_parser("claims")
    c.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    c.add_argument("--clients", type=int, default=50)
    c.add_argument("--items", type=int, default=400, help="channel items per client")
    c.add_argument("--agents", type=int, default=25, help="of the clients, with an agent")
    c.add_argument("--idle-clients", type=int, default=50, help="clients with only an agent")
    c.add_argument("--orders", type=int, default=20, help="queued add_orders per agent")
    c.add_argument("--rounds", type=int, default=3)
    c.add_argument("--idle-seconds", type=float, default=5.0)
    p = sub.add_parser("protocol")
    p.add_argument("--orders", type=int, default=300)
    p.add_argument("--batches", default="1,10,50")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--idle-agents", type=int, default=10)
    p.add_argument("--idle-seconds", type=float, default=10.0)
    r = sub.add_parser("read")
    r.add_argument("--variants", type=int, default=10_000)
    r.add_argument("--customers", type=int, default=1_000)
    r.add_argument("--changed", type=float, default=0.01)
    r.add_argument("--rounds", type=int, default=3)
    r.add_argument("--profile", action="store_true", help="cProfile the polls")
    args = parser.parse_args()
    {"claims": claims_main, "protocol": protocol_main, "read": read_main}[args.part](args)


if __name__ == "__main__":
    main()
