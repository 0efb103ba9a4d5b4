"""Orders: channel -> sync_order -> catalog -> add_order (ERP) -> fulfill_order
(warehouse) -> sync_fulfillment (warehouse reports) -> sync_channel_fulfillments (channel).

All order items are non-blocking: one bad order never holds another back. Follow-ups carry
idempotency keys, so an order reported twice is created in the ERP and the warehouse once.
"""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal, InvalidOperation
from typing import Any

from stockyard.catalog.models import FulfillmentUpdate, Order, parse
from stockyard.catalog.store import StoredOrder, is_erased_record
from stockyard.connectors.base import OrderDeclined
from stockyard.engine import Request
from stockyard.engine.handlers import Context
from stockyard.errors import InvalidInput, NotFound, PermanentError, TransientError
from stockyard.flows import cursors
from stockyard.flows.base import Services, flow
from stockyard.flows.rules import rules_of
from stockyard.tenancy import Connection

# How long a shipment an agent pushed for a fulfilment Stockyard has not recorded yet
# waits before it is tried again (at least; sync_fulfillment's retry policy does the rest).
UNKNOWN_FULFILLMENT_RETRY = 30.0


def _order_body(stored: StoredOrder) -> dict[str, Any]:
    """What the ERP and the warehouse are sent: the order as the channel reported it."""
    body: dict[str, Any] = stored.order.model_dump(mode="json")
    body["id"] = stored.id
    if stored.source_code:
        body["source_code"] = stored.source_code
    return body


def order_request(channel: Connection, record: Any, parent_id: int | None = None) -> Request:
    """A sync_order for an order a channel reported; the same report twice is one item.

    A record that is only `{"remote_id": <str>}` names an order its connector could not
    read: its item reads it by id (get_order) and fails with the connector's reason, not
    with what a record without lines lacks."""
    digest = hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:16]
    remote_id = str(record.get("remote_id", "")) if isinstance(record, dict) else ""
    named = _named_only(record)
    return Request(
        "sync_order",
        {"order": record} if named is None else {"remote_id": named},
        channel.id,
        (remote_id,) if remote_id else (),
        idempotency_key=f"sync_order:{channel.id}:{remote_id}:{digest}",
        parent_id=parent_id,
    )


def _named_only(record: Any) -> str | None:
    if isinstance(record, dict) and set(record) == {"remote_id"}:
        remote_id = record["remote_id"]
        return remote_id if isinstance(remote_id, str) and remote_id else None
    return None


@flow
def sync_order(services: Services, ctx: Context) -> None:
    channel = services.connection(ctx, "channel")
    if "order" in ctx.payload:
        record = ctx.payload["order"]
    elif isinstance(ctx.payload.get("remote_id"), str):
        remote_id = ctx.payload["remote_id"]
        try:
            record = services.connector(channel, "channel").get_order(remote_id)
        except OrderDeclined as declined:
            _declined(services, ctx, channel, remote_id, declined)
            return
    else:
        raise InvalidInput("invalid payload: give the 'order' or the channel's 'remote_id'")
    order = _on_account(channel, parse(Order, record, "order"))
    order_id, _ = services.store.upsert_order(ctx.job.client_id, channel.id, order)
    if order.paid is not None:
        _queue_payment(ctx, channel, order.remote_id, order.paid)
    if services.store.order(ctx.job.client_id, order_id).source_code:
        return
    source = services.only_connection(
        ctx.job.client_id, "source", channel.settings.get("order_source"), "order_source", channel
    )
    if source is None:
        raise PermanentError("the client has no source connection to create the order in")
    refs = (order.remote_id,)
    ctx.enqueue("add_order", {"order_id": order_id}, source.id, refs, f"add_order:{order_id}")


def _on_account(channel: Connection, order: Order) -> Order:
    """Whether the order is on account is the channel's rules' word, never the record's:
    a price tier tells the ERP to book the sale on the account whose code the buyer
    carries (Tryton: that party's sale, at its prices, on its credit), and anyone who can
    push an order could claim one. So a `price_tier` in the record is dropped, and the
    tier is the one the channel's `group_prices` give the customer group the store reports
    (read backwards). A channel without `group_prices` has no trade customers: its orders
    are never on account, whatever group they name. On a channel with them, a group the
    rules do not map fails the order rather than let a sale at that group's prices reach
    the ERP as a guest's."""
    customer = order.customer
    if customer is None:
        return order
    rules = rules_of(channel)
    tier = None
    if customer.group is not None and rules.group_prices:
        tier = rules.tier_of(customer.group)
        if tier is None:
            raise PermanentError(
                f"order {order.number or order.remote_id}: the customer's group"
                f" {customer.group!r} is no price tier's in the channel rules of"
                f" {channel.description}: add it to rules.group_prices (tier -> group),"
                " then retry"
            )
    if customer.price_tier == tier:
        return order
    return order.model_copy(update={"customer": customer.model_copy(update={"price_tier": tier})})


