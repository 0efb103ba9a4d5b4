"""Connection secrets at rest (Fernet, rotation, the key's sources) and Standard Webhooks
signatures."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from stockyard.errors import StockyardError
from stockyard.sealing import KEY_ENV, KEY_FILE_ENV, Sealer, merge_secrets
from stockyard.signing import SignatureError, sign, verify


def test_seal_open_and_rotate() -> None:
    old, new = Sealer.new_key(), Sealer.new_key()
    sealed = Sealer([old]).seal({"token": "abc"})
    assert "abc" not in sealed
    rotated = Sealer([new, old])  # the new key seals, the old one still opens
    assert rotated.open(sealed) == {"token": "abc"}
    resealed = rotated.seal({"token": "abc"})
    assert Sealer([new]).open(resealed) == {"token": "abc"}
    with pytest.raises(StockyardError, match="cannot be opened with this key"):
        Sealer([new]).open(sealed)


def test_key_file_beside_sqlite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.delenv(KEY_FILE_ENV, raising=False)
    url = f"sqlite:///{tmp_path}/shop.db"
    sealed = Sealer.for_database(url).seal({"a": "b"})
    key_file = tmp_path / "shop.db.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert Sealer.for_database(url).open(sealed) == {"a": "b"}  # the same key, read back


def test_postgresql_needs_a_configured_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.delenv(KEY_FILE_ENV, raising=False)
    with pytest.raises(StockyardError, match=KEY_ENV):
        Sealer.for_database("postgresql://db.example/stockyard")
    monkeypatch.setenv(KEY_ENV, "not a key")
    with pytest.raises(StockyardError, match="Fernet keys"):
        Sealer.for_database("postgresql://db.example/stockyard")
    monkeypatch.setenv(KEY_ENV, Sealer.new_key().decode())
    assert Sealer.for_database("postgresql://db.example/stockyard").open(None) == {}


def test_secrets_merge_and_null_removes() -> None:
    merged = merge_secrets({"a": "1", "b": "2"}, {"a": None, "c": {"Authorization": "x"}})
    assert merged == {"b": "2", "c": {"Authorization": "x"}}
    for bad in ("", 5, ["x"], {"h": 1}):
        with pytest.raises(StockyardError, match=r"secrets\.k"):
            merge_secrets({}, {"k": bad})


def test_standard_webhooks_signatures() -> None:
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"hello": "world"}'
    headers = sign(secret, "msg_1", body, now=1_700_000_000)
    assert verify(secret, headers, body, now=1_700_000_100) == "msg_1"
    # Several signatures in one header (a secret being rotated): one match is enough.
    rotated = headers | {"webhook-signature": "v1,bm9wZQ== " + headers["webhook-signature"]}
    assert verify(secret, rotated, body, now=1_700_000_000) == "msg_1"
    for changed, message in (
        ({"webhook-signature": "v1,bm9wZQ=="}, "does not match"),
        ({"webhook-timestamp": "yesterday"}, "whole seconds"),
        ({"webhook-id": ""}, "missing signature"),
    ):
        with pytest.raises(SignatureError, match=message):
            verify(secret, headers | changed, body, now=1_700_000_000)
    with pytest.raises(SignatureError, match="more than 300 s"):
        verify(secret, headers, body, now=1_700_000_301)
    with pytest.raises(SignatureError, match="does not match"):
        verify(secret, headers, body + b" ", now=1_700_000_000)
