"""The handler of each instruction of the catalog (`flows.catalog`), and how they are
installed in a registry."""

from __future__ import annotations

import functools

from stockyard.engine.handlers import HandlerRegistry
from stockyard.flows import bulk, channel, customers, orders, products
from stockyard.flows.base import Flow, Services

FLOWS: dict[str, Flow] = {
    "sync_product": products.sync_product,
    "sync_products": products.sync_products,
    "sync_image": products.sync_image,
    "sync_customer": customers.sync_customer,
    "sync_channel_customer": customers.sync_channel_customer,
    "pull_customers": customers.pull_customers,
    "fetch_images": products.fetch_images,
    "pull_products": products.pull_products,
    "add_product": channel.add_product,
    "update_product": channel.update_product,
    "add_variant": channel.update_variant,
    "update_variant": channel.update_variant,
    "add_image": channel.add_image,
    "delete_product": channel.delete_product,
    "delete_product_variant": channel.delete_product_variant,
    "delete_image": channel.delete_image,
    "init_channel": channel.init_channel,
    "sync_channel": channel.sync_channel,
    "sync_channel_products": channel.sync_channel_products,
    "clear_channel": channel.clear_channel,
    "set_channel_status": channel.set_channel_status,
    "bulk_products": bulk.bulk_products,
    "sync_order": orders.sync_order,
    "add_order": orders.add_order,
    "fulfill_order": orders.fulfill_order,
    "sync_fulfillment": orders.sync_fulfillment,
    "sync_channel_fulfillments": orders.sync_channel_fulfillments,
    "update_order_instruction": orders.update_order_instruction,
    "pull_orders": orders.pull_orders,
    "pull_fulfillments": orders.pull_fulfillments,
}


def install(registry: HandlerRegistry, services: Services) -> None:
    for name, fn in FLOWS.items():
        registry.register(name, functools.partial(fn, services))


__all__ = ["FLOWS", "Services", "install"]
