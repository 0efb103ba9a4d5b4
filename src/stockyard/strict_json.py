"""JSON as the standard has it (RFC 8259): no NaN, no Infinity, no number that overflows a
double. Python's json module accepts all three (`1e999999` becomes inf); stored, they turn
into database errors or silently into null, so every reader of a caller's JSON (the API's
bodies, the CLI's --payload, --settings and --file) refuses them here, naming the field.

Text the database cannot hold faithfully is refused the same way, in any string (keys
too): NUL (`\u0000`; SQLite cuts the text there, so `"k\u0000"` and `"k"` collide as
idempotency keys, PostgreSQL refuses it) and lone surrogates (`\ud800`; UTF-8 cannot
encode them, the driver raises).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from stockyard.errors import InvalidInput

# What a refused value needs in the text: a constant, NUL, a `\u` escape of NUL or a
# surrogate, or a surrogate's UTF-8 form (a str given with surrogatepass); a number too
# large needs a 3-digit exponent or 309+ digits in a row. A body without any (nearly all
# of them) skips the strict parse. The look is a few substring searches on the text and on
# a copy with every digit made 0, E made e and signs dropped ("1E+400" -> "0e000"): one
# regular expression for all of it scanned 20 ns a byte, a tenth of a batch's cost.
_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")
_SURROGATE = re.compile(rb"\xed[\xa0-\xbf]")
_FOLD = bytes.maketrans(b"0123456789E", b"0000000000e")
_LONG_EXPONENT = b"e000"
_LONG_DIGITS = b"0" * 309
_BAD_TEXT = re.compile("[\x00\ud800-\udfff]")


class Refused(InvalidInput):
    """A JSON text holds something the standard or the database does not take; `field`
    names where, `reason` says what."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class NotANumber(Refused):
    """A JSON text holds NaN, Infinity or a number too large for a double."""

    def __init__(self, field: str, literal: str) -> None:
        super().__init__(
            field,
            (
                f"{literal} is not a JSON number"
                if literal.lstrip("-") in ("NaN", "Infinity")
                else f"{literal[:40]} overflows a double"
            )
            + ": use a finite number, or a string",
        )


class BadText(Refused):
    """A JSON string (or key) holds NUL or a lone surrogate."""

    def __init__(self, field: str, found: str) -> None:
        what = "NUL (\\u0000)" if found == "\x00" else f"a lone surrogate (\\u{ord(found):04x})"
        super().__init__(field, f"{what} is not allowed in text")


class _Bad:
    """Stands where a non-finite number was, until its path is known."""

    __slots__ = ("literal",)

    def __init__(self, literal: str) -> None:
        self.literal = literal


def _float(text: str) -> float | _Bad:
    value = float(text)
    return value if math.isfinite(value) else _Bad(text)


def _might_be_refused(text: bytes | str) -> bool:
    """Whether `text` may hold anything `check` refuses (a cheap scan, no parse)."""
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    if b"NaN" in raw or b"Infinity" in raw or b"\x00" in raw:
        return True
    if b"\\u" in raw and _ESCAPE.search(raw) is not None:
        return True
    if b"\xed" in raw and _SURROGATE.search(raw) is not None:
        return True
    folded = raw.translate(_FOLD, b"+-")
    return _LONG_EXPONENT in folded or _LONG_DIGITS in folded


def check(text: bytes | str) -> None:
    """Raise NotANumber if the JSON text holds NaN, ±Infinity or an overflowing number,
    BadText if a string or key holds NUL or a lone surrogate. A text that is not JSON at
    all is left to the caller's own parser to report."""
    if not _might_be_refused(text):
        return
    try:
        parsed = json.loads(text, parse_constant=_Bad, parse_float=_float)
    except (ValueError, RecursionError):
        return
    _refuse_bad(parsed)


def check_text(field: str, text: str) -> None:
    """Raise BadText if `text` (a command-line argument, say) holds NUL or a lone
    surrogate: the same rule as for strings in JSON."""
    found = _BAD_TEXT.search(text)
    if found is not None:
        raise BadText(field, found.group())


def loads(text: bytes | str) -> Any:
    """json.loads that refuses NaN, ±Infinity and overflowing numbers (NotANumber), and
    NUL or lone surrogates in strings (BadText)."""
    check(text)
    return json.loads(text)


def _name(key: str) -> str:
    """A key as a field's name in an error: its NUL and surrogates escaped, so the
    message itself can be encoded and shown."""
    return key.replace("\x00", "\\u0000").encode("utf-8", "backslashreplace").decode()


def _refuse_bad(value: Any) -> None:
    # Iterative: the parser accepts nesting deeper than Python's recursion limit.
    stack: list[tuple[tuple[str, ...], Any]] = [((), value)]
    while stack:
        path, node = stack.pop()
        field = ".".join(path) or "body"
        if isinstance(node, _Bad):
            raise NotANumber(field, node.literal)
        if isinstance(node, str):
            check_text(field, node)
        elif isinstance(node, dict):
            for k in node:
                bad = _BAD_TEXT.search(k)
                if bad is not None:
                    raise BadText(".".join((*path, _name(k))), bad.group())
            stack.extend(((*path, k), v) for k, v in reversed(node.items()))
        elif isinstance(node, list):
            stack.extend(((*path, str(i)), v) for i, v in reversed(list(enumerate(node))))
