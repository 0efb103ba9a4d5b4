"""Customers: a source's customers (a trade store's accounts) reach the catalog, and each
channel that takes customers gets one item per customer whose data changed there.

source --pull_customers--> sync_customer (catalog) --> sync_channel_customer (per channel)

A channel takes customers when its connector implements `upsert_customer`
(`offers_customers`) and its rules ask for them (`customers: true`, or `group_prices`: a
trade store; ChannelRules.takes_customers). It is sent the customer in its own customer
group: the group its rules' `group_prices` map the customer's price tier to
(`ChannelRules.customer`), so the customer sees the prices that group is sent. What a
channel was last sent of a customer is a link of kind "customer" with the hash of that
data, as for products: an unchanged customer queues nothing, and a retried item sends the
latest data, not the data it was queued with. A customer the source closed (`active`
false) is sent to the channels that hold their account, so the store closes it too; a
channel that never held it gets nothing.
"""

from __future__ import annotations

from typing import Any

from stockyard.catalog.models import Customer, parse
from stockyard.engine.handlers import Context
from stockyard.errors import InvalidInput, PermanentError
from stockyard.flows import cursors
from stockyard.flows.base import Services, flow
from stockyard.flows.rules import content_hash, rules_of
from stockyard.tenancy import Connection

KIND = "customer"  # the link kind of a customer on a channel


def customer_hash(customer: Customer) -> str:
    """The fingerprint of what a channel is sent of a customer (its view, group
    included): every field. An open account hashes without `active`, as before the field
    existed, so that adding it did not make every linked customer look changed."""
    data = customer.model_dump(mode="json")
    if data.get("active") is True:
        del data["active"]
    return content_hash(data)


def customer_channels(services: Services, client_id: int) -> list[Connection]:
    """The client's active channels whose connector takes customers and whose rules ask
    for them. A channel whose connector is not installed is left out: its product items
    already say so."""
    found = []
    for channel in services.connections(client_id, "channel"):
        cls = services.connectors.get(channel.connector)
        if cls is not None and cls.offers_customers() and rules_of(channel).takes_customers:
            found.append(channel)
    return found


@flow
def sync_customer(services: Services, ctx: Context) -> None:
    """Store the customer as the source sent it; queue a sync_channel_customer for each
    channel that takes customers and does not hold this data yet."""
    services.connection(ctx, "source")
    customer = parse(Customer, ctx.payload, "customer")
    client_id = ctx.job.client_id
    customer_id = services.store.upsert_customer(client_id, customer)
    if services.store.customer(client_id, customer_id).erased:
        # Erased while queued, or the source sent a customer erased on request (the row
        # stays erased, catalog.erasure): nothing personal to send anyone. The row, not
        # the record, says so: a record's own erased mark is dropped by the store unless
        # the record is blank (catalog.store.is_erased_record).
        return
    for channel in customer_channels(services, client_id):
        # What this channel is sent: its rules put the customer in one of its groups.
        digest = customer_hash(rules_of(channel).customer(customer))
        link = services.store.links(channel.id, KIND, [customer_id]).get(customer_id)
        if link is None and not customer.active:
            continue  # a closed account the channel never held: nothing to close there
        if link is None or link.hash != digest:
            ctx.enqueue(
                "sync_channel_customer", {"customer_id": customer_id}, channel.id, (customer.code,)
            )


@flow
def sync_channel_customer(services: Services, ctx: Context) -> None:
    """Create or update the customer's account on the channel, from the catalog as it is
    now; link the channel's id of it with the hash of what was sent."""
    channel = services.connection(ctx, "channel")
    value = ctx.payload.get("customer_id")
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput("invalid payload: 'customer_id' must be an integer id")
    stored = services.store.customer(ctx.job.client_id, value)
    if stored.erased:
        # Erased while this item waited: nothing personal is left to send, and an account
        # of blanks helps nobody. Not a failure, which would stop the channel's lane for
        # a decision already made; the account the channel holds is erased there
        # (docs/privacy.md).
        return
    rules = rules_of(channel)
    if not rules.takes_customers:
        # Queued by hand, or before the rules changed: a channel that did not ask for
        # customers is sent none (their personal data stays where it is).
        raise PermanentError(
            f"{channel.description} takes no customers: set rules.customers to true (or"
            " rules.group_prices) in its settings to send them, or skip this item"
        )
    customer = rules.customer(stored.customer)
    link = services.store.links(channel.id, KIND, [stored.id]).get(stored.id)
    digest = customer_hash(customer)
    if link is not None and link.hash == digest:
        return
    if link is None and not customer.active:
        return  # closed before this channel ever held the account: nothing to open
    remote_id = services.connector(channel, "channel").upsert_customer(
        customer.model_dump(mode="json"),
        None if link is None else link.remote_id,
        ctx.job.idempotency_key,
    )
    if not isinstance(remote_id, str) or not remote_id:
        raise PermanentError(f"{channel.description} gave no id for customer {stored.code}")
    services.store.link(channel.id, KIND, stored.id, remote_id, digest)


def _request_key(
    source: Connection, pull_id: int, position: int, record: Any
) -> tuple[str, tuple[str, ...]]:
    """The idempotency key and refs of the sync_customer of a pulled record: by the pull
    item and the record's place in its page, not by its content. A pull run again after
    a crash starts from the same cursor (cursors.Pull) and so queues each record once;
    a later pull is another item, so a customer changed back to an earlier state (A, B,
    A) is queued again, which a key by content would drop while the first A's item
    lives."""
    code = record.get("code") if isinstance(record, dict) else None
    code = str(code) if code else ""
    return f"sync_customer:{source.id}:{pull_id}:{position}", (code,) if code else ()


@flow
def pull_customers(services: Services, ctx: Context) -> None:
    """Ask a source that cannot push for the customers changed since the last pull; each
    becomes a sync_customer item in the source's lane."""
    source = services.connection(ctx, "source")
    with cursors.Pull(services.store, source.id, "customers", ctx.job.id) as pull:
        page = services.connector(source, "source").fetch_customers(pull.start)
        for position, record in enumerate(page.records):
            key, refs = _request_key(source, ctx.job.id, position, record)
            payload = record if isinstance(record, dict) else {"customer": record}
            ctx.enqueue("sync_customer", payload, source.id, refs, key)
        pull.advance(page.cursor)


__all__ = [
    "KIND",
    "customer_channels",
    "customer_hash",
    "pull_customers",
    "sync_channel_customer",
    "sync_customer",
]
