"""The image download every connector that fetches a source's image uses (issue 19),
against a real HTTP server on 127.0.0.1 (which the tests' outbound allowance lets through):
a size cap that holds whether or not the server says the size, redirects that cannot lead
to an internal address or out of http(s), errors that never show a signed URL's secret,
transient or permanent by the failure's kind, the type told by the bytes."""

from __future__ import annotations

import email.utils
import gzip
import http.server
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from stockyard import outbound
from stockyard.connectors import downloads
from stockyard.connectors.downloads import GIF, JPEG, PNG, WEBP, fetch_image
from stockyard.errors import PermanentError, TransientError
from stockyard.outbound import OutboundRefused

PNG_BYTES = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(17)
WEBP_BYTES = b"RIFF\x24\x00\x00\x00WEBPVP8 " + bytes(20)
CAP = 4096
SECRET = "s3cr3t"


@dataclass
class Answer:
    status: int = 200
    body: bytes = PNG_BYTES
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "image/png"})
    # "length": a true Content-Length; "chunked"; "close": no length, the body ends when
    # the connection does; an int: that Content-Length, whatever the body's size.
    framing: str | int = "length"
    delay: float = 0.0
    part: int = 65536  # the body is written in parts of this size ...
    pause: float = 0.0  # ... with this pause between them


@dataclass
class Server:
    url: str
    answers: dict[str, Answer]
    hits: list[str]
    sent: dict[str, int]
    encodings: list[str]  # each request's Accept-Encoding


@pytest.fixture
def server() -> Iterator[Server]:
    answers: dict[str, Answer] = {}
    hits: list[str] = []
    sent: dict[str, int] = {}
    encodings: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            path = self.path.split("?")[0]
            hits.append(self.path)
            encodings.append(self.headers.get("Accept-Encoding", ""))
            answer = answers.get(path, Answer(404, b"no", {}))
            time.sleep(answer.delay)
            self.send_response(answer.status)
            for name, value in answer.headers.items():
                self.send_header(name, value)
            if answer.framing == "chunked":
                self.send_header("Transfer-Encoding", "chunked")
            elif answer.framing == "close":
                self.send_header("Connection", "close")
                self.close_connection = True
            else:
                length = len(answer.body) if answer.framing == "length" else answer.framing
                self.send_header("Content-Length", str(length))
            self.end_headers()
            sent[path] = 0
            for start in range(0, len(answer.body), answer.part):
                time.sleep(answer.pause if start else 0)
                part = answer.body[start : start + answer.part]
                if answer.framing == "chunked":
                    part = f"{len(part):x}\r\n".encode() + part + b"\r\n"
                self.wfile.write(part)
                sent[path] += len(part)
            if answer.framing == "chunked":
                self.wfile.write(b"0\r\n\r\n")

        def log_message(self, *args: Any) -> None:
            pass

    class Threaded(http.server.ThreadingHTTPServer):
        def handle_error(self, request: Any, client_address: Any) -> None:
            if not isinstance(sys.exc_info()[1], ConnectionError):
                super().handle_error(request, client_address)
            # else: the client stopped reading (over the cap, or timed out), as it should

    httpd = Threaded(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02})
    thread.start()
    yield Server(f"http://127.0.0.1:{httpd.server_address[1]}", answers, hits, sent, encodings)
    httpd.shutdown()
    httpd.server_close()


def fetch(url: str, timeout: float = 2.0) -> downloads.Image:
    accept = (JPEG, PNG, GIF)
    return fetch_image(url, accept=accept, taker="Magento", timeout=timeout, max_bytes=CAP)


def test_an_image_comes_with_the_type_its_bytes_show(server: Server) -> None:
    # The server calls it octet-stream; the bytes say PNG.
    server.answers["/a"] = Answer(headers={"Content-Type": "application/octet-stream"})
    image = fetch(f"{server.url}/a")
    assert image.content == PNG_BYTES
    assert (image.type.mime, image.type.extension) == ("image/png", "png")