def _queue_payment(ctx: Context, channel: Connection, remote_id: str, paid: Decimal) -> None:
    """The store recorded a payment (an order on account settled): check it and record
    it. Queued here, once the order is stored, so it never runs before the order exists;
    keyed by the amount, so each distinct paid value is checked once however often the
    order is reported."""
    amount = format(paid.normalize(), "f")  # "24.5" and "24.50" are one value
    ctx.enqueue(
        "update_order_instruction",
        {"remote_id": remote_id, "paid": str(paid)},
        channel.id,
        (remote_id,),
        f"update_order_instruction:{channel.id}:{remote_id}:{amount}",
    )


def _declined(
    services: Services, ctx: Context, channel: Connection, remote_id: str, why: OrderDeclined
) -> None:
    """An order the channel no longer wants fulfilled (cancelled, refunded, shipped by
    hand). Never taken: nothing to do, and a failed item would only ask an operator for a
    decision already made. Already in the ERP: the ERP may still ship it, so the item
    fails saying where to act; nothing is changed in the ERP on the channel's word."""
    try:
        held = services.store.order(
            ctx.job.client_id, services.store.order_id(channel.id, remote_id)
        )
    except NotFound:
        return
    if held.source_code:
        raise PermanentError(
            f"{why}; it reached the ERP as {held.source_code}: cancel or change it there"
        ) from None


def _order(services: Services, ctx: Context) -> StoredOrder:
    value = ctx.payload.get("order_id")
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput("invalid payload: 'order_id' must be an integer id")
    return services.store.order(ctx.job.client_id, value)


def _not_erased(stored: StoredOrder, where: str) -> None:
    """An order whose customer was erased on request has no name or address left to send:
    it fails saying so, rather than reach the ERP or the warehouse as a blank."""
    customer = stored.order.customer
    if customer is not None and is_erased_record(customer.model_dump(mode="json")):
        raise PermanentError(
            f"order {stored.order.number or stored.id}: its customer's personal data was"
            f" erased on request, so it cannot be sent to {where}; skip this item"
        )


@flow
def add_order(services: Services, ctx: Context) -> None:
    source = services.connection(ctx, "source")
    stored = _order(services, ctx)
    if not stored.source_code:
        _not_erased(stored, source.description)
        code = services.connector(source, "source").create_order(
            _order_body(stored), ctx.job.idempotency_key
        )
        services.store.update_order(stored.id, source_code=code, state="confirmed")
    channel = services.tenancy.connection(stored.channel_id, ctx.job.client_id)
    service = services.only_connection(
        ctx.job.client_id,
        "fulfillment",
        channel.settings.get("fulfillment"),
        "fulfillment",
        channel,
    )
    if service is not None:
        ctx.enqueue(
            "fulfill_order",
            {"order_id": stored.id},
            service.id,
            (stored.order.remote_id,),
            f"fulfill_order:{stored.id}",
        )


@flow
def fulfill_order(services: Services, ctx: Context) -> None:
    service = services.connection(ctx, "fulfillment")
    stored = _order(services, ctx)
    if not stored.source_code:
        raise PermanentError(f"order {stored.id} has no ERP code yet: add_order must run first")
    if any(f.service_id == service.id for f in services.store.fulfillments(stored.id)):
        return
    _not_erased(stored, service.description)
    remote_id = services.connector(service, "fulfillment").create_fulfillment(
        _order_body(stored), ctx.job.idempotency_key
    )
    services.store.add_fulfillment(ctx.job.client_id, stored.id, service.id, remote_id, "open")


