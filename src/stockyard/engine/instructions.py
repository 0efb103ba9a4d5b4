"""The instruction mechanism: what an instruction is (its mode, the kind of lane it runs
in, its description template, its coalescing key, its retry policy, whether it is
internal) and the registry that looks them up by name. The engine knows no instruction by
name: the commerce table of instructions lives with the flows (`stockyard.flows.catalog`)
and is handed to the `Queue` by the composition root.
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

    def retries(self, kind: str, attempt: int) -> bool:
        """The retry decision, made here only: whether an attempt (1-based) that ended
        `kind` ("done", "transient", "permanent") is tried again rather than failed."""
        return kind == "transient" and attempt < self.max_attempts


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

    def policy(self, name: str) -> RetryPolicy:
        """An instruction's retry rules; the defaults for one no longer in the catalog, so
        that its items still settle."""
        found = self._by_name.get(name)
        return found.retry if found is not None else RetryPolicy()

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def with_retry(self, name: str, retry: RetryPolicy) -> Instructions:
        """A copy with one instruction's retry policy replaced (configuration, tests)."""
        changed = [
            dataclasses.replace(i, retry=retry) if i.name == name else i
            for i in self._by_name.values()
        ]
        return Instructions(changed)
