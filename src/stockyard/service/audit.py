"""The client's audit trail as the console shows it, paged and filtered. Administrators
only, as the API's trail: its details carry webhook URLs (with their tokens), members'
emails and key names."""

from __future__ import annotations

from typing import TYPE_CHECKING

from stockyard.errors import InvalidInput
from stockyard.service.base import ADMIN, ServiceBase

if TYPE_CHECKING:
    from stockyard.accounts import Principal
    from stockyard.engine import AuditEntry

MAX_AUDIT_PAGE = 200


class AuditService(ServiceBase):
    def audit_page(
        self,
        who: Principal,
        client_id: int,
        before: int | None = None,
        limit: int = 50,
        actor: str | None = None,
        action: str | None = None,
    ) -> tuple[list[AuditEntry], int | None]:
        """A page of the client's audit trail, newest first, of one actor and one action
        if given; and the `before` of the next page, None when there is none."""
        self._allow(who, client_id, ADMIN)
        if not 1 <= limit <= MAX_AUDIT_PAGE:
            raise InvalidInput(f"limit must be between 1 and {MAX_AUDIT_PAGE}")
        return self.tenancy.audit.page(client_id, before, limit, actor or None, action or None)
