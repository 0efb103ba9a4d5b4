"""Magento images over real HTTP (issue 19): the connector downloads each image from a
local image server (through the outbound guard, which the tests let reach 127.0.0.1) and
sends its bytes to the Magento double's `POST /V1/products/{sku}/media`, which checks the
request against Adobe's OpenAPI document and the content as Magento does. A retry after a
lost answer finds the entry it made by the file name Magento keeps; the first image takes
the roles; failures of the download are transient or permanent by their kind.

Skipped when the document is not installed (bash scripts/install-magento-openapi.sh).
"""

from __future__ import annotations

import base64
import http.server
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from stockyard.connectors.base import ChannelImage, ChannelProduct, ChannelVariant
from stockyard.errors import PermanentError, TransientError
from tests.support import magento_contract as contract

pytestmark = pytest.mark.skipif(not contract.installed(), reason=contract.skip_reason())

from stockyard.connectors.magento import MagentoConnector, media  # noqa: E402
from tests.support.magento_double import TOKEN, MagentoDouble, Served, kept_contract, serve  # noqa: E402

KEY = "item-19-mg-media"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(17)
JPEG = b"\xff\xd8\xff\xe0" + bytes(60)
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + bytes(20)
MEDIA = "/V1/products/{sku}/media"


@dataclass
class Picture:
    status: int = 200
    body: bytes = PNG
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "image/png"})
    delay: float = 0.0
    chunked: bool = False


@dataclass
class Images:
    url: str
    pictures: dict[str, Picture]
    hits: list[str]


@pytest.fixture
def images() -> Iterator[Images]:
    """A web server of pictures by path; anything else is 404."""
    pictures: dict[str, Picture] = {}
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            hits.append(self.path)
            picture = pictures.get(self.path.split("?")[0], Picture(404, b"no", {}))
            time.sleep(picture.delay)
            self.send_response(picture.status)
            for name, value in picture.headers.items():
                self.send_header(name, value)
            if picture.chunked:  # no Content-Length: the size shows only while reading
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for start in range(0, len(picture.body), 1024):
                    part = picture.body[start : start + 1024]
                    self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
                self.wfile.write(b"0\r\n\r\n")
                return
            self.send_header("Content-Length", str(len(picture.body)))
            self.end_headers()
            self.wfile.write(picture.body)

        def log_message(self, *args: Any) -> None:
            pass

    class Server(http.server.ThreadingHTTPServer):
        def handle_error(self, request: Any, client_address: Any) -> None:
            if not isinstance(sys.exc_info()[1], ConnectionError):
                super().handle_error(request, client_address)
            # else: the client gave up (the timeout test); nothing to report

    server = Server(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02})
    thread.start()
    host, port = server.server_address[:2]
    yield Images(f"http://{host!s}:{port}", pictures, hits)
    server.shutdown()
    server.server_close()


@pytest.fixture
def served() -> Iterator[Served]:
    double = MagentoDouble()
    with serve(double) as s:
        yield s


@pytest.fixture
def shop(served: Served) -> Iterator[MagentoConnector]:
    c = MagentoConnector({"url": served.url, "access_token": TOKEN, "timeout": 2})
    yield c
    c.close()
    double = served.double
    # Nothing the connector sent was refused by the contract, nothing answered outside it.
    kept_contract(double)


def mug(shop: MagentoConnector, sku: str = "MUG-1") -> str:
    product = ChannelProduct(
        sku, {"title": "Mug"}, [ChannelVariant(sku, {"price": "8.50", "quantity": 4})]
    )
    return shop.create_product(product, KEY).id


def image(url: str, code: str = "front", position: int = 0, alt: str = "Front") -> ChannelImage:
    return ChannelImage(code, {"url": url, "alt": alt, "position": position})


def posts(served: Served) -> list[Any]:
    return [r.body for r in served.double.requests("POST", MEDIA)]


def test_an_image_goes_as_its_bytes_with_the_roles_and_the_alt_text(
    served: Served, shop: MagentoConnector, images: Images
) -> None:
    images.pictures["/mug.png"] = Picture()
    sku = mug(shop)
    entry_id = shop.add_image(sku, image(f"{images.url}/mug.png"), KEY)

    [entry] = served.double.gallery[sku]
    assert str(entry["id"]) == entry_id
    assert entry["label"] == "Front"
    assert entry["types"] == ["image", "small_image", "thumbnail"]
    assert entry["disabled"] is False
    stem = media.file_stem("front", f"{images.url}/mug.png")
    assert entry["file"] == f"/s/y/{stem}.png"
    assert served.double.files[entry["file"]] == PNG
    [body] = posts(served)
    content = body["entry"]["content"]
    assert content["type"] == "image/png"
    assert base64.b64decode(content["base64_encoded_data"]) == PNG


