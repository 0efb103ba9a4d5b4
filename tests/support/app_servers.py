"""ASGI apps on 127.0.0.1, served by uvicorn servers this process starts once and lends
to one app at a time (issue 19).

Stopping a uvicorn server costs about 0.2 s whatever it served (its main loop notices
`should_exit` on a 0.1 s tick, then its shutdown sleeps a fixed 0.1 s before closing
connections). The WooCommerce and Magento doubles were served by a server of their own per
test, so some 160 tests spent about half their time in that teardown. Here a test still
gets a fresh double; only the listening server is reused. `lend(app)` yields the URL of an
idle server now answering with `app`; on exit it waits for the requests still running in
`app` (as the server's own shutdown did, so a test's last assertions see every request),
then the server answers nothing but 503 until it is lent again. A stray request of an
earlier test therefore never reaches a later test's double.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from systems.net import free_port

App = Any  # an ASGI application (Starlette's, FastAPI's)

_STOP_WAIT = 10.0  # seconds a lend's exit waits for its app's requests, as the join did


class _Server:
    def __init__(self) -> None:
        self.app: App | None = None
        self.running = 0  # requests inside `app`
        self.lock = threading.Lock()
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(
            self._dispatch,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="off",
            interface="asgi3",  # a bound method: uvicorn's guess would take it for ASGI 2
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True, name=self.url)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.01)
        if not self.server.started:
            raise RuntimeError(f"uvicorn did not start on {self.url}")

    def alive(self) -> bool:
        return self.thread.is_alive() and not self.server.should_exit

    async def _dispatch(self, scope: Any, receive: Any, send: Any) -> None:
        with self.lock:
            app = self.app
            if app is not None:
                self.running += 1
        if app is None:
            if scope["type"] == "http":
                headers = [(b"content-type", b"text/plain"), (b"connection", b"close")]
                await send({"type": "http.response.start", "status": 503, "headers": headers})
                await send({"type": "http.response.body", "body": b"no app served here now"})
            return
        try:
            await app(scope, receive, send)
        finally:
            with self.lock:
                self.running -= 1

    def settle(self) -> None:
        """Wait (bounded) for the requests running in the lent app, then lend it no more."""
        deadline = time.monotonic() + _STOP_WAIT
        while self.running and time.monotonic() < deadline:
            time.sleep(0.005)
        with self.lock:
            self.app = None


_idle: list[_Server] = []
_idle_lock = threading.Lock()


@contextmanager
def lend(app: App) -> Iterator[str]:
    """`app` served on 127.0.0.1 until exit: yields its base URL (http://127.0.0.1:PORT)."""
    server = None
    with _idle_lock:
        while _idle and server is None:
            candidate = _idle.pop()
            server = candidate if candidate.alive() else None
    if server is None:
        server = _Server()
    server.app = app
    try:
        yield server.url
    finally:
        server.settle()
        with _idle_lock:
            _idle.append(server)


@contextmanager
def serve_app(app: App) -> Iterator[str]:
    """`app` on a uvicorn server of its own, stopped on exit: for an app that must not
    outlive its test in any form (Stockyard's API on the test's database), where `lend`'s
    reuse would keep a server that answers 503 afterwards."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
