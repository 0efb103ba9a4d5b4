"""Images out to Shopify (issue 18) as product media.

Shopify fetches an image from its URL and processes it asynchronously: a new media is
UPLOADED/PROCESSING with no image yet, then READY (or FAILED). Each media Stockyard adds
gets a mark right after, a `stockyard.image` metafield holding the image's code and source
URL, so a retry finds the image it sent and a different image never matches. A media
without a mark (added by the merchant, or by an attempt whose answer was lost before it
could be marked) is taken as the image only by the exact file name Shopify keeps (or
that name with the UUID Shopify appends to a taken name) once processed, or by its alt
text while it is not; an adopted media is marked then (docs/shopify-notes.md: only a real
shop confirms the file name).
"""

from __future__ import annotations

import json
import re
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
    mark = json.dumps({"code": image.code, "url": url}, sort_keys=True)
    before = _media(api, product_id)
    same = _find(before, mark, _file_name(url), alt)
    if same is not None:
        if same["status"] != "FAILED":
            if not same.get("mark"):
                _mark(api, str(same["id"]), mark)
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
    _mark(api, str(new[0]["id"]), mark)
    return str(new[0]["id"])


def delete_image(api: ShopifyClient, media_id: str) -> None:
    """Removes the file (from the product and the shop's Files); already gone is done."""
    payload = api.query(d.FILE_DELETE, {"ids": [media_id]})["fileDelete"] or {}
    errors = payload.get("userErrors") or []
    if errors and not all(e.get("code") == "FILE_DOES_NOT_EXIST" for e in errors):
        problems = "; ".join(f"{e.get('message')} ({e.get('code')})" for e in errors)
        raise PermanentError(f"shopify: delete image {media_id}: {problems}")


def _media(api: ShopifyClient, product_id: str) -> list[dict[str, Any]]:
    product = api.query(d.PRODUCT_MEDIA_MARKED, {"id": product_id})["product"]
    if product is None:
        raise PermanentError(f"shopify has no product {product_id}")
    return list(product["media"]["nodes"])


def _file_name(url: str) -> str:
    return urlsplit(url).path.rsplit("/", 1)[-1].lower()


def _mark(api: ShopifyClient, media_id: str, mark: str) -> None:
    field = {"ownerId": media_id, "namespace": "stockyard", "key": "image"}
    variables = {"metafields": [field | {"type": "json", "value": mark}]}
    payload = api.query(d.METAFIELDS_SET, variables)["metafieldsSet"] or {}
    if payload.get("userErrors"):
        problems = "; ".join(str(e.get("message")) for e in payload["userErrors"])
        raise PermanentError(f"shopify: mark image {media_id}: {problems}")


def _find(media: list[dict[str, Any]], mark: str, name: str, alt: str) -> dict[str, Any] | None:
    """The media that is this image: the one carrying its mark, else an unmarked one that
    looks like it. Media marked for another image never match."""
    for m in media:
        if m.get("mark") and _same_mark(m["mark"].get("value"), mark):
            return m
    return next((m for m in media if not m.get("mark") and _looks_same(m, name, alt)), None)


def _same_mark(value: Any, mark: str) -> bool:
    try:
        return bool(json.loads(str(value)) == json.loads(mark))
    except ValueError:
        return False


# Shopify appends a UUID to a file name already in use (shopify.dev
# "FileCreateInputDuplicateResolutionMode": APPEND_UUID); the separator is a guess.
_UUID = r"[_-][0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def _looks_same(media: dict[str, Any], name: str, alt: str) -> bool:
    shown = (media.get("image") or {}).get("url")
    if shown:
        kept = _file_name(str(shown))
        stem, dot, ext = name.rpartition(".")
        renamed = bool(dot) and re.fullmatch(re.escape(stem) + _UUID + re.escape(dot + ext), kept)
        return bool(name) and (kept == name or bool(renamed))
    # Not processed yet (or failed): no file name to compare, only the alt text.
    return media.get("status") != "READY" and bool(alt) and media.get("alt") == alt
