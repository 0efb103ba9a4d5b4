"""Images out to Shopify (issue 18) as product media.

Shopify fetches an image from its URL and processes it asynchronously: a new media is
UPLOADED/PROCESSING with no image yet, then READY (or FAILED). Shopify keeps no reference
of ours on a media, so an image sent before (a retry after a lost answer) is recognised by
the file name Shopify keeps from the source URL once processed, or by its alt text while
it is still processing (docs/shopify-notes.md: only a real shop confirms the file name).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from stockyard.connectors.base import ChannelImage
from stockyard.connectors.shopify import documents as d
from stockyard.connectors.shopify.client import ShopifyClient
from stockyard.errors import PermanentError


def add_image(api: ShopifyClient, product_id: str, image: ChannelImage) -> str:
    url = str(image.fields.get("url") or "")
    if not url.startswith(("https://", "http://")):
        raise PermanentError(f"shopify: image {image.code}: the url must be http(s)")
    alt = str(image.fields.get("alt") or "")
    name = _file_name(url)
    before = _media(api, product_id)
    same = next((m for m in before if _same(m, name, alt)), None)
    if same is not None:
        if same["status"] != "FAILED":
            return str(same["id"])
        # Removed, so the item's retry (once the source is fixed) starts clean.
        delete_image(api, str(same["id"]))
        errors = "; ".join(f"{e['message']} ({e['code']})" for e in same.get("mediaErrors") or [])
        raise PermanentError(f"shopify could not process image {url}: {errors or 'FAILED'}")
    media = {"originalSource": url, "mediaContentType": "IMAGE", "alt": alt}
    payload = api.query(d.PRODUCT_ADD_MEDIA, {"product": {"id": product_id}, "media": [media]})
    answer = payload["productUpdate"] or {}
    if answer.get("userErrors") or not answer.get("product"):
        problems = "; ".join(str(e.get("message")) for e in answer.get("userErrors") or [])
        raise PermanentError(f"shopify: add image {url}: {problems or 'no product'}")
    known = {m["id"] for m in before}
    new = [m for m in answer["product"]["media"]["nodes"] if m["id"] not in known]
    if len(new) != 1:
        raise PermanentError(f"shopify: add image {url}: {len(new)} new media in the answer")
    return str(new[0]["id"])


def delete_image(api: ShopifyClient, media_id: str) -> None:
    """Removes the file (from the product and the shop's Files); already gone is done."""
    payload = api.query(d.FILE_DELETE, {"ids": [media_id]})["fileDelete"] or {}
    errors = payload.get("userErrors") or []
    if errors and not all(e.get("code") == "FILE_DOES_NOT_EXIST" for e in errors):
        problems = "; ".join(f"{e.get('message')} ({e.get('code')})" for e in errors)
        raise PermanentError(f"shopify: delete image {media_id}: {problems}")


def _media(api: ShopifyClient, product_id: str) -> list[dict[str, Any]]:
    product = api.query(d.PRODUCT_MEDIA, {"id": product_id})["product"]
    if product is None:
        raise PermanentError(f"shopify has no product {product_id}")
    return list(product["media"]["nodes"])


def _file_name(url: str) -> str:
    return urlsplit(url).path.rsplit("/", 1)[-1].lower()


def _same(media: dict[str, Any], name: str, alt: str) -> bool:
    shown = (media.get("image") or {}).get("url")
    if shown:
        kept = _file_name(str(shown))
        stem, dot, ext = name.rpartition(".")
        # Shopify may add a suffix to a name already taken: tee.jpg -> tee_<hash>.jpg.
        return bool(name) and (
            kept == name or (dot != "" and kept.startswith(stem + "_") and kept.endswith("." + ext))
        )
    # Not processed yet (or failed): no file name to compare, only the alt text.
    return media.get("status") != "READY" and bool(alt) and media.get("alt") == alt
