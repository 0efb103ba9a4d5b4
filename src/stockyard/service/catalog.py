"""The catalog a client's sources filled: products, variants, orders, fulfillments; and
what the console shows around them: a product or order with its channels and queue
history, an item's catalog context, and finding any of it from what an operator typed."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from stockyard.engine import ItemFilter
from stockyard.engine.reads import MIN_PREFIX
from stockyard.errors import InvalidInput, NotFound
from stockyard.service.base import READ, ServiceBase

if TYPE_CHECKING:
    from stockyard.accounts import Principal
    from stockyard.catalog.store import (
        ProductRow,
        StoredCustomer,
        StoredFulfillment,
        StoredOrder,
        StoredProduct,
        VariantRow,
    )
    from stockyard.engine import Item, LaneView

HISTORY = 50  # queue items shown on a product's or order's page
SIBLINGS = 10  # other failures of an item's ref shown on its page
FOUND = 20  # rows per section of a search
MAX_QUERY = 200  # characters of a search: longer is no code, SKU or number
# Queue items of a search counted up to this, then "1,000+": the queue page, one click
# away, lists them; a broad prefix ("sk") must not count a client's whole history.
QUEUE_CAP = 1000
MAX_CHANGES = 30  # paths of a stale failure's diff
MAX_VALUE = 120  # characters of a value in that diff
# Refs of a product looked up for its history: its code and first SKUs (a product of
# 2,000 variants would otherwise cost 2,000 reads per page view).
MAX_HISTORY_REFS = 20
# Instructions whose failure a newer queued one of the same ref makes stale, besides those
# with a coalescing key (which say so by having one).
UPDATES = frozenset({"update_product", "update_variant"})


@dataclass(frozen=True, slots=True)
class ChannelState:
    """Where one channel stands with a product, derived from its link and the queue."""

    channel_id: int
    channel: str  # the connection's name
    remote_id: str | None  # the channel's id for the product, once it holds it
    state: str  # "on channel", "not on channel yet · add_product failed", ...
    status: str  # the status word the state is styled as (done, failed, queued, running, idle)
    item_id: int | None  # the queue item the state comes from


@dataclass(frozen=True, slots=True)
class ProductView:
    product: StoredProduct
    channels: list[ChannelState]
    variant_links: dict[int, dict[int, str]]  # variant id -> channel id -> remote id
    history: list[Item]
    connections: dict[int, str]  # connection id -> its name, for the history's items


@dataclass(frozen=True, slots=True)
class OrderView:
    order: StoredOrder
    channel: str
    fulfillments: list[StoredFulfillment]
    services: dict[int, str]  # fulfillment service id -> its name
    history: list[Item]
    connections: dict[int, str]  # connection id -> its name, for the history's items


@dataclass(frozen=True, slots=True)
class RefLink:
    """A ref of a queue item and the catalog page it names, if the catalog knows it."""

    ref: str
    kind: str | None  # "product", "order" or None
    id: int | None


@dataclass(frozen=True, slots=True)
class Change:
    path: str  # "variants.0.price"
    kind: str  # added, removed, changed
    old: str
    new: str


@dataclass(frozen=True, slots=True)
class ItemContext:
    """What the item page shows around an item: where it runs, what else failed like it,
    what the catalog knows of its refs and whether a newer update makes it stale."""

    connection: str | None
    connection_kind: str | None
    lane: LaneView | None
    is_head: bool
    refs: list[RefLink]
    sibling_ref: str | None
    siblings: list[Item]  # other failed items of `sibling_ref`, newest first
    sibling_count: int  # how many there are in all
    newer: Item | None  # a newer queued item of the same instruction and ref
    changes: list[Change] = field(default_factory=list)
    more_changes: int = 0  # changes beyond those listed


@dataclass(frozen=True, slots=True)
class SearchResult:
    query: str
    item: Item | None  # the queue item whose id was typed
    products: list[ProductRow]
    variants: list[VariantRow]
    orders: list[StoredOrder]
    customers: list[StoredCustomer]
    # Items with a reference beginning with the text (any case), counted up to QUEUE_CAP
    # + 1; digits are a reference exactly (`queue_exact`), as the queue page reads them.
    queue_items: int
    queue_exact: bool = False

    @property
    def queue_shown(self) -> int:
        """The count to show: QUEUE_CAP when more match (`queue_more`)."""
        return min(self.queue_items, QUEUE_CAP)

    @property
    def queue_more(self) -> bool:
        return self.queue_items > QUEUE_CAP

    @property
    def empty(self) -> bool:
        found = (self.products, self.variants, self.orders, self.customers)
        return self.item is None and not any(found) and not self.queue_items


class CatalogService(ServiceBase):
    def products(self, who: Principal, client_id: int, after: str, limit: int) -> list[ProductRow]:
        self._allow(who, client_id, READ)
        return self.store.list_products(client_id, after, limit)

    def product(self, who: Principal, client_id: int, product_id: int) -> StoredProduct:
        self._allow(who, client_id, READ)
        return self.store.product(client_id, product_id)

    def variants(self, who: Principal, client_id: int, after: str, limit: int) -> list[VariantRow]:
        self._allow(who, client_id, READ)
        return self.store.list_variants(client_id, after, limit)

    def orders(
        self, who: Principal, client_id: int, before: int | None, limit: int
    ) -> list[StoredOrder]:
        self._allow(who, client_id, READ)
        return self.store.list_orders(client_id, before, limit)

    def order(
        self, who: Principal, client_id: int, order_id: int
    ) -> tuple[StoredOrder, list[StoredFulfillment]]:
        self._allow(who, client_id, READ)
        order = self.store.order(client_id, order_id)
        return order, self.store.fulfillments(order.id)

    def fulfillments(
        self, who: Principal, client_id: int, before: int | None, limit: int
    ) -> list[StoredFulfillment]:
        self._allow(who, client_id, READ)
        return self.store.list_fulfillments(client_id, before, limit)

    # ------------------------------------------------------------------ console's views

    def product_view(self, who: Principal, client_id: int, product_id: int) -> ProductView:
        """A product with the channels that hold it (or should), and its queue history."""
        self._allow(who, client_id, READ)
        product = self.store.product(client_id, product_id)
        refs = list(dict.fromkeys((product.code, *product.skus)))[:MAX_HISTORY_REFS]
        history = self._history(client_id, refs)
        channels: list[ChannelState] = []
        variant_links: dict[int, dict[int, str]] = {}
        connections = self.tenancy.connections(client_id)
        for conn in connections:
            if conn.kind != "channel":
                continue
            link = self.store.links(conn.id, "product", [product.id]).get(product.id)
            mine = [i for i in history if i.connection_id == conn.id]
            channels.append(_channel_state(conn.id, conn.description, link, mine))
            held = self.store.links(conn.id, "variant", [v.id for v in product.variants])
            for variant_id, vl in held.items():
                variant_links.setdefault(variant_id, {})[conn.id] = vl.remote_id
        names = {c.id: c.description for c in connections}
        return ProductView(product, channels, variant_links, history, names)

    def order_view(self, who: Principal, client_id: int, order_id: int) -> OrderView:
        """An order with its fulfillments and the queue items that carried it."""
        self._allow(who, client_id, READ)
        order = self.store.order(client_id, order_id)
        names = {c.id: c.description for c in self.tenancy.connections(client_id)}
        fulfillments = self.store.fulfillments(order.id)
        refs = [order.order.remote_id]
        if order.order.number and order.order.number != order.order.remote_id:
            refs.append(order.order.number)

        def name(connection_id: int) -> str:
            return names.get(connection_id, f"connection {connection_id}")

        return OrderView(
            order,
            name(order.channel_id),
            fulfillments,
            {f.service_id: name(f.service_id) for f in fulfillments},
            self._history(client_id, refs),
            names,
        )

    def item_context(self, who: Principal, client_id: int, item: Item) -> ItemContext:
        """The item page's context of `item` (an item of this client, already read)."""
        self._allow(who, client_id, READ)
        connection = kind = None
        if item.connection_id is not None:
            try:
                conn = self.tenancy.connection(item.connection_id, client_id)
                connection, kind = conn.description, conn.kind
            except NotFound:
                connection = f"connection {item.connection_id} (removed)"
        lane = None
        if item.lane_id is not None:
            lane = self.queue.lanes_by_id([item.lane_id]).get(item.lane_id)
        is_head = lane is not None and lane.head_id == item.id
        ref = item.refs[0] if item.refs else None
        siblings: list[Item] = []
        count = 0
        if ref is not None:
            failed = ItemFilter(client_id, statuses=("failed",), ref=ref)
            siblings = [i for i in self.queue.list_items(failed, SIBLINGS + 1) if i.id != item.id]
            count = self.queue.count(failed) - (item.status == "failed")
        newer = self._newer_update(client_id, item)
        changes: list[Change] = []
        if newer is not None:
            changes = payload_changes(item.payload, newer.payload)
        return ItemContext(
            connection=connection,
            connection_kind=kind,
            lane=lane,
            is_head=is_head,
            refs=self._ref_links(client_id, item.refs[:MAX_HISTORY_REFS]),
            sibling_ref=ref,
            siblings=siblings[:SIBLINGS],
            sibling_count=count,
            newer=newer,
            changes=changes[:MAX_CHANGES],
            more_changes=max(len(changes) - MAX_CHANGES, 0),
        )

    def search(self, who: Principal, client_id: int, text: str) -> SearchResult:
        """What an operator may mean by `text`: a queue item's id, the beginning of a
        product code, SKU or customer code in any case (case-folded: "straße" finds
        STRASSE), an order's channel id or number exactly, the start of a ref of queue
        items in any case (digits: the ref exactly, as the queue page's search box reads
        them). Digits are tried as each, never only as an item id."""
        self._allow(who, client_id, READ)
        q = text.strip()
        if len(q) > MAX_QUERY:
            raise InvalidInput(f"q: at most {MAX_QUERY} characters (a code, SKU or number)")
        if not q:
            return SearchResult(q, None, [], [], [], [], 0)
        item = None
        digits = q.isascii() and q.isdigit() and len(q) <= 16 and int(q) >= 1
        if digits:
            found = self.queue.list_items(ItemFilter(client_id, ids=(int(q),)), 1)
            item = found[0] if found else None
        # The same items the queue page's search box lists for `q`: a number exactly
        # ("100" is not "1000"), text by its start.
        refs = ItemFilter(client_id, ref=q) if digits else ItemFilter(client_id, ref_prefix=q)
        channels = [c.id for c in self.tenancy.connections(client_id) if c.kind == "channel"]
        return SearchResult(
            query=q,
            item=item,
            products=self.store.products_with_prefix(client_id, q, FOUND),
            variants=self.store.variants_with_prefix(client_id, q, FOUND),
            orders=self.store.orders_named(client_id, channels, q, FOUND),
            customers=self.store.customers_with_prefix(client_id, q, FOUND),
            queue_items=self.queue.count(refs, QUEUE_CAP),
            # Under MIN_PREFIX characters the engine reads a prefix as the whole ref.
            queue_exact=digits or len(q.casefold()) < MIN_PREFIX,
        )

    # ------------------------------------------------------------------------- helpers

    def _history(self, client_id: int, refs: list[str]) -> list[Item]:
        """The newest items holding any of `refs`: one indexed read per ref (item_refs'
        key), each at most HISTORY long, merged."""
        found: dict[int, Item] = {}
        for ref in refs:
            for i in self.queue.list_items(ItemFilter(client_id, ref=ref), HISTORY):
                found[i.id] = i
        return sorted(found.values(), key=lambda i: -i.id)[:HISTORY]

    def _ref_links(self, client_id: int, refs: list[str]) -> list[RefLink]:
        """The catalog page each ref names: a product (by code or SKU), else an order (by
        a channel's id for it or its number); each an indexed probe."""
        if not refs:
            return []
        channels = [c.id for c in self.tenancy.connections(client_id) if c.kind == "channel"]
        links = []
        for ref in refs:
            product_id = self.store.product_of(client_id, ref)
            if product_id is not None:
                links.append(RefLink(ref, "product", product_id))
                continue
            orders = self.store.orders_named(client_id, channels, ref, 1)
            links.append(
                RefLink(ref, "order", orders[0].id) if orders else RefLink(ref, None, None)
            )
        return links

    def _newer_update(self, client_id: int, item: Item) -> Item | None:
        """A queued item newer than failed `item` that sends the same update again (same
        instruction, ref, connection and coalescing key): the failure may be stale."""
        if item.status != "failed" or not item.refs:
            return None
        try:
            coalesces = bool(self.queue.instructions[item.instruction].coalesce)
        except (KeyError, InvalidInput, NotFound):
            coalesces = False
        if not (coalesces or item.coalesce_key or item.instruction in UPDATES):
            return None
        flt = ItemFilter(
            client_id,
            statuses=("queued",),
            instructions=(item.instruction,),
            ref=item.refs[0],
            connection_id=item.connection_id,
        )
        for other in self.queue.list_items(flt, 10):
            if other.id > item.id and other.coalesce_key == item.coalesce_key:
                return other
        return None


