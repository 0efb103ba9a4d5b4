"""The console's queue page beside a big backlog: time to first byte of the landing page,
of an error-text search and of two searches of the search box (a SKU prefix matching
18,000 items, one letter), signed in, with `stockyard serve --no-workers` (uvicorn,
SQLite) on 127.0.0.1; `GET /readyz` of the same server is the reference (what any request
costs there), so the ratios mean something on a shared machine.

The database is a real SQLite file: one client with three channels and a source; each
channel's head failed with a 1.3 KB traceback (three lanes blocked), 26 non-blocking items
failed with a few distinct errors (29 failures), then `--queued` items queued (by default
100,000: nine in ten blocking, behind the failed heads, the rest non-blocking) and
`--done` finished items of history. Requests alternate between the three URLs, one at a
time on one keep-alive connection (http.client), `--requests` of each.

Time to first byte: from sending the request to reading the status line and headers (the
console renders the whole page before it answers, so this is the page's server time).

Run: .venv/bin/python -m bench.console [--queued 100000] [--done 0] [--requests 60]
        [--failed 0] [--other 0]   # more failed items (tracebacks); another client's SKUs
     .venv/bin/python -m bench.console --profile   # the page's hot spots, in-process
"""

from __future__ import annotations

import argparse
import cProfile
import http.client
import pstats
import statistics
import tempfile
import time
from pathlib import Path

from systems.net import free_port

from bench.api import SRC, start_server
from stockyard.accounts import Principal
from stockyard.application import DEFAULT_CLIENT, Application
from stockyard.engine import Outcome, Queue, Request
from stockyard.tenancy import Tenancy

ROOT = Principal("bench", platform_admin=True)
EMAIL, PASSWORD = "operator@bench.example", "a long bench password"
TRACE = (
    "Traceback (most recent call last):\n"
    + "\n".join(
        f'  File "/srv/shop/connector/module_{k}.py", line {k * 7}, in call\n    return post(x)'
        for k in range(18)
    )
    + "\nValueError: price must be positive"
)
ERRORS = ("Timeout after 30 s", "HTTP 502 from the shop", "No product found to update", TRACE)


def _fail_all(queue: Queue, worker: str, errors: tuple[str, ...]) -> int:
    """Claim what can run and fail it, errors in turn: how many failed."""
    jobs = queue.claim(worker, 1000)
    now = time.time()
    queue.settle(
        worker,
        [Outcome(j, "permanent", now, errors[k % len(errors)]) for k, j in enumerate(jobs)],
    )
    return len(jobs)


def build(url: str, queued: int, done: int, failed_extra: int = 0, other: int = 0) -> int:
    """The bench database; the client's id. `failed_extra` more non-blocking items fail
    with a traceback each (the failures by error group the newest 20,000); `other` items
    of another client hold SKUs in the searched range (they must not make it broad)."""
    application = Application.init(url)
    queue, service = application.queue, application.service
    tenancy = Tenancy(queue.db)
    client = tenancy.client_id(DEFAULT_CLIENT)
    channels = [
        tenancy.add_connection(client, "channel", "demo", f"Shop {name}").id
        for name in ("Retail", "Trade", "Outlet")
    ]
    tenancy.add_connection(client, "source", "demo", "ERP")
    worker = "bench-builder"
    queue.register_worker(worker, "bench", 0)
    if done:  # history first: what a retention window keeps
        for start in range(0, done, 1000):
            queue.enqueue(
                client,
                [Request("sync_order", {"n": n}) for n in range(start, min(done, start + 1000))],
            )
            while jobs := queue.claim(worker, 1000):
                queue.settle(worker, [Outcome(j, "done", time.time()) for j in jobs])
    queue.enqueue(
        client,
        [
            Request("add_product", {"product_id": k}, c, (f"SKU-BAD-{k}",))
            for k, c in enumerate(channels)
        ],
    )
    queue.enqueue(client, [Request("add_order", {"n": n}, refs=(f"O-{n}",)) for n in range(26)])
    failed = _fail_all(queue, worker, (TRACE,) * 3 + ERRORS * 7)
    for start in range(0, failed_extra, 1000):
        n = min(failed_extra, start + 1000) - start
        queue.enqueue(
            client,
            [Request("add_order", {"n": k}, refs=(f"F-{k}",)) for k in range(start, start + n)],
        )
        traces = tuple(TRACE.replace("positive", f"positive ({k})") for k in range(50))
        while jobs := queue.claim(worker, 1000):
            now = time.time()
            outcomes = [Outcome(j, "permanent", now, traces[j.id % 50]) for j in jobs]
            queue.settle(worker, outcomes)
            failed += len(jobs)
    if other:
        stranger = tenancy.ensure_client("bench-other")
        for start in range(0, other, 1000):
            # All in the range of the client's narrow search (`?q=sku-0001`, 180 items).
            refs = [(f"SKU-0001{k % 10}-{k}",) for k in range(start, min(other, start + 1000))]
            queue.enqueue(stranger, [Request("add_order", {}, refs=r) for r in refs])
    blocking = queued * 9 // 10
    for start in range(0, queued, 1000):
        batch = []
        for n in range(start, min(queued, start + 1000)):
            if n < blocking:
                sku = f"SKU-{n % 5000:05d}"
                batch.append(Request("update_variant", {"variant_id": n}, channels[n % 3], (sku,)))
            else:
                batch.append(Request("sync_order", {"n": n}, refs=(f"O-{n}",)))
        queue.enqueue(client, batch)
    queue.stop_worker(worker)
    service.set_member(ROOT, client, EMAIL, "operator", PASSWORD)
    print(f"built: {queued:,} queued, {failed} failed, {done:,} done (client {client})")
    queue.db.close()
    return client