def test_only_the_first_image_takes_the_roles_and_the_type_comes_from_the_bytes(
    served: Served, shop: MagentoConnector, images: Images
) -> None:
    images.pictures["/front.png"] = Picture()
    # A server that says octet-stream: the bytes tell JPEG, and Magento compares the two.
    images.pictures["/side"] = Picture(
        body=JPEG, headers={"Content-Type": "application/octet-stream"}
    )
    sku = mug(shop)
    shop.add_image(sku, image(f"{images.url}/front.png"), KEY)
    shop.add_image(sku, image(f"{images.url}/side", code="side", position=1, alt=""), KEY)

    first, second = served.double.gallery[sku]
    assert first["types"] == ["image", "small_image", "thumbnail"]
    assert second["types"] == []
    assert second["position"] == 1
    assert second["file"].endswith(".jpg")
    assert posts(served)[1]["entry"]["content"]["type"] == "image/jpeg"


def test_a_retry_after_a_lost_answer_finds_the_entry_it_made(
    served: Served, shop: MagentoConnector, images: Images
) -> None:
    images.pictures["/mug.png"] = Picture()
    sku = mug(shop)
    served.double.lost.append(("POST", MEDIA, 503, {"message": "Service Unavailable"}))
    with pytest.raises(TransientError):
        shop.add_image(sku, image(f"{images.url}/mug.png"), KEY)
    assert len(served.double.gallery[sku]) == 1  # made, though the answer was lost

    entry_id = shop.add_image(sku, image(f"{images.url}/mug.png"), KEY)
    assert [str(e["id"]) for e in served.double.gallery[sku]] == [entry_id]
    assert len(posts(served)) == 1
    assert len(images.hits) == 1  # nothing downloaded again either


def test_a_taken_file_name_is_still_recognised_and_other_images_never_match(
    served: Served, shop: MagentoConnector, images: Images
) -> None:
    images.pictures["/logo.png"] = Picture()
    images.pictures["/other.png"] = Picture()
    one, two = mug(shop, "MUG-1"), mug(shop, "MUG-2")
    first = shop.add_image(one, image(f"{images.url}/logo.png"), KEY)
    # The same image on a second product: Magento's folders are shared, so it keeps the
    # file as <name>_1.png.
    second = shop.add_image(two, image(f"{images.url}/logo.png"), KEY)
    assert served.double.gallery[two][0]["file"].endswith("_1.png")
    assert shop.add_image(two, image(f"{images.url}/logo.png"), KEY) == second
    # Another image (another URL, or the same URL under another code) is added.
    other = shop.add_image(one, image(f"{images.url}/other.png"), KEY)
    again = shop.add_image(one, image(f"{images.url}/logo.png", code="back"), KEY)
    assert len({first, other, again}) == 3
    assert len(served.double.gallery[one]) == 3


def test_delete_removes_the_entry_and_gone_already_is_done(
    served: Served, shop: MagentoConnector, images: Images
) -> None:
    images.pictures["/mug.png"] = Picture()
    sku = mug(shop)
    entry_id = shop.add_image(sku, image(f"{images.url}/mug.png"), KEY)
    shop.delete_image(sku, entry_id, KEY)
    assert served.double.gallery[sku] == []
    shop.delete_image(sku, entry_id, KEY)  # the entry is gone
    shop.delete_image("NO-SUCH-SKU", entry_id, KEY)  # the product is gone
    with pytest.raises(PermanentError, match="not a gallery entry id"):
        shop.delete_image(sku, "../1", KEY)


