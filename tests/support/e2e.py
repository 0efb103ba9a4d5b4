"""What the end-to-end tests share (Tryton to Vendure, Shopify, WooCommerce, Magento, the
trade store): a fresh Stockyard on the test's own SQLite file with one client, connected
to the session's real Tryton as its product source and its fulfilment service, and the
waits and reads those tests make against a `stockyard worker` process. Each test keeps its
own channel connection, its own double or store, and its own assertions.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from systems.launch import TRYTON_ADMIN, TRYTON_DB, Running, tryton_client

from stockyard.accounts import Principal
from stockyard.application import Application
from stockyard.connectors.tryton.client import TrytonClient
from stockyard.engine import ItemFilter, Queue, Request
from stockyard.errors import PermanentError, TransientError
from stockyard.service import Stockyard
from stockyard.web.app import create_app
from stockyard.web.settings import ApiSettings
from tests.support.app_servers import serve_app

ADMIN = Principal("test", platform_admin=True)
T = TypeVar("T")
POLL_EVERY = 5  # seconds between Tryton's polls: short, so a change shows within a wait


def wait_for(check: Callable[[], T | None], what: str, timeout: float = 90.0) -> T:
    """Poll `check` until it answers something true; fail naming `what` otherwise."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            found = check()
        except (TransientError, PermanentError) as exc:  # a system restarting, say
            last = exc
        else:
            if found:
                return found
            last = found
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def _database(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'stockyard.db'}"


@dataclass
class Stack:
    """Stockyard on the test's database with one client, before any connection."""

    queue: Queue
    service: Stockyard
    client_id: int
    tryton: Running

    @classmethod
    def init(cls, tmp_path: Path, tryton: Running, client: str = "Acme") -> Stack:
        application = Application.init(_database(tmp_path))
        made = application.service.create_client(ADMIN, client)
        return cls(application.queue, application.service, made.id, tryton)

    def connect(
        self, kind: str, connector: str, name: str, settings: dict[str, Any], secret: Any
    ) -> int:
        return self.service.create_connection(
            ADMIN, self.client_id, kind, connector, name, settings, secret
        ).id

    def _tryton(self, kind: str, name: str, settings: dict[str, Any]) -> int:
        erp = {"url": self.tryton.url, "database": TRYTON_DB, "username": TRYTON_ADMIN[0]}
        return self.connect(
            kind, "tryton", name, {**erp, **settings}, {"password": TRYTON_ADMIN[1]}
        )

    def tryton_source(self, **settings: Any) -> int:
        """Tryton as the product source, polled every few seconds (plus `settings`)."""
        return self._tryton("source", "Tryton", {"poll_products_every": POLL_EVERY, **settings})

    def tryton_shipping(self) -> int:
        """Tryton as the fulfilment service: its shipments go back to the channels."""
        return self._tryton("fulfillment", "Tryton shipping", {"poll_fulfillments_every": 5})

    def init_channel(self, shop: int) -> None:
        # A new channel turns active after its first full sync.
        self.service.enqueue(ADMIN, self.client_id, [Request("init_channel", {}, shop)])

    def erp(self) -> TrytonClient:
        return tryton_client(self.tryton.url)

    def deployed(
        self, source: int, shop: int, erp: TrytonClient | None = None
    ) -> tuple[Queue, Stockyard, int, int, int, TrytonClient]:
        """The fields of `Deployed`, in order, for a test's own Deployment to start with."""
        return self.queue, self.service, self.client_id, source, shop, erp or self.erp()


@dataclass
class Deployed:
    """The ids of a deployment the tests wait on: its client, Tryton source and channel."""

    queue: Queue
    service: Stockyard
    client_id: int
    source_id: int
    shop_id: int
    erp: TrytonClient

    def items(self, **filters: Any) -> list[Any]:
        return self.queue.list_items(ItemFilter(self.client_id, **filters), limit=1000)

    def lanes(self) -> dict[int, Any]:
        """The client's lanes by their connection (lane) id."""
        return {v.lane_id: v for v in self.queue.lanes(self.client_id)}

    def failed_on_shop(self) -> Any:
        """The channel's first failed item, if any."""
        failed = self.items(connection_id=self.shop_id, statuses=("failed",))
        return failed[0] if failed else None

    def items_since(self, at: float, connection: int, status: str, ref: str) -> list[Any]:
        """The connection's items about `ref` (a product code, a SKU) in this status,
        created after `at`."""
        found = self.items(connection_id=connection, statuses=(status,), ref=ref)
        return [i for i in found if i.created_at and i.created_at > at]


def confirmed_sale(
    erp: TrytonClient, reference: str, fields: tuple[str, ...] = ("number", "state", "lines")
) -> dict[str, Any] | None:
    """The Tryton sale of a shop's order `reference` once confirmed (processing)."""
    found = erp.model(
        "sale.sale", "search_read", [("reference", "=", reference)], 0, 1, None, list(fields)
    )
    return dict(found[0]) if found and found[0]["state"] == "processing" else None


def wait_for_sale(
    erp: TrytonClient, reference: str, fields: tuple[str, ...] = ("number", "state", "lines")
) -> dict[str, Any]:
    """Until the shop's order `reference` is a confirmed Tryton sale: that sale."""
    return wait_for(
        lambda: confirmed_sale(erp, reference, fields),
        f"a confirmed Tryton sale for order {reference}",
    )


def sale_lines(erp: TrytonClient, sale: dict[str, Any]) -> list[dict[str, Any]]:
    return list(
        erp.model("sale.line", "read", sale["lines"], ["product", "quantity", "unit_price"])
    )


def api_server(tmp_path: Path) -> Iterator[Callable[[], str]]:
    """Stockyard's API on the test's database, on a real port in this process, started
    once the database exists (call the answer): where a double delivers its webhooks."""
    with ExitStack() as stack:

        def start() -> str:
            application = Application.open(_database(tmp_path))
            app = create_app(application.service, ApiSettings(rate_per_second=0))
            return stack.enter_context(serve_app(app))

        yield start
