"""Images a connector downloads itself from a source's URL, for platforms that take bytes,
not a URL (Magento, Vendure). The URL comes from a tenant's catalog, so:

- every connection, each redirect's included, goes through the outbound guard; redirects
  are followed here, hop by hop, and only to http(s) (httpx would hand a `file:` or other
  scheme to its transport, which fails with an error that reads like a network fault);
- the body is capped: a Content-Length over the cap is refused before reading, and the
  count is kept while streaming (a server may send no length, or lie);
- an error names the URL without its query, fragment and user info (a signed URL's query
  is a credential) and never the address of a refused host;
- the whole download, redirects included, must end within the timeout: httpx's timeout is
  per read, which a server sending a byte at a time would never reach;
- retrying helps only for 408, 425, 429 (its Retry-After kept), 5xx, timeouts and network
  faults: anything else fails the item at once;
- the type is told by the first bytes, not by the server's Content-Type: platforms compare
  the declared type with the bytes, and each connector says which types its platform takes.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from stockyard import outbound
from stockyard.errors import PermanentError, TransientError

MAX_BYTES = 10 * 1024 * 1024
MAX_REDIRECTS = 5
# A declared type that says the server sent something else (an error or login page).
_UNTYPED = ("", "application/octet-stream", "binary/octet-stream")


@dataclass(frozen=True, slots=True)
class ImageType:
    name: str
    mime: str
    extension: str
    sniff: Callable[[bytes], bool]


def _starts(*prefixes: bytes) -> Callable[[bytes], bool]:
    return lambda content: content.startswith(prefixes)


JPEG = ImageType("JPEG", "image/jpeg", "jpg", _starts(b"\xff\xd8\xff"))
PNG = ImageType("PNG", "image/png", "png", _starts(b"\x89PNG\r\n\x1a\n"))
GIF = ImageType("GIF", "image/gif", "gif", _starts(b"GIF87a", b"GIF89a"))
WEBP = ImageType("WebP", "image/webp", "webp", lambda c: c[:4] == b"RIFF" and c[8:12] == b"WEBP")
AVIF = ImageType("AVIF", "image/avif", "avif", lambda c: c[4:12] in (b"ftypavif", b"ftypavis"))
TIFF = ImageType("TIFF", "image/tiff", "tiff", _starts(b"II*\x00", b"MM\x00*"))


@dataclass(frozen=True, slots=True)
class Image:
    content: bytes
    type: ImageType


def shown(url: str) -> str:
    """`url` as errors may name it: no user info, query or fragment."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # IPv6
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port is not None else ""
    except ValueError:  # not a number: left out
        port = ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def check_url(url: str) -> None:
    """PermanentError unless `url` is an absolute http(s) URL (before anything is sent)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PermanentError(f"image {shown(url) if url else '(no URL)'}: the URL must be http(s)")


def fetch_image(
    url: str,
    *,
    accept: Sequence[ImageType],
    taker: str,
    timeout: float,
    max_bytes: int = MAX_BYTES,
) -> Image:
    """The image at `url`, if its bytes are one of the `accept`ed types (`taker` names the
    platform in the error when not), downloaded within `timeout` seconds."""
    check_url(url)
    name = shown(url)
    limit = _Limit(name, max_bytes, time.monotonic() + timeout)
    with outbound.client(timeout=timeout, follow_redirects=False) as http:
        try:
            content = _get(http, url, limit)
        except outbound.OutboundRefused as exc:
            raise outbound.OutboundRefused(f"image {name}: {exc}") from None
        except httpx.TimeoutException:
            raise TransientError(f"image {name}: the download timed out") from None
        except (httpx.UnsupportedProtocol, httpx.LocalProtocolError, httpx.InvalidURL) as exc:
            raise PermanentError(f"cannot download image {name} ({type(exc).__name__})") from None
        except httpx.TransportError as exc:  # network faults, a server that hung up
            raise TransientError(f"cannot download image {name} ({type(exc).__name__})") from None
    return Image(content, _kind(content, name, accept, taker))


@dataclass(frozen=True, slots=True)
class _Limit:
    name: str  # the URL as errors show it
    max_bytes: int
    deadline: float  # time.monotonic()'s

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise TransientError(f"image {self.name}: the download timed out")


def _get(http: httpx.Client, url: str, limit: _Limit) -> bytes:
    name = limit.name
    # Images gain nothing from compression, and a decoded body's size is not bounded by
    # what is read (a few KB of gzip make GBs): only unencoded answers are taken.
    request = http.build_request("GET", url, headers={"Accept-Encoding": "identity"})
    for _ in range(MAX_REDIRECTS + 1):
        limit.check_time()
        response = http.send(request, stream=True)
        try:
            if response.next_request is None:
                _check(response, name, limit.max_bytes)
                return _read(response, limit)
            request = response.next_request
        finally:
            response.close()
        if request.url.scheme not in ("http", "https"):
            raise PermanentError(f"image {name}: redirected to a URL that is not http(s)")
    raise PermanentError(f"image {name}: more than {MAX_REDIRECTS} redirects")


MAX_DIGITS = 18  # a count longer than this is no count (and int() takes it in time)


def _check(response: httpx.Response, name: str, max_bytes: int) -> None:
    status = response.status_code
    if status in (408, 425, 429) or status >= 500:
        after = response.headers.get("retry-after", "")
        raise TransientError(f"image {name}: HTTP {status}", retry_after=retry_after(after))
    if not 200 <= status < 300:
        raise PermanentError(f"image {name}: HTTP {status}")
    declared = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if not declared.startswith("image/") and declared not in _UNTYPED:
        raise PermanentError(f"image {name} is {declared[:60]}, not an image")
    encoding = response.headers.get("content-encoding", "").strip().lower()
    if encoding not in ("", "identity"):
        raise PermanentError(f"image {name} came {encoding[:30]}-encoded, not as asked unencoded")
    length = response.headers.get("content-length", "").strip()
    declared = count(length)
    if declared is not None and declared > max_bytes:
        raise PermanentError(f"image {name} is larger than {max_bytes} bytes")


def _read(response: httpx.Response, limit: _Limit) -> bytes:
    chunks, size = [], 0
    for chunk in response.iter_raw():
        limit.check_time()
        size += len(chunk)
        if size > limit.max_bytes:
            raise PermanentError(f"image {limit.name} is larger than {limit.max_bytes} bytes")
        chunks.append(chunk)
    if not size:
        raise PermanentError(f"image {limit.name} is empty")
    return b"".join(chunks)


def _kind(content: bytes, name: str, accept: Sequence[ImageType], taker: str) -> ImageType:
    for kind in accept:
        if kind.sniff(content):
            return kind
    names = [k.name for k in accept]
    listed = ", ".join(names[:-1]) + f" or {names[-1]}" if len(names) > 1 else names[0]
    raise PermanentError(f"image {name} is not a {listed} image, the types {taker} takes")


def retry_after(value: str) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP-date), None if unreadable."""
    value = value.strip()
    delta = count(value)
    if delta is not None:
        return float(delta)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # "-0000": UTC, the source's zone unknown
        when = when.replace(tzinfo=dt.UTC)
    seconds = (when - dt.datetime.now(dt.UTC)).total_seconds()
    return max(seconds, 0.0) if math.isfinite(seconds) else None


def count(text: str) -> int | None:
    """A header's non-negative count (Content-Length, Retry-After, X-WP-Total), None unless
    it is ASCII decimal digits: `str.isdigit` also takes "²" and Arabic-Indic digits, which
    int() refuses, as it refuses more than 4,300 digits."""
    if 0 < len(text) <= MAX_DIGITS and text.isascii() and text.isdigit():
        return int(text)
    return None