@pytest.mark.parametrize(
    ("picture", "error", "words"),
    [
        (Picture(404, b"gone", {"Content-Type": "text/plain"}), PermanentError, "HTTP 404"),
        (Picture(503, b"busy", {}), TransientError, "HTTP 503"),
        (Picture(200, b"<html>", {"Content-Type": "text/html"}), PermanentError, "not an image"),
        (Picture(200, b"plain text", {}), PermanentError, "not a JPEG, PNG or GIF"),
        (Picture(200, WEBP, {"Content-Type": "image/webp"}), PermanentError, "not a JPEG"),
        (Picture(200, b"", {"Content-Type": "image/png"}), PermanentError, "is empty"),
        # Not a network fault to retry five times: the same redirect would come again.
        (Picture(302, b"", {"Location": "file:///etc/passwd"}), PermanentError, "not http"),
    ],
)
def test_a_download_failure_is_transient_or_permanent_by_its_kind(
    served: Served,
    shop: MagentoConnector,
    images: Images,
    picture: Picture,
    error: type[Exception],
    words: str,
) -> None:
    images.pictures["/x.png"] = picture
    sku = mug(shop)
    with pytest.raises(error, match=words) as caught:
        shop.add_image(sku, image(f"{images.url}/x.png?signature=s3cr3t"), KEY)
    assert "s3cr3t" not in str(caught.value)  # a signed URL's query is a credential
    assert posts(served) == []


def test_429_says_when_to_retry(served: Served, shop: MagentoConnector, images: Images) -> None:
    images.pictures["/x.png"] = Picture(429, b"", {"Retry-After": "7"})
    sku = mug(shop)
    with pytest.raises(TransientError) as caught:
        shop.add_image(sku, image(f"{images.url}/x.png"), KEY)
    assert caught.value.retry_after == 7


@pytest.mark.parametrize("chunked", [False, True])
def test_an_image_over_the_cap_is_refused(
    served: Served,
    shop: MagentoConnector,
    images: Images,
    monkeypatch: pytest.MonkeyPatch,
    chunked: bool,
) -> None:
    monkeypatch.setattr(media, "MAX_IMAGE_BYTES", 4096)
    images.pictures["/big.png"] = Picture(body=PNG + bytes(5000), chunked=chunked)
    sku = mug(shop)
    with pytest.raises(PermanentError, match="larger than 4096 bytes"):
        shop.add_image(sku, image(f"{images.url}/big.png"), KEY)
    assert posts(served) == []


def test_a_slow_image_server_is_a_transient_error(
    served: Served, shop: MagentoConnector, images: Images
) -> None:
    # The connection's timeout bounds the download: a short one (not the fixture's 2 s)
    # makes the same point without waiting seconds for it.
    quick = MagentoConnector({"url": served.url, "access_token": TOKEN, "timeout": 0.5})
    images.pictures["/slow.png"] = Picture(delay=1.5)
    sku = mug(shop)
    with pytest.raises(TransientError, match="timed out"):
        quick.add_image(sku, image(f"{images.url}/slow.png"), KEY)
    quick.close()


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://169.254.169.254/latest/meta-data/x.png", "link-local"),
        ("http://10.1.2.3/x.png", "private"),
        ("ftp://example.com/x.png", "must be http"),
        ("", "must be http"),
    ],
)
def test_an_image_url_the_guard_refuses_is_permanent(
    served: Served, shop: MagentoConnector, url: str, words: str
) -> None:
    sku = mug(shop)
    with pytest.raises(PermanentError, match=words):
        shop.add_image(sku, image(url), KEY)
    assert posts(served) == []


def test_an_image_for_a_product_magento_lacks_is_permanent(
    served: Served, shop: MagentoConnector, images: Images
) -> None:
    images.pictures["/mug.png"] = Picture()
    with pytest.raises(PermanentError, match="magento has no product NOPE"):
        shop.add_image("NOPE", image(f"{images.url}/mug.png"), KEY)
    assert images.hits == []  # checked before downloading


def test_a_name_renamed_twice_by_magento_is_recognised(
    served: Served, shop: MagentoConnector, images: Images
) -> None:
    # Magento renames a taken name in its temporary folder and again in the catalog's.
    images.pictures["/mug.png"] = Picture()
    sku = mug(shop)
    stem = media.file_stem("front", f"{images.url}/mug.png")
    entry = {"media_type": "image", "label": "", "position": 0, "disabled": False, "types": []}
    served.double.gallery[sku] = [entry | {"id": 41, "file": f"/s/y/{stem}_1_1.png"}]
    assert shop.add_image(sku, image(f"{images.url}/mug.png"), KEY) == "41"
    assert posts(served) == [] and images.hits == []