@flow
def sync_fulfillment(services: Services, ctx: Context) -> None:
    service = services.connection(ctx, "fulfillment")
    update = parse(FulfillmentUpdate, ctx.payload, "fulfillment update")
    store = services.store
    try:
        fulfillment = store.fulfillment_by_remote(service.id, update.remote_id)
    except NotFound:
        if getattr(services.connectors.get(service.connector), "remote", False):
            # An agent remembers a fulfilment when it answers fulfill_order, before that
            # answer reaches Stockyard (a settle lost or not landed yet): its shipment can
            # come first. Wait for the answer; the retries' end fails it for good.
            raise TransientError(
                f"fulfillment {update.remote_id} is not recorded yet on connection"
                f" {service.id}: Stockyard records it when the agent's answer to its"
                " fulfill_order arrives; tried again until then",
                retry_after=UNKNOWN_FULFILLMENT_RETRY,
            ) from None
        raise
    store.update_fulfillment(fulfillment.id, update.state, update.tracking)
    stored = store.order(ctx.job.client_id, fulfillment.order_id)
    if update.state == "complete":
        store.update_order(stored.id, state="fulfilled")
    ctx.enqueue(
        "sync_channel_fulfillments",
        {"fulfillment_id": fulfillment.id},
        stored.channel_id,
        (stored.order.remote_id,),
    )


@flow
def sync_channel_fulfillments(services: Services, ctx: Context) -> None:
    channel = services.connection(ctx, "channel")
    value = ctx.payload.get("fulfillment_id")
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput("invalid payload: 'fulfillment_id' must be an integer id")
    fulfillment = services.store.fulfillment(ctx.job.client_id, value)
    stored = services.store.order(ctx.job.client_id, fulfillment.order_id)
    body = {
        "id": str(fulfillment.id),
        "state": fulfillment.state,
        "tracking": None if fulfillment.tracking is None else fulfillment.tracking.model_dump(),
    }
    services.connector(channel, "channel").push_fulfillment(
        stored.order.remote_id, body, ctx.job.idempotency_key
    )


def _order_to_pay(services: Services, ctx: Context) -> StoredOrder:
    """The order by Stockyard's id, or by the channel's id ("remote_id") of the item's
    channel connection."""
    if "order_id" in ctx.payload or "remote_id" not in ctx.payload:
        return _order(services, ctx)
    remote_id = ctx.payload["remote_id"]
    if not isinstance(remote_id, str) or not remote_id:
        raise InvalidInput("invalid payload: 'remote_id' must be the channel's order id")
    channel = services.connection(ctx, "channel")
    return services.store.order(ctx.job.client_id, services.store.order_id(channel.id, remote_id))


@flow
def update_order_instruction(services: Services, ctx: Context) -> None:
    """Mark an order paid; the paid amount must match the order's total exactly. A
    mismatch (the trade store's classic) fails this item only, naming both sums."""
    stored = _order_to_pay(services, ctx)
    try:
        paid = Decimal(str(ctx.payload.get("paid")))
    except InvalidOperation:
        raise InvalidInput("invalid payload: 'paid' must be an amount such as \"12.50\"") from None
    if not paid.is_finite() or paid != stored.order.total:
        raise PermanentError(
            f"order {stored.order.number or stored.id}: paid {paid} does not match the order"
            f" total {stored.order.total} {stored.order.currency}"
        )
    services.store.update_order(stored.id, paid=str(paid), state=stored.state)


@flow
def pull_orders(services: Services, ctx: Context) -> None:
    channel = services.connection(ctx, "channel")
    with cursors.Pull(services.store, channel.id, "orders", ctx.job.id) as pull:
        page = services.connector(channel, "channel").fetch_orders(pull.start)
        for record in page.records:
            # A record carrying `paid` gets its update_order_instruction from its
            # sync_order, once the order is stored (_queue_payment).
            ctx.follow_ups.append(order_request(channel, record, ctx.job.id))
        pull.advance(page.cursor)


@flow
def pull_fulfillments(services: Services, ctx: Context) -> None:
    """Ask a fulfillment service that cannot push what changed; each change to one of our
    fulfillments becomes a sync_fulfillment. Unknown ones and unchanged ones are left."""
    service = services.connection(ctx, "fulfillment")
    with cursors.Pull(services.store, service.id, "fulfillments", ctx.job.id) as pull:
        page = services.connector(service, "fulfillment").fetch_fulfillments(pull.start)
        for record in page.records:
            update = parse(FulfillmentUpdate, record, "fulfillment update")
            try:
                known = services.store.fulfillment_by_remote(service.id, update.remote_id)
            except NotFound:
                continue
            if known.state == update.state and known.tracking == update.tracking:
                continue
            # Keyed by the pull: a pull that runs again after a crash queues nothing twice.
            ctx.enqueue(
                "sync_fulfillment",
                update.model_dump(mode="json"),
                service.id,
                (update.remote_id,),
                f"sync_fulfillment:{service.id}:{update.remote_id}:{ctx.job.id}",
            )
        pull.advance(page.cursor)