@pytest.mark.parametrize("framing", ["chunked", "close"])
def test_a_big_body_without_a_content_length_is_cut_off_at_the_cap(
    server: Server, framing: str
) -> None:
    big = PNG_BYTES + bytes(64 * 1024 * 1024)
    server.answers["/big.png"] = Answer(body=big, framing=framing)
    with pytest.raises(PermanentError, match=f"larger than {CAP} bytes"):
        fetch(f"{server.url}/big.png")
    time.sleep(0.2)
    # The download stopped reading: the server could not send it all.
    assert server.sent["/big.png"] < len(big)


def test_a_compressed_body_is_refused(server: Server) -> None:
    # A few KB of gzip decode to GBs, in one piece: only unencoded bodies are taken, and
    # the download asks for them.
    bomb = gzip.compress(PNG_BYTES + bytes(64 * 1024 * 1024))
    server.answers["/bomb.png"] = Answer(body=bomb, headers={"Content-Encoding": "gzip"})
    with pytest.raises(PermanentError, match="gzip-encoded"):
        fetch(f"{server.url}/bomb.png")
    assert server.encodings == ["identity"]


def test_a_content_length_over_the_cap_is_refused_before_reading(server: Server) -> None:
    server.answers["/huge.png"] = Answer(framing=CAP * 1000)
    with pytest.raises(PermanentError, match=f"larger than {CAP} bytes"):
        fetch(f"{server.url}/huge.png")


def test_a_content_length_smaller_than_the_body_reads_no_more_than_it_says(
    server: Server,
) -> None:
    # What follows the declared length is not part of the answer: the cap is not reached
    # through it, and the truncated bytes are still told by their first ones.
    server.answers["/liar.png"] = Answer(body=PNG_BYTES + bytes(CAP * 4), framing=16)
    image = fetch(f"{server.url}/liar.png")
    assert image.content == PNG_BYTES[:16]