def _channel_state(channel_id: int, name: str, link: Any, items: list[Item]) -> ChannelState:
    """Whether the channel holds the product (its link), and what of it is not done
    there: a failure first (a failed add_product is why a product is missing), then
    what runs, then what waits; `items` newest first."""
    remote_id = None if link is None else link.remote_id
    held = "on channel" if link is not None else "not on channel yet"
    for wanted in ("failed", "running", "queued"):
        found = next((i for i in items if i.status == wanted), None)
        if found is not None:
            state = f"{held} · {found.instruction} {found.status}"
            return ChannelState(channel_id, name, remote_id, state, found.status, found.id)
    return ChannelState(channel_id, name, remote_id, held, "done" if link else "idle", None)


def payload_changes(old: Any, new: Any) -> list[Change]:
    """What differs between two payloads, path by path (dicts by key, lists by index)."""
    before, after = _flatten(old), _flatten(new)
    changes = []
    for path in sorted(before.keys() | after.keys()):
        if path not in after:
            changes.append(Change(path, "removed", _short(before[path]), ""))
        elif path not in before:
            changes.append(Change(path, "added", "", _short(after[path])))
        elif before[path] != after[path]:
            changes.append(Change(path, "changed", _short(before[path]), _short(after[path])))
    return changes


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict) and data:
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(data, list) and data:
        out = {}
        for n, value in enumerate(data):
            out.update(_flatten(value, f"{prefix}.{n}" if prefix else str(n)))
        return out
    return {prefix or "(payload)": data}


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 1] + "…"
