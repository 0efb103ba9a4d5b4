"""Customers as personal data: erasing one on request (docs/privacy.md). Administrators
of the client only: it rewrites the client's catalog and queue for good."""

from __future__ import annotations

from typing import TYPE_CHECKING

from stockyard.errors import InvalidInput
from stockyard.service.base import ADMIN, ServiceBase

if TYPE_CHECKING:
    from stockyard.accounts import Principal
    from stockyard.catalog.erasure import Erasure

MAX_CODE = 1000  # a customer code is at most this long (catalog.models.Text)


class CustomersService(ServiceBase):
    def erase_customer(self, who: Principal, client_id: int, code: str) -> Erasure:
        """Replace the personal fields of the client's customer `code` in the catalog,
        in their orders and in the client's queue items; ids, totals, the queue's order
        and the audit stay, and the audit records the erasure (without personal data).
        Running it again changes nothing more."""
        from stockyard.catalog.erasure import Eraser

        self._allow(who, client_id, ADMIN)
        code = code.strip()
        if not code or len(code) > MAX_CODE:
            raise InvalidInput(f"the customer code must be 1 to {MAX_CODE} characters")
        return Eraser(self.store).erase(client_id, code, who.actor)

    def unerase_customer(self, who: Principal, client_id: int, code: str) -> int:
        """Lift the erased mark of the client's customer `code` (they came back and asked
        to be known again): the source's next record of them is stored whole. Nothing
        erased comes back. Administrators only; audited. Returns the customer's id."""
        from stockyard.catalog.erasure import Eraser

        self._allow(who, client_id, ADMIN)
        code = code.strip()
        if not code or len(code) > MAX_CODE:
            raise InvalidInput(f"the customer code must be 1 to {MAX_CODE} characters")
        return Eraser(self.store).unerase(client_id, code, who.actor)
