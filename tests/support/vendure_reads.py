"""What the end-to-end tests read back from the real Vendure (through its Admin API): the
variants with some SKUs, what is left to sell of one, an order once it is delivered."""

from __future__ import annotations

from typing import Any

from stockyard.connectors.vendure.client import VendureClient


def shop_variants(admin: VendureClient, skus: list[str]) -> dict[str, dict[str, Any]]:
    """Vendure's variants with these SKUs, by SKU: id, price (minor units), stockOnHand,
    stockAllocated and product (id, name)."""
    data = admin.query(
        "query($s: [String!]!) { productVariants(options: {filter: {sku: {in: $s}}}) {"
        " items { id sku price stockOnHand stockAllocated product { id name } } } }",
        {"s": skus},
    )
    return {v["sku"]: v for v in data["productVariants"]["items"]}


def all_in_shop(admin: VendureClient, skus: list[str]) -> dict[str, dict[str, Any]] | None:
    """`shop_variants` once every one of `skus` is in Vendure; None before (for wait_for)."""
    found = shop_variants(admin, skus)
    return found if len(found) == len(set(skus)) else None


def saleable(variant: dict[str, Any]) -> int:
    """What Vendure still sells of a variant: on hand, less what its orders hold."""
    return int(variant["stockOnHand"] - variant["stockAllocated"])


def delivered(admin: VendureClient, code: str) -> dict[str, Any] | None:
    """Order `code`'s state and fulfilments (state, trackingCode) once Vendure shows it
    Delivered; None before."""
    (data,) = admin.query(
        "query($c: String!) { orders(options: {filter: {code: {eq: $c}}}) {"
        " items { state fulfillments { state trackingCode } } } }",
        {"c": code},
    )["orders"]["items"]
    return dict(data) if data["state"] == "Delivered" else None
