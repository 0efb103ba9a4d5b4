"""JSON as the standard has it (RFC 8259): no NaN, no Infinity, no number that overflows a
double. Python's json module accepts all three (`1e999999` becomes inf); stored, they turn
into database errors or silently into null, so every reader of a caller's JSON (the API's
bodies, the CLI's --payload, --settings and --file) refuses them here, naming the field.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from stockyard.errors import InvalidInput

# What any non-finite value needs in the text: a constant, a 3-digit exponent, or 309+
# digits in a row. A body without one (nearly all of them) skips the strict parse.
_MAYBE = re.compile(rb"NaN|Infinity|[eE][+-]?[0-9]{3}|[0-9]{309}")


class NotANumber(InvalidInput):
    """A JSON text holds NaN, Infinity or a number too large for a double."""

    def __init__(self, field: str, literal: str) -> None:
        self.field = field
        self.reason = (
            f"{literal} is not a JSON number"
            if literal.lstrip("-") in ("NaN", "Infinity")
            else f"{literal[:40]} overflows a double"
        ) + ": use a finite number, or a string"
        super().__init__(f"{field}: {self.reason}")


class _Bad:
    """Stands where a non-finite number was, until its path is known."""

    __slots__ = ("literal",)

    def __init__(self, literal: str) -> None:
        self.literal = literal


def _float(text: str) -> float | _Bad:
    value = float(text)
    return value if math.isfinite(value) else _Bad(text)


def might_hold_non_finite(text: bytes | str) -> bool:
    return _MAYBE.search(text.encode() if isinstance(text, str) else text) is not None


def check(text: bytes | str) -> None:
    """Raise NotANumber if the JSON text holds NaN, ±Infinity or an overflowing number.
    A text that is not JSON at all is left to the caller's own parser to report."""
    if not might_hold_non_finite(text):
        return
    try:
        parsed = json.loads(text, parse_constant=_Bad, parse_float=_float)
    except ValueError:
        return
    found = _first_bad(parsed)
    if found is not None:
        raise NotANumber(*found)


def loads(text: bytes | str) -> Any:
    """json.loads that refuses NaN, ±Infinity and overflowing numbers (NotANumber)."""
    check(text)
    return json.loads(text)


def _first_bad(value: Any) -> tuple[str, str] | None:
    # Iterative: the parser accepts nesting deeper than Python's recursion limit.
    stack: list[tuple[tuple[str, ...], Any]] = [((), value)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, _Bad):
            return ".".join(path) or "body", node.literal
        if isinstance(node, dict):
            stack.extend(((*path, str(k)), v) for k, v in reversed(node.items()))
        elif isinstance(node, list):
            stack.extend(((*path, str(i)), v) for i, v in reversed(list(enumerate(node))))
    return None
