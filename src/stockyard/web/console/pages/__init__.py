"""The console's pages, one module per area; `router` mounts them all. Order matters
where paths overlap: the queue's /items/table before the item page's /items/{id}."""

from __future__ import annotations

from fastapi import APIRouter

from stockyard.web.console.pages import (
    audit,
    catalog,
    dashboard,
    export,
    item,
    lanes,
    queue,
    settings,
    signin,
)
from stockyard.web.console.pages.errors import error_page

router = APIRouter()
for area in (signin, queue, export, item, catalog, lanes, dashboard, audit, settings):
    router.include_router(area.router)

__all__ = ["error_page", "router"]
