"""The instruction catalog of SPEC §3, as data.

One row per instruction: its mode, which lane it runs in, its description template, its
coalescing key and whether it is internal. Adding an instruction is one row here plus one
handler.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from stockyard.errors import InvalidInput


class LaneKind(StrEnum):
    SOURCE = "source"
    CHANNEL = "channel"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Automatic retries of transient failures: exponential back-off with full jitter."""

    max_attempts: int = 5
    base_delay: float = 2.0
    max_delay: float = 300.0
    timeout: float = 300.0


@dataclass(frozen=True, slots=True)
class Instruction:
    name: str
    blocking: bool
    lane: LaneKind
    template: str
    retry: RetryPolicy = RetryPolicy()
    # Template of the coalescing key (from the payload): a newer item with the same key in
    # the same lane supersedes queued older ones. Empty: never coalesced.
    coalesce: str = ""
    # Made by Stockyard itself only (notifications): no tenant, inbound push or follow-up
    # may create one, since its payload says where Stockyard sends data and with which key.
    internal: bool = False

    @property
    def mode(self) -> str:
        return "blocking" if self.blocking else "non-blocking"


_B, _NB = True, False
_CH, _SRC, _NONE = LaneKind.CHANNEL, LaneKind.SOURCE, LaneKind.NONE

_PRODUCT, _VARIANT = "product:{{product_id}}", "variant:{{variant_id}}"
_PUB, _INT = False, True  # public: tenants may enqueue it; internal: Stockyard only

# name, blocking, lane, description template, coalescing key template, internal
SPEC_INSTRUCTIONS: tuple[tuple[str, bool, LaneKind, str, str, bool], ...] = (
    ("add_image", _B, _CH, "Add image to {{channel_description}}", "", _PUB),
    ("add_product", _B, _CH, "Add product to {{channel_description}}", _PRODUCT, _PUB),
    ("add_variant", _B, _CH, "Add variant to {{channel_description}}", _VARIANT, _PUB),
    ("clear_channel", _B, _CH, "Clear channel {{channel_description}}", "", _PUB),
    ("init_channel", _B, _CH, "Init channel {{channel_description}}", "", _PUB),
    ("set_channel_status", _B, _CH, "Set channel status {{channel_description}}", "", _PUB),
    ("delete_image", _B, _CH, "Delete image on {{channel_description}}", "", _PUB),
    ("delete_product", _B, _CH, "Delete product on {{channel_description}}", "", _PUB),
    ("delete_product_variant", _B, _CH, "Delete variant on {{channel_description}}", "", _PUB),
    ("sync_channel", _B, _CH, "Sync channel {{channel_description}}", "", _PUB),
    ("sync_channel_products", _B, _CH, "Update products on {{channel_description}}", "", _PUB),
    (
        "update_product",
        _B,
        _CH,
        "Update product on {{channel_description}}",
        "product:{{product_id}}",
        _PUB,
    ),
    (
        "update_variant",
        _B,
        _CH,
        "Update variant on {{channel_description}}",
        "variant:{{variant_id}}",
        _PUB,
    ),
    ("fetch_images", _B, _SRC, "Fetch images from {{source_description}}", "", _PUB),
    ("sync_image", _B, _SRC, "Sync image from {{source_description}}", "", _PUB),
    (
        "sync_product",
        _B,
        _SRC,
        "Sync product from {{source_description}}",
        "product:{{code}}",
        _PUB,
    ),
    ("sync_products", _B, _SRC, "Sync products from {{source_description}}", "", _PUB),
    (
        "sync_customer",
        _B,
        _SRC,
        "Sync customer from {{source_description}}",
        "customer:{{code}}",
        _PUB,
    ),
    ("pull_products", _B, _SRC, "Pull products from {{source_description}}", "", _PUB),
    ("add_order", _NB, _NONE, "Create order at {{source_description}}", "", _PUB),
    ("fulfill_order", _NB, _NONE, "Create fulfillment at {{fulfillment_description}}", "", _PUB),
    ("update_order_instruction", _NB, _NONE, "Update order instruction", "", _PUB),
    (
        "sync_channel_fulfillments",
        _NB,
        _NONE,
        "Sync fulfillment to {{channel_description}}",
        "",
        _PUB,
    ),
    ("sync_fulfillment", _NB, _NONE, "Sync fulfillment from {{fulfillment_description}}", "", _PUB),
    (
        "pull_fulfillments",
        _NB,
        _NONE,
        "Pull fulfillments from {{fulfillment_description}}",
        "",
        _PUB,
    ),
    ("sync_order", _NB, _NONE, "Sync order from {{channel_description}}", "", _PUB),
    ("pull_orders", _NB, _NONE, "Pull orders from {{channel_description}}", "", _PUB),
    ("send_email", _NB, _NONE, "Send email", "", _INT),
    ("send_webhook", _NB, _NONE, "Send webhook", "", _INT),
)

_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")


def render(template: str, values: Mapping[str, str]) -> str:
    """Fill `{{name}}` placeholders; an unknown name renders as an empty string."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), ""), template)


def render_key(template: str, payload: Mapping[str, Any]) -> str | None:
    """A coalescing key from the payload's top-level strings and integers; None when the
    template is empty or the payload lacks one of its names (then nothing coalesces)."""
    if not template:
        return None
    parts: list[str] = []
    for literal, name in _key_parts(template):
        parts.append(literal)
        if name is not None:
            found = payload.get(name)
            if isinstance(found, bool) or not isinstance(found, str | int) or found == "":
                return None
            parts.append(str(found))
    return "".join(parts)


@functools.cache
def _key_parts(template: str) -> tuple[tuple[str, str | None], ...]:
    """The template split once into (literal, placeholder name) pairs: enqueue renders a
    key per request, and the regex substitution cost more than the rest of the planning."""
    parts: list[tuple[str, str | None]] = []
    at = 0
    for match in _PLACEHOLDER.finditer(template):
        parts.append((template[at : match.start()], match.group(1)))
        at = match.end()
    parts.append((template[at:], None))
    return tuple(parts)


class Instructions:
    """Looks instructions up by name; an unknown name is a clear error."""

    def __init__(self, instructions: Iterable[Instruction]) -> None:
        self._by_name = {i.name: i for i in instructions}

    def __getitem__(self, name: str) -> Instruction:
        try:
            return self._by_name[name]
        except KeyError:
            raise InvalidInput(
                f"unknown instruction {name!r}; known: {', '.join(sorted(self._by_name))}"
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._by_name.values())

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def with_retry(self, name: str, retry: RetryPolicy) -> Instructions:
        """A copy with one instruction's retry policy replaced (configuration, tests)."""
        changed = [
            dataclasses.replace(i, retry=retry) if i.name == name else i
            for i in self._by_name.values()
        ]
        return Instructions(changed)


def default_instructions() -> Instructions:
    return Instructions(
        Instruction(n, b, lane, t, coalesce=c, internal=i)
        for n, b, lane, t, c, i in SPEC_INSTRUCTIONS
    )
