"""The Magento double's product images (issue 19): `GET /V1/products/{sku}/media`,
`POST /V1/products/{sku}/media` and `DELETE /V1/products/{sku}/media/{entryId}`, as
Magento's gallery management does them (facts from Magento's ImageContentValidator and
gallery processor, docs/magento-notes.md "Images and tier prices"):

- the content must be base64 of an image whose own type (read from its first bytes, as
  PHP's getimagesizefromstring does) is the `type` given, one of JPEG, PNG and GIF;
- the name must not hold \\ / ? * : " ; < > ( ) | { };
- the file is kept as `/<1st char>/<2nd char>/<name>`, `_1`, `_2`... appended when a file
  of that name exists (for any product: the folders are shared);
- an entry's `types` (roles) are taken away from the product's other entries;
- an absent product or entry is 404.

Every request and answer goes through the contract checks of magento_double.py. The
mixin answers in `_orders_execute`, which MagentoDouble._execute asks first, and hands
what is not an image on to the next mixin (tier prices, then orders).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from typing import Any

from tests.support.magento_double_tiers import TiersMixin

Obj = dict[str, Any]
NO_PRODUCT = "The product that was requested doesn't exist. Verify the product and try again."
NO_ENTRY = "No image with the provided ID was found. Verify the ID and try again."
_FORBIDDEN_NAME = re.compile(r'[\\/?*:";<>()|{}]')
_SIGNATURES = {
    b"\xff\xd8\xff": "image/jpeg",
    b"\x89PNG\r\n\x1a\n": "image/png",
    b"GIF87a": "image/gif",
    b"GIF89a": "image/gif",
}
ALLOWED = ("image/jpg", "image/jpeg", "image/gif", "image/png")


@dataclass
class MediaMixin(TiersMixin):
    gallery: dict[str, list[Obj]] = field(default_factory=dict)  # sku -> entries
    files: dict[str, bytes] = field(default_factory=dict)  # kept path -> bytes
    next_entry: int = 1

    def _orders_execute(
        self,
        method: str,
        template: str,
        params: dict[str, str],
        query: list[tuple[str, str]],
        body: Any,
    ) -> tuple[int, Any] | None:
        sku = params.get("sku", "")
        match (method, template):
            case ("GET", "/V1/products/{sku}/media"):
                if sku not in self.products:
                    return 404, {"message": NO_PRODUCT}
                return 200, [dict(e) for e in self.gallery.get(sku, [])]
            case ("POST", "/V1/products/{sku}/media"):
                return self._add_entry(sku, body["entry"])
            case ("DELETE", "/V1/products/{sku}/media/{entryId}"):
                return self._delete_entry(sku, params["entryId"])
        tiers = self._tiers_execute(method, template, body)
        if tiers is not None:
            return tiers
        found: tuple[int, Any] | None = super()._orders_execute(  # type: ignore[misc]
            method, template, params, query, body
        )
        return found

    def _add_entry(self, sku: str, given: Obj) -> tuple[int, Any]:
        if sku not in self.products:
            return 404, {"message": NO_PRODUCT}
        content = given.get("content")
        if given.get("media_type") != "image" or not content:
            return 400, {
                "message": "The image content is invalid. Verify the content and try again."
            }
        try:
            data = base64.b64decode(content["base64_encoded_data"], validate=True)
        except (binascii.Error, ValueError):
            data = b""
        kind = next((m for s, m in _SIGNATURES.items() if data.startswith(s)), None)
        if not data or kind is None:
            return 400, {"message": "The image content must be valid base64 encoded data."}
        if kind != content["type"] or kind not in ALLOWED:
            return 400, {"message": "The image MIME type is not valid or not supported."}
        if not content["name"] or _FORBIDDEN_NAME.search(content["name"]):
            return 400, {"message": "Provided image name contains forbidden characters."}
        path = self._free_path(content["name"])
        self.files[path] = data
        entries = self.gallery.setdefault(sku, [])
        for other in entries:
            other["types"] = [t for t in other["types"] if t not in given["types"]]
        entry = {k: given[k] for k in ("media_type", "label", "position", "disabled", "types")}
        entry |= {"id": self.next_entry, "file": path}
        self.next_entry += 1
        entries.append(entry)
        return 200, entry["id"]

    def _free_path(self, name: str) -> str:
        folder = f"/{name[0]}/{name[1] if len(name) > 1 else '_'}/"
        stem, dot, extension = name.rpartition(".")
        path, n = folder + name, 0
        while path in self.files:
            n += 1
            path = f"{folder}{stem}_{n}{dot}{extension}"
        return path

    def _delete_entry(self, sku: str, entry_id: str) -> tuple[int, Any]:
        if sku not in self.products:
            return 404, {"message": NO_PRODUCT}
        entries = self.gallery.get(sku, [])
        found = next((e for e in entries if str(e["id"]) == entry_id), None)
        if found is None:
            return 404, {"message": NO_ENTRY}
        entries.remove(found)
        return 200, True