def ttfb(conn: http.client.HTTPConnection, path: str, cookie: str) -> float:
    start = time.perf_counter()
    conn.request("GET", path, headers={"Cookie": cookie})
    response = conn.getresponse()
    took = time.perf_counter() - start
    response.read()
    if response.status != 200:
        raise SystemExit(f"{path}: HTTP {response.status}")
    return took


def report(name: str, times: list[float], reference: float) -> None:
    ms = sorted(t * 1000 for t in times)
    p50 = statistics.median(ms)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    print(
        f"{name:<28} p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  max {ms[-1]:7.1f} ms"
        f"  ({p50 / reference:5.1f}x /readyz)"
    )


def profile(url: str, client: int) -> None:
    """The landing page and the search rendered in-process under cProfile."""
    from fastapi.testclient import TestClient

    from stockyard.web.app import create_app
    from stockyard.web.settings import ApiSettings

    application = Application.open(url)
    app = create_app(application.service, ApiSettings(rate_per_second=0))
    token = application.service.login(EMAIL, PASSWORD)
    with TestClient(app) as http_client:
        http_client.cookies.set("stockyard_session", token)
        paths = [
            f"/console/clients/{client}/items",
            f"/console/clients/{client}/items?error=timeout",
        ]
        for path in paths:
            http_client.get(path)  # warm
            profiler = cProfile.Profile()
            profiler.enable()
            for _ in range(10):
                http_client.get(path)
            profiler.disable()
            print(f"\n--- {path} (10 requests)")
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--queued", type=int, default=100_000)
    parser.add_argument("--done", type=int, default=0, help="finished items of history")
    parser.add_argument("--requests", type=int, default=60, help="of each URL")
    parser.add_argument("--failed", type=int, default=0, help="more failed items, each a traceback")
    parser.add_argument("--other", type=int, default=0, help="another client's items, same SKUs")
    parser.add_argument("--profile", action="store_true", help="cProfile, in-process")
    args = parser.parse_args()
    print(f"server code: {SRC}")
    folder = Path(tempfile.mkdtemp(prefix="stockyard-bench-console-"))
    url = f"sqlite:///{folder}/console.db"
    client = build(url, args.queued, args.done, args.failed, args.other)
    if args.profile:
        profile(url, client)
        return
    port = free_port()
    server = start_server(url, port)
    try:
        application = Application.open(url)
        token = application.service.login(EMAIL, PASSWORD)
        application.close()
        cookie = f"stockyard_session={token}"
        conn = http.client.HTTPConnection("127.0.0.1", port)
        urls = {
            "queue page": f"/console/clients/{client}/items",
            "error-text search": f"/console/clients/{client}/items?error=price+must",
            # 18,000 items match: the list's count stops at 10,000 ("10,000+").
            "SKU prefix search": f"/console/clients/{client}/items?q=sku-0",
            "one-letter search": f"/console/clients/{client}/items?q=s",
            # 180 items; with --other, 100,000 references of another client in range.
            "narrow SKU prefix": f"/console/clients/{client}/items?q=sku-0001",
            "/readyz": "/readyz",
        }
        for path in urls.values():  # warm: first requests compile templates and queries
            for _ in range(3):
                ttfb(conn, path, cookie)
        times: dict[str, list[float]] = {name: [] for name in urls}
        for _ in range(args.requests):
            for name, path in urls.items():
                times[name].append(ttfb(conn, path, cookie))
        reference = statistics.median(times["/readyz"]) * 1000
        for name, found in times.items():
            report(name, found, reference)
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
