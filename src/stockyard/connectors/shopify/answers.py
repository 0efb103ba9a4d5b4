"""Reading a mutation's payload: Shopify reports refused input as `userErrors` inside an
answer that is otherwise a success, each naming the input field it is about."""

from __future__ import annotations

from typing import Any

from stockyard.errors import PermanentError


def user_errors(payload: Any, what: str) -> list[dict[str, Any]]:
    if not isinstance(payload, dict):
        raise PermanentError(f"shopify: {what} answered nothing")
    return [e for e in payload.get("userErrors") or [] if isinstance(e, dict)]


def describe(errors: list[dict[str, Any]]) -> str:
    """The first five errors, each as "field.path: message (CODE)"."""
    return "; ".join(
        f"{'.'.join(e.get('field') or []) or '-'}: {e.get('message')}"
        + (f" ({e['code']})" if e.get("code") else "")
        for e in errors[:5]
    )


def checked(payload: Any, what: str) -> dict[str, Any]:
    """The payload, or a PermanentError naming what Shopify refused."""
    errors = user_errors(payload, what)
    if errors:
        raise PermanentError(f"shopify: {what}: {describe(errors)}")
    return dict(payload)
