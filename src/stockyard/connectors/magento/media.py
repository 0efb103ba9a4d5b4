"""Images out to Magento (issue 19): `POST /V1/products/{sku}/media` with the image's bytes.

Magento takes no image URL, only base64 content, so Stockyard downloads the source's image
itself, through the outbound guard (no internal address, redirects checked too), capped in
size, and sends it with the MIME type its bytes show (Magento compares the two).

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
from urllib.parse import urlsplit

import httpx

from stockyard import outbound
from stockyard.connectors.base import ChannelImage
from stockyard.connectors.magento.client import MagentoClient, MagentoNotFound, sku_path
from stockyard.errors import PermanentError, TransientError

# Base64 makes it a ~14 MB request body: the store's post_max_size and web server limits
# must allow that (a 413 fails the item, naming the status).
MAX_IMAGE_BYTES = 10 * 1024 * 1024
# The first image's roles: the product page's image, the listing's and the thumbnail.
ROLES = ["image", "small_image", "thumbnail"]
# What Magento's ImageContentValidator accepts by default, told apart by the first bytes
# as PHP's getimagesizefromstring does: MIME type -> file extension.
_SIGNATURES = (
    (b"\xff\xd8\xff", "image/jpeg", "jpg"),
    (b"\x89PNG\r\n\x1a\n", "image/png", "png"),
    (b"GIF87a", "image/gif", "gif"),
    (b"GIF89a", "image/gif", "gif"),
)


def add_image(api: MagentoClient, sku: str, image: ChannelImage, timeout: float) -> str:
    url = str(image.fields.get("url") or "")
    if urlsplit(url).scheme not in ("http", "https"):
        raise PermanentError(f"magento: image {image.code}: the url must be http(s)")
    stem = file_stem(image.code, url)
    made = _entry_named(gallery(api, sku), stem)
    if made is not None:  # sent by an earlier try (its answer lost) or an earlier sync
        return str(made["id"])
    content, mime, extension = download(url, timeout)
    position = int(image.fields.get("position") or 0)
    entry = {
        "media_type": "image",
        "label": str(image.fields.get("alt") or ""),
        "position": position,
        "disabled": False,
        "types": ROLES if position == 0 else [],
        "content": {
            "base64_encoded_data": base64.b64encode(content).decode("ascii"),
            "type": mime,
            "name": f"{stem}.{extension}",
        },
    }
    entry_id = api.call("POST", f"V1/products/{sku_path(sku)}/media", {"entry": entry})
    return str(entry_id)


def delete_image(api: MagentoClient, sku: str, entry_id: str) -> None:
    """Gone already (the entry or its product) counts as done."""
    if not entry_id.isdigit():
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


# ------------------------------------------------------------------------- download


def download(url: str, timeout: float) -> tuple[bytes, str, str]:
    """The image's bytes, MIME type and extension. The URL is named without its query
    (a signed URL's query is a credential)."""
    shown = _shown(url)
    with outbound.client(timeout=timeout, follow_redirects=True) as http:
        try:
            with http.stream("GET", url) as response:
                _check(response, shown)
                content = _read(response, shown)
        except httpx.TimeoutException:
            raise TransientError(f"image {shown}: the download timed out") from None
        except httpx.TransportError as exc:
            raise TransientError(f"cannot download image {shown} ({type(exc).__name__})") from None
    return (content, *_kind(content, shown))


def _shown(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{parts.path}"


def _check(response: httpx.Response, shown: str) -> None:
    status = response.status_code
    if status == 429:
        after = response.headers.get("retry-after", "")
        raise TransientError(
            f"image {shown}: HTTP 429", retry_after=float(after) if after.isdigit() else None
        )
    if status in (408, 425) or status >= 500:
        raise TransientError(f"image {shown}: HTTP {status}")
    if status >= 400:
        raise PermanentError(f"image {shown}: HTTP {status}")
    declared = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if declared and not declared.startswith("image/") and declared != "application/octet-stream":
        raise PermanentError(f"image {shown} is {declared}, not an image")
    length = response.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_IMAGE_BYTES:
        raise PermanentError(f"image {shown} is larger than {MAX_IMAGE_BYTES} bytes")


def _read(response: httpx.Response, shown: str) -> bytes:
    chunks, size = [], 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > MAX_IMAGE_BYTES:
            raise PermanentError(f"image {shown} is larger than {MAX_IMAGE_BYTES} bytes")
        chunks.append(chunk)
    if not size:
        raise PermanentError(f"image {shown} is empty")
    return b"".join(chunks)


def _kind(content: bytes, shown: str) -> tuple[str, str]:
    for signature, mime, extension in _SIGNATURES:
        if content.startswith(signature):
            return mime, extension
    raise PermanentError(f"image {shown} is not a JPEG, PNG or GIF image, the types Magento takes")