@pytest.mark.parametrize(
    "target",
    [
        "http://10.1.2.3/x.png?token=" + SECRET,
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:10.0.0.1]/x.png",
        "http://cdn.internal.example/x.png",
    ],
)
def test_a_redirect_to_an_internal_address_is_refused(
    server: Server, target: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = outbound._resolve
    fake = {"cdn.internal.example": ["10.9.8.7"]}
    monkeypatch.setattr(outbound, "_resolve", lambda h, p: fake.get(h) or real(h, p))
    server.answers["/moved.png"] = Answer(302, b"", {"Location": target})
    with pytest.raises(OutboundRefused, match="refused to connect") as caught:
        fetch(f"{server.url}/moved.png?sig={SECRET}")
    assert str(caught.value).startswith(f"image {server.url}/moved.png: ")
    assert SECRET not in str(caught.value)
    assert "10.9.8.7" not in str(caught.value)  # a name's address: its kind is said, not it


@pytest.mark.parametrize(
    "target", ["file:///etc/passwd", "ftp://example.com/x.png", "gopher://127.0.0.1:6379/_"]
)
def test_a_redirect_out_of_http_is_permanent(server: Server, target: str) -> None:
    server.answers["/moved.png"] = Answer(301, b"", {"Location": target})
    with pytest.raises(PermanentError, match="redirected to a URL that is not http"):
        fetch(f"{server.url}/moved.png")


def test_redirects_are_followed_a_few_times_only(server: Server) -> None:
    server.answers["/a.png"] = Answer(302, b"", {"Location": "/b.png"})
    server.answers["/b.png"] = Answer(307, b"", {"Location": f"{server.url}/c.png"})
    server.answers["/c.png"] = Answer()
    assert fetch(f"{server.url}/a.png").content == PNG_BYTES
    server.answers["/loop.png"] = Answer(302, b"", {"Location": "/loop.png"})
    with pytest.raises(PermanentError, match="more than 5 redirects"):
        fetch(f"{server.url}/loop.png")


@pytest.mark.parametrize(
    ("answer", "error", "words"),
    [
        (Answer(404, b"gone", {"Content-Type": "text/plain"}), PermanentError, "HTTP 404"),
        (Answer(403, b"", {}), PermanentError, "HTTP 403"),
        (Answer(503, b"busy", {}), TransientError, "HTTP 503"),
        (Answer(408, b"", {}), TransientError, "HTTP 408"),
        (Answer(200, b"<html>", {"Content-Type": "text/html"}), PermanentError, "not an image"),
        (Answer(200, b"", {"Content-Type": "image/png"}), PermanentError, "is empty"),
    ],
)
def test_an_error_never_shows_a_signed_urls_secret(
    server: Server, answer: Answer, error: type[Exception], words: str
) -> None:
    server.answers["/x.png"] = answer
    port = server.url.rsplit(":", 1)[1]
    url = f"http://user:{SECRET}@127.0.0.1:{port}/x.png?X-Amz-Signature={SECRET}#{SECRET}"
    with pytest.raises(error, match=words) as caught:
        fetch(url)
    assert SECRET not in str(caught.value)
    assert f"image http://127.0.0.1:{port}/x.png" in str(caught.value)


def test_429_keeps_its_retry_after(server: Server) -> None:
    server.answers["/x.png"] = Answer(429, b"", {"Retry-After": "7"})
    with pytest.raises(TransientError, match="HTTP 429") as caught:
        fetch(f"{server.url}/x.png")
    assert caught.value.retry_after == 7
    later = email.utils.formatdate(time.time() + 120, usegmt=True)
    server.answers["/x.png"] = Answer(429, b"", {"Retry-After": later})
    with pytest.raises(TransientError) as caught:
        fetch(f"{server.url}/x.png")
    assert caught.value.retry_after is not None and 100 < caught.value.retry_after <= 120


def test_a_non_image_or_a_type_the_platform_does_not_take_is_permanent(
    server: Server,
) -> None:
    server.answers["/text"] = Answer(body=b"plain text", headers={})
    with pytest.raises(PermanentError, match="not a JPEG, PNG or GIF image, the types Magento"):
        fetch(f"{server.url}/text")
    server.answers["/w.webp"] = Answer(body=WEBP_BYTES, headers={"Content-Type": "image/webp"})
    with pytest.raises(PermanentError, match="not a JPEG, PNG or GIF"):
        fetch(f"{server.url}/w.webp")
    taken = fetch_image(f"{server.url}/w.webp", accept=(WEBP,), taker="Vendure", timeout=2)
    assert taken.type.mime == "image/webp"


def test_a_slow_server_and_a_closed_port_are_transient(server: Server) -> None:
    server.answers["/slow.png"] = Answer(delay=1.5)
    with pytest.raises(TransientError, match="timed out"):
        fetch(f"{server.url}/slow.png", timeout=0.3)
    # Every byte comes within the timeout, the whole never does.
    server.answers["/drip.png"] = Answer(part=1, pause=0.05)
    started = time.monotonic()
    with pytest.raises(TransientError, match="timed out"):
        fetch(f"{server.url}/drip.png", timeout=0.5)
    assert time.monotonic() - started < 1.5
    with socket.socket() as unused:  # a port nothing listens on
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    with pytest.raises(TransientError, match="ConnectError"):
        fetch(f"http://127.0.0.1:{port}/x.png")


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("", r"\(no URL\): the URL must be http"),
        ("ftp://example.com/x.png", "must be http"),
        ("file:///etc/passwd", "must be http"),
        ("http:///x.png", "must be http"),
        ("http://10.1.2.3/x.png", "private"),
    ],
)
def test_a_url_that_cannot_be_fetched_is_permanent(server: Server, url: str, words: str) -> None:
    with pytest.raises(PermanentError, match=words):
        fetch(url)
    assert server.hits == []
