"""Images by URL on WooCommerce products (issue 19; docs/woocommerce-notes.md, "Images").

WooCommerce downloads an image itself when a product is written with `images: [{src}]`,
and the `images` sent replace the product's list (the first is the featured image). So an
image is added by reading the product's list and writing it back whole, the others by
`{id}` (unchanged), the new one by `src` at its position; deleted by writing the list back
without it. Stockyard never fetches the URL; it only refuses what is not http(s).

A retry must find what an earlier try added (an answer lost after WooCommerce made the
attachment). The source URL is not readable back (`src` answers the copy in the store's
uploads), so each image we send carries a mark in its `name`, which WooCommerce stores as
the attachment's title in the same request that downloads it: "stockyard <digest>", the
digest of the image's code and URL. An image whose name holds the mark is this image; a
different image (another code or URL) has another digest and never matches.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from stockyard.connectors.base import ChannelImage
from stockyard.connectors.woocommerce import paging
from stockyard.connectors.woocommerce.client import WooCommerceClient, WooCommerceRefused
from stockyard.errors import PermanentError

_ID = re.compile(r"[1-9][0-9]{0,19}")
_IMAGE_ID = re.compile(r"[0-9]{1,20}")  # 0: the placeholder older versions answer


def add_image(api: WooCommerceClient, product_id: str, image: ChannelImage) -> str:
    url = str(image.fields.get("url") or "")
    if not re.match(r"https?://[^/\s]", url, re.IGNORECASE):
        raise PermanentError(f"woocommerce: image {image.code}: the url must be http(s)")
    mark = _mark(image.code, url)
    current = _images(api, product_id)
    found = _find(current, mark)
    if found is not None:  # added by an earlier try of this item
        return found
    new: dict[str, Any] = {"src": url, "name": f"{image.code} {mark}"}
    if image.fields.get("alt"):
        new["alt"] = str(image.fields["alt"])
    kept: list[dict[str, Any]] = _kept(current)
    kept.insert(_position(image, len(kept)), new)
    answer = _write(api, product_id, kept, f"add image {image.code}")
    made = _find(answer, mark)
    if made is None:
        raise PermanentError(f"woocommerce: add image {image.code}: not in the product's answer")
    return made


def delete_image(api: WooCommerceClient, product_id: str, image_id: str) -> None:
    """Off the product (the attachment stays in the media library: wc/v3 cannot delete
    media). A product or image already gone is done."""
    try:
        current = _images(api, product_id)
    except WooCommerceRefused as exc:
        if exc.status == 404:
            return
        raise
    kept = [i for i in _kept(current) if str(i["id"]) != image_id]
    if len(kept) != len(_kept(current)):
        _write(api, product_id, kept, f"delete image {image_id}")


def _kept(images: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The product's images to write back, by id: not the placeholder (id 0) that older
    stores answer for a product without images, which is no attachment."""
    return [{"id": int(i["id"])} for i in images if int(i["id"])]


def _mark(code: str, url: str) -> str:
    # Hex only: the title WooCommerce answers has been through WordPress's typographic
    # filters (quotes, dashes, "2x3"), which leave letters, digits and spaces alone.
    digest = hashlib.sha256(f"{code}\n{url}".encode()).hexdigest()[:16]
    return f"stockyard {digest}"


def _find(images: list[dict[str, Any]], mark: str) -> str | None:
    return next((str(i["id"]) for i in images if mark in str(i.get("name") or "")), None)


def _position(image: ChannelImage, count: int) -> int:
    try:
        return min(max(int(image.fields.get("position") or 0), 0), count)
    except (TypeError, ValueError):
        return count


def _images(api: WooCommerceClient, product_id: str) -> list[dict[str, Any]]:
    if not _ID.fullmatch(product_id):
        raise PermanentError(f"woocommerce: {product_id[:40]!r} is not a product id")
    row, _ = api.call("GET", f"/products/{product_id}", "read product images")
    return _images_in(row, "read product images")


def _write(
    api: WooCommerceClient, product_id: str, images: list[dict[str, Any]], what: str
) -> list[dict[str, Any]]:
    row, _ = api.call("PUT", f"/products/{product_id}", what, {"images": images})
    return _images_in(row, what)


def _images_in(answer: Any, what: str) -> list[dict[str, Any]]:
    """A product answer's images, each an object with an id, or a PermanentError."""
    images = paging.object_of(answer, what).get("images") or []
    if not isinstance(images, list) or not all(
        isinstance(i, dict) and _IMAGE_ID.fullmatch(str(i.get("id"))) for i in images
    ):
        raise PermanentError(f"woocommerce: {what}: the answer's images are not images with ids")
    return images
