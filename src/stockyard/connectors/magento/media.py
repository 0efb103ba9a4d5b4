"""Images out to Magento (issue 19): `POST /V1/products/{sku}/media` with the image's bytes.

Magento takes no image URL, only base64 content, so Stockyard downloads the source's image
itself (connectors/downloads.py: through the outbound guard, capped in size, the type told
by the bytes) and sends it with that MIME type (Magento compares the two).

Magento has no idempotency keys and keeps no reference of ours on a gallery entry except
the file name it stores: an image goes as `sy-<16 hex of its code and URL>.<ext>`, which
Magento keeps (in a `/s/y/` folder, `_1`, `_2`... appended when that name is taken), so a
retry after a lost answer finds the entry it made, and another image never matches. The
label stays the image's alt text (docs/magento-notes.md, "Images and tier prices").
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import re
from typing import Any

from stockyard.connectors import downloads
from stockyard.connectors.base import ChannelImage
from stockyard.connectors.magento.client import (
    MagentoClient,
    MagentoNotFound,
    is_number,
    sku_path,
)
from stockyard.errors import PermanentError

# Base64 makes it a ~14 MB request body: the store's post_max_size and web server limits
# must allow that (a 413 fails the item, naming the status).
MAX_IMAGE_BYTES = 10 * 1024 * 1024
# The first image's roles: the product page's image, the listing's and the thumbnail.
ROLES = ["image", "small_image", "thumbnail"]
# What Magento's ImageContentValidator accepts by default (it reads the type from the bytes
# as PHP's getimagesizefromstring does, and compares it with the one sent).
ACCEPTED = (downloads.JPEG, downloads.PNG, downloads.GIF)


def add_image(api: MagentoClient, sku: str, image: ChannelImage, timeout: float) -> str:
    url = str(image.fields.get("url") or "")
    downloads.check_url(url)  # before any request to Magento
    stem = file_stem(image.code, url)
    made = _entry_named(gallery(api, sku), stem)
    if made is not None:  # sent by an earlier try (its answer lost) or an earlier sync
        return str(made["id"])
    fetched = downloads.fetch_image(
        url, accept=ACCEPTED, taker="Magento", timeout=timeout, max_bytes=MAX_IMAGE_BYTES
    )
    position = int(image.fields.get("position") or 0)
    entry = {
        "media_type": "image",
        "label": str(image.fields.get("alt") or ""),
        "position": position,
        "disabled": False,
        "types": ROLES if position == 0 else [],
        "content": {
            "base64_encoded_data": base64.b64encode(fetched.content).decode("ascii"),
            "type": fetched.type.mime,
            "name": f"{stem}.{fetched.type.extension}",
        },
    }
    entry_id = api.call("POST", f"V1/products/{sku_path(sku)}/media", {"entry": entry})
    return str(entry_id)


def delete_image(api: MagentoClient, sku: str, entry_id: str) -> None:
    """Gone already (the entry or its product) counts as done."""
    if not is_number(entry_id):
        raise PermanentError(f"magento: image {entry_id!r} is not a gallery entry id")
    with contextlib.suppress(MagentoNotFound):
        api.call("DELETE", f"V1/products/{sku_path(sku)}/media/{entry_id}")


def file_stem(code: str, url: str) -> str:
    # Lower-case hex only: nothing Magento's file-name clean-up would change.
    return "sy-" + hashlib.sha256(f"{code}\n{url}".encode()).hexdigest()[:16]


def gallery(api: MagentoClient, sku: str) -> list[dict[str, Any]]:
    try:
        entries: list[dict[str, Any]] = api.get(f"V1/products/{sku_path(sku)}/media")
    except MagentoNotFound:
        raise PermanentError(f"magento has no product {sku}") from None
    return entries or []


def _entry_named(entries: list[dict[str, Any]], stem: str) -> dict[str, Any] | None:
    # Magento appends _N to a taken name, in its temporary folder and again in the
    # catalog's: sy-<hash>_1_1.png is possible.
    kept = re.compile(re.escape(stem) + r"(_\d+)*\.[a-z]+")
    for entry in entries:
        name = str(entry.get("file") or "").rsplit("/", 1)[-1]
        if kept.fullmatch(name):
            return entry
    return None
