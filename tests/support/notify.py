"""A mailbox and a webhook receiver on 127.0.0.1, and a queue wired to notify them."""

from __future__ import annotations

import email
import email.policy
import threading
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from systems.net import free_port

from stockyard.engine import Queue
from stockyard.engine.handlers import Context, HandlerRegistry
from stockyard.errors import PermanentError
from stockyard.notify import runner
from stockyard.notify.settings import NotifySettings
from stockyard.notify.subscriptions import Subscriptions
from stockyard.sealing import Sealer
from stockyard.tenancy import Tenancy
from tests.support.queues import drain


class Mailbox:
    """An SMTP server that keeps what it receives."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.messages: list[EmailMessage] = []
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]

    def start(self) -> Mailbox:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()


class Receiver:
    """An HTTP server that keeps the webhooks it receives and answers `status`."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.status = 200
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                outer.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(outer.status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        # A short poll: shutdown() waits for it (0.5 s by default, at every test's end).
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Env:
    def __init__(self, queue: Queue, mailbox: Mailbox, receiver: Receiver) -> None:
        self.queue = queue
        self.mailbox = mailbox
        self.receiver = receiver
        self.client = Tenancy(queue.db).client_id("default")
        self.sealer = Sealer([Sealer.new_key()])
        self.subs = Subscriptions(queue.db, lambda: self.sealer)
        self.settings = NotifySettings(
            smtp_host="127.0.0.1",
            smtp_port=mailbox.port,
            public_url="https://stockyard.test",
            digest_window=60.0,
            summary_hour=None,
        )
        add = Tenancy(queue.db).add_connection
        self.shop = add(self.client, "channel", "http", "Shop").id
        self.trade = add(self.client, "channel", "http", "Trade store").id
        self.warehouse = add(self.client, "fulfillment", "http", "Warehouse").id
        self.handlers = HandlerRegistry()
        self.handlers.register("update_product", self.fail_price)
        self.handlers.register("sync_fulfillment", self.fail_warehouse)
        runner.install(self.handlers, self.subs, self.settings)

    @staticmethod
    def fail_price(ctx: Context) -> None:
        raise PermanentError("price tier <trade> missing")

    @staticmethod
    def fail_warehouse(ctx: Context) -> None:
        raise PermanentError(f"warehouse answered 404 for {ctx.payload['remote_id']}")

    def subscribe(
        self,
        kind: str,
        target: str,
        events: list[str] | None = None,
        connections: list[int] | None = None,
    ) -> str | None:
        return self.subs.add(self.client, kind, target, events or [], connections or [])[1]

    def notify(self, now: float | None = None) -> list[int]:
        ids = runner.notify_due(self.queue, self.subs, self.settings, now)
        drain(self.queue, self.handlers)
        return ids
