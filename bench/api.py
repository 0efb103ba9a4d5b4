"""What the REST API costs over calling the queue in-process: `stockyard serve --no-workers`
(uvicorn, SQLite) against the same calls made directly, on the same machine in the same
run, in alternating rounds (the machine is shared: compare ratios and medians).

Per round: enqueue batches of 100 items with `Queue.enqueue` directly, then the same
batches as POSTs over HTTP with two real clients, each on one keep-alive connection:
httpx (what a Python script would use; its own work is about 0.4 ms a request on this
machine) and the standard library's http.client (about a tenth of that, so what remains
is the server's); then single-item POSTs timed one by one with each. The JSON bodies are
encoded once, as the direct side's requests are built once. Then lists, `GET /v1/me` and
`GET /healthz`.

The server runs the `stockyard` package this process imports, so the same script measures
another tree: PYTHONPATH=/tmp/other/src python -m bench.api (docs/benchmarks.md).
Run: python -m bench.api.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from systems.net import free_port

import stockyard
from stockyard.accounts import Principal
from stockyard.application import DEFAULT_CLIENT, Application
from stockyard.engine import ItemFilter, Request
from stockyard.tenancy import Tenancy

# The tree whose code the server runs: the one imported here.
SRC = Path(stockyard.__file__).resolve().parent.parent
ROOT_CALLER = Principal("bench", platform_admin=True)


def start_server(url: str, port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "stockyard",
            "serve",
            "--no-workers",
            "--rate-limit",
            "0",
            "--port",
            str(port),
            "--db",
            url,
        ],
        env={**os.environ, "PYTHONPATH": str(SRC)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("the server did not start")


class Plain:
    """http.client on one keep-alive connection: POST a JSON body, read the whole answer."""

    def __init__(self, port: int, token: str) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port)
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        self.conn.request("POST", path, body, self.headers)
        answer = self.conn.getresponse()
        return answer.status, answer.read()


def cpu_seconds(pid: int) -> float:
    """A process's CPU time so far, every thread (Linux's /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rate(n: int, fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    for _ in range(n):
        fn()
    return n / (time.perf_counter() - started)


def latencies(n: int, fn: Callable[[], object]) -> list[float]:
    out = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        out.append(time.perf_counter() - started)
    return sorted(out)


def p50_p99_ms(lat: list[float]) -> tuple[float, float]:
    return statistics.median(lat) * 1000, lat[int(len(lat) * 0.99)] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=15, help="alternating rounds")
    parser.add_argument("--batches", type=int, default=40, help="calls of 100 items a round")
    parser.add_argument("--singles", type=int, default=100, help="single-item POSTs a round")
    parser.add_argument("--verbose", action="store_true", help="print every round")
    parser.add_argument("--backlog", type=int, default=100_000, help="items behind the lists")
    args = parser.parse_args()
    print(f"server code: {SRC}")
    folder = Path(tempfile.mkdtemp(prefix="stockyard-bench-api-"))
    url = f"sqlite:///{folder}/api.db"
    application = Application.init(url)
    queue, service = application.queue, application.service
    client = Tenancy(queue.db).client_id(DEFAULT_CLIENT)
    _, token = service.create_key(ROOT_CALLER, client, "bench", "administrator")
    batch: list[dict[str, object]] = [
        {"instruction": "sync_order", "payload": {"n": n}} for n in range(100)
    ]
    requests = [Request("sync_order", {"n": n}) for n in range(100)]

    port = free_port()
    server = start_server(url, port)
    try:
        http = httpx.Client(
            base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {token}"}
        )
        plain = Plain(port, token)
        items_url = f"/v1/clients/{client}/items"
        bodies = {n: json.dumps({"items": batch[:n]}).encode() for n in (1, 100)}
        json_type = {"Content-Type": "application/json"}

        def with_httpx(n: int) -> Callable[[], None]:
            def post() -> None:
                r = http.post(items_url, content=bodies[n], headers=json_type)
                assert r.status_code == 201, r.text

            return post

        def with_plain(n: int) -> Callable[[], None]:
            def post() -> None:
                status, text = plain.post(items_url, bodies[n])
                assert status == 201, text

            return post

        clients = {"httpx": with_httpx, "http.client": with_plain}
        for _ in range(20):  # warm both sides: imports, caches, the connections
            queue.enqueue(client, requests)
            for post in clients.values():
                post(100)()
                post(1)()
        directs: list[float] = []
        # CPU seconds of the batch-100 phases: the bench process's for the direct calls;
        # the server's and the client's for each HTTP client. Unlike the rates, they
        # hardly move with the machine's other load.
        cpu = {name: 0.0 for name in ("direct", *clients)}
        rests: dict[str, list[float]] = {name: [] for name in clients}
        ratios: dict[str, list[float]] = {name: [] for name in clients}
        singles: dict[str, list[float]] = {name: [] for name in clients}
        for n in range(1, args.rounds + 1):
            started = time.process_time()
            direct = rate(args.batches, lambda: queue.enqueue(client, requests)) * 100
            cpu["direct"] += time.process_time() - started
            directs.append(direct)
            line = [f"round {n}: direct {direct:,.0f} items/s"]
            for name, post in clients.items():
                started, served = time.process_time(), cpu_seconds(server.pid)
                rest = rate(args.batches, post(100)) * 100
                cpu[name] += time.process_time() - started + cpu_seconds(server.pid) - served
                single = latencies(args.singles, post(1))
                rests[name].append(rest)
                ratios[name].append(rest / direct)
                singles[name].extend(single)
                p50, p99 = p50_p99_ms(single)
                line.append(
                    f"{name} {rest:,.0f} items/s ({rest / direct:.2f}x), single p50 {p50:.2f}"
                    f" p99 {p99:.2f} ms"
                )
            if args.verbose:
                print("; ".join(line))
        print(f"median of {args.rounds} rounds, direct {statistics.median(directs):,.0f} items/s:")
        for name in clients:
            p50, p99 = p50_p99_ms(sorted(singles[name]))
            print(
                f"  {name}: REST batch-100 {statistics.median(rests[name]):,.0f} items/s,"
                f" ratio {statistics.median(ratios[name]):.2f}x"
                f" (rounds {min(ratios[name]):.2f}-{max(ratios[name]):.2f});"
                f" single POST p50 {p50:.2f} ms, p99 {p99:.2f} ms;"
                f" CPU per batch direct/(server+client) {cpu['direct'] / cpu[name]:.2f}"
            )

        have = queue.count(ItemFilter(client))
        for _ in range(have, args.backlog, 1000):
            queue.enqueue(client, [Request("sync_order", {"n": n}) for n in range(1000)])
        queued = ItemFilter(client, statuses=("queued",), instructions=("sync_order",))
        direct_lat = latencies(300, lambda: service.items(ROOT_CALLER, queued, 50, None))
        http_lat = latencies(
            300,
            lambda: http.get(
                items_url, params={"status": "queued", "instruction": "sync_order", "limit": 50}
            ).raise_for_status(),
        )
        for name, lat in (("direct", direct_lat), ("HTTP", http_lat)):
            p50, p99 = p50_p99_ms(lat)
            print(f"list 50 of {args.backlog:,} queued, {name}: p50 {p50:.2f} ms, p99 {p99:.2f} ms")
        ratio = statistics.median(http_lat) / statistics.median(direct_lat)
        print(f"list over HTTP / direct (p50): {ratio:.1f}x")
        me = latencies(500, lambda: http.get("/v1/me").raise_for_status())
        health = latencies(500, lambda: http.get("/healthz").raise_for_status())
        print(
            f"GET /v1/me (key lookup + roles): p50 {statistics.median(me) * 1000:.2f} ms;"
            f" GET /healthz (no database): p50 {statistics.median(health) * 1000:.2f} ms"
        )
    finally:
        server.terminate()
        server.wait(10)
        queue.db.close()


if __name__ == "__main__":
    main()
