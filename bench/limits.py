"""Per-connection limits (issue 22) on PostgreSQL with 4 worker processes: a limited
connection L never exceeds its limits, and an unlimited connection F of the same client
runs at full speed beside it, in one run.

Each item is an HTTP call (an async handler of bench/_procs.py, asyncio streams) to a
receiver on 127.0.0.1 in this process (asyncio in a thread), which holds each request
(L's --hold, F's --f-hold) and records, per connection, arrivals, ends and how many were
in flight. L is limited to 5 running / 20 per second, burst 1 (`Queue.set_limits`); its
hold of 250 ms means that 20 a second alone would keep 5 in flight, so both limits are at
work. Phases, alternating: F alone (--f items); L and F together (--l items on L, and a
second later --f items on F); ... and F alone once more. Reported: L's most requests in
flight, L's most arrivals (and most claims, from items.started_at) in any sliding
one-second window, and F's throughput beside L against alone.

Run: python -m bench.limits [--l 300] [--f 3000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import logging
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field

from bench._procs import Workers, databases, load, open_queue, rows, scalar
from stockyard.engine import Limits, Queue, Request
from stockyard.tenancy import Tenancy


@dataclass
class Receiver:
    """The remote systems: an HTTP/1.0 server that holds each request a while."""

    holds: dict[int, float]
    default_hold: float
    arrivals: dict[int, list[float]] = field(default_factory=lambda: defaultdict(list))
    ends: dict[int, list[float]] = field(default_factory=lambda: defaultdict(list))
    inflight: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    most: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    port: int = 0

    def start(self) -> None:
        ready = threading.Event()
        self.loop = asyncio.new_event_loop()

        async def serve() -> None:
            server = await asyncio.start_server(self._handle, "127.0.0.1", 0, backlog=1024)
            self.port = server.sockets[0].getsockname()[1]
            ready.set()
            await server.serve_forever()

        self.thread = threading.Thread(
            target=lambda: self.loop.run_until_complete(serve()), daemon=True
        )
        self.thread.start()
        ready.wait()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await reader.readuntil(b"\r\n\r\n")
            conn = int(line.split(b" ")[1].split(b"/")[1])
            self.arrivals[conn].append(time.time())
            self.inflight[conn] += 1
            self.most[conn] = max(self.most[conn], self.inflight[conn])
            try:
                await asyncio.sleep(self.holds.get(conn, self.default_hold))
            finally:
                self.inflight[conn] -= 1
            writer.write(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
            self.ends[conn].append(time.time())
        finally:
            writer.close()

    def reset(self) -> None:
        def clear() -> None:
            self.arrivals.clear()
            self.ends.clear()
            self.most.clear()

        self.loop.call_soon_threadsafe(clear)
        time.sleep(0.05)


def most_in_window(times: list[float], window: float = 1.0) -> int:
    """The most of `times` in any half-open interval [t, t + window)."""
    ordered = sorted(times)
    return max(
        (bisect.bisect_left(ordered, t + window) - i for i, t in enumerate(ordered)), default=0
    )


def wait_all_done(queue: Queue, total: int, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while scalar(queue, "SELECT count(*) FROM items WHERE status = 'done'") < total:
        if time.monotonic() > deadline:
            raise RuntimeError("the items did not finish")
        time.sleep(0.05)


def main() -> None:
    logging.getLogger("stockyard.worker").setLevel(logging.ERROR)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--l", type=int, default=300, help="items on the limited connection")
    parser.add_argument("--f", type=int, default=3000, help="items on the unlimited one")
    parser.add_argument("--hold", type=float, default=0.25, help="L's seconds at the receiver")
    parser.add_argument("--f-hold", type=float, default=0.05, help="F's seconds there")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2, help="phases of F beside L")
    args = parser.parse_args()
    with databases("postgres") as new_db:
        queue = open_queue(new_db())
        tenancy = Tenancy(queue.db)
        client = tenancy.ensure_client("merchant")
        limited = tenancy.add_connection(client, "channel", "demo", "L").id
        free = tenancy.add_connection(client, "channel", "demo", "F").id
        queue.set_limits(client, limited, Limits(max_running=5, per_second=20, burst=1))
        receiver = Receiver({limited: args.hold}, args.f_hold)
        receiver.start()
        env = {"BENCH_RECEIVER": f"127.0.0.1:{receiver.port}"}
        print(f"postgres, {args.workers} worker processes, {load()}")
        total = 0
        most_running = most_arrivals = most_claims = 0
        f_rates: dict[str, list[float]] = defaultdict(list)
        with Workers(queue, args.workers, ["--handler=http"], **env):
            time.sleep(2.0)  # every worker has heartbeated and knows its place
            for phase in ["alone", "beside"] * args.rounds + ["alone"]:
                receiver.reset()
                if phase == "beside":  # L first, in its stride when F comes
                    first_l = queue.enqueue(
                        client, [Request("sync_order", {}, limited) for _ in range(args.l)]
                    )[0]
                    l_began = time.time()
                    total += args.l
                    time.sleep(1.0)
                queue.enqueue(client, [Request("sync_order", {}, free) for _ in range(args.f)])
                began = time.time()
                total += args.f
                while len(receiver.ends[free]) < args.f:
                    time.sleep(0.01)
                f_span = max(receiver.ends[free]) - began
                f_rates[phase].append(args.f / f_span)
                line = f"{phase:6}: F {args.f:,} items in {f_span:.2f} s = {args.f / f_span:,.0f}/s"
                wait_all_done(queue, total)
                if phase == "beside":
                    l_span = max(receiver.ends[limited]) - l_began
                    claims = [
                        float(r[0])
                        for r in rows(
                            queue,
                            "SELECT started_at FROM items WHERE connection_id = ? AND id >= ?",
                            limited,
                            first_l,
                        )
                    ]
                    most_running = max(most_running, receiver.most[limited])
                    most_arrivals = max(most_arrivals, most_in_window(receiver.arrivals[limited]))
                    most_claims = max(most_claims, most_in_window(claims))
                    line += f"; L {args.l} items in {l_span:.1f} s = {args.l / l_span:.1f}/s"
                print(f"{line} ({load()})")
        alone = sum(f_rates["alone"]) / len(f_rates["alone"])
        beside = sum(f_rates["beside"]) / len(f_rates["beside"])
        print(
            f"L most in flight at the receiver: {most_running} (limit 5:"
            f" {'held' if most_running <= 5 else 'EXCEEDED'})"
        )
        held = "held" if max(most_arrivals, most_claims) <= 20 else "EXCEEDED"
        print(
            f"L most arrivals in any 1 s window: {most_arrivals}, most claims (started_at):"
            f" {most_claims} (limit 20: {held})"
        )
        print(
            f"F beside L {beside:,.0f}/s vs alone {alone:,.0f}/s (means of {len(f_rates['beside'])}"
            f" and {len(f_rates['alone'])} alternating phases): ratio {beside / alone:.2f}"
        )


if __name__ == "__main__":
    main()
