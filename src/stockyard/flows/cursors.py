"""Pull cursors that survive a crash.

A pull stores its new cursor before its item settles, so a crash in between could skip
records. The stored state therefore remembers the cursor it started from and the item that
advanced it: when that same item runs again, it starts over from the old cursor, and the
idempotency keys of what it queues make the repeat harmless.
"""

from __future__ import annotations

from types import TracebackType

from stockyard.catalog.store import CatalogStore


class Pull:
    def __init__(self, store: CatalogStore, connection_id: int, what: str, item_id: int) -> None:
        self.store = store
        self.connection_id = connection_id
        self.key = f"cursor:{what}"
        self.item_id = item_id
        state = store.state(connection_id, self.key)
        value = state.value if state is not None and isinstance(state.value, dict) else {}
        self.start: str | None = (
            value.get("from") if value.get("by_item") == item_id else value.get("cursor")
        )
        self._new: str | None = None
        self._advanced = False

    def advance(self, cursor: str | None) -> None:
        self._new = cursor if cursor is not None else self.start
        self._advanced = True

    def __enter__(self) -> Pull:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if kind is None and self._advanced:
            value = {"cursor": self._new, "from": self.start, "by_item": self.item_id}
            self.store.set_state(self.connection_id, self.key, value)
