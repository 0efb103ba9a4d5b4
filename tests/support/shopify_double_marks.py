"""Metafields and tracking corrections for the Shopify double (issue 18).

- `metafieldsSet` on an Order or a MediaImage (the owners Stockyard marks), read back with
  `metafield(namespace, key)`: where the connector keeps its own references, since Shopify
  keeps none on a media or a fulfillment. Other owners fail loudly.
- `fulfillmentTrackingInfoUpdate`: replaces a fulfillment's tracking.
- Test helpers: `split_quantity` (some units of one line moved to a fulfillment order at
  another location, as Shopify splits a line between locations) and `merchant_media` (an
  image a merchant added in the admin: no Stockyard mark).

Installed by `extensions()` in tests/support/shopify_double.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.support.shopify_double import Obj, ShopifyDouble

MARKED = ("Order", "MediaImage")


def install(double: ShopifyDouble) -> None:
    from tests.support.shopify_double import Unimplemented, UserErr

    def metafield(owner: Obj, _i: Any, namespace: str, key: str) -> Obj | None:
        found: Obj | None = owner.get("_metafields", {}).get((namespace, key))
        return found

    def metafields_set(_s: Any, _i: Any, metafields: list[Obj]) -> Obj:
        owners = [double.shop.objects.get(m["ownerId"]) for m in metafields]
        for n, owner in enumerate(owners):
            if owner is None:
                raise UserErr("Owner does not exist.", ["metafields", str(n), "ownerId"], "INVALID")
            if owner["__typename"] not in MARKED:
                raise Unimplemented(f"the Shopify double keeps no metafields on {owner['id']}")
        made = []
        for m, owner in zip(metafields, owners, strict=True):
            assert owner is not None
            key = (m.get("namespace") or "$app", m["key"])
            mf = owner.setdefault("_metafields", {}).get(key) or double.shop.add("Metafield")
            mf.update(namespace=key[0], key=key[1], type=m.get("type"), value=m["value"])
            owner["_metafields"][key] = mf
            made.append(mf)
        return {"metafields": made, "userErrors": []}

    def tracking_update(
        _s: Any, _i: Any, fulfillmentId: str, trackingInfoInput: Obj, **_a: Any
    ) -> Obj:
        made = double.shop.get(fulfillmentId, "Fulfillment")
        if made is None:
            raise UserErr("Fulfillment does not exist.", ["fulfillmentId"])
        t = trackingInfoInput
        made["trackingInfo"] = [
            {"company": t.get("company"), "number": t.get("number"), "url": t.get("url")}
        ]
        return {"fulfillment": made, "userErrors": []}

    for owner in MARKED:
        double.resolvers[(owner, "metafield")] = metafield
    double.resolvers[("Mutation", "metafieldsSet")] = metafields_set
    double.resolvers[("Mutation", "fulfillmentTrackingInfoUpdate")] = tracking_update


def split_quantity(
    double: ShopifyDouble, order: Obj, sku: str, quantity: int, location: Obj
) -> Obj:
    """`quantity` units of the order's `sku` line moved to a new open fulfillment order at
    `location`: one SKU shipped from two locations."""
    shop = double.shop
    line = next(x for fo in order["_fulfillment_orders"] for x in fo["_lines"] if x["sku"] == sku)
    line["remainingQuantity"] -= quantity
    line["totalQuantity"] -= quantity
    moved = shop.add(
        "FulfillmentOrderLineItem",
        **{k: v for k, v in line.items() if k not in ("id", "__typename")},
    )
    moved.update(remainingQuantity=quantity, totalQuantity=quantity)
    fo = shop.add(
        "FulfillmentOrder",
        status="OPEN",
        orderId=order["id"],
        updatedAt=order["updatedAt"],
        assignedLocation={"location": location},
        _lines=[moved],
    )
    order["_fulfillment_orders"].append(fo)
    return fo


def merchant_media(double: ShopifyDouble, product: Obj, url: str, alt: str = "") -> Obj:
    """An image the merchant added in Shopify's admin (no Stockyard mark), unprocessed."""
    media = double._new_media(product, {"originalSource": url, "alt": alt})
    product["_media"].append(media)
    return media
