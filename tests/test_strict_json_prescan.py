"""strict_json's pre-scan lets a body skip the strict parse: it must say "maybe" for every
text the strict parse refuses, or a refused value would be stored. Checked against the
strict parse itself, on texts built from the pieces refused values are made of."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stockyard import strict_json

# The pre-scan as one regular expression (what it was before it became substring
# searches): anything it matches must still be looked at.
ONE_REGEX = re.compile(
    rb"NaN|Infinity|[eE][+-]?[0-9]{3}|[0-9]{309}"
    rb"|\\u(?:0000|[dD][89a-fA-F])|\x00|\xed[\xa0-\xbf]"
)

PIECES = [
    "0", "1", "9", "e", "E", "+", "-", ".", "NaN", "Infinity", "\\u0000", "\\ud800",
    "\\uDBFF", "\\udc00", "\\u00e9", "\x00", "\ud800", "é", '"', ",", ":", "[", "]", "{",
    "}", " ", "n", "1" * 308, "9" * 310,
]  # fmt: skip
TEXTS = st.lists(st.sampled_from(PIECES), max_size=12).map("".join)


def refused_by_strict_parse(text: bytes | str) -> bool:
    """What `check` decides when it parses, whatever the pre-scan says."""
    try:
        parsed = json.loads(text, parse_constant=strict_json._Bad, parse_float=strict_json._float)
    except (ValueError, RecursionError):
        return False
    try:
        strict_json._refuse_bad(parsed)
    except strict_json.Refused:
        return True
    return False


def as_bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


@pytest.mark.parametrize(
    "text",
    [
        "NaN",
        "[-Infinity]",
        "1e999",
        "1E+400",
        "-1.5e-400e400",
        '{"n": 1.0E400}',
        "1" * 309 + ".5",
        '"\\u0000"',
        '{"k\\ud800": 1}',
        '"\\uDC00"',
        '"\x00"',
        '"\ud800"',
        json.dumps([1]).encode("utf-16").decode("latin-1"),
    ],
)
def test_the_prescan_looks_at_every_text_refused_or_suspect(text: str) -> None:
    assert strict_json._might_be_refused(text)
    assert strict_json._might_be_refused(as_bytes(text))


@pytest.mark.parametrize(
    "text",
    [
        '{"items": [{"instruction": "sync_order", "payload": {"n": 12, "price": "10.50"}}]}',
        '{"n": 1e30, "m": 1.5E-12, "s": "NaX Infinit \\u00e9 \\ud7ff"}',
        "1" * 308 + ".5",
    ],
)
def test_ordinary_bodies_skip_the_strict_parse(text: str) -> None:
    assert not strict_json._might_be_refused(text)


@settings(max_examples=3000, deadline=None)
@given(TEXTS)
def test_whatever_the_strict_parse_refuses_the_prescan_looks_at(text: str) -> None:
    for given_as in (text, as_bytes(text)):
        if refused_by_strict_parse(given_as):
            assert strict_json._might_be_refused(given_as)


@settings(max_examples=3000, deadline=None)
@given(TEXTS)
def test_the_prescan_looks_at_all_the_single_regex_did(text: str) -> None:
    if ONE_REGEX.search(as_bytes(text)):
        assert strict_json._might_be_refused(text)
